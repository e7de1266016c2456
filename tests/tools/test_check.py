from __future__ import annotations

import json
import shutil
import time

import pytest

from behavior.cli import main
from behavior.tools.check import check_paths, format_report, map_with_timeout, write_json


def test_check_a_ucf_root_with_splits(ucf_root, tmp_path):
    root, splits = ucf_root
    (root / "Walk" / "v_Walk_g03_c01.avi").write_bytes(b"")  # zero-byte, and in no split
    shutil.copy(
        root / "Walk" / "v_Walk_g01_c01.avi", root / "Walk" / "v_Walk_g04_c01.avi"
    )  # duplicate content
    with open(splits / "testlist01.txt", "a") as handle:
        handle.write("Walk/v_Walk_g09_c09.avi\n")  # listed, not on disk
    report = check_paths([root], splits_dir=splits, workers=2)

    assert len(report.videos) == 10 and report.num_failed == 1
    bad = next(v for v in report.videos if not v.ok)
    assert (
        bad.path.endswith("v_Walk_g03_c01.avi")
        and "empty file" in bad.error
        and "v_Walk_g03_c01.avi" in bad.error
    )
    good = next(v for v in report.videos if v.path.endswith("v_Walk_g01_c01.avi"))
    assert (good.ok, good.frames, good.width, good.height, good.label, good.split) == (
        True,
        12,
        64,
        48,
        "Walk",
        "test01",
    )
    assert abs(good.fps - 10) < 1e-6 and abs(good.duration_s - 1.2) < 0.05
    assert report.missing == [
        {"file": str(splits / "testlist01.txt"), "line": 5, "entry": "Walk/v_Walk_g09_c09.avi"}
    ]
    assert sorted(p.rsplit("/", 1)[-1] for p in report.unlisted) == [
        "v_Walk_g03_c01.avi",
        "v_Walk_g04_c01.avi",
    ]
    identical = [d for d in report.duplicates if d["reason"] == "identical content"]
    assert len(identical) == 1 and len(identical[0]["paths"]) == 2

    text = format_report(report)
    assert "10 videos, 1 unreadable, 2 classes" in text
    assert "listed but missing from disk (1)" in text and "on disk but in no split (2)" in text

    out = tmp_path / "report.json"
    write_json(report, out)
    entries = json.loads(out.read_text())["videos"]
    assert len(entries) == 10
    assert set(entries[0]) == {
        "path",
        "label",
        "split",
        "ok",
        "frames",
        "fps",
        "width",
        "height",
        "duration_s",
        "error",
    }


def test_check_reports_a_video_in_both_train_and_test(ucf_root):
    root, splits = ucf_root
    with open(splits / "trainlist01.txt", "a") as handle:
        handle.write("Walk/v_Walk_g01_c01.avi 1\n")
    report = check_paths([root], splits_dir=splits, decode="none")
    assert any(d["reason"] == "in both train01 and test01" for d in report.duplicates)


def test_check_plain_files_and_exit_status(make_video, tmp_path, capsys):
    good = make_video("a.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("hello")
    assert main(["check", str(good)]) == 0
    assert main(["check", str(good), str(text), "--json", str(tmp_path / "r.json")]) == 3
    output = capsys.readouterr().out
    assert "2 videos, 1 unreadable" in output and "notes.mp4" in output
    assert main(["check", str(tmp_path / "absent")]) == 2
    assert "absent: no such file" in capsys.readouterr().err


def test_check_decodes_every_frame_when_asked(real_clips):
    report = check_paths(
        [real_clips / "decord_corrupted_SYNTHETIC.mp4", real_clips / "decord_rotation_90.mov"], decode="all"
    )
    assert [v.ok for v in report.videos] == [False, True]
    assert "decord_corrupted_SYNTHETIC.mp4" in report.videos[0].error


def _sleep_or_square(x: int) -> int:
    if x == 3:
        time.sleep(60)
    return x * x


def test_a_stalled_item_is_cut_off_and_the_rest_complete():
    started = time.perf_counter()
    results = map_with_timeout(
        _sleep_or_square, list(range(6)), workers=2, timeout_s=2.0, on_timeout=lambda x: f"stalled {x}"
    )
    assert results == [0, 1, 4, "stalled 3", 16, 25]
    assert time.perf_counter() - started < 30


def test_check_refuses_bad_arguments(tmp_path, make_video):
    with pytest.raises(ValueError, match="valid: sample, all, none"):
        check_paths([tmp_path], decode="some")
    with pytest.raises(ValueError, match="must be the data root folder"):
        check_paths([make_video("a.mp4")], splits_dir=tmp_path)

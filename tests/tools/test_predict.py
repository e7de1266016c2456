from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import behavior.tools.rows as rows_module
from behavior.cli import main
from behavior.data.video import read_info
from behavior.tools.predict import predict
from behavior.tools.rows import collect_inputs, read_rows
from behavior.tools.windows import WindowOptions

CLASSES = {"walk", "run", "wave", "sit_down", "stand_up"}
CLASSES_IN_ORDER = ("walk", "run", "wave", "sit_down", "stand_up")


@pytest.fixture
def mixed_folder(tiny_synth, tmp_path):
    folder = tmp_path / "inbox"
    (folder / "sub").mkdir(parents=True)
    videos = sorted((tiny_synth / "videos").rglob("*.*"))[:6]
    for i, video in enumerate(videos):
        (folder / ("sub" if i % 2 else "") / video.name).write_bytes(video.read_bytes())
    (folder / "corrupt.mp4").write_bytes(videos[0].read_bytes()[:300])  # truncated
    (folder / "notes.avi").write_text("not a video")
    (folder / "empty.mkv").write_bytes(b"")
    return folder


def test_a_folder_with_good_and_broken_files(tiny_run, mixed_folder, tmp_path, capsys):
    out = tmp_path / "predictions.csv"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(tiny_run / "best.pt"),
                str(mixed_folder),
                "--out",
                str(out),
                "--batch-size",
                "4",
                "--workers",
                "2",
            ]
        )
        == 3
    )
    rows = read_rows(out)
    assert len(rows) == 9 and len({r["path"] for r in rows}) == 9
    bad = {Path(r["path"]).name: r for r in rows if r["status"] == "error"}
    assert set(bad) == {"corrupt.mp4", "notes.avi", "empty.mkv"}
    assert all(name in row["error"] for name, row in bad.items())
    good = [r for r in rows if r["status"] == "ok"]
    assert len(good) == 6 and all(r["label"] in CLASSES and 0 < float(r["score"]) <= 1 for r in good)
    assert all(int(r["frames"]) > 10 and float(r["duration_s"]) > 1 for r in good)
    assert {"top1_label", "top5_score"} <= set(rows[0])
    assert "3 of 9 rows are errors" in capsys.readouterr().err


def test_resume_after_an_interrupted_run_loses_and_repeats_nothing(
    tiny_run, mixed_folder, tmp_path, monkeypatch
):
    out = tmp_path / "predictions.jsonl"
    real_emit_rows = rows_module.RowWriter.write
    calls = []

    def dies_after_four(self, row):
        if len(calls) == 4:
            self._handle.write('{"path": "torn')  # the kill came in the middle of a line
            self._handle.flush()
            raise KeyboardInterrupt
        calls.append(row["path"])
        real_emit_rows(self, row)

    monkeypatch.setattr(rows_module.RowWriter, "write", dies_after_four)
    with pytest.raises(KeyboardInterrupt):
        predict(tiny_run / "best.pt", [mixed_folder], out=out, batch_size=2, workers=0)
    monkeypatch.undo()
    assert len(read_rows(out)) == 4
    summary = predict(tiny_run / "best.pt", [mixed_folder], out=out, batch_size=2, workers=0)
    rows = read_rows(out)
    assert summary.num_skipped == 4 and summary.num_written == 5
    assert sorted(r["path"] for r in rows) == sorted(
        collect_inputs([mixed_folder])
    )  # none missing, none twice
    assert all(json.loads(line) for line in out.read_text().splitlines())  # the torn line is gone


def test_list_files_and_missing_paths(tiny_run, tiny_synth, tmp_path):
    videos = sorted((tiny_synth / "videos" / "wave").iterdir())[:2]
    listing = tmp_path / "videos.txt"
    listing.write_text(f"# two videos and one that is not there\n{videos[0]}\n{videos[1]}\nmissing.mp4\n")
    summary = predict(tiny_run / "best.pt", [listing], out=tmp_path / "p.csv", workers=0)
    rows = read_rows(tmp_path / "p.csv")
    assert summary.num_failed == 1 and [r["status"] for r in rows] == ["ok", "ok", "error"]
    assert "missing.mp4: no such file" in rows[2]["error"]


def test_windows_on_a_variable_frame_rate_video_use_real_timestamps(tiny_run, real_clips, tmp_path):
    video = real_clips / "torchcodec_var_fps_SYNTHETIC.mp4"
    out = tmp_path / "w.jsonl"
    predict(tiny_run / "best.pt", [video], out=out, windows=WindowOptions(60, 30, unit="frames"), workers=0)
    row = read_rows(out)[0]
    info = read_info(video)
    starts = [w["start_s"] for w in row["windows"]]
    assert starts == pytest.approx(info.timestamps[np.arange(0, 241, 30)].round(3).tolist(), abs=1e-3)
    assert row["segments"][0]["start_s"] == 0 and row["segments"][-1]["end_s"] == pytest.approx(
        info.duration_s, abs=1e-3
    )
    assert float(row["duration_s"]) == pytest.approx(info.duration_s, abs=1e-3)


def test_torchrun_shards_videos_and_merges_the_rows(tiny_run, mixed_folder, tmp_path):
    out = tmp_path / "ddp.csv"
    command = [
        str(Path(sys.executable).with_name("torchrun")),
        "--standalone",
        "--nproc_per_node=2",
        "--no-python",
        str(Path(sys.executable).with_name("behavior")),
        "predict",
        "--checkpoint",
        str(tiny_run / "best.pt"),
        str(mixed_folder),
        "--out",
        str(out),
        "--workers",
        "0",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode != 0  # torchrun reports the ranks' exit status 3 (some videos failed)
    rows = read_rows(out)
    assert sorted(r["path"] for r in rows) == sorted(collect_inputs([mixed_folder])), stderr[-2000:]
    assert not list(tmp_path.glob("ddp.csv.part*"))


def test_a_clip_below_the_threshold_is_unknown_and_keeps_its_top_k(tiny_confident_run, tiny_synth, tmp_path):
    videos = sorted((tiny_synth / "videos" / "walk").iterdir())[:3]
    checkpoint = str(tiny_confident_run / "best.pt")
    fitted = tmp_path / "fitted.csv"
    assert (
        main(
            ["predict", "--checkpoint", checkpoint, *map(str, videos), "--out", str(fitted), "--workers", "0"]
        )
        == 0
    )
    rows = read_rows(fitted)
    threshold = float(rows[0]["unknown_threshold"])
    assert 0 < threshold < 1  # the msp score's threshold, chosen on the validation clips
    for row in rows:
        assert json.loads(row["labels"]) == [*CLASSES_IN_ORDER, "unknown"]
        assert (row["label"] == "unknown") == (float(row["unknown_score"]) < threshold)
        assert float(row["unknown_score"]) == pytest.approx(float(row["top1_score"]), abs=1e-4)  # msp
    above_all = max(float(r["unknown_score"]) for r in rows) + 0.01

    def run(out, threshold: str) -> list[dict]:
        args = ["predict", "--checkpoint", checkpoint, *map(str, videos), "--out", str(out), "--workers", "0"]
        assert main([*args, "--unknown-threshold", threshold]) == 0
        return read_rows(out)

    for row, before in zip(run(tmp_path / "forced.jsonl", str(above_all)), rows):
        assert row["label"] == "unknown" and row["unknown_threshold"] == pytest.approx(above_all)
        assert row["top1_label"] == before["top1_label"] and row["top5_label"] in CLASSES  # still the top 5
        assert row["top1_score"] == pytest.approx(float(before["top1_score"]))
    off = run(tmp_path / "off.jsonl", "off")
    assert all(r["label"] in CLASSES and r["labels"] == list(CLASSES_IN_ORDER) for r in off)


def test_windows_below_the_threshold_become_none_segments(tiny_confident_run, tiny_synth, tmp_path):
    video = sorted((tiny_synth / "videos" / "wave").iterdir())[0]
    out = tmp_path / "w.jsonl"
    options = WindowOptions(6, 3, unit="frames")
    predict(
        tiny_confident_run / "best.pt", [video], out=out, windows=options, workers=0, unknown_threshold=2.0
    )
    row = read_rows(out)[0]
    assert row["label"] == "unknown" and "none" in row["labels"] and row["top1_label"] in CLASSES
    assert [s["label"] for s in row["segments"]] == ["none"]  # every window rejected: one none segment
    assert row["segments"][0]["end_s"] == pytest.approx(float(row["duration_s"]), abs=1e-3)
    assert all(0 < w["unknown_score"] <= 1 and len(w["scores"]) == 5 for w in row["windows"])
    predict(
        tiny_confident_run / "best.pt",
        [video],
        out=tmp_path / "k.jsonl",
        windows=options,
        workers=0,
        unknown_threshold=0.0,
    )
    assert "none" not in {s["label"] for s in read_rows(tmp_path / "k.jsonl")[0]["segments"]}


def test_onnx_runtime_predicts_what_pytorch_predicts(tiny_confident_run, tiny_synth, tmp_path, monkeypatch):
    """--engine onnx: the checkpoint exported once into the cache, the same rows within the export tolerance,
    clips and windows alike."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from behavior.tools.export import TOLERANCE

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    videos = [str(sorted((tiny_synth / "videos" / name).iterdir())[0]) for name in ("walk", "wave")]
    args = ["predict", "--checkpoint", str(tiny_confident_run / "best.pt"), *videos, "--workers", "0"]
    rows = {}
    for engine in ("torch", "onnx"):
        for kind, extra in (("clips", []), ("windows", ["--window", "1", "--stride", "0.5"])):
            out = tmp_path / f"{engine}-{kind}.csv"
            assert main([*args, *extra, "--engine", engine, "--out", str(out)]) == 0
            rows[engine, kind] = read_rows(out)
    for kind in ("clips", "windows"):
        assert len(rows["onnx", kind]) == len(rows["torch", kind]) > 0
        for got, want in zip(rows["onnx", kind], rows["torch", kind]):
            assert got["status"] == "ok" and got["label"] == want["label"]
            assert abs(float(got["top1_score"]) - float(want["top1_score"])) < TOLERANCE
            assert abs(float(got["unknown_score"]) - float(want["unknown_score"])) < TOLERANCE
    assert len(list((tmp_path / "cache" / "behavior" / "onnx").glob("*/model.onnx"))) == 1  # exported once

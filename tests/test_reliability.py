"""Hostile and broken input on every path: a corpus of bad files that the tests build themselves, met by
`behavior check`, training, evaluation, `predict` and live mode; decoders that stall; entries that point
outside the data root; memory over many reads. Nothing in the corpus may be modified or deleted.

What each bad file must give, per path (docs/reliability.md has the table):
- check: ok=false with an error naming the file (ok=true for the valid odd ones);
- train: skipped and counted in metrics.jsonl `failed` (or an error naming it with data.on_error=raise);
- evaluate: refused, exit 3, unless --allow-failed;
- predict: an error row, every good file still predicted, exit 3;
- live: exit 2 and one clear line for a source that cannot be opened, a clean end for one that breaks off.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import REAL_CLIPS, coded_frames, tiny_overrides

import behavior.tools.check as check_module
from behavior.cli import main
from behavior.data.decord_reader import DecordReader
from behavior.data.pyav_reader import PyAVReader
from behavior.data.splits import RootIndex, read_annotations, read_split_list
from behavior.data.video import Video
from behavior.data.video_info import MAX_FRAME_PIXELS
from behavior.data.writer import write_video
from behavior.errors import SplitFileError, VideoError

CLASSES = ["walk", "run", "wave", "sit_down", "stand_up"]  # the classes of tiny_synth and tiny_run


def record_figures(section: str, figures: dict) -> None:
    """Merge `figures` into the JSON file named by BEHAVIOR_RELIABILITY_RESULTS, when it is set."""
    target = os.environ.get("BEHAVIOR_RELIABILITY_RESULTS")
    if not target:
        return
    path = Path(target)
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[section] = figures
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One file of the corpus and what the reader must make of it."""

    name: str  # file name in the corpus
    kind: str  # what is wrong with it, for the report
    outcome: str  # "ok" (reads), "prefix" (reads the frames before the cut), "error", "folder" (not a video)
    reason: str = ""  # a regular expression the error must match (besides naming the file)
    source_frames: int = 0  # "prefix": frames of the uncut video, more than the cut one gives


def _exp_golomb(value: int) -> str:
    bits = f"{value + 1:b}"
    return "0" * (len(bits) - 1) + bits


def _rewrite_sps(nal: bytes, width_mbs: int, height_mbs: int) -> bytes:
    """The H.264 sequence parameter set `nal` (High profile, as libx264 writes it) declaring another frame size in
    macroblocks, padded to the same length so that no box size in the file changes."""
    raw = nal[1:].replace(b"\x00\x00\x03", b"\x00\x00")  # emulation prevention bytes out
    bits = "".join(f"{b:08b}" for b in raw)
    position = 0

    def read(n: int) -> int:
        nonlocal position
        position += n
        return int(bits[position - n : position], 2) if n else 0

    def read_ue() -> int:
        nonlocal position
        zeros = bits.index("1", position) - position
        position += zeros + 1
        return (1 << zeros) - 1 + read(zeros)

    profile = read(8)
    read(16)  # constraint flags, level
    read_ue()  # seq_parameter_set_id
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128):
        if read_ue() == 3:  # chroma_format_idc
            read(1)
        read_ue(), read_ue(), read(1)  # bit depths, qpprime_y_zero_transform_bypass_flag
        assert read(1) == 0, "scaling matrices are not handled"
    read_ue()  # log2_max_frame_num_minus4
    poc_type = read_ue()
    assert poc_type in (0, 2), "pic_order_cnt_type 1 is not handled"
    if poc_type == 0:
        read_ue()
    read_ue(), read(1)  # max_num_ref_frames, gaps_in_frame_num_value_allowed_flag
    head = bits[:position]
    read_ue(), read_ue()  # the old width and height
    assert read(1) == 1, "interlaced streams are not handled"  # frame_mbs_only_flag
    direct_8x8 = read(1)
    # new size, frame_mbs_only, direct_8x8, no cropping, no VUI, then the rbsp stop bit
    out = head + _exp_golomb(width_mbs - 1) + _exp_golomb(height_mbs - 1) + f"1{direct_8x8}00" + "1"
    out += "0" * (-len(out) % 8)
    body = bytes(int(out[i : i + 8], 2) for i in range(0, len(out), 8))
    body = re.sub(rb"\x00\x00(?=[\x00-\x03])", b"\x00\x00\x03", body)  # emulation prevention bytes back in
    assert len(body) < len(nal)
    return nal[:1] + body + b"\x00" * (len(nal) - 1 - len(body))


def write_size_bomb(source_mp4: Path, path: Path, width: int, height: int) -> Path:
    """A copy of a small H.264 MP4 whose headers declare `width` x `height` frames: a few KB on disk, gigabytes
    once decoded (the decoder conceals the missing picture and returns full-size frames)."""
    data = bytearray(source_mp4.read_bytes())
    avcc = data.index(b"avcC") + 4
    length = struct.unpack(">H", data[avcc + 6 : avcc + 8])[0]
    data[avcc + 8 : avcc + 8 + length] = _rewrite_sps(
        bytes(data[avcc + 8 : avcc + 8 + length]), width // 16, height // 16
    )
    struct.pack_into(">HH", data, data.index(b"avc1") + 4 + 24, width, height)  # the sample entry's size
    tkhd = data.index(b"tkhd") - 4
    size = struct.unpack(">I", data[tkhd : tkhd + 4])[0]
    struct.pack_into(">II", data, tkhd + size - 8, width << 16, height << 16)  # the track's display size
    path.write_bytes(bytes(data))
    return path


def write_audio_only(path: Path) -> Path:
    """An MP4 holding one AAC audio stream and no video: 1.3 s of silence."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def remux_faststart(source: Path, path: Path) -> Path:
    """The video stream of `source` in an MP4 whose index (moov) comes first, as streaming sites write them: a cut
    copy then still declares every frame."""
    with av.open(str(source)) as src, av.open(str(path), "w", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    return path


def cut(source: Path, path: Path, fraction: float) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def build_corpus(folder: Path) -> dict[str, Case]:
    """Write every bad (and valid but odd) file into `folder`; the real clips are used when present."""
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder.parent / f"{folder.name}-sources"
    scratch.mkdir(exist_ok=True)
    mp4 = write_video(scratch / "source.mp4", coded_frames(30), fps=10, quality=12)
    avi = write_video(scratch / "source.avi", coded_frames(30), fps=10, quality=12)
    faststart = remux_faststart(mp4, scratch / "faststart.mp4")
    cases = [
        Case("good.mp4", "valid control", "ok"),
        Case("zero-byte.mp4", "zero-byte file", "error", "empty file"),
        Case("random-bytes.mp4", "random bytes, video extension", "error", "cannot be read"),
        Case("text-renamed.mp4", "text renamed to .mp4", "error", "cannot be read"),
        Case("x.mp4", "a folder named x.mp4", "folder"),
        Case("loop.mp4", "symlink loop (points to itself)", "error", "symbolic link"),
        Case("vidéo été 01.mp4", "non-ASCII name with spaces (valid)", "ok"),
        Case("single-frame.mp4", "1-frame video (valid)", "ok"),
        Case("audio-only.mp4", "audio only (AAC), no video stream", "error", "no video stream"),
        Case(
            "bomb-12000x12000.mp4",
            "declares 12000x12000 frames (size bomb)",
            "error",
            "declares 12000x12000 frames",
        ),
        Case("wide-16000x16.mp4", "16000x16 frames (valid, extreme aspect)", "ok"),
        Case("cut10.mp4", "synthetic MP4 cut at 10 %", "error", "cannot be read"),
        Case("cut50.mp4", "synthetic MP4 cut at 50 % (index at the end: lost)", "error", "cannot be read"),
        Case("cut90.mp4", "synthetic MP4 cut at 90 %", "error", "cannot be read"),
        Case("cut-faststart40.mp4", "synthetic MP4, index first, cut at 40 %", "prefix", source_frames=30),
        Case("cut-faststart80.mp4", "synthetic MP4, index first, cut at 80 %", "prefix", source_frames=30),
        Case("cut50.avi", "synthetic AVI cut at 50 %", "prefix", source_frames=30),
    ]
    cut(mp4, folder / "cut10.mp4", 0.1)
    cut(mp4, folder / "cut50.mp4", 0.5)
    cut(mp4, folder / "cut90.mp4", 0.9)
    cut(faststart, folder / "cut-faststart40.mp4", 0.4)
    cut(faststart, folder / "cut-faststart80.mp4", 0.8)
    cut(avi, folder / "cut50.avi", 0.5)
    shutil.copy(mp4, folder / "good.mp4")
    (folder / "zero-byte.mp4").write_bytes(b"")
    (folder / "random-bytes.mp4").write_bytes(np.random.default_rng(0).bytes(20_000))
    (folder / "text-renamed.mp4").write_text("these are notes, not a video\n" * 100)
    (folder / "x.mp4").mkdir()
    os.symlink("loop.mp4", folder / "loop.mp4")
    shutil.copy(mp4, folder / "vidéo été 01.mp4")
    write_video(folder / "single-frame.mp4", coded_frames(1), fps=10, quality=12)
    write_audio_only(folder / "audio-only.mp4")
    write_size_bomb(mp4, folder / "bomb-12000x12000.mp4", 12000, 12000)
    wide = np.random.default_rng(1).integers(0, 256, (6, 16, 16000, 3), dtype=np.uint8)
    write_video(folder / "wide-16000x16.mp4", wide, fps=10)
    if (REAL_CLIPS / "MANIFEST.tsv").is_file():
        cases += [
            Case(
                "real-cut50-weightlifting.mp4",
                "real MP4 (index first) cut at 50 %",
                "prefix",
                source_frames=355,
            ),
            Case(
                "real-cut60-tai-chi.mp4", "real MP4 (index at the end) cut at 60 %", "error", "cannot be read"
            ),
            Case("real-cut50-archery.avi", "real AVI (XVID + mp3) cut at 50 %", "prefix", source_frames=131),
        ]
        cut(
            REAL_CLIPS / "activitynet_v_GGSY1Qvo990_weightlifting.mp4",
            folder / "real-cut50-weightlifting.mp4",
            0.5,
        )
        cut(REAL_CLIPS / "stgcn_tai_chi_kinetics.mp4", folder / "real-cut60-tai-chi.mp4", 0.6)
        cut(REAL_CLIPS / "paddlevideo_example_archery_kinetics.avi", folder / "real-cut50-archery.avi", 0.5)
    shutil.rmtree(scratch)
    return {case.name: case for case in cases}


def snapshot(folder: Path) -> dict[str, tuple]:
    """Name, type, permissions, size, mtime and content hash of everything under `folder` (links not followed)."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = os.lstat(path)
            digest = None
            if stat.S_ISREG(info.st_mode) and os.access(path, os.R_OK):
                digest = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
            link = os.readlink(path) if stat.S_ISLNK(info.st_mode) else None
            entries[str(path.relative_to(folder))] = (
                stat.S_IFMT(info.st_mode),
                stat.S_IMODE(info.st_mode),
                info.st_size,
                info.st_mtime_ns,
                digest,
                link,
            )
    return entries


@dataclass
class Corpus:
    folder: Path
    cases: dict[str, Case]
    before: dict[str, tuple]

    def names(self, *outcomes: str) -> set[str]:
        return {name for name, case in self.cases.items() if case.outcome in outcomes}

    def assert_untouched(self) -> None:
        assert snapshot(self.folder) == self.before, "a bad file was modified, moved or deleted"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    folder = tmp_path_factory.mktemp("corpus") / "bad"
    cases = build_corpus(folder)
    return Corpus(folder, cases, snapshot(folder))


def _place(case: Case, source: Path, target: Path) -> None:
    """Put a corpus entry into a data root as it is: a file copied with its times, the link or folder made anew."""
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    elif source.is_dir():
        target.mkdir()
    else:
        shutil.copy2(source, target)


@dataclass
class BadRoot:
    """A UCF101-style data root (the classes of tiny_run) whose train and test lists name every corpus entry."""

    data: Path  # holds videos/ and splits/
    cases: dict[str, Case]
    before: dict[str, tuple]
    num_good_train: int
    num_good_test: int

    def assert_untouched(self) -> None:
        assert snapshot(self.data) == self.before, "a file of the data root was modified, moved or deleted"


@pytest.fixture(scope="module")
def bad_root(corpus, tiny_synth, tmp_path_factory) -> BadRoot:
    data = tmp_path_factory.mktemp("badroot")
    (data / "splits").mkdir()
    shutil.copy(tiny_synth / "splits" / "classInd.txt", data / "splits")
    train_lines, test_lines = [], []
    for listing, lines in (("trainlist01.txt", train_lines), ("testlist01.txt", test_lines)):
        seen = set()
        for line in (tiny_synth / "splits" / listing).read_text().splitlines():
            entry = line.split()[0]
            if entry.split("/")[0] not in seen:  # one good video per class
                seen.add(entry.split("/")[0])
                (data / "videos" / entry).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(tiny_synth / "videos" / entry, data / "videos" / entry)
                lines.append(line)
    for name, case in corpus.cases.items():
        _place(case, corpus.folder / name, data / "videos" / "walk" / name)
        train_lines.append(f"walk/{name} 1")
        test_lines.append(f"walk/{name}")
    (data / "splits" / "trainlist01.txt").write_text("\n".join(train_lines) + "\n")
    (data / "splits" / "testlist01.txt").write_text("\n".join(test_lines) + "\n")
    return BadRoot(data, corpus.cases, snapshot(data), len(CLASSES), len(CLASSES))


def _error_matches(case: Case, path_name: str, error: str) -> bool:
    return path_name in error and re.search(case.reason, error) is not None


# ---------------------------------------------------------------------------------------------------------------
# Each path meets each bad file
# ---------------------------------------------------------------------------------------------------------------


def test_check_reports_every_bad_file_and_passes_the_valid_odd_ones(corpus, tmp_path, capsys):
    report = tmp_path / "report.json"
    assert (
        main(["check", str(corpus.folder), "--json", str(report), "--workers", "2", "--timeout", "60"]) == 3
    )
    entries = {Path(v["path"]).name: v for v in json.loads(report.read_text())["videos"]}
    assert set(entries) == corpus.names("ok", "prefix", "error")  # the folder named x.mp4 is a folder
    for name, case in corpus.cases.items():
        entry = entries.get(name)
        if case.outcome == "ok":
            assert entry["ok"] and entry["frames"] >= 1, (name, entry)
        elif case.outcome == "prefix":
            assert entry["ok"] and 1 <= entry["frames"] < case.source_frames, (name, entry)
        elif case.outcome == "error":
            assert not entry["ok"] and _error_matches(case, name, entry["error"]), (name, entry)
    assert f"{len(corpus.names('error'))} unreadable" in capsys.readouterr().out
    corpus.assert_untouched()
    record_figures("check", {name: ("ok" if e["ok"] else "error") for name, e in sorted(entries.items())})


def _train_args(data: Path, out: Path, config: Path, **extra) -> list[str]:
    config.write_text("{}\n")
    args = ["train", "--config", str(config), "--out", str(out)]
    for item in tiny_overrides(data, **{"train.epochs": 1, "data.val_fraction": 0.0, **extra}):
        args += ["--set", item]
    return args


def test_training_skips_and_counts_every_bad_file_or_stops_naming_it(bad_root, tmp_path, capsys):
    errors = {n for n, c in bad_root.cases.items() if c.outcome == "error"}
    readable = {n for n, c in bad_root.cases.items() if c.outcome in ("ok", "prefix")}
    run = tmp_path / "run"
    assert main(_train_args(bad_root.data, run, tmp_path / "none.yaml", **{"data.num_workers": 2})) == 0
    out = capsys.readouterr().out
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert row["failed"] == len(errors) and row["clips"] == bad_root.num_good_train + len(readable)
    skipped = re.findall(r"^skipped: (.*)$", out, flags=re.MULTILINE)
    assert len(skipped) == len(errors)
    for name in errors:
        assert sum(_error_matches(bad_root.cases[name], name, line) for line in skipped) == 1, name
    # the folder named x.mp4 is no video: listed in the train and the test list, it is missing from disk twice
    assert "2 listed videos are missing from disk" in out and "walk/x.mp4" in out
    bad_root.assert_untouched()

    assert (
        main(
            _train_args(
                bad_root.data,
                tmp_path / "stops",
                tmp_path / "none.yaml",
                **{"data.on_error": "raise", "data.num_workers": 2},
            )
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "behavior train: error: " in err and "Traceback" not in err
    assert any(f"walk/{name}: " in err for name in errors) and "data.on_error=raise" in err
    bad_root.assert_untouched()
    record_figures("train", {"failed": row["failed"], "clips": row["clips"], "skipped": sorted(errors)})


def test_evaluation_refuses_a_split_with_bad_files_unless_allowed(tiny_run, bad_root, tmp_path, capsys):
    errors = {n for n, c in bad_root.cases.items() if c.outcome == "error"}
    readable = {n for n, c in bad_root.cases.items() if c.outcome in ("ok", "prefix")}
    out = tmp_path / "eval"
    args = [
        "evaluate",
        "--checkpoint",
        str(tiny_run / "best.pt"),
        "--data",
        str(bad_root.data / "videos"),
        "--splits",
        str(bad_root.data / "splits"),
        "--out",
        str(out),
        "--workers",
        "2",
    ]
    assert main(args) == 3
    err = capsys.readouterr().err
    assert "refused" in err and "--allow-failed" in err and "Traceback" not in err
    assert all(f"walk/{name}: " in err for name in errors) and "walk/x.mp4" in err
    assert not out.exists() or not (out / "metrics.json").exists()
    assert main([*args, "--allow-failed"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {Path(f["path"]).name for f in metrics["failed"]} == errors
    assert metrics["num_missing"] == 2 and all(
        "walk/x.mp4" in m["path"] for m in metrics["missing"]
    )  # both lists
    assert metrics["num_scored"] == bad_root.num_good_test + len(readable)
    bad_root.assert_untouched()
    record_figures(
        "evaluate",
        {
            "refused_exit": 3,
            "failed": len(errors),
            "missing": 2,
            "scored_with_allow_failed": metrics["num_scored"],
        },
    )


def test_predict_writes_an_error_row_per_bad_file_and_predicts_every_good_one(
    tiny_run, corpus, tmp_path, capsys
):
    from behavior.tools.rows import read_rows

    out = tmp_path / "predictions.csv"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(tiny_run / "best.pt"),
                str(corpus.folder),
                "--out",
                str(out),
                "--workers",
                "2",
                "--batch-size",
                "4",
            ]
        )
        == 3
    )
    rows = read_rows(out)
    by_name = {Path(r["path"]).name: r for r in rows}
    assert len(rows) == len(by_name) and set(by_name) == corpus.names("ok", "prefix", "error")
    for name, row in by_name.items():
        case = corpus.cases[name]
        if case.outcome == "error":
            assert row["status"] == "error" and _error_matches(case, name, row["error"]), (name, row)
        else:
            assert row["status"] == "ok" and row["label"] in CLASSES and int(row["frames"]) >= 1, (name, row)
    errors = len(corpus.names("error"))
    assert f"{errors} of {len(rows)} rows are errors" in capsys.readouterr().err
    corpus.assert_untouched()
    record_figures("predict", {name: row["status"] for name, row in sorted(by_name.items())})


def test_live_mode_ends_cleanly_on_every_bad_source(tiny_run, corpus, tmp_path, capsys):
    outcomes = {}
    for name, case in corpus.cases.items():
        args = [
            "live",
            "--checkpoint",
            str(tiny_run / "best.pt"),
            "--source",
            str(corpus.folder / name),
            "--out",
            str(tmp_path / "annotated.mp4"),
        ]
        if case.outcome in ("ok", "prefix"):
            args += ["--max-frames", "12"]
        status = main(args)
        text = capsys.readouterr()
        assert "Traceback" not in text.err, (name, text.err)
        if case.outcome in ("ok", "prefix"):  # a cut file plays up to the cut; the output is finalised
            assert status == 0 and "live: " in text.out, (name, text)
            outcomes[name] = "ok" if "the stream stopped" not in text.err else "ends at the cut, exit 0"
        else:
            lines = text.err.strip().splitlines()
            assert status == 2 and len(lines) == 1 and lines[0].startswith("behavior live: error: "), (
                name,
                text.err,
            )
            assert name in lines[0], (name, lines)
            outcomes[name] = "exit 2"
    corpus.assert_untouched()
    record_figures("live", outcomes)


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="runs as root: chmod 000 does not stop root from reading, so an unreadable file cannot be made",
)
def test_a_file_without_read_permission_is_reported_everywhere(tiny_run, tmp_path, capsys):
    from behavior.tools.rows import read_rows

    (tmp_path / "in").mkdir()
    locked = write_video(tmp_path / "in" / "locked.mp4", coded_frames(10), fps=10)
    locked.chmod(0)
    try:
        assert main(["check", str(locked), "--workers", "1"]) == 3
        assert "locked.mp4" in capsys.readouterr().out
        assert (
            main(
                [
                    "predict",
                    "--checkpoint",
                    str(tiny_run / "best.pt"),
                    str(locked.parent),
                    "--out",
                    str(tmp_path / "p.csv"),
                    "--workers",
                    "0",
                ]
            )
            == 3
        )
        row = read_rows(tmp_path / "p.csv")[0]
        assert (
            row["status"] == "error" and "permission denied" in row["error"] and "locked.mp4" in row["error"]
        )
        assert (
            main(
                [
                    "live",
                    "--checkpoint",
                    str(tiny_run / "best.pt"),
                    "--source",
                    str(locked),
                    "--out",
                    str(tmp_path / "o.mp4"),
                ]
            )
            == 2
        )
        assert "locked.mp4" in capsys.readouterr().err
    finally:
        locked.chmod(0o644)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv, to run the commands as the unprivileged user nobody",
)
def test_a_file_without_read_permission_is_reported_everywhere_as_an_unprivileged_user(tiny_run):
    """The same as above where the tests run as root (CI does): the commands run as nobody (uid 65534)."""
    import tempfile

    from behavior.tools.rows import read_rows

    shared = Path(tempfile.mkdtemp(prefix="behavior-permission-"))  # pytest's own tmp folders are root-only
    try:
        shared.chmod(0o777)
        (shared / "in").mkdir(mode=0o755)
        locked = write_video(shared / "in" / "locked.mp4", coded_frames(10), fps=10)
        locked.chmod(0)
        checkpoint = Path(shutil.copy(tiny_run / "best.pt", shared / "best.pt"))
        checkpoint.chmod(0o644)
        env = {**os.environ, "HOME": str(shared), "MPLCONFIGDIR": str(shared / "mpl"), "OMP_NUM_THREADS": "1"}

        def as_nobody(*args: str, program: str = "behavior") -> subprocess.CompletedProcess:
            command = [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                str(Path(sys.executable).with_name(program)),
                *args,
            ]
            return subprocess.run(command, capture_output=True, text=True, env=env, cwd=shared, timeout=300)

        # check's per-video job, in-process: multiprocessing's semaphores are not available to nobody in every
        # sandbox, and the pool is not what is tested here
        checked = as_nobody(
            "-c",
            "import json, sys; from behavior.tools.check import inspect_video; "
            "print(json.dumps(inspect_video(sys.argv[1])))",
            str(locked),
            program="python",
        )
        report = json.loads(checked.stdout.strip().splitlines()[-1])
        assert (
            not report["ok"] and "permission denied" in report["error"] and "locked.mp4" in report["error"]
        ), report
        predicted = as_nobody(
            "predict",
            "--checkpoint",
            str(checkpoint),
            str(locked.parent),
            "--out",
            str(shared / "p.csv"),
            "--workers",
            "0",
        )
        assert predicted.returncode == 3, predicted.stderr
        row = read_rows(shared / "p.csv")[0]
        assert (
            row["status"] == "error" and "permission denied" in row["error"] and "locked.mp4" in row["error"]
        )
        live = as_nobody(
            "live", "--checkpoint", str(checkpoint), "--source", str(locked), "--out", str(shared / "o.mp4")
        )
        assert live.returncode == 2 and "locked.mp4" in live.stderr, live.stderr
    finally:
        shutil.rmtree(shared, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# Nothing hangs: a decoder that stalls is cut off
# ---------------------------------------------------------------------------------------------------------------


def _stalling_inspect_item(item: tuple[str, str]) -> dict:
    """check's per-video job, except that decoding stall.mp4 never returns. Runs in check's spawned workers, which
    import this module by name, so the stall is the same there as here."""
    if "stall" in Path(item[0]).name:
        time.sleep(3600)
    return check_module.inspect_video(*item)


@pytest.fixture
def stall_folder(tmp_path) -> Path:
    """Five valid videos; the decoder will hang on the third, 3-stall.mp4."""
    folder = tmp_path / "stall"
    folder.mkdir()
    for i, name in enumerate(["1.mp4", "2.mp4", "3-stall.mp4", "4.mp4", "5.mp4"]):
        write_video(folder / name, coded_frames(12, seed=i), fps=10)
    return folder


def test_check_cuts_off_a_decoder_that_stalls(stall_folder, monkeypatch):
    monkeypatch.setattr(check_module, "_inspect_item", _stalling_inspect_item)
    started = time.perf_counter()
    report = check_module.check_paths([stall_folder], workers=2, timeout_s=8.0)
    seconds = time.perf_counter() - started
    by_name = {Path(v.path).name: v for v in report.videos}
    stalled = by_name["3-stall.mp4"]
    assert (
        not stalled.ok and "stalled: no result within 8 s" in stalled.error and "3-stall.mp4" in stalled.error
    )
    assert all(v.ok for name, v in by_name.items() if name != "3-stall.mp4") and len(by_name) == 5
    assert seconds < 60
    record_figures("stall_check", {"timeout_s": 8.0, "seconds": round(seconds, 1), "videos": len(by_name)})


@pytest.mark.skipif(
    __import__("multiprocessing").get_start_method() != "fork",
    reason="the stall is patched into this process; DataLoader workers inherit it only when forked",
)
def test_predict_cuts_off_a_decoder_that_stalls_and_predicts_the_rest(
    tiny_run, stall_folder, tmp_path, monkeypatch
):
    from behavior.tools.predict import predict
    from behavior.tools.rows import read_rows

    for backend in (DecordReader, PyAVReader):
        real = backend.get_frames

        def stalls(self, indices, last=False, real=real):
            if Path(self.info.path).name == "3-stall.mp4":
                time.sleep(3600)  # a decoder that never returns; the worker is terminated
            return real(self, indices, last)

        monkeypatch.setattr(backend, "get_frames", stalls)
    out = tmp_path / "p.csv"
    started = time.perf_counter()
    summary = predict(tiny_run / "best.pt", [stall_folder], out=out, batch_size=2, workers=2, timeout_s=2.0)
    seconds = time.perf_counter() - started
    rows = {Path(r["path"]).name: r for r in read_rows(out)}
    assert len(rows) == 5 and summary.num_failed == 1
    stalled = rows["3-stall.mp4"]
    assert stalled["status"] == "error" and "stalled: no result within 2 s" in stalled["error"]
    assert all(r["status"] == "ok" for name, r in rows.items() if name != "3-stall.mp4")
    assert seconds < 60
    record_figures(
        "stall_predict",
        {"timeout_s": 2.0, "batch_size": 2, "seconds": round(seconds, 1), "videos": len(rows)},
    )


# ---------------------------------------------------------------------------------------------------------------
# Memory: a decompression bomb is refused cheaply, and reads do not leak
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="the peak is read from /proc (Linux)")
def test_a_size_bomb_is_refused_before_it_is_decoded(corpus):
    """The bomb is a few KB declaring 12000x12000 frames: decoding 8 of them took 8.5-10.5 GB before the limit.
    Each backend reads it in a fresh process, whose peak resident memory (VmHWM) belongs to this read alone."""
    bomb = corpus.folder / "bomb-12000x12000.mp4"
    assert 12000 * 12000 > MAX_FRAME_PIXELS
    code = (
        "import re, sys\nfrom behavior.data.video import Video\nfrom behavior.errors import VideoError\ntry:\n"
        "    Video(sys.argv[1], backend=sys.argv[2], short_side=36).get_frames(range(8))\n    print('decoded')\n"
        "except VideoError as exc:\n    print(exc)\n"
        "print(int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) // 1024)"
    )
    peaks = {}
    for backend in ("auto", "decord", "pyav"):
        result = subprocess.run(
            [sys.executable, "-c", code, str(bomb), backend], capture_output=True, text=True, timeout=120
        )
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 2, result.stderr[-2000:]
        assert "declares 12000x12000 frames" in lines[0] and str(bomb) in lines[0], lines[0]
        peaks[backend] = int(lines[1])
    # ffmpeg's own header probe (avformat_find_stream_info) decodes one frame, ~0.4 GB here; nothing beyond it
    assert max(peaks.values()) < 1024, peaks
    record_figures(
        "size_bomb", {"declared": "12000x12000", "file_kb": bomb.stat().st_size // 1024, "peak_rss_mb": peaks}
    )


def test_two_hundred_reads_with_bad_files_between_do_not_grow_memory(corpus):
    import psutil

    from behavior.config import SamplerConfig, TransformConfig
    from behavior.data.datasets import ClipDataset, SafeClips
    from behavior.data.splits import VideoSample
    from behavior.data.transforms import ClipTransform
    from behavior.models.registry import IMAGENET_MEAN, IMAGENET_STD

    names = sorted(corpus.names("ok", "prefix", "error") - {"bomb-12000x12000.mp4"})
    samples = [VideoSample(str(corpus.folder / name), 0) for name in names]
    clips = SafeClips(
        ClipDataset(
            samples,
            SamplerConfig(num_frames=4),
            ClipTransform(
                TransformConfig(resize=36, crop=32, mean=IMAGENET_MEAN, std=IMAGENET_STD), train=True
            ),
            train=True,
            decode_short_side=36,
        )
    )
    process = psutil.Process()
    rss = []
    for i in range(200):
        clips.dataset.set_epoch(i // len(clips))
        clips[i % len(clips)]
        rss.append(process.memory_info().rss / 2**20)
    warm = 2 * len(clips)  # every file read twice first: decoders, allocator and transform caches settle
    growth = max(rss[warm:]) - rss[warm]
    assert growth < 20, f"RSS grew {growth:.1f} MB over {200 - warm} reads"
    record_figures(
        "memory_fast",
        {
            "reads": 200,
            "warm_up_reads": warm,
            "files": len(names),
            "rss_growth_mb": round(growth, 1),
            "rss_mb": round(rss[-1]),
        },
    )


# ---------------------------------------------------------------------------------------------------------------
# Entries that point outside the data root
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        "/etc/passwd",
        "../outside.mp4",
        "walk/../../outside.mp4",
        "walk\\..\\..\\x.mp4",
        "C:\\videos\\x.mp4",
        "c:x.mp4",
        "\\\\server\\share\\x.mp4",
        "walk/\x00.mp4",
    ],
)
def test_split_and_annotation_entries_outside_the_root_are_refused(ucf_root, tmp_path, entry):
    root, _ = ucf_root
    index, classes = RootIndex(root), ["Walk", "HandstandPushups"]
    listing = tmp_path / "trainlist01.txt"
    listing.write_text(f"Walk/v_Walk_g01_c01.avi 1\n{entry} 1\n")
    with pytest.raises(SplitFileError, match=r"trainlist01.txt:2: .*(absolute|outside)"):
        read_split_list(listing, index, classes)
    annotations = tmp_path / "train.csv"
    annotations.write_text(f'path,label\nWalk/v_Walk_g01_c01.avi,Walk\n"{entry}",Walk\n')
    with pytest.raises(SplitFileError, match=r"train.csv:3: .*(absolute|outside)"):
        read_annotations(annotations, index, classes)


def test_a_symlink_inside_the_root_is_followed(ucf_root, tmp_path, capsys):
    """Lexically, entries must stay inside the root. A symlink placed inside the root is trusted and followed
    (datasets often link class folders to other disks): whoever can create links in the root already decides
    what is read, while a list file alone can never name a path outside it."""
    root, splits = ucf_root
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(root / "Walk" / "v_Walk_g01_c01.avi", outside / "v_Walk_g05_c01.avi")
    os.symlink(outside, root / "Walk" / "linked")
    listing = tmp_path / "trainlist02.txt"
    listing.write_text("Walk/linked/v_Walk_g05_c01.avi 1\n")
    found = read_split_list(listing, RootIndex(root), ["Walk", "HandstandPushups"])
    assert [Path(s.path) for s in found.samples] == [root / "Walk" / "linked" / "v_Walk_g05_c01.avi"]
    evil = tmp_path / "evil.csv"
    evil.write_text(f"{outside / 'v_Walk_g05_c01.avi'},Walk\n")
    assert main(["check", str(root), "--annotations", str(evil)]) == 2
    assert "evil.csv:1: " in capsys.readouterr().err


def test_the_video_reader_names_each_bad_file(corpus):
    """The reader under every path: the error names the file and says what is wrong."""
    for name, case in corpus.cases.items():
        path = corpus.folder / name
        if case.outcome in ("ok", "prefix"):
            with Video(path) as video:
                assert video.get_frames([0, video.info.num_frames - 1]).shape[0] == 2
        else:
            with pytest.raises(VideoError) as error, Video(path) as video:
                video.get_frames(range(video.info.num_frames))
            assert name in str(error.value) and (
                case.outcome == "folder" or re.search(case.reason, str(error.value))
            )

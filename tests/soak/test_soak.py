"""Soak: kills at random moments, and memory over thousands of reads. Minutes, not seconds: `make soak` runs
these (`pytest tests/soak`); the default test run leaves this folder out (norecursedirs in pyproject.toml).

Each test writes its figures (trials, kills survived, rows or checkpoints lost, RSS growth) into the JSON file
named by BEHAVIOR_SOAK_RESULTS, by default runs/soak/results.json (git-ignored), which docs/reliability.md quotes.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_overrides

from behavior.engine.checkpoint import load_checkpoint
from behavior.errors import CheckpointError

REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(os.environ.get("BEHAVIOR_SOAK_RESULTS", REPO / "runs" / "soak" / "results.json"))
BEHAVIOR = str(Path(sys.executable).with_name("behavior"))
SEED = 20240611  # the kill moments are drawn from this seed: a failing trial can be replayed
EPOCHS = 3


def record(section: str, figures: dict) -> None:
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    data[section] = {
        **figures,
        "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")


def _start(command: list[str], log: Path) -> subprocess.Popen:
    """A command in its own process group (so that a kill takes its DataLoader workers too), output to `log`."""
    handle = open(log, "ab")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _finish(process: subprocess.Popen, timeout: float = 600) -> int:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(process)
        raise


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------


def _train_command(synth: Path, out: Path, config: Path, resume: bool) -> list[str]:
    command = [BEHAVIOR, "train", "--config", str(config), "--out", str(out)] + (
        ["--resume"] if resume else []
    )
    for item in tiny_overrides(synth, **{"train.epochs": EPOCHS, "data.num_workers": 2, "train.threads": 1}):
        command += ["--set", item]
    return command


def _checkpoints_load(run: Path) -> tuple[int, list[str]]:
    """How many checkpoints the run folder holds, and the ones that do not load (target: none)."""
    names = sorted(run.glob("*.pt"))
    broken = []
    for path in names:
        try:
            load_checkpoint(path)
        except (CheckpointError, FileNotFoundError) as exc:
            broken.append(f"{path.name}: {exc}")
    return len(names), broken


def _kill_at(process: subprocess.Popen, run: Path, delay: float | None, nth_write: int | None) -> str:
    """Kill after `delay` seconds, or the moment the `nth_write`-th checkpoint write has begun (its temporary
    file appears). Returns when the kill landed ("done" when the process finished first)."""
    started = time.perf_counter()
    seen: list[str] = []  # temporary checkpoint files, in the order they appeared
    while process.poll() is None:
        if delay is not None and time.perf_counter() - started >= delay:
            _kill(process)
            return f"at {delay:.1f} s"
        if nth_write is not None:
            seen += sorted({p.name for p in run.glob(".*.pt.*.tmp")} - set(seen))
            if len(seen) >= nth_write:
                _kill(process)
                return f"during checkpoint write {nth_write} ({seen[nth_write - 1].split('.')[1]}.pt)"
            time.sleep(0.0005)
        else:
            time.sleep(0.01)
    return "done"


def test_training_killed_at_random_moments_resumes_to_the_same_weights(tiny_synth, tmp_path):
    config = tmp_path / "none.yaml"
    config.write_text("{}\n")
    started = time.perf_counter()
    reference = tmp_path / "reference"
    assert (
        _finish(_start(_train_command(tiny_synth, reference, config, False), tmp_path / "reference.log")) == 0
    )
    reference_seconds = time.perf_counter() - started
    expected = load_checkpoint(reference / "last.pt")["model"]
    expected_best = load_checkpoint(reference / "best.pt")["model"]
    expected_rows = [(e, s) for e in range(1, EPOCHS + 1) for s in ("train", "val")]

    rng = np.random.default_rng(SEED)
    plans = [("random", [float(rng.uniform(1.0, reference_seconds)) for _ in range(2)]) for _ in range(5)]
    # the first checkpoint write of the run (last.pt), the second (best.pt) and one drawn from the rest
    plans += [("write", [1]), ("write", [2]), ("write", [int(rng.integers(3, 2 * EPOCHS + 1))])]
    trials, kills, broken_after_kill, lost, leftovers = [], 0, [], 0, 0
    for number, (kind, moments) in enumerate(plans):
        run = tmp_path / f"trial{number}"
        log = tmp_path / f"trial{number}.log"
        landed = []
        for moment in moments:
            resume = (run / "last.pt").exists()
            process = _start(_train_command(tiny_synth, run, config, resume), log)
            when = _kill_at(
                process, run, moment if kind == "random" else None, moment if kind == "write" else None
            )
            landed.append(when)
            if when == "done":
                continue
            kills += 1
            count, broken = _checkpoints_load(run)
            broken_after_kill += broken
        process = _start(_train_command(tiny_synth, run, config, (run / "last.pt").exists()), log)
        assert _finish(process) == 0, log.read_text()[-3000:]
        final = load_checkpoint(run / "last.pt")
        same = all(torch.equal(expected[k], final["model"][k]) for k in expected)
        best = load_checkpoint(run / "best.pt")["model"] if (run / "best.pt").exists() else None
        same_best = best is not None and all(torch.equal(expected_best[k], best[k]) for k in expected_best)
        rows = [
            (r["epoch"], r["split"])
            for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
        ]
        temporary = [p.name for p in run.glob(".*.tmp")]
        leftovers += len(temporary)
        lost += (not same) + (not same_best)
        trials.append(
            {
                "kind": kind,
                "kills": landed,
                "same_last": same,
                "same_best": same_best,
                "log_rows_ok": rows == expected_rows,
                "temporary_files_left": temporary,
            }
        )
        shutil.rmtree(run)
    record(
        "train_kills",
        {
            "trials": len(trials),
            "kills": kills,
            "reference_seconds": round(reference_seconds, 1),
            "checkpoints_unloadable_after_a_kill": len(broken_after_kill),
            "runs_not_reaching_the_reference_weights": lost,
            "temporary_files_left": leftovers,
            "seed": SEED,
            "details": trials,
        },
    )
    assert kills >= 5 and not broken_after_kill, broken_after_kill
    assert all(t["same_last"] and t["same_best"] and t["log_rows_ok"] for t in trials), trials


# ---------------------------------------------------------------------------------------------------------------
# Prediction
# ---------------------------------------------------------------------------------------------------------------


def _rows(path: Path) -> list[dict]:
    from behavior.tools.rows import read_rows

    return read_rows(path)


def test_predict_killed_at_random_moments_loses_and_repeats_no_row(tiny_run, tiny_synth, tmp_path):
    folder = tmp_path / "inbox"
    videos = sorted(p for p in (tiny_synth / "videos").rglob("*") if p.is_file())[:40]
    for video in videos:
        (folder / video.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(video, folder / video.parent.name / video.name)
    expected_paths = sorted(str(p) for p in folder.rglob("*") if p.is_file())
    assert len(expected_paths) == 40

    def command(out: Path) -> list[str]:
        return [
            BEHAVIOR,
            "predict",
            "--checkpoint",
            str(tiny_run / "best.pt"),
            str(folder),
            "--out",
            str(out),
            "--workers",
            "2",
            "--batch-size",
            "4",
        ]

    started = time.perf_counter()
    reference = tmp_path / "reference.csv"
    assert _finish(_start(command(reference), tmp_path / "reference.log")) == 0
    reference_seconds = time.perf_counter() - started
    truth = {r["path"]: (r["label"], float(r["score"])) for r in _rows(reference)}
    assert sorted(truth) == expected_paths

    rng = np.random.default_rng(SEED + 1)
    trials, kills, lost, duplicated, missing, differing = [], 0, 0, 0, 0, 0
    for number in range(6):
        out = tmp_path / f"trial{number}.{'csv' if number % 2 == 0 else 'jsonl'}"
        log = tmp_path / f"trial{number}.log"
        landed, written = [], set()
        for _ in range(2):  # killed, re-run and killed again, then re-run to the end
            process = _start(command(out), log)
            landed.append(_kill_at(process, tmp_path, float(rng.uniform(0.5, reference_seconds)), None))
            kills += landed[-1] != "done"
            now = {r["path"] for r in _rows(out)}
            lost += len(written - now)  # rows complete before a kill that a later run dropped
            written = now
        assert _finish(_start(command(out), log)) == 0, log.read_text()[-3000:]
        rows = _rows(out)
        lost += len(written - {r["path"] for r in rows})
        paths = [r["path"] for r in rows]
        duplicated += len(paths) - len(set(paths))
        missing += len(set(expected_paths) - set(paths))
        differing += sum((r["label"], float(r["score"])) != truth[r["path"]] for r in rows)
        trials.append({"output": out.suffix, "kills": landed, "rows": len(rows)})
    record(
        "predict_kills",
        {
            "trials": len(trials),
            "kills": kills,
            "videos": len(expected_paths),
            "reference_seconds": round(reference_seconds, 1),
            "rows_lost": lost,
            "rows_duplicated": duplicated,
            "rows_missing": missing,
            "rows_differing_from_an_uninterrupted_run": differing,
            "seed": SEED + 1,
            "details": trials,
        },
    )
    assert kills >= 5 and lost == duplicated == missing == differing == 0, trials


# ---------------------------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------------------------


def test_two_thousand_reads_across_workers_keep_memory_flat(tiny_synth):
    """2,000 reads after a warm-up of 600 (10 epochs of the 60 videos), in a fresh process with two persistent
    workers. Forked workers' RSS first rises as they write to pages they share with the parent (copy on write) and
    as their allocators settle; what must not happen is growth after that."""
    warm_up, measured = 600, 2000
    result = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("read_loop.py")),
            str(tiny_synth / "videos"),
            str(warm_up + measured),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    samples = figures["samples"]  # (reads so far, RSS of the process and its workers in MB, processes)
    start = next(rss for reads, rss, _ in samples if reads >= warm_up)
    growth = max(rss for reads, rss, _ in samples if reads >= warm_up) - start
    record(
        "memory_soak",
        {
            "reads": figures["reads"],
            "warm_up_reads": warm_up,
            "epochs": figures["epochs"],
            "videos": figures["videos"],
            "workers": 2,
            "processes_measured": samples[-1][2],
            "rss_mb_first_batch": round(samples[0][1], 1),
            "rss_mb_after_warm_up": round(start, 1),
            "rss_mb_at_end": round(samples[-1][1], 1),
            "rss_growth_mb_during_warm_up": round(start - samples[0][1], 1),
            "rss_growth_mb_after_warm_up": round(growth, 1),
            "seconds": round(figures["seconds"], 1),
        },
    )
    assert figures["reads"] - warm_up >= measured and samples[-1][2] == 3  # the process and its two workers
    assert growth <= 50, f"RSS of the process and its workers grew {growth:.1f} MB over {measured} reads"


@pytest.fixture(autouse=True, scope="module")
def _stamp_results():
    yield
    if RESULTS.is_file():
        print(f"\nsoak figures: {RESULTS}")


# ---------------------------------------------------------------------------------------------------------------
# A stall in long-video (window) mode
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(
    __import__("multiprocessing").get_start_method() != "fork",
    reason="the stall is patched into this process; DataLoader workers inherit it only when forked",
)
def test_predict_windows_cut_off_a_decoder_that_stalls(tiny_run, tiny_synth, tmp_path, monkeypatch):
    """Window mode cannot tell which video a hung worker holds: after the cut-off the unfinished videos go one at
    a time. The stalled one gets an error row; the others the same windows as a run without the stall."""
    from behavior.data.decord_reader import DecordReader
    from behavior.data.pyav_reader import PyAVReader
    from behavior.tools.predict import predict
    from behavior.tools.windows import WindowOptions

    folder = tmp_path / "inbox"
    folder.mkdir()
    videos = sorted(p for p in (tiny_synth / "videos").rglob("*") if p.is_file())[:5]
    for i, video in enumerate(videos):
        shutil.copy(video, folder / (f"{i}-stall{video.suffix}" if i == 2 else f"{i}{video.suffix}"))
    options = WindowOptions(0.5, 0.25)
    reference = tmp_path / "reference.jsonl"
    predict(tiny_run / "best.pt", [folder], out=reference, batch_size=2, workers=2, windows=options)
    for backend in (DecordReader, PyAVReader):
        real = backend.get_frames

        def stalls(self, indices, last=False, real=real):
            if "stall" in Path(self.info.path).name:
                time.sleep(3600)
            return real(self, indices, last)

        monkeypatch.setattr(backend, "get_frames", stalls)
    out = tmp_path / "stalled.jsonl"
    started = time.perf_counter()
    summary = predict(
        tiny_run / "best.pt", [folder], out=out, batch_size=2, workers=2, timeout_s=1.0, windows=options
    )
    seconds = time.perf_counter() - started
    expected = {r["path"]: r for r in _rows(reference)}
    rows = {r["path"]: r for r in _rows(out)}
    stalled = [r for r in rows.values() if "stall" in Path(r["path"]).name]
    assert (
        len(rows) == 5 and summary.num_failed == 1 and "stalled: no result within 2 s" in stalled[0]["error"]
    )
    good = [p for p, r in rows.items() if r["status"] == "ok"]
    assert len(good) == 4 and all(rows[p]["windows"] == expected[p]["windows"] for p in good)
    record(
        "stall_predict_windows",
        {"timeout_s_per_window": 1.0, "chunk": 2, "videos": 5, "seconds": round(seconds, 1)},
    )

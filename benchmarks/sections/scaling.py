"""Long videos: `behavior predict --window --stride` time and peak memory over videos of growing length, and
resident memory over many sequential reads.

Each predict runs in a fresh process; its RSS (process and children: the decoding workers) is sampled every
~50 ms for the peak. The videos are synthetic clips of known behaviours rendered back to back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
from harness import (
    REPO,
    Settings,
    memory_of_tree,
    section_result,
    shown,
    spread,
    synthetic_set,
    table,
    target,
    training_clip_seconds,
    untrained_checkpoint,
)
from longvideo import long_video

from behavior.splits import find_videos

TITLE = "Long videos: time and memory"
SAMPLE_EVERY_S = 0.05
LINEAR_SLACK = 1.25  # the per-minute cost over the longest span may exceed that over the first span by this factor
FLAT_SLACK = 1.15  # the longest video's peak RSS may exceed the shortest's by this factor
READ_GROWTH_MB = 50.0


def monitored(command: list[str], log: Path) -> dict:
    """Run `command`, sampling the memory of it and its children; wall seconds and peaks in MB."""
    with open(log, "w") as stderr:
        started = time.perf_counter()
        process = psutil.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr)
        peak_rss = peak_pss = peak_main = 0
        while process.poll() is None:
            try:
                peak_main = max(peak_main, process.memory_info().rss)
                rss, pss = memory_of_tree(process)
            except psutil.NoSuchProcess:
                break
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(SAMPLE_EVERY_S)
        seconds = time.perf_counter() - started
    if process.wait() != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}: "
                           + " ".join(log.read_text().strip().splitlines()[-3:])[-400:])
    return {"seconds": seconds, "peak_mb": peak_rss / 2**20, "peak_pss_mb": peak_pss / 2**20,
            "peak_main_mb": peak_main / 2**20}


def predict_command(video: Path, checkpoint: Path, out: Path, window: float, stride: float) -> list[str]:
    return [sys.executable, "-m", "behavior", "predict", str(video), "--checkpoint", str(checkpoint), "--out", str(out),
            "--window", f"{window:g}", "--stride", f"{stride:g}"]


def measure_predict(videos: dict[float, Path], checkpoint: Path, window: float, stride: float, repeats: int,
                    work: Path) -> dict[float, list[dict]]:
    """Every video once per round, rounds repeated; a fresh output file each time (predict resumes otherwise)."""
    runs: dict[float, list[dict]] = {minutes: [] for minutes in videos}
    for round_ in range(repeats):
        for minutes, video in videos.items():
            out = work / f"predict-{minutes:g}min.jsonl"
            out.unlink(missing_ok=True)
            print(f"  predict {video.name}, round {round_ + 1}/{repeats}", flush=True)
            result = monitored(predict_command(video, checkpoint, out, window, stride), work / "predict.log")
            rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
            if not rows or rows[0]["status"] != "ok":
                raise RuntimeError(f"predict wrote no prediction for {video}: {rows[:1]}")
            result["windows"] = len(rows[0]["windows"])
            runs[minutes].append(result)
    return runs


def read_growth(videos: list[Path], reads: int, warmup: int, backend: str) -> dict:
    """RSS growth in MB over `reads` sequential reads in a fresh process, after `warmup` reads."""
    command = [sys.executable, str(REPO / "benchmarks" / "read_loop.py"), "--reads", str(reads), "--backend", backend,
               *map(str, videos)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    rss = np.array(json.loads(done.stdout.strip().splitlines()[-1])["rss"]) / 2**20
    after_warmup = rss[warmup - 1]
    return {"after_warmup_mb": float(after_warmup), "end_mb": float(rss[-1]), "growth_mb": float(rss[-1] - after_warmup),
            "max_growth_mb": float(rss[warmup:].max() - after_warmup)}


def run(settings: Settings) -> dict:
    checkpoint = untrained_checkpoint(settings, settings.work / "models" / "untrained-demo.pt")
    minutes = settings.pick((1, 5, 20), (0.25, 0.5, 1))
    videos = {m: long_video(settings.work / "long", m * 60) for m in minutes}
    window = round(training_clip_seconds(settings), 2)  # a window as long as a training video
    stride = window / 2  # predict's default
    work = settings.work / "scaling"
    work.mkdir(parents=True, exist_ok=True)
    runs = measure_predict(videos, checkpoint, window, stride, settings.pick(3, 1), work)

    seconds = {m: [r["seconds"] for r in runs[m]] for m in minutes}
    median = {m: float(np.median(seconds[m])) for m in minutes}
    first, middle, last = minutes
    growth = median[last] / median[first]
    marginal_first = (median[middle] - median[first]) / (middle - first)
    marginal_last = (median[last] - median[middle]) / (last - middle)
    linear = marginal_last <= LINEAR_SLACK * marginal_first
    peaks = {m: [r["peak_mb"] for r in runs[m]] for m in minutes}
    flat = np.median(peaks[last]) <= FLAT_SLACK * np.median(peaks[first])

    synthetic = find_videos(synthetic_set(settings) / "videos")
    reads, warmup = settings.pick(500, 60), settings.pick(50, 10)
    memory = {backend: read_growth(synthetic, reads, warmup, backend) for backend in ("auto", "pyav")}
    reads_ok = memory["auto"]["growth_mb"] < READ_GROWTH_MB

    met = bool(linear and flat and reads_ok)
    limits = []
    if not linear:
        limits.append(f"each minute beyond {middle:g} min costs {marginal_last:.2f} s against {marginal_first:.2f} s per "
                      f"minute between {first:g} and {middle:g} min")
    if not flat:
        def growth_of(figure: str) -> str:
            values = [float(np.median([r[figure] for r in runs[m]])) for m in (first, last)]
            return f"{values[0]:.0f} to {values[1]:.0f} MB"

        limits.append(f"from {first:g} to {last:g} min, the peak RSS of process + workers grows from "
                      f"{growth_of('peak_mb')}, their PSS (shared pages counted once) from {growth_of('peak_pss_mb')}, "
                      f"the main process's RSS from {growth_of('peak_main_mb')}")
    if not reads_ok:
        limits.append(f"RSS grows by {memory['auto']['growth_mb']:.0f} MB over {reads - warmup} reads after warm-up")
    goal = target(f"predict time grows linearly with video length (per-minute cost over {middle:g}-{last:g} min at "
                  f"most {LINEAR_SLACK:g}x that over {first:g}-{middle:g} min), peak memory stays flat (at most "
                  f"{FLAT_SLACK:g}x from {first:g} to {last:g} min), and {reads} sequential reads grow RSS by < "
                  f"{READ_GROWTH_MB:g} MB after warm-up", marginal_last / marginal_first, LINEAR_SLACK, met, "; ".join(limits),
                  linear=bool(linear), flat=bool(flat), reads_ok=bool(reads_ok), time_ratio=growth,
                  length_ratio=float(last / first))
    tables = [
        table(f"behavior predict --window {window:g} --stride {stride:g} (seconds), fresh process per run",
              ["video", "windows", "seconds", "seconds per video-minute", "peak RSS, process + workers, MB",
               "peak PSS, process + workers, MB", "peak RSS, main process, MB"],
              [[f"{m:g} min", runs[m][0]["windows"], spread(seconds[m]), spread([s / m for s in seconds[m]]),
                spread(peaks[m]), spread([r["peak_pss_mb"] for r in runs[m]]),
                spread([r["peak_main_mb"] for r in runs[m]])] for m in minutes]),
        table("linearity", ["figure", "value"],
              [[f"time {last:g} min / time {first:g} min (linear with no fixed cost: {last / first:g})", growth],
               [f"seconds per added minute, {first:g} to {middle:g} min", marginal_first],
               [f"seconds per added minute, {middle:g} to {last:g} min", marginal_last],
               ["fixed cost (process start, model load), s, extrapolated to 0 min",
                median[first] - marginal_first * first]]),
        table(f"RSS over {reads} sequential Video(path).get_frames reads in one fresh process ({len(synthetic)} "
              f"synthetic videos, cycled), warm-up {warmup} reads",
              ["backend", "RSS after warm-up, MB", "RSS at the end, MB", "growth after warm-up, MB",
               "largest growth seen, MB"],
              [[backend, m["after_warmup_mb"], m["end_mb"], m["growth_mb"], m["max_growth_mb"]]
               for backend, m in memory.items()]),
    ]
    notes = [f"command: `{shown(predict_command(videos[last], checkpoint, work / 'out.jsonl', window, stride))}` "
             "(predict's default workers and batch size); the model is the demo config's with its initial weights.",
             "RSS of process + workers adds each process's resident pages, so pages the forked workers share with "
             "the main process count more than once (as the issue asks: the target is judged on it); PSS divides "
             "each shared page among its processes, so its sum is what the tree holds.",
             f"the videos are cached in {(settings.work / 'long').relative_to(REPO)}, each with a JSON list of the "
             "behaviour of every segment."]
    return section_result(TITLE, goal, tables, notes)

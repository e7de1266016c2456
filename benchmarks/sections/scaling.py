"""Long videos: `behavior predict --window 2 --stride 1` time and peak memory over videos of 1, 5, 20 and 120
minutes, and resident memory over many sequential reads.

Each predict runs in a fresh process; the memory of the process tree (the process and its decoding workers) is
sampled every ~100 ms for the peaks: PSS (each shared page divided among the processes that share it, so the sum
is what the tree holds; psutil's memory_full_info().pss), and RSS for comparison. The videos are synthetic clips
of known behaviours rendered back to back (benchmarks/longvideo.py). Seconds per video-minute are compared as
marginal costs (seconds per added minute), so the fixed cost of start-up does not count as non-linearity.
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
    untrained_checkpoint,
)
from longvideo import long_video

from behavior.data.splits import find_videos

TITLE = "Long videos: time and memory"
SAMPLE_EVERY_S = 0.1
# the per-minute cost from the second-longest to the longest video may exceed that from the shortest to the
# second-longest by this factor
LINEAR_SLACK = 1.25
FLAT_MB = 50.0  # the longest video's peak PSS may exceed the 5-minute one's by this many MB
WINDOW, STRIDE = 2.0, 1.0  # predict --window 2 --stride 1, as the issue measures it
READ_GROWTH_MB = 50.0


def monitored(command: list[str], log: Path) -> dict:
    """Run `command`, sampling the memory of it and its children; wall seconds and peaks in MB."""
    with open(log, "w") as stderr:
        started = time.perf_counter()
        process = psutil.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr)
        peak_rss = peak_pss = peak_main = 0
        timeline = []  # (seconds since the start, PSS of the tree in MB), every sample
        while process.poll() is None:
            try:
                peak_main = max(peak_main, process.memory_info().rss)
                rss, pss = memory_of_tree(process)
            except psutil.NoSuchProcess:
                break
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            timeline.append((time.perf_counter() - started, pss / 2**20))
            time.sleep(SAMPLE_EVERY_S)
        seconds = time.perf_counter() - started
    if process.wait() != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited with {process.returncode}: "
            + " ".join(log.read_text().strip().splitlines()[-3:])[-400:]
        )
    return {
        "seconds": seconds,
        "peak_mb": peak_rss / 2**20,
        "peak_pss_mb": peak_pss / 2**20,
        "peak_main_mb": peak_main / 2**20,
        "timeline": timeline,
    }


def stretch_peaks(run: dict, seconds: float) -> tuple[float, float]:
    """Peak PSS (MB) of a run over its first and its last `seconds`: stretches as long as a shorter video's whole
    run, so each peak is the largest of as many samples as that run's peak (a longer run's whole-run peak is
    the largest of more samples of the same per-chunk ups and downs, and so higher even when nothing grows)."""
    timeline = run["timeline"]
    end = timeline[-1][0]
    first = max(pss for t, pss in timeline if t <= seconds)
    last = max(pss for t, pss in timeline if t >= end - seconds)
    return first, last


def predict_command(video: Path, checkpoint: Path, out: Path, window: float, stride: float) -> list[str]:
    return [
        sys.executable,
        "-m",
        "behavior",
        "predict",
        str(video),
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(out),
        "--window",
        f"{window:g}",
        "--stride",
        f"{stride:g}",
    ]


def measure_predict(
    videos: dict[float, Path], checkpoint: Path, window: float, stride: float, repeats: int, work: Path
) -> dict[float, list[dict]]:
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
    command = [
        sys.executable,
        str(REPO / "benchmarks" / "read_loop.py"),
        "--reads",
        str(reads),
        "--backend",
        backend,
        *map(str, videos),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    rss = np.array(json.loads(done.stdout.strip().splitlines()[-1])["rss"]) / 2**20
    after_warmup = rss[warmup - 1]
    return {
        "after_warmup_mb": float(after_warmup),
        "end_mb": float(rss[-1]),
        "growth_mb": float(rss[-1] - after_warmup),
        "max_growth_mb": float(rss[warmup:].max() - after_warmup),
    }


def run(settings: Settings) -> dict:
    checkpoint = untrained_checkpoint(settings, settings.work / "models" / "untrained-demo.pt")
    minutes = settings.pick((1, 5, 20, 120), (0.25, 0.5, 1, 2))
    videos = {m: long_video(settings.work / "long", m * 60) for m in minutes}
    window, stride = WINDOW, STRIDE
    work = settings.work / "scaling"
    work.mkdir(parents=True, exist_ok=True)
    longest = minutes[-1]
    # the two shortest in turns, 5 times (the 1-min run is where the reference span starts, and its few seconds
    # of start-up spread by 40% over 2 rounds); the next in turns twice; the longest (several minutes) once
    short, middle = minutes[:2], minutes[2:-1]
    runs = measure_predict(
        {m: videos[m] for m in short}, checkpoint, window, stride, settings.pick(5, 1), work
    )
    runs.update(
        measure_predict({m: videos[m] for m in middle}, checkpoint, window, stride, settings.pick(2, 1), work)
    )
    runs.update(measure_predict({longest: videos[longest]}, checkpoint, window, stride, 1, work))

    seconds = {m: [r["seconds"] for r in runs[m]] for m in minutes}
    median = {m: float(np.median(seconds[m])) for m in minutes}
    # the reference per-minute cost is that from 1 to 20 min: with the 1-to-5-min span as the reference (until
    # 2026-12-02), the spread of the 5-min runs alone (11.9-15.4 s) moved it by +-25%
    first, reference, span_end = minutes[0], minutes[1], minutes[-2]
    marginal = {
        b: (median[b] - median[a]) / (b - a) for a, b in zip(minutes, minutes[1:])
    }  # seconds per added minute over (previous length, b]
    base = (median[span_end] - median[first]) / (span_end - first)
    growth = {longest: marginal[longest] / base}
    linear = growth[longest] <= LINEAR_SLACK
    pss = {m: float(np.median([r["peak_pss_mb"] for r in runs[m]])) for m in minutes}
    pss_growth = pss[longest] - pss[reference]
    flat = pss_growth <= FLAT_MB
    peaks = {m: [r["peak_mb"] for r in runs[m]] for m in minutes}
    reference_seconds = median[
        reference
    ]  # the reference video's whole run, start-up and final write included
    first_stretch, last_stretch = stretch_peaks(runs[longest][0], reference_seconds)

    synthetic = find_videos(synthetic_set(settings) / "videos")
    reads, warmup = settings.pick(500, 60), settings.pick(50, 10)
    memory = {backend: read_growth(synthetic, reads, warmup, backend) for backend in ("auto", "pyav")}
    reads_ok = memory["auto"]["growth_mb"] < READ_GROWTH_MB

    met = bool(linear and flat and reads_ok)
    limits = []
    if not linear:
        limits.append(
            f"each minute from {span_end:g} to {longest:g} min costs {marginal[longest]:.2f} s, "
            f"{growth[longest]:.2f}x the {base:.2f} s per minute from {first:g} to {span_end:g} min"
        )
    if not flat:

        def growth_of(figure: str) -> str:
            values = [float(np.median([r[figure] for r in runs[m]])) for m in (reference, longest)]
            return f"{values[0]:.0f} to {values[1]:.0f} MB"

        limits.append(
            f"from {reference:g} to {longest:g} min, the peak PSS of process + workers grows from "
            f"{growth_of('peak_pss_mb')} (RSS {growth_of('peak_mb')}, the main process's RSS "
            f"{growth_of('peak_main_mb')}); over stretches as long as the {reference:g}-min run "
            f"({reference_seconds:.0f} s), the {longest:g}-min run peaks at {first_stretch:.0f} MB in its first "
            f"and {last_stretch:.0f} MB in its last"
        )
    if not reads_ok:
        limits.append(
            f"RSS grows by {memory['auto']['growth_mb']:.0f} MB over {reads - warmup} reads after warm-up"
        )
    goal = target(
        f"predict --window {window:g} --stride {stride:g} time linear in the video's length (the per-minute cost "
        f"from {span_end:g} to {longest:g} min at most {LINEAR_SLACK:g}x that from {first:g} to {span_end:g} "
        f"min), peak PSS of process + workers at {longest:g} min within {FLAT_MB:g} MB of the {reference:g}-min "
        f"one, and {reads} sequential reads grow RSS by < {READ_GROWTH_MB:g} MB after warm-up",
        max(growth.values()),
        LINEAR_SLACK,
        met,
        "; ".join(limits),
        linear=bool(linear),
        flat=bool(flat),
        reads_ok=bool(reads_ok),
        per_minute_growth={f"{m:g} min": g for m, g in growth.items()},
        pss_growth_mb=pss_growth,
        pss_threshold_mb=FLAT_MB,
        stretch_seconds=reference_seconds,
        longest_first_stretch_pss_mb=first_stretch,
        longest_last_stretch_pss_mb=last_stretch,
    )
    tables = [
        table(
            f"behavior predict --window {window:g} --stride {stride:g}, fresh process per run",
            [
                "video",
                "windows",
                "seconds",
                "seconds per video-minute",
                "peak PSS, process + workers, MB",
                "peak RSS, process + workers, MB",
                "peak RSS, main process, MB",
            ],
            [
                [
                    f"{m:g} min",
                    runs[m][0]["windows"],
                    spread(seconds[m]),
                    spread([s / m for s in seconds[m]]),
                    spread([r["peak_pss_mb"] for r in runs[m]]),
                    spread(peaks[m]),
                    spread([r["peak_main_mb"] for r in runs[m]]),
                ]
                for m in minutes
            ],
        ),
        table(
            "linearity and flat memory",
            ["figure", "value"],
            [
                *(
                    [
                        f"seconds per added minute, {a:g} to {b:g} min"
                        + (
                            f" ({growth[b]:.2f}x that of {first:g} to {span_end:g} min)"
                            if b in growth
                            else ""
                        ),
                        marginal[b],
                    ]
                    for a, b in zip(minutes, minutes[1:])
                ),
                [f"seconds per added minute, {first:g} to {span_end:g} min (the reference)", base],
                [
                    "fixed cost (process start, model load), s, extrapolated to 0 min",
                    median[first] - base * first,
                ],
                [f"peak PSS at {longest:g} min minus peak PSS at {reference:g} min, MB", pss_growth],
                [
                    f"peak PSS of the {longest:g}-min run over its first {reference_seconds:.0f} s (as long as the "
                    f"{reference:g}-min run), MB",
                    first_stretch,
                ],
                [
                    f"peak PSS of the {longest:g}-min run over its last {reference_seconds:.0f} s, MB",
                    last_stretch,
                ],
            ],
        ),
        table(
            f"RSS over {reads} sequential Video(path).get_frames reads in one fresh process ({len(synthetic)} "
            f"synthetic videos, cycled), warm-up {warmup} reads",
            [
                "backend",
                "RSS after warm-up, MB",
                "RSS at the end, MB",
                "growth after warm-up, MB",
                "largest growth seen, MB",
            ],
            [
                [backend, m["after_warmup_mb"], m["end_mb"], m["growth_mb"], m["max_growth_mb"]]
                for backend, m in memory.items()
            ],
        ),
    ]
    notes = [
        f"command: `{shown(predict_command(videos[longest], checkpoint, work / 'out.jsonl', window, stride))}` "
        "(predict's default workers and batch size); the model is the demo config's with its initial weights.",
        f"the {minutes[0]:g}- and {minutes[1]:g}-min videos run {settings.pick(5, 1)} times each, in turns; the "
        f"{'/'.join(f'{m:g}' for m in middle)}-min one {settings.pick(2, 1)} times; the {longest:g}-min one once.",
        "RSS of process + workers adds each process's resident pages, so pages the forked workers share with "
        "the main process count more than once; PSS divides each shared page among its processes, so its sum is "
        "what the tree holds (the target is judged on PSS).",
        "the whole-run peak of a longer run is the largest of more samples of the same per-chunk rise and fall "
        "(each chunk's forward pass, the decoded chunks in flight), so it comes out higher even where nothing "
        f"grows; the {longest:g}-min run's peaks over its first and last stretch as long as the {reference:g}-min "
        "run compare equal numbers of samples.",
        f"the videos are cached in {(settings.work / 'long').relative_to(REPO)}, each with a JSON list of the "
        "behaviour of every segment.",
    ]
    return section_result(TITLE, goal, tables, notes)

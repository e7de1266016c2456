"""Live mode: frames/s of the incremental model against a naive recompute of the whole clip at every new frame,
for the two-way temporal shift, the online shift and no shift, with the demo's backbone and with
efficientnet_lite0; and `behavior live --source <real 768x576 file> --out annotated.mp4` as a user runs it.

The incremental path is `StreamClassifier.add_frame` as `behavior live` drives it: its mode follows the model's
shift (`frames` without a shift and `online` with the online shift run one backbone pass per frame; `clips`, the
two-way shift, runs the T picked frames per frame). The naive recompute samples T frames from the same buffer
span with the same sampler and runs the whole clip through transform and model at every frame. Both run in this
process on the first frames of a long synthetic video, in turns (interleaved) per model. The whole `behavior
live` command runs in a fresh process, start-up included (imports, model load, opening the source), on the real
file; start-up alone is the same command with `--max-frames 1`. Every model has its initial weights (the cost of
a forward does not depend on the weights' values). Beside the times, the work: convolution and matrix-multiply
FLOPs per new frame of the recompute over the incremental path (`work_ratio`).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch
from harness import (
    REAL_CLIPS,
    REPO,
    Settings,
    invert,
    ratios,
    section_result,
    shown,
    spread,
    table,
    target,
    time_interleaved,
    untrained_checkpoint,
)
from longvideo import SIZE, long_video
from torch.utils.flop_counter import FlopCounterMode

from behavior.data.sampling import sample_indices
from behavior.data.video import Video
from behavior.engine.checkpoint import load_trained_model
from behavior.tools.engines import load_engine
from behavior.tools.live import StreamClassifier

TITLE = "Live mode"
REAL_TIME_TARGET = 3.0  # `behavior live` frames/s as a multiple of the source's frame rate, start-up included
ONLINE_SPEEDUP = 0.7  # the online shift's speed-up over the naive recompute: at least this share of T
LIVE_FILE = "opencv_vtest_pedestrians_msmpeg4v3.avi"  # 768x576, 10 fps, 80 s: the real file

BACKBONES = {
    "demo (seed-cnn, width 0.25, 64 px)": [],
    "efficientnet_lite0 (112 px)": [
        "model.backbone=efficientnet_lite0",
        "model.width=1.0",
        "model.pretrained=none",
        "model.freeze=none",
        "transform.resize=128",
        "transform.crop=112",
    ],
}
SHIFTS = {
    "two-way shift": ["model.temporal_shift=true", "model.shift=two_way"],
    "online shift": ["model.temporal_shift=true", "model.shift=online"],
    "no shift": ["model.temporal_shift=false"],
}


def incremental(model, cfg, clip_seconds: float, frames: np.ndarray, times: np.ndarray):
    """A pass of `StreamClassifier.add_frame` over the frames (a fresh buffer each pass)."""

    def feed() -> None:
        classifier = StreamClassifier(model, cfg, clip_seconds, torch.device("cpu"))
        for frame, seconds in zip(frames, times):
            classifier.add_frame(frame, seconds)

    return feed


def naive(model, cfg, clip_seconds: float, frames: np.ndarray, times: np.ndarray):
    """A pass that, for every new frame, samples T frames from the same buffer span and runs the whole clip
    through transform and model again."""
    classifier = StreamClassifier(model, cfg, clip_seconds, torch.device("cpu"))  # its transform and sampler

    @torch.inference_mode()
    def recompute() -> None:
        buffer: deque[tuple[float, np.ndarray]] = deque()
        for frame, seconds in zip(frames, times):
            buffer.append((seconds, frame))
            while seconds - buffer[0][0] > clip_seconds:
                buffer.popleft()
            if len(buffer) < classifier.num_frames:
                continue
            stamps = np.array([t for t, _ in buffer]) - buffer[0][0]
            picked = sample_indices(len(stamps), classifier.sampler, train=False, timestamps=stamps)[
                0
            ]  # (T,)
            clip = classifier.transform(np.stack([buffer[i][1] for i in picked]))  # (T, C, H, W)
            model.forward_scores(clip[None])[0].softmax(dim=-1)  # (1, K); an ONNX model has no __call__

    return recompute


def backbone_ceiling(model, cfg, repeats: int) -> dict | None:
    """How many times longer T frames take than one through the backbone alone (`forward_step` with T streams
    against one: the same convolutions as a clip, without the head or the buffer): roughly the most a
    one-pass-per-frame mode can gain over recomputing the clip on this machine (the recompute's transform of T
    frames and its clip-shaped shifts add a little beyond it), T only where a batch of T costs T single frames.
    None for the two-way shift, which has no one-frame pass."""
    if not model.streams_frames:
        return None
    size, T = cfg.transform.crop, cfg.sampler.num_frames
    generator = torch.Generator().manual_seed(0)
    frames = {
        count: torch.randn(count, 3, size, size, generator=generator).contiguous(
            memory_format=torch.channels_last
        )
        for count in (1, T)
    }

    def passes(count: int):
        @torch.inference_mode()
        def work() -> None:
            for _ in range(20):
                model.forward_step(frames[count])

        return work

    seconds = time_interleaved({"one": passes(1), "clip": passes(T)}, repeats)
    return ratios(seconds["clip"], seconds["one"])


def work_ratio(checkpoint: Path, mode: str) -> float:
    """Convolution and matrix-multiply FLOPs (torch.utils.flop_counter) of the naive recompute per new frame over
    those of the incremental path: T frames and the head against one frame and the head (1 for `clips`, which
    recomputes). What a one-pass-per-frame mode saves in work, whatever the machine makes of it in time. Counted on
    the checkpoint's plain model: the torch engine's oneDNN calls are not in the counter's table."""
    if mode == "clips":
        return 1.0
    model, cfg = load_trained_model(checkpoint)
    size, T = cfg.transform.crop, cfg.sampler.num_frames
    clip = torch.zeros(1, T, 3, size, size)  # (1, T, C, H, W)
    features = torch.zeros(1, T, model.backbone.num_features)  # (1, T, D)
    one_frame = model.forward_step if mode == "online" else model.forward_frames

    def flops(run) -> int:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            run()
        return counter.get_total_flops()

    recompute = flops(lambda: model.forward_scores(clip))
    return recompute / flops(lambda: (one_frame(clip[:, 0]), model.forward_head(features)))


def measure_models(settings: Settings, frames: np.ndarray, times: np.ndarray, repeats: int) -> list[dict]:
    """Incremental and naive frames/s of every backbone and shift, each pair timed in turns."""
    rows = []
    for backbone, backbone_sets in BACKBONES.items():
        # efficientnet_lite0 costs ~10x the demo model per frame: fewer frames keep the section short
        count = len(frames) if not backbone_sets else max(settings.pick(150, 30), len(frames) // 3)
        for shift, shift_sets in SHIFTS.items():
            name = f"untrained-{'demo' if not backbone_sets else 'lite0'}-{shift.split()[0]}.pt"
            checkpoint = untrained_checkpoint(
                settings, settings.work / "models" / name, backbone_sets + shift_sets
            )
            # ONNX Runtime for the online shift, the mode the speed-up target is about (one export per checkpoint)
            for engine in ("torch", "onnx") if shift == "online shift" else ("torch",):
                model, cfg = load_engine(checkpoint, engine, torch.device("cpu"))
                mode = StreamClassifier(model, cfg, model.clip_seconds, torch.device("cpu")).mode
                print(f"  {backbone}, {shift} ({mode}), {engine}: {count} frames", flush=True)
                seconds = time_interleaved(
                    {
                        "incremental": incremental(
                            model, cfg, model.clip_seconds, frames[:count], times[:count]
                        ),
                        "naive": naive(model, cfg, model.clip_seconds, frames[:count], times[:count]),
                    },
                    repeats,
                )
                rows.append(
                    {
                        "backbone": backbone,
                        "shift": shift,
                        "engine": engine,
                        "mode": mode,
                        "frames": count,
                        "T": cfg.sampler.num_frames,
                        "incremental_fps": invert(spread(seconds["incremental"]), count),
                        "naive_fps": invert(spread(seconds["naive"]), count),
                        "speedup": ratios(seconds["naive"], seconds["incremental"]),
                        "ceiling": backbone_ceiling(model, cfg, repeats),
                        "work_ratio": work_ratio(checkpoint, mode),
                    }
                )
    return rows


def live_command(checkpoint: Path, source: Path, out: Path, max_frames: int | None = None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "behavior",
        "live",
        "--checkpoint",
        str(checkpoint),
        "--source",
        str(source),
        "--out",
        str(out),
        *(["--max-frames", str(max_frames)] if max_frames else []),
    ]


def whole_command(command: list[str]) -> tuple[float, int]:
    """Wall seconds of a fresh `behavior live` process, and the frames it reports."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{shown(command)} exited with {done.returncode}: {done.stderr.strip()[-400:]}")
    found = re.search(r"live: (\d+) frames", done.stdout + done.stderr)
    if found is None:
        raise RuntimeError(f"{shown(command)} reported no frame count: {done.stdout.strip()[-300:]}")
    return seconds, int(found.group(1))


def measure_live(settings: Settings, source: Path, repeats: int) -> dict:
    """`behavior live` on the source with the demo checkpoint (two-way shift, as configs/demo.yaml trains it)
    and the same with the online shift: whole runs and start-up runs (`--max-frames 1`), in turns."""
    checkpoints = {
        "demo config (two-way shift)": untrained_checkpoint(
            settings, settings.work / "models" / "untrained-demo.pt"
        ),
        "demo config, model.shift=online": untrained_checkpoint(
            settings, settings.work / "models" / "untrained-demo-online.pt", SHIFTS["online shift"]
        ),
    }
    max_frames = settings.pick(None, 60)
    out = settings.work / "live" / "annotated.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict[str, list]] = {
        name: {"seconds": [], "frames": [], "startup": []} for name in checkpoints
    }
    for round_ in range(repeats):
        for name, checkpoint in checkpoints.items():
            print(f"  behavior live, {name}, round {round_ + 1}/{repeats}", flush=True)
            seconds, frames = whole_command(live_command(checkpoint, source, out, max_frames))
            runs[name]["seconds"].append(seconds)
            runs[name]["frames"].append(frames)
            runs[name]["startup"].append(whole_command(live_command(checkpoint, source, out, 1))[0])
    return {"checkpoints": checkpoints, "runs": runs, "out": out}


def run(settings: Settings) -> dict:
    video = long_video(settings.work / "long", settings.pick(60, 10))
    with Video(video) as reader:
        info = reader.info
        count = min(info.num_frames, settings.pick(450, 60))
        frames = reader.get_frames(np.arange(count))  # uint8 (N, H, W, C)
    times = info.timestamps[:count]
    repeats = settings.pick(3, 1)
    rows = measure_models(settings, frames, times, repeats)

    source = REAL_CLIPS / LIVE_FILE
    if not source.is_file():  # the real file is not part of the repository: the synthetic video stands in
        source = video
    with Video(source) as reader:
        source_info = reader.info
    live = measure_live(settings, source, settings.pick(2, 1))
    live_rows = []
    for name, runs in live["runs"].items():
        fps = spread([f / s for f, s in zip(runs["frames"], runs["seconds"])])
        live_rows.append(
            [name, runs["frames"][0], fps, fps["median"] / source_info.fps, spread(runs["startup"])]
        )

    online = [
        r for r in rows if r["shift"] == "online shift" and r["engine"] == "torch"
    ]  # the default engine
    online_onnx = [r for r in rows if r["shift"] == "online shift" and r["engine"] == "onnx"]
    speedup_met = all(r["speedup"]["median"] >= ONLINE_SPEEDUP * r["T"] for r in online)
    real_time = {row[0]: row[3] for row in live_rows}
    demo_real_time = real_time["demo config (two-way shift)"]
    online_real_time = real_time["demo config, model.shift=online"]
    met = speedup_met and demo_real_time >= REAL_TIME_TARGET
    limits = [
        f"{r['backbone']}, online shift: {r['speedup']['median']:.1f}x faster than the naive recompute, below "
        f"{ONLINE_SPEEDUP:g} T = {ONLINE_SPEEDUP * r['T']:.1f}, for {r['work_ratio']:.1f}x less work (FLOPs); on "
        "this machine the backbone alone takes only "
        f"{r['ceiling']['median']:.1f}x as long for T = {r['T']} frames in one batch as for one frame: at batch 1 "
        "a frame uses the cores far less well than a clip of T does, so the time saved stays below the work saved"
        for r in online
        if r["speedup"]["median"] < ONLINE_SPEEDUP * r["T"]
    ]
    if limits:
        limits.append(
            "with --engine onnx (ONNX Runtime, whose per-call cost at batch 1 is lower) the online shift is "
            + ", ".join(
                f"{r['speedup']['median']:.1f}x ({r['backbone'].split(' (')[0]}; its backbone alone takes "
                f"{r['ceiling']['median']:.1f}x as long for T frames as for one)"
                for r in online_onnx
            )
            + f" faster than ONNX Runtime's own recompute (target {ONLINE_SPEEDUP * online[0]['T']:.1f}x)"
        )
    if demo_real_time < REAL_TIME_TARGET:
        limits.append(
            f"behavior live with the demo checkpoint reaches {demo_real_time:.1f}x real time (the online shift "
            f"{online_real_time:.1f}x), start-up included"
        )
    goal = target(
        f"the online shift at least {ONLINE_SPEEDUP:g}·T times faster than recomputing the whole clip per frame "
        f"(both backbones, with the default engine, PyTorch), and `behavior live --out` on {source.name} with the demo checkpoint at least "
        f"{REAL_TIME_TARGET:g}x real time, start-up included",
        demo_real_time,
        REAL_TIME_TARGET,
        met,
        "; ".join(limits),
        speedup_met=bool(speedup_met),
        online_speedup={r["backbone"]: r["speedup"] for r in online},
        online_speedup_onnx={r["backbone"]: r["speedup"] for r in online_onnx},
        online_speedup_threshold=ONLINE_SPEEDUP * online[0]["T"],
        real_time=real_time,
    )
    T = rows[0]["T"]
    tables = [
        table(
            f"incremental (StreamClassifier.add_frame) against the naive recompute, {video.name}: "
            f"{SIZE[0]}x{SIZE[1]} at {info.fps:g} fps, T={T}",
            [
                "backbone",
                "shift",
                "engine",
                "live mode",
                "frames",
                "incremental frames/s",
                "naive frames/s",
                "speed-up (naive s / incremental s)",
                "backbone alone: T frames / 1 frame",
                "FLOPs: naive / incremental",
            ],
            [
                [
                    r["backbone"],
                    r["shift"],
                    r["engine"],
                    r["mode"],
                    r["frames"],
                    r["incremental_fps"],
                    r["naive_fps"],
                    r["speedup"],
                    r["ceiling"],
                    r["work_ratio"],
                ]
                for r in rows
            ],
        ),
        table(
            f"behavior live --source {source.name} ({source_info.width}x{source_info.height}, "
            f"{source_info.fps:g} fps, {source_info.num_frames} frames) --out annotated.mp4, fresh process, "
            "start-up included",
            ["checkpoint", "frames", "frames/s", "x real time", "start-up s (--max-frames 1)"],
            live_rows,
        ),
    ]
    demo_command = live_command(
        live["checkpoints"]["demo config (two-way shift)"], source, live["out"], settings.pick(None, 60)
    )
    notes = [
        f"torch threads {torch.get_num_threads()}; the naive recompute samples its T frames from the same buffer "
        "with the same sampler and skips frames until T have arrived; the online chain warms up the same way.",
        "engine onnx: the checkpoint's ONNX export (`behavior.tools.engines`, made once and cached) on ONNX "
        "Runtime's CPU provider, for both the incremental path and the recompute; the backbone-alone ratio is "
        "that engine's (`forward_step` with T streams against one).",
        "two-way shift: a frame's features depend on the next frame, so live mode itself runs whole clips (T "
        "backbone passes per frame) and its speed-up over the naive recompute is ~1 by construction.",
        f"command: `{shown(demo_command)}` (each run a fresh process; frames/s = frames / wall seconds of the "
        "whole command, so the start-up counts); start-up: the same with `--max-frames 1`.",
        *(
            []
            if source != video
            else [f"{REAL_CLIPS / LIVE_FILE} is absent: the synthetic video stands in for the real file"]
        ),
    ]
    return section_result(TITLE, goal, tables, notes)

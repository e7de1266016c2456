"""Live mode: frames/s of the incremental model and of the whole `run_live` loop, against a naive recompute of
all T frames per new frame and against the video's own frame rate.

The video is a long synthetic one at the generator's default size; the model is the demo model with its initial
weights (the cost of a forward does not depend on the weights' values).
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
import torch
from harness import (
    REPO,
    Settings,
    invert,
    ratios,
    section_result,
    spread,
    table,
    target,
    time_interleaved,
    untrained_checkpoint,
)
from longvideo import SIZE, long_video

from behavior.checkpoint import load_trained_model
from behavior.live import StreamClassifier, open_source, run_live
from behavior.sampling import sample_indices
from behavior.video import Video

TITLE = "Live mode"
REAL_TIME_TARGET = 3.0  # whole-loop frames/s as a multiple of the video's frame rate
CLOSE_TO_T = 0.75  # "a speed-up close to T", read as at least this share of T


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
    classifier = StreamClassifier(model, cfg, clip_seconds, torch.device("cpu"))  # for its transform and sampler

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
            picked = sample_indices(len(stamps), classifier.sampler, train=False, timestamps=stamps)[0]  # (T,)
            clip = classifier.transform(np.stack([buffer[i][1] for i in picked]))  # (T, C, H, W)
            model(clip[None]).softmax(dim=-1)  # (1, K)

    return recompute


def per_frame_costs(model, cfg, frames: np.ndarray, repeats: int = 50) -> dict[str, float]:
    """Median milliseconds per call of the pieces of one `add_frame`, and of a whole-clip forward."""
    classifier = StreamClassifier(model, cfg, 1.0, torch.device("cpu"))
    frame = frames[len(frames) // 2]
    T = classifier.num_frames
    with torch.inference_mode():
        one = classifier.transform(frame[None])  # (1, C, H, W)
        features = torch.randn(1, T, model.forward_frames(one).shape[-1])  # (1, T, D)
        clip = classifier.transform(frames[:T])[None]  # (1, T, C, H, W)
        pieces = {"transform, 1 frame": lambda: classifier.transform(frame[None]),
                  "backbone + attention map, 1 frame": lambda: model.forward_frames(one, return_attention=True),
                  "head on T features": lambda: model.forward_head(features),
                  f"transform, {T} frames": lambda: classifier.transform(frames[:T]),
                  f"model on a clip of {T} frames": lambda: model(clip)}
        seconds = time_interleaved(pieces, repeats)
    return {name: 1000 * float(np.median(values)) for name, values in seconds.items()}


def decode_only(source: str) -> float:
    """Frames/s of reading the source as `run_live` reads it, with nothing else done."""
    frames, _ = open_source(source)
    started, count = time.perf_counter(), 0
    for _ in frames:
        count += 1
    return count / (time.perf_counter() - started)


def run(settings: Settings) -> dict:
    demo_checkpoint = untrained_checkpoint(settings, settings.work / "models" / "untrained-demo.pt")
    _, demo_cfg = load_trained_model(demo_checkpoint)
    tsm = demo_cfg.model.temporal_shift
    # The incremental path (one backbone pass per frame) needs frames that run alone: a model without TSM. The demo
    # model with TSM runs whole clips in live mode; its run_live is measured too, for the real-time target.
    checkpoint = untrained_checkpoint(settings, settings.work / "models" / "untrained-demo-no-tsm.pt",
                                      ["model.temporal_shift=false"]) if tsm else demo_checkpoint
    model, cfg = load_trained_model(checkpoint)
    clip_seconds = model.clip_seconds
    video = long_video(settings.work / "long", settings.pick(60, 10))
    with Video(video) as reader:
        info = reader.info
        frames = reader.get_frames(np.arange(info.num_frames))  # uint8 (N, H, W, C)
    times = info.timestamps
    repeats = settings.pick(3, 1)
    T = cfg.sampler.num_frames

    seconds = time_interleaved({"incremental": incremental(model, cfg, clip_seconds, frames, times),
                                "naive": naive(model, cfg, clip_seconds, frames, times)}, repeats)
    speedup = ratios(seconds["naive"], seconds["incremental"])
    out = settings.work / "live-out.mp4"
    live = [run_live(demo_checkpoint, str(video), out=out) for _ in range(repeats)]
    live_fps = spread([summary.fps for summary in live])  # the demo model, as `behavior live` runs it
    frame_live_fps = spread([run_live(checkpoint, str(video), out=out).fps for _ in range(repeats)]) if tsm else None
    decoding = spread([decode_only(str(video)) for _ in range(repeats)])
    add_fps = invert(spread(seconds["incremental"]), len(frames))
    costs = per_frame_costs(model, cfg, frames)

    real_time = live_fps["median"] / info.fps
    speedup_met = speedup["median"] >= CLOSE_TO_T * T
    met = real_time >= REAL_TIME_TARGET and speedup_met
    frame_fps = frame_live_fps or live_fps  # run_live of the incremental model
    rest_ms = 1000 * (1 / frame_fps["median"] - 1 / decoding["median"] - 1 / add_fps["median"])
    rest = (f"about {rest_ms:.1f} ms drawing the overlay and encoding the output" if rest_ms > 0 else
            "an unknown share drawing and encoding (add_frame alone was slower than the whole loop in this run: the "
            "machine's load changed between the measurements)")
    limits = []
    if real_time < REAL_TIME_TARGET:
        limits.append(f"run_live reaches {real_time:.1f}x real time" + (
            " (the demo model has TSM, so every frame runs a whole clip of T frames)" if tsm else
            f": per frame it spends {1000 / decoding['median']:.1f} ms decoding, {1000 / add_fps['median']:.1f} ms in "
            f"add_frame and {rest}"))
    if not speedup_met:
        limits.append(f"the incremental model is {speedup['median']:.1f}x faster than the naive recompute, not ~{T}x: "
                      f"one add_frame costs {costs['transform, 1 frame']:.2f} ms transform + "
                      f"{costs['backbone + attention map, 1 frame']:.2f} ms backbone + {costs['head on T features']:.2f}"
                      f" ms head, against {costs[f'transform, {T} frames']:.2f} + {costs[f'model on a clip of {T} frames']:.2f}"
                      " ms for a whole clip: a single frame uses the cores less well than a batch of T")
    goal = target(f"live mode at least {REAL_TIME_TARGET:g}x real time, and a speed-up over the naive recompute close "
                  f"to T={T} (read as at least {CLOSE_TO_T:g} T)", real_time, REAL_TIME_TARGET, met, "; ".join(limits),
                  speedup=speedup, speedup_threshold=CLOSE_TO_T * T)
    tables = [
        table(f"{video.name}: {len(frames)} frames, {SIZE[0]}x{SIZE[1]} at {info.fps:g} fps, T={T}, buffer "
              f"{clip_seconds:.2f} s",
              ["figure", "frames/s", "x real time"],
              [["video's own frame rate", info.fps, 1.0],
               [f"StreamClassifier.add_frame (one backbone pass per frame + head){', without TSM' if tsm else ''}",
                add_fps,
                add_fps["median"] / info.fps],
               [f"naive: all {T} frames through transform and model per new frame",
                invert(spread(seconds["naive"]), len(frames)), len(frames) / np.median(seconds["naive"]) / info.fps],
               [f"run_live, the demo model{' (TSM: a whole clip per frame)' if tsm else ''}: decode, add_frame, "
                "draw, encode to mp4", live_fps, real_time],
               *([["run_live, the demo model without TSM (incremental)", frame_live_fps,
                   frame_live_fps["median"] / info.fps]] if tsm else []),
               ["decoding alone (open_source)", decoding, decoding["median"] / info.fps]]),
        table("speed-up of add_frame over the naive recompute, same run", ["figure", "value"],
              [["naive seconds / incremental seconds", speedup], ["T", T]]),
        table("cost of the pieces, median ms per call", ["piece", "ms"], [[k, v] for k, v in costs.items()]),
    ]
    notes = [*([("the demo config has the temporal shift (TSM), whose frames cannot run through the backbone alone: "
                 "add_frame, the naive recompute and the cost of the pieces are measured on the demo model without "
                 "TSM (the incremental path every other model takes), run_live on both")] if tsm else []),
             f"torch threads {torch.get_num_threads()}; the model is the demo config's with its initial weights; the "
             f"naive recompute samples its T frames from the same {clip_seconds:.2f} s buffer with the same sampler, "
             "and skips frames until T have arrived.",
             f"run_live writes the annotated video to {out.relative_to(REPO)}; "
             "drawing and encoding are estimated as run_live's time per frame minus decoding alone minus add_frame."]
    return section_result(TITLE, goal, tables, notes)

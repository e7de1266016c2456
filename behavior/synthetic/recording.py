"""Long synthetic recordings with known ground truth: several of the five behaviours, separated by stretches where
nothing known happens (the actor standing idle, the empty scene, a behaviour outside the five), one scene and one
actor throughout, with a per-frame label track written beside the video.

    OUT/recordings/recording-NN.mp4          H.264, the generator's size and frame rate
    OUT/recordings/recording-NN.labels.csv   frame, time_s, label, behaviour: one row per frame

`label` is the truth a model is scored against: one of the five classes, or `none` where nothing known happens;
`behaviour` is what the frame shows (a class, `idle`, `empty`, or a behaviour outside the five such as `jump`).
Recording n takes the look of test group n (cycling through the test groups of the data set of the same
settings), so no model has trained on its actor or scene. Parts are rendered one after another, so the actor's
place changes at a cut, as in an edited recording.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from behavior.data.writer import VideoWriter
from behavior.errors import OutputExists, UsageError
from behavior.synthetic.plan import (
    clip_rng,
    draw_clip_spec,
    num_groups_for,
    num_test_groups,
    validate_settings,
)
from behavior.synthetic.render import render_clip
from behavior.synthetic.spec import CLASSES, EMPTY, UNSEEN, ClipSpec

NONE = "none"  # the truth where nothing known happens
GAP_SECONDS = (2.0, 5.0)  # how long an idle or empty stretch lasts
# What separates two behaviours: idle actor, empty scene, or a behaviour outside the five (its own clip length).
GAP_KINDS = ("idle", EMPTY, "unseen")
GAP_WEIGHTS = (0.4, 0.2, 0.4)
FIRST_CLIP = 1000  # clip numbers of recording parts start here: never one of a data set's own clips


@dataclass(frozen=True)
class Part:
    """One stretch of a recording: the clip drawn there and its truth label (a class, or `none`)."""

    spec: ClipSpec
    label: str


def plan_recording(
    index: int,
    seconds: float,
    clips_per_class: int = 100,
    difficulty: str = "medium",
    seed: int = 0,
    size: tuple[int, int] = (160, 120),
    fps: int = 15,
) -> list[Part]:
    """The parts of recording `index` (1-based), at least `seconds` long: a stretch with nothing known, then
    known behaviour and nothing known in turn, from (seed, index) alone."""
    validate_settings(clips_per_class, difficulty, seed, size, fps, workers=1)
    if seconds <= 0:
        raise UsageError(f"recording length must be positive, got {seconds} s")
    group = (index - 1) % num_test_groups(num_groups_for(clips_per_class)) + 1
    rng = clip_rng(seed, 3, index)
    size = (int(size[0]), int(size[1]))
    parts: list[Part] = []
    frames, clip, known_next = 0, FIRST_CLIP + 100 * index, False
    while frames < seconds * fps:
        clip += 1
        if known_next:
            label = str(rng.choice(CLASSES))
            spec = draw_clip_spec(label, group, clip, difficulty, seed, size, fps, split="recording")
            part = Part(spec, label)
        else:
            kind = str(rng.choice(GAP_KINDS, p=GAP_WEIGHTS))
            behaviour = str(rng.choice(UNSEEN[:3])) if kind == "unseen" else kind  # jump, bend or clap
            spec = draw_clip_spec(behaviour, group, clip, difficulty, seed, size, fps, split="recording")
            if kind != "unseen":  # idle and empty: a stretch of any length
                spec = replace(spec, num_frames=int(round(rng.uniform(*GAP_SECONDS) * fps)))
            part = Part(spec, NONE)
        parts.append(part)
        frames += part.spec.num_frames
        known_next = not known_next
    return parts


def write_recording(path: str | os.PathLike, parts: list[Part]) -> Path:
    """Render `parts` back to back into `path` (an .mp4) and write the label track beside it
    (`label_track_path`); the video appears under its name only once complete. Returns the video's path."""
    path = Path(path)
    track = label_track_path(path)
    for target in (path, track):
        if target.exists():
            raise OutputExists(f"{target} exists already; synthetic data never overwrites files")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    fps = parts[0].spec.fps
    rows = []
    try:
        with VideoWriter(partial, fps=fps) as writer:
            for part in parts:
                for frame in render_clip(part.spec):  # uint8 (H, W, 3)
                    writer.write(frame)
                    rows.append((len(rows), f"{len(rows) / fps:.4f}", part.label, part.spec.label))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    with open(track, "x", newline="") as handle:
        table = csv.writer(handle)
        table.writerow(["frame", "time_s", "label", "behaviour"])
        table.writerows(rows)
    return path


def label_track_path(video: str | os.PathLike) -> Path:
    """Where the per-frame label track of a recording lies: beside it, as NAME.labels.csv."""
    return Path(video).with_suffix(".labels.csv")


def read_label_track(video: str | os.PathLike) -> list[str]:
    """The truth label of every frame of a recording, from its label track."""
    with open(label_track_path(video), newline="") as handle:
        return [row["label"] for row in csv.DictReader(handle)]


@dataclass
class RecordingsReport:
    folder: Path
    videos: list[Path]
    seconds: float  # of the recordings together
    none_share: float  # share of their frames where nothing known happens
    wall_seconds: float

    def summary(self) -> str:
        return (
            f"long recordings: {len(self.videos)} of {self.seconds / len(self.videos):.0f} s on average, "
            f"{self.none_share:.0%} of the time nothing known; label track beside each video\n"
            f"recordings: {self.folder} ({self.wall_seconds:.1f} s)"
        )


def generate_recordings(
    out: str | os.PathLike,
    count: int,
    seconds: float = 120.0,
    clips_per_class: int = 100,
    difficulty: str = "medium",
    seed: int = 0,
    size: tuple[int, int] = (160, 120),
    fps: int = 15,
) -> RecordingsReport:
    """Write OUT/recordings/recording-NN.mp4 and .labels.csv for NN = 1..count, each at least `seconds` long."""
    if not isinstance(count, int) or count < 1:
        raise UsageError(f"the number of recordings must be a positive integer, got {count!r}")
    started = time.perf_counter()
    folder = Path(out) / "recordings"
    videos, labels = [], []
    for index in range(1, count + 1):
        parts = plan_recording(index, seconds, clips_per_class, difficulty, seed, size, fps)
        videos.append(write_recording(folder / f"recording-{index:02d}.mp4", parts))
        labels += [part.label for part in parts for _ in range(part.spec.num_frames)]
    return RecordingsReport(
        folder,
        videos,
        len(labels) / fps,
        float(np.mean([x == NONE for x in labels])),
        time.perf_counter() - started,
    )

"""Writing the data set: `generate_dataset` renders every planned clip in worker processes, encodes it (H.264
in MP4, MPEG-4 part 2 in AVI) under its final name only once complete, and writes UCF101-style split files.
`generate_unseen` writes the behaviours outside the five the same way into a folder of their own, which no split
file lists. Nothing that exists is ever overwritten."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from behavior.data.writer import write_video
from behavior.errors import OutputExists
from behavior.synthetic.plan import plan_dataset, plan_unseen, validate_settings
from behavior.synthetic.render import render_clip
from behavior.synthetic.spec import BEHAVIOURS, CLASSES, CLIPS_PER_GROUP, UNSEEN, ClipSpec


@dataclass
class SynthReport:
    """What `generate_dataset` wrote."""

    root: Path  # the videos folder: the data root to pass on
    splits_dir: Path  # classInd.txt, trainlist01.txt, testlist01.txt
    num_videos: int
    counts: dict[str, dict[str, int]]  # class -> {"train": n, "test": n}
    num_frames: int  # frames in all videos together
    seconds: float  # wall time of the generation
    difficulty: str
    seed: int
    size: tuple[int, int]
    fps: int
    containers: dict[str, int] = field(default_factory=dict)  # extension -> videos

    def summary(self) -> str:
        """Human-readable counts per class and split, time, and the two paths to pass on."""
        width = max(len(c) for c in self.counts)
        lines = [
            f"synthetic behaviours: {self.num_videos} videos, {self.num_frames} frames, "
            f"{self.size[0]}x{self.size[1]} at {self.fps} fps, difficulty {self.difficulty}, seed {self.seed}",
            f"  {'class':<{width}}  train  test",
        ]
        for name, count in self.counts.items():
            lines.append(f"  {name:<{width}}  {count['train']:5d}  {count['test']:4d}")
        total_train = sum(c["train"] for c in self.counts.values())
        total_test = sum(c["test"] for c in self.counts.values())
        lines.append(f"  {'total':<{width}}  {total_train:5d}  {total_test:4d}")
        containers = ", ".join(f"{n} .{ext}" for ext, n in sorted(self.containers.items()))
        lines += [
            f"containers: {containers}",
            f"time: {self.seconds:.1f} s",
            f"data root: {self.root}",
            f"splits:    {self.splits_dir}",
        ]
        return "\n".join(lines)


def _write_video(job: tuple[ClipSpec, str]) -> tuple[str, int]:
    """Render and encode one clip; the file appears under its name only once complete. Returns
    (relpath, frames)."""
    spec, root = job
    path = Path(root) / spec.relpath
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")  # hidden: readers skip it
    frames = render_clip(spec)
    try:
        write_video(partial, frames, spec.fps, quality=18)  # H.264 crf 18 (.mp4), MPEG-4 q 2 (.avi)
        if path.exists():
            raise OutputExists(f"{path} appeared while it was being generated; it was left as it is")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return spec.relpath, len(frames)


def _split_files(specs: Sequence[ClipSpec]) -> dict[str, str]:
    """Contents of classInd.txt, trainlist01.txt and testlist01.txt (UCF101 format, '\\n' line ends)."""
    class_ind = "".join(f"{i} {name}\n" for i, name in enumerate(CLASSES, start=1))
    train = "".join(f"{s.relpath} {CLASSES.index(s.label) + 1}\n" for s in specs if s.split == "train")
    test = "".join(f"{s.relpath}\n" for s in specs if s.split == "test")
    return {"classInd.txt": class_ind, "trainlist01.txt": train, "testlist01.txt": test}


def _existing_targets(root: Path, splits_dir: Path | None, specs: Sequence[ClipSpec]) -> list[Path]:
    targets = [root / s.relpath for s in specs]
    if splits_dir is not None:
        targets += [splits_dir / name for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt")]
    return [p for p in targets if p.exists()]


def _refuse_existing(existing: list[Path]) -> None:
    if existing:
        what = (
            f"{existing[0]} and {len(existing) - 1} more files exist"
            if len(existing) > 1
            else f"{existing[0]} exists"
        )
        raise OutputExists(
            f"{what} already; synthetic data never overwrites files: choose another output "
            "folder or move them away"
        )


def _write_videos(specs: Sequence[ClipSpec], root: Path, workers: int) -> list[tuple[str, int]]:
    """Render and encode every spec under `root`, by group (a group's scene is cached); (relpath, frames) each."""
    for label in dict.fromkeys(s.label for s in specs):
        (root / label).mkdir(parents=True, exist_ok=True)
    by_group = sorted(specs, key=lambda s: (s.group, BEHAVIOURS.index(s.label), s.clip))
    jobs = [(spec, str(root)) for spec in by_group]
    if workers == 1:
        return [_write_video(job) for job in jobs]
    # spawn: no forked copies of the caller's threads or open files. Callers need the usual
    # `if __name__ == "__main__":` guard in scripts.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return list(pool.imap_unordered(_write_video, jobs, chunksize=CLIPS_PER_GROUP))


def generate_dataset(
    out: str | os.PathLike,
    clips_per_class: int = 100,
    difficulty: str = "medium",
    seed: int = 0,
    workers: int = 2,
    size: tuple[int, int] = (160, 120),
    fps: int = 15,
) -> SynthReport:
    """Write OUT/videos/<class>/v_<Class>_gGG_cCC.<mp4|avi> and OUT/splits/{classInd,trainlist01,testlist01}.txt.

    Nothing that exists is overwritten or deleted: when any file it would write is already there, it raises
    FileExistsError before writing anything. The same arguments give the same decoded frames, whatever
    `workers` is. With workers > 1 the clips are rendered in `spawn` processes, so a script that calls this
    needs the usual `if __name__ == "__main__":` guard.
    """
    validate_settings(clips_per_class, difficulty, seed, size, fps, workers)
    start = time.perf_counter()
    out = Path(out)
    root, splits_dir = out / "videos", out / "splits"
    specs = plan_dataset(clips_per_class, difficulty, seed, size, fps)
    _refuse_existing(_existing_targets(root, splits_dir, specs))
    splits_dir.mkdir(parents=True, exist_ok=True)
    written = _write_videos(specs, root, workers)
    for name, text in _split_files(specs).items():
        with open(splits_dir / name, "x", newline="\n") as handle:  # "x": never overwrite
            handle.write(text)
    counts = {label: {"train": 0, "test": 0} for label in CLASSES}
    containers: dict[str, int] = {}
    for spec in specs:
        counts[spec.label][spec.split] += 1
        containers[spec.container] = containers.get(spec.container, 0) + 1
    return SynthReport(
        root=root,
        splits_dir=splits_dir,
        num_videos=len(written),
        counts=counts,
        num_frames=sum(n for _, n in written),
        seconds=time.perf_counter() - start,
        difficulty=difficulty,
        seed=seed,
        size=tuple(size),
        fps=fps,
        containers=containers,
    )


@dataclass
class UnseenReport:
    """What `generate_unseen` wrote."""

    root: Path  # OUT/unseen: one folder per behaviour
    counts: dict[str, int]  # behaviour -> videos
    num_frames: int
    seconds: float

    def summary(self) -> str:
        counts = ", ".join(f"{n} {label}" for label, n in self.counts.items())
        return (
            f"unseen behaviours (in no split; the looks of the test groups): {sum(self.counts.values())} videos "
            f"({counts}), {self.num_frames} frames, {self.seconds:.1f} s\nunseen:    {self.root}"
        )


def generate_unseen(
    out: str | os.PathLike,
    clips_per_class: int = 100,
    difficulty: str = "medium",
    seed: int = 0,
    workers: int = 2,
    size: tuple[int, int] = (160, 120),
    fps: int = 15,
) -> UnseenReport:
    """Write OUT/unseen/<behaviour>/v_<Behaviour>_gGG_cCC.<mp4|avi>: the behaviours outside the five (jump, bend,
    clap, idle) in the looks of the test groups of `generate_dataset(out, clips_per_class, difficulty, seed)`
    (`plan_unseen`). No split file lists them, so no model trains on them; pass the same settings as the data
    set. Nothing that exists is overwritten; the same arguments give the same frames."""
    validate_settings(clips_per_class, difficulty, seed, size, fps, workers)
    start = time.perf_counter()
    root = Path(out) / "unseen"
    specs = plan_unseen(clips_per_class, difficulty, seed, size, fps)
    _refuse_existing(_existing_targets(root, None, specs))
    written = _write_videos(specs, root, workers)
    counts = {label: sum(s.label == label for s in specs) for label in UNSEEN}
    return UnseenReport(root, counts, sum(n for _, n in written), time.perf_counter() - start)

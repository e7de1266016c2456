"""`behavior check`: what a data root or a set of videos holds, and what cannot be read.

Each video is opened and decoded in a worker process with a time limit, so a file that crashes or stalls
the decoder is reported like any other bad file and never stops the run. Nothing is modified or deleted.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from behavior.config import SamplerConfig
from behavior.data.guarded import WorkerLost, run_guarded
from behavior.data.sampling import sample_indices
from behavior.data.splits import (
    RootIndex,
    SplitList,
    find_videos,
    read_annotations,
    read_class_index,
    read_split_list,
)
from behavior.data.video import Video
from behavior.data.video_info import file_digest
from behavior.errors import InputNotFound, UsageError, VideoError

DECODE_MODES = ("sample", "all", "none")
_SAMPLE = SamplerConfig(strategy="uniform", num_frames=8, time_based=False)  # 8 frames, first to last
_CHUNK = 64  # frames decoded per call when checking every frame


@dataclass
class VideoCheck:
    path: str
    label: str | None  # class name: from the split file, or the class folder
    split: str | None  # e.g. "train01 test02"; "unlisted" when split files are given but none lists it
    ok: bool
    frames: int | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    error: str | None = None
    backend: str | None = None
    digest: str | None = field(default=None, repr=False)  # content hash, to find duplicates


@dataclass
class CheckReport:
    videos: list[VideoCheck]
    class_names: list[str]
    missing: list[dict]  # split or annotation entries with no file on disk: file, line, entry
    duplicates: list[dict]  # reason, paths
    seconds: float = 0.0

    @property
    def num_failed(self) -> int:
        return sum(not v.ok for v in self.videos)

    @property
    def unlisted(self) -> list[str]:
        return [v.path for v in self.videos if v.split == "unlisted"]


def inspect_video(path: str, decode: str = "sample") -> dict:
    """Open one video, decode what `decode` asks, hash its bytes. Never raises: errors become fields."""
    result: dict = {"ok": False}
    try:
        result["digest"] = file_digest(path)
        with Video(path) as video:
            info = video.info
            result.update(
                frames=info.num_frames,
                fps=round(info.fps, 3),
                width=info.width,
                height=info.height,
                duration_s=round(info.duration_s, 3),
                backend=video.backend,
            )
            if decode == "sample":
                video.get_frames(sample_indices(info.num_frames, _SAMPLE, train=False)[0])
            elif decode == "all":
                for start in range(0, info.num_frames, _CHUNK):
                    video.get_frames(np.arange(start, min(start + _CHUNK, info.num_frames)))
            result["backend"] = video.backend  # the decoder that served the frames, after any fallback
        result["ok"] = True
    except PermissionError:
        result["error"] = f"{path}: permission denied: the file is not readable"  # as the reader says it
    except (VideoError, FileNotFoundError, IndexError, OSError) as exc:
        result["error"] = str(exc)
    except Exception as exc:  # a decoder bug must not end the check of every other file
        result["error"] = f"{path}: unexpected {type(exc).__name__}: {exc}"
    return result


def map_with_timeout(
    fn: Callable, items: Sequence, workers: int, timeout_s: float, on_timeout: Callable
) -> list:
    """`[fn(item) for item in items]` in `workers` processes; an item that takes longer than `timeout_s`
    (a stalled or crashed decoder) gets `on_timeout(item)` instead, and the pool is restarted for the rest."""
    context = mp.get_context("spawn")  # no inherited threads or decoder state

    def run(indices: list[int]) -> Iterator[tuple[int, object]]:
        pool = context.Pool(max(1, workers))
        try:
            futures = [(i, pool.apply_async(fn, (items[i],))) for i in indices]
            for position, (i, future) in enumerate(futures):
                try:
                    yield i, future.get(timeout=timeout_s)
                except mp.TimeoutError:
                    yield from ((j, later.get()) for j, later in futures[position + 1 :] if later.ready())
                    raise WorkerLost(f"no result within {timeout_s:g} s") from None
        finally:
            pool.terminate()
            pool.join()

    results: list = [None] * len(items)
    for i, value in run_guarded(
        range(len(items)),
        run,
        finished=lambda result: [result[0]],
        lost=lambda i, _: (i, on_timeout(items[i])),
        suspects=1,  # results come in order: the first unfinished item is the one that stalled
        retry_alone=False,  # a file that stalled once is reported, not waited for again
    ):
        results[i] = value
    return results


def _stalled(timeout_s: float) -> Callable:
    return lambda item: {
        "ok": False,
        "error": f"{item[0]}: stalled: no result within {timeout_s:g} s (the decoder hung or crashed)",
    }


def _inspect_item(item: tuple[str, str]) -> dict:
    return inspect_video(*item)


@dataclass
class _Listing:
    """Where each video comes from: its label and split tags, plus what the lists got wrong."""

    labels: dict[str, str | None] = field(default_factory=dict)
    splits: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    class_names: list[str] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)
    listed_twice: list[dict] = field(default_factory=list)


def _add_list(listing: _Listing, tag: str, split: SplitList, class_names: Sequence[str]) -> None:
    counts = Counter(s.path for s in split.samples)
    for sample in split.samples:
        listing.labels[sample.path] = class_names[sample.label]
        if tag not in listing.splits[sample.path]:
            listing.splits[sample.path].append(tag)
    listing.listed_twice += [
        {"reason": f"listed {n} times in {tag}", "paths": [p]} for p, n in counts.items() if n > 1
    ]
    listing.missing += [{"file": f, "line": line, "entry": e} for f, line, e in split.missing]


def _read_listing(root: Path, splits_dir: Path | None, annotations: Sequence[Path]) -> _Listing:
    listing = _Listing()
    index = RootIndex(root)
    if splits_dir is not None:
        listing.class_names = read_class_index(splits_dir / "classInd.txt")
        for list_file in sorted(splits_dir.glob("*list*.txt")):
            name = list_file.stem.lower()
            if name.startswith(("trainlist", "testlist")):
                tag = name.replace("list", "")  # trainlist01 -> train01
                _add_list(
                    listing, tag, read_split_list(list_file, index, listing.class_names), listing.class_names
                )
    for csv_file in annotations:
        names, split = read_annotations(csv_file, index, listing.class_names or None)
        listing.class_names = listing.class_names or names
        _add_list(listing, Path(csv_file).stem, split, listing.class_names)
    return listing


def _leaks(splits: dict[str, list[str]]) -> list[dict]:
    """Videos in both the train and the test list of one split id: a test set that is not held out."""
    leaks = []
    for path, tags in splits.items():
        for tag in tags:
            if tag.startswith("train") and "test" + tag[5:] in tags:
                leaks.append({"reason": f"in both {tag} and test{tag[5:]}", "paths": [path]})
    return leaks


def check_paths(
    paths: Sequence[str | os.PathLike],
    splits_dir: str | os.PathLike | None = None,
    annotations: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    decode: str = "sample",
    workers: int = 2,
    timeout_s: float = 60.0,
) -> CheckReport:
    """Check data roots, folders and video files. With `splits_dir` or `annotations`, the first path is the
    data root they refer to."""
    if decode not in DECODE_MODES:
        raise UsageError(f"decode={decode!r} is unknown; valid: {', '.join(DECODE_MODES)}")
    started = time.perf_counter()
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.exists() and not p.is_symlink():
            raise InputNotFound(f"{p}: no such file or folder")
    if isinstance(annotations, (str, os.PathLike)):
        annotations = [annotations]
    annotations = [Path(a) for a in (annotations or [])]
    listed = splits_dir is not None or bool(annotations)
    if listed and not paths[0].is_dir():
        raise UsageError(
            f"{paths[0]}: with --splits or --annotations the first path must be the data root folder"
        )
    listing = (
        _read_listing(paths[0], Path(splits_dir) if splits_dir else None, annotations)
        if listed
        else _Listing()
    )

    videos: dict[str, VideoCheck] = {}
    for p in paths:
        found = find_videos(p) if p.is_dir() else [p]
        for video in found:
            key = str(video)
            if key in videos:
                continue
            relative = video.relative_to(p).parts if p.is_dir() else ()
            label = listing.labels.get(key) if listed else (relative[0] if len(relative) >= 2 else None)
            if listed and label is None and len(relative) >= 2:
                label = next(
                    (c for c in listing.class_names if c.lower() == relative[0].lower()), relative[0]
                )
            split = " ".join(listing.splits.get(key, [])) or ("unlisted" if listed else None)
            videos[key] = VideoCheck(path=key, label=label, split=split, ok=False)

    items = [(path, decode) for path in videos]
    results = map_with_timeout(_inspect_item, items, workers, timeout_s, _stalled(timeout_s))
    for (path, _), result in zip(items, results):
        check = videos[path]
        for name, value in result.items():
            setattr(check, name, value)

    by_digest: dict[str, list[str]] = defaultdict(list)
    for check in videos.values():
        if check.digest:
            by_digest[check.digest].append(check.path)
    duplicates = [
        {"reason": "identical content", "paths": group} for group in by_digest.values() if len(group) > 1
    ]
    duplicates += listing.listed_twice + _leaks(listing.splits)
    class_names = listing.class_names or sorted({v.label for v in videos.values() if v.label}, key=str.lower)
    return CheckReport(
        list(videos.values()), class_names, listing.missing, duplicates, seconds=time.perf_counter() - started
    )


def count_table(report: CheckReport) -> tuple[list[str], list[list]]:
    """Counts per class (rows) and split (columns), with failures: (header, rows)."""
    splits = sorted({tag for v in report.videos for tag in (v.split or "all").split()})
    header = ["class", *splits, "unreadable"]
    labels = report.class_names + (["(no class)"] if any(v.label is None for v in report.videos) else [])
    rows = []
    for label in labels:
        mine = [v for v in report.videos if (v.label or "(no class)") == label]
        rows.append(
            [
                label,
                *[sum(tag in (v.split or "all").split() for v in mine) for tag in splits],
                sum(not v.ok for v in mine),
            ]
        )
    return header, rows


def format_report(report: CheckReport, max_rows: int = 40) -> str:
    """The human-readable report `behavior check` prints."""
    lines = [
        f"{len(report.videos)} videos, {report.num_failed} unreadable, {len(report.class_names)} classes "
        f"(checked in {report.seconds:.1f} s)"
    ]
    header, rows = count_table(report)
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    lines.append("  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in rows]
    ok = [v for v in report.videos if v.ok]
    if ok:
        frames = np.array([v.frames for v in ok])
        seconds = np.array([v.duration_s for v in ok])
        fps = np.array([v.fps for v in ok])
        lines.append(
            f"frames {frames.min()}..{frames.max()} (median {np.median(frames):g}), duration "
            f"{seconds.min():.2f}..{seconds.max():.2f} s, fps {fps.min():.2f}..{fps.max():.2f}, sizes "
            + ", ".join(
                f"{w}x{h} ({n})" for (w, h), n in Counter((v.width, v.height) for v in ok).most_common(4)
            )
        )
    sections = [
        ("unreadable", [v.error or v.path for v in report.videos if not v.ok]),
        ("listed but missing from disk", [f"{m['file']}:{m['line']}: {m['entry']}" for m in report.missing]),
        ("on disk but in no split", report.unlisted),
        ("duplicates", [f"{d['reason']}: {', '.join(d['paths'])}" for d in report.duplicates]),
    ]
    for title, entries in sections:
        if entries:
            lines.append(f"{title} ({len(entries)}):")
            lines += [f"  {e}" for e in entries[:max_rows]]
            if len(entries) > max_rows:
                lines.append(f"  ... and {len(entries) - max_rows} more (see --json)")
    return "\n".join(lines)


def write_json(report: CheckReport, path: str | os.PathLike) -> None:
    """One entry per video (path, label, split, ok, frames, fps, width, height, duration_s, error), plus the
    missing entries, unlisted videos and duplicates."""
    fields = ("path", "label", "split", "ok", "frames", "fps", "width", "height", "duration_s", "error")
    payload = {
        "videos": [{k: asdict(v)[k] for k in fields} for v in report.videos],
        "class_names": report.class_names,
        "num_videos": len(report.videos),
        "num_failed": report.num_failed,
        "missing": report.missing,
        "unlisted": report.unlisted,
        "duplicates": report.duplicates,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2) + "\n")

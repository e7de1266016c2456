"""The one DataLoader recipe: clips decoded in worker processes, batched by `collate_clips`.

Training, validation, evaluation, batch and window prediction and the feature benchmarks all load through
`build_loader`. `guarded_batches` iterates a loader with a time limit and turns a worker that hangs or dies into
`WorkerLost`, which `behavior.data.guarded.run_guarded` answers by retrying the videos it may have been on;
`guarded_streams` does it for streams that yield a video in chunks (window prediction, feature extraction).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from behavior.data.datasets import collate_clips
from behavior.data.guarded import WorkerLost, run_guarded

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
_MMAP_THRESHOLD = 128 * 1024  # glibc's initial value: every larger buffer is mapped, and unmapped when freed


def pin_mmap_threshold() -> None:
    """Keep glibc's mmap threshold at its initial 128 KiB in this process. glibc raises it to the size of every
    mapped block it frees, so after a worker's first chunk its multi-MB frame and clip buffers come from the heap
    instead, and freeing them leaves holes that later chunks cannot reuse whole: the heap of a window-prediction
    worker grew by ~300 MB over a two-hour video. Pinned, each buffer is unmapped when freed. Nothing happens
    where the C library is not glibc."""
    try:
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    except (OSError, AttributeError):  # not glibc: no mallopt, nothing to pin
        pass


def release_heap() -> None:
    """Hand the free pages inside glibc's heaps back to the system (`malloc_trim`). The process that scores a long
    video's chunks frees the forward's activations after every chunk; the holes they leave in the heap are reused
    only in part, so without this its memory wanders by 100-150 MB from run to run. Called once per chunk, it costs
    well under a millisecond. Nothing happens where the C library is not glibc."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # decoding workers must not compete with the model for cores
    pin_mmap_threshold()  # flat memory however many chunks a worker decodes


def build_loader(
    data: Dataset,
    batch_size: int | None,
    workers: int,
    sampler: Sampler | Sequence[int] | None = None,
    timeout_s: float = 0.0,
) -> DataLoader:
    """A DataLoader over `data` (a `SafeClips`, a subset of one, or an iterable of ready batches when
    `batch_size` is None) with `workers` decoding processes, in the order of `sampler` (default: in order).
    `timeout_s` > 0 limits the wait for one batch (with workers only)."""
    return DataLoader(
        data,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_clips if batch_size is not None else None,
        worker_init_fn=_worker_init if workers else None,
        # Workers start afresh each epoch: persistent ones would keep the data set as it was when they started, so
        # `set_epoch` (the seed of sampling and augmentation) would never reach them, and a resumed run would
        # draw other clips than an uninterrupted one.
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
        pin_memory=torch.cuda.is_available(),
        timeout=timeout_s if workers else 0,
    )


def lost_worker_reason(exc: RuntimeError, timeout_s: float) -> str | None:
    """What the DataLoader's error says about a worker that hung or died (None for errors of the data itself)."""
    text = str(exc)
    if not text.startswith("DataLoader"):
        return None
    if "timed out" in text:
        return f"stalled: no result within {timeout_s:g} s (the decoder hung)"
    if "exited unexpectedly" in text or "killed by signal" in text:
        return f"the decoder crashed its worker process ({exc})"
    return None


def guarded_batches(loader: DataLoader) -> Iterator:
    """The batches of `loader`; a worker that hangs past `loader.timeout` or dies raises `WorkerLost`."""
    try:
        yield from loader
    except RuntimeError as exc:
        reason = lost_worker_reason(exc, loader.timeout)
        if reason is None:
            raise
        raise WorkerLost(reason) from exc


@dataclass
class VideoFailed:
    """A streamed video that could not be read (its earlier chunks, if any, are to be dropped)."""

    video: int  # position in the list of videos
    path: str
    reason: str  # names the file
    last: bool = True  # nothing more comes of this video


def guarded_streams(
    paths: Sequence[str],
    make_stream: Callable[[list[int]], IterableDataset],
    workers: int,
    timeout_s: float,
) -> Iterator:
    """The records of `make_stream(videos)` (an IterableDataset that yields each video's records in order, the
    final one with `last` set, or a `VideoFailed`), decoded by `workers` processes with a time limit of
    `timeout_s` per record. A worker that hangs or dies costs only the video it was on: the videos it may have
    been on are streamed again one at a time, each in its own worker (their records start over), and the one
    that is lost again gets a `VideoFailed`."""

    def run(videos: list[int]) -> Iterator:
        loader = build_loader(make_stream(videos), None, min(workers, len(videos)), timeout_s=timeout_s)
        yield from guarded_batches(loader)

    yield from run_guarded(
        range(len(paths)),
        run,
        finished=lambda record: [record.video] if record.last else [],
        lost=lambda i, reason: VideoFailed(i, paths[i], f"{paths[i]}: {reason}"),
        suspects=max(
            1, workers
        ),  # a worker that waits holds one video; the others are at most one each ahead
    )

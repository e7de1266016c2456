"""Window prediction (`behavior predict --window`): long videos cut into sliding windows, one clip each, and the
windows' scores merged into segments.

`WindowStream` decodes a video chunk by chunk in DataLoader workers (each worker takes every n-th video) and
yields typed records: a `WindowChunk` of n window clips, or a `VideoFailed` for a video that cannot be read
(possibly after some of its chunks, which are then dropped). Windows are sampled exactly like whole short
videos (`span_recipe`: the evaluation recipe, one view over the window's span), so memory stays flat however long the video is.
`predict_windows` scores the chunks and writes one row per video with its windows and segments: each window
judged by the checkpoint's `Confidence` (calibrated probabilities, rejection score), and stretches whose windows
fall below the rejection threshold become `none` segments. The video's own label treats its windows as the views
of one clip.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from behavior.config import Config
from behavior.data.datasets import ClipRecipe, span_recipe
from behavior.data.loader import VideoFailed, guarded_streams, release_heap
from behavior.data.sampling import frame_step, sample_indices, sliding_windows
from behavior.engine.confidence import NONE
from behavior.engine.scoring import score_batch
from behavior.errors import UsageError, VideoError
from behavior.tools.rows import error_row, top_labels
from behavior.tools.segments import NO_CLASS, segments_from_windows


@dataclass
class WindowOptions:
    window: float  # window length, in seconds or frames
    stride: float  # step between window starts, same unit
    unit: str = "s"  # "s": seconds on the real timestamps; "frames": frame numbers
    smooth: int = 1  # moving average over this many windows before labelling
    min_segment_s: float = 0.0  # shorter segments are merged into a neighbour

    def __post_init__(self) -> None:
        if self.window <= 0 or self.stride <= 0:
            raise UsageError(f"--window and --stride must be positive, got {self.window} and {self.stride}")
        if self.unit not in ("s", "frames"):
            raise UsageError(f"window unit {self.unit!r} is unknown; valid: s, frames")
        if self.smooth < 1 or self.min_segment_s < 0:
            raise UsageError("--smooth must be >= 1 and --min-segment >= 0")


@dataclass
class WindowChunk:
    """Consecutive windows of one video, as clips."""

    video: int  # position in the list of videos
    path: str
    clip: torch.Tensor  # float (n, T, C, H, W)
    spans: np.ndarray  # float64 (n, 2): [start, end) of each window, in seconds
    first: bool  # the video's first chunk: a video decoded again after a lost worker starts over here
    last: bool  # the video's final chunk
    frames: int  # frames in the video
    duration_s: float


class WindowStream(IterableDataset):
    """Window chunks of the videos at `videos` (positions in `paths`), video after video; each worker takes every
    n-th video."""

    def __init__(
        self, paths: list[str], recipe: ClipRecipe, options: WindowOptions, chunk: int, videos: list[int]
    ):
        self.paths = paths
        self.recipe = recipe
        self.options = options
        self.chunk = chunk
        self.videos = videos

    def __iter__(self) -> Iterator[WindowChunk | VideoFailed]:
        worker = get_worker_info()
        share = self.videos if worker is None else self.videos[worker.id :: worker.num_workers]
        for i in share:
            yield from self._video(i, self.paths[i])

    def _video(self, i: int, path: str) -> Iterator[WindowChunk | VideoFailed]:
        try:
            with self.recipe.open(path, sequential=True) as video:  # forward, chunk after chunk
                info = video.info
                times = np.append(info.timestamps, info.duration_s)  # start of every frame, then the end
                step = frame_step(info.timestamps) if info.num_frames > 1 else None  # once per video: O(N)
                length = info.duration_s if self.options.unit == "s" else info.num_frames
                spans = sliding_windows(length, self.options.window, self.options.stride)
                for start in range(0, len(spans), self.chunk):
                    part = spans[start : start + self.chunk]
                    indices = np.concatenate(
                        [
                            sample_indices(
                                info.num_frames,
                                self.recipe.sampler,
                                False,
                                None,
                                info.timestamps,
                                span=tuple(s),
                                step=step,
                            )
                            for s in part
                        ]
                    )  # (n, T)
                    frames = video.get_frames(indices.reshape(-1))  # uint8 (n*T, H, W, C)
                    clip = self.recipe.transform(frames)  # float (n*T, C, H, W)
                    clip = clip.reshape(len(part), indices.shape[1], *clip.shape[1:])  # (n, T, C, H, W)
                    seconds = (
                        part
                        if self.options.unit == "s"
                        else times[np.clip(part.astype(int), 0, info.num_frames)]
                    )
                    yield WindowChunk(
                        i,
                        path,
                        clip,
                        np.asarray(seconds, dtype=np.float64),
                        first=start == 0,
                        last=start + self.chunk >= len(spans),
                        frames=info.num_frames,
                        duration_s=info.duration_s,
                    )
        except (VideoError, FileNotFoundError, IndexError, ValueError) as exc:
            yield VideoFailed(i, path, str(exc))


def window_records(
    paths: list[str], cfg: Config, options: WindowOptions, chunk: int, workers: int, timeout_s: float
) -> Iterator[WindowChunk | VideoFailed]:
    """The records of `WindowStream` over `paths`, decoded by `workers` processes with a time limit of
    chunk x timeout_s per record (`guarded_streams`: a video whose decoder hangs or crashes gets a
    `VideoFailed`, the others complete)."""
    recipe = span_recipe(cfg, time_based=options.unit == "s")
    yield from guarded_streams(
        paths, lambda videos: WindowStream(paths, recipe, options, chunk, videos), workers, chunk * timeout_s
    )


def predict_windows(run, paths: list[str], options: WindowOptions) -> None:
    """Score every video of `paths` window by window and `run.emit` one row each (with its windows and segments),
    or an error row. `run` is the `behavior.tools.predict.PredictRun` of this call."""
    names = run.model.class_names
    confidence = run.confidence
    # video -> (spans, logits, features) of its chunks so far
    kept: dict[int, tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]] = {}
    for record in window_records(paths, run.cfg, options, run.batch_size, run.workers, run.timeout_s):
        if isinstance(record, VideoFailed):
            kept.pop(record.video, None)
            run.emit(error_row(record.path, record.reason))
            run.progress.update(1)
            continue
        if record.first:
            kept[record.video] = ([], [], [])
        spans, logits, features = kept[record.video]
        outputs = score_batch(run.model, record.clip, run.device, run.cfg.train.amp)
        release_heap()  # memory flat over hours: the chunk's activations are freed; return their pages
        spans.append(record.spans)
        logits.append(outputs.logits.cpu().numpy())  # (n, 1, K)
        features.append(outputs.features.cpu().numpy())  # (n, 1, D)
        if not record.last:
            continue
        del kept[record.video]
        run.progress.update(1)
        spans, logits, features = np.concatenate(spans), np.concatenate(logits), np.concatenate(features)
        windows = confidence.judge(logits, features)  # each window on its own: W clips
        whole = confidence.judge(logits.swapaxes(0, 1), features.swapaxes(0, 1))  # the W windows as views
        segments = segments_from_windows(
            spans,
            windows.probabilities,
            record.duration_s,
            options.smooth,
            options.min_segment_s,
            windows.scores if confidence.rejects else None,
            confidence.threshold,
        )
        run.emit(
            {
                "path": record.path,
                "status": "ok",
                **top_labels(
                    whole.probabilities[0],
                    names,
                    run.top_k,
                    whole.scores[0],
                    whole.unknown[0],
                    confidence.threshold,
                ),
                "frames": record.frames,
                "duration_s": round(record.duration_s, 3),
                "labels": run.labels,
                "windows": [
                    {
                        "start_s": round(float(s[0]), 3),
                        "end_s": round(float(s[1]), 3),
                        "scores": [round(float(v), 4) for v in p],
                        "unknown_score": round(float(k), 4),
                    }
                    for s, p, k in zip(spans, windows.probabilities, windows.scores)
                ],
                "segments": [
                    {
                        "start_s": round(g.start_s, 3),
                        "end_s": round(g.end_s, 3),
                        "label": NONE if g.label == NO_CLASS else names[g.label],
                        "score": round(g.score, 4),
                        **({} if g.known_score is None else {"unknown_score": round(g.known_score, 4)}),
                    }
                    for g in segments
                ],
            }
        )

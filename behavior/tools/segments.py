"""Temporal segments of a long video from the scores of sliding windows. Pure functions, no I/O.

Each window owns the stretch of time around its centre, halfway to its neighbours' centres (the first from
0, the last to the end of the video). Scores may be smoothed over neighbouring windows, each window takes
its best label, adjacent windows with the same label are joined, and a segment shorter than a minimum is
given to the neighbouring segment that scores its span higher, until none is left.

With the windows' rejection scores and a threshold (`behavior.engine.rejection`), a window whose score,
smoothed like the class scores, falls below the threshold is labelled `NO_CLASS` (`none` in the output):
nothing known happens there. Such segments are joined and merged by the same rules; where a short segment has a
`NO_CLASS` neighbour, that neighbour's score over its span is the share of the span's windows rejected on their
own (before smoothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NO_CLASS = -1  # the label of a segment where nothing known happens


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    label: int  # a class index, or NO_CLASS
    score: float  # mean probability of `label` over its windows (NO_CLASS: the share of them rejected)
    known_score: float | None = None  # mean rejection score of the windows, when they were judged


def smooth_scores(scores: np.ndarray, windows: int) -> np.ndarray:
    """Moving average over `windows` neighbouring windows, centred, edges repeated: float (W, K)."""
    if windows <= 1 or len(scores) <= 1:
        return scores
    left, right = (windows - 1) // 2, windows // 2
    padded = np.concatenate([np.repeat(scores[:1], left, 0), scores, np.repeat(scores[-1:], right, 0)])
    kernel = np.ones(windows) / windows
    return np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(scores.shape[1])], axis=1)


def window_extents(spans: np.ndarray, duration: float) -> np.ndarray:
    """float (W, 2): the [start, end) each window owns, tiling [0, duration] without gaps or overlaps."""
    centres = spans.mean(axis=1)
    bounds = np.concatenate([[0.0], (centres[1:] + centres[:-1]) / 2, [duration]])
    return np.stack([bounds[:-1], bounds[1:]], axis=1)


def segments_from_windows(
    spans: np.ndarray,
    scores: np.ndarray,
    duration: float,
    smooth: int = 1,
    min_segment_s: float = 0.0,
    known: np.ndarray | None = None,
    threshold: float | None = None,
) -> list[Segment]:
    """Segments of a video from window spans float (W, 2) in seconds and class probabilities float (W, K); with
    the windows' rejection scores `known` float (W,) and a `threshold`, stretches below it are `NO_CLASS`."""
    if len(spans) == 0:
        return []
    scores = smooth_scores(np.asarray(scores, dtype=np.float64), smooth)
    num_classes = scores.shape[1]
    extents = window_extents(np.asarray(spans, dtype=np.float64), duration)
    labels = scores.argmax(axis=1)
    judged = known is not None and threshold is not None
    if judged:
        known = np.asarray(known, dtype=np.float64)
        rejected = (known < threshold).astype(np.float64)  # (W,): each window on its own
        labels[smooth_scores(known[:, None], smooth)[:, 0] < threshold] = num_classes  # NO_CLASS as column K
        scores = np.concatenate([scores, rejected[:, None]], axis=1)  # (W, K + 1): NO_CLASS's support last
    while True:
        runs = _runs(labels)
        lengths = [extents[end - 1, 1] - extents[start, 0] for start, end in runs]
        short = [i for i, length in enumerate(lengths) if length < min_segment_s]
        if not short or len(runs) == 1:
            break
        i = min(short, key=lambda j: lengths[j])  # the shortest goes first
        start, end = runs[i]
        neighbours = [runs[j] for j in (i - 1, i + 1) if 0 <= j < len(runs)]
        best = max(neighbours, key=lambda run: scores[start:end, labels[run[0]]].mean())
        labels[start:end] = labels[best[0]]
    return [
        Segment(
            float(extents[start, 0]),
            float(extents[end - 1, 1]),
            NO_CLASS if labels[start] == num_classes else int(labels[start]),
            float(scores[start:end, labels[start]].mean()),
            float(known[start:end].mean()) if judged else None,
        )
        for start, end in _runs(labels)
    ]


def _runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges of equal consecutive labels."""
    cuts = np.flatnonzero(np.diff(labels)) + 1
    edges = [0, *cuts.tolist(), len(labels)]
    return list(zip(edges[:-1], edges[1:]))

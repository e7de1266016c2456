"""Frame sampling: which frames of a video make a clip. Pure functions, no I/O.

Every strategy first places T *positions* on a continuous axis, then maps them to frame indices:
- on the frame axis, position p is frame floor(p);
- on the time axis (`time_based=True` and timestamps given), position t seconds is the frame on screen at t,
  so a variable-frame-rate video is sampled evenly in time rather than evenly in frame numbers.

Strategies (T = `num_frames`, L = length of the video on the axis, V = `num_views`):
- `segment` (TSN, Wang et al. 2016): L is cut into T equal bins (segments); training picks a random
  position in each bin, evaluation the bin centre. V views shift the pick inside every bin to (v + 0.5) / V,
  so each view covers the whole video.
- `uniform`: T positions evenly spaced from the first to the last frame; no randomness. V views cut the
  video into V equal parts, one clip each.
- `dense`: T consecutive frames `stride` apart (a window of (T - 1) * stride + 1 frames); training picks a
  random window start, evaluation the centre window, or V windows spread evenly from start to end.

A video with fewer frames than the clip needs is never dropped: all its frames are taken in order and the
clip is padded by `pad`: `repeat_last` ([0 1 2 2 2]) or `loop` ([0 1 2 0 1]).
"""

from __future__ import annotations

import numpy as np

from behavior.config import PAD_POLICIES, SamplerConfig


def pad_indices(indices: np.ndarray, num_frames: int, policy: str) -> np.ndarray:
    """Extend an ordered index list to `num_frames` entries: int64 (num_frames,)."""
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) >= num_frames:
        return indices[:num_frames]
    if len(indices) == 0:
        raise ValueError("cannot pad an empty clip: the video has no frames")
    if policy == "repeat_last":
        fill = np.full(num_frames - len(indices), indices[-1], dtype=np.int64)
    elif policy == "loop":
        fill = np.resize(indices, num_frames)[len(indices) :]
    else:
        raise ValueError(f"pad policy {policy!r} is unknown; valid: {', '.join(PAD_POLICIES)}")
    return np.concatenate([indices, fill])


def _segment_positions(start: float, end: float, T: int, train: bool, views: int, rng) -> np.ndarray:
    edges = np.linspace(start, end, T + 1)
    width = edges[1] - edges[0]
    if train:
        return (edges[:-1] + rng.uniform(0.0, 1.0, size=T) * width)[None]  # (1, T)
    offsets = (np.arange(views) + 0.5) / views  # (V,)
    return edges[None, :-1] + offsets[:, None] * width  # (V, T)


def _uniform_positions(start: float, end: float, step: float, T: int, views: int) -> np.ndarray:
    bounds = np.linspace(start, end, views + 1)
    last = np.maximum(bounds[1:] - step, bounds[:-1])  # the last frame that starts inside each part
    return np.stack([np.linspace(a, b, T) for a, b in zip(bounds[:-1], last)])  # (V, T)


def _dense_positions(
    start: float, end: float, step: float, stride: int, T: int, train: bool, views: int, rng
):
    offsets = np.arange(T) * step * stride  # (T,)
    room = max(
        (end - start) - (offsets[-1] + step), 0.0
    )  # how far the window can move; a frame is `step` long
    if train:
        starts = start + np.array([rng.uniform(0.0, room)])
    elif views == 1:
        starts = start + np.array([room / 2])
    else:
        starts = start + np.linspace(0.0, room, views)
    return starts[:, None] + offsets[None]  # (V, T)


def frame_step(timestamps: np.ndarray) -> float:
    """A typical frame's duration in seconds: the median gap between the timestamps (N,), N >= 2. It costs O(N),
    so a caller that samples many spans of one video (window prediction) computes it once and passes it on."""
    return float(np.median(np.diff(np.asarray(timestamps, dtype=np.float64)))) or 1e-6


def sample_indices(
    num_frames: int,
    cfg: SamplerConfig,
    train: bool,
    rng: np.random.Generator | None = None,
    timestamps: np.ndarray | None = None,
    span: tuple[float, float] | None = None,
    step: float | None = None,
) -> np.ndarray:
    """Frame indices of the clip(s) to decode: int64 (V, T), V = 1 in training, each row in time order.

    `timestamps` (N,) seconds, when given and `cfg.time_based`, puts positions on the time axis.
    `span` (start, end) restricts sampling to a part of the video (seconds on the time axis, frames
    otherwise): a sliding window over a long video is sampled exactly like a whole short video.
    `step` is `frame_step(timestamps)` when the caller has it already (the same indices, without the O(N) median).
    """
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame to sample from, got num_frames={num_frames}")
    if train and rng is None:
        raise ValueError("training sampling is random: pass a numpy Generator as rng")
    T, views = cfg.num_frames, (1 if train else cfg.num_views)
    use_time = cfg.time_based and timestamps is not None and len(timestamps) == num_frames and num_frames > 1
    if use_time:
        timestamps = np.asarray(timestamps, dtype=np.float64)
        step = frame_step(timestamps) if step is None else step  # a typical frame, in seconds
        last_gap = float(timestamps[-1] - timestamps[-2])
        length = timestamps[-1] + (last_gap or step)  # the last frame lasts about as long as the one before
    else:
        step, length = 1.0, float(num_frames)
    start, end = span if span is not None else (0.0, length)
    start, end = max(0.0, float(start)), min(length, float(end))
    if end <= start:
        raise ValueError(f"empty sampling span ({start}, {end}) for a video of length {length}")

    if use_time:
        available = np.searchsorted(timestamps, [start, end], side="left")
        frames_in_span = int(available[1] - available[0])
    else:
        first_frame = int(np.floor(start))
        frames_in_span = int(np.ceil(end)) - first_frame
    needed = (T - 1) * cfg.stride + 1 if cfg.strategy == "dense" else T

    if frames_in_span < needed:
        # Too short for the clip: take what is there, in order, and pad.
        first = int(available[0]) if use_time else first_frame
        frames = np.arange(first, first + max(frames_in_span, 1))
        if cfg.strategy == "dense":
            frames = frames[:: cfg.stride]
        clip = pad_indices(np.clip(frames, 0, num_frames - 1), T, cfg.pad)
        return np.repeat(clip[None], views, axis=0)

    if cfg.strategy == "segment":
        positions = _segment_positions(start, end, T, train, views, rng)
    elif cfg.strategy == "uniform":
        positions = _uniform_positions(start, end, step, T, views)
    else:
        positions = _dense_positions(start, end, step, cfg.stride, T, train, views, rng)

    if use_time:
        # The frame on screen at time t is the last one that starts at or before t.
        indices = np.searchsorted(timestamps, positions + 1e-9, side="right") - 1
    else:
        indices = np.floor(positions + 1e-9)
    return np.clip(indices, 0, num_frames - 1).astype(np.int64)


def sliding_windows(length: float, window: float, stride: float) -> np.ndarray:
    """(W, 2) float64 [start, end) windows over a video of `length` (seconds or frames).

    Windows start every `stride`; the last one is moved back to end exactly at `length`, so the tail of the
    video is always covered. A video shorter than one window gives one window, the whole video.
    """
    if window <= 0 or stride <= 0:
        raise ValueError(f"window and stride must be positive, got window={window}, stride={stride}")
    if length <= window:
        return np.array([[0.0, float(length)]])
    starts = np.arange(0.0, length - window + 1e-9, stride)
    if starts[-1] + window < length - 1e-9:
        starts = np.append(starts, length - window)
    return np.stack([starts, starts + window], axis=1)

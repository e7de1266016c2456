"""What every video reader shares: `VideoInfo`, the metadata a reader knows before decoding any frame, and the
checks every decoder applies (the decompression-bomb limit, the decode size, plausible timestamps)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

# Frames larger than this are refused before any is decoded: 8K (8192x4320, 35 Mpixel) fits, while a file of a few
# KB that declares 12000x12000 frames would otherwise cost ~0.4 GB per decoded RGB frame, gigabytes per clip.
MAX_FRAME_PIXELS = 40_000_000


class VideoTooLarge(RuntimeError):
    """Frames above MAX_FRAME_PIXELS: no other decoder is tried, the answer would be the same."""


@dataclass(frozen=True)
class VideoInfo:
    """What a reader knows about a video before decoding any frame (sizes are upright)."""

    path: str
    num_frames: int
    fps: float  # average frame rate of the stream
    duration_s: float  # from the first frame's start to the last frame's end
    width: int  # upright width of the frames `get_frames` returns
    height: int
    timestamps: np.ndarray = field(repr=False)  # (num_frames,) float64 s from the first frame, display order
    backend: str = "decord"


def short_side_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """Upright (width, height) after scaling the short side to `short_side`, both even, aspect kept."""
    if not short_side or min(width, height) <= short_side:
        return width, height
    scale = short_side / min(width, height)
    w = max(2, round(width * scale / 2) * 2)
    h = max(2, round(height * scale / 2) * 2)
    return w, h


def check_frame_size(width: int, height: int) -> None:
    """Refuse frames too large to decode safely (a decompression bomb declares them in a tiny file)."""
    if width * height > MAX_FRAME_PIXELS:
        raise VideoTooLarge(
            f"declares {width}x{height} frames ({width * height / 1e6:.0f} Mpixel), more than the "
            f"{MAX_FRAME_PIXELS / 1e6:.0f} Mpixel this reader decodes; refused before decoding"
        )


def plausible_timestamps(timestamps: np.ndarray, duration: float) -> bool:
    """Finite, non-decreasing, and no longer than a day: anything else is a decoder's placeholder."""
    return bool(
        np.isfinite(timestamps).all()
        and np.isfinite(duration)
        and (np.diff(timestamps) >= 0).all()
        and 0 <= duration < 86_400
    )


def file_digest(path: str | os.PathLike) -> str:
    """A file's BLAKE2b digest (128 bits, hex), read 1 MiB at a time: the feature cache's check of its entries and
    `behavior check`'s test for identical videos."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

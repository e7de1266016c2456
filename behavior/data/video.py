"""Video reading: one interface, decord first, PyAV as the fallback.

A *video* is a file. `Video(path)` opens one that knows its metadata (`VideoInfo`) and returns
uint8 RGB frames `(T, H, W, C)` for a list of frame indices in display order. Frames come out upright
(rotation metadata applied), from the video stream ffmpeg picks by default, whatever the file's
extension says: both decoders probe the content.

Each decoder is a reader module behind the same small interface (`info`, `get_frames(indices)`, `close()`):
`decord_reader.DecordReader` first, when decord is installed and can open and decode the file;
`pyav_reader.PyAVReader` otherwise, or when decord fails on a call (the same `Video` then switches once and
retries). Readers are opened per video and closed by `close()` or the `with` block: nothing is cached between
videos. Writing video is `behavior.data.writer`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from behavior.data import decord_reader
from behavior.data.decord_reader import DecordReader
from behavior.data.pyav_reader import PyAVReader
from behavior.data.video_info import VideoInfo, VideoTooLarge
from behavior.errors import InputNotFound, UsageError, VideoError

VIDEO_EXTENSIONS = (
    ".avi",
    ".mp4",
    ".m4v",
    ".mkv",
    ".mov",
    ".webm",
    ".gif",
    ".mpg",
    ".mpeg",
    ".wmv",
    ".flv",
    ".3gp",
    ".ogv",
    ".ts",
    ".mts",
    ".vob",
)
BACKENDS = ("auto", "decord", "pyav")
READERS = {"decord": DecordReader, "pyav": PyAVReader}


def _check_readable(path: Path) -> None:
    if not path.exists():
        if path.is_symlink():
            raise VideoError(
                path, "broken symbolic link (its target is missing, or the link points to itself)"
            )
        raise InputNotFound(f"{path}: no such file")
    if path.is_dir():
        raise VideoError(path, "is a directory, not a video file")
    if not os.access(path, os.R_OK):
        raise VideoError(path, "permission denied: the file is not readable")
    if path.stat().st_size == 0:
        raise VideoError(path, "empty file (0 bytes)")


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    # decord prefixes its messages with a timestamp and a C++ source location; keep the reason.
    text = re.sub(r"\[\d\d:\d\d:\d\d\]\s*", "", text)
    text = re.sub(r"\S+\.(?:cc|cpp|h):\d+:\s*", "", text)
    return f"{type(exc).__name__}: {text[:300]}"


class Video:
    """A video file opened for reading.

    >>> with Video("clip.mp4") as video:
    ...     frames = video.get_frames([0, 10, 20])  # uint8 (3, H, W, 3), RGB, upright
    ...     video.info.num_frames, video.info.timestamps[:3]

    `backend="auto"` uses decord and falls back to PyAV when decord is missing, cannot open the file, or
    fails to decode it; `short_side` asks the decoder itself for frames whose short side is that many
    pixels (never upscaled), which is much cheaper than decoding full size and resizing afterwards.
    `sequential=True` (window prediction, which reads a long video forward chunk after chunk) puts PyAV first
    in "auto": it decodes only what is asked, while decord's reads of a two-hour video raised memory by 10-45 MB
    per chunk (its decoder thread fills an unbounded frame queue); both give the same pixels
    (`pyav_reader.DecordScaler`).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        backend: str = "auto",
        short_side: int | None = None,
        num_threads: int = 1,
        sequential: bool = False,
    ):
        if backend not in BACKENDS:
            raise UsageError(f"unknown video backend {backend!r}; valid: {', '.join(BACKENDS)}")
        self.path = Path(path)
        self._short_side = short_side
        self._num_threads = num_threads
        self._errors: list[str] = []
        _check_readable(self.path)
        if backend == "auto":
            self._candidates = ["decord", "pyav"] if decord_reader.decord is not None else ["pyav"]
            if sequential:
                self._candidates.reverse()
        elif backend == "decord" and decord_reader.decord is None:
            raise UsageError("video backend 'decord' was asked for, but decord is not installed")
        else:
            self._candidates = [backend]
        self._backend = None
        self._open_next()

    def _open_next(self) -> None:
        while self._candidates:
            name = self._candidates.pop(0)
            try:
                self._backend = READERS[name](self.path, self._short_side, self._num_threads)
                return
            except VideoTooLarge as exc:
                raise VideoError(self.path, str(exc)) from None
            except Exception as exc:  # any decoder failure becomes a VideoError below
                self._errors.append(f"{name}: {_describe(exc)}")
        raise VideoError(self.path, "cannot be read (" + "; ".join(self._errors) + ")")

    @property
    def info(self) -> VideoInfo:
        return self._backend.info

    @property
    def backend(self) -> str:
        return self._backend.name

    def get_frames(self, indices: Sequence[int] | np.ndarray, last: bool = False) -> np.ndarray:
        """uint8 (T, H, W, C) RGB frames in the order of `indices` (display-order frame numbers). `last`: no read
        follows before `close`, so the decoder need not stop reading ahead (decord then skips the seek that stops
        it: a clip read once and closed is about 8% faster)."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        num_frames = self.info.num_frames
        if indices.size and (indices.min() < 0 or indices.max() >= num_frames):
            raise IndexError(
                f"{self.path}: frame indices must lie in [0, {num_frames - 1}], got "
                f"{indices.min()}..{indices.max()}"
            )
        while True:
            try:
                return self._backend.get_frames(indices, last)
            except Exception as exc:  # try the next decoder, then report all reasons
                self._errors.append(f"{self._backend.name}: {_describe(exc)}")
                self._backend.close()
                if not self._candidates:
                    raise VideoError(
                        self.path, "cannot be decoded (" + "; ".join(self._errors) + ")"
                    ) from exc
                self._open_next()
                if self.info.num_frames <= indices.max():
                    raise VideoError(
                        self.path,
                        f"the fallback decoder finds {self.info.num_frames} frames, "
                        f"fewer than asked for ({'; '.join(self._errors)})",
                    ) from exc

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_info(path: str | os.PathLike, backend: str = "auto") -> VideoInfo:
    """Metadata of a video; raises VideoError when no decoder can open it."""
    with Video(path, backend=backend) as video:
        return video.info

"""A decoded-frame cache: every frame of a training video, at decode size, kept on disk.

Training samples different frames every epoch, so the cache holds all of a video's frames at the training
resolution (short side = `transform.resize`, resized by the transform's own `resize_short_side`, so cached
and decoded clips are the same pixels), written once in the first epoch and memory-mapped afterwards:
epochs after the first never decode. `FrameCache.open` returns a reader with the same interface as
`behavior.data.video.Video` (`info`, `get_frames`, `close`), so sampling and the transform are unchanged.

An entry is keyed by the file's absolute path, size and modification time and the decode size, so an edited
video is decoded again. Entries are written to a temporary file and renamed, so a kill never leaves a torn
entry; nothing outside the cache folder is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from behavior.data.transforms import resize_short_side
from behavior.data.video import Video
from behavior.data.video_info import VideoInfo

_CHUNK = 128  # frames decoded per call while filling an entry


class CachedVideo:
    """A cached video: the `Video` interface over a memory-mapped uint8 array (N, H, W, C)."""

    backend = "cache"

    def __init__(self, info: VideoInfo, frames: np.ndarray):
        self.info = info
        self._frames = frames

    def get_frames(self, indices: Sequence[int] | np.ndarray, last: bool = False) -> np.ndarray:
        """uint8 (T, H, W, C) in the order of `indices` (`last` as for `Video`: nothing to stop here)."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= self.info.num_frames):
            raise IndexError(f"{self.info.path}: frame indices must lie in [0, {self.info.num_frames - 1}]")
        return np.ascontiguousarray(self._frames[indices])

    def close(self) -> None:
        self._frames = None

    def __enter__(self) -> CachedVideo:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FrameCache:
    """Opens videos through the cache folder, filling it on first use with every frame resized so its short
    side is `short_side` (the training resolution: `transform.resize`), by the transform's own resize.

    Videos longer than `max_frames` are read directly (a cache is for training clips, not hour-long files)."""

    def __init__(self, folder: str | os.PathLike, short_side: int, max_frames: int = 1500):
        self.folder = Path(folder)
        self.short_side = short_side
        self.max_frames = max_frames

    def _key(self, path: Path) -> str:
        stat = path.stat()
        text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.short_side}"
        return hashlib.sha1(text.encode()).hexdigest()

    def open(self, path: str | os.PathLike, backend: str = "auto", decode_short_side: int | None = None):
        """A reader for `path`: from the cache when the entry exists, else decoded now and cached.
        `decode_short_side` is passed to the decoder, as `ClipDataset` would."""
        path = Path(path)
        key = self._key(path)  # raises FileNotFoundError for a missing file, as Video does
        entry = self.folder / key[:2] / key
        frames_file, info_file = entry.with_suffix(".npy"), entry.with_suffix(".json")
        if frames_file.exists() and info_file.exists():
            meta = json.loads(info_file.read_text())
            info = VideoInfo(path=str(path), timestamps=np.asarray(meta.pop("timestamps")), **meta)
            return CachedVideo(info, np.load(frames_file, mmap_mode="r"))
        video = Video(path, backend=backend, short_side=decode_short_side)
        info = video.info
        if info.num_frames > self.max_frames:
            return video
        with video:
            chunks = [
                video.get_frames(np.arange(start, min(start + _CHUNK, info.num_frames)))
                for start in range(0, info.num_frames, _CHUNK)
            ]
            info = video.info  # the decoder that served the frames (after any fallback)
        frames = np.concatenate(
            [resize_short_side(torch.from_numpy(c), self.short_side).numpy() for c in chunks]
        )
        info = replace(info, height=frames.shape[1], width=frames.shape[2])  # uint8 frames (N, h, w, C)
        entry.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "num_frames": info.num_frames,
            "fps": info.fps,
            "duration_s": info.duration_s,
            "width": info.width,
            "height": info.height,
            "backend": info.backend,
            "timestamps": info.timestamps.tolist(),
        }
        _write_atomically(frames_file, lambda handle: np.save(handle, frames))
        _write_atomically(info_file, lambda handle: handle.write(json.dumps(meta).encode()))
        return CachedVideo(info, frames)


def _write_atomically(path: Path, write) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

"""Video reading: one interface, decord first, PyAV as the fallback.

A *video* is a file. `open_video` returns a `Video` that knows its metadata (`VideoInfo`) and returns
uint8 RGB frames `(T, H, W, C)` for a list of frame indices in display order. Frames come out upright
(rotation metadata applied), from the video stream ffmpeg picks by default, whatever the file's
extension says: both decoders probe the content.

decord is used when it is installed and can open and decode the file; otherwise, or when decord fails on
a call, the same `Video` switches to PyAV once and retries. Readers are opened per video and closed by
`close()` or the `with` block: nothing is cached between videos.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av  # before decord: decord's bundled ffmpeg, loaded first, breaks PyAV's VP9 encoder
import numpy as np

try:  # decord has no wheel for some platforms; PyAV then serves every file.
    import decord

    decord.logging.set_level(decord.logging.QUIET)
except ImportError:  # pragma: no cover - exercised only where decord is missing
    decord = None

VIDEO_EXTENSIONS = (
    ".avi", ".mp4", ".m4v", ".mkv", ".mov", ".webm", ".gif", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ogv",
    ".ts", ".mts", ".vob",
)
BACKENDS = ("auto", "decord", "pyav")

# PyAV seeks instead of decoding forward when the next wanted frame is this many frames ahead.
_SEEK_AHEAD_FRAMES = 96
# Frames larger than this are refused before any is decoded: 8K (8192x4320, 35 Mpixel) fits, while a file of a few
# KB that declares 12000x12000 frames would otherwise cost ~0.4 GB per decoded RGB frame, gigabytes per clip.
MAX_FRAME_PIXELS = 40_000_000


class VideoError(ValueError):
    """A video that cannot be opened or decoded. The message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


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


def is_video_file(path: str | os.PathLike) -> bool:
    """True for a regular file whose extension is a known video extension (used to scan folders)."""
    p = Path(path)
    return p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()


def _short_side_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """Upright (width, height) after scaling the short side to `short_side`, both even, aspect kept."""
    if not short_side or min(width, height) <= short_side:
        return width, height
    scale = short_side / min(width, height)
    w = max(2, round(width * scale / 2) * 2)
    h = max(2, round(height * scale / 2) * 2)
    return w, h


def _check_readable(path: Path) -> None:
    if not path.exists():
        if path.is_symlink():
            raise VideoError(path, "broken symbolic link (its target is missing, or the link points to itself)")
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise VideoError(path, "is a directory, not a video file")
    if not os.access(path, os.R_OK):
        raise VideoError(path, "permission denied: the file is not readable")
    if path.stat().st_size == 0:
        raise VideoError(path, "empty file (0 bytes)")


def _check_frame_size(width: int, height: int) -> None:
    """Refuse frames too large to decode safely (a decompression bomb declares them in a tiny file)."""
    if width * height > MAX_FRAME_PIXELS:
        raise VideoTooLarge(f"declares {width}x{height} frames ({width * height / 1e6:.0f} Mpixel), more than the "
                            f"{MAX_FRAME_PIXELS / 1e6:.0f} Mpixel this reader decodes; refused before decoding")


def _declared_frame_size(path: Path) -> tuple[int, int]:
    """(width, height) of the default video stream as its header declares them, without decoding; (0, 0) when
    PyAV cannot tell (decord then opens the file, and its first decoded frame is checked instead)."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.best("video")
            return (stream.codec_context.width, stream.codec_context.height) if stream is not None else (0, 0)
    except Exception:  # decord may still read what PyAV cannot open; its own errors are reported then
        return 0, 0


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    # decord prefixes its messages with a timestamp and a C++ source location; keep the reason.
    text = re.sub(r"\[\d\d:\d\d:\d\d\]\s*", "", text)
    text = re.sub(r"\S+\.(?:cc|cpp|h):\d+:\s*", "", text)
    return f"{type(exc).__name__}: {text[:300]}"


def _plausible_timestamps(timestamps: np.ndarray, duration: float) -> bool:
    """Finite, non-decreasing, and no longer than a day: anything else is a decoder's placeholder."""
    return bool(
        np.isfinite(timestamps).all() and np.isfinite(duration) and (np.diff(timestamps) >= 0).all()
        and 0 <= duration < 86_400
    )


class _DecordBackend:
    name = "decord"

    def __init__(self, path: Path, short_side: int | None, num_threads: int):
        _check_frame_size(*_declared_frame_size(path))
        self._vr = decord.VideoReader(str(path), num_threads=num_threads)
        num_frames = len(self._vr)
        if num_frames == 0:
            raise RuntimeError("decord found no frames")
        height, width = self._vr[0].shape[:2]  # upright: decord applies the rotation
        _check_frame_size(width, height)
        out_w, out_h = _short_side_size(width, height, short_side)
        if (out_w, out_h) != (width, height):
            self._vr = decord.VideoReader(str(path), num_threads=num_threads, width=out_w, height=out_h)
        fps = float(self._vr.get_avg_fps())
        spans = self._vr.get_frame_timestamp(np.arange(num_frames)).astype(np.float64)  # (N, 2) start, end
        timestamps, duration = spans[:, 0] - spans[0, 0], spans[-1, 1] - spans[0, 0]
        if not _plausible_timestamps(timestamps, duration) and fps > 0:
            # Files without pts on some frames (old AVIs) give decord garbage times: use the nominal rate.
            timestamps, duration = np.arange(num_frames) / fps, num_frames / fps
        self.info = VideoInfo(
            path=str(path),
            num_frames=num_frames,
            fps=fps,
            duration_s=float(duration),
            width=out_w,
            height=out_h,
            timestamps=timestamps,
            backend=self.name,
        )

    def get_frames(self, indices: np.ndarray) -> np.ndarray:
        last = len(self._vr) - 1
        if last < 1 or last not in indices:
            return self._vr.get_batch(indices.tolist()).asnumpy()  # uint8 (T, H, W, C)
        # decord 0.6 returns a stale frame for the last frame when it seeks to it (seen on an mpeg4 AVI with one
        # keyframe: it repeats the frame decoded before); stepping onto it from the frame before reads it right.
        wanted = sorted(set(indices.tolist()) | {last - 1})
        frames = self._vr.get_batch(wanted).asnumpy()  # uint8 (len(wanted), H, W, C)
        return frames[np.searchsorted(wanted, indices)]

    def close(self) -> None:
        self._vr = None


class _PyAVBackend:
    """Decodes forward through the default video stream, seeking only over long gaps."""

    name = "pyav"

    def __init__(self, path: Path, short_side: int | None, num_threads: int):
        self._container = av.open(str(path), metadata_errors="ignore")
        try:
            self._open(path, short_side, num_threads)
        except BaseException:
            self._container.close()
            raise

    def _open(self, path: Path, short_side: int | None, num_threads: int) -> None:
        if not self._container.streams.video:
            raise RuntimeError("no video stream (audio-only or not a video)")
        self._stream = self._container.streams.best("video")  # ffmpeg's default pick
        _check_frame_size(self._stream.codec_context.width, self._stream.codec_context.height)
        self._stream.thread_type = "AUTO"
        self._stream.thread_count = num_threads
        pts, durations, cut_short = [], [], False
        for packet in self._container.demux(self._stream):
            if packet.size and packet.pts is not None:
                pts.append(packet.pts)
                durations.append(packet.duration or 0)
                cut_short = packet.is_corrupt  # the last packet of a truncated file is cut short
        if cut_short and not self._decodes(pts[-1]):
            pts, durations = pts[:-1], durations[:-1]  # count only the frames that come out
        if not pts:
            raise RuntimeError("the video stream holds no frames")
        order = np.argsort(pts, kind="stable")
        self._pts = np.asarray(pts, dtype=np.int64)[order]  # display order
        tb = float(self._stream.time_base)
        seconds = self._pts.astype(np.float64) * tb
        last_duration = durations[order[-1]] * tb
        rate = self._stream.average_rate or self._stream.guessed_rate
        fps = float(rate) if rate else (len(pts) - 1) / max(seconds[-1] - seconds[0], 1e-9)
        if last_duration <= 0:
            last_duration = 1.0 / fps if fps > 0 else 0.0
        # Decode the first frame now: it carries the rotation, and a file that cannot decode fails here.
        self._rewind()
        first = self._next_frame()
        if first is None:
            raise RuntimeError("no frame could be decoded")
        self._rotation = int(round((first.rotation or 0) / 90.0)) % 4  # quarter turns counter-clockwise
        self._seekable = self._pts_follow_display_order(first)
        raw_w, raw_h = first.width, first.height
        _check_frame_size(raw_w, raw_h)
        upright_w, upright_h = (raw_h, raw_w) if self._rotation % 2 else (raw_w, raw_h)
        out_w, out_h = _short_side_size(upright_w, upright_h, short_side)
        self._raw_size = (out_h, out_w) if self._rotation % 2 else (out_w, out_h)
        self._rewind()
        self.info = VideoInfo(
            path=str(path),
            num_frames=len(self._pts),
            fps=fps,
            duration_s=float(seconds[-1] - seconds[0] + last_duration),
            width=out_w,
            height=out_h,
            timestamps=seconds - seconds[0],
            backend=self.name,
        )

    def _pts_follow_display_order(self, first, probe: int = 8) -> bool:
        """Seeking places frames by pts, which is safe only where decoded frames carry increasing pts.
        AVIs with packed B-frames do not (their pts count packets), so those are decoded forward only."""
        pts = [first.pts]
        while len(pts) < probe and (frame := self._next_frame()) is not None:
            pts.append(frame.pts)
        return None not in pts and all(a < b for a, b in zip(pts, pts[1:]))

    def _rewind(self) -> None:
        self._container.seek(0, stream=self._stream, backward=True, any_frame=False)
        self._frames = self._decode()
        self._pending = None  # a frame decoded while seeking, not yet consumed
        self._position = -1  # display index of the last frame consumed

    def _decode(self):
        """Frames from the current position on. A packet cut short by the end of a truncated file (flagged corrupt
        by the demuxer) that the decoder rejects is passed over, so the frames before the cut still come out."""
        for packet in self._container.demux(self._stream):
            try:
                frames = packet.decode()  # the last, empty packet flushes the decoder
            except av.FFmpegError:
                if packet.is_corrupt:
                    continue
                raise
            yield from frames

    def _decodes(self, pts: int) -> bool:
        """Whether the frame of the packet at `pts` comes out of the decoder (checked for a truncated file's last
        packet, so that the frame count is the same whichever frames a clip asks for)."""
        try:
            self._container.seek(pts, stream=self._stream, backward=True)
            return any(frame.pts == pts for frame in self._decode())
        except av.FFmpegError:
            return False

    def _seek_before(self, target: int) -> None:
        """Jump to the keyframe at or before `target`; rewind when the demuxer overshoots."""
        self._container.seek(int(self._pts[target]), stream=self._stream, backward=True)
        self._frames = self._decode()
        frame = self._next_frame()
        # Only the first frame after a seek is placed by its pts: a keyframe's pts is reliable, while
        # the frames after it are counted in decoder output order, which is display order even where
        # pts are not (AVI files with packed B-frames label frames out of order).
        index = int(np.searchsorted(self._pts, frame.pts)) if frame is not None and frame.pts is not None else -1
        if index < 0 or index > target or self._pts[min(index, len(self._pts) - 1)] != frame.pts:
            self._rewind()
            return
        self._pending = frame
        self._position = index - 1

    def _next_frame(self):
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        return next(self._frames, None)

    def _to_array(self, frame) -> np.ndarray:
        out_w, out_h = self._raw_size
        image = frame.reformat(width=out_w, height=out_h, format="rgb24", interpolation="BICUBIC")
        array = image.to_ndarray()  # uint8 (H, W, 3), as stored
        if self._rotation:
            array = np.ascontiguousarray(np.rot90(array, k=self._rotation))
        return array

    def get_frames(self, indices: np.ndarray) -> np.ndarray:
        wanted = np.unique(indices)
        found: dict[int, np.ndarray] = {}
        for target in wanted:
            if target <= self._position:
                self._rewind()
            elif target - self._position > _SEEK_AHEAD_FRAMES and self._seekable:
                self._seek_before(int(target))
            while self._position < target:
                frame = self._next_frame()
                if frame is None:
                    raise RuntimeError(f"the stream ended before frame {target} of {len(self._pts)}")
                self._position += 1
                index = self._position
                if index in wanted and index not in found:
                    found[index] = self._to_array(frame)
            if target not in found:
                raise RuntimeError(f"frame {target} was not found while decoding")
        return np.stack([found[int(i)] for i in indices])  # uint8 (T, H, W, C)

    def close(self) -> None:
        self._container.close()


def _open_backend(name: str, path: Path, short_side: int | None, num_threads: int):
    if name == "decord":
        return _DecordBackend(path, short_side, num_threads)
    return _PyAVBackend(path, short_side, num_threads)


class Video:
    """A video file opened for reading.

    >>> with Video("clip.mp4") as video:
    ...     frames = video.get_frames([0, 10, 20])  # uint8 (3, H, W, 3), RGB, upright
    ...     video.info.num_frames, video.info.timestamps[:3]

    `backend="auto"` uses decord and falls back to PyAV when decord is missing, cannot open the file, or
    fails to decode it; `short_side` asks the decoder itself for frames whose short side is that many
    pixels (never upscaled), which is much cheaper than decoding full size and resizing afterwards.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        backend: str = "auto",
        short_side: int | None = None,
        num_threads: int = 1,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"unknown video backend {backend!r}; valid: {', '.join(BACKENDS)}")
        self.path = Path(path)
        self._short_side = short_side
        self._num_threads = num_threads
        self._errors: list[str] = []
        _check_readable(self.path)
        if backend == "auto":
            self._candidates = ["decord", "pyav"] if decord is not None else ["pyav"]
        elif backend == "decord" and decord is None:
            raise ValueError("video backend 'decord' was asked for, but decord is not installed")
        else:
            self._candidates = [backend]
        self._backend = None
        self._open_next()

    def _open_next(self) -> None:
        while self._candidates:
            name = self._candidates.pop(0)
            try:
                self._backend = _open_backend(name, self.path, self._short_side, self._num_threads)
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

    def get_frames(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """uint8 (T, H, W, C) RGB frames in the order of `indices` (display-order frame numbers)."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        num_frames = self.info.num_frames
        if indices.size and (indices.min() < 0 or indices.max() >= num_frames):
            raise IndexError(f"{self.path}: frame indices must lie in [0, {num_frames - 1}], got "
                             f"{indices.min()}..{indices.max()}")
        while True:
            try:
                return self._backend.get_frames(indices)
            except Exception as exc:  # try the next decoder, then report all reasons
                self._errors.append(f"{self._backend.name}: {_describe(exc)}")
                self._backend.close()
                if not self._candidates:
                    raise VideoError(self.path, "cannot be decoded (" + "; ".join(self._errors) + ")") from exc
                self._open_next()
                if self.info.num_frames <= indices.max():
                    raise VideoError(self.path, f"the fallback decoder finds {self.info.num_frames} frames, "
                                     f"fewer than asked for ({'; '.join(self._errors)})") from exc

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


_ENCODERS = {".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".mkv": "libx264", ".avi": "mpeg4",
             ".webm": "libvpx-vp9", ".gif": "gif"}


class VideoWriter:
    """Encode RGB frames to a file, one at a time; the codec follows the extension (mp4/mov/mkv: H.264,
    avi: MPEG-4 part 2, webm: VP9, gif). The file is complete and playable once `close()` returns, also
    when the writer is closed early by an exception inside the `with` block."""

    def __init__(self, path: str | os.PathLike, fps: float, quality: int = 20):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _ENCODERS:
            raise ValueError(f"{self.path}: cannot encode {suffix or 'files without extension'}; "
                             f"valid: {', '.join(sorted(_ENCODERS))}")
        self._codec = _ENCODERS[suffix]
        self._fps = fps
        self._quality = quality
        self._container = av.open(str(self.path), mode="w")
        self._stream = None
        self.num_frames = 0

    def _open_stream(self, height: int, width: int) -> None:
        from fractions import Fraction

        rate = Fraction(self._fps).limit_denominator(1001)
        self._stream = self._container.add_stream(self._codec, rate=rate)
        self._stream.width, self._stream.height = width, height
        if self._codec == "gif":
            self._stream.pix_fmt = "rgb8"
        else:
            self._stream.pix_fmt = "yuv420p"
        if self._codec == "libx264":
            # superfast on one thread: the same frames always give the same bytes (PyAV 18's libx264 at
            # veryfast and slower reads uninitialised memory, and its output varies from run to run).
            self._stream.options = {"crf": str(self._quality), "preset": "superfast", "threads": "1"}
        elif self._codec == "mpeg4":
            # Constant quantiser, as `ffmpeg -q:v N`: quality 18 -> q 2 (1 best .. 31 worst).
            self._stream.options = {"threads": "1"}
            self._stream.codec_context.qscale = True
            self._stream.codec_context.global_quality = max(1, min(31, self._quality // 7)) * 118  # FF_QP2LAMBDA
        elif self._codec == "libvpx-vp9":
            self._stream.options = {"crf": str(self._quality + 10), "b": "0"}  # constant quality

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 (H, W, 3) RGB frame; H and W must stay the same (even sizes for H.264)."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"{self.path}: frames must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        if self._stream is None:
            self._open_stream(*frame.shape[:2])
        image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(image):
            self._container.mux(packet)
        self.num_frames += 1

    def close(self) -> None:
        if self._container is None:
            return
        try:
            if self._stream is not None:
                for packet in self._stream.encode():  # flush the encoder
                    self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        try:
            self.close()
        except Exception:
            if exc_type is None:
                raise  # otherwise the error that ended the block is the one worth reporting


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float, quality: int = 20) -> Path:
    """Encode uint8 frames (T, H, W, 3) RGB to `path`; the codec follows the extension."""
    with VideoWriter(path, fps, quality) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)

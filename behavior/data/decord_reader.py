"""The decord reader: the fast path of `behavior.data.video.Video`, for every file decord can open and decode.

Frames come out upright (decord applies the rotation metadata) and, with `short_side`, scaled by the decoder
itself. Each video is opened once, by decord: its header gives the declared size, which refuses decompression
bombs before decord allocates anything, and the rotation that makes it upright, so decord is opened at the right
size straight away and no frame is decoded to learn the shape. For H.264 in MP4/MOV and MPEG-4 part 2 in AVI the
header is read directly (`behavior.data.headers`, a few small reads); other containers and codecs, and files with
several video streams, are probed by PyAV first (opened, not decoded).
"""

from __future__ import annotations

import struct
from pathlib import Path

import av  # before decord: decord's bundled ffmpeg, loaded first, breaks PyAV's VP9 encoder
import numpy as np

from behavior.data.headers import mp4_quarter_turns, video_header
from behavior.data.video_info import VideoInfo, check_frame_size, plausible_timestamps, short_side_size

try:  # decord has no wheel for some platforms; PyAV then serves every file.
    import decord

    decord.logging.set_level(decord.logging.QUIET)
except ImportError:  # pragma: no cover - exercised only where decord is missing
    decord = None


def probe(path: Path) -> tuple[int, int, int] | None:
    """(width, height, quarter turns) of the default video stream from its header, without decoding: the size as
    stored and the turns that make it upright; None when PyAV cannot tell (decord then opens the file, and its
    first decoded frame gives the size)."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.best("video")
            if stream is None:
                return None
            width, height, track = stream.codec_context.width, stream.codec_context.height, stream.id
            iso_bmff = bool({"mov", "mp4"} & set(container.format.name.split(",")))
    except Exception:  # decord may still read what PyAV cannot open; its own errors are reported then
        return None
    if not width or not height:
        return None
    try:  # MP4/MOV carry their rotation in the track header; ffmpeg attaches it to no other container decord reads
        turns = mp4_quarter_turns(path, track) if iso_bmff else 0
    except (OSError, struct.error):
        turns = 0
    return width, height, turns


class DecordReader:
    name = "decord"

    def __init__(self, path: Path, short_side: int | None, num_threads: int):
        declared = video_header(path) or probe(path)  # H.264 MP4/MOV, MPEG-4 AVI: header reads; others: PyAV
        if declared is not None:
            width, height, turns = declared
            check_frame_size(width, height)  # before decord allocates anything
            if turns % 2:
                width, height = height, width  # upright: decord turns the frames
            out_w, out_h = short_side_size(width, height, short_side)
            scaled = {} if (out_w, out_h) == (width, height) else {"width": out_w, "height": out_h}
            self._vr = decord.VideoReader(str(path), num_threads=num_threads, **scaled)
        else:  # no header PyAV can read: the first decoded frame tells the upright size
            self._vr = decord.VideoReader(str(path), num_threads=num_threads)
            height, width = self._vr[0].shape[:2]
            check_frame_size(width, height)
            out_w, out_h = short_side_size(width, height, short_side)
            if (out_w, out_h) != (width, height):
                self._vr = decord.VideoReader(str(path), num_threads=num_threads, width=out_w, height=out_h)
        num_frames = len(self._vr)
        if num_frames == 0:
            raise RuntimeError("decord found no frames")
        fps = float(self._vr.get_avg_fps())
        spans = self._vr.get_frame_timestamp(np.arange(num_frames)).astype(np.float64)  # (N, 2) start, end
        timestamps, duration = spans[:, 0] - spans[0, 0], spans[-1, 1] - spans[0, 0]
        if not plausible_timestamps(timestamps, duration) and fps > 0:
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

    def get_frames(self, indices: np.ndarray, last: bool = False) -> np.ndarray:
        final = len(self._vr) - 1  # the video's last frame
        if final < 1 or final not in indices:
            frames = self._vr.get_batch(indices.tolist()).asnumpy()  # uint8 (T, H, W, C)
        else:
            # decord 0.6 returns a stale frame for the last frame when it seeks to it (seen on an mpeg4 AVI with one
            # keyframe: it repeats the frame decoded before); stepping onto it from the frame before reads it right.
            wanted = sorted(set(indices.tolist()) | {final - 1})
            frames = self._vr.get_batch(wanted).asnumpy()  # uint8 (len(wanted), H, W, C)
            frames = frames[np.searchsorted(wanted, indices)]  # uint8 (T, H, W, C)
        if not last:  # a reader kept open between reads must not decode ahead meanwhile
            self._drop_read_ahead()
        if frames.shape[1:] != (self.info.height, self.info.width, 3):
            # rotation metadata the header probe does not read (or a decord quirk): Video falls back to PyAV
            raise RuntimeError(
                f"decord returned frames of {frames.shape[2]}x{frames.shape[1]}x{frames.shape[3]}, not the "
                f"{self.info.width}x{self.info.height} RGB its header declares"
            )
        return frames

    def _drop_read_ahead(self) -> None:
        """decord 0.6 keeps demuxing ahead of the frames it returned, and its decoder thread decodes that backlog
        into a queue nobody reads until the next seek: 95-434 MB and a busy core in a reader that waits between
        calls (a window-prediction worker between chunks). A seek drops it."""
        try:
            self._vr.seek(0)
        except Exception:  # only a saving: the frames are already read
            pass

    def close(self) -> None:
        self._vr = None

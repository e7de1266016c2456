"""Writing video: `VideoWriter` encodes RGB frames one at a time, `write_video` a whole array. The codec follows
the file's extension. Used by the synthetic data set, live mode's annotated output and the attention pictures."""

from __future__ import annotations

import os
from pathlib import Path

import av
import cv2
import numpy as np

from behavior.errors import UsageError

_ENCODERS = {
    ".mp4": "libx264",
    ".m4v": "libx264",
    ".mov": "libx264",
    ".mkv": "libx264",
    ".avi": "mpeg4",
    ".webm": "libvpx-vp9",
    ".gif": "gif",
}


class VideoWriter:
    """Encode RGB frames to a file, one at a time; the codec follows the extension (mp4/mov/mkv: H.264,
    avi: MPEG-4 part 2, webm: VP9, gif). The file is complete and playable once `close()` returns, also
    when the writer is closed early by an exception inside the `with` block."""

    def __init__(self, path: str | os.PathLike, fps: float, quality: int = 20, realtime: bool = False):
        """`realtime` (live mode's output): H.264 at x264's ultrafast preset instead of superfast, and RGB
        converted to YUV 4:2:0 by OpenCV instead of ffmpeg's swscale (both BT.601, limited range: on the real
        vtest.avi the decoded frames differ from the input by 2.01 levels on average, 2.07 with swscale; random
        colour noise loses ~12% more to OpenCV's chroma subsampling). A 768x576 frame then takes 5.5 instead of
        13.3 ms on the 2-core benchmark machine (conversion 1.0 vs 5.0, encoding 4.4 vs 8.3) and the file is
        ~1.5x larger. Off by default, so that the synthetic data set's bytes stay as they were."""
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _ENCODERS:
            raise UsageError(
                f"{self.path}: cannot encode {suffix or 'files without extension'}; "
                f"valid: {', '.join(sorted(_ENCODERS))}"
            )
        self._codec = _ENCODERS[suffix]
        self._fps = fps
        self._quality = quality
        self._realtime = realtime
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
            # ultrafast (realtime) is as deterministic.
            preset = "ultrafast" if self._realtime else "superfast"
            self._stream.options = {"crf": str(self._quality), "preset": preset, "threads": "1"}
        elif self._codec == "mpeg4":
            # Constant quantiser, as `ffmpeg -q:v N`: quality 18 -> q 2 (1 best .. 31 worst).
            self._stream.options = {"threads": "1"}
            self._stream.codec_context.qscale = True
            quantiser = max(1, min(31, self._quality // 7))
            self._stream.codec_context.global_quality = quantiser * 118  # FF_QP2LAMBDA
        elif self._codec == "libvpx-vp9":
            self._stream.options = {"crf": str(self._quality + 10), "b": "0"}  # constant quality

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 (H, W, 3) RGB frame; H and W must stay the same (even sizes for H.264)."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"{self.path}: frames must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        if self._stream is None:
            self._open_stream(*frame.shape[:2])
        frame = np.ascontiguousarray(frame)
        if self._realtime and self._stream.pix_fmt == "yuv420p":
            yuv = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420)  # uint8 (H·3/2, W)
            image = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        else:
            image = av.VideoFrame.from_ndarray(frame, format="rgb24")
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

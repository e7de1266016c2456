"""Where live mode's frames come from: a camera (OpenCV), a stream URL (PyAV) or a file (the package's reader,
`behavior.data.video.Video`, as every other path reads it). Each gives frames as they arrive, uint8 RGB (H, W,
3), upright, with their time in seconds since the first frame; a source that stops part-way ends the iteration
cleanly with one line on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import cv2
import numpy as np

from behavior.data.pyav_reader import quarter_turns, upright_rgb
from behavior.data.video import Video
from behavior.data.video_info import VideoTooLarge, check_frame_size
from behavior.errors import SourceError, VideoError


def open_source(source: str, backend: str = "auto") -> tuple[Iterator[tuple[np.ndarray, float]], float]:
    """Frames as they arrive: an iterator of (uint8 RGB (H, W, 3), seconds since the first frame), and the
    source's nominal frame rate. A digit is a camera index (OpenCV); a URL a stream (PyAV); anything else a
    file, read by the same reader as every other path (`behavior.data.video.Video`, with `backend`)."""
    if source.isdigit():
        capture = cv2.VideoCapture(int(source))
        if not capture.isOpened():
            raise SourceError(f"camera {source} cannot be opened (no such device, or it is busy)")
        fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
        return _camera_frames(capture), fps
    if "://" in source:
        return _open_stream(source)
    try:
        video = Video(source, backend=backend)
    except (VideoError, FileNotFoundError) as exc:
        raise SourceError(str(exc)) from None
    return _file_frames(video), video.info.fps or 30.0


def _camera_frames(capture) -> Iterator[tuple[np.ndarray, float]]:
    started = time.perf_counter()
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame[..., ::-1].copy(), time.perf_counter() - started  # BGR -> RGB
    finally:
        capture.release()


def _file_frames(video: Video, chunk: int = 16) -> Iterator[tuple[np.ndarray, float]]:
    """The frames of a file in display order, decoded `chunk` at a time; a file broken part-way ends the run
    cleanly at the break."""
    info = video.info
    try:
        for start in range(0, info.num_frames, chunk):
            indices = np.arange(start, min(start + chunk, info.num_frames))
            try:
                frames = video.get_frames(indices)  # uint8 (n, H, W, 3)
            except VideoError as exc:
                print(f"live: the stream stopped: {exc}", file=sys.stderr)
                return
            for index, frame in zip(indices, frames):
                yield frame, float(info.timestamps[index])
    finally:
        video.close()


def _open_stream(url: str) -> tuple[Iterator[tuple[np.ndarray, float]], float]:
    import av

    try:
        container = av.open(url, timeout=10.0)
        stream = container.streams.best("video")
        if stream is None:
            raise SourceError(f"{url}: holds no video stream")
        check_frame_size(stream.codec_context.width, stream.codec_context.height)
    except av.FFmpegError as exc:
        raise SourceError(f"{url} cannot be opened: {' '.join(str(exc).split())}") from None
    except VideoTooLarge as exc:
        raise SourceError(f"{url}: {exc}") from None
    rate = stream.average_rate or stream.guessed_rate
    return _stream_frames(container, stream), float(rate) if rate else 30.0


def _stream_frames(container, stream) -> Iterator[tuple[np.ndarray, float]]:
    import av

    first = None
    try:
        for frame in container.decode(stream):
            image = upright_rgb(frame, quarter_turns(frame), (frame.width, frame.height))
            seconds = float(frame.time) if frame.time is not None else None
            first = seconds if first is None else first
            yield image, (seconds - first) if seconds is not None else 0.0
    except av.FFmpegError as exc:  # a dropped stream ends the run, cleanly
        print(f"live: the stream stopped: {' '.join(str(exc).split())}", file=sys.stderr)
    finally:
        container.close()

"""The PyAV reader: the fallback of `behavior.data.video.Video` (GIFs, streams decord cannot open, files where decord
fails), decoding forward through the default video stream, seeking over long gaps and back to the keyframe before a
frame already passed."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from behavior.data.video_info import VideoInfo, check_frame_size, short_side_size

# Seek instead of decoding forward when the next wanted frame is this many frames ahead.
_SEEK_AHEAD_FRAMES = 96


def quarter_turns(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns that make a decoded frame upright (its rotation metadata)."""
    return int(round((frame.rotation or 0) / 90.0)) % 4


def upright_rgb(frame: av.VideoFrame, turns: int, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, 3) RGB of a decoded frame, scaled to `size` (width, height as stored) and turned upright by
    `turns` quarter turns."""
    image = frame.reformat(width=size[0], height=size[1], format="rgb24", interpolation="BICUBIC")
    return turned_upright(image.to_ndarray(), turns)  # from uint8 (H, W, 3) as stored


def turned_upright(array: np.ndarray, turns: int) -> np.ndarray:
    """uint8 (H, W, 3) as stored -> upright, by `turns` counter-clockwise quarter turns."""
    return np.ascontiguousarray(np.rot90(array, k=turns)) if turns else array


class DecordScaler:
    """Frames scaled to `size` (width, height as stored) as decord scales them: an ffmpeg filter graph of
    `scale=W:H:flags=bilinear` and then `format=rgb24`. Its pixels equal decord's (on the synthetic clips and
    long videos), where `frame.reformat` differs by about one level on average: a video that falls back to PyAV
    reaches the model as decord would have decoded it. The graph is built for the first frame's format and size and
    again when they change."""

    def __init__(self, size: tuple[int, int]):
        self.size = size
        self._graph: av.filter.Graph | None = None
        self._input: tuple[int, int, str] | None = None

    def _build(self, frame: av.VideoFrame) -> None:
        graph = av.filter.Graph()
        source = graph.add_buffer(
            width=frame.width, height=frame.height, format=frame.format.name, time_base=Fraction(1, 1000)
        )
        scale = graph.add("scale", f"{self.size[0]}:{self.size[1]}:flags=bilinear")
        rgb = graph.add("format", "rgb24")
        sink = graph.add("buffersink")
        source.link_to(scale)
        scale.link_to(rgb)
        rgb.link_to(sink)
        graph.configure()
        self._graph, self._input = graph, (frame.width, frame.height, frame.format.name)

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        """uint8 (H, W, 3) RGB, as stored (not turned)."""
        if self._input != (frame.width, frame.height, frame.format.name):
            self._build(frame)
        self._graph.push(frame)
        return self._graph.pull().to_ndarray()  # uint8 (H, W, 3)


class PyAVReader:
    """Decodes forward through the default video stream, seeking over long gaps and back to the keyframe before a
    frame already passed."""

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
        check_frame_size(self._stream.codec_context.width, self._stream.codec_context.height)
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
        self._rotation = quarter_turns(first)
        self._seekable = self._pts_follow_display_order(first)
        raw_w, raw_h = first.width, first.height
        check_frame_size(raw_w, raw_h)
        upright_w, upright_h = (raw_h, raw_w) if self._rotation % 2 else (raw_w, raw_h)
        out_w, out_h = short_side_size(upright_w, upright_h, short_side)
        self._raw_size = (out_h, out_w) if self._rotation % 2 else (out_w, out_h)
        self._scaler = DecordScaler(self._raw_size)
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
        index = (
            int(np.searchsorted(self._pts, frame.pts)) if frame is not None and frame.pts is not None else -1
        )
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
        if (frame.width, frame.height) == self._raw_size:  # no scaling: reformat's conversion equals decord's
            return upright_rgb(frame, self._rotation, self._raw_size)
        return turned_upright(self._scaler(frame), self._rotation)

    def get_frames(self, indices: np.ndarray, last: bool = False) -> np.ndarray:  # PyAV reads nothing ahead
        wanted = np.unique(indices)
        found: dict[int, np.ndarray] = {}
        for target in wanted:
            if target <= self._position:
                # back to a frame already passed (the overlapping windows of a long video do this every chunk):
                # from the keyframe before it where pts allow, not from the start (quadratic over a long video)
                if self._seekable:
                    self._seek_before(int(target))
                else:
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

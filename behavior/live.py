"""`behavior live`: predict as frames arrive, from a camera, a stream or a file, and draw what the model sees.

Prediction is incremental. Each new frame goes through the evaluation transform and the backbone once
(`forward_frames`); its feature joins a ring buffer that holds the last `clip_seconds` (how long the
training videos were); the evaluation sampler picks T features from the buffer by their timestamps, exactly
as it picks T frames from a video; and the temporal head (`forward_head`) runs on those. The cost per frame
is one backbone pass, not T. A model with the temporal shift (TSM) cannot run frames on their own: for it
the buffer holds frames and each update runs the whole clip of the T picked frames.

Every output frame shows the current label and score, and the spatial-attention heatmap of that frame
blended over the region the model saw; with `roi`, Haar cascades that ship inside OpenCV find a face or a
body, the model sees only that region, and the boxes are drawn.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from behavior.checkpoint import load_trained_model
from behavior.overlay import draw_boxes, draw_label, heatmap_overlay
from behavior.sampling import sample_indices
from behavior.transforms import ClipTransform
from behavior.video import MAX_FRAME_PIXELS, VideoWriter

ROI_CASCADES = {"face": "haarcascade_frontalface_default.xml", "body": "haarcascade_fullbody.xml"}


class SourceError(ValueError):
    """A camera, stream or file that cannot be opened."""


def open_source(source: str) -> tuple[Iterator[tuple[np.ndarray, float]], float]:
    """Frames as they arrive: an iterator of (uint8 RGB (H, W, 3), seconds since the first frame), and the
    source's nominal frame rate. A digit is a camera index (OpenCV); anything else a file or URL (PyAV)."""
    if source.isdigit():
        capture = cv2.VideoCapture(int(source))
        if not capture.isOpened():
            raise SourceError(f"camera {source} cannot be opened (no such device, or it is busy)")
        fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
        return _camera_frames(capture), fps
    import av

    if "://" not in source and not Path(source).exists():
        what = "broken symbolic link (its target is missing, or it points to itself)" if Path(source).is_symlink() \
            else "no such file"
        raise SourceError(f"{source}: {what}")
    try:
        container = av.open(source, timeout=10.0)
        stream = container.streams.best("video")
        if stream is None:
            raise SourceError(f"{source}: holds no video stream")
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > MAX_FRAME_PIXELS:
            raise SourceError(f"{source}: declares {width}x{height} frames, more than the "
                              f"{MAX_FRAME_PIXELS / 1e6:.0f} Mpixel this reader decodes")
    except av.FFmpegError as exc:
        raise SourceError(f"{source} cannot be opened: {' '.join(str(exc).split())}") from None
    rate = stream.average_rate or stream.guessed_rate
    return _stream_frames(container, stream), float(rate) if rate else 30.0


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


def _stream_frames(container, stream) -> Iterator[tuple[np.ndarray, float]]:
    import av

    first = None
    try:
        for frame in container.decode(stream):
            image = frame.to_ndarray(format="rgb24")
            turns = int(round((frame.rotation or 0) / 90.0)) % 4
            if turns:
                image = np.ascontiguousarray(np.rot90(image, k=turns))
            seconds = float(frame.time) if frame.time is not None else None
            first = seconds if first is None else first
            yield image, (seconds - first) if seconds is not None else 0.0
    except av.FFmpegError as exc:  # a dropped stream or a broken file ends the run, cleanly
        print(f"live: the stream stopped: {' '.join(str(exc).split())}", file=sys.stderr)
    finally:
        container.close()


class RoiDetector:
    """Face or body boxes from OpenCV's bundled Haar cascades; remembers the last box between detections."""

    def __init__(self, kind: str):
        if kind not in ROI_CASCADES:
            raise ValueError(f"roi={kind!r} is unknown; valid: none, {', '.join(ROI_CASCADES)}")
        path = os.path.join(cv2.data.haarcascades, ROI_CASCADES[kind])
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise ValueError(f"the Haar cascade {path} could not be loaded")
        self.last: tuple[int, int, int, int] | None = None

    def __call__(self, frame: np.ndarray, work_width: int = 320) -> list[tuple[int, int, int, int]]:
        """Boxes (x0, y0, x1, y1) in frame pixels; the search runs on a copy at most `work_width` wide."""
        scale = min(1.0, work_width / frame.shape[1])
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        found = self.cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=4, minSize=(20, 20))
        boxes = [tuple(int(round(v / scale)) for v in (x, y, x + w, y + h)) for x, y, w, h in found]
        if boxes:
            self.last = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        return boxes


def roi_square(box: tuple[int, int, int, int], height: int, width: int, margin: float = 0.5) -> tuple[int, int, int, int]:
    """A square around `box`, grown by `margin` on each side, kept inside the frame."""
    x0, y0, x1, y1 = box
    side = int(max(x1 - x0, y1 - y0) * (1 + 2 * margin))
    side = min(side, height, width)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    left = min(max(0, cx - side // 2), width - side)
    top = min(max(0, cy - side // 2), height - side)
    return left, top, left + side, top + side


class StreamClassifier:
    """The incremental model: one backbone pass per frame, a ring buffer of features, the head on T of them.

    A model with the temporal shift (TSM) mixes each frame's features with its neighbours' inside the backbone,
    so a frame's features depend on the frames picked beside it: for such a model the buffer holds transformed
    frames instead, and every update runs the whole clip of the T picked frames (T backbone passes per frame).
    """

    def __init__(self, model, cfg, clip_seconds: float, device: torch.device):
        self.model = model
        self.device = device
        self.transform = ClipTransform(cfg.transform, train=False)
        self.sampler = replace(cfg.sampler, num_views=1, time_based=True)
        self.num_frames = cfg.sampler.num_frames
        self.clip_seconds = clip_seconds
        self.whole_clips = bool(cfg.model.temporal_shift)
        # (seconds, feature (D,)), or (seconds, transformed frame (C, H, W)) for a whole-clip model
        self.buffer: deque[tuple[float, torch.Tensor]] = deque()

    @torch.inference_mode()
    def add_frame(self, frame: np.ndarray, seconds: float) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Feed one RGB frame; returns (class probabilities (K,) or None while warming up, attention (h, w))."""
        clip = self.transform(frame[None]).to(self.device)  # float (1, C, H, W)
        if self.whole_clips:
            item, attention = clip[0], None
        else:
            feature, attention = self.model.forward_frames(clip, return_attention=True)  # (1, D), (1, h, w)
            item = feature[0]
            attention = attention[0].float().cpu().numpy() if attention is not None else None
        self.buffer.append((seconds, item))
        while self.buffer and seconds - self.buffer[0][0] > self.clip_seconds:
            self.buffer.popleft()
        if len(self.buffer) < self.num_frames:
            return None, attention
        times = np.array([t for t, _ in self.buffer]) - self.buffer[0][0]
        picked = sample_indices(len(times), self.sampler, train=False, timestamps=times)[0]  # (T,)
        stacked = torch.stack([self.buffer[i][1] for i in picked])[None]  # (1, T, D) or (1, T, C, H, W)
        if not self.whole_clips:
            probs = self.model.forward_head(stacked).float().softmax(dim=-1)[0].cpu().numpy()  # (K,)
            return probs, attention
        logits, maps = self.model(stacked, return_attention=True)  # (1, K), spatial (1, T, h, w) | None
        probs = logits.float().softmax(dim=-1)[0].cpu().numpy()  # (K,)
        # the newest picked frame's map: the sampler's last pick lies in the newest segment of the buffer
        attention = maps.spatial[0, -1].float().cpu().numpy() if maps.spatial is not None else None
        return probs, attention


@dataclass
class LiveSummary:
    frames: int
    seconds: float
    source_fps: float
    out: Path | None
    stopped: str  # why the loop ended: "end of stream", "max frames", "interrupted"

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def run_live(checkpoint: str | os.PathLike, source: str, out: str | os.PathLike | None = None, show: bool = False,
             roi: str = "none", max_frames: int | None = None) -> LiveSummary:
    """Run the incremental model over a source, drawing every frame to `out` and/or a window."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, cfg = load_trained_model(checkpoint, device)
    clip_seconds = model.clip_seconds or 2.5  # a checkpoint without it: about the length of a short clip
    detector = RoiDetector(roi) if roi != "none" else None
    frames, source_fps = open_source(source)
    classifier = StreamClassifier(model, cfg, clip_seconds, device)
    writer = VideoWriter(out, fps=source_fps) if out else None
    window = show
    count, stopped, started = 0, "end of stream", time.perf_counter()
    try:
        for frame, seconds in frames:
            boxes: list[tuple[int, int, int, int]] = []
            region = (0, 0, frame.shape[1], frame.shape[0])
            if detector is not None:
                boxes = detector(frame)
                if detector.last is not None:
                    region = roi_square(detector.last, *frame.shape[:2])
            view = frame[region[1] : region[3], region[0] : region[2]]
            probs, attention = classifier.add_frame(view, seconds)
            box = classifier.transform.crop_box(*view.shape[:2])
            box = (box[0] + region[0], box[1] + region[1], box[2] + region[0], box[3] + region[1])
            drawn = heatmap_overlay(frame, attention, box) if attention is not None else frame
            drawn = draw_boxes(drawn, boxes)
            if probs is None:
                drawn = draw_label(drawn, "warming up")
            else:
                best = int(probs.argmax())
                drawn = draw_label(drawn, model.class_names[best], float(probs[best]))
            if writer is not None:
                if drawn.shape[0] % 2 or drawn.shape[1] % 2:  # H.264 wants even sizes
                    drawn = drawn[: drawn.shape[0] // 2 * 2, : drawn.shape[1] // 2 * 2]
                writer.write(np.ascontiguousarray(drawn))
            if window:
                window = _show(drawn)
            count += 1
            if max_frames and count >= max_frames:
                stopped = "max frames"
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        if writer is not None:
            writer.close()  # the file is complete and playable whatever ended the loop
        if show:
            _close_windows()
    return LiveSummary(count, time.perf_counter() - started, source_fps, Path(out) if out else None, stopped)


def _show(frame: np.ndarray) -> bool:
    """Show a frame in a window; False (and one notice) where there is no display."""
    try:
        cv2.imshow("behavior live", frame[..., ::-1])
        if cv2.waitKey(1) & 0xFF == ord("q"):
            raise KeyboardInterrupt
        return True
    except cv2.error:
        print("live: no display available, --show is ignored (use --out to save the annotated video)", file=sys.stderr)
        return False


def _close_windows() -> None:
    try:
        cv2.destroyAllWindows()
    except cv2.error:
        pass

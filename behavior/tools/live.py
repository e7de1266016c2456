"""`behavior live`: predict as frames arrive, from a camera, a stream or a file, and draw what the model sees.

Prediction is incremental, and how depends on the model's temporal shift (`StreamClassifier.mode`):
- `frames` (no shift): each new frame goes through the evaluation transform and the backbone once
  (`forward_frames`); its feature joins a ring buffer that holds the last `clip_seconds` (how long the
  training videos were); the evaluation sampler picks T features from the buffer by their timestamps, exactly
  as it picks T frames from a video; and the temporal head (`forward_head`) runs on those. One backbone pass
  per frame.
- `online` (the online shift, `model.shift: online`): each new frame goes through the backbone once
  (`forward_step`) with the shifted slices of its predecessor, the newest buffered frame at least one clip step
  (`clip_seconds / T`) older; the head runs on the features of the newest frame and its T - 1 predecessors
  along that chain. One backbone pass per frame.
- `clips` (the two-way shift): a frame's features depend on the frame after it, so the buffer holds transformed
  frames and every update runs the whole clip of the T picked frames: T backbone passes per frame.

Scores are the checkpoint's calibrated probabilities; when the rejection score of the current clip falls below
the checkpoint's threshold (or the one given to `run_live`), the label shown is `unknown`, with the closest
behaviour beside it. Every output frame shows the current label and score, and the spatial-attention heatmap of
that frame blended over the region the model saw (in uint8); with `roi`, Haar cascades that ship inside OpenCV
find a face or a body, the model sees only that region, and the boxes are drawn. Frames are encoded on a thread
of their own, so the model does not wait for the encoder. `engine` runs the model in PyTorch or, exported once
and cached, on ONNX Runtime (`behavior.tools.engines`).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from behavior.config import DEFAULT_ENGINE
from behavior.data.datasets import span_recipe
from behavior.data.sampling import sample_indices
from behavior.data.writer import VideoWriter
from behavior.engine.confidence import UNKNOWN, Confidence, Judged, prediction_rule
from behavior.engine.runtime import choose_device
from behavior.errors import UsageError
from behavior.pictures.overlay import draw_boxes, draw_label, heatmap_overlay
from behavior.tools.engines import engine_device, load_engine
from behavior.tools.sources import open_source

ROI_CASCADES = {"face": "haarcascade_frontalface_default.xml", "body": "haarcascade_fullbody.xml"}


class RoiDetector:
    """Face or body boxes from OpenCV's bundled Haar cascades; remembers the last box between detections."""

    def __init__(self, kind: str):
        if kind not in ROI_CASCADES:
            raise UsageError(f"roi={kind!r} is unknown; valid: none, {', '.join(ROI_CASCADES)}")
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


def roi_square(
    box: tuple[int, int, int, int], height: int, width: int, margin: float = 0.5
) -> tuple[int, int, int, int]:
    """A square around `box`, grown by `margin` on each side, kept inside the frame."""
    x0, y0, x1, y1 = box
    side = int(max(x1 - x0, y1 - y0) * (1 + 2 * margin))
    side = min(side, height, width)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    left = min(max(0, cx - side // 2), width - side)
    top = min(max(0, cy - side // 2), height - side)
    return left, top, left + side, top + side


@dataclass
class Buffered:
    """One frame in the live buffer: its time, and its feature (D,) (or, for `clips`, the transformed frame
    (C, H, W)); for `online` also the shifted slices it hands to a later frame."""

    seconds: float
    item: torch.Tensor
    shifted: list[torch.Tensor] | None = None


class StreamClassifier:
    """The incremental model: a ring buffer of the last frames' features and the head on T of them; one backbone
    pass per frame without a shift or with the online one, T passes with the two-way shift (see the module)."""

    def __init__(
        self, model, cfg, clip_seconds: float, device: torch.device, confidence: Confidence | None = None
    ):
        self.model = model
        self.device = device
        # the temperature and rejection rule: the checkpoint's unless given
        self.confidence = confidence or getattr(model, "confidence", None) or Confidence()
        recipe = span_recipe(cfg)  # the evaluation sampler (one view, on the timestamps) and transform
        self.transform = recipe.transform
        self.sampler = recipe.sampler
        self.num_frames = cfg.sampler.num_frames
        self.clip_seconds = clip_seconds
        self.step_seconds = clip_seconds / self.num_frames  # online: how much older a frame's predecessor is
        if not model.mixes_frames:
            self.mode = "frames"
        else:
            self.mode = "online" if model.streams_frames else "clips"
        # online chains reach back a little over clip_seconds (frame times do not fall on the steps exactly)
        self.keep_seconds = 2 * clip_seconds if self.mode == "online" else clip_seconds
        self.buffer: deque[Buffered] = deque()

    @property
    def whole_clips(self) -> bool:
        return self.mode == "clips"

    @torch.inference_mode()
    def add_frame(self, frame: np.ndarray, seconds: float) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Feed one RGB frame; returns (calibrated class probabilities (K,) or None while warming up, attention
        (h, w))."""
        judged, attention = self.judge_after(frame, seconds)
        return (None if judged is None else judged.probabilities[0]), attention

    @torch.inference_mode()
    def judge_after(self, frame: np.ndarray, seconds: float) -> tuple[Judged | None, np.ndarray | None]:
        """Feed one RGB frame; returns (the current clip judged by `confidence`: calibrated probabilities (1, K),
        rejection score (1,), unknown (1,); or None while warming up, and the attention map (h, w) or None)."""
        needs_features = self.confidence.score == "prototype" and self.confidence.rejects
        logits, features, attention = self._outputs_after(frame, seconds, needs_features)
        if logits is None:
            return None, attention
        features = None if features is None else features.float().cpu().numpy()[None, None]  # (1, 1, D)
        return self.confidence.judge(logits.float().cpu().numpy()[None, None], features), attention

    @torch.inference_mode()
    def logits_after(
        self, frame: np.ndarray, seconds: float
    ) -> tuple[torch.Tensor | None, np.ndarray | None]:
        """Feed one RGB frame; returns (logits float (K,) of the T frames the model sees after it, or None while
        warming up; the newest frame's attention map (h, w) in [0, 1], or None)."""
        logits, _, attention = self._outputs_after(frame, seconds, features=False)
        return logits, attention

    def _outputs_after(
        self, frame: np.ndarray, seconds: float, features: bool
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, np.ndarray | None]:
        """(logits (K,), the clip feature (D,) when `features`, attention (h, w)) after one more frame; logits and
        feature are None while warming up."""
        clip = self.transform(frame[None]).to(self.device)  # float (1, C, H, W)
        attention = None
        if self.mode == "clips":
            entry = Buffered(seconds, clip[0])
        elif self.mode == "online":
            previous = self._predecessor(seconds, before=len(self.buffer))
            shifted = self.buffer[previous].shifted if previous is not None else None  # None: a fresh start
            step = self.model.forward_step(clip, shifted, return_attention=True)
            entry = Buffered(seconds, step.features[0], step.shifted)  # feature (D,)
            attention = step.attention
        else:
            feature, attention = self.model.forward_frames(clip, return_attention=True)  # (1, D), (1, h, w)
            entry = Buffered(seconds, feature[0])
        attention = attention[0].float().cpu().numpy() if attention is not None else None
        self.buffer.append(entry)
        while self.buffer and seconds - self.buffer[0].seconds > self.keep_seconds:
            self.buffer.popleft()
        picked = self._picked()
        if picked is None:
            return None, None, attention
        stacked = torch.stack([entry.item for entry in picked])[None]  # (1, T, D) or (1, T, C, H, W)
        if self.mode != "clips":
            pooled = stacked[0].mean(dim=0) if features else None  # (D,)
            return self.model.forward_head(stacked)[0], pooled, attention  # (K,)
        logits, pooled, maps = self.model.forward_scores(stacked, return_attention=True)  # (1, K), (1, D)
        # the newest picked frame's map: the sampler's last pick lies in the newest segment of the buffer
        attention = maps[0, -1].float().cpu().numpy() if maps is not None else None
        return logits[0], pooled[0], attention

    def _predecessor(self, seconds: float, before: int) -> int | None:
        """The index of the newest of the first `before` buffered frames that is at least one clip step older
        than `seconds`; None when there is none."""
        for index in range(before - 1, -1, -1):
            if self.buffer[index].seconds <= seconds - self.step_seconds + 1e-6:
                return index
        return None

    def _picked(self) -> list[Buffered] | None:
        """The T buffered frames the head sees, oldest first; None while warming up. Without shifts and with the
        two-way shift: the evaluation sampler's picks over the last clip_seconds. Online: the newest frame and
        its predecessors, each one clip step before the next (the chain its shifted slices came along)."""
        if self.mode != "online":
            newest = self.buffer[-1].seconds
            recent = [e for e in self.buffer if newest - e.seconds <= self.clip_seconds]
            if len(recent) < self.num_frames:
                return None
            times = np.array([e.seconds for e in recent]) - recent[0].seconds
            picked = sample_indices(len(times), self.sampler, train=False, timestamps=times)[0]  # (T,)
            return [recent[i] for i in picked]
        chain = [len(self.buffer) - 1]
        while len(chain) < self.num_frames:
            earlier = self._predecessor(self.buffer[chain[-1]].seconds, before=chain[-1])
            if earlier is None:
                return None
            chain.append(earlier)
        return [self.buffer[i] for i in reversed(chain)]


class FrameEncoder:
    """A `VideoWriter` on a thread of its own: `write` queues a frame (waiting only when `depth` frames are
    queued), the thread encodes; `close` encodes what is queued and closes the file, and re-raises an error the
    encoder met."""

    def __init__(self, path: str | os.PathLike, fps: float, depth: int = 16):
        self.writer = VideoWriter(path, fps=fps, realtime=True)  # 0.4x the encoding time of the default
        self.frames: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._encode, name="behavior-live-encoder", daemon=True)
        self.thread.start()

    def _encode(self) -> None:
        while (frame := self.frames.get()) is not None:
            if self.error is None:
                try:
                    self.writer.write(frame)
                except BaseException as exc:  # kept for the caller; the queue keeps draining
                    self.error = exc

    def write(self, frame: np.ndarray) -> None:
        if self.error is not None:
            raise self.error
        self.frames.put(frame)

    def close(self) -> None:
        self.frames.put(None)
        self.thread.join()
        self.writer.close()
        if self.error is not None:
            raise self.error


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


def run_live(
    checkpoint: str | os.PathLike,
    source: str,
    out: str | os.PathLike | None = None,
    show: bool = False,
    roi: str = "none",
    max_frames: int | None = None,
    unknown_threshold: float | None = None,
    reject_unknown: bool = True,
    engine: str = DEFAULT_ENGINE,
) -> LiveSummary:
    """Run the incremental model over a source, drawing every frame to `out` and/or a window. `unknown_threshold`
    replaces the checkpoint's rejection threshold; `reject_unknown=False` shows no frame as unknown; `engine`
    is torch or onnx (`behavior.tools.engines`)."""
    started = time.perf_counter()  # start-up counts: loading the model and opening the source
    device = engine_device(engine, choose_device())
    model, cfg = load_engine(checkpoint, engine, device)
    confidence = prediction_rule(model.confidence, unknown_threshold, reject_unknown)
    clip_seconds = model.clip_seconds or 2.5  # a checkpoint without it: about the length of a short clip
    detector = RoiDetector(roi) if roi != "none" else None
    frames, source_fps = open_source(source, cfg.data.backend)
    classifier = StreamClassifier(model, cfg, clip_seconds, device, confidence)
    writer = FrameEncoder(out, fps=source_fps) if out else None
    window = show
    count, stopped = 0, "end of stream"
    try:
        for frame, seconds in frames:
            boxes: list[tuple[int, int, int, int]] = []
            region = (0, 0, frame.shape[1], frame.shape[0])
            if detector is not None:
                boxes = detector(frame)
                if detector.last is not None:
                    region = roi_square(detector.last, *frame.shape[:2])
            view = frame[region[1] : region[3], region[0] : region[2]]
            judged, attention = classifier.judge_after(view, seconds)
            box = classifier.transform.crop_box(*view.shape[:2])
            box = (box[0] + region[0], box[1] + region[1], box[2] + region[0], box[3] + region[1])
            drawn = heatmap_overlay(frame, attention, box) if attention is not None else frame
            drawn = draw_boxes(drawn, boxes)
            if judged is None:
                drawn = draw_label(drawn, "warming up")
            else:
                probs = judged.probabilities[0]
                best = int(probs.argmax())
                text = model.class_names[best]
                drawn = draw_label(
                    drawn, f"{UNKNOWN} (closest {text})" if judged.unknown[0] else text, float(probs[best])
                )
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
        print(
            "live: no display available, --show is ignored (use --out to save the annotated video)",
            file=sys.stderr,
        )
        return False


def _close_windows() -> None:
    try:
        cv2.destroyAllWindows()
    except cv2.error:
        pass

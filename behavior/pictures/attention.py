"""Pictures of where the model looks: the sampled frames of one video with their spatial-attention heatmaps
(and the temporal weights of an attention head), as a labelled PNG grid, a GIF or an MP4.

Used by `behavior attention`, `notebooks/explore.ipynb` and the README. The clip comes out of the evaluation
data path (`behavior.pictures.frames.sample_clip`) and the model's `forward(clip, return_attention=True)`;
heatmaps are drawn by `behavior.pictures.overlay`, mapped back onto the frame through `ClipTransform.crop_box`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from behavior.config import Config
from behavior.data.splits import VideoSample
from behavior.data.writer import write_video
from behavior.engine.checkpoint import load_trained_model
from behavior.engine.confidence import Confidence
from behavior.engine.runtime import eval_mode
from behavior.errors import InputNotFound, UsageError
from behavior.models.classifier import ClipClassifier
from behavior.pictures.frames import clip_datasets, image_axis, sample_clip, scale_up
from behavior.pictures.overlay import draw_label, heatmap_overlay

ANIMATIONS = (".gif", ".mp4")
PICTURES = (".png", *ANIMATIONS)
CORRECT_COLOUR, WRONG_COLOUR = "#1a7f37", "#c62828"  # green and red titles: right and wrong predictions


def _model_and_config(checkpoint_or_model) -> tuple[ClipClassifier, Config]:
    if isinstance(checkpoint_or_model, tuple):
        model, cfg = checkpoint_or_model
        if not isinstance(model, ClipClassifier) or not isinstance(cfg, Config):
            raise UsageError(
                "pass a checkpoint path or the (model, config) pair that load_trained_model returns, "
                f"got ({type(model).__name__}, {type(cfg).__name__})"
            )
        return model, cfg
    return load_trained_model(checkpoint_or_model)


@dataclass
class AttentionFrames:
    """One video as the evaluation path sees it, and where the model looked."""

    path: str
    frames: np.ndarray  # uint8 (T, H, W, 3): the sampled frames of view `view`, at the decoder's size
    indices: np.ndarray  # int64 (T,): their frame numbers
    timestamps: np.ndarray  # float64 (T,): their times, seconds from the start of the video
    spatial: np.ndarray | None  # float32 (T, h, w) in [0, 1], over the crop; None when model.attention=none
    temporal: (
        np.ndarray | None
    )  # float32 (T,) summing to 1: the attention head's weights; None for other heads
    probabilities: (
        np.ndarray
    )  # float (K,): mean calibrated softmax over the views, the score `evaluate` reports
    class_names: list[str]
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1): the crop the model saw, in pixels of `frames`
    head: str  # model.head, to say why `temporal` is None
    view: int = 0  # which of the V evaluation views the frames and maps belong to
    num_views: int = 1
    true_label: str | None = None
    fps: float = 0.0  # the video's frame rate

    @property
    def label(self) -> str:
        return self.class_names[int(self.probabilities.argmax())]

    @property
    def score(self) -> float:
        return float(self.probabilities.max())

    @property
    def correct(self) -> bool | None:
        return None if self.true_label is None else self.label == self.true_label

    def title(self) -> str:
        """'v_Walk_g01_c01.avi: predicted walk 0.83, true walk'."""
        truth = f", true {self.true_label}" if self.true_label is not None else ""
        return f"{Path(self.path).name}: predicted {self.label} {self.score:.2f}{truth}"

    def overlays(self, min_side: int = 192) -> np.ndarray:
        """The frames, scaled up to a short side of at least `min_side`, with the spatial attention drawn over
        the crop the model saw: uint8 (T, H', W', 3). Without spatial attention, the frames alone."""
        frames, factor = scale_up(self.frames, min_side)
        if self.spatial is None:
            return frames
        box = tuple(int(round(v * factor)) for v in self.box)
        return np.stack([heatmap_overlay(frame, att, box) for frame, att in zip(frames, self.spatial)])


def attention_frames(
    checkpoint_or_model: str | os.PathLike | tuple[ClipClassifier, Config],
    video: str | os.PathLike | VideoSample,
    true_label: str | None = None,
    view: int = 0,
) -> AttentionFrames:
    """Sample, decode and transform `video` exactly as `behavior evaluate` does, run the model's
    `forward(clip, return_attention=True)` on its V views, and keep the frames and maps of view `view`.

    `checkpoint_or_model`: a best.pt, or the `(model, cfg)` that `load_trained_model` returns (load once when
    drawing many videos). `video`: a file, or a `VideoSample` whose label gives the true class. Raises
    `VideoError` (a ValueError naming the file) when the video cannot be decoded."""
    model, cfg = _model_and_config(checkpoint_or_model)
    if isinstance(video, VideoSample):
        if true_label is None and 0 <= video.label < len(model.class_names):
            true_label = model.class_names[video.label]
        sample = video
    else:
        if not Path(video).is_file():
            raise InputNotFound(f"{video}: no such video file")
        sample = VideoSample(str(video), -1)
    if true_label is not None and true_label not in model.class_names:
        raise UsageError(
            f"true label {true_label!r} is not a class of this model; valid: {', '.join(model.class_names)}"
        )
    if not 0 <= view < cfg.sampler.num_views:
        raise UsageError(
            f"view={view}: the evaluation sampler takes {cfg.sampler.num_views} view(s) per video "
            f"(sampler.num_views); valid: 0..{cfg.sampler.num_views - 1}"
        )
    _, dataset = clip_datasets(cfg, [sample])
    sampled = sample_clip(dataset, 0)
    device = next(model.parameters()).device
    with eval_mode(model):
        logits, maps = model(sampled.clip.to(device), return_attention=True)  # (V, K), AttentionMaps
    confidence = getattr(model, "confidence", None) or Confidence()  # the checkpoint's temperature
    probabilities = confidence.judge(logits.float().cpu().numpy()[None]).probabilities[
        0
    ]  # (K,): views averaged
    num_frames = sampled.indices.shape[1]
    frames = sampled.frames[view * num_frames : (view + 1) * num_frames]  # uint8 (T, H, W, 3)
    indices = sampled.indices[view]  # (T,)
    spatial = maps.spatial[view].float().cpu().numpy() if maps.spatial is not None else None  # (T, h, w)
    temporal = maps.temporal[view].float().cpu().numpy() if maps.temporal is not None else None  # (T,)
    return AttentionFrames(
        path=sample.path,
        frames=frames,
        indices=indices,
        timestamps=sampled.info.timestamps[indices],
        spatial=spatial,
        temporal=temporal,
        probabilities=probabilities,
        class_names=list(model.class_names),
        box=dataset.transform.crop_box(*frames.shape[1:3]),
        head=cfg.model.head,
        view=view,
        num_views=sampled.indices.shape[0],
        true_label=true_label,
        fps=sampled.info.fps,
    )


def attention_figure(result: AttentionFrames, min_side: int = 160) -> Figure:
    """A labelled grid, one column per sampled frame: row 1 the frames with their number and time, row 2 the
    spatial attention over them, and, for an attention head, a bar of the temporal weights below. The title
    gives the prediction and score, and the true class when known (green when right, red when wrong)."""
    num_frames = len(result.indices)
    rows = 3 if result.temporal is not None else 2
    column = max(1.7, 6.0 / num_frames)  # inches per frame
    picture = column * result.frames.shape[1] / result.frames.shape[2] + 0.4  # a frame and its title
    bar = 1.7 if rows == 3 else 0.0
    fig = Figure(figsize=(column * num_frames + 0.6, 2 * picture + bar + 1.0), layout="constrained")
    grid = fig.add_gridspec(rows, num_frames, height_ratios=[picture, picture, bar][:rows])
    frames, _ = scale_up(result.frames, min_side)
    overlays = result.overlays(min_side)
    for t in range(num_frames):
        top = fig.add_subplot(grid[0, t])
        image_axis(top, frames[t])
        top.set_title(f"frame {result.indices[t]}\n{result.timestamps[t]:.2f} s", fontsize=9)
        bottom = fig.add_subplot(grid[1, t])
        image_axis(bottom, overlays[t])
        if t == 0:
            top.set_ylabel("sampled frame")
            bottom.set_ylabel("spatial attention" if result.spatial is not None else "no spatial attention")
    if result.temporal is not None:
        bars = fig.add_subplot(grid[2, :])
        bars.bar(range(num_frames), result.temporal, color="#e65100", width=0.6)
        for t, weight in enumerate(result.temporal):
            bars.text(t, weight, f"{weight:.2f}", ha="center", va="bottom", fontsize=8)
        bars.set_xlim(-0.5, num_frames - 0.5)
        bars.set_ylim(0, max(float(result.temporal.max()) * 1.25, 1.5 / num_frames))
        bars.set_xticks(range(num_frames), [f"frame {i}" for i in result.indices], fontsize=8)
        bars.axhline(1.0 / num_frames, color="grey", linestyle=":", linewidth=1)
        bars.set_ylabel("temporal weight")
        bars.set_title(
            "temporal attention: each frame's weight in the clip's score (dotted: uniform 1/T)", fontsize=9
        )
    notes = []
    if result.spatial is not None:
        notes.append(
            "heatmap: last spatial-attention layer over the crop the model saw, each map stretched to "
            "its own range (blue low, red high)"
        )
    if result.temporal is None:
        notes.append(f"temporal weights: none, the {result.head} head has none (model.head=attention has)")
    if result.num_views > 1:
        notes.append(f"view {result.view + 1} of {result.num_views}; the score averages all views")
    fig.suptitle(
        result.title(),
        fontsize=12,
        fontweight="bold",
        color={True: CORRECT_COLOUR, False: WRONG_COLOUR, None: "black"}[result.correct],
    )
    if notes:
        fig.supxlabel("\n".join(notes), fontsize=8, color="#444444")
    return fig


def attention_animation(result: AttentionFrames, min_side: int = 192) -> np.ndarray:
    """The overlay frames, each captioned with the prediction (top) and its frame number and time (bottom):
    uint8 (T, H', W', 3), even sides."""
    caption = f"{result.label} {result.score:.2f}"
    if result.true_label is not None:
        caption += f", true {result.true_label}"
    drawn = []
    for t, frame in enumerate(result.overlays(min_side)):
        frame = draw_label(frame, caption, corner="top")
        frame = draw_label(frame, f"frame {result.indices[t]}  {result.timestamps[t]:.2f} s", corner="bottom")
        drawn.append(frame)
    return np.stack(drawn)


def save_attention(result: AttentionFrames, out: str | os.PathLike, fps: float = 2.0) -> Path:
    """Write the attention picture of `result`: .png the labelled grid (`attention_figure`), .gif or .mp4 the
    overlay frames as an animation at `fps` frames per second (`attention_animation`)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in PICTURES:
        raise UsageError(
            f"{out}: cannot write {suffix or 'a file without extension'}; valid: {', '.join(PICTURES)}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        attention_figure(result).savefig(out, dpi=100)
    else:
        write_video(out, attention_animation(result), fps)
    return out

"""Pictures of what the pipeline does: sampled frames, attention heatmaps, misclassified clips.

Used by `behavior attention`, `behavior evaluate --gallery`, `notebooks/explore.ipynb` and the README, so each
picture is drawn in one place. Every clip shown here comes out of the data path itself: a `ClipDataset` with
the config's sampler, decoder settings and training or evaluation `ClipTransform` (as `behavior train` and
`behavior evaluate` build them), and the model's `forward(clip, return_attention=True)`; nothing here decodes,
resizes or normalises a clip its own way. Only for display are frames scaled up and heatmaps drawn (`behavior.overlay`), mapped back onto the
frame through `ClipTransform.crop_box`.

- `attention_frames(checkpoint, video) -> AttentionFrames`: the sampled frames of one video, their indices
  and times, the spatial maps (T, h, w), the temporal weights (T,) of an attention head, and the prediction;
  `attention_figure` / `save_attention` turn it into a labelled PNG, a GIF or an MP4.
- `sampled_frames_grid(cfg, samples)`: which frames training (random) and evaluation (fixed) sampling pick.
- `misclassified_gallery(eval_dir, out_html)`: an HTML page of the misclassified videos, grouped by the most
  confused (true, predicted) pairs, with the T sampled frames of each as a thumbnail strip.

Figures use matplotlib's object-oriented `Figure` (no pyplot, no display) and are written to files.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from matplotlib.figure import Figure

from behavior.checkpoint import load_checkpoint, load_trained_model
from behavior.config import Config, config_from_dict
from behavior.datasets import ClipDataset, build_dataset
from behavior.evaluate import SplitScores
from behavior.model import ClipClassifier
from behavior.overlay import draw_label, heatmap_overlay
from behavior.splits import VideoSample
from behavior.video import VideoError, VideoInfo, write_video

ANIMATIONS = (".gif", ".mp4")
PICTURES = (".png", *ANIMATIONS)
CORRECT_COLOUR, WRONG_COLOUR = "#1a7f37", "#c62828"  # green and red titles: right and wrong predictions


# ------------------------------------------------------------------------------------------- the data path


def clip_datasets(cfg: Config, samples: Sequence[VideoSample]) -> tuple[ClipDataset, ClipDataset]:
    """(training, evaluation) data sets over `samples`, with the sampler, decoder settings, transforms and seed
    of `behavior train` and `behavior evaluate`; the evaluation one is built as `evaluate_checkpoint` builds it."""
    return build_dataset(samples, cfg, train=True), build_dataset(samples, cfg, train=False)


@dataclass
class SampledClip:
    """One item of a `ClipDataset`, with what `load_clip` keeps to itself."""

    frames: np.ndarray  # uint8 (V*T, H, W, 3): the decoded frames, at the decoder's size
    indices: np.ndarray  # int64 (V, T): their frame numbers
    clip: torch.Tensor  # float32 (V, T, C, crop, crop): the normalised model input
    info: VideoInfo


def sample_clip(dataset: ClipDataset, index: int) -> SampledClip:
    """`dataset.load_clip(index)` step by step: the same generator, drawn in the same order (sampling, then
    crop and flip), so `clip` equals what training or evaluation feeds the model (tested)."""
    rng = dataset.rng_for(index)
    frames, indices, info = dataset.load_frames(index, rng)  # uint8 (V*T, H, W, C), int64 (V, T)
    clip = dataset.transform(frames, rng)  # float (V*T, C, crop, crop)
    return SampledClip(frames, indices, clip.reshape(*indices.shape, *clip.shape[1:]), info)  # (V, T, C, crop, crop)


def _model_and_config(checkpoint_or_model) -> tuple[ClipClassifier, Config]:
    if isinstance(checkpoint_or_model, tuple):
        model, cfg = checkpoint_or_model
        if not isinstance(model, ClipClassifier) or not isinstance(cfg, Config):
            raise ValueError("pass a checkpoint path or the (model, config) pair that load_trained_model returns, "
                             f"got ({type(model).__name__}, {type(cfg).__name__})")
        return model, cfg
    return load_trained_model(checkpoint_or_model)


def _scale_up(frames: np.ndarray, min_side: int) -> tuple[np.ndarray, float]:
    """Frames (N, H, W, 3) enlarged for display so the short side reaches `min_side`, with even sides (H.264
    wants them): uint8 (N, H', W', 3), and the factor applied."""
    height, width = frames.shape[1:3]
    factor = max(1.0, min_side / min(height, width))
    size = (int(round(width * factor / 2)) * 2, int(round(height * factor / 2)) * 2)  # (W', H'), even
    if size == (width, height):
        return frames, 1.0
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in frames]), size[0] / width


# -------------------------------------------------------------------------------------- attention pictures


@dataclass
class AttentionFrames:
    """One video as the evaluation path sees it, and where the model looked."""

    path: str
    frames: np.ndarray  # uint8 (T, H, W, 3): the sampled frames of view `view`, at the decoder's size
    indices: np.ndarray  # int64 (T,): their frame numbers
    timestamps: np.ndarray  # float64 (T,): their times, seconds from the start of the video
    spatial: np.ndarray | None  # float32 (T, h, w) in [0, 1], over the crop; None when model.attention=none
    temporal: np.ndarray | None  # float32 (T,) summing to 1: the attention head's weights; None for other heads
    probabilities: np.ndarray  # float32 (K,): mean softmax over the views, the video score `evaluate` reports
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
        frames, factor = _scale_up(self.frames, min_side)
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
            raise FileNotFoundError(f"{video}: no such video file")
        sample = VideoSample(str(video), -1)
    if true_label is not None and true_label not in model.class_names:
        raise ValueError(f"true label {true_label!r} is not a class of this model; valid: "
                         f"{', '.join(model.class_names)}")
    if not 0 <= view < cfg.sampler.num_views:
        raise ValueError(f"view={view}: the evaluation sampler takes {cfg.sampler.num_views} view(s) per video "
                         f"(sampler.num_views); valid: 0..{cfg.sampler.num_views - 1}")
    _, dataset = clip_datasets(cfg, [sample])
    sampled = sample_clip(dataset, 0)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        logits, maps = model(sampled.clip.to(device), return_attention=True)  # (V, K), AttentionMaps
    model.train(was_training)
    probabilities = logits.float().softmax(dim=-1).mean(dim=0).cpu().numpy()  # (K,): mean over views
    num_frames = sampled.indices.shape[1]
    frames = sampled.frames[view * num_frames : (view + 1) * num_frames]  # uint8 (T, H, W, 3)
    indices = sampled.indices[view]  # (T,)
    spatial = maps.spatial[view].float().cpu().numpy() if maps.spatial is not None else None  # (T, h, w)
    temporal = maps.temporal[view].float().cpu().numpy() if maps.temporal is not None else None  # (T,)
    return AttentionFrames(
        path=sample.path, frames=frames, indices=indices, timestamps=sampled.info.timestamps[indices],
        spatial=spatial, temporal=temporal, probabilities=probabilities, class_names=list(model.class_names),
        box=dataset.transform.crop_box(*frames.shape[1:3]), head=cfg.model.head, view=view,
        num_views=sampled.indices.shape[0], true_label=true_label, fps=sampled.info.fps)


def _image_axis(ax, image: np.ndarray) -> None:
    ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])


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
    frames, _ = _scale_up(result.frames, min_side)
    overlays = result.overlays(min_side)
    for t in range(num_frames):
        top = fig.add_subplot(grid[0, t])
        _image_axis(top, frames[t])
        top.set_title(f"frame {result.indices[t]}\n{result.timestamps[t]:.2f} s", fontsize=9)
        bottom = fig.add_subplot(grid[1, t])
        _image_axis(bottom, overlays[t])
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
        bars.set_title("temporal attention: each frame's weight in the clip's score (dotted: uniform 1/T)",
                       fontsize=9)
    notes = []
    if result.spatial is not None:
        notes.append("heatmap: last spatial-attention layer over the crop the model saw, each map stretched to "
                     "its own range (blue low, red high)")
    if result.temporal is None:
        notes.append(f"temporal weights: none, the {result.head} head has none (model.head=attention has)")
    if result.num_views > 1:
        notes.append(f"view {result.view + 1} of {result.num_views}; the score averages all views")
    fig.suptitle(result.title(), fontsize=12, fontweight="bold",
                 color={True: CORRECT_COLOUR, False: WRONG_COLOUR, None: "black"}[result.correct])
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
        raise ValueError(f"{out}: cannot write {suffix or 'a file without extension'}; valid: {', '.join(PICTURES)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        attention_figure(result).savefig(out, dpi=100)
    else:
        write_video(out, attention_animation(result), fps)
    return out


# --------------------------------------------------------------------------------- sampling, train vs eval


def sampled_frames_grid(
    cfg: Config,
    samples: Sequence[VideoSample],
    class_names: Sequence[str] | None = None,
    epochs: Sequence[int] = (0, 1),
    out: str | os.PathLike | None = None,
) -> Figure:
    """The frames that sampling picks from each of a few videos, as the model receives them (after crop and
    flip): a timeline of the whole video marking the picks of evaluation sampling (every view) and of
    training sampling in each of `epochs` (random, redrawn every epoch), then a row of frames per sampling.
    Written to `out` when given."""
    if not samples:
        raise ValueError("sampled_frames_grid needs at least one video sample")
    train_set, eval_set = clip_datasets(cfg, samples)
    num_frames = cfg.sampler.num_frames
    rows_per_clip = 2 + len(epochs)  # timeline, evaluation, one per training epoch
    fig = Figure(figsize=(max(8.0, 1.25 * num_frames + 1.5), 1.3 * rows_per_clip * len(samples) + 0.8),
                 layout="constrained")
    grid = fig.add_gridspec(rows_per_clip * len(samples), num_frames,
                            height_ratios=[0.55, *[1.0] * (rows_per_clip - 1)] * len(samples))
    for n, sample in enumerate(samples):
        evaluation = sample_clip(eval_set, n)
        drawn = [("evaluation", evaluation, "#1565c0", "o")]
        for epoch in epochs:
            train_set.set_epoch(epoch)
            drawn.append((f"training, epoch {epoch + 1}", sample_clip(train_set, n), "#e65100", "^"))
        row = n * rows_per_clip
        line = fig.add_subplot(grid[row, :])
        total = evaluation.info.num_frames
        line.hlines(0, 0, total - 1, color="#bbbbbb", linewidth=6)
        labels = []
        for k, (name, sampled, colour, marker) in enumerate(drawn):
            picks = sampled.indices.reshape(-1)
            line.plot(picks, np.full(len(picks), -k), marker, color=colour, markersize=6, linestyle="none")
            line.hlines(-k, 0, total - 1, color="#dddddd", linewidth=1, zorder=0)
            labels.append(name)
        line.set_yticks(range(0, -len(drawn), -1), labels, fontsize=7)
        line.set_ylim(-len(drawn) + 0.5, 0.6)
        line.set_xlim(-0.5, total - 0.5)
        line.tick_params(axis="x", labelsize=7)
        label = class_names[sample.label] if class_names and 0 <= sample.label < len(class_names) else None
        line.set_title(f"{Path(sample.path).name}{f' ({label})' if label else ''}: {total} frames, "
                       f"{evaluation.info.duration_s:.1f} s; the marks are the frames each sampling picks",
                       fontsize=9, loc="left")
        line.set_xlabel("frame number", fontsize=7, labelpad=1)
        for k, (name, sampled, colour, _) in enumerate(drawn):
            pictures = eval_set.transform.to_uint8(sampled.clip[0])  # uint8 (T, crop, crop, 3): view 1
            for t in range(num_frames):
                ax = fig.add_subplot(grid[row + 1 + k, t])
                _image_axis(ax, pictures[t])
                ax.set_title(f"#{sampled.indices[0, t]}", fontsize=8, color=colour, pad=2)
                if t == 0:
                    ax.set_ylabel(name.replace(", ", "\n"), fontsize=8, color=colour)
    train_set.set_epoch(0)
    fig.suptitle(f"Sampling: {cfg.sampler.strategy}, T={num_frames}, as the model receives the frames\n"
                 "evaluation: fixed frames, centre crop; training: random frames and crop"
                 f"{' and flip' if cfg.transform.flip else ''}, drawn anew each epoch", fontsize=10)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=100)
    return fig


# ------------------------------------------------------------------------------------- misclassified clips


@dataclass
class Prediction:
    """One row of predictions.csv: a video, its true and predicted class, and the predicted class's score."""

    path: str
    true: str
    predicted: str
    score: float

    @property
    def correct(self) -> bool:
        return self.true == self.predicted


def read_predictions(eval_dir: str | os.PathLike) -> list[Prediction]:
    """The rows of `eval_dir/predictions.csv`, as `behavior evaluate` wrote them."""
    path = Path(eval_dir) / "predictions.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; run `behavior evaluate --out {eval_dir}` first")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"path", "true", "predicted", "score"} <= set(rows[0]):
        raise ValueError(f"{path}: expected the columns path, true, predicted, score of `behavior evaluate`")
    return [Prediction(r["path"], r["true"], r["predicted"], float(r["score"])) for r in rows]


def predictions_from_scores(scores: SplitScores, samples: Sequence[VideoSample],
                            class_names: Sequence[str]) -> list[Prediction]:
    """One `Prediction` per scored video of `scores` (from `score_loader` over a data set of `samples`)."""
    video_scores = scores.video_scores  # (N, K)
    return [Prediction(samples[index].path, class_names[target], class_names[int(row.argmax())], float(row.max()))
            for index, target, row in zip(scores.indices, scores.targets, video_scores)]


def confused_pairs(predictions: Sequence[Prediction]) -> list[tuple[tuple[str, str], list[Prediction]]]:
    """The misclassified videos grouped by (true, predicted), the most frequent pair first (ties: by name);
    within a pair the most confident mistakes first."""
    wrong = [p for p in predictions if not p.correct]
    counts = Counter((p.true, p.predicted) for p in wrong)
    pairs = sorted(counts, key=lambda pair: (-counts[pair], pair))
    return [(pair, sorted((p for p in wrong if (p.true, p.predicted) == pair), key=lambda p: -p.score))
            for pair in pairs]


def html_table(header: Sequence, rows: Sequence[Sequence]) -> str:
    """An HTML <table> of `rows` under `header`, every cell escaped (floats to 3 decimals)."""

    def cell(value) -> str:
        return html.escape(f"{value:.3f}" if isinstance(value, float) else str(value))

    head = "".join(f"<th>{cell(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def thumbnail_strip(frames: np.ndarray, height: int = 72, gap: int = 2) -> np.ndarray:
    """Frames (T, H, W, 3) side by side at `height` pixels, `gap` white pixels apart: uint8 (height, W', 3)."""
    width = max(1, int(round(frames.shape[2] * height / frames.shape[1])))
    small = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames]
    spacer = np.full((height, gap, 3), 255, dtype=np.uint8)
    parts = [part for frame in small for part in (frame, spacer)][:-1]
    return np.concatenate(parts, axis=1)


def _png_data_uri(image: np.ndarray) -> str:
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))  # RGB -> BGR for OpenCV
    if not ok:
        raise ValueError(f"could not encode a {image.shape} image as PNG")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def _config_of_evaluation(eval_dir: Path) -> Config:
    metrics_path = eval_dir / "metrics.json"
    if not metrics_path.is_file():
        raise FileNotFoundError(f"{metrics_path}: no such file; pass cfg= or run `behavior evaluate` first")
    checkpoint = json.loads(metrics_path.read_text()).get("checkpoint")
    if not checkpoint or not Path(checkpoint).is_file():
        raise FileNotFoundError(f"{metrics_path} names the checkpoint {checkpoint!r}, which is not there (from "
                                "this folder); pass cfg= (the run's config) to draw the thumbnails")
    return config_from_dict(load_checkpoint(checkpoint)["config"])


def _views_of_evaluation(eval_dir: Path) -> int | None:
    metrics_path = eval_dir / "metrics.json"
    return json.loads(metrics_path.read_text()).get("num_views") if metrics_path.is_file() else None


_GALLERY_STYLE = """
.behavior-gallery { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
.behavior-gallery table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
.behavior-gallery th, .behavior-gallery td { border: 1px solid #ccc; padding: 3px 10px; text-align: left; }
.behavior-gallery .clip { margin: 0.4em 0 1em; }
.behavior-gallery .clip img { display: block; image-rendering: auto; border: 1px solid #999; }
.behavior-gallery .true { color: #1a7f37; font-weight: bold; }
.behavior-gallery .predicted { color: #c62828; font-weight: bold; }
.behavior-gallery .note { color: #666; font-size: 90%; }
"""


def misclassified_gallery(
    source: str | os.PathLike | SplitScores,
    out_html: str | os.PathLike,
    cfg: Config | None = None,
    samples: Sequence[VideoSample] | None = None,
    class_names: Sequence[str] | None = None,
    max_per_pair: int = 8,
    thumbnail_height: int = 72,
) -> Path:
    """Write an HTML page of the misclassified videos, grouped by (true, predicted) pair, most frequent first,
    each with a strip of its T evaluation-sampled frames (base64 PNGs inside the page), its true and predicted
    class and the score.

    `source`: the folder `behavior evaluate` wrote (predictions.csv; the config comes from the checkpoint that
    metrics.json names, unless `cfg` is given), or the `SplitScores` of a data set of `samples`, with
    `class_names` and `cfg`. At most `max_per_pair` videos are drawn per pair (the most confident mistakes)."""
    out_html = Path(out_html)
    if isinstance(source, SplitScores):
        if samples is None or class_names is None or cfg is None:
            raise ValueError("misclassified_gallery(SplitScores, ...) also needs samples=, class_names= and cfg=")
        predictions = predictions_from_scores(source, samples, class_names)
        num_views = source.clip_scores.shape[1]
        title = "Misclassified videos"
    else:
        predictions = read_predictions(source)
        cfg = cfg or _config_of_evaluation(Path(source))
        num_views = _views_of_evaluation(Path(source)) or cfg.sampler.num_views
        title = f"Misclassified videos: {Path(source).name}"
    if max_per_pair < 1:
        raise ValueError(f"max_per_pair must be >= 1, got {max_per_pair}")
    pairs = confused_pairs(predictions)
    num_wrong = sum(len(videos) for _, videos in pairs)
    shown = [p for _, videos in pairs for p in videos[:max_per_pair]]
    # The views the evaluation scored (`--views` may have changed them); the strip shows the first.
    _, eval_set = clip_datasets(replace(cfg, sampler=replace(cfg.sampler, num_views=num_views)),
                                [VideoSample(p.path, -1) for p in shown])
    num_frames = cfg.sampler.num_frames
    strips: dict[int, tuple[str | None, str]] = {}  # position in `shown` -> (data URI or None, frames or error)
    for i in range(len(shown)):
        try:
            sampled = sample_clip(eval_set, i)
        except (VideoError, FileNotFoundError, IndexError) as exc:
            strips[i] = (None, f"cannot be decoded: {exc}")
            continue
        strips[i] = (_png_data_uri(thumbnail_strip(sampled.frames[:num_frames], thumbnail_height)),
                     "frames " + ", ".join(str(v) for v in sampled.indices[0]))

    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p>{num_wrong} of {len(predictions)} videos misclassified. Pairs of (true, predicted) class, the "
             f"most frequent first; within a pair the most confident mistakes first (at most {max_per_pair} "
             f"drawn). Each strip shows the {num_frames} frames the evaluation sampler ({cfg.sampler.strategy}"
             f"{f', view 1 of {num_views}' if num_views > 1 else ''}) picks, whole frames before the centre "
             "crop.</p>"]
    if not pairs:
        parts.append("<p>No misclassified videos.</p>")
    else:
        rows = [(f'<a href="#pair-{k}">{html.escape(true)} &rarr; {html.escape(predicted)}</a>', len(videos))
                for k, ((true, predicted), videos) in enumerate(pairs, 1)]
        parts.append("<table><thead><tr><th>true &rarr; predicted</th><th>videos</th></tr></thead><tbody>"
                     + "".join(f"<tr><td>{link}</td><td>{count}</td></tr>" for link, count in rows)
                     + "</tbody></table>")
    position = 0
    for k, ((true, predicted), videos) in enumerate(pairs, 1):
        parts.append(f'<h2 id="pair-{k}">true <span class="true">{html.escape(true)}</span>, predicted '
                     f'<span class="predicted">{html.escape(predicted)}</span>: {len(videos)} video'
                     f'{"s" if len(videos) != 1 else ""}</h2>')
        for p in videos[:max_per_pair]:
            uri, detail = strips[position]
            position += 1
            name = html.escape(Path(p.path).name)
            image = (f'<img src="{uri}" alt="{name}: the sampled frames" title="{html.escape(p.path)}">' if uri
                     else "")
            parts.append(f'<div class="clip">{image}<div><b>{name}</b>: true <span class="true">'
                         f'{html.escape(p.true)}</span>, predicted <span class="predicted">'
                         f'{html.escape(p.predicted)}</span>, score {p.score:.2f} '
                         f'<span class="note">({html.escape(detail)})</span></div></div>')
        if len(videos) > max_per_pair:
            parts.append(f'<p class="note">and {len(videos) - max_per_pair} more (see predictions.csv)</p>')
    page = ("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>" + html.escape(title) + "</title><style>"
            + _GALLERY_STYLE + "</style></head>\n<body><div class=\"behavior-gallery\">\n" + "\n".join(parts)
            + "\n</div></body></html>\n")
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(page, encoding="utf-8")
    return out_html

"""Pictures of the data path: clips exactly as training and evaluation make them, and grids of the frames each
sampler picks.

Every clip shown here comes out of the data path itself: a `ClipDataset` with the config's sampler, decoder
settings and training or evaluation `ClipTransform` (`build_dataset`, as `behavior train` and `behavior
evaluate` build them); nothing here decodes, resizes or normalises a clip its own way. Only for display are
frames scaled up.

- `sample_clip(dataset, i)`: one item of a data set, with its decoded frames and their indices.
- `sampled_frames_grid(cfg, samples)`: which frames training (random) and evaluation (fixed) sampling pick.

Figures use matplotlib's object-oriented `Figure` (no pyplot, no display) and are written to files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from matplotlib.figure import Figure

from behavior.config import Config
from behavior.data.datasets import ClipDataset, build_dataset
from behavior.data.splits import VideoSample
from behavior.data.video_info import VideoInfo
from behavior.errors import UsageError


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
    return SampledClip(
        frames, indices, clip.reshape(*indices.shape, *clip.shape[1:]), info
    )  # (V, T, C, crop, crop)


def scale_up(frames: np.ndarray, min_side: int) -> tuple[np.ndarray, float]:
    """Frames (N, H, W, 3) enlarged for display so the short side reaches `min_side`, with even sides (H.264
    wants them): uint8 (N, H', W', 3), and the factor applied."""
    height, width = frames.shape[1:3]
    factor = max(1.0, min_side / min(height, width))
    size = (int(round(width * factor / 2)) * 2, int(round(height * factor / 2)) * 2)  # (W', H'), even
    if size == (width, height):
        return frames, 1.0
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in frames]), size[0] / width


def image_axis(ax, image: np.ndarray) -> None:
    """Show `image` on `ax` without ticks."""
    ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])


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
        raise UsageError("sampled_frames_grid needs at least one video sample")
    train_set, eval_set = clip_datasets(cfg, samples)
    num_frames = cfg.sampler.num_frames
    rows_per_clip = 2 + len(epochs)  # timeline, evaluation, one per training epoch
    fig = Figure(
        figsize=(max(8.0, 1.25 * num_frames + 1.5), 1.3 * rows_per_clip * len(samples) + 0.8),
        layout="constrained",
    )
    grid = fig.add_gridspec(
        rows_per_clip * len(samples),
        num_frames,
        height_ratios=[0.55, *[1.0] * (rows_per_clip - 1)] * len(samples),
    )
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
        line.set_title(
            f"{Path(sample.path).name}{f' ({label})' if label else ''}: {total} frames, "
            f"{evaluation.info.duration_s:.1f} s; the marks are the frames each sampling picks",
            fontsize=9,
            loc="left",
        )
        line.set_xlabel("frame number", fontsize=7, labelpad=1)
        for k, (name, sampled, colour, _) in enumerate(drawn):
            pictures = eval_set.transform.to_uint8(sampled.clip[0])  # uint8 (T, crop, crop, 3): view 1
            for t in range(num_frames):
                ax = fig.add_subplot(grid[row + 1 + k, t])
                image_axis(ax, pictures[t])
                ax.set_title(f"#{sampled.indices[0, t]}", fontsize=8, color=colour, pad=2)
                if t == 0:
                    ax.set_ylabel(name.replace(", ", "\n"), fontsize=8, color=colour)
    train_set.set_epoch(0)
    fig.suptitle(
        f"Sampling: {cfg.sampler.strategy}, T={num_frames}, as the model receives the frames\n"
        "evaluation: fixed frames, centre crop; training: random frames and crop"
        f"{' and flip' if cfg.transform.flip else ''}, drawn anew each epoch",
        fontsize=10,
    )
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=100)
    return fig

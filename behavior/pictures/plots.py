"""Pictures the tools write: confusion matrices, reliability diagrams and training curves (matplotlib, no display
needed)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np

from behavior.engine.metrics import normalise_rows

if TYPE_CHECKING:
    from behavior.engine.calibration import Reliability


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str], path: str | os.PathLike) -> Path:
    """Raw counts and row-normalised side by side, every cell written out, axes and classes labelled."""
    names = list(class_names)
    size = max(4.0, 0.55 * len(names) + 2.5)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size), constrained_layout=True)
    panels = [
        (matrix, "Counts", "d"),
        (normalise_rows(matrix), "Row-normalised (recall on the diagonal)", ".2f"),
    ]
    for ax, (values, title, fmt) in zip(axes, panels):
        scaled = values / max(values.max(), 1e-12)
        ax.imshow(scaled, cmap="Blues", vmin=0, vmax=1)
        ax.set_title(title)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
        if len(names) <= 30:
            for i in range(len(names)):
                for j in range(len(names)):
                    ax.text(
                        j,
                        i,
                        format(values[i, j], fmt),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if scaled[i, j] > 0.5 else "black",
                    )
    fig.suptitle(f"Confusion matrix ({int(matrix.sum())} videos)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_reliability(
    before: Reliability, after: Reliability, temperature: float, path: str | os.PathLike
) -> Path:
    """Reliability diagrams before and after temperature scaling, side by side: per confidence bin, the share of
    videos right (bars) against the mean confidence (the diagonal is perfect calibration), the gap shaded, the
    number of videos in each bin written above it, and the ECE in each title."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), constrained_layout=True, sharey=True)
    panels = [(before, "Before: temperature 1"), (after, f"After: temperature {temperature:.3f}")]
    for ax, (bins, title) in zip(axes, panels):
        width = np.diff(bins.edges)
        left = bins.edges[:-1]
        filled = bins.counts > 0
        ax.bar(
            left[filled],
            bins.accuracy[filled],
            width[filled],
            align="edge",
            color="#4c72b0",
            edgecolor="black",
            label="share right",
        )
        gap_low = np.minimum(bins.accuracy, bins.confidence)[filled]
        gap = np.abs(bins.accuracy - bins.confidence)[filled]
        ax.bar(
            left[filled],
            gap,
            width[filled],
            bottom=gap_low,
            align="edge",
            color="#dd8452",
            alpha=0.5,
            edgecolor="#dd8452",
            hatch="//",
            label="gap to the mean confidence",
        )
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        for x, w, count, height in zip(
            left[filled], width[filled], bins.counts[filled], bins.accuracy[filled]
        ):
            ax.text(x + w / 2, min(height + 0.02, 1.02), str(int(count)), ha="center", fontsize=7)
        ax.set(
            title=f"{title}, ECE {bins.ece:.3f}",
            xlabel="confidence (top-class probability)",
            xlim=(0, 1),
            ylim=(0, 1.08),
        )
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of videos right")
    axes[0].legend(loc="upper left", fontsize=8)
    total = int(before.counts.sum())
    fig.suptitle(
        f"Reliability diagram ({total} videos, {len(before.counts)} equal-width bins; numbers: videos)"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_training_curves(metrics_jsonl: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Loss and accuracy per epoch, train and validation, from a run's metrics.jsonl."""
    rows = [json.loads(line) for line in Path(metrics_jsonl).read_text().splitlines() if line.strip()]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    for split, style in (("train", "o-"), ("val", "s--")):
        mine = [r for r in rows if r.get("split") == split]
        if not mine:
            continue
        epochs = [r["epoch"] for r in mine]
        if all("loss" in r for r in mine):
            loss_ax.plot(epochs, [r["loss"] for r in mine], style, label=split)
        key = "accuracy" if split == "train" else "mean_class_accuracy"
        if all(key in r for r in mine):
            acc_ax.plot(
                epochs,
                [r[key] for r in mine],
                style,
                label="train accuracy" if split == "train" else "val mean-class accuracy",
            )
    loss_ax.set(title="Loss", xlabel="epoch", ylabel="cross-entropy")
    acc_ax.set(title="Accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)

"""Pictures the tools write: confusion matrices and training curves (matplotlib, no display needed)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np

from behavior.metrics import normalise_rows


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str], path: str | os.PathLike) -> Path:
    """Raw counts and row-normalised side by side, every cell written out, axes and classes labelled."""
    names = list(class_names)
    size = max(4.0, 0.55 * len(names) + 2.5)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size), constrained_layout=True)
    panels = [(matrix, "Counts", "d"), (normalise_rows(matrix), "Row-normalised (recall on the diagonal)", ".2f")]
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
                    ax.text(j, i, format(values[i, j], fmt), ha="center", va="center", fontsize=8,
                            color="white" if scaled[i, j] > 0.5 else "black")
    fig.suptitle(f"Confusion matrix ({int(matrix.sum())} videos)")
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
            acc_ax.plot(epochs, [r[key] for r in mine], style,
                        label="train accuracy" if split == "train" else "val mean-class accuracy")
    loss_ax.set(title="Loss", xlabel="epoch", ylabel="cross-entropy")
    acc_ax.set(title="Accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)

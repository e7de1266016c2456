"""Evaluation: scores for every video of a split, metrics, and the files `behavior evaluate` writes.

`score_batch` is the one forward used by validation, evaluation and batch prediction: views are folded into
the batch, the model gives logits, and a video's score is the mean softmax over its views.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from torch.utils.data import DataLoader

from behavior.datasets import ClipBatch, ClipFailure
from behavior.metrics import classification_report, confusion_matrix, normalise_rows


def autocast_for(device: torch.device, enabled: bool):
    """bf16 autocast on a GPU that supports it, fp16 on an older one, nothing on the CPU."""
    if device.type != "cuda" or not enabled:
        return nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def score_batch(model: torch.nn.Module, clip: torch.Tensor, device: torch.device, amp: bool = False) -> torch.Tensor:
    """Class probabilities float (B, V, K) of clips (B, T, C, H, W) or (B, V, T, C, H, W)."""
    if clip.ndim == 5:
        clip = clip.unsqueeze(1)  # (B, 1, T, C, H, W)
    views = clip.shape[1]
    clip = rearrange(clip, "b v t c h w -> (b v) t c h w").to(device, non_blocking=True)  # (B·V, T, C, H, W)
    with autocast_for(device, amp):
        logits = model(clip)  # (B·V, K)
    return rearrange(logits.float().softmax(dim=-1), "(b v) k -> b v k", v=views)  # (B, V, K)


@dataclass
class SplitScores:
    """Scores of every video that decoded, in data-set order, and the videos that did not."""

    clip_scores: np.ndarray  # float (N, V, K): per view
    targets: np.ndarray  # int64 (N,)
    indices: np.ndarray  # int64 (N,): positions in the data set
    failures: list[ClipFailure] = field(default_factory=list)

    @property
    def video_scores(self) -> np.ndarray:
        return self.clip_scores.mean(axis=1)  # float (N, K)


@torch.inference_mode()
def score_loader(model: torch.nn.Module, loader: DataLoader, device: torch.device, amp: bool = False) -> SplitScores:
    """Run the model over a loader of `ClipBatch`es (from `SafeClips` + `collate_clips`)."""
    was_training = model.training
    model.eval()
    scores, targets, indices, failures = [], [], [], []
    batch: ClipBatch
    for batch in loader:
        failures += batch.failures
        if batch.label.numel() == 0:
            continue
        scores.append(score_batch(model, batch.clip, device, amp).cpu().numpy())
        targets.append(batch.label.numpy())
        indices.append(batch.index.numpy())
    model.train(was_training)
    if not scores:
        empty = np.zeros((0, 1, getattr(model, "num_classes", 1)), dtype=np.float32)
        return SplitScores(empty, np.zeros(0, np.int64), np.zeros(0, np.int64), failures)
    order = np.argsort(np.concatenate(indices), kind="stable")
    return SplitScores(np.concatenate(scores)[order], np.concatenate(targets)[order],
                       np.concatenate(indices)[order], failures)


def summarise(scores: SplitScores, class_names: Sequence[str], num_videos: int) -> dict:
    """metrics.json content: video-level report, clip-level accuracy, and the failed videos."""
    report = classification_report(scores.video_scores, scores.targets, class_names)
    clip_predictions = scores.clip_scores.argmax(axis=-1)  # (N, V)
    clip_accuracy = float((clip_predictions == scores.targets[:, None]).mean()) if len(scores.targets) else 0.0
    return {
        "video_accuracy": report["top1"],
        "clip_accuracy": clip_accuracy,
        "num_views": int(scores.clip_scores.shape[1]),
        **report,
        "num_videos": num_videos,
        "num_scored": int(len(scores.targets)),
        "num_failed": len(scores.failures),
        "failed": [{"path": f.path, "reason": f.reason} for f in scores.failures],
    }


def write_evaluation(out_dir: str | os.PathLike, scores: SplitScores, metrics: dict, class_names: Sequence[str],
                     paths: Sequence[str], top_k: int = 5) -> dict[str, Path]:
    """Write metrics.json, confusion_matrix.csv / .png and predictions.csv to `out_dir`."""
    from behavior.plots import plot_confusion

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(class_names)
    video_scores = scores.video_scores
    predictions = video_scores.argmax(axis=1) if len(video_scores) else np.zeros(0, np.int64)
    matrix = confusion_matrix(scores.targets, predictions, len(names))
    files = {"metrics": out / "metrics.json", "confusion_csv": out / "confusion_matrix.csv",
             "confusion_png": out / "confusion_matrix.png", "predictions": out / "predictions.csv"}
    files["metrics"].write_text(json.dumps(metrics, indent=2) + "\n")
    with open(files["confusion_csv"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["counts: true \\ predicted", *names])
        writer.writerows([name, *row] for name, row in zip(names, matrix.tolist()))
        writer.writerow([])
        writer.writerow(["row-normalised: true \\ predicted", *names])
        writer.writerows([name, *(f"{v:.4f}" for v in row)] for name, row in zip(names, normalise_rows(matrix)))
    plot_confusion(matrix, names, files["confusion_png"])
    k = min(top_k, len(names))
    with open(files["predictions"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "true", "predicted", "score", *[f"top{i + 1}" for i in range(k)],
                         *[f"top{i + 1}_score" for i in range(k)]])
        for index, target, row in zip(scores.indices, scores.targets, video_scores):
            top = np.argsort(-row)[:k]
            writer.writerow([paths[index], names[target], names[top[0]], f"{row[top[0]]:.4f}",
                             *[names[i] for i in top], *[f"{row[i]:.4f}" for i in top]])
    return files


class EvaluationRefused(RuntimeError):
    """Some videos of the split could not be decoded, and failures were not allowed."""


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    data_root: str | None = None,
    splits_dir: str | None = None,
    split: str = "test",
    views: int | None = None,
    allow_failed: bool = False,
    batch_size: int | None = None,
    workers: int | None = None,
) -> dict:
    """Evaluate a training checkpoint on a split of its data (or of `data_root`), writing the report files."""
    from dataclasses import replace

    from behavior.checkpoint import load_trained_model
    from behavior.datasets import SafeClips, build_dataset, collate_clips, load_splits

    if split not in ("train", "val", "test"):
        raise ValueError(f"split={split!r} is unknown; valid: train, val, test")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, cfg = load_trained_model(checkpoint, device)
    data = replace(cfg.data, **{k: v for k, v in (("root", data_root), ("splits", splits_dir)) if v is not None})
    if workers is not None:
        data = replace(data, num_workers=workers)
    sampler = replace(cfg.sampler, num_views=views) if views else cfg.sampler
    splits = load_splits(data, seed=cfg.train.seed)
    if splits.class_names != model.class_names:
        raise ValueError(f"the data's classes {splits.class_names} differ from the checkpoint's {model.class_names}")
    samples = getattr(splits, split)
    dataset = build_dataset(samples, replace(cfg, data=data), train=False, sampler=sampler)
    loader = DataLoader(SafeClips(dataset), batch_size=batch_size or cfg.train.eval_batch_size,
                        num_workers=data.num_workers, collate_fn=collate_clips)
    scores = score_loader(model, loader, device, cfg.train.amp)
    missing = [{"path": f"{f}:{line}: {entry}", "reason": "listed but missing from disk"} for f, line, entry in splits.missing]
    metrics = summarise(scores, model.class_names, len(samples))
    metrics.update(split=split, checkpoint=str(checkpoint), num_missing=len(missing), missing=missing)
    lost = scores.failures or (split == "test" and missing)
    if lost and not allow_failed:
        reasons = [f.reason for f in scores.failures] + [m["path"] for m in missing]
        raise EvaluationRefused(
            f"{len(reasons)} of {len(samples) + len(missing)} videos of the {split} split could not be evaluated, so "
            f"its figures would not describe the whole split; fix them or pass --allow-failed to report anyway:\n  "
            + "\n  ".join(reasons[:20]))
    write_evaluation(out_dir, scores, metrics, model.class_names, [s.path for s in samples])
    return metrics


def format_metrics(metrics: dict) -> str:
    """The headline of metrics.json, a few lines for the terminal."""
    lines = [f"{metrics.get('split', 'split')}: {metrics['num_scored']} of {metrics['num_videos']} videos scored, "
             f"{metrics['num_failed']} failed; {metrics['num_views']} view(s) per video",
             f"video top-1 {metrics['top1']:.3f}  clip top-1 {metrics['clip_accuracy']:.3f}  mean-class "
             f"{metrics['mean_class_accuracy']:.3f}  macro-F1 {metrics['macro_f1']:.3f}"
             + (f"  top-5 {metrics['top5']:.3f}" if "top5" in metrics else "")]
    width = max(len(name) for name in metrics["per_class"])
    lines.append(f"{'class'.ljust(width)}  precision  recall  f1     support")
    for name, row in metrics["per_class"].items():
        lines.append(f"{name.ljust(width)}  {row['precision']:.3f}      {row['recall']:.3f}   {row['f1']:.3f}  "
                     f"{row['support']}")
    return "\n".join(lines)

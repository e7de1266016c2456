"""`behavior evaluate`: score every video of a split with a trained checkpoint and write the report files
(metrics.json, confusion_matrix.csv and .png, reliability_diagram.png, predictions.csv).

Scores are the checkpoint's calibrated probabilities (`model.confidence`); metrics.json also says how well
calibrated they are (expected calibration error before and after the temperature, with the reliability
diagram's bins) and what share of the split's known videos the rejection threshold keeps."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from behavior.data.datasets import SafeClips, build_dataset, class_order, load_splits
from behavior.data.feature_cache import FeatureClips, feature_source, prepare
from behavior.data.loader import build_loader
from behavior.engine.calibration import reliability
from behavior.engine.checkpoint import load_trained_model
from behavior.engine.confidence import Confidence
from behavior.engine.metrics import confusion_matrix, normalise_rows
from behavior.engine.runtime import choose_device
from behavior.engine.scoring import SplitScores, score_loader, summarise
from behavior.errors import EvaluationRefused, UsageError
from behavior.models.classifier import CachedForward
from behavior.pictures.plots import plot_confusion, plot_reliability


def write_evaluation(
    out_dir: str | os.PathLike,
    scores: SplitScores,
    metrics: dict,
    class_names: Sequence[str],
    paths: Sequence[str],
    top_k: int = 5,
    confidence: Confidence | None = None,
) -> dict[str, Path]:
    """Write metrics.json, confusion_matrix.csv / .png, reliability_diagram.png and predictions.csv to `out_dir`;
    `scores` are judged with `confidence` (default: temperature 1, no rejection)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(class_names)
    confidence = confidence or Confidence()
    judged = confidence.judge(scores.clip_logits, scores.features)
    video_scores = judged.probabilities  # (N, K), calibrated
    predictions = video_scores.argmax(axis=1) if len(video_scores) else np.zeros(0, np.int64)
    matrix = confusion_matrix(scores.targets, predictions, len(names))
    files = {
        "metrics": out / "metrics.json",
        "confusion_csv": out / "confusion_matrix.csv",
        "confusion_png": out / "confusion_matrix.png",
        "reliability_png": out / "reliability_diagram.png",
        "predictions": out / "predictions.csv",
    }
    files["metrics"].write_text(json.dumps(metrics, indent=2) + "\n")
    with open(files["confusion_csv"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["counts: true \\ predicted", *names])
        writer.writerows([name, *row] for name, row in zip(names, matrix.tolist()))
        writer.writerow([])
        writer.writerow(["row-normalised: true \\ predicted", *names])
        writer.writerows(
            [name, *(f"{v:.4f}" for v in row)] for name, row in zip(names, normalise_rows(matrix))
        )
    plot_confusion(matrix, names, files["confusion_png"])
    plot_reliability(
        reliability(Confidence().judge(scores.clip_logits).probabilities, scores.targets),
        reliability(video_scores, scores.targets),
        confidence.temperature,
        files["reliability_png"],
    )
    k = min(top_k, len(names))
    with open(files["predictions"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "path",
                "true",
                "predicted",
                "score",
                *[f"top{i + 1}" for i in range(k)],
                *[f"top{i + 1}_score" for i in range(k)],
                "unknown_score",
                "unknown",
            ]
        )
        for index, target, row, score, unknown in zip(
            scores.indices, scores.targets, video_scores, judged.scores, judged.unknown
        ):
            top = np.argsort(-row)[:k]
            writer.writerow(
                [
                    paths[index],
                    names[target],
                    names[top[0]],
                    f"{row[top[0]]:.4f}",
                    *[names[i] for i in top],
                    *[f"{row[i]:.4f}" for i in top],
                    f"{score:.4f}",
                    int(unknown),
                ]
            )
    return files


def confidence_metrics(scores: SplitScores, confidence: Confidence) -> dict:
    """metrics.json's calibration and rejection figures: the temperature, ECE (15 bins) before and after it with
    the reliability diagram's bins, and the share of the split's (known) videos the rejection threshold keeps."""
    before = reliability(Confidence().judge(scores.clip_logits).probabilities, scores.targets)
    judged = confidence.judge(scores.clip_logits, scores.features)
    after = reliability(judged.probabilities, scores.targets)
    return {
        "temperature": confidence.temperature,
        "ece_before": before.ece,
        "ece_after": after.ece,
        "reliability_before": before.as_dict(),
        "reliability_after": after.as_dict(),
        "rejection": {
            "score": confidence.score if confidence.rejects else "none",
            "threshold": confidence.threshold,
            "keep_known": confidence.keep_known,
            "fitted_on": confidence.fitted_on,
            "known_kept": float(1.0 - judged.unknown.mean()) if len(judged.unknown) else None,
        },
    }


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
    if split not in ("train", "val", "test"):
        raise UsageError(f"split={split!r} is unknown; valid: train, val, test")
    device = choose_device()
    model, cfg = load_trained_model(checkpoint, device)
    data = replace(
        cfg.data, **{k: v for k, v in (("root", data_root), ("splits", splits_dir)) if v is not None}
    )
    if workers is not None:
        data = replace(data, num_workers=workers)
    sampler = replace(cfg.sampler, num_views=views) if views else cfg.sampler
    splits = load_splits(data, seed=cfg.train.seed)
    if sorted(splits.class_names) != sorted(model.class_names):
        raise UsageError(
            f"the data's classes {splits.class_names} differ from the checkpoint's {model.class_names}"
        )
    splits = class_order(
        splits, model.class_names
    )  # labels in the checkpoint's order (a model grown by --init-from)
    samples = getattr(splits, split)
    dataset, forward, loader_workers = (
        build_dataset(samples, replace(cfg, data=data), train=False, sampler=sampler),
        model,
        data.num_workers,
    )
    source = feature_source(replace(cfg, data=data), model)  # a frozen backbone: the training run's cache
    report = prepare(source, samples, data.num_workers) if source is not None else None
    if report is not None:
        dataset = FeatureClips(samples, source.cache, sampler, False, cfg.train.seed, report.unreadable)
        forward, loader_workers = CachedForward(model, source.depth), 0
    loader = build_loader(SafeClips(dataset), batch_size or cfg.train.eval_batch_size, loader_workers)
    scores = score_loader(forward, loader, device, cfg.train.amp)
    missing = [
        {"path": f"{f}:{line}: {entry}", "reason": "listed but missing from disk"}
        for f, line, entry in splits.missing
    ]
    scores.temperature = model.confidence.temperature
    metrics = summarise(scores, model.class_names, len(samples))
    metrics.update(split=split, checkpoint=str(checkpoint), num_missing=len(missing), missing=missing)
    metrics.update(confidence_metrics(scores, model.confidence))
    lost = scores.failures or (split == "test" and missing)
    if lost and not allow_failed:
        reasons = [f.reason for f in scores.failures] + [m["path"] for m in missing]
        raise EvaluationRefused(
            f"{len(reasons)} of {len(samples) + len(missing)} videos of the {split} split could not be evaluated, so "
            f"its figures would not describe the whole split; fix them or pass --allow-failed to report anyway:\n  "
            + "\n  ".join(reasons[:20])
        )
    write_evaluation(
        out_dir, scores, metrics, model.class_names, [s.path for s in samples], confidence=model.confidence
    )
    return metrics


def format_metrics(metrics: dict) -> str:
    """The headline of metrics.json, a few lines for the terminal."""
    lines = [
        f"{metrics.get('split', 'split')}: {metrics['num_scored']} of {metrics['num_videos']} videos scored, "
        f"{metrics['num_failed']} failed; {metrics['num_views']} view(s) per video",
        f"video top-1 {metrics['top1']:.3f}  clip top-1 {metrics['clip_accuracy']:.3f}  mean-class "
        f"{metrics['mean_class_accuracy']:.3f}  macro-F1 {metrics['macro_f1']:.3f}"
        + (f"  top-5 {metrics['top5']:.3f}" if "top5" in metrics else ""),
    ]
    if "ece_after" in metrics:
        rejection = metrics["rejection"]
        kept = (
            f"; {rejection['score']} < {rejection['threshold']:.4g} is unknown: keeps "
            f"{rejection['known_kept']:.3f} of these known videos"
            if rejection["threshold"] is not None and rejection["known_kept"] is not None
            else "; no rejection threshold"
        )
        lines.append(
            f"calibration: temperature {metrics['temperature']:.3f}, ECE (15 bins) {metrics['ece_before']:.3f} "
            f"before, {metrics['ece_after']:.3f} after{kept}"
        )
    width = max(len(name) for name in metrics["per_class"])
    lines.append(f"{'class'.ljust(width)}  precision  recall  f1     support")
    for name, row in metrics["per_class"].items():
        lines.append(
            f"{name.ljust(width)}  {row['precision']:.3f}      {row['recall']:.3f}   {row['f1']:.3f}  "
            f"{row['support']}"
        )
    return "\n".join(lines)

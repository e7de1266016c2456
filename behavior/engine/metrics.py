"""Classification metrics from logits and targets: accuracy, mean-class accuracy, macro-F1, per-class
report (scikit-learn) and the confusion matrix (one bincount, as in torchvision's references)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(targets: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 (K, K): rows are true classes, columns predicted classes."""
    targets, predictions = np.asarray(targets, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    return np.bincount(num_classes * targets + predictions, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """float (K, K): each row divided by its total (a row with no videos stays 0)."""
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=np.float64), where=totals > 0)


def topk_accuracy(scores: np.ndarray, targets: np.ndarray, k: int) -> float:
    top = np.argsort(-scores, axis=1)[:, :k]  # (N, k)
    return float((top == targets[:, None]).any(axis=1).mean()) if len(targets) else 0.0


def classification_report(scores: np.ndarray, targets: np.ndarray, class_names: Sequence[str]) -> dict:
    """Metrics of video-level scores (N, K) against targets (N,): top-1, top-5 when K > 5, mean-class
    (balanced) accuracy, macro-F1, and precision / recall / F1 / support per class."""
    # imported here: scikit-learn (and scipy.stats under it) would cost predict and live a second of start-up
    from sklearn.metrics import balanced_accuracy_score, f1_score, precision_recall_fscore_support

    num_classes = len(class_names)
    targets = np.asarray(targets, dtype=np.int64)
    predictions = scores.argmax(axis=1) if len(scores) else np.zeros(0, dtype=np.int64)
    labels = list(range(num_classes))
    present = sorted(set(targets.tolist()))
    precision, recall, f1, support = precision_recall_fscore_support(
        targets, predictions, labels=labels, zero_division=0
    )
    report = {
        "top1": topk_accuracy(scores, targets, 1),
        "mean_class_accuracy": float(balanced_accuracy_score(targets, predictions)) if len(targets) else 0.0,
        "macro_f1": float(f1_score(targets, predictions, labels=present, average="macro", zero_division=0))
        if len(targets)
        else 0.0,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
    }
    if num_classes > 5:
        report["top5"] = topk_accuracy(scores, targets, 5)
    return report

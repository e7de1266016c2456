"""Rejection: how much a clip looks like the behaviours the model knows, and the threshold below which it is
called `unknown` ("none of these").

Every score is higher for clips that look known, so one rule serves them all: rejected when score < threshold.

- `msp`: the maximum softmax probability at the fitted temperature (Hendrycks and Gimpel, ICLR 2017), in [0, 1].
- `energy`: T·logsumexp(logits / T) at the fitted temperature: the negative of the free energy
  E(x) = -T·logsumexp(f(x) / T) of Liu et al. ("Energy-based Out-of-distribution Detection", NeurIPS 2020),
  negated so that higher means known like the others. Unbounded; in logit units.
- `prototype`: the cosine similarity of the clip's feature (the backbone's per-frame features,
  `model.forward_features`, averaged over T and the views) to the nearest class prototype, the mean direction
  of the training clips' features of that class. In [-1, 1].

`threshold_keeping(scores, keep)` is the score that keeps the share `keep` of known clips at or above it.
"""

from __future__ import annotations

import numpy as np

from behavior.engine.calibration import probabilities

REJECTION_SCORES = ("msp", "energy", "prototype")


def max_probability(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """float (N,) in [0, 1]: the top class's probability, views averaged, of logits float (N, V, K)."""
    return probabilities(logits, temperature).mean(axis=1).max(axis=1)


def negative_energy(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """float (N,): T·logsumexp(logits / T) of logits float (N, V, K), averaged over the views."""
    from scipy.special import logsumexp  # here: only a run that scores by energy waits for scipy at start-up

    logits = np.asarray(logits, dtype=np.float64)
    return (temperature * logsumexp(logits / temperature, axis=-1)).mean(axis=1)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def class_prototypes(features: np.ndarray, targets: np.ndarray, num_classes: int) -> np.ndarray:
    """float (K, D) unit vectors: the mean direction of each class's clip features float (N, V, D) (views
    averaged); a class without clips gets a zero vector, which no clip is near."""
    unit = _unit(np.asarray(features, dtype=np.float64).mean(axis=1))  # (N, D)
    prototypes = np.zeros((num_classes, unit.shape[1]))
    for k in range(num_classes):
        members = unit[np.asarray(targets) == k]
        if len(members):
            prototypes[k] = _unit(members.mean(axis=0))
    return prototypes


def prototype_similarity(features: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """float (N,) in [-1, 1]: cosine similarity of each clip's feature float (N, V, D) (views averaged) to the
    nearest of the prototypes float (K, D)."""
    unit = _unit(np.asarray(features, dtype=np.float64).mean(axis=1))  # (N, D)
    return (unit @ np.asarray(prototypes, dtype=np.float64).T).max(axis=1)  # (N,)


def rejection_scores(
    kind: str,
    logits: np.ndarray,
    features: np.ndarray | None = None,
    temperature: float = 1.0,
    prototypes: np.ndarray | None = None,
) -> np.ndarray:
    """float (N,) scores of kind `kind` (a name of REJECTION_SCORES), higher for clips that look known, from
    logits float (N, V, K) and, for `prototype`, clip features float (N, V, D) and the class prototypes."""
    if kind == "msp":
        return max_probability(logits, temperature)
    if kind == "energy":
        return negative_energy(logits, temperature)
    if kind == "prototype":
        if features is None or prototypes is None:
            raise ValueError("the prototype score needs clip features and class prototypes")
        return prototype_similarity(features, prototypes)
    raise ValueError(f"rejection score {kind!r} is unknown; valid: {', '.join(REJECTION_SCORES)}")


def threshold_keeping(scores: np.ndarray, keep: float) -> float:
    """The largest threshold that keeps at least the share `keep` of `scores` (known clips) at or above it."""
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    if len(scores) == 0:
        raise ValueError("no scores to choose a threshold from")
    rejected = int(np.floor((1.0 - keep) * len(scores) + 1e-9))  # at most this many fall below
    return float(scores[min(rejected, len(scores) - 1)])


def auroc(known: np.ndarray, unseen: np.ndarray) -> float:
    """Area under the ROC curve of telling known clips (positives) from unseen ones by score: 1 is a perfect
    separation, 0.5 a coin."""
    from sklearn.metrics import roc_auc_score  # here: scikit-learn costs live mode a second of start-up

    labels = np.r_[np.ones(len(known)), np.zeros(len(unseen))]
    return float(roc_auc_score(labels, np.r_[known, unseen]))

"""Calibration: scores that mean how often the model is right.

- `probabilities(logits, temperature)`: the one place a temperature is applied; every probability the package
  shows (evaluation, batch and window prediction, live mode) is made here.
- `fit_temperature(logits, targets)`: temperature scaling (Guo et al., "On Calibration of Modern Neural
  Networks", ICML 2017): one scalar T > 0 that minimises the negative log-likelihood of softmax(logits / T) on
  held-out clips, found with LBFGS. It never changes which class is on top, only how sure the score is.
- `reliability(probabilities, targets)`: the reliability diagram's data and the expected calibration error
  (ECE) over 15 equal-width confidence bins, as in the paper: ECE = sum over bins of
  (share of clips in the bin) x |accuracy in the bin - mean confidence in the bin|.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

NUM_BINS = 15  # Guo et al.'s ECE uses 15 equal-width bins
# A fitted temperature is kept inside this range: on a validation split the model gets entirely right, the
# likelihood keeps rising as T falls to 0, and every score would round to 1.
TEMPERATURE_RANGE = (0.05, 20.0)


def probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Class probabilities float64 (..., K) in [0, 1], summing to 1: softmax(logits / temperature)."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled = scaled - scaled.max(axis=-1, keepdims=True)  # no overflow in exp
    exponentials = np.exp(scaled)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature T minimising the mean NLL of softmax(logits / T) over logits float (N, K) and targets
    int (N,), within TEMPERATURE_RANGE; 1.0 when there is nothing to fit on."""
    if len(targets) == 0:
        return 1.0
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)  # (N, K)
    y = torch.as_tensor(np.asarray(targets), dtype=torch.long)  # (N,)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)  # T = exp(log_t) stays positive
    optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    low, high = TEMPERATURE_RANGE
    temperature = float(log_t.detach().exp())
    return float(np.clip(temperature, low, high)) if np.isfinite(temperature) else low


@dataclass
class Reliability:
    """A reliability diagram: per confidence bin, how many clips, how often right, how sure; and the ECE."""

    edges: np.ndarray  # float (M + 1,): bin m holds confidences in (edges[m], edges[m + 1]]
    counts: np.ndarray  # int (M,)
    accuracy: np.ndarray  # float (M,): share right in the bin; 0 for an empty bin
    confidence: np.ndarray  # float (M,): mean top-class probability in the bin; 0 for an empty bin
    ece: float  # expected calibration error in [0, 1]

    def as_dict(self) -> dict:
        return {
            "edges": self.edges.round(4).tolist(),
            "counts": self.counts.tolist(),
            "accuracy": self.accuracy.round(4).tolist(),
            "confidence": self.confidence.round(4).tolist(),
            "ece": self.ece,
        }


def reliability(probs: np.ndarray, targets: np.ndarray, num_bins: int = NUM_BINS) -> Reliability:
    """The reliability diagram and ECE of probabilities float (N, K) against targets int (N,)."""
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    if len(targets) == 0:
        zeros = np.zeros(num_bins)
        return Reliability(edges, np.zeros(num_bins, np.int64), zeros, zeros, 0.0)
    probs = np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1)  # (N,)
    correct = (probs.argmax(axis=1) == np.asarray(targets)).astype(np.float64)  # (N,)
    bins = np.clip(np.ceil(confidence * num_bins).astype(np.int64) - 1, 0, num_bins - 1)  # (N,)
    counts = np.bincount(bins, minlength=num_bins)
    right = np.bincount(bins, weights=correct, minlength=num_bins)
    sure = np.bincount(bins, weights=confidence, minlength=num_bins)
    accuracy = np.divide(right, counts, out=np.zeros(num_bins), where=counts > 0)
    mean_confidence = np.divide(sure, counts, out=np.zeros(num_bins), where=counts > 0)
    ece = float(np.sum(counts / len(targets) * np.abs(accuracy - mean_confidence)))
    return Reliability(edges, counts, accuracy, mean_confidence, ece)


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, num_bins: int = NUM_BINS) -> float:
    """ECE in [0, 1] of probabilities float (N, K) against targets int (N,), over `num_bins` equal-width bins."""
    return reliability(probs, targets, num_bins).ece

"""What a checkpoint knows about its own scores: the temperature that calibrates them and the rule that calls a
clip `unknown`. Fitted once after training (`fit_confidence`), kept in best.pt and last.pt under the key
"confidence", and used by evaluation, batch and window prediction, live mode and export alike.

A checkpoint without the key (written before it existed) loads as `Confidence()`: temperature 1 and no
threshold, so nothing is ever rejected, exactly as it behaved before.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from behavior.config import ConfidenceConfig
from behavior.engine.calibration import fit_temperature, probabilities
from behavior.engine.rejection import rejection_scores, threshold_keeping
from behavior.errors import UsageError

UNKNOWN = "unknown"  # the label of a clip whose rejection score falls below the threshold
NONE = "none"  # the label of a stretch of a long video where nothing known happens


@dataclass(frozen=True)
class Judged:
    """The scores of N videos (or windows) under a checkpoint's `Confidence`."""

    probabilities: np.ndarray  # float (N, K): calibrated, views averaged
    scores: np.ndarray  # float (N,): the rejection score, higher for clips that look known
    unknown: np.ndarray  # bool (N,): score below the threshold


@dataclass(frozen=True)
class Confidence:
    temperature: float = 1.0  # softmax(logits / temperature) is calibrated; 1: as trained
    score: str = "msp"  # which rejection score (behavior.engine.rejection.REJECTION_SCORES)
    threshold: float | None = None  # below it a clip is unknown; None: nothing is rejected
    keep_known: float | None = None  # the share of known clips the threshold was chosen to keep
    fitted_on: str = ""  # the split it was fitted on: "val", "train", or "" (never fitted)
    prototypes: np.ndarray | None = None  # float (K, D): class mean directions of training clip features

    @property
    def rejects(self) -> bool:
        return self.threshold is not None

    def with_threshold(self, threshold: float | None) -> Confidence:
        """The same rule with another threshold (None: reject nothing), e.g. from `--unknown-threshold`."""
        return replace(self, threshold=None if threshold is None else float(threshold))

    def judge(self, logits: np.ndarray, features: np.ndarray | None = None) -> Judged:
        """Calibrated probabilities, rejection scores and decisions of logits float (N, V, K) and, for the
        prototype score, clip features float (N, V, D)."""
        logits = np.asarray(logits, dtype=np.float64)
        probs = probabilities(logits, self.temperature).mean(axis=1)  # (N, K)
        scores = rejection_scores(self.score, logits, features, self.temperature, self.prototypes)  # (N,)
        unknown = scores < self.threshold if self.threshold is not None else np.zeros(len(scores), bool)
        return Judged(probs, scores, unknown)

    def describe(self) -> str:
        """One line for a terminal or a picture: the temperature and the rejection rule."""
        rule = (
            f"unknown when {self.score} < {self.threshold:.4g} (keeps {self.keep_known:.0%} of known "
            f"{self.fitted_on} clips)"
            if self.threshold is not None and self.keep_known is not None
            else (
                f"unknown when {self.score} < {self.threshold:.4g}"
                if self.threshold is not None
                else "no rejection"
            )
        )
        return f"temperature {self.temperature:.3f}; {rule}"

    def state(self) -> dict:
        """The checkpoint entry: plain numbers, strings and a tensor, loadable with weights_only=True."""
        return {
            "temperature": float(self.temperature),
            "score": self.score,
            "threshold": self.threshold,
            "keep_known": self.keep_known,
            "fitted_on": self.fitted_on,
            "prototypes": None if self.prototypes is None else torch.from_numpy(np.asarray(self.prototypes)),
        }

    @classmethod
    def from_state(cls, state: dict | None) -> Confidence:
        """The `Confidence` of a checkpoint's "confidence" entry; `Confidence()` when there is none."""
        if not state:
            return cls()
        prototypes = state.get("prototypes")
        return cls(
            temperature=float(state.get("temperature", 1.0)),
            score=str(state.get("score", "msp")),
            threshold=None if state.get("threshold") is None else float(state["threshold"]),
            keep_known=None if state.get("keep_known") is None else float(state["keep_known"]),
            fitted_on=str(state.get("fitted_on", "")),
            prototypes=None if prototypes is None else prototypes.double().numpy(),
        )


def prediction_rule(confidence: Confidence, threshold: float | None, reject: bool = True) -> Confidence:
    """A checkpoint's rule with the threshold a user gives at prediction time (`--unknown-threshold`), or with
    rejection off (`reject=False`); unchanged when neither is given."""
    if threshold is not None and not reject:
        raise UsageError("give an unknown threshold or turn rejection off, not both")
    if not reject:
        return confidence.with_threshold(None)
    if threshold is None:
        return confidence
    if confidence.score == "prototype" and confidence.prototypes is None:
        raise UsageError(
            "--unknown-threshold: this checkpoint has no class prototypes for its prototype score"
        )
    return confidence.with_threshold(threshold)


def fit_confidence(
    cfg: ConfidenceConfig,
    logits: np.ndarray,
    targets: np.ndarray,
    features: np.ndarray | None = None,
    prototypes: np.ndarray | None = None,
    fitted_on: str = "val",
) -> Confidence:
    """Fit on the clips of split `fitted_on`, their logits float (N, V, K), targets int (N,) and features float
    (N, V, D): the temperature (on "val" when `cfg.calibrate`; on "train", whose scores the model was fitted to,
    it stays 1), then the threshold that keeps `cfg.keep_known` of these clips (none when `cfg.rejection_score`
    is "none").
    `prototypes` float (K, D), the class directions of the training clips (`class_prototypes`), are needed for
    the prototype score only."""
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets)
    temperature = 1.0
    if fitted_on == "val" and cfg.calibrate:
        num_views = logits.shape[1]
        temperature = fit_temperature(logits.reshape(-1, logits.shape[-1]), np.repeat(targets, num_views))
    confidence = Confidence(
        temperature=temperature,
        fitted_on=fitted_on,
        prototypes=None if prototypes is None else np.asarray(prototypes, dtype=np.float64),
    )
    if cfg.rejection_score == "none" or len(targets) == 0:
        return confidence
    scores = rejection_scores(cfg.rejection_score, logits, features, temperature, confidence.prototypes)
    return replace(
        confidence,
        score=cfg.rejection_score,
        threshold=threshold_keeping(scores, cfg.keep_known),
        keep_known=cfg.keep_known,
    )

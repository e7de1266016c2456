from __future__ import annotations

import numpy as np
import pytest

from behavior.engine.calibration import (
    TEMPERATURE_RANGE,
    expected_calibration_error,
    fit_temperature,
    probabilities,
    reliability,
)


def sampled_labels(logits: np.ndarray, temperature: float, seed: int = 0) -> np.ndarray:
    """Labels drawn from softmax(logits / temperature): for them that temperature is exactly calibrated."""
    rng = np.random.default_rng(seed)
    probs = probabilities(logits, temperature)
    return np.array([rng.choice(len(p), p=p) for p in probs])


@pytest.mark.parametrize("true_temperature", [0.5, 2.5])
def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_with(true_temperature):
    logits = np.random.default_rng(1).normal(0, 3, (4000, 5))
    fitted = fit_temperature(logits, sampled_labels(logits, true_temperature))
    assert fitted == pytest.approx(true_temperature, rel=0.1)


def test_the_temperature_keeps_the_ranking_and_stays_in_range():
    logits = np.random.default_rng(2).normal(0, 2, (50, 4))
    for temperature in (0.3, 1.0, 4.0):
        probs = probabilities(logits, temperature)
        assert np.allclose(probs.sum(axis=1), 1) and (probs.argmax(axis=1) == logits.argmax(axis=1)).all()
    perfect = np.eye(4)[np.arange(40) % 4] * 5  # every clip right: the likelihood wants T -> 0, never below
    assert TEMPERATURE_RANGE[0] <= fit_temperature(perfect, np.arange(40) % 4) < 0.5
    assert fit_temperature(np.zeros((0, 4)), np.zeros(0, np.int64)) == 1.0


def toy(confidence: np.ndarray, right_with: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two-class probabilities whose top class has `confidence`, right with probability `right_with`."""
    rng = np.random.default_rng(seed)
    probs = np.stack([confidence, 1 - confidence], axis=1)
    targets = np.where(rng.random(len(confidence)) < right_with, 0, 1)
    return probs, targets


def test_ece_is_near_zero_when_calibrated_and_large_when_overconfident():
    confidence = np.random.default_rng(3).uniform(0.5, 1.0, 20000)
    calibrated = expected_calibration_error(*toy(confidence, confidence))
    overconfident = expected_calibration_error(*toy(confidence, 0.5 + (confidence - 0.5) * 0.5))
    assert calibrated < 0.015
    assert overconfident > 0.1


def test_reliability_bins_count_every_clip_once():
    probs = np.array([[0.99, 0.01], [0.6, 0.4], [0.55, 0.45], [1.0, 0.0]])
    targets = np.array([0, 1, 0, 0])
    bins = reliability(probs, targets)
    assert len(bins.counts) == 15 and bins.counts.sum() == 4
    assert bins.counts[-1] == 2 and bins.accuracy[-1] == 1.0  # 0.99 and 1.0 share the top bin
    # bin (8/15, 9/15] holds 0.55 and 0.6: one right, one wrong
    assert bins.counts[8] == 2 and bins.accuracy[8] == 0.5 and bins.confidence[8] == pytest.approx(0.575)
    expected = (2 * abs(1.0 - 0.995) + 2 * abs(0.5 - 0.575)) / 4
    assert bins.ece == pytest.approx(expected)

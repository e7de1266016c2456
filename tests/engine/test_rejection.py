from __future__ import annotations

import numpy as np
import pytest
import torch

from behavior.config import ConfidenceConfig
from behavior.engine.calibration import probabilities
from behavior.engine.confidence import Confidence, fit_confidence, prediction_rule
from behavior.engine.rejection import (
    auroc,
    class_prototypes,
    negative_energy,
    rejection_scores,
    threshold_keeping,
)
from behavior.errors import UsageError


@pytest.mark.parametrize("keep", [0.95, 0.8, 0.5, 1.0])
def test_the_threshold_keeps_the_stated_share(keep):
    scores = np.random.default_rng(0).normal(size=997)
    threshold = threshold_keeping(scores, keep)
    assert (scores >= threshold).mean() >= keep
    assert (
        scores > threshold
    ).mean() < keep  # one step higher would keep too few: the largest such threshold


def test_scores_are_higher_for_what_looks_known():
    logits = np.array([[[8.0, 0.0, 0.0]], [[0.5, 0.4, 0.6]]])  # (N=2, V=1, K=3): sure, then unsure
    for kind in ("msp", "energy"):
        sure, unsure = rejection_scores(kind, logits, temperature=1.5)
        assert sure > unsure
    assert rejection_scores("msp", logits, temperature=1.5)[0] == pytest.approx(
        probabilities(logits[0, 0], 1.5).max()
    )
    # energy's sign convention: T * logsumexp(logits / T), the negative of Liu et al.'s free energy
    assert negative_energy(logits, 2.0)[1] == pytest.approx(2.0 * np.log(np.exp(logits[1, 0] / 2.0).sum()))
    features = np.array([[[1.0, 0.0]], [[0.9, 0.1]], [[0.0, 1.0]], [[0.1, 0.9]]])  # (N, V=1, D=2)
    prototypes = class_prototypes(features, np.array([0, 0, 1, 1]), 2)
    queries = np.array([[[2.0, 0.2]], [[1.0, 1.0]]])  # near class 0's direction; halfway between the two
    near, between = rejection_scores("prototype", logits, queries, 1.0, prototypes)
    assert 0.99 < near <= 1 and 0.7 < between < 0.8  # cos 45 degrees, give or take the prototypes' tilt
    assert auroc(np.array([0.9, 0.8]), np.array([0.1, 0.7])) == 1.0
    with pytest.raises(ValueError, match="prototype score needs"):
        rejection_scores("prototype", logits)


def test_fit_chooses_the_threshold_on_held_out_clips_and_survives_the_checkpoint():
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 2, (200, 1, 5))
    targets = logits[:, 0].argmax(axis=1)
    fitted = fit_confidence(
        ConfidenceConfig(rejection_score="energy", keep_known=0.9), logits, targets, fitted_on="val"
    )
    assert fitted.score == "energy" and fitted.fitted_on == "val" and fitted.temperature != 1.0
    assert fitted.judge(logits).unknown.mean() <= 0.1
    again = Confidence.from_state(torch.load(_saved(fitted.state()), weights_only=True))
    assert again == fitted
    assert Confidence.from_state(None) == Confidence() and not Confidence().rejects
    without = fit_confidence(ConfidenceConfig(rejection_score="none"), logits, targets, fitted_on="train")
    assert without.temperature == 1.0 and not without.rejects  # no validation split: T stays 1


def test_a_threshold_given_at_prediction_time_replaces_the_fitted_one():
    fitted = Confidence(temperature=2.0, score="msp", threshold=0.4, keep_known=0.95, fitted_on="val")
    assert prediction_rule(fitted, None).threshold == 0.4
    assert prediction_rule(fitted, 0.7).threshold == 0.7 and prediction_rule(fitted, 0.7).temperature == 2.0
    assert not prediction_rule(fitted, None, reject=False).rejects
    with pytest.raises(UsageError, match="not both"):
        prediction_rule(fitted, 0.7, reject=False)


def _saved(state: dict):
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer

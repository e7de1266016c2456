from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_overrides

from behavior.config import load_config
from behavior.engine.outliers import made_up_outliers, uniform_loss
from behavior.engine.train import train
from behavior.errors import ConfigError


def numbered_clips(batch: int, frames: int) -> torch.Tensor:
    """(B, T, 1, 2, 2) clips whose every pixel holds 100 * clip + frame, so an outlier tells where it came from."""
    values = 100 * torch.arange(batch)[:, None] + torch.arange(frames)[None, :]  # (B, T)
    return values[:, :, None, None, None].expand(batch, frames, 1, 2, 2).float()


def test_outliers_are_still_or_shuffled_frames_of_one_clip_of_the_batch():
    clips = numbered_clips(batch=4, frames=8)
    outliers = made_up_outliers(clips, 6, torch.Generator().manual_seed(0))
    assert outliers.shape == (6, 8, 1, 2, 2)
    values = outliers[:, :, 0, 0, 0].long()  # (6, T)
    sources = values // 100
    assert all(len(set(row.tolist())) == 1 for row in sources)  # one source clip each
    frames = values % 100
    for row in frames[:3]:  # still: one frame held for all T
        assert len(set(row.tolist())) == 1
    for row in frames[3:]:  # shuffled: every frame once, in an order that is neither forward nor backward
        assert sorted(row.tolist()) == list(range(8))
        assert row.tolist() not in (list(range(8)), list(range(7, -1, -1)))


def test_short_clips_give_still_outliers_only():
    outliers = made_up_outliers(numbered_clips(2, 2), 4, torch.Generator().manual_seed(1))
    frames = outliers[:, :, 0, 0, 0].long() % 100
    assert all(row[0] == row[1] for row in frames)


def test_uniform_loss_is_least_at_equal_scores():
    equal = torch.zeros(3, 5)
    assert uniform_loss(equal).item() == pytest.approx(math.log(5))
    confident = torch.tensor([[9.0, 0, 0, 0, 0]] * 3)
    assert uniform_loss(confident).item() > math.log(5) + 1


def test_training_with_outlier_exposure_lowers_the_scores_of_still_clips(tiny_synth, tmp_path):
    """The same tiny run with and without the outlier loss: with it, a still clip (one frame held) gets a lower
    top probability than without, close to equal over the five classes."""

    def run(name, exposure):
        cfg = load_config(
            None,
            tiny_overrides(tiny_synth, **{"train.epochs": 3, "confidence.outlier_exposure": exposure}),
        )
        train(cfg, tmp_path / name)

    from behavior.data.datasets import build_dataset, load_splits
    from behavior.engine.checkpoint import load_trained_model

    top = {}
    for name, exposure in (("plain", 0.0), ("exposed", 1.0)):
        run(name, exposure)
        model, cfg = load_trained_model(tmp_path / name / "last.pt")
        dataset = build_dataset(load_splits(cfg.data, seed=0).train, cfg, train=False)
        clip = torch.stack([dataset[i][0] for i in range(min(8, len(dataset)))])  # (N, T, C, H, W)
        still = clip[:, :1].expand_as(clip)
        with torch.no_grad():
            top[name] = torch.softmax(model(still), dim=1).max(dim=1).values.mean().item()
    assert top["exposed"] < top["plain"]
    assert top["exposed"] < 1.5 / 5  # close to equal over the five classes


def test_outlier_settings_are_checked():
    with pytest.raises(ConfigError, match="confidence.outlier_exposure"):
        load_config(None, ["confidence.outlier_exposure=-1"])
    with pytest.raises(ConfigError, match="confidence.outlier_share"):
        load_config(None, ["confidence.outlier_share=0"])

"""Batch norms folded into their convolutions for inference: the same logits, features, attention maps and
streamed steps as the model before, on every backbone, with batch-norm statistics far from their initial values."""

import pytest
import torch
from test_model import CLASSES, assert_same_scores, assert_streams_its_clip_forward, clip, tiny
from torch import nn

from behavior.models.classifier import build_model
from behavior.models.fusion import fold_batch_norms
from behavior.models.registry import BACKBONES


def with_random_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """The model in eval mode with every batch norm's statistics and affine parameters drawn at random: folding
    initial statistics (mean 0, variance 1) would hide a wrong scale or shift."""
    generator = torch.Generator().manual_seed(seed)
    for bn in model.modules():
        if isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = bn.num_features
            bn.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
            bn.running_var.copy_(torch.rand(n, generator=generator) * 2 + 0.2)
            bn.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            bn.bias.data.copy_(torch.randn(n, generator=generator) * 0.2)
    return model.eval()


@pytest.mark.parametrize("backbone", BACKBONES)
def test_folding_keeps_the_outputs_of_every_backbone(backbone):
    torch.manual_seed(0)
    model = with_random_norms(build_model(tiny(backbone, head="attention"), CLASSES, num_frames=3))
    x = clip(b=2, t=3)
    with torch.inference_mode():
        before = model.forward_scores(x, return_attention=True)
        norms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        folded = fold_batch_norms(model)
        after = model.forward_scores(x, return_attention=True)
    assert folded > 0
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == norms - folded
    assert_same_scores(before, after)


def test_folding_keeps_the_outputs_of_the_temporal_head():
    torch.manual_seed(0)
    model = with_random_norms(build_model(tiny(head="tconv"), CLASSES, num_frames=3))
    x = clip(b=2, t=3)
    with torch.inference_mode():
        before = model.forward_scores(x, return_attention=True)
        fold_batch_norms(model)
        after = model.forward_scores(x, return_attention=True)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in model.head.modules())
    assert_same_scores(before, after)


def test_a_folded_online_model_still_streams_its_clip_forward():
    torch.manual_seed(0)
    model = with_random_norms(build_model(tiny(temporal_shift=True, shift="online"), CLASSES, num_frames=3))
    fold_batch_norms(model)
    assert_streams_its_clip_forward(model)


def test_folding_a_model_in_training_mode_is_refused():
    model = build_model(tiny(), CLASSES, num_frames=3).train()
    with pytest.raises(ValueError, match="eval"):
        fold_batch_norms(model)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_the_torch_engine_runs_the_checkpoint_folded_with_the_same_logits(tiny_run):
    from behavior.engine.checkpoint import load_trained_model
    from behavior.tools.engines import load_engine

    model, cfg = load_trained_model(tiny_run / "best.pt")
    engine, _ = load_engine(tiny_run / "best.pt", "torch", torch.device("cpu"))
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len([m for m in engine.modules() if isinstance(m, nn.BatchNorm2d)]) < len(norms)
    x = clip(b=2, t=cfg.sampler.num_frames, size=cfg.transform.crop)
    with torch.inference_mode():
        assert torch.allclose(engine(x), model(x), atol=1e-4, rtol=1e-4)

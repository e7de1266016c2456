"""Convolutions on oneDNN at inference (behavior.models.onednn): the same outputs and streamed steps as before on
every backbone, oneDNN's kernel where PyTorch would have taken its own for a one-frame step, and the ordinary
path wherever gradients are needed."""

import pytest
import torch
from test_model import CLASSES, assert_same_scores, assert_streams_its_clip_forward, clip, tiny
from torch import nn
from torch.profiler import ProfilerActivity, profile

from behavior.models import onednn
from behavior.models.classifier import build_model
from behavior.models.efficientnet import Conv2dSame
from behavior.models.onednn import OneDnnConv1d, OneDnnConv2d, use_onednn_convolutions
from behavior.models.registry import BACKBONES

pytestmark = pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(), reason="PyTorch built without oneDNN"
)


# oneDNN's call with weights reordered once (PyTorch's compiler makes it); older PyTorch: the reordering call
ONEDNN_CALL = (
    "mkldnn::_convolution_pointwise" if onednn._POINTWISE is not None else "aten::mkldnn_convolution"
)


def kernels(run) -> set[str]:
    """The names of the convolution kernels `run()` called."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    return {e.key for e in prof.key_averages() if "conv" in e.key and ("mkldnn" in e.key or "slow" in e.key)}


@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_backbone_keeps_its_outputs(backbone):
    torch.manual_seed(0)
    model = build_model(tiny(backbone, head="attention"), CLASSES, num_frames=3).eval()
    x = clip(b=2, t=3)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.inference_mode():
        before = model.forward_scores(x, return_attention=True)
        convs = sum(type(m) in (nn.Conv2d, Conv2dSame) for m in model.modules())
        changed = use_onednn_convolutions(model)
        after = model.forward_scores(x, return_attention=True)
    assert changed == convs > 0
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert_same_scores(before, after)


def test_a_one_frame_step_takes_onednn_where_pytorch_would_not():
    torch.manual_seed(0)
    model = build_model(tiny(temporal_shift=True, shift="online"), CLASSES, num_frames=3).eval()
    frame = torch.randn(1, 3, 32, 32)  # 3,072 input values: PyTorch's own kernel for a 3x3 convolution

    def step() -> None:
        with torch.inference_mode():
            model.forward_step(frame)

    assert "aten::_slow_conv2d_forward" in kernels(step)
    use_onednn_convolutions(model)
    step()  # the first call with a shape reorders the weights for oneDNN; the ones after only convolve
    assert kernels(step) == {ONEDNN_CALL}


def test_an_online_model_on_onednn_still_streams_its_clip_forward():
    torch.manual_seed(0)
    model = build_model(tiny(temporal_shift=True, shift="online"), CLASSES, num_frames=3).eval()
    use_onednn_convolutions(model)
    assert_streams_its_clip_forward(model)


def test_training_takes_the_ordinary_path_and_gets_the_same_gradients():
    torch.manual_seed(0)
    plain = build_model(tiny(), CLASSES, num_frames=3).train()
    changed = build_model(tiny(), CLASSES, num_frames=3).train()
    changed.load_state_dict(plain.state_dict())
    use_onednn_convolutions(changed)
    x = clip(b=2, t=3)
    for model in (plain, changed):
        torch.manual_seed(1)  # the same dropout mask for both
        model(x).sum().backward()
    for (name, a), b in zip(plain.named_parameters(), changed.parameters()):
        assert a.grad is not None and torch.equal(a.grad, b.grad), name


def test_only_plain_zero_padded_convolutions_change():
    same = nn.Conv2d(3, 4, 3, padding="same")
    reflect = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")
    plain = nn.Conv2d(3, 4, 3, padding=1)
    model = nn.Sequential(same, reflect, plain)
    assert use_onednn_convolutions(model) == 1
    assert type(plain) is OneDnnConv2d
    assert type(same) is nn.Conv2d and type(reflect) is nn.Conv2d


def test_the_torch_engine_runs_its_convolutions_on_onednn(tiny_run):
    from behavior.engine.checkpoint import load_trained_model
    from behavior.tools.engines import load_engine

    model, cfg = load_trained_model(tiny_run / "best.pt")
    engine, _ = load_engine(tiny_run / "best.pt", "torch", torch.device("cpu"))
    assert any(isinstance(m, OneDnnConv2d) for m in engine.modules())
    assert not any(type(m) is nn.Conv2d for m in engine.modules())
    x = clip(b=2, t=cfg.sampler.num_frames, size=cfg.transform.crop)
    with torch.inference_mode():
        assert torch.allclose(engine(x), model(x), atol=1e-4, rtol=1e-4)


def test_under_cpu_autocast_the_ordinary_path_runs_in_bf16():
    torch.manual_seed(0)
    model = build_model(tiny(), CLASSES, num_frames=3).eval()
    use_onednn_convolutions(model)
    x = clip(b=1, t=3)
    with torch.inference_mode(), torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        conv = next(m for m in model.modules() if isinstance(m, OneDnnConv2d))
        assert conv(x[:, 0]).dtype == torch.bfloat16  # autocast's own conv, not oneDNN's float32 call


def test_the_temporal_head_runs_on_onednn_with_the_same_logits():
    torch.manual_seed(0)
    model = build_model(tiny(temporal_shift=True, shift="online", head="tconv"), CLASSES, num_frames=3).eval()
    x = clip(b=2, t=3)
    with torch.inference_mode():
        before = model.forward_scores(x, return_attention=True)
        use_onednn_convolutions(model)
        after = model.forward_scores(x, return_attention=True)
    assert sum(isinstance(m, OneDnnConv1d) for m in model.head.modules()) == 2
    assert_same_scores(before, after)

    def head() -> None:
        with torch.inference_mode():
            model.forward_head(torch.randn(1, 3, model.backbone.num_features))

    head()  # the weights are reordered for oneDNN at the first call
    assert kernels(head) == {ONEDNN_CALL}


def test_new_weights_are_used_at_once():
    """The weights oneDNN keeps in its own layout are made again when the model's weights change: a model
    loaded with other weights gives that model's outputs, not those of the weights it had at its first call."""
    torch.manual_seed(0)
    first = build_model(tiny(head="tconv"), CLASSES, num_frames=3).eval()
    second = build_model(tiny(head="tconv"), CLASSES, num_frames=3).eval()
    x = clip(b=1, t=3)
    with torch.inference_mode():
        expected = second(x)
        use_onednn_convolutions(first)
        assert not torch.allclose(first(x), expected, atol=1e-3)
        first.load_state_dict(second.state_dict())
        assert torch.allclose(first(x), expected, atol=1e-5, rtol=1e-5)

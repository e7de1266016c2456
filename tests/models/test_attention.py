"""CBAM layers: any channel count, maps in [0, 1], and the same outputs as timm's reference layers."""

import pytest
import torch

from behavior.models.attention import CBAM, ChannelAttention, SpatialAttention, build_attention


def _randomise_bn(bn: torch.nn.BatchNorm2d) -> None:
    """Non-trivial affine and running statistics, so eval-mode parity is a real check."""
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 1.5)


@pytest.mark.parametrize("channels", [1, 3, 17, 64])
@pytest.mark.parametrize("kernel_size", [3, 7])
def test_spatial_attention_any_channels(channels, kernel_size):
    layer = SpatialAttention(kernel_size)
    x = torch.randn(2, channels, 9, 11)
    out, attn = layer(x, return_map=True)
    assert out.shape == x.shape
    assert attn.shape == (2, 1, 9, 11)
    assert attn.min() >= 0 and attn.max() <= 1
    torch.testing.assert_close(out, x * attn)
    torch.testing.assert_close(layer(x), out)


@pytest.mark.parametrize("kernel_size", [0, 4, 6])
def test_spatial_attention_rejects_even_kernel(kernel_size):
    with pytest.raises(ValueError, match="odd"):
        SpatialAttention(kernel_size)


@pytest.mark.parametrize("train", [True, False])
def test_spatial_attention_matches_timm(train):
    cbam = pytest.importorskip("timm.layers.cbam")
    torch.manual_seed(0)
    ours = SpatialAttention(7)
    _randomise_bn(ours.bn)
    ref = cbam.SpatialAttn(7)  # conv: timm ConvNormAct(2, 1, 7, apply_act=False) = conv.conv + conv.bn
    ref.conv.conv.weight.data.copy_(ours.conv.weight)
    ref.conv.bn.load_state_dict(ours.bn.state_dict())
    ours.train(train)
    ref.train(train)
    x = torch.randn(3, 24, 14, 10)
    torch.testing.assert_close(ours(x), ref(x))


def test_channel_attention_and_cbam_match_timm():
    cbam = pytest.importorskip("timm.layers.cbam")
    torch.manual_seed(0)
    ours = CBAM(40).eval()  # 40 / 16 = 2.5 channels: checks the rounding of the hidden width too
    _randomise_bn(ours.spatial.bn)
    ref = cbam.CbamModule(40).eval()
    ref.channel.load_state_dict(ours.channel.state_dict())
    ref.spatial.conv.conv.weight.data.copy_(ours.spatial.conv.weight)
    ref.spatial.conv.bn.load_state_dict(ours.spatial.bn.state_dict())
    x = torch.randn(2, 40, 6, 6)
    torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours.channel(x), ref.channel(x))


def test_cbam_returns_spatial_map():
    out, attn = CBAM(8, reduction=4)(torch.randn(2, 8, 5, 5), return_map=True)
    assert out.shape == (2, 8, 5, 5)
    assert attn.shape == (2, 1, 5, 5)
    assert 0 <= attn.min() and attn.max() <= 1


def test_channel_attention_small_channel_counts():
    assert ChannelAttention(3)(torch.randn(1, 3, 4, 4)).shape == (1, 3, 4, 4)


def test_build_attention_names():
    assert isinstance(build_attention("spatial", 8), SpatialAttention)
    assert isinstance(build_attention("cbam", 8), CBAM)
    assert build_attention("none", 8) is None
    with pytest.raises(ValueError, match="spatial, cbam, none"):
        build_attention("se", 8)

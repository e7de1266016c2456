"""CBAM attention (Woo et al., "CBAM: Convolutional Block Attention Module", ECCV 2018, arXiv:1807.06521).

- `SpatialAttention`: where to look. The features are pooled along the channel axis into a mean map and a max
  map, the two maps go through one k×k convolution ("same" padding) and a batch norm, and a sigmoid turns the
  result into a map in [0, 1] that multiplies every channel.
- `ChannelAttention`: what to look for. One shared two-layer MLP scores the average-pooled and the max-pooled
  channel descriptors; the sum of both scores, through a sigmoid, scales each channel.
- `CBAM`: channel attention, then spatial attention, as in the paper.

The layout follows the reference implementation most people check against, timm's `timm/layers/cbam.py`
(`SpatialAttn`, `ChannelAttn`, `CbamModule`): mean map before max map, a bias-free convolution followed by
BatchNorm2d(1) and no activation before the sigmoid; 1×1 convolutions without bias for the channel MLP.
`tests/test_attention.py` copies weights into timm's modules and checks the outputs agree.

Every module works for any channel count and returns, on request, the spatial map it applied, so the map can
be drawn over the frame.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from behavior.models.registry import ATTENTIONS


class SpatialAttention(nn.Module):
    """CBAM spatial attention: `x * sigmoid(bn(conv([mean_c(x), max_c(x)])))`, for any channel count."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be a positive odd integer (for 'same' padding), got {kernel_size!r}"
            )
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1)

    def attention_map(self, x: Tensor) -> Tensor:
        """The map this layer applies to `x` (N, C, h, w): float (N, 1, h, w) in [0, 1]."""
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # (N, 2, h, w)
        return torch.sigmoid(self.bn(self.conv(pooled)))  # (N, 1, h, w) in [0, 1]

    def forward(self, x: Tensor, return_map: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Weighted features (N, C, h, w), and with `return_map` also the map (N, 1, h, w) in [0, 1]."""
        attn = self.attention_map(x)  # (N, 1, h, w)
        out = x * attn  # (N, C, h, w)
        return (out, attn) if return_map else out


class ChannelAttention(nn.Module):
    """CBAM channel attention: a shared MLP (1×1 convolutions, reduction `reduction`) over avg- and max-pooled
    descriptors, summed, through a sigmoid."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        if channels < 1 or reduction < 1:
            raise ValueError(
                f"channels and reduction must be positive, got channels={channels}, reduction={reduction}"
            )
        hidden = max(1, int(channels / reduction + 0.5))  # rounded as timm's make_divisible(divisor=1) does
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """Channel-weighted features: float (N, C, h, w)."""
        avg = self.fc2(self.act(self.fc1(x.mean(dim=(2, 3), keepdim=True))))  # (N, C, 1, 1)
        peak = self.fc2(self.act(self.fc1(x.amax(dim=(2, 3), keepdim=True))))  # (N, C, 1, 1)
        return x * torch.sigmoid(avg + peak)  # (N, C, h, w)


class CBAM(nn.Module):
    """Channel attention, then spatial attention (the sequential order the CBAM paper found best)."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x: Tensor, return_map: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Weighted features (N, C, h, w), and with `return_map` also the spatial map (N, 1, h, w) in [0, 1]."""
        return self.spatial(self.channel(x), return_map=return_map)


def spatial_attention(channels: int, kernel_size: int = 7) -> SpatialAttention:
    """The "spatial" entry of the registry: `SpatialAttention` (any channel count)."""
    return SpatialAttention(kernel_size)


def cbam(channels: int, kernel_size: int = 7) -> CBAM:
    """The "cbam" entry of the registry: channel then spatial attention for `channels` channels."""
    return CBAM(channels, kernel_size=kernel_size)


def build_attention(name: str, channels: int, kernel_size: int = 7) -> nn.Module | None:
    """The attention layer called `name` (a key of ATTENTIONS) for a `channels`-wide feature map; None for
    "none"."""
    if name not in ATTENTIONS:
        raise ValueError(f"attention={name!r} is unknown; valid: {', '.join(ATTENTIONS)}")
    part = ATTENTIONS[name]
    return part.builder()(channels, kernel_size) if part.builder_path else None

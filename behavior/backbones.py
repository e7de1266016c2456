"""Per-frame 2D backbones with spatial attention after chosen stages.

Every backbone is a `Backbone`: stem → stages 1..S, each optionally followed by an attention layer → neck.
- `forward_features(x (N, C, H, W)) -> (N, D, h, w)`: the last feature map;
- `forward(x) -> (N, D)`: that map averaged over h and w (global average pooling, so any input size works);
- `num_features`: D.
Both take `return_attention=True` to also return the spatial maps, one per attention layer.

Backbones (stage numbers are what `attention_stages` counts):
- `seed-cnn`: the plain six-convolution stack this kind of project starts from. Stage i is conv i (3×3, BN,
  ReLU): conv1 3→32, conv2 32→64, maxpool, conv3 64→128, conv4 128→128, conv5 128→256, maxpool,
  conv6 256→512, maxpool; channels scaled by `width` (at least 8). Attention by default after conv3 and
  conv6. No striding before the first maxpool, so it costs ~10× the FLOPs of resnet18 at full width.
- `resnet18` (torchvision): stage i is `layer{i}` (output strides 4, 8, 16, 32); attention by default after
  layer3 and layer4. Fixed widths (`width` must be 1).
- `mobilenet_v3_small` (torchvision): `features` cut where the output stride changes, so stage i has the same
  stride as resnet18's: features[0:2] (stride 4), [2:4] (8), [4:9] (16), [9:13] (32, ending with the
  576-channel 1×1 convolution). Attention by default after stages 3 and 4. `width` is torchvision's
  `width_mult`.

ImageNet weights (`pretrained="imagenet"`) are read only from torch hub's local cache
(`torch.hub.get_dir()/checkpoints/<file name of the weights URL>`); nothing is ever downloaded. They are loaded
strictly into the torchvision model before it is cut into stages and attention is inserted.

TSM (Lin et al., "TSM: Temporal Shift Module for Efficient Video Understanding", ICCV 2019,
arXiv:1811.08383): with `temporal_shift=True`, 1/8 of the channels move one frame back in time and 1/8 one
frame forward at the start of every residual branch (resnet18's BasicBlocks, mobilenet's residual inverted
blocks; "residual shift", the variant the paper found best) and before conv2..conv6 of seed-cnn ("in-place
shift", as it has no residual branch). No parameters and no FLOPs are added, but the backbone then needs
whole clips of exactly `num_frames` frames, in order, folded into the batch as (b t).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
import torchvision
from einops import rearrange
from torch import Tensor, nn

from behavior.attention import ATTENTIONS, build_attention

logger = logging.getLogger(__name__)

BACKBONES = ("seed-cnn", "resnet18", "mobilenet_v3_small")
NUM_STAGES = {"seed-cnn": 6, "resnet18": 4, "mobilenet_v3_small": 4}
DEFAULT_ATTENTION_STAGES = {"seed-cnn": (3, 6), "resnet18": (3, 4), "mobilenet_v3_small": (3, 4)}
PRETRAINED_CHOICES = "'none', 'imagenet' (torchvision backbones, from the local torch hub cache) or the path of a state dict"

# seed-cnn: output channels of conv1..conv6 at width 1, and the convs followed by a 2×2 maxpool.
_SEED_CHANNELS = (32, 64, 128, 128, 256, 512)
_SEED_POOL_AFTER = (2, 5, 6)
# mobilenet_v3_small: `features` indices where each stride stage ends (strides 4, 8, 16, 32).
_MOBILENET_STAGE_ENDS = (2, 4, 9, 13)


class TemporalShift(nn.Module):
    """TSM shift over (b t)-folded frames: float (B·T, C, H, W) -> same shape, no parameters.

    Channels [0, C/8) of frame t take frame t+1's values, channels [C/8, C/4) take frame t-1's, the rest stay;
    frames shifted in from outside the clip are zeros (as in the reference implementation)."""

    def __init__(self, num_frames: int, fold_div: int = 8):
        super().__init__()
        self.num_frames = num_frames
        self.fold_div = fold_div

    def forward(self, x: Tensor) -> Tensor:
        x = rearrange(x, "(b t) c h w -> b t c h w", t=self.num_frames)  # (B, T, C, H, W)
        fold = x.shape[2] // self.fold_div
        from_next = F.pad(x[:, 1:, :fold], (0, 0, 0, 0, 0, 0, 0, 1))  # (B, T, fold, H, W), zeros at t = T-1
        from_prev = F.pad(x[:, :-1, fold : 2 * fold], (0, 0, 0, 0, 0, 0, 1, 0))  # (B, T, fold, H, W), zeros at t = 0
        out = torch.cat([from_next, from_prev, x[:, :, 2 * fold :]], dim=2)  # (B, T, C, H, W)
        return rearrange(out, "b t c h w -> (b t) c h w")

    def extra_repr(self) -> str:
        return f"num_frames={self.num_frames}, fold_div={self.fold_div}"


class Backbone(nn.Module):
    """stem → stages, attention after the chosen ones → neck; see the module docstring."""

    def __init__(
        self,
        stem: nn.Module,
        stages: Sequence[nn.Module],
        stage_channels: Sequence[int],
        neck: nn.Module,
        num_features: int,
        attention: str = "spatial",
        attention_kernel: int = 7,
        attention_stages: Sequence[int] = (),
    ):
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.attention = nn.ModuleDict()
        for stage in attention_stages:
            layer = build_attention(attention, stage_channels[stage - 1], attention_kernel)
            if layer is not None:
                self.attention[f"stage{stage}"] = layer
        self.neck = neck
        self.num_features = num_features

    def forward_features(
        self, x: Tensor, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """Feature map float (N, D, h, w) of frames (N, C, H, W); with `return_attention` also
        {"stage{i}": float (N, h_i, w_i) in [0, 1]} for every attention layer, in stage order."""
        maps: dict[str, Tensor] = {}
        x = self.stem(x)
        for index, stage in enumerate(self.stages, start=1):
            x = stage(x)  # (N, C_i, h_i, w_i)
            key = f"stage{index}"
            if key in self.attention:
                if return_attention:
                    x, attn = self.attention[key](x, return_map=True)  # attn: (N, 1, h_i, w_i)
                    maps[key] = attn[:, 0]  # (N, h_i, w_i)
                else:
                    x = self.attention[key](x)
        x = self.neck(x)  # (N, D, h, w)
        return (x, maps) if return_attention else x

    def forward(self, x: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """Pooled features float (N, D) of frames (N, C, H, W); with `return_attention` also the maps of
        `forward_features`."""
        if return_attention:
            features, maps = self.forward_features(x, return_attention=True)
            return features.mean(dim=(2, 3)), maps  # (N, D)
        return self.forward_features(x).mean(dim=(2, 3))  # (N, D)


def build_backbone(
    name: str,
    *,
    width: float = 1.0,
    attention: str = "spatial",
    attention_kernel: int = 7,
    attention_stages: Sequence[int] | None = None,
    pretrained: str = "none",
    temporal_shift: bool = False,
    num_frames: int = 8,
) -> Backbone:
    """Build backbone `name` (one of BACKBONES). `attention_stages=None` takes the backbone's default
    (DEFAULT_ATTENTION_STAGES); `num_frames` is T, used only by the temporal shift."""
    if name not in BACKBONES:
        raise ValueError(f"backbone={name!r} is unknown; valid: {', '.join(BACKBONES)}")
    if attention not in ATTENTIONS:
        raise ValueError(f"attention={attention!r} is unknown; valid: {', '.join(ATTENTIONS)}")
    stages = DEFAULT_ATTENTION_STAGES[name] if attention_stages is None else tuple(attention_stages)
    bad = [s for s in stages if not 1 <= s <= NUM_STAGES[name]]
    if bad:
        raise ValueError(
            f"attention_stages={list(stages)} has {bad} out of range; {name} has stages 1..{NUM_STAGES[name]}"
        )
    shift_frames = num_frames if temporal_shift else None
    common = dict(attention=attention, attention_kernel=attention_kernel, attention_stages=stages)
    if name == "seed-cnn":
        return _build_seed_cnn(width, pretrained, shift_frames, common)
    if name == "resnet18":
        return _build_resnet18(width, pretrained, shift_frames, common)
    return _build_mobilenet_v3_small(width, pretrained, shift_frames, common)


def _scaled(channels: int, width: float) -> int:
    return max(8, round(channels * width))


def _conv_block(in_channels: int, out_channels: int, shift_frames: int | None) -> nn.Sequential:
    layers: list[tuple[str, nn.Module]] = []
    if shift_frames is not None:
        layers.append(("shift", TemporalShift(shift_frames)))
    layers += [
        ("conv", nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)),
        ("bn", nn.BatchNorm2d(out_channels)),
        ("relu", nn.ReLU(inplace=True)),
    ]
    return nn.Sequential(OrderedDict(layers))


def _build_seed_cnn(width: float, pretrained: str, shift_frames: int | None, common: dict) -> Backbone:
    if pretrained == "imagenet":
        raise ValueError(
            "pretrained='imagenet': seed-cnn has no ImageNet weights; valid for seed-cnn: 'none' or the path of "
            "a seed-cnn backbone state dict"
        )
    channels = [_scaled(c, width) for c in _SEED_CHANNELS]
    stages: list[nn.Module] = []
    in_channels = 3
    for index, out_channels in enumerate(channels, start=1):
        # conv1 sees RGB pixels: shifting colour channels between frames carries no motion, so it never shifts.
        block = _conv_block(in_channels, out_channels, shift_frames if index > 1 else None)
        if index - 1 in _SEED_POOL_AFTER:  # the pool that followed the previous conv opens this stage
            block = nn.Sequential(OrderedDict([("pool", nn.MaxPool2d(2)), ("block", block)]))
        stages.append(block)
        in_channels = out_channels
    for module in nn.ModuleList(stages).modules():
        if isinstance(module, nn.Conv2d):  # He init, as torchvision's ResNet: keeps activations O(1) through depth
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    backbone = Backbone(nn.Identity(), stages, channels, nn.MaxPool2d(2), channels[-1], **common)
    if pretrained != "none":
        _load_state_dict_file(backbone, _pretrained_path(pretrained), "seed-cnn")
    return backbone


def _build_resnet18(width: float, pretrained: str, shift_frames: int | None, common: dict) -> Backbone:
    if width != 1.0:
        raise ValueError(f"width={width}: resnet18 has fixed widths, use width=1.0 (or seed-cnn/mobilenet_v3_small)")
    model = torchvision.models.resnet18(weights=None)
    _load_torchvision_weights(model, "resnet18", pretrained, torchvision.models.ResNet18_Weights.IMAGENET1K_V1)
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    if shift_frames is not None:
        for layer in stages:
            for block in layer:
                block.conv1 = nn.Sequential(
                    OrderedDict([("shift", TemporalShift(shift_frames)), ("conv", block.conv1)])
                )
    stem = nn.Sequential(OrderedDict(conv1=model.conv1, bn1=model.bn1, relu=model.relu, maxpool=model.maxpool))
    channels = [layer[-1].bn2.num_features for layer in stages]
    return Backbone(stem, stages, channels, nn.Identity(), model.fc.in_features, **common)


def _build_mobilenet_v3_small(width: float, pretrained: str, shift_frames: int | None, common: dict) -> Backbone:
    if width != 1.0 and pretrained == "imagenet":
        raise ValueError(f"width={width}: the ImageNet weights of mobilenet_v3_small exist for width=1.0 only")
    model = torchvision.models.mobilenet_v3_small(weights=None, width_mult=width)
    _load_torchvision_weights(model, "mobilenet_v3_small", pretrained,
                              torchvision.models.MobileNet_V3_Small_Weights.IMAGENET1K_V1)
    features = model.features
    if shift_frames is not None:
        for block in features:
            if getattr(block, "use_res_connect", False):
                block.block[0] = nn.Sequential(
                    OrderedDict([("shift", TemporalShift(shift_frames)), ("conv", block.block[0])])
                )
    starts = (0, *_MOBILENET_STAGE_ENDS[:-1])
    stages = [features[start:end] for start, end in zip(starts, _MOBILENET_STAGE_ENDS)]
    channels = [stage[-1].out_channels for stage in stages]
    return Backbone(nn.Identity(), stages, channels, nn.Identity(), channels[-1], **common)


def imagenet_cache_path(weights: torchvision.models.WeightsEnum) -> Path:
    """Where torch hub keeps the file of `weights` once downloaded: <hub dir>/checkpoints/<file name of the URL>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def _pretrained_path(pretrained: str) -> Path:
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"pretrained={pretrained!r}: no such file; valid: {PRETRAINED_CHOICES}")
    return path


def _load_torchvision_weights(
    model: nn.Module, name: str, pretrained: str, weights: torchvision.models.WeightsEnum
) -> None:
    """Load "imagenet" (from the local cache only) or a state-dict file into the whole torchvision model."""
    if pretrained == "none":
        return
    if pretrained == "imagenet":
        path = imagenet_cache_path(weights)
        if not path.is_file():
            logger.warning(
                "ImageNet weights for %s were not found at %s; the model starts from random initialisation", name, path
            )
            return
    else:
        path = _pretrained_path(pretrained)
    _load_state_dict_file(model, path, name)


def _load_state_dict_file(model: nn.Module, path: Path, name: str) -> None:
    """Strictly load the state dict saved at `path` into `model`; ValueError naming the file when it does not fit."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unpickling or format failure: the file is not a plain state dict
        raise ValueError(f"{path}: cannot be read as a state dict with torch.load(weights_only=True): {err}") from err
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: holds a {type(state).__name__}, not a state dict of tensors for {name}")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or mismatched:
        problems = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
            if keys:
                problems.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})")
        raise ValueError(f"{path}: not a {name} state dict: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)

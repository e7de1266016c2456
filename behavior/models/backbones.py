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

Each backbone is one entry of `behavior.models.registry.BACKBONES`, whose builder is one of the `build_*`
functions here. Pretrained weights come from `behavior.models.pretrained`. With `temporal_shift=True` a
`TemporalShift` (TSM, two-way or online as `shift` says) opens every residual branch (resnet18's BasicBlocks,
mobilenet's residual inverted blocks) and precedes conv2..conv6 of seed-cnn (which has no residual branch).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial

from torch import Tensor, nn

from behavior.config import ModelConfig
from behavior.models.attention import build_attention
from behavior.models.pretrained import load_state_dict_file, load_torchvision_weights, pretrained_path
from behavior.models.registry import BACKBONES
from behavior.models.temporal_shift import TemporalShift

Shift = Callable[[], nn.Module] | None  # what a builder calls to make each temporal shift; None: no shifts

# seed-cnn: output channels of conv1..conv6 at width 1, and the convs followed by a 2×2 maxpool.
_SEED_CHANNELS = (32, 64, 128, 128, 256, 512)
_SEED_POOL_AFTER = (2, 5, 6)
# mobilenet_v3_small: `features` indices where each stride stage ends (strides 4, 8, 16, 32).
_MOBILENET_STAGE_ENDS = (2, 4, 9, 13)


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

    def part_names(self) -> list[str]:
        """The backbone's own parts in order: stem, stages.0 .. stages.{S-1}, neck (attention layers are added
        to it, not part of it: they never hold pretrained weights)."""
        return ["stem", *(f"stages.{i}" for i in range(len(self.stages))), "neck"]

    def steps(self) -> list[tuple[str, nn.Module]]:
        """The backbone in the order it runs: (name, module) for the stem, each stage and the attention layer
        after it (when there is one), then the neck."""
        order = [("stem", self.stem)]
        for index, stage in enumerate(self.stages, start=1):
            order.append((f"stages.{index - 1}", stage))
            if f"stage{index}" in self.attention:
                order.append((f"attention.stage{index}", self.attention[f"stage{index}"]))
        return [*order, ("neck", self.neck)]

    def forward_prefix(self, x: Tensor, stop: int) -> Tensor:
        """The output of the first `stop` steps for frames (N, C, H, W): the frozen part a feature cache keeps."""
        for _, step in self.steps()[:stop]:
            x = step(x)
        return x

    def forward_features(
        self, x: Tensor, return_attention: bool = False, start: int = 0
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """Feature map float (N, D, h, w) of frames (N, C, H, W), or of the output of the first `start` steps
        (`forward_prefix`); with `return_attention` also {"stage{i}": float (N, h_i, w_i) in [0, 1]} for every
        attention layer run, in stage order."""
        maps: dict[str, Tensor] = {}
        for name, step in self.steps()[start:]:
            if name.startswith("attention.") and return_attention:
                x, attn = step(x, return_map=True)  # (N, C_i, h_i, w_i), (N, 1, h_i, w_i)
                maps[name.removeprefix("attention.")] = attn[:, 0]  # (N, h_i, w_i)
            else:
                x = step(x)  # (N, C_i, h_i, w_i)
        return (x, maps) if return_attention else x

    def forward(
        self, x: Tensor, return_attention: bool = False, start: int = 0
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """Pooled features float (N, D) of frames (N, C, H, W) (or of `forward_prefix`'s output after `start`
        steps); with `return_attention` also the maps of `forward_features`."""
        if start == len(self.steps()):
            return (x, {}) if return_attention else x  # the whole backbone ran before: x is pooled already
        if return_attention:
            features, maps = self.forward_features(x, return_attention=True, start=start)
            return features.mean(dim=(2, 3)), maps  # (N, D)
        return self.forward_features(x, start=start).mean(dim=(2, 3))  # (N, D)


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
    shift: str = "two_way",
) -> Backbone:
    """Build backbone `name` (a key of BACKBONES), checked as `model.*` config fields are (ConfigError naming the
    field). `attention_stages=None` takes the backbone's default; `num_frames` is T and `shift` the kind of
    temporal shift, used only with `temporal_shift`."""
    settings = ModelConfig(
        backbone=name,
        width=width,
        attention=attention,
        attention_kernel=attention_kernel,
        attention_stages=attention_stages,
        pretrained=pretrained,
        temporal_shift=temporal_shift,
        shift=shift,
    )
    return backbone_for(settings, num_frames)


def backbone_for(cfg: ModelConfig, num_frames: int) -> Backbone:
    """The backbone that a (validated) model config describes, for clips of T = `num_frames`."""
    part = BACKBONES[cfg.backbone]
    stages = part.attention_stages if cfg.attention_stages is None else cfg.attention_stages
    # each builder calls `shift()` where a shift goes: a new TemporalShift for clips of T frames
    shift = partial(TemporalShift, num_frames, online=cfg.shift == "online") if cfg.temporal_shift else None
    common = dict(attention=cfg.attention, attention_kernel=cfg.attention_kernel, attention_stages=stages)
    return part.builder()(cfg.width, cfg.pretrained, shift, common)


def _scaled(channels: int, width: float) -> int:
    return max(8, round(channels * width))


def _conv_block(in_channels: int, out_channels: int, shift: Shift) -> nn.Sequential:
    layers: list[tuple[str, nn.Module]] = []
    if shift is not None:
        layers.append(("shift", shift()))
    layers += [
        ("conv", nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)),
        ("bn", nn.BatchNorm2d(out_channels)),
        ("relu", nn.ReLU(inplace=True)),
    ]
    return nn.Sequential(OrderedDict(layers))


def build_seed_cnn(width: float, pretrained: str, shift: Shift, common: dict) -> Backbone:
    channels = [_scaled(c, width) for c in _SEED_CHANNELS]
    stages: list[nn.Module] = []
    in_channels = 3
    for index, out_channels in enumerate(channels, start=1):
        # conv1 sees RGB pixels: shifting colour channels between frames carries no motion, so it never shifts.
        block = _conv_block(in_channels, out_channels, shift if index > 1 else None)
        if index - 1 in _SEED_POOL_AFTER:  # the pool that followed the previous conv opens this stage
            block = nn.Sequential(OrderedDict([("pool", nn.MaxPool2d(2)), ("block", block)]))
        stages.append(block)
        in_channels = out_channels
    for module in nn.ModuleList(stages).modules():
        if isinstance(
            module, nn.Conv2d
        ):  # He init, as torchvision's ResNet: keeps activations O(1) through depth
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    backbone = Backbone(nn.Identity(), stages, channels, nn.MaxPool2d(2), channels[-1], **common)
    if pretrained != "none":
        load_state_dict_file(backbone, pretrained_path(pretrained), "seed-cnn")
    return backbone


def build_resnet18(width: float, pretrained: str, shift: Shift, common: dict) -> Backbone:
    import torchvision  # here, not at the top: a seed-cnn or efficientnet model never waits for it

    model = torchvision.models.resnet18(weights=None)
    load_torchvision_weights(model, "resnet18", pretrained, torchvision.models.ResNet18_Weights.IMAGENET1K_V1)
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    if shift is not None:
        for layer in stages:
            for block in layer:
                block.conv1 = nn.Sequential(OrderedDict([("shift", shift()), ("conv", block.conv1)]))
    stem = nn.Sequential(
        OrderedDict(conv1=model.conv1, bn1=model.bn1, relu=model.relu, maxpool=model.maxpool)
    )
    channels = [layer[-1].bn2.num_features for layer in stages]
    return Backbone(stem, stages, channels, nn.Identity(), model.fc.in_features, **common)


def build_mobilenet_v3_small(width: float, pretrained: str, shift: Shift, common: dict) -> Backbone:
    import torchvision  # here, not at the top: a seed-cnn or efficientnet model never waits for it

    model = torchvision.models.mobilenet_v3_small(weights=None, width_mult=width)
    load_torchvision_weights(
        model, "mobilenet_v3_small", pretrained, torchvision.models.MobileNet_V3_Small_Weights.IMAGENET1K_V1
    )
    features = model.features
    if shift is not None:
        for block in features:
            if getattr(block, "use_res_connect", False):
                block.block[0] = nn.Sequential(OrderedDict([("shift", shift()), ("conv", block.block[0])]))
    starts = (0, *_MOBILENET_STAGE_ENDS[:-1])
    stages = [features[start:end] for start, end in zip(starts, _MOBILENET_STAGE_ENDS)]
    channels = [stage[-1].out_channels for stage in stages]
    return Backbone(nn.Identity(), stages, channels, nn.Identity(), channels[-1], **common)

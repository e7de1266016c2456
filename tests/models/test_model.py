"""The clip classifier: every backbone × head, gradients, attention read-back, streaming equivalence,
order awareness, T = 1, config errors and pretrained weights. Tiny widths and 32-48 px frames keep it fast."""

import io
import time
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torchvision

from behavior.config import ModelConfig
from behavior.models.backbones import build_backbone
from behavior.models.classifier import AttentionMaps, build_model
from behavior.models.heads import build_head
from behavior.models.pretrained import imagenet_cache_path
from behavior.models.registry import BACKBONES, HEADS
from behavior.models.temporal_shift import TemporalShift
from behavior.tools.profile import count_flops, format_model_table

CLASSES = ["walk", "run", "wave", "sit_down", "stand_up"]
WIDTH = {
    "seed-cnn": 0.25,
    "resnet18": 1.0,
    "mobilenet_v3_small": 0.5,
    "efficientnet_lite0": 1.0,
}  # smallest each takes
SIZE = 32


def tiny(backbone: str = "seed-cnn", **overrides) -> ModelConfig:
    return ModelConfig(backbone=backbone, width=WIDTH[backbone], **overrides)


def clip(b: int = 2, t: int = 3, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, t, 3, size, size, generator=torch.Generator().manual_seed(seed))  # (B, T, C, H, W)


def assert_same_scores(before: tuple, after: tuple) -> None:
    """Two `forward_scores(..., return_attention=True)` results (logits, features, maps) equal to float rounding:
    a model before and after an inference-only rewrite."""
    (logits, features, maps), (new_logits, new_features, new_maps) = before, after
    assert torch.allclose(new_logits, logits, atol=1e-4, rtol=1e-4)
    assert torch.allclose(new_features, features, atol=1e-4, rtol=1e-4)
    if maps is not None:
        assert torch.allclose(new_maps, maps, atol=1e-5)


def assert_streams_its_clip_forward(model: torch.nn.Module, t: int = 3) -> None:
    """An online-shift model: a clip (1, t, ...) streamed frame by frame through `forward_step`, each frame with
    the slices the one before kept, gives the clip forward's features (to 1e-5)."""
    x = clip(b=1, t=t)
    with torch.inference_mode():
        whole = model.forward_features(x).reshape(t, -1)  # (t, D)
        shifted, streamed = None, []
        for i in range(t):
            step = model.forward_step(x[:, i], shifted)
            shifted = step.shifted
            streamed.append(step.features[0])  # (D,)
    assert torch.allclose(torch.stack(streamed), whole, atol=1e-5)


def calibrated(model: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """The model in eval mode with every batch norm's running statistics set from one batch: a freshly
    initialised network in eval mode shrinks its activations towards zero, which would hide differences."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: after one batch, the running statistics are that batch's
    model.train()
    with torch.no_grad():
        model(x)
    for bn in norms:
        bn.momentum = 0.1
    return model.eval()


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_backbone_and_head_gives_logits_and_gradients(backbone, head):
    torch.manual_seed(0)
    model = build_model(tiny(backbone, head=head), CLASSES, num_frames=3).train()
    x = clip()
    logits = model(x)
    assert logits.shape == (2, len(CLASSES))
    assert torch.isfinite(logits).all()
    logits.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without a gradient: {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(x)).all()


@pytest.mark.parametrize("backbone", BACKBONES)
def test_features_shapes_and_class_names(backbone):
    model = build_model(tiny(backbone), CLASSES, num_frames=3).eval()
    with torch.no_grad():
        features = model.forward_features(clip())
        frame_map = model.backbone.forward_features(clip()[:, 0])
    assert features.shape == (2, 3, model.backbone.num_features)
    assert frame_map.ndim == 4 and frame_map.shape[:2] == (2, model.backbone.num_features)
    assert model.class_names == CLASSES and model.num_classes == 5


@pytest.mark.parametrize("attention", ["spatial", "cbam"])
@pytest.mark.parametrize("backbone", BACKBONES)
def test_attention_maps_read_back(backbone, attention):
    model = build_model(tiny(backbone, attention=attention, head="attention"), CLASSES, num_frames=3)
    x = clip(size=48)
    calibrated(model, x)
    with torch.no_grad():
        logits, maps = model(x, return_attention=True)
        plain = model(x)
    assert isinstance(maps, AttentionMaps)
    torch.testing.assert_close(logits, plain)
    assert list(maps.layers) == [f"stage{i}" for i in BACKBONES[backbone].attention_stages]
    for layer in maps.layers.values():
        assert layer.ndim == 4 and layer.shape[:2] == (2, 3)
        assert layer.min() >= 0 and layer.max() <= 1
    assert maps.spatial is maps.layers[f"stage{BACKBONES[backbone].attention_stages[-1]}"]
    assert maps.temporal.shape == (2, 3)
    torch.testing.assert_close(maps.temporal.sum(dim=1), torch.ones(2))


def test_attention_none_and_order_blind_heads_give_no_maps():
    model = build_model(tiny(attention="none", head="avg"), CLASSES, num_frames=3).eval()
    with torch.no_grad():
        logits, maps = model(clip(), return_attention=True)
        _, frame_map = model.forward_frames(clip()[:, 0], return_attention=True)
    assert logits.shape == (2, 5)
    assert maps.spatial is None and maps.layers == {} and maps.temporal is None
    assert frame_map is None
    assert not any("attention" in name for name, _ in model.named_parameters())


def test_attention_stages_choose_where_maps_come_from():
    model = build_model(tiny("resnet18", attention_stages=[2]), CLASSES, num_frames=2).eval()
    with torch.no_grad():
        _, maps = model(clip(t=2, size=64), return_attention=True)
    assert list(maps.layers) == ["stage2"]
    assert maps.spatial.shape == (2, 2, 8, 8)  # layer2 has output stride 8


@pytest.mark.parametrize("backbone", BACKBONES)
def test_streaming_frames_then_head_equals_forward(backbone):
    """Live inference: each frame once through forward_frames, the buffer of features through forward_head."""
    model = build_model(tiny(backbone), CLASSES, num_frames=3)
    x = clip()
    calibrated(model, clip(seed=1))
    with torch.no_grad():
        buffer = torch.stack([model.forward_frames(x[:, t]) for t in range(3)], dim=1)  # (B, T, D)
        streamed = model.forward_head(buffer)
        whole, maps = model(x, return_attention=True)
        _, last_map = model.forward_frames(x[:, 2], return_attention=True)
    torch.testing.assert_close(streamed, whole, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(last_map, maps.spatial[:, 2], rtol=1e-4, atol=1e-6)


def test_tconv_head_sees_order_and_avg_does_not():
    torch.manual_seed(0)
    features = torch.randn(2, 6, 32)  # (B, T, D)
    reversed_features = features.flip(1)
    tconv = build_head("tconv", 32, 5).eval()
    avg = build_head("avg", 32, 5).eval()
    with torch.no_grad():
        assert not torch.allclose(tconv(features), tconv(reversed_features), atol=1e-4)
        torch.testing.assert_close(avg(features), avg(reversed_features))

    model = build_model(tiny(head="tconv"), CLASSES, num_frames=4)
    x = clip(t=4)
    calibrated(model, clip(t=4, seed=1))
    with torch.no_grad():
        assert not torch.allclose(model(x), model(x.flip(1)), atol=1e-3)


def test_single_frame_is_an_image_classifier():
    for head in HEADS:
        model = build_model(tiny(head=head), CLASSES, num_frames=1).train()
        logits = model(clip(b=2, t=1))
        assert logits.shape == (2, 5)
        logits.sum().backward()
        image = clip(b=2, t=1, seed=1)
        calibrated(model, image)
        with torch.no_grad():
            torch.testing.assert_close(
                model(image), model.forward_head(model.forward_frames(image[:, 0])[:, None])
            )


@pytest.mark.parametrize("backbone", BACKBONES)
def test_temporal_shift(backbone):
    model = build_model(tiny(backbone, temporal_shift=True), CLASSES, num_frames=3).train()
    model(clip()).sum().backward()
    assert any(isinstance(m, TemporalShift) for m in model.modules())
    with pytest.raises(ValueError, match="T=3"):
        model(clip(t=4))
    with pytest.raises(ValueError, match="temporal_shift"):
        model.forward_frames(clip()[:, 0])


def test_temporal_shift_moves_one_eighth_each_way():
    x = torch.arange(2 * 3 * 16, dtype=torch.float32).reshape(2 * 3, 16, 1, 1)  # (B·T, C, 1, 1), B=2, T=3
    out = TemporalShift(num_frames=3)(x).reshape(2, 3, 16)
    frames = x.reshape(2, 3, 16)
    torch.testing.assert_close(out[:, :2, :2], frames[:, 1:, :2])  # channels 0-1 come from frame t+1
    assert (out[:, 2, :2] == 0).all()
    torch.testing.assert_close(out[:, 1:, 2:4], frames[:, :2, 2:4])  # channels 2-3 come from frame t-1
    assert (out[:, 0, 2:4] == 0).all()
    torch.testing.assert_close(out[:, :, 4:], frames[:, :, 4:])


def test_online_shift_takes_one_eighth_from_the_previous_frame_only():
    x = torch.arange(2 * 3 * 16, dtype=torch.float32).reshape(2 * 3, 16, 1, 1)  # (B·T, C, 1, 1), B=2, T=3
    out = TemporalShift(num_frames=3, online=True)(x).reshape(2, 3, 16)
    frames = x.reshape(2, 3, 16)
    torch.testing.assert_close(out[:, 1:, :2], frames[:, :2, :2])  # channels 0-1 come from frame t-1
    assert (out[:, 0, :2] == 0).all()
    torch.testing.assert_close(out[:, :, 2:], frames[:, :, 2:])  # nothing from frame t+1


@pytest.mark.parametrize("online", [False, True])
def test_the_shift_keeps_the_layout_of_its_input(online):
    """Channels-last frames (the torch engine's) come out channels-last with the same values, so that the
    convolution after the shift does not mix layouts; contiguous frames (training on a CPU) stay contiguous."""
    shift = TemporalShift(num_frames=3, online=online)
    x = torch.randn(2 * 3, 16, 4, 5)  # (B·T, C, H, W)
    plain = shift(x)
    channels_last = shift(x.contiguous(memory_format=torch.channels_last))
    assert plain.is_contiguous()
    assert channels_last.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(channels_last, plain)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_online_shift_streams_frame_by_frame_exactly_as_the_clip_forward(backbone):
    """The online shift looks at past frames only: each frame once through forward_step, with the slices the
    frame before kept, gives the clip forward's features; a later frame changes nothing before it."""
    T = 4
    model = build_model(tiny(backbone, temporal_shift=True, shift="online"), CLASSES, num_frames=T)
    x = clip(t=T, size=64)  # at 32 px mobilenet's eval-mode features do not move at all
    calibrated(model, clip(t=T, size=64, seed=1))
    assert model.mixes_frames and model.streams_frames and len(model.shifts) >= 5
    with torch.no_grad():
        whole = model.forward_features(x)  # (B, T, D)
        shifted, steps = None, []
        for t in range(T):
            step = model.forward_step(x[:, t], shifted, return_attention=True)
            shifted = step.shifted
            steps.append(step)
        changed = x.clone()
        changed[:, 2] += 1.0
        moved = (model.forward_features(changed) - whole).abs().amax(dim=(0, 2))  # (T,)
        _, maps = model(x, return_attention=True)
    torch.testing.assert_close(torch.stack([s.features for s in steps], dim=1), whole, rtol=0, atol=1e-5)
    torch.testing.assert_close(steps[-1].attention, maps.spatial[:, -1], rtol=0, atol=1e-5)
    assert (moved[:2] < 1e-6).all() and (moved[2:] > 1e-4).all()


def test_two_way_shift_cannot_stream_and_a_frozen_stage_keeps_no_online_shift():
    two_way = build_model(tiny(temporal_shift=True), CLASSES, num_frames=3)
    assert not two_way.streams_frames
    with pytest.raises(ValueError, match="model.shift=online"):
        two_way.forward_step(clip()[:, 0])
    online = build_model(
        ModelConfig(backbone="efficientnet_lite0", temporal_shift=True, shift="online", freeze="stage4"),
        CLASSES,
        num_frames=3,
    ).eval()
    assert len(online.shifts) == 5  # stages 5 and 6 train: 2 + 3 residual blocks
    x = clip(size=64)
    with torch.no_grad():
        first = online.forward_step(x[:, 0])
        second = online.forward_step(x[:, 1], first.shifted)
        torch.testing.assert_close(second.features, online.forward_features(x)[:, 1], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="expected 5 shifted slices"):
        online.forward_step(x[:, 1], first.shifted[:2])


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("backbone", "vgg16", "seed-cnn, resnet18, mobilenet_v3_small"),
        ("head", "lstm", "avg, max, attention, tconv"),
        ("attention", "se", "spatial, cbam, none"),
    ],
)
def test_unknown_names_list_the_valid_ones(field, value, valid):
    with pytest.raises(ValueError, match=f"model.{field}='{value}' is unknown; valid: {valid}"):
        ModelConfig(**{field: value})
    with pytest.raises(ValueError, match=valid):
        if field == "backbone":
            build_backbone(value)
        elif field == "head":
            build_head(value, 8, 2)
        else:
            build_backbone("seed-cnn", attention=value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"width": 0}, "model.width"),
        ({"backbone": "resnet18", "width": 0.5}, "resnet18 has fixed widths"),
        ({"attention_kernel": 4}, "odd"),
        ({"attention_stages": [7]}, r"stage numbers 1\.\.6"),
        ({"backbone": "resnet18", "attention_stages": [5]}, r"stage numbers 1\.\.4"),
        ({"attention_stages": [3, 3]}, "twice"),
        ({"dropout": 1.0}, "model.dropout"),
        ({"temporal_shift": "yes"}, "model.temporal_shift"),
        ({"shift": "sideways"}, "model.shift='sideways' is unknown; valid: two_way, online"),
    ],
)
def test_bad_settings_name_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**overrides)


def test_yaml_lists_become_tuples_and_class_names_are_checked():
    assert ModelConfig(attention_stages=[1, 6]).attention_stages == (1, 6)
    with pytest.raises(ValueError, match="class_names is empty"):
        build_model(tiny(), [], num_frames=2)
    with pytest.raises(ValueError, match="num_frames"):
        build_model(tiny(), CLASSES, num_frames=0)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """torch hub pointed at an empty folder, so no real cache is read and nothing could be written to it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = torch.hub.get_dir()
    assert hub.startswith(str(tmp_path)), (
        "torch.hub.set_dir was called earlier; the test would see a real cache"
    )
    return hub


@pytest.fixture
def no_network(monkeypatch):
    """torch hub's downloads fail at once, as on a machine without network: tests never touch the network."""

    def refuse(*args, **kwargs):
        raise URLError("[Errno -2] Name or service not known (no network in this test)")

    monkeypatch.setattr(torch.hub, "urlopen", refuse)


def test_imagenet_missing_from_cache_warns_once_and_builds(empty_hub, no_network, caplog):
    started = time.perf_counter()
    with caplog.at_level("WARNING"):
        model = build_model(ModelConfig(backbone="resnet18", pretrained="imagenet"), CLASSES, num_frames=2)
    assert time.perf_counter() - started < 10  # within seconds
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "\n" not in messages[0]
    expected = imagenet_cache_path(torchvision.models.ResNet18_Weights.IMAGENET1K_V1)
    assert "ImageNet weights for resnet18 were not found" in messages[0]
    assert str(expected) in messages[0] and "random initialisation" in messages[0]
    assert (
        f"put {expected.name} in {expected.parent}" in messages[0]
        and "could not be downloaded" in messages[0]
    )
    assert model.eval()(clip(t=2)).shape == (2, 5)


def test_imagenet_is_downloaded_through_torch_hub_with_its_hash_checked(empty_hub, monkeypatch, caplog):
    weights = torchvision.models.MobileNet_V3_Small_Weights.IMAGENET1K_V1
    reference = torchvision.models.mobilenet_v3_small(weights=None)
    calls = []

    def download(url, destination, hash_prefix=None, progress=True):  # what the network would deliver
        calls.append((url, hash_prefix))
        torch.save(reference.state_dict(), destination)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    model = build_model(
        ModelConfig(backbone="mobilenet_v3_small", pretrained="imagenet"), CLASSES, num_frames=2
    )
    assert calls == [(weights.url, imagenet_cache_path(weights).name.split("-")[-1].split(".")[0])]
    torch.testing.assert_close(model.backbone.stages[0][0][0].weight, reference.features[0][0].weight)

    class Corrupt(io.BytesIO):  # a download whose bytes do not match the SHA-256 prefix in the file name
        headers = {"Content-Length": "4"}

        def info(self):
            return self

        def get_all(self, name):
            return [self.headers[name]] if name in self.headers else None

    monkeypatch.undo()
    monkeypatch.setenv("TORCH_HOME", str(Path(empty_hub).parent))
    monkeypatch.setattr(torch.hub, "urlopen", lambda *args, **kwargs: Corrupt(b"junk"))
    with caplog.at_level("WARNING"):
        build_model(ModelConfig(backbone="resnet18", pretrained="imagenet"), CLASSES, num_frames=2)
    assert "invalid hash value" in caplog.records[-1].getMessage()
    left = sorted(p.name for p in Path(empty_hub).rglob("*") if p.is_file())
    assert left == [imagenet_cache_path(weights).name]  # the good download stays; nothing damaged is left


def test_imagenet_read_from_the_local_cache(empty_hub):
    reference = torchvision.models.mobilenet_v3_small(weights=None)
    path = imagenet_cache_path(torchvision.models.MobileNet_V3_Small_Weights.IMAGENET1K_V1)
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    model = build_model(
        ModelConfig(backbone="mobilenet_v3_small", pretrained="imagenet"), CLASSES, num_frames=2
    )
    torch.testing.assert_close(model.backbone.stages[0][0][0].weight, reference.features[0][0].weight)
    torch.testing.assert_close(model.backbone.stages[3][-1][0].weight, reference.features[12][0].weight)


def test_pretrained_state_dict_path_loads(tmp_path):
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    cfg = ModelConfig(backbone="resnet18", pretrained=str(path), temporal_shift=True)
    model = build_model(cfg, CLASSES, num_frames=2)
    torch.testing.assert_close(model.backbone.stem.conv1.weight, reference.conv1.weight)
    torch.testing.assert_close(model.backbone.stages[3][1].conv2.weight, reference.layer4[1].conv2.weight)
    torch.testing.assert_close(
        model.backbone.stages[2][0].conv1.conv.weight, reference.layer3[0].conv1.weight
    )


def test_seed_cnn_state_dict_path_round_trips(tmp_path):
    source = build_model(tiny(), CLASSES, num_frames=2)
    path = tmp_path / "seed.pth"
    torch.save(source.backbone.state_dict(), path)
    model = build_model(tiny(pretrained=str(path)), CLASSES, num_frames=2)
    for name, tensor in source.backbone.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[name], tensor)


def test_wrong_pretrained_files_name_the_file(tmp_path):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        build_model(ModelConfig(backbone="resnet18", pretrained=str(missing)), CLASSES, num_frames=2)

    other = tmp_path / "mobilenet.pth"
    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), other)
    with pytest.raises(ValueError, match=r"mobilenet\.pth: not a resnet18 state dict: \d+ missing"):
        build_model(ModelConfig(backbone="resnet18", pretrained=str(other)), CLASSES, num_frames=2)

    garbage = tmp_path / "notes.pth"
    garbage.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"notes\.pth: cannot be read as a state dict"):
        build_model(ModelConfig(backbone="resnet18", pretrained=str(garbage)), CLASSES, num_frames=2)

    with pytest.raises(ValueError, match="seed-cnn has no ImageNet weights"):
        build_model(ModelConfig(pretrained="imagenet"), CLASSES, num_frames=2)


def test_flops_scale_with_width_frames_and_size():
    def gflops(width: float, frames: int, size: int) -> float:
        return count_flops(build_model(ModelConfig(width=width, head="avg"), CLASSES, frames), frames, size)

    base = gflops(0.25, 2, 32)
    assert base > 0
    assert gflops(0.25, 4, 32) == pytest.approx(2 * base, rel=1e-3)
    assert gflops(0.25, 2, 64) == pytest.approx(4 * base, rel=0.02)
    assert gflops(0.5, 2, 32) == pytest.approx(4 * base, rel=0.05)


def test_model_table_lists_every_backbone_and_head():
    table = format_model_table(num_frames=2, size=32)
    for name in (*BACKBONES, *HEADS):
        assert name in table
    assert "GFLOPs/clip" in table


def test_frozen_parts_keep_their_weights_and_batch_norm_statistics(tmp_path):
    from behavior.config import load_config
    from behavior.engine.train import build_optimizer

    path = tmp_path / "seed.pth"
    torch.save(build_backbone("seed-cnn", width=0.25).state_dict(), path)
    cfg = load_config(
        None,
        [
            "model.width=0.25",
            f"model.pretrained={path}",
            "model.freeze=stage2",
            "optim.pretrained_lr_scale=0.1",
            "optim.lr=0.01",
        ],
    )
    model = build_model(cfg.model, CLASSES, num_frames=3)
    assert model.frozen == ["backbone.stem", "backbone.stages.0", "backbone.stages.1"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = build_optimizer(model, cfg, model.pretrained_parameters())
    rates = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert rates[id(model.backbone.stages[2].block.conv.weight)] == pytest.approx(0.001)  # pretrained, trains
    assert rates[id(model.head.fc.weight)] == pytest.approx(0.01)  # new
    assert id(model.backbone.stages[0].conv.weight) not in rates  # frozen: not in the optimizer at all
    model.train()
    for _ in range(2):
        optimizer.zero_grad()
        model(clip(t=3)).square().mean().backward()
        optimizer.step()
    after = model.state_dict()
    for key in before:
        unchanged = torch.equal(before[key], after[key])
        if key.startswith(("backbone.stages.0.", "backbone.stages.1.")):
            assert unchanged, key  # weights and running statistics of the frozen stages
        elif key.endswith(("running_mean", "conv.weight", "fc.weight")):
            assert not unchanged, key  # everything after them learns (and its batch norms track the data)
    with pytest.raises(
        ValueError, match=r"model.freeze='stage9' is unknown; valid: none, backbone, or stage0..stage6"
    ):
        load_config(None, ["model.freeze=stage9"])


def test_frozen_stages_lose_their_temporal_shift_and_the_cache_reaches_the_first_stage_that_trains():
    model = build_model(
        ModelConfig(backbone="efficientnet_lite0", temporal_shift=True, freeze="stage3"),
        CLASSES,
        num_frames=4,
    )
    shifted = [any(isinstance(m, TemporalShift) for m in stage.modules()) for stage in model.backbone.stages]
    assert shifted == [False, False, False, True, True, True, False]  # stages 1 and 7 have no residual block
    assert model.cache_depth() == 4 and model.mixes_frames  # stem, stages 1-3
    still = build_model(
        ModelConfig(backbone="efficientnet_lite0", temporal_shift=True, freeze="backbone"),
        CLASSES,
        num_frames=4,
    )
    assert (
        not still.mixes_frames and still.cache_depth() == 6
    )  # stem, stages 1-5; the attention after 5 trains
    assert still.forward_frames(clip(t=4)[:, 0]).shape == (2, 1280)  # frames can run alone again

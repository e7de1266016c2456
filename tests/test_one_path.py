"""One path, true in the code: evaluation, batch prediction, window prediction (one window spanning the clip)
and live mode's clip path sample, decode, transform and score a video the same way, so they give the same
logits (to 1e-5)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import tiny_overrides

from behavior.config import load_config
from behavior.data.datasets import SafeClips, build_dataset
from behavior.data.loader import build_loader
from behavior.data.splits import VideoSample
from behavior.data.video import Video
from behavior.engine.checkpoint import load_trained_model
from behavior.engine.train import train
from behavior.tools.live import StreamClassifier, open_source
from behavior.tools.predict import clip_batches
from behavior.tools.windows import WindowChunk, WindowOptions, window_records


@pytest.fixture(scope="module")
def tsm_run(tiny_synth, tmp_path_factory):
    run = tmp_path_factory.mktemp("tsm")
    train(
        load_config(None, tiny_overrides(tiny_synth, **{"model.temporal_shift": True, "train.epochs": 1})),
        run,
    )
    return run


@pytest.mark.parametrize("which", ["incremental", "temporal-shift"])
def test_every_path_gives_the_same_logits(which, tiny_run, tsm_run, tiny_synth):
    checkpoint = (tiny_run if which == "incremental" else tsm_run) / "best.pt"
    model, cfg = load_trained_model(checkpoint)
    videos = sorted((tiny_synth / "videos" / "sit_down").iterdir())[:2]
    dataset = build_dataset([VideoSample(str(v), -1) for v in videos], cfg, train=False)

    with torch.inference_mode():
        (evaluation,) = list(build_loader(SafeClips(dataset), 8, 0))  # what `behavior evaluate` scores
        expected = model(evaluation.clip)  # (2, K)
        predicted = next(clip_batches(SafeClips(dataset), 8, 0, 60.0))  # what `behavior predict` scores
        assert torch.allclose(model(predicted.clip), expected, atol=1e-5)

        for i, video in enumerate(videos):
            with Video(video) as opened:
                duration = opened.info.duration_s
            options = WindowOptions(window=duration + 1.0, stride=duration + 1.0)  # one window over the clip
            records = list(window_records([str(video)], cfg, options, chunk=4, workers=0, timeout_s=60.0))
            assert len(records) == 1 and isinstance(records[0], WindowChunk) and len(records[0].clip) == 1
            torch.testing.assert_close(model(records[0].clip)[0], expected[i], atol=1e-5, rtol=0)

            stream = StreamClassifier(model, cfg, clip_seconds=1e9, device=torch.device("cpu"))
            frames, _ = open_source(str(video), cfg.data.backend)
            for frame, seconds in frames:  # live mode: frame by frame, the clip picked from the buffer
                logits, _ = stream.logits_after(frame, seconds)
            torch.testing.assert_close(logits, expected[i], atol=1e-5, rtol=0)
    assert not np.allclose(
        expected[0].numpy(), expected[1].numpy()
    )  # two different videos: the check can fail


def test_every_path_feeds_efficientnet_its_own_statistics(tiny_synth, tmp_path):
    """Normalisation belongs to the backbone: EfficientNet-Lite0's weights were trained on (rgb - 127) / 128, and
    training, evaluation, windows, live mode, the checkpoint and the ONNX metadata all feed it exactly that."""
    from behavior.data.datasets import span_recipe
    from behavior.engine.checkpoint import save_checkpoint
    from behavior.engine.train import build_optimizer, build_scheduler, checkpoint_state
    from behavior.models.classifier import build_model
    from behavior.tools.export import _metadata

    overrides = tiny_overrides(
        tiny_synth, **{"model.backbone": "efficientnet_lite0", "model.pretrained": "imagenet"}
    )
    cfg = load_config(None, [o for o in overrides if not o.startswith("model.width")])
    classes = ["walk", "run", "wave", "sit_down", "stand_up"]
    model = build_model(cfg.model, classes, num_frames=cfg.sampler.num_frames)
    optimizer = build_optimizer(model, cfg)
    state = checkpoint_state(
        model, optimizer, build_scheduler(optimizer, cfg, 1), 0, cfg, classes, 0.0, {}, 2.0
    )
    trained, trained_cfg = load_trained_model(save_checkpoint(state, tmp_path / "best.pt"))

    frames = np.zeros((4, 40, 48, 3), np.uint8)
    frames[:, :, :, 0], frames[:, :, :, 1], frames[:, :, :, 2] = 0, 127, 255  # one value per channel
    expected = torch.tensor([-127 / 128, 0.0, 1.0]).view(1, 3, 1, 1)  # (rgb - 127) / 128
    transforms = {
        "training": build_dataset([], cfg, train=True).transform,
        "evaluation": build_dataset([], trained_cfg, train=False).transform,
        "windows": span_recipe(trained_cfg, time_based=True).transform,
        "live": StreamClassifier(
            trained, trained_cfg, clip_seconds=2.0, device=torch.device("cpu")
        ).transform,
    }
    for path, transform in transforms.items():
        clip = transform(frames, np.random.default_rng(0))  # float (T, C, crop, crop)
        torch.testing.assert_close(clip, expected.expand_as(clip), atol=1e-6, rtol=0, msg=path)
    metadata = _metadata(trained, trained_cfg)
    assert json.loads(metadata["behavior.mean"]) == pytest.approx([127 / 255] * 3)
    assert json.loads(metadata["behavior.std"]) == pytest.approx([128 / 255] * 3)

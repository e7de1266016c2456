from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from behavior.config import DataConfig, SamplerConfig, TransformConfig
from behavior.data.datasets import ClipDataset, ClipFailure, SafeClips, collate_clips, load_splits
from behavior.data.splits import VideoSample
from behavior.data.transforms import ClipTransform
from behavior.errors import VideoError
from behavior.models.registry import IMAGENET_MEAN, IMAGENET_STD

TRANSFORM = TransformConfig(resize=40, crop=32, mean=IMAGENET_MEAN, std=IMAGENET_STD)


def dataset(samples, train=True, views=1, seed=0):
    sampler = SamplerConfig(num_frames=4, num_views=views)
    return ClipDataset(samples, sampler, ClipTransform(TRANSFORM, train=train), train=train, seed=seed)


@pytest.fixture
def samples(make_video):
    return [
        VideoSample(str(make_video(f"v{i}.mp4", num_frames=12 + i, seed=i)), label=i % 2) for i in range(4)
    ]


def test_items_are_normalised_clips_and_labels(samples):
    clip, label = dataset(samples)[1]
    assert clip.shape == (4, 3, 32, 32) and clip.dtype == torch.float32 and label == 1
    assert -3 < clip.mean() < 3 and clip.std() > 0.1  # normalised, not raw 0..255 pixels


def test_evaluation_with_views(samples):
    clip, _ = dataset(samples, train=False, views=3)[0]
    assert clip.shape == (3, 4, 3, 32, 32)
    again, _ = dataset(samples, train=False, views=3)[0]
    assert torch.equal(clip, again)


def test_training_randomness_depends_on_seed_epoch_and_index_only(samples):
    a, b = dataset(samples, seed=1), dataset(samples, seed=1)
    assert torch.equal(a[2][0], b[2][0])
    b.set_epoch(1)
    assert not torch.equal(a[2][0], b[2][0])
    c = dataset(samples, seed=2)
    assert not torch.equal(a[2][0], c[2][0])


def test_workers_give_the_same_batches_as_the_main_process(samples):
    def batches(workers):
        loader = DataLoader(
            SafeClips(dataset(samples)), batch_size=2, num_workers=workers, collate_fn=collate_clips
        )
        return [b.clip for b in loader]

    for x, y in zip(batches(0), batches(2)):
        assert torch.equal(x, y)


def test_a_broken_video_is_skipped_and_counted(samples, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    items = samples[:2] + [VideoSample(str(broken), 0)] + samples[2:]
    loader = DataLoader(SafeClips(dataset(items)), batch_size=5, collate_fn=collate_clips)
    batch = next(iter(loader))
    assert batch.clip.shape[0] == 4 and batch.index.tolist() == [0, 1, 3, 4]
    assert len(batch.failures) == 1 and isinstance(batch.failures[0], ClipFailure)
    assert batch.failures[0].path == str(broken) and "broken.mp4" in batch.failures[0].reason
    with pytest.raises(VideoError, match="broken.mp4"):
        SafeClips(dataset(items), on_error="raise")[2]


def test_load_splits_ucf_with_validation(ucf_root):
    root, splits = ucf_root
    data = load_splits(DataConfig(root=str(root), splits=str(splits), val_fraction=0.0))
    assert data.class_names == ["Walk", "HandstandPushups"]
    assert len(data.train) == 4 and len(data.test) == 4 and data.val == [] and data.missing == []


def test_load_splits_from_folders_only(ucf_root):
    root, _ = ucf_root
    data = load_splits(DataConfig(root=str(root), splits="", test_fraction=0.5, val_fraction=0.0), seed=0)
    assert len(data.train) == 4 and len(data.test) == 4
    assert {s.group for s in data.train}.isdisjoint({s.group for s in data.test})


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match=r"data.on_error='ignore' is unknown; valid: skip, raise"):
        DataConfig(on_error="ignore")
    with pytest.raises(ValueError, match=r"data.val_fraction"):
        DataConfig(val_fraction=1.5)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load_splits(DataConfig(root="/nonexistent/videos"))


def test_transform_train_and_eval():
    frames = np.random.default_rng(0).integers(0, 256, (4, 60, 80, 3), dtype=np.uint8)
    ev = ClipTransform(TRANSFORM, train=False)
    out = ev(frames)
    assert out.shape == (4, 3, 32, 32)
    assert np.array_equal(ev.to_uint8(out).shape, (4, 32, 32, 3))
    tr = ClipTransform(TRANSFORM, train=True)
    crops = {tuple(tr(frames, np.random.default_rng(s))[0, 0, 0, :4].tolist()) for s in range(10)}
    assert len(crops) > 1
    with pytest.raises(ValueError, match=r"uint8 frames \(T, H, W, 3\)"):
        ev(frames.astype(np.float32))
    with pytest.raises(ValueError, match="transform.crop"):
        TransformConfig(resize=32, crop=64)


@pytest.mark.parametrize(
    "shape", [(4, 60, 80, 3), (1, 576, 768, 3), (3, 97, 61, 3), (2, 72, 72, 3), (1, 31, 200, 3)]
)
@pytest.mark.parametrize("native", [True, False])
def test_resize_gives_torchvisions_pixels(shape, native, monkeypatch):
    """Our resize equals torchvision's, so checkpoints trained before it was ours see the same pixels; both the
    fast uint8 path and the float path that other CPUs take."""
    import torchvision.transforms.v2.functional as TF

    from behavior.data import transforms

    frames = torch.from_numpy(np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8))
    chw = frames.permute(0, 3, 1, 2)
    if native:
        if not transforms._native_uint8_resize():
            pytest.skip("torch has no fast uint8 resize on this CPU")
        expected = TF.resize(chw, [40], antialias=True)
    else:
        monkeypatch.setattr(transforms, "_native_uint8_resize", lambda: False)
        expected = TF.resize(chw.float(), [40], antialias=True).round().to(torch.uint8)
    got = transforms.resize_short_side(frames, 40)
    assert got.dtype == torch.uint8
    assert torch.equal(got, expected.permute(0, 2, 3, 1))


def test_colour_jitter_changes_colours_per_clip_in_training_only():
    from dataclasses import replace

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, 60, 80, 3), dtype=np.uint8)
    jittery = replace(TRANSFORM, color_jitter=0.4)
    assert torch.equal(
        ClipTransform(jittery, train=False)(frames), ClipTransform(TRANSFORM, train=False)(frames)
    )
    shown = ClipTransform(jittery, train=True)
    pixels = [shown.to_uint8(shown(frames, np.random.default_rng(s))).astype(float) for s in range(6)]
    assert len({round(p.mean(), 1) for p in pixels}) > 1  # brightness differs from clip to clip
    grey = np.repeat(rng.integers(0, 256, (4, 60, 80, 1), dtype=np.uint8), 3, axis=3)
    out = shown.to_uint8(shown(grey, np.random.default_rng(3))).astype(int)
    assert np.abs(out - out[..., :1]).max() <= 1  # a grey picture stays grey: colours scale, hues do not move
    with pytest.raises(ValueError, match="transform.color_jitter"):
        TransformConfig(color_jitter=1.5)


def test_the_frame_cache_gives_the_same_clips_and_decodes_once(samples, tmp_path, monkeypatch):
    from behavior.data import frame_cache as cache_module
    from behavior.data.frame_cache import FrameCache

    direct = dataset(samples, seed=4)
    cached = dataset(samples, seed=4)
    cached.cache = FrameCache(tmp_path / "cache", short_side=TRANSFORM.resize)
    assert all(torch.equal(direct[i][0], cached[i][0]) for i in range(len(samples)))  # first epoch: fills it
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == len(samples)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(cache_module, "Video", no_decoding)
    for d in (direct, cached):
        d.set_epoch(3)
    assert all(
        torch.equal(direct[i][0], cached[i][0]) for i in range(len(samples))
    )  # later epochs: no decoding
    os.utime(samples[0].path, ns=(0, 0))  # an edited file is decoded again
    with pytest.raises(AssertionError, match="decoded although cached"):
        cached[0]

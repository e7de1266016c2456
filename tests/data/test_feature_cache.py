"""The feature cache of a frozen backbone: the features it serves are the model's own, one entry per video is
recomputed when (and only when) something that changes it changes, damaged or half-written entries never
reach training, an unwritable folder costs a warning, not the run, and a class added later grows the model
while only its videos are embedded."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_overrides

from behavior.config import load_config
from behavior.data.datasets import build_dataset, load_splits
from behavior.data.feature_cache import FeatureClips, feature_source, fill
from behavior.engine.checkpoint import load_checkpoint, load_trained_model
from behavior.engine.evaluate import evaluate_checkpoint
from behavior.engine.train import train
from behavior.models.classifier import build_model
from behavior.tools.predict import predict
from behavior.tools.rows import read_rows


def frozen_config(synth, cache, **extra):
    """seed-cnn with its whole backbone frozen: the cache keeps pooled features (T, D) per frame."""
    overrides = {
        "model.freeze": "backbone",
        "model.attention": "none",
        "data.feature_cache": str(cache),
        **extra,
    }
    return load_config(None, tiny_overrides(synth, **overrides))


def entries(cache: Path) -> dict[str, float]:
    """Entry folder -> its modification time (ns), for every complete entry under `cache`."""
    return {str(p): p.stat().st_mtime_ns for p in cache.glob("*/*/*") if (p / "meta.json").is_file()}


@pytest.fixture
def synth(tiny_synth, tmp_path):
    """A private copy of the tiny synthetic set (tests here touch and damage its files)."""
    shutil.copytree(tiny_synth, tmp_path / "synth")
    return tmp_path / "synth"


@pytest.mark.parametrize("attention", ["none", "spatial"])
def test_cached_features_score_like_the_whole_model(synth, tmp_path, attention):
    """Pooled features (whole backbone frozen) or feature maps (attention after stage 3 trains): the clip that
    evaluation samples scores the same from the cache as through the whole model (float16 storage aside)."""
    cfg = frozen_config(synth, tmp_path / "cache", **{"model.attention": attention})
    samples = load_splits(cfg.data, seed=0).test[:6]
    model = build_model(cfg.model, [f"c{i}" for i in range(5)], num_frames=4).eval()
    source = feature_source(cfg, model)
    assert source.depth == (len(model.backbone.steps()) if attention == "none" else 4)  # stem, stages 1-3
    assert fill(source, samples, workers=0, progress=False).problems == []
    cached = FeatureClips(samples, source.cache, cfg.sampler, train=False, seed=0)
    decoded = build_dataset(samples, cfg, train=False)
    with torch.inference_mode():
        for i in range(len(samples)):
            features, label, _ = cached.load_clip(i)
            clip, same_label = decoded[i]
            expected = model(clip[None])[0]  # (K,)
            got = model.forward_cached(features[None], source.depth)[0]  # (K,)
            assert label == same_label and torch.allclose(got, expected, atol=2e-3), (got, expected)
            assert got.argmax() == expected.argmax()


def test_a_training_run_embeds_once_and_a_second_run_reuses_every_entry(synth, tmp_path, capsys):
    cache = tmp_path / "cache"
    cfg = frozen_config(synth, cache, **{"train.epochs": 3})
    train(cfg, tmp_path / "a")
    first = entries(cache)
    splits = load_splits(cfg.data, seed=0)
    assert len(first) == len(splits.train) + len(splits.val)
    rows = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["split"] == "train"] == [1, 2, 3] and all(
        r["failed"] == 0 for r in rows
    )
    train(cfg, tmp_path / "b")
    assert entries(cache) == first  # nothing embedded again
    metrics = evaluate_checkpoint(tmp_path / "b" / "best.pt", tmp_path / "eval")
    assert metrics["num_scored"] == len(splits.test)  # evaluation reads (and fills) the same cache
    assert len(entries(cache)) == len(first) + len(splits.test)
    predict(tmp_path / "b" / "best.pt", [s.path for s in splits.test], out=tmp_path / "p.csv", workers=0)
    rows = read_rows(tmp_path / "p.csv")
    assert len(entries(cache)) == len(first) + len(splits.test)  # prediction reads the same entries
    evaluated = {
        r["path"]: r["predicted"] for r in csv.DictReader(open(tmp_path / "eval" / "predictions.csv"))
    }
    assert {r["path"]: r["label"] for r in rows} == evaluated


def test_what_changes_a_feature_recomputes_that_entry_and_only_that_one(synth, tmp_path):
    cache = tmp_path / "cache"
    cfg = frozen_config(synth, cache)
    samples = load_splits(cfg.data, seed=0).train[:5]
    model = build_model(cfg.model, [f"c{i}" for i in range(5)], num_frames=4)
    fill(feature_source(cfg, model), samples, workers=0, progress=False)
    before = entries(cache)
    time.sleep(0.01)
    os.utime(samples[2].path)  # the video changed (its modification time did)
    fill(feature_source(cfg, model), samples, workers=0, progress=False)
    after = entries(cache)
    changed = set(after) - set(before)
    assert len(after) == 6 and len(changed) == 1 and all(after[k] == before[k] for k in before)
    other = frozen_config(
        synth, cache, **{"transform.resize": 40}
    )  # another decode size: another fingerprint
    fill(feature_source(other, model), samples, workers=0, progress=False)
    assert len({Path(p).parts[-3] for p in entries(cache)}) == 2 and len(entries(cache)) == 11
    with torch.no_grad():
        model.backbone.stages[0].conv.weight.add_(0.01)  # other frozen weights: another fingerprint
    assert feature_source(cfg, model).cache.folder != feature_source(other, model).cache.folder
    assert feature_source(cfg, model).cache.folder.name not in {Path(p).parts[-3] for p in entries(cache)}


def test_a_damaged_entry_is_reported_and_recomputed_and_never_served(synth, tmp_path):
    cache = tmp_path / "cache"
    cfg = frozen_config(synth, cache)
    samples = load_splits(cfg.data, seed=0).train[:3]
    model = build_model(cfg.model, [f"c{i}" for i in range(5)], num_frames=4)
    source = feature_source(cfg, model)
    fill(source, samples, workers=0, progress=False)
    good = np.array(source.cache.read(samples[0].path).features)
    damaged = source.cache.entry(samples[0].path) / "features.npy"
    data = bytearray(damaged.read_bytes())
    data[-8:] = b"\xff" * 8  # a flipped tail: the shape still reads, the digest does not match
    damaged.write_bytes(bytes(data))
    truncated = source.cache.entry(samples[1].path) / "features.npy"
    truncated.write_bytes(truncated.read_bytes()[:200])  # cut short
    problems = fill(source, samples, workers=0, progress=False).problems
    assert len(problems) == 2 and all("damaged" in p and "recomputed" in p for p in problems)
    assert samples[0].path in problems[0] or samples[0].path in problems[1]
    np.testing.assert_array_equal(np.array(source.cache.read(samples[0].path, verify=True).features), good)
    truncated.write_bytes(truncated.read_bytes()[:200])
    clips = FeatureClips(samples, source.cache, cfg.sampler, train=True, seed=0)
    with pytest.raises(ValueError, match="damaged"):  # a VideoError: SafeClips skips and counts it
        clips.load_clip(1)


def test_an_extraction_killed_half_way_leaves_no_entry_that_a_later_run_trusts(synth, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cfg = frozen_config(synth, cache)
    samples = load_splits(cfg.data, seed=0).train[:6]
    model = build_model(cfg.model, [f"c{i}" for i in range(5)], num_frames=4)
    source = feature_source(cfg, model)
    real_save, saved = np.save, []

    def killed_during_the_fourth_entry(file, array, *args, **kwargs):
        saved.append(file)
        if len(saved) == 10:  # entry 4's second array: the entry is half-written
            raise KeyboardInterrupt
        return real_save(file, array, *args, **kwargs)

    monkeypatch.setattr(np, "save", killed_during_the_fourth_entry)
    with pytest.raises(KeyboardInterrupt):
        fill(source, samples, workers=0, progress=False)
    monkeypatch.undo()
    assert len(entries(cache)) == 3 and not list(cache.rglob("*.tmp"))
    assert fill(source, samples, workers=0, progress=False).problems == []
    assert len(entries(cache)) == 6


def test_an_unwritable_or_full_cache_costs_a_warning_not_the_run(synth, tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    cfg = frozen_config(synth, blocker / "cache", **{"train.epochs": 1})
    train(cfg, tmp_path / "run")
    out = capsys.readouterr().out
    assert "warning: the feature cache" in out and "cannot be written" in out and "going on without it" in out
    assert (tmp_path / "run" / "best.pt").is_file()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", disk_full)
    train(frozen_config(synth, tmp_path / "cache", **{"train.epochs": 1}), tmp_path / "run2")
    assert "No space left on device" in capsys.readouterr().out
    assert (tmp_path / "run2" / "best.pt").is_file() and not entries(tmp_path / "cache")


def _fill_in_another_process(synth: str, cache: str) -> int:
    cfg = frozen_config(Path(synth), Path(cache))
    torch.manual_seed(0)  # the same weights as in the test: the same fingerprint
    model = build_model(cfg.model, [f"c{i}" for i in range(5)], num_frames=4)
    report = fill(feature_source(cfg, model), load_splits(cfg.data, seed=0).train, workers=0, progress=False)
    return len(report.problems)


def test_two_runs_filling_one_cache_at_once_both_end_with_sound_entries(synth, tmp_path):
    cache = tmp_path / "cache"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        problems = pool.starmap(_fill_in_another_process, [(str(synth), str(cache))] * 2)
    assert problems == [0, 0]
    cfg = frozen_config(synth, cache)
    torch.manual_seed(0)
    model = build_model(cfg.model, [f"c{i}" for i in range(5)], num_frames=4)
    source = feature_source(cfg, model)
    train_set = load_splits(cfg.data, seed=0).train
    assert len(entries(cache)) == len(train_set) and not list(cache.rglob("*.tmp"))
    assert all(source.cache.read(s.path, verify=True) is not None for s in train_set)


def test_a_class_added_later_grows_the_model_and_only_its_videos_are_embedded(synth, tmp_path):
    cache = tmp_path / "cache"
    (synth / "splits").rename(tmp_path / "unused-splits")  # class folders only: a new folder is a new class
    stand_up = synth / "videos" / "stand_up"
    stand_up.rename(tmp_path / "stand_up")
    cfg = frozen_config(synth, cache, **{"data.splits": "", "train.epochs": 2})
    train(cfg, tmp_path / "four")
    four = load_checkpoint(tmp_path / "four" / "best.pt")
    before = entries(cache)
    (tmp_path / "stand_up").rename(stand_up)  # the data root gains a class folder
    train(cfg, tmp_path / "five", init_from=tmp_path / "four" / "best.pt")
    five = load_checkpoint(tmp_path / "five" / "best.pt")
    assert five["class_names"] == [*four["class_names"], "stand_up"]
    assert five["lineage"] == [
        {"checkpoint": str(tmp_path / "four" / "best.pt"), "class_names": four["class_names"]}
    ]
    assert five["model"]["head.fc.weight"].shape[0] == 5
    new = set(entries(cache)) - set(before)
    embedded = {json.loads((Path(p) / "meta.json").read_text())["video"] for p in new}
    assert embedded and all(Path(v).parent.name == "stand_up" for v in embedded)
    model, _ = load_trained_model(tmp_path / "five" / "best.pt")
    assert model.class_names == five["class_names"]
    # evaluation reads the data's classes in folder order and scores them against the grown model's own rows
    metrics = evaluate_checkpoint(tmp_path / "five" / "best.pt", tmp_path / "eval", allow_failed=True)
    test_videos = load_splits(cfg.data, seed=cfg.train.seed).test
    per_folder = {
        name: sum(Path(s.path).parent.name == name for s in test_videos) for name in five["class_names"]
    }
    assert {name: m["support"] for name, m in metrics["per_class"].items()} == per_folder

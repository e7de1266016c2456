from __future__ import annotations

import csv
import re
from dataclasses import replace

import matplotlib.image
import numpy as np
import pytest
import torch

from behavior.cli import main
from behavior.data.datasets import load_splits
from behavior.data.video import Video
from behavior.engine.checkpoint import load_trained_model
from behavior.engine.scoring import SplitScores
from behavior.models.classifier import build_model
from behavior.pictures.attention import AttentionFrames, attention_figure, attention_frames, save_attention
from behavior.pictures.frames import clip_datasets, sample_clip, sampled_frames_grid
from behavior.pictures.gallery import (
    Prediction,
    confused_pairs,
    misclassified_gallery,
    predictions_from_scores,
)

CLASSES = ["walk", "run", "wave", "sit_down", "stand_up"]


def figure_texts(fig) -> str:
    """Every piece of text a reader sees on a figure: titles, axis labels, tick labels, annotations."""
    texts = [t.get_text() for t in fig.findobj(lambda artist: hasattr(artist, "get_text"))]
    return "\n".join(t for t in texts if t)


@pytest.fixture(scope="module")
def trained(tiny_run):
    return load_trained_model(tiny_run / "best.pt")


@pytest.fixture(scope="module")
def test_samples(trained):
    _, cfg = trained
    return load_splits(cfg.data, seed=cfg.train.seed).test


@pytest.fixture(scope="module")
def evaluated(tiny_run, tmp_path_factory):
    """`behavior evaluate --gallery` on the tiny run's test split, once for this module."""
    out = tmp_path_factory.mktemp("eval")
    assert main(["evaluate", "--checkpoint", str(tiny_run / "best.pt"), "--out", str(out), "--gallery"]) == 0
    return out


def test_the_pictures_use_the_clips_that_training_and_evaluation_use(trained, test_samples):
    _, cfg = trained
    train_set, eval_set = clip_datasets(cfg, test_samples[:2])
    train_set.set_epoch(3)
    for dataset in (train_set, eval_set):
        for i in range(2):
            expected, _, _ = dataset.load_clip(i)  # (T, C, H, W): what the DataLoader gets
            sampled = sample_clip(dataset, i)
            assert torch.equal(sampled.clip[0], expected)
            assert sampled.frames.dtype == np.uint8 and sampled.indices.shape == (1, cfg.sampler.num_frames)


def test_attention_frames_give_the_score_behavior_evaluate_reports(trained, test_samples, evaluated):
    with open(evaluated / "predictions.csv") as handle:
        rows = {row["path"]: row for row in csv.DictReader(handle)}
    for sample in test_samples[:3]:
        result = attention_frames(trained, sample)
        row = rows[sample.path]
        assert (result.label, result.true_label) == (row["predicted"], row["true"])
        assert result.score == pytest.approx(float(row["score"]), abs=1e-4)
        T = len(result.indices)
        assert result.frames.shape[0] == T and result.frames.dtype == np.uint8
        assert result.spatial.shape[0] == T and 0 <= result.spatial.min() <= result.spatial.max() <= 1
        assert result.temporal is None  # the tiny run has the tconv head
        assert np.all(np.diff(result.timestamps) > 0)
        x0, y0, x1, y1 = result.box
        assert 0 <= x0 < x1 <= result.frames.shape[2] and 0 <= y0 < y1 <= result.frames.shape[1]


def test_the_attention_figure_is_labelled(trained, test_samples):
    result = attention_frames(trained, test_samples[0])
    text = figure_texts(attention_figure(result))
    assert f"predicted {result.label}" in text and f"true {result.true_label}" in text
    for index in result.indices:
        assert f"frame {index}" in text
    assert "sampled frame" in text and "spatial attention" in text
    assert "the tconv head has none" in text  # says why no temporal weights are shown


def test_an_attention_head_adds_its_frame_weights(trained, test_samples):
    model, cfg = trained
    cfg = replace(cfg, model=replace(cfg.model, head="attention"))
    torch.manual_seed(0)
    untrained = build_model(cfg.model, model.class_names, cfg.sampler.num_frames).eval()
    result = attention_frames((untrained, cfg), test_samples[0].path)
    assert result.temporal.shape == (cfg.sampler.num_frames,) and result.temporal.sum() == pytest.approx(
        1, abs=1e-5
    )
    assert result.true_label is None and result.correct is None
    assert "true" not in result.title()
    text = figure_texts(attention_figure(result))
    assert "temporal weight" in text and "temporal weights: none" not in text


@pytest.mark.parametrize("suffix", [".png", ".gif", ".mp4"])
def test_behavior_attention_writes_a_picture(tiny_run, tiny_synth, tmp_path, suffix, capsys):
    video = next((tiny_synth / "videos" / "wave").iterdir())
    out = tmp_path / f"attention{suffix}"
    assert main(["attention", "--checkpoint", str(tiny_run / "best.pt"), str(video), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "true wave" in printed and str(out) in printed  # the class folder names the true label
    if suffix == ".png":
        image = matplotlib.image.imread(out)
        height, width = image.shape[:2]
        assert width > 4 * 100 and height > 2 * 100  # 4 frame columns, 2 rows, readable
    else:
        with Video(out) as animation:
            assert animation.info.num_frames == 4  # T
            assert min(animation.info.width, animation.info.height) >= 192  # scaled up from 48 pixels


def test_behavior_attention_refuses_what_it_cannot_draw(tiny_run, tiny_synth, tmp_path, capsys):
    video = next((tiny_synth / "videos" / "wave").iterdir())
    checkpoint = str(tiny_run / "best.pt")
    assert main(["attention", "--checkpoint", checkpoint, str(video), "--out", str(tmp_path / "a.jpg")]) == 2
    assert ".png, .gif, .mp4" in capsys.readouterr().err
    assert (
        main(
            [
                "attention",
                "--checkpoint",
                checkpoint,
                str(tmp_path / "none.mp4"),
                "--out",
                str(tmp_path / "a.png"),
            ]
        )
        == 2
    )
    assert "none.mp4" in capsys.readouterr().err
    assert (
        main(
            [
                "attention",
                "--checkpoint",
                checkpoint,
                str(video),
                "--out",
                str(tmp_path / "a.png"),
                "--label",
                "jump",
            ]
        )
        == 2
    )
    assert "jump" in capsys.readouterr().err and not (tmp_path / "a.png").exists()
    with pytest.raises(ValueError, match="valid: .png, .gif, .mp4"):
        save_attention(AttentionFrames("v.mp4", *[None] * 8, head="avg"), tmp_path / "a.bmp")


def test_sampled_frames_grid_marks_training_and_evaluation_picks(trained, test_samples, tmp_path):
    _, cfg = trained
    samples = [next(s for s in test_samples if s.label == k) for k in (0, 3)]
    fig = sampled_frames_grid(cfg, samples, CLASSES, epochs=(0, 1), out=tmp_path / "grid.png")
    text = figure_texts(fig)
    for sample in samples:
        assert f"{sample.path.rsplit('/', 1)[-1]} ({CLASSES[sample.label]})" in text
    assert "evaluation" in text and "training, epoch 1" in text and "training, epoch 2" in text
    assert "frame number" in text
    _, eval_set = clip_datasets(cfg, samples)
    for index in sample_clip(eval_set, 0).indices[0]:
        assert f"#{index}" in text
    assert matplotlib.image.imread(tmp_path / "grid.png").shape[0] > 600


def test_confused_pairs_most_frequent_first():
    predictions = [
        Prediction("a", "walk", "run", 0.5),
        Prediction("b", "wave", "walk", 0.6),
        Prediction("c", "walk", "run", 0.9),
        Prediction("d", "walk", "walk", 0.9),
        Prediction("e", "sit_down", "stand_up", 0.4),
    ]
    pairs = confused_pairs(predictions)
    assert [pair for pair, _ in pairs] == [("walk", "run"), ("sit_down", "stand_up"), ("wave", "walk")]
    assert [p.path for p in pairs[0][1]] == ["c", "a"]  # the most confident mistake first


def test_the_gallery_lists_the_misclassified_videos(evaluated, tiny_run):
    with open(evaluated / "predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    wrong = [row for row in rows if row["true"] != row["predicted"]]
    assert wrong, "the tiny run should misclassify some test videos"
    page = (evaluated / "gallery.html").read_text()
    assert f"{len(wrong)} of {len(rows)} videos misclassified" in page
    for row in wrong:
        name = row["path"].rsplit("/", 1)[-1]
        assert re.search(
            rf"<b>{re.escape(name)}</b>: true <span class=\"true\">{row['true']}</span>, predicted "
            rf"<span class=\"predicted\">{row['predicted']}</span>",
            page,
        )
    assert page.count("data:image/png;base64,") == len(wrong)  # one strip each (at most 8 per pair)
    counts = [int(n) for n in re.findall(r"</a></td><td>(\d+)</td>", page)]
    assert counts == sorted(counts, reverse=True) and sum(counts) == len(wrong)
    for row in rows:
        if row["true"] == row["predicted"]:
            assert f"<b>{row['path'].rsplit('/', 1)[-1]}</b>" not in page
    # the files `behavior train` and `behavior evaluate` write beside it
    assert matplotlib.image.imread(tiny_run / "curves.png").shape[1] > 600
    assert matplotlib.image.imread(evaluated / "confusion_matrix.png").shape[1] > 600


def test_the_gallery_from_scores_in_memory(trained, test_samples, tmp_path):
    _, cfg = trained
    samples = test_samples[:3]
    clip_scores = np.array(
        [[[0.7, 0.1, 0.1, 0.05, 0.05]], [[0.1, 0.2, 0.6, 0.05, 0.05]], [[0.1, 0.2, 0.6, 0.05, 0.05]]],
        dtype=np.float32,
    )  # (N, V, K)
    scores = SplitScores(clip_scores, np.array([0, 0, 2]), np.arange(3))
    assert [(p.true, p.predicted) for p in predictions_from_scores(scores, samples, CLASSES)] == [
        ("walk", "walk"),
        ("walk", "wave"),
        ("wave", "wave"),
    ]
    page = misclassified_gallery(
        scores, tmp_path / "gallery.html", cfg=cfg, samples=samples, class_names=CLASSES
    ).read_text()
    assert "1 of 3 videos misclassified" in page and page.count("data:image/png;base64,") == 1
    with pytest.raises(ValueError, match="samples="):
        misclassified_gallery(scores, tmp_path / "g.html")


def test_the_heatmap_is_red_where_the_model_looks_blue_elsewhere_and_only_inside_its_box():
    from behavior.pictures.overlay import heatmap_overlay

    frame = np.full((120, 160, 3), 128, np.uint8)
    attention = np.zeros((4, 4), np.float32)
    attention[0, 3] = 1.0  # the top-right cell
    box = (40, 0, 160, 120)  # x0, y0, x1, y1: the square the model saw
    drawn = heatmap_overlay(frame, attention, box)
    assert drawn.dtype == np.uint8 and drawn.shape == frame.shape and (frame == 128).all()  # input untouched
    assert (drawn[:, :40] == 128).all()  # outside the box: as it was
    hot, cold = drawn[5, 155].astype(int), drawn[115, 45].astype(int)  # RGB
    assert hot[0] > hot[2] + 40 and cold[2] > cold[0] + 40  # red where it looks, blue where it does not

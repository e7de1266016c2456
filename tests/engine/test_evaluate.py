from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.metrics import f1_score, precision_recall_fscore_support

from behavior.cli import main
from behavior.engine.evaluate import evaluate_checkpoint
from behavior.engine.metrics import classification_report, confusion_matrix, normalise_rows
from behavior.errors import EvaluationRefused


def test_confusion_matrix_matches_scikit_learn_on_a_hand_made_example():
    targets = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    predicted = np.array([0, 1, 0, 1, 1, 2, 0, 2, 1])
    expected = [[2, 1, 0], [0, 2, 0], [1, 1, 2]]  # rows: true class
    assert confusion_matrix(targets, predicted, 3).tolist() == expected
    assert np.array_equal(confusion_matrix(targets, predicted, 3), sk_confusion_matrix(targets, predicted))
    assert normalise_rows(np.array(expected)).round(3).tolist() == [
        [0.667, 0.333, 0.0],
        [0.0, 1.0, 0.0],
        [0.25, 0.25, 0.5],
    ]
    scores = np.eye(3)[predicted]
    report = classification_report(scores, targets, ["a", "b", "c"])
    precision, recall, f1, support = precision_recall_fscore_support(targets, predicted)
    assert report["top1"] == pytest.approx(6 / 9)
    assert report["mean_class_accuracy"] == pytest.approx((2 / 3 + 1 + 0.5) / 3)
    assert report["macro_f1"] == pytest.approx(f1_score(targets, predicted, average="macro"))
    assert [report["per_class"][c]["recall"] for c in "abc"] == pytest.approx(recall.tolist())
    assert [report["per_class"][c]["support"] for c in "abc"] == [3, 2, 4]
    assert "top5" not in report
    many = classification_report(np.random.default_rng(0).random((20, 7)), np.arange(20) % 7, list("abcdefg"))
    assert 0 <= many["top5"] <= 1


def test_evaluate_writes_the_report_files(tiny_run, tmp_path, capsys):
    out = tmp_path / "eval"
    assert (
        main(["evaluate", "--checkpoint", str(tiny_run / "best.pt"), "--out", str(out), "--views", "2"]) == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert {
        "top1",
        "mean_class_accuracy",
        "macro_f1",
        "per_class",
        "clip_accuracy",
        "video_accuracy",
        "num_views",
        "num_videos",
        "num_failed",
        "failed",
    } <= set(metrics)
    assert metrics["num_views"] == 2 and metrics["num_failed"] == 0 and metrics["num_videos"] == 20
    assert set(metrics["per_class"]) == {"walk", "run", "wave", "sit_down", "stand_up"}
    with open(out / "confusion_matrix.csv") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["counts: true \\ predicted", "walk", "run", "wave", "sit_down", "stand_up"]
    assert sum(int(v) for row in rows[1:6] for v in row[1:]) == 20
    with open(out / "predictions.csv") as handle:
        predictions = list(csv.DictReader(handle))
    assert len(predictions) == 20 and {"path", "true", "predicted", "score", "top1", "top5"} <= set(
        predictions[0]
    )
    assert (out / "confusion_matrix.png").stat().st_size > 10_000
    assert "video top-1" in capsys.readouterr().out


def test_evaluation_refuses_a_test_set_that_lost_videos(tiny_run, tiny_synth, tmp_path, capsys):
    data = tmp_path / "synth"
    shutil.copytree(tiny_synth, data)
    listed = (data / "splits" / "testlist01.txt").read_text().split()
    victim = data / "videos" / listed[0]
    victim.write_bytes(b"not a video")
    args = [
        "evaluate",
        "--checkpoint",
        str(tiny_run / "best.pt"),
        "--data",
        str(data / "videos"),
        "--splits",
        str(data / "splits"),
        "--out",
        str(tmp_path / "eval"),
    ]
    assert main(args) == 3
    assert victim.name in capsys.readouterr().err and not (tmp_path / "eval" / "metrics.json").exists()
    with pytest.raises(EvaluationRefused, match="--allow-failed"):
        evaluate_checkpoint(
            tiny_run / "best.pt",
            tmp_path / "eval",
            data_root=str(data / "videos"),
            splits_dir=str(data / "splits"),
        )
    assert main([*args, "--allow-failed"]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["num_failed"] == 1 and metrics["failed"][0]["path"] == str(victim)
    assert metrics["num_scored"] == 19


def test_evaluate_reports_calibration_with_a_reliability_diagram(tiny_confident_run, tmp_path, capsys):
    import matplotlib.image

    from behavior.engine.checkpoint import load_trained_model

    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(tiny_confident_run / "best.pt"), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    model, _ = load_trained_model(tiny_confident_run / "best.pt")
    assert metrics["temperature"] == pytest.approx(model.confidence.temperature)
    assert 0 <= metrics["ece_before"] <= 1 and 0 <= metrics["ece_after"] <= 1
    assert metrics["ece_before"] != metrics["ece_after"]
    for key in ("reliability_before", "reliability_after"):
        assert len(metrics[key]["counts"]) == 15 and sum(metrics[key]["counts"]) == metrics["num_scored"]
    assert metrics["rejection"]["score"] == "msp" and 0 <= metrics["rejection"]["known_kept"] <= 1
    assert matplotlib.image.imread(out / "reliability_diagram.png").shape[1] > 600
    with open(out / "predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    threshold = metrics["rejection"]["threshold"]
    assert all(int(r["unknown"]) == (float(r["unknown_score"]) < threshold) for r in rows)
    text = capsys.readouterr().out
    assert "ECE (15 bins)" in text and "reliability_diagram.png" in text


def test_a_batch_bigger_than_one_cpu_pass_is_scored_in_passes_with_the_same_outputs(monkeypatch):
    import torch

    from behavior.config import ModelConfig
    from behavior.engine import scoring
    from behavior.models.classifier import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(width=0.25, head="attention"), list("abcde"), num_frames=3).eval()
    clips = torch.randn(3, 2, 3, 3, 32, 32)  # (B, V, T, C, H, W): 6 clips of 3 x 3 x 32 x 32 = 9216 values
    with torch.inference_mode():
        logits, features = model.forward_scores(clips.flatten(0, 1))  # (6, K), (6, D): one pass
    passes = []
    forward = model.forward_scores
    monkeypatch.setattr(model, "forward_scores", lambda x: passes.append(len(x)) or forward(x))
    monkeypatch.setattr(scoring, "CPU_VALUES_PER_PASS", 2 * 9216 + 1)  # two clips per pass
    with torch.inference_mode():
        outputs = scoring.score_batch(model, clips, torch.device("cpu"))
    assert passes == [2, 2, 2]
    assert outputs.logits.shape == (3, 2, 5) and outputs.features.shape == (3, 2, features.shape[1])
    assert torch.allclose(outputs.logits.flatten(0, 1), logits, atol=1e-5)
    assert torch.allclose(outputs.features.flatten(0, 1), features, atol=1e-5)
    passes.clear()
    monkeypatch.setattr(scoring, "CPU_VALUES_PER_PASS", 100)  # less than one clip: still one clip per pass
    with torch.inference_mode():
        scoring.score_batch(model, clips[:1], torch.device("cpu"))
    assert passes == [1, 1]
    assert scoring.clips_per_pass(clips.flatten(0, 1), torch.device("cuda")) == 6  # accelerators: one pass
    with torch.inference_mode():  # an empty batch gives empty outputs, as one forward of it does
        empty = scoring.score_batch(model, clips[:0], torch.device("cpu"))
    assert empty.logits.shape == (0, 2, 5)  # (B, V, K)

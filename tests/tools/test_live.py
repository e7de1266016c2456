from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from behavior.cli import main
from behavior.data.video import Video
from behavior.data.writer import write_video
from behavior.engine.checkpoint import load_trained_model
from behavior.tools.live import StreamClassifier, roi_square, run_live


def test_live_on_a_file_writes_a_playable_annotated_video(tiny_run, tiny_synth, tmp_path, capsys):
    source = sorted((tiny_synth / "videos" / "wave").iterdir())[0]
    out = tmp_path / "annotated.mp4"
    assert (
        main(
            [
                "live",
                "--checkpoint",
                str(tiny_run / "best.pt"),
                "--source",
                str(source),
                "--out",
                str(out),
                "--show",
            ]
        )
        == 0
    )  # --show on a machine with no display must not fail
    text = capsys.readouterr()
    assert "frames/s" in text.out and "end of stream" in text.out
    with Video(source) as original, Video(out) as annotated:
        assert annotated.info.num_frames == original.info.num_frames
        first, raw = annotated.get_frames([annotated.info.num_frames - 1])[0], original.get_frames([0])[0]
    assert first.shape == raw.shape
    assert np.abs(first.astype(int) - raw.astype(int)).mean() > 5  # heatmap and label drawn on it


def test_incremental_head_matches_the_whole_clip_forward(tiny_run, tiny_synth):
    """The ring buffer gives the same logits as running the model on the same T frames at once."""
    model, cfg = load_trained_model(tiny_run / "best.pt")
    stream = StreamClassifier(model, cfg, clip_seconds=100.0, device=torch.device("cpu"))
    frames = np.random.default_rng(0).integers(0, 256, (cfg.sampler.num_frames, 48, 64, 3), dtype=np.uint8)
    for t, frame in enumerate(frames):
        probs, attention = stream.add_frame(frame, t / 10)
    assert attention.min() >= 0 and attention.max() <= 1
    with torch.no_grad():
        clip = stream.transform(frames)[None]  # (1, T, C, H, W)
        expected = model(clip).softmax(dim=-1)[0].numpy()
    assert np.allclose(probs, expected, atol=1e-5)


def test_a_temporal_shift_model_runs_live_on_whole_clips(tiny_synth, tmp_path, capsys):
    """TSM mixes neighbouring frames, so frames cannot go through the backbone alone: live mode runs the T picked
    frames as one clip, and its scores are those of the model on the same frames."""
    from conftest import tiny_overrides

    from behavior.config import load_config
    from behavior.engine.train import train

    train(
        load_config(None, tiny_overrides(tiny_synth, **{"model.temporal_shift": True, "train.epochs": 1})),
        tmp_path / "tsm",
    )
    model, cfg = load_trained_model(tmp_path / "tsm" / "best.pt")
    stream = StreamClassifier(model, cfg, clip_seconds=100.0, device=torch.device("cpu"))
    frames = np.random.default_rng(0).integers(0, 256, (cfg.sampler.num_frames, 48, 64, 3), dtype=np.uint8)
    for t, frame in enumerate(frames):
        probs, attention = stream.add_frame(frame, t / 10)
        assert (probs is None) == (t < cfg.sampler.num_frames - 1)
    assert attention.min() >= 0 and attention.max() <= 1
    with torch.no_grad():
        expected = model(stream.transform(frames)[None]).softmax(dim=-1)[0].numpy()
    assert np.allclose(probs, expected, atol=1e-5)
    source = sorted((tiny_synth / "videos" / "wave").iterdir())[0]
    assert (
        main(
            [
                "live",
                "--checkpoint",
                str(tmp_path / "tsm" / "best.pt"),
                "--source",
                str(source),
                "--out",
                str(tmp_path / "annotated.mp4"),
            ]
        )
        == 0
    )
    assert "end of stream" in capsys.readouterr().out


def test_a_source_that_cannot_be_opened_is_a_clear_error(tiny_run, tmp_path, capsys):
    assert (
        main(
            [
                "live",
                "--checkpoint",
                str(tiny_run / "best.pt"),
                "--source",
                str(tmp_path / "absent.mp4"),
                "--out",
                str(tmp_path / "o.mp4"),
            ]
        )
        == 2
    )
    assert "absent.mp4: no such file" in capsys.readouterr().err
    assert (
        main(
            [
                "live",
                "--checkpoint",
                str(tiny_run / "best.pt"),
                "--source",
                "9",
                "--out",
                str(tmp_path / "o.mp4"),
            ]
        )
        == 2
    )
    assert "camera 9 cannot be opened" in capsys.readouterr().err


def test_a_stream_that_breaks_off_still_leaves_a_playable_file(tiny_run, tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (60, 48, 64, 3), dtype=np.uint8)
    source = write_video(
        tmp_path / "whole.mkv", frames, fps=15
    )  # Matroska: a cut file still plays up to the cut
    broken = tmp_path / "cut.mkv"
    broken.write_bytes(source.read_bytes()[: source.stat().st_size * 2 // 3])
    out = tmp_path / "annotated.mp4"
    summary = run_live(tiny_run / "best.pt", str(broken), out=out)
    assert 10 < summary.frames < 60
    with Video(out) as annotated:
        assert annotated.info.num_frames == summary.frames


def test_roi_face_on_a_frame_without_faces_runs_on_the_whole_frame(tiny_run, tmp_path):
    frames = np.full((12, 96, 128, 3), 90, np.uint8)
    source = write_video(tmp_path / "plain.mp4", frames, fps=12)
    summary = run_live(tiny_run / "best.pt", str(source), out=tmp_path / "o.mp4", roi="face", max_frames=5)
    assert summary.frames == 5 and summary.stopped == "max frames"


@pytest.mark.parametrize(
    "box, expected", [((40, 40, 60, 60), (30, 30, 70, 70)), ((0, 0, 50, 50), (0, 0, 96, 96))]
)
def test_roi_square_stays_inside_the_frame(box, expected):
    assert roi_square(box, 96, 128, margin=0.5) == expected


def test_live_calls_a_clip_unknown_below_the_threshold(tiny_confident_run, tiny_synth, tmp_path):
    from behavior.engine.calibration import probabilities
    from behavior.engine.confidence import prediction_rule

    model, cfg = load_trained_model(tiny_confident_run / "best.pt")
    frames = np.random.default_rng(1).integers(0, 256, (cfg.sampler.num_frames, 48, 64, 3), dtype=np.uint8)
    for threshold, unknown in ((2.0, True), (0.0, False)):
        rule = prediction_rule(model.confidence, threshold)
        stream = StreamClassifier(model, cfg, clip_seconds=100.0, device=torch.device("cpu"), confidence=rule)
        for t, frame in enumerate(frames):
            judged, _ = stream.judge_after(frame, t / 10)
        assert bool(judged.unknown[0]) is unknown
        with torch.no_grad():
            logits = model(stream.transform(frames)[None]).numpy()  # (1, K)
        calibrated = probabilities(logits, model.confidence.temperature)[0]  # the checkpoint's temperature
        assert np.allclose(judged.probabilities[0], calibrated, atol=1e-5)
        assert judged.scores[0] == pytest.approx(calibrated.max())  # msp
    source = sorted((tiny_synth / "videos" / "walk").iterdir())[0]
    drawn = {}
    for threshold in ("2", "off"):
        out = tmp_path / f"live-{threshold}.mp4"
        args = ["live", "--checkpoint", str(tiny_confident_run / "best.pt"), "--source", str(source)]
        assert main([*args, "--out", str(out), "--unknown-threshold", threshold]) == 0
        with Video(out) as video:
            drawn[threshold] = video.get_frames([video.info.num_frames - 1])[0].astype(int)
    band = slice(0, 12)  # the label is written on a band at the top
    assert np.abs(drawn["2"][band] - drawn["off"][band]).mean() > 2  # "unknown (closest ...)" vs the label
    assert np.abs(drawn["2"][30:] - drawn["off"][30:]).mean() < 2  # the rest of the frame is the same


class BackboneFrames:
    """Counts the frames that go through a model's backbone."""

    def __init__(self, model):
        self.count = 0
        model.backbone.register_forward_pre_hook(self.seen)

    def seen(self, module, inputs):
        self.count += inputs[0].shape[0]


def test_the_online_shift_runs_live_at_one_backbone_pass_per_frame(tiny_online_run, tiny_synth, tmp_path):
    """Frame by frame, each frame once through the backbone with its predecessor's shifted slices: from a fresh
    start, the scores of the first T frames are those of the model on the same clip; later frames are judged on
    the chain of one frame per clip step."""
    model, cfg = load_trained_model(tiny_online_run / "best.pt")
    T = cfg.sampler.num_frames
    stream = StreamClassifier(model, cfg, clip_seconds=T / 10, device=torch.device("cpu"))  # a step: 0.1 s
    assert stream.mode == "online"
    frames = np.random.default_rng(0).integers(0, 256, (3 * T, 48, 64, 3), dtype=np.uint8)
    passes = BackboneFrames(model)
    for t, frame in enumerate(frames[:T]):
        probs, attention = stream.add_frame(frame, t / 10)
        assert (probs is None) == (t < T - 1)
    assert passes.count == T and attention.min() >= 0 and attention.max() <= 1
    with torch.no_grad():
        expected = model(stream.transform(frames[:T])[None]).softmax(dim=-1)[0].numpy()
    assert np.allclose(probs, expected, atol=1e-5)
    passes.count = 0
    for t, frame in enumerate(frames[T:], start=T):
        probs, _ = stream.add_frame(frame, t / 10)
    assert passes.count == 2 * T and probs is not None
    with torch.no_grad():
        # the last T frames, each with the history of the ones before it: not a fresh clip
        fresh = model(stream.transform(frames[-T:])[None]).softmax(dim=-1)[0].numpy()
        shifted = None
        for frame in stream.transform(frames):
            step = model.forward_step(frame[None], shifted)
            shifted = step.shifted
        picked = torch.stack([entry.item for entry in list(stream.buffer)[-T:]])[None]  # (1, T, D)
        assert torch.allclose(picked[0, -1], step.features[0], atol=1e-5)
        chained = model.forward_head(picked).softmax(dim=-1)[0].numpy()
    assert np.allclose(probs, chained, atol=1e-5) and not np.allclose(probs, fresh, atol=1e-5)
    two_way = StreamClassifier(model, cfg, clip_seconds=T / 10, device=torch.device("cpu"))
    two_way.mode = "clips"  # what a two-way model does: T frames through the backbone per update
    passes.count = 0
    for t, frame in enumerate(frames[: 2 * T]):
        two_way.add_frame(frame, t / 10)
    assert passes.count == (T + 1) * T  # from the T-th frame on, T backbone passes per new frame


def test_live_on_onnx_runtime_gives_the_scores_of_pytorch(tiny_online_run, tiny_synth, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from behavior.tools.engines import load_engine
    from behavior.tools.export import TOLERANCE

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    checkpoint = tiny_online_run / "best.pt"
    frames = np.random.default_rng(2).integers(0, 256, (12, 48, 64, 3), dtype=np.uint8)
    scores = {}
    for engine in ("torch", "onnx"):
        model, cfg = load_engine(checkpoint, engine, torch.device("cpu"))
        stream = StreamClassifier(model, cfg, clip_seconds=0.4, device=torch.device("cpu"))
        logits = [stream.logits_after(frame, t / 10)[0] for t, frame in enumerate(frames)]
        scores[engine] = torch.stack([x for x in logits if x is not None]).numpy()
    assert scores["onnx"].shape == scores["torch"].shape == (9, 5)
    assert np.abs(scores["onnx"] - scores["torch"]).max() < TOLERANCE
    assert len(list((tmp_path / "cache" / "behavior" / "onnx").glob("*/model.backbone.onnx"))) == 1  # cached
    source = sorted((tiny_synth / "videos" / "run").iterdir())[0]
    summary = run_live(checkpoint, str(source), out=tmp_path / "onnx.mp4", engine="onnx")
    with Video(source) as original, Video(tmp_path / "onnx.mp4") as annotated:
        assert summary.frames == annotated.info.num_frames == original.info.num_frames


def test_live_and_predict_start_without_torchvision_or_scikit_learn():
    """Start-up counts in live mode's real-time figure: loading a seed-cnn or efficientnet checkpoint and
    running it must not import torchvision (which pulls in torch._dynamo) or scikit-learn (scipy.stats), seconds
    of a 2-core machine's start-up. Checked in a fresh interpreter."""
    code = (
        "import sys, behavior.tools.live, behavior.tools.predict, behavior.models.classifier\n"
        "from behavior.config import load_config\n"
        "from behavior.models.classifier import build_model\n"
        "cfg = load_config('configs/demo.yaml')\n"
        "build_model(cfg.model, ['a', 'b'], num_frames=8)\n"
        "print(sorted(m for m in ('torchvision', 'sklearn', 'scipy.stats') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2]
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

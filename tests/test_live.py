from __future__ import annotations

import numpy as np
import pytest
import torch

from behavior.checkpoint import load_trained_model
from behavior.cli import main
from behavior.live import StreamClassifier, roi_square, run_live
from behavior.video import Video, write_video


def test_live_on_a_file_writes_a_playable_annotated_video(tiny_run, tiny_synth, tmp_path, capsys):
    source = sorted((tiny_synth / "videos" / "wave").iterdir())[0]
    out = tmp_path / "annotated.mp4"
    assert main(["live", "--checkpoint", str(tiny_run / "best.pt"), "--source", str(source), "--out", str(out),
                 "--show"]) == 0  # --show on a machine with no display must not fail
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
    from behavior.train import train

    train(load_config(None, tiny_overrides(tiny_synth, **{"model.temporal_shift": True, "train.epochs": 1})),
          tmp_path / "tsm")
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
    assert main(["live", "--checkpoint", str(tmp_path / "tsm" / "best.pt"), "--source", str(source), "--out",
                 str(tmp_path / "annotated.mp4")]) == 0
    assert "end of stream" in capsys.readouterr().out


def test_a_source_that_cannot_be_opened_is_a_clear_error(tiny_run, tmp_path, capsys):
    assert main(["live", "--checkpoint", str(tiny_run / "best.pt"), "--source", str(tmp_path / "absent.mp4"),
                 "--out", str(tmp_path / "o.mp4")]) == 2
    assert "absent.mp4: no such file" in capsys.readouterr().err
    assert main(["live", "--checkpoint", str(tiny_run / "best.pt"), "--source", "9",
                 "--out", str(tmp_path / "o.mp4")]) == 2
    assert "camera 9 cannot be opened" in capsys.readouterr().err


def test_a_stream_that_breaks_off_still_leaves_a_playable_file(tiny_run, tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (60, 48, 64, 3), dtype=np.uint8)
    source = write_video(tmp_path / "whole.mkv", frames, fps=15)  # Matroska: a cut file still plays up to the cut
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


@pytest.mark.parametrize("box, expected", [((40, 40, 60, 60), (30, 30, 70, 70)), ((0, 0, 50, 50), (0, 0, 96, 96))])
def test_roi_square_stays_inside_the_frame(box, expected):
    assert roi_square(box, 96, 128, margin=0.5) == expected

"""Shared fixtures: tiny videos the tests build themselves, and the real clips when they are present."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from behavior.data.writer import write_video

REAL_CLIPS = Path(
    os.environ.get("BEHAVIOR_REAL_CLIPS", Path(__file__).resolve().parents[2] / "shared" / "real-clips")
)


def coded_frames(num_frames: int, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 (T, H, W, 3) frames whose left half is a flat grey coding the frame number (4 grey levels
    apart, modulo 64), and whose right half is random texture: `frame_number(frame)` reads it back."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, size=(num_frames, height, width, 3), dtype=np.uint8)
    levels = (np.arange(num_frames) % 64) * 4
    frames[:, :, : width // 2, :] = levels[:, None, None, None]
    return frames


def frame_number(frame: np.ndarray) -> int:
    """Inverse of `coded_frames` (modulo 64), robust to compression."""
    width = frame.shape[1]
    return int(round(float(frame[4:-4, 4 : width // 2 - 4].mean()) / 4)) % 64


@pytest.fixture
def make_video(tmp_path):
    """`make_video(name, num_frames=20, fps=10, height=48, width=64)` writes a coded video under tmp_path."""

    def make(
        name: str = "clip.mp4",
        num_frames: int = 20,
        fps: float = 10,
        height: int = 48,
        width: int = 64,
        seed: int = 0,
    ) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_video(path, coded_frames(num_frames, height, width, seed), fps, quality=12)

    return make


@pytest.fixture
def ucf_root(tmp_path, make_video):
    """A tiny UCF101-style data set: 2 classes x 2 groups x 2 clips, with split files."""
    root = tmp_path / "UCF"
    classes = ["Walk", "HandstandPushups"]
    for ci, c in enumerate(classes):
        for g in (1, 2):
            for k in (1, 2):
                # UCF101's own quirk: the folder and the file name disagree in case.
                stem = "HandStandPushups" if c == "HandstandPushups" else c
                make_video(
                    f"UCF/{c}/v_{stem}_g{g:02d}_c{k:02d}.avi", num_frames=12, seed=100 * ci + 10 * g + k
                )
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "classInd.txt").write_text("1 Walk\n2 HandstandPushups\n")
    (splits / "trainlist01.txt").write_text(
        "Walk/v_Walk_g02_c01.avi 1\nWalk/v_Walk_g02_c02.avi 1\n"
        "HandstandPushups/v_HandStandPushups_g02_c01.avi 2\nHandstandPushups/v_HandStandPushups_g02_c02.avi 2\n"
    )
    (splits / "testlist01.txt").write_text(
        "Walk/v_Walk_g01_c01.avi\nWalk/v_Walk_g01_c02.avi\n"
        "HandstandPushups/v_HandStandPushups_g01_c01.avi\nHandstandPushups/v_HandStandPushups_g01_c02.avi\n"
    )
    return root, splits


def read_manifest() -> list[dict]:
    with open(REAL_CLIPS / "MANIFEST.tsv", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.fixture
def real_clips() -> Path:
    if not (REAL_CLIPS / "MANIFEST.tsv").is_file():
        pytest.skip(f"real clips not found at {REAL_CLIPS}")
    return REAL_CLIPS


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """The synthetic set, tiny: 5 classes x 12 clips (3 groups: train, val, test), 64x48 pixels, made once."""
    from behavior.synthetic import generate_dataset

    folder = tmp_path_factory.mktemp("synth")
    generate_dataset(folder, clips_per_class=12, difficulty="easy", seed=3, workers=2, size=(64, 48), fps=10)
    return folder


def tiny_overrides(synth_folder, **extra) -> list[str]:
    """`--set` overrides for a model and schedule small enough for a test (a few seconds on 2 cores)."""
    values = {
        "data.root": str(synth_folder / "videos"),
        "data.splits": str(synth_folder / "splits"),
        "data.num_workers": 0,
        "data.val_fraction": 0.3,
        "sampler.num_frames": 4,
        "transform.resize": 36,
        "transform.crop": 32,
        "model.width": 0.125,
        "model.dropout": 0.0,
        "train.epochs": 2,
        "train.batch_size": 4,
        "train.eval_batch_size": 8,
        "optim.warmup_epochs": 0.5,
        # Raw softmax scores and no rejection, as every run had before calibration: a model this small scores
        # every class alike, and a threshold keeping 95% of its validation clips would call some clips of every
        # test unknown. The tests of calibration and rejection train with both on (tiny_confident_run).
        "confidence.calibrate": False,
        "confidence.rejection_score": "none",
        **extra,
    }
    return [f"{k}={v}" for k, v in values.items()]


@pytest.fixture(scope="session")
def tiny_run(tiny_synth, tmp_path_factory):
    """A tiny trained run on `tiny_synth` (2 epochs), shared by the evaluation and inference tests."""
    from behavior.config import load_config
    from behavior.engine.train import train

    run = tmp_path_factory.mktemp("run")
    train(load_config(None, tiny_overrides(tiny_synth)), run)
    return run


@pytest.fixture(scope="session")
def tiny_confident_run(tiny_synth, tmp_path_factory):
    """A tiny trained run with the default confidence settings: temperature fitted, the msp score's threshold
    keeping 95% of the validation clips."""
    from behavior.config import ConfidenceConfig, load_config
    from behavior.engine.train import train

    defaults = ConfidenceConfig()
    confidence = {"confidence.calibrate": True, "confidence.rejection_score": defaults.rejection_score}
    run = tmp_path_factory.mktemp("confident")
    train(load_config(None, tiny_overrides(tiny_synth, **confidence)), run)
    return run


@pytest.fixture(scope="session")
def tiny_online_run(tiny_synth, tmp_path_factory):
    """A tiny trained run with the online temporal shift (1 epoch): frames stream through its backbone."""
    from behavior.config import load_config
    from behavior.engine.train import train

    online = {"model.temporal_shift": True, "model.shift": "online", "train.epochs": 1}
    run = tmp_path_factory.mktemp("online")
    train(load_config(None, tiny_overrides(tiny_synth, **online)), run)
    return run

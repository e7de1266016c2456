from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_overrides

from behavior.cli import main
from behavior.config import load_config
from behavior.engine.checkpoint import load_checkpoint
from behavior.engine.runtime import Distributed
from behavior.engine.train import EpochSampler, build_optimizer, build_scheduler, train
from behavior.errors import TrainingDiverged

BEHAVIOR = str(Path(sys.executable).with_name("behavior"))


def tiny_config(synth, **extra):
    return load_config(None, tiny_overrides(synth, **extra))


def weights(path):
    return load_checkpoint(path)["model"]


def test_a_run_writes_everything_a_user_looks_at(tiny_synth, tmp_path):
    run = tmp_path / "run"
    result = train(tiny_config(tiny_synth), run)
    for name in ("config.yaml", "metrics.jsonl", "curves.png", "last.pt", "best.pt"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["split"]) for r in rows] == [(1, "train"), (1, "val"), (2, "train"), (2, "val")]
    assert {"loss", "accuracy", "clips_per_s", "failed", "data_wait"} <= set(rows[0])
    assert {"top1", "mean_class_accuracy", "loss"} <= set(rows[1])
    state = load_checkpoint(run / "last.pt")
    assert {"model", "optimizer", "scheduler", "epoch", "config", "class_names"} <= set(state)
    assert state["epoch"] == 2 and state["class_names"] == ["walk", "run", "wave", "sit_down", "stand_up"]
    assert result.best_checkpoint == run / "best.pt"
    assert load_config(run / "config.yaml") == tiny_config(tiny_synth)
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny_config(tiny_synth), run)  # never overwrites a run


def test_same_seed_same_weights(tiny_synth, tmp_path):
    train(tiny_config(tiny_synth, **{"train.epochs": 1}), tmp_path / "a")
    train(tiny_config(tiny_synth, **{"train.epochs": 1}), tmp_path / "b")
    a, b = weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "b" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cpu_bf16_trains_in_bf16_where_the_cpu_has_it_and_in_fp32_elsewhere(
    tiny_synth, tmp_path, monkeypatch
):
    from behavior.engine.runtime import autocast

    cpu = torch.device("cpu")
    train(tiny_config(tiny_synth, **{"train.epochs": 1}), tmp_path / "fp32")
    fp32 = weights(tmp_path / "fp32" / "last.pt")
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert not isinstance(autocast(cpu, cpu_bf16=True), torch.autocast)
    train(tiny_config(tiny_synth, **{"train.epochs": 1, "train.cpu_bf16": True}), tmp_path / "no-bf16-cpu")
    assert all(torch.equal(fp32[k], v) for k, v in weights(tmp_path / "no-bf16-cpu" / "last.pt").items())
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert isinstance(autocast(cpu, cpu_bf16=True), torch.autocast)
    assert not isinstance(autocast(cpu, cpu_bf16=False), torch.autocast)
    train(tiny_config(tiny_synth, **{"train.epochs": 1, "train.cpu_bf16": True}), tmp_path / "bf16")
    bf16 = weights(tmp_path / "bf16" / "last.pt")
    assert all(
        v.dtype == fp32[k].dtype and torch.isfinite(v.float()).all() for k, v in bf16.items()
    )  # fp32 weights
    assert not all(torch.equal(fp32[k], v) for k, v in bf16.items())  # the steps did run in bf16


def test_resume_after_a_kill_reaches_the_same_weights(tiny_synth, tmp_path):
    overrides = tiny_overrides(tiny_synth, **{"train.epochs": 3})
    train(load_config(None, overrides), tmp_path / "straight")

    run = tmp_path / "killed"
    command = [BEHAVIOR, "train", "--config", str(tmp_path / "none.yaml"), "--out", str(run)]
    (tmp_path / "none.yaml").write_text("{}\n")
    for item in overrides:
        command += ["--set", item]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "last.pt").exists():
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert load_checkpoint(run / "last.pt")["epoch"] < 3  # killed before the end
    assert (
        main(
            [
                "train",
                "--config",
                str(tmp_path / "none.yaml"),
                "--out",
                str(run),
                "--resume",
                *sum([["--set", o] for o in overrides], []),
            ]
        )
        == 0
    )
    a, b = weights(tmp_path / "straight" / "last.pt"), weights(run / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    epochs = [
        (r["epoch"], r["split"]) for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
    ]
    assert epochs == [(e, s) for e in (1, 2, 3) for s in ("train", "val")]  # no duplicated or missing line


def test_a_nan_loss_stops_training_naming_epoch_and_step(tiny_synth, tmp_path, monkeypatch):
    from behavior.data import transforms

    real = transforms.ClipTransform.__call__

    def poisoned(self, frames, rng=None):
        clip = real(self, frames, rng)
        return clip * float("nan") if self.train else clip

    monkeypatch.setattr(transforms.ClipTransform, "__call__", poisoned)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 1, step 1"):
        train(tiny_config(tiny_synth), tmp_path / "run")


def test_broken_training_videos_are_skipped_and_counted(tiny_synth, tmp_path):
    data = tmp_path / "synth"
    shutil.copytree(tiny_synth, data)
    listed = (data / "splits" / "trainlist01.txt").read_text()
    victim = next(p for p in (data / "videos").rglob("*") if p.is_file() and p.name in listed)
    victim.write_bytes(b"\x00" * 100)
    run = tmp_path / "run"
    train(tiny_config(data, **{"data.val_fraction": 0.0, "train.epochs": 1}), run)
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert row["failed"] == 1
    with pytest.raises(Exception, match=victim.name):
        train(
            tiny_config(data, **{"data.val_fraction": 0.0, "train.epochs": 1, "data.on_error": "raise"}),
            tmp_path / "r2",
        )


def test_class_balanced_sampler_draws_classes_evenly():
    labels = [0] * 90 + [1] * 10
    weights = np.array([100 / 180, 100 / 20])
    sampler = EpochSampler(labels, seed=0, ddp=Distributed(), class_weights=weights)
    drawn = np.array(labels)[list(sampler)]
    assert 0.4 < drawn.mean() < 0.6
    shards = [list(EpochSampler(labels, 0, Distributed(rank=r, world_size=2))) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 50 and set(shards[0]).isdisjoint(shards[1])


def test_schedule_warms_up_then_decays_to_zero():
    model = torch.nn.Linear(2, 2)
    cfg = load_config(None, ["train.epochs=4", "optim.warmup_epochs=1", "optim.lr=0.1"])
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch=10)
    rates = []
    for _ in range(40):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert (
        rates[0] == pytest.approx(0.001)
        and max(rates) == pytest.approx(0.1)
        and rates.index(max(rates)) == 10
    )
    assert rates[-1] < 0.001 and all(a >= b for a, b in zip(rates[10:], rates[11:]))


@pytest.mark.skipif(
    not shutil.which("torchrun", path=str(Path(sys.executable).parent)), reason="torchrun missing"
)
def test_two_process_ddp_on_the_cpu(tiny_synth, tmp_path):
    run = tmp_path / "ddp"
    (tmp_path / "none.yaml").write_text("{}\n")
    command = [
        str(Path(sys.executable).with_name("torchrun")),
        "--standalone",
        "--nproc_per_node=2",
        "--no-python",
        BEHAVIOR,
        "train",
        "--config",
        str(tmp_path / "none.yaml"),
        "--out",
        str(run),
    ]
    for item in tiny_overrides(tiny_synth, **{"train.threads": 1}):
        command += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # torchrun and both workers
    assert process.returncode == 0, stderr[-3000:]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["split"]) for r in rows] == [(1, "train"), (1, "val"), (2, "train"), (2, "val")]
    assert load_checkpoint(run / "last.pt")["epoch"] == 2
    assert stdout.count("epoch 2/2: loss") == 1 and stdout.count("done in") == 1  # only rank 0 reports


def test_training_ends_by_fitting_the_confidence_into_both_checkpoints(tiny_confident_run, tmp_path):
    from behavior.engine.evaluate import evaluate_checkpoint

    best, last = (
        load_checkpoint(tiny_confident_run / "best.pt"),
        load_checkpoint(tiny_confident_run / "last.pt"),
    )
    for state in (best, last):
        confidence = state["confidence"]
        assert confidence["fitted_on"] == "val" and confidence["score"] == "msp"
        assert confidence["keep_known"] == 0.95 and 0 < confidence["threshold"] < 1
        assert confidence["temperature"] != 1.0  # fitted
    metrics = evaluate_checkpoint(tiny_confident_run / "best.pt", tmp_path / "val", split="val")
    assert metrics["rejection"]["known_kept"] >= 0.95  # the threshold keeps what it was chosen to keep
    assert metrics["temperature"] == best["confidence"]["temperature"]


def test_without_a_validation_split_the_threshold_comes_from_the_training_clips(tiny_synth, tmp_path):
    cfg = tiny_config(
        tiny_synth,
        **{
            "data.val_fraction": 0.0,
            "train.epochs": 1,
            "confidence.calibrate": True,
            "confidence.rejection_score": "energy",
            "confidence.keep_known": 0.8,
        },
    )
    train(cfg, tmp_path / "run")
    confidence = load_checkpoint(tmp_path / "run" / "best.pt")["confidence"]
    assert (
        confidence["fitted_on"] == "train" and confidence["temperature"] == 1.0
    )  # nothing held out to fit T
    assert confidence["score"] == "energy" and confidence["keep_known"] == 0.8
    last = load_checkpoint(tmp_path / "run" / "last.pt")["confidence"]  # one epoch: the same weights
    assert torch.equal(last.pop("prototypes"), confidence.pop("prototypes")) and last == confidence

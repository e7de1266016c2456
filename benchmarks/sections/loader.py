"""The loader never starves the model: the share of training time spent waiting for data.

Three views of the same demo recipe on the benchmark's synthetic set, each with a fresh frame cache, so the
first epoch fills it and later epochs read from it:
1. `behavior.engine.train.train` itself: `data_wait` per epoch from its metrics.jsonl;
2. our own loop over the package's `build_loader` / `EpochSampler`, timing every wait and every step;
3. supply and demand apart: the loader alone (no model) with a cold and a warm cache, and the training step
   alone on one fixed batch.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from harness import Settings, bench_config, section_result, spread, synthetic_set, table, target
from training import EpochTiming, criterion_for, timed_epoch, train_step

from behavior.data.datasets import SafeClips, load_splits
from behavior.data.loader import build_loader
from behavior.engine.runtime import Distributed
from behavior.engine.train import EpochSampler, build_datasets, build_optimizer, train
from behavior.models.classifier import build_model

TITLE = "The loader never starves the model"
THRESHOLD = 0.10  # share of the training time spent waiting for data


def fresh(folder: Path) -> Path:
    """An empty work folder (only ever one under benchmarks/work)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def package_training(cfg, out: Path) -> list[dict]:
    """`behavior.engine.train.train` on the demo recipe; its per-epoch training rows from metrics.jsonl."""
    train(cfg, out)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [row for row in rows if row["split"] == "train"]


def training_parts(cfg):
    """The package's training loader, sampler, model and optimizer, built as `behavior.engine.train.train` builds them."""
    splits = load_splits(cfg.data, seed=cfg.train.seed)
    train_set, _ = build_datasets(cfg, splits)
    sampler = EpochSampler([s.label for s in splits.train], cfg.train.seed, Distributed())
    loader = build_loader(SafeClips(train_set), cfg.train.batch_size, cfg.data.num_workers, sampler=sampler)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, splits.class_names, num_frames=cfg.sampler.num_frames)
    return train_set, sampler, loader, model, build_optimizer(model, cfg)


def own_loop(cfg, epochs: int) -> list[EpochTiming]:
    """Our own loop over the package's loader: every wait and step timed, epoch by epoch."""
    train_set, sampler, loader, model, optimizer = training_parts(cfg)
    criterion = criterion_for(cfg)
    timings = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        timings.append(timed_epoch(model, loader, optimizer, criterion, cfg))
    return timings


def loader_alone(cfg, epochs: int) -> list[float]:
    """Clips/s the loader delivers with no model to feed, epoch by epoch (the first fills the cache)."""
    train_set, sampler, loader, _, _ = training_parts(cfg)
    rates = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        started, clips = time.perf_counter(), 0
        for batch in loader:
            clips += batch.label.numel()
        rates.append(clips / (time.perf_counter() - started))
    return rates


def step_alone(cfg, repeats: int) -> list[float]:
    """Clips/s of the training step alone, on one batch from the loader used again and again."""
    train_set, sampler, loader, model, optimizer = training_parts(cfg)
    batch = next(iter(loader))
    criterion = criterion_for(cfg)
    train_step(model, batch, optimizer, criterion, cfg)  # warm-up
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        clips = train_step(model, batch, optimizer, criterion, cfg)
        rates.append(clips / (time.perf_counter() - started))
    return rates


def later(values: list[float]) -> dict | None:
    return spread(values[1:]) if len(values) > 1 else None


def run(settings: Settings) -> dict:
    data = synthetic_set(settings)
    cache_root = settings.work / "cache" / "loader"
    epochs = settings.pick(None, 2)
    package_cfg = bench_config(
        data, [f"train.epochs={epochs}"] if epochs else [], cache=fresh(cache_root / "train")
    )
    rows = package_training(package_cfg, fresh(settings.work / "runs" / "loader"))
    waits = [row["data_wait"] for row in rows]
    rates = [row["clips_per_s"] for row in rows]

    loop_epochs = settings.pick(3, 2)
    cfg = bench_config(data, cache=fresh(cache_root / "own-loop"))
    timings = own_loop(cfg, loop_epochs)
    loop_shares = [t.wait_share for t in timings]
    first_steps = [t.waits[0] for t in timings]
    step_shares = [t.step_wait_shares(skip_first=True) for t in timings]
    supply = loader_alone(bench_config(data, cache=fresh(cache_root / "loader-alone")), 2)
    demand = step_alone(cfg, settings.pick(10, 3))

    def p90(values: list[float]) -> float | None:
        return float(np.percentile(values, 90)) if values else None

    tables = [
        table(
            f"behavior.engine.train.train, demo recipe, {len(rows)} epochs",
            ["figure", "epoch 1 (cache filling)", "later epochs"],
            [
                ["data_wait (metrics.jsonl)", waits[0], later(waits)],
                ["training clips/s", rates[0], later(rates)],
            ],
        ),
        table(
            f"own loop over build_loader + EpochSampler, {loop_epochs} epochs",
            ["figure", "epoch 1 (cache filling)", "later epochs"],
            [
                ["share of the epoch spent waiting", loop_shares[0], later(loop_shares)],
                ["first step's wait, s (workers start, prefetch)", first_steps[0], later(first_steps)],
                [
                    "per-step wait share after the first step, median",
                    float(np.median(step_shares[0] or [0])),
                    later([float(np.median(s or [0])) for s in step_shares]),
                ],
                [
                    "per-step wait share after the first step, 90th percentile",
                    p90(step_shares[0]),
                    later([p90(s) or 0.0 for s in step_shares]),
                ],
                ["steps per epoch", len(timings[0].steps), len(timings[-1].steps)],
            ],
        ),
        table(
            "supply and demand, clips/s",
            ["figure", "clips/s"],
            [
                [f"loader alone, {cfg.data.num_workers} workers, cold cache (epoch 1)", supply[0]],
                [f"loader alone, {cfg.data.num_workers} workers, warm cache (epoch 2)", supply[1]],
                [
                    f"training step alone, batch {cfg.train.batch_size}, {torch.get_num_threads()} torch threads",
                    spread(demand),
                ],
            ],
        ),
    ]
    worst = max(waits)
    met = worst < THRESHOLD
    limit = ""
    if not met:
        missed = [f"epoch {i + 1} waits {100 * w:.0f}%" for i, w in enumerate(waits) if w >= THRESHOLD]
        limit = (
            f"{', '.join(missed)}; the loader alone delivers {supply[0]:.1f} clips/s while it fills the cache and "
            f"{supply[1]:.1f} clips/s from it, against {np.median(demand):.1f} clips/s that the training step "
            f"takes, and the {cfg.data.num_workers} workers share the {torch.get_num_threads()} cores with the "
            f"model (the first step of every epoch waits {np.median(first_steps):.2f} s for the prefetch)"
        )
    goal = target(
        "under 10% of each training step spent waiting for data (data_wait in metrics.jsonl)",
        worst,
        THRESHOLD,
        met,
        limit,
        first_epoch=waits[0],
        later_epochs=later(waits),
    )
    notes = [
        f"demo config: {cfg.data.num_workers} workers, frame cache {'on' if cfg.data.cache_dir else 'off'} (a "
        "fresh benchmark cache folder for each of the three measurements), batch "
        f"{cfg.train.batch_size}, T={cfg.sampler.num_frames}, {cfg.transform.crop}x{cfg.transform.crop}.",
        "data_wait is the share of an epoch's training loop spent waiting for the next batch (validation not "
        "included); the first step of each epoch includes the prefetch of the first batches.",
    ]
    return section_result(TITLE, goal, tables, notes)

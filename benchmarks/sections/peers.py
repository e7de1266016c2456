"""Against 3D CNN peers: torchvision's r3d_18 and r2plus1d_18 (randomly initialised) and the demo model, each
trained by the same loop, on the same data, for the same wall-clock budget, then evaluated on the test split.

The loop is the package's data pipeline (`ClipDataset` + `SafeClips` + `collate_clips` through `build_loader`, the
demo's frame cache filled beforehand so no model pays for it), AdamW with the demo's settings and the demo's
warm-up + cosine schedule laid over the budget instead of over epochs.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from einops import rearrange
from harness import Settings, bench_config, section_result, synthetic_set, table, target
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.video import r2plus1d_18, r3d_18
from training import cosine_by_time, criterion_for, timed_epoch

from behavior.data.datasets import ClipDataset, SafeClips, load_splits
from behavior.data.loader import build_loader
from behavior.data.transforms import ClipTransform
from behavior.engine.runtime import Distributed, eval_mode
from behavior.engine.scoring import SplitScores, summarise
from behavior.engine.train import EpochSampler, build_datasets, build_optimizer
from behavior.models.classifier import build_model
from behavior.tools.profile import count_parameters

TITLE = "Against 3D CNN peers at the same training budget"
SPEED_FACTOR = 3.0  # ours must train at least this many times faster than each peer
BUDGET_S = 150.0  # wall-clock training budget per model (the example constant)


class ChannelsFirstVideo(nn.Module):
    """torchvision's video models take (B, C, T, H, W); the data pipeline gives (B, T, C, H, W)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, clip: Tensor) -> Tensor:
        return self.model(rearrange(clip, "b t c h w -> b c t h w"))  # logits (B, K)


def contenders(cfg, class_names: list[str]) -> dict[str, nn.Module]:
    """Our demo model and the two peers, each initialised from the same seed."""
    builders = {
        f"ours: {cfg.model.backbone} x{cfg.model.width:g}{' + TSM' if cfg.model.temporal_shift else ''} + "
        f"{cfg.model.attention} attention + {cfg.model.head} head": lambda: build_model(
            cfg.model, class_names, num_frames=cfg.sampler.num_frames
        ),
        "r3d_18 (weights=None)": lambda: ChannelsFirstVideo(
            r3d_18(weights=None, num_classes=len(class_names))
        ),
        "r2plus1d_18 (weights=None)": lambda: ChannelsFirstVideo(
            r2plus1d_18(weights=None, num_classes=len(class_names))
        ),
    }
    models = {}
    for name, build in builders.items():
        torch.manual_seed(cfg.train.seed)
        models[name] = build()
    return models


def forward_gflops(model: nn.Module, cfg) -> float:
    size = cfg.transform.crop
    counter = FlopCounterMode(display=False)
    model.eval()
    with torch.no_grad(), counter:
        model(torch.zeros(1, cfg.sampler.num_frames, 3, size, size))
    return counter.get_total_flops() / 1e9


def fill_cache(cfg, splits) -> float:
    """Decode every training video into the frame cache once, before any model's clock starts; seconds taken."""
    train_set, _ = build_datasets(cfg, splits)
    started = time.perf_counter()
    for _ in build_loader(SafeClips(train_set), cfg.train.batch_size, cfg.data.num_workers):
        pass
    return time.perf_counter() - started


def train_within(model: nn.Module, cfg, splits, budget_s: float) -> dict:
    """Train until the budget is spent (the step running at the deadline finishes); clips, seconds and epochs."""
    train_set, _ = build_datasets(cfg, splits)
    sampler = EpochSampler([s.label for s in splits.train], cfg.train.seed, Distributed())
    loader = build_loader(SafeClips(train_set), cfg.train.batch_size, cfg.data.num_workers, sampler=sampler)
    optimizer = build_optimizer(model, cfg)
    criterion = criterion_for(cfg)
    started = time.perf_counter()
    deadline = started + budget_s
    set_lr = cosine_by_time(optimizer, cfg, started, budget_s)
    clips, step_seconds, epochs = 0, 0.0, 0.0
    while time.perf_counter() < deadline:
        sampler.set_epoch(int(epochs))
        train_set.set_epoch(int(epochs))
        timing = timed_epoch(model, loader, optimizer, criterion, cfg, before_step=set_lr, deadline=deadline)
        clips += timing.clips
        step_seconds += sum(timing.steps)
        epochs += len(timing.steps) / len(loader)
    seconds = time.perf_counter() - started
    return {
        "clips": clips,
        "seconds": seconds,
        "epochs": epochs,
        "clips_per_s": clips / seconds,
        "step_clips_per_s": clips / max(step_seconds, 1e-9),
    }


def test_accuracy(model: nn.Module, cfg, splits) -> dict:
    """Test top-1 and mean-class accuracy, read as `behavior evaluate` reads the test split (no frame cache)."""
    test_set = ClipDataset(
        splits.test,
        cfg.sampler,
        ClipTransform(cfg.transform, train=False),
        train=False,
        seed=cfg.train.seed,
        backend=cfg.data.backend,
        decode_short_side=cfg.transform.resize if cfg.data.decode_at_resize else None,
    )
    logits, targets, indices, failures = [], [], [], []
    with eval_mode(model):  # the peers have no per-frame halves to score with: their logits alone
        for batch in build_loader(SafeClips(test_set), cfg.train.eval_batch_size, cfg.data.num_workers):
            failures += batch.failures
            if batch.label.numel():
                logits.append(model(batch.clip)[:, None].float().numpy())  # (B, 1, K)
                targets.append(batch.label.numpy())
                indices.append(batch.index.numpy())
    scores = SplitScores(np.concatenate(logits), np.concatenate(targets), np.concatenate(indices), failures)
    return summarise(scores, splits.class_names, len(test_set))


def run(settings: Settings) -> dict:
    data = synthetic_set(settings)
    cfg = bench_config(data, cache=settings.work / "cache" / "peers")
    splits = load_splits(cfg.data, seed=cfg.train.seed)
    budget = settings.pick(BUDGET_S, 20.0)
    cache_seconds = fill_cache(cfg, splits)
    rows, results = [], {}
    for name, model in contenders(cfg, splits.class_names).items():
        print(f"  training {name} for {budget:g} s", flush=True)
        trained = train_within(model, cfg, splits, budget)
        metrics = test_accuracy(model, cfg, splits)
        results[name] = {
            **trained,
            "top1": metrics["top1"],
            "mean_class_accuracy": metrics["mean_class_accuracy"],
        }
        rows.append(
            [
                name,
                count_parameters(model) / 1e6,
                forward_gflops(model, cfg),
                metrics["top1"],
                metrics["mean_class_accuracy"],
                trained["clips_per_s"],
                trained["step_clips_per_s"],
                trained["epochs"],
                trained["seconds"],
            ]
        )
    ours, *peers = results
    accurate = all(results[ours]["top1"] >= results[p]["top1"] for p in peers)
    speed = min(results[ours]["clips_per_s"] / results[p]["clips_per_s"] for p in peers)
    fast = speed >= SPEED_FACTOR
    limits = []
    if not accurate:
        limits.append(
            "test top-1 " + ", ".join(f"{n.split(':')[0]} {r['top1']:.3f}" for n, r in results.items())
        )
    if not fast:
        bound = (
            "the loader"
            if results[ours]["step_clips_per_s"] > 1.5 * results[ours]["clips_per_s"]
            else "its own steps"
        )
        limits.append(
            f"ours trains only {speed:.1f}x as fast as the faster peer, limited by {bound} "
            f"({results[ours]['clips_per_s']:.1f} clips/s overall, {results[ours]['step_clips_per_s']:.1f} "
            "clips/s counting only the steps)"
        )
    goal = target(
        f"ours at least as accurate (test top-1) as each peer, and at least {SPEED_FACTOR:g}x their training "
        "clips/s",
        speed,
        SPEED_FACTOR,
        accurate and fast,
        "; ".join(limits),
        accurate=accurate,
        speed_ratio=speed,
    )
    tables = [
        table(
            f"{budget:g} s of training each, {len(splits.train)} training and {len(splits.test)} test videos, "
            f"T={cfg.sampler.num_frames}, {cfg.transform.crop}x{cfg.transform.crop}, batch {cfg.train.batch_size}",
            [
                "model",
                "params, M",
                "GFLOPs per clip (forward)",
                "test top-1",
                "test mean-class accuracy",
                "training clips/s",
                "clips/s counting only the steps",
                "epochs done",
                "seconds trained",
            ],
            rows,
        )
    ]
    notes = [
        f"one seed ({cfg.train.seed}) per model; all three share the data, the loader ({cfg.data.num_workers} "
        f"workers, frame cache filled beforehand in {cache_seconds:.1f} s), AdamW (lr {cfg.optim.lr:g}, weight "
        f"decay {cfg.optim.weight_decay:g}), label smoothing {cfg.optim.label_smoothing:g}, gradient clipping "
        f"{cfg.optim.grad_clip:g}, and the warm-up + cosine schedule over the budget.",
        "torchvision models are wrapped to take (B, T, C, H, W) clips; they see the same normalised 3-channel "
        "frames as ours.",
        "training clips/s is clips / wall-clock training time (data waits included); the next column leaves the "
        "waits out.",
    ]
    return section_result(TITLE, goal, tables, notes)

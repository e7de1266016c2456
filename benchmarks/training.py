"""One training loop for the sections that time training themselves (`loader`, `peers`): the package's data
pipeline (`ClipDataset` + `SafeClips` + `collate_clips` through `behavior.data.loader.build_loader`), the demo's loss,
optimizer and gradient clipping, and a clock around every wait for data and every step."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from behavior.data.datasets import ClipBatch


@dataclass
class EpochTiming:
    """Seconds spent waiting for each batch and computing each step, and the clips trained on."""

    waits: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)
    clips: int = 0

    @property
    def seconds(self) -> float:
        return sum(self.waits) + sum(self.steps)

    @property
    def wait_share(self) -> float:
        return sum(self.waits) / max(self.seconds, 1e-9)

    def step_wait_shares(self, skip_first: bool = False) -> list[float]:
        """Per step: the share of (wait + step) spent waiting."""
        pairs = list(zip(self.waits, self.steps))[1 if skip_first else 0 :]
        return [w / max(w + s, 1e-9) for w, s in pairs]


def criterion_for(cfg) -> nn.Module:
    return nn.CrossEntropyLoss(label_smoothing=cfg.optim.label_smoothing)


def train_step(
    model: nn.Module, batch: ClipBatch, optimizer: torch.optim.Optimizer, criterion: nn.Module, cfg
) -> int:
    """One optimisation step on a batch as `behavior.engine.train.train_one_epoch` takes it; returns the clips used."""
    if batch.label.numel() == 0:
        return 0
    logits = model(batch.clip)  # (B, K)
    loss = criterion(logits.float(), batch.label)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.optim.grad_clip:
        nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
    optimizer.step()
    return int(batch.label.shape[0])


def timed_epoch(
    model: nn.Module,
    loader,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    cfg,
    before_step: Callable[[], None] | None = None,
    deadline: float | None = None,
) -> EpochTiming:
    """One pass over `loader` (or up to `deadline`, a `time.perf_counter()` value), timing each wait and step."""
    model.train()
    timing = EpochTiming()
    batches = iter(loader)
    while True:
        started = time.perf_counter()
        batch = next(batches, None)
        received = time.perf_counter()
        if batch is None:
            return timing
        if before_step is not None:
            before_step()
        timing.clips += train_step(model, batch, optimizer, criterion, cfg)
        finished = time.perf_counter()
        timing.waits.append(received - started)
        timing.steps.append(finished - received)
        if deadline is not None and finished >= deadline:
            return timing


def cosine_by_time(
    optimizer: torch.optim.Optimizer, cfg, started: float, budget_s: float
) -> Callable[[], None]:
    """The demo's schedule (linear warm-up from lr/100, cosine to 0) laid over a wall-clock budget instead of
    epochs x steps: the warm-up takes the share of the budget that warmup_epochs takes of the demo's epochs."""
    peak = cfg.optim.lr
    warmup = min(cfg.optim.warmup_epochs / cfg.train.epochs, 0.99)

    def set_lr() -> None:
        progress = min((time.perf_counter() - started) / budget_s, 1.0)
        if progress < warmup:
            factor = 0.01 + 0.99 * progress / warmup
        else:
            factor = 0.5 * (1.0 + math.cos(math.pi * (progress - warmup) / (1.0 - warmup)))
        for group in optimizer.param_groups:
            group["lr"] = peak * factor

    return set_lr

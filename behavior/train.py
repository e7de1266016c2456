"""`behavior train`: a plain loop, read top to bottom: `train_one_epoch`, then `evaluate`, then checkpoint.

Run it on one process, or under `torchrun --nproc_per_node=N --no-python behavior train ...` for DDP (gloo
on the CPU, nccl on a GPU): each process trains on its shard of every epoch, validation is sharded and
gathered, and only rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from behavior.checkpoint import load_checkpoint, save_checkpoint
from behavior.config import Config, config_to_dict, save_config
from behavior.datasets import ClipDataset, DataSplits, SafeClips, build_dataset, collate_clips, load_splits
from behavior.evaluate import SplitScores, autocast_for, score_loader, summarise
from behavior.model import build_model


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and step."""


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup_distributed(device_kind: str) -> Distributed:
    """Join the process group that torchrun describes in the environment; one process needs nothing."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    backend = "nccl" if device_kind == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(cfg: Config, ddp: Distributed) -> torch.device:
    wanted = cfg.train.device
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device=cuda, but no CUDA device is available; use train.device=auto or cpu")
    if wanted == "cpu" or (wanted == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    torch.cuda.set_device(ddp.local_rank)
    return torch.device("cuda", ddp.local_rank)


class EpochSampler(Sampler[int]):
    """The training order of one epoch, shared by every rank and cut into equal shards.

    Shuffled by a generator seeded from (seed, epoch), so a resumed run sees the same order. With
    `class_weights`, indices are drawn with replacement in proportion to their class weight, so rare
    classes are seen as often as common ones."""

    def __init__(self, labels: list[int], seed: int, ddp: Distributed, class_weights: np.ndarray | None = None):
        self.labels = np.asarray(labels)
        self.seed = seed
        self.ddp = ddp
        self.weights = None if class_weights is None else class_weights[self.labels] / class_weights[self.labels].sum()
        self.epoch = 0
        self.per_rank = math.ceil(len(self.labels) / ddp.world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch, 7])
        total = self.per_rank * self.ddp.world_size
        if self.weights is None:
            order = rng.permutation(len(self.labels))
            order = np.concatenate([order, order[: total - len(order)]])  # pad so every rank gets as many
        else:
            order = rng.choice(len(self.labels), size=total, replace=True, p=self.weights)
        return iter(order[self.ddp.rank :: self.ddp.world_size].tolist())

    def __len__(self) -> int:
        return self.per_rank


def class_weights_of(labels: list[int], num_classes: int) -> np.ndarray:
    """float (K,): N / (K * count) per class, 0 for a class without videos."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return np.divide(len(labels), num_classes * counts, out=np.zeros(num_classes), where=counts > 0)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # decoding workers must not compete with the model for cores


def build_loader(dataset: ClipDataset, cfg: Config, batch_size: int, sampler=None, on_error: str = "skip") -> DataLoader:
    workers = cfg.data.num_workers
    return DataLoader(
        SafeClips(dataset, on_error),
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_clips,
        worker_init_fn=_worker_init if workers else None,
        # Workers start afresh each epoch: persistent ones would keep the data set as it was when they started, so
        # `set_epoch` (the seed of sampling and augmentation) would never reach them, and a resumed run would
        # draw other clips than an uninterrupted one.
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
        pin_memory=torch.cuda.is_available(),
    )


def build_datasets(cfg: Config, splits: DataSplits) -> tuple[ClipDataset, ClipDataset]:
    """Training and validation sets; both read through the frame cache when `data.cache_dir` is set."""
    return build_dataset(splits.train, cfg, train=True, cached=True), build_dataset(splits.val, cfg, train=False, cached=True)


def build_optimizer(model: nn.Module, cfg: Config) -> torch.optim.Optimizer:
    """No weight decay on biases and norm layers, as in timm and torchvision's references."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optim.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.optim.lr, momentum=cfg.optim.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.optim.lr)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: Config, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from lr/100, then cosine decay to 0 at the last step (stepped once per step)."""
    total = cfg.train.epochs * steps_per_epoch
    warmup = min(int(cfg.optim.warmup_epochs * steps_per_epoch), total - 1)

    def factor(step: int) -> float:
        if step < warmup:
            return 0.01 + 0.99 * step / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class EpochStats:
    loss: float
    accuracy: float
    clips: int
    seconds: float
    data_wait: float  # share of the epoch spent waiting for the loader
    failures: list
    durations: list[float]  # seconds of every training video seen (this process)


def cpu_autocast(requested: bool):
    """bf16 autocast for a CPU training step when `train.cpu_bf16` asks for it and the CPU computes bf16 natively
    (measured here: 2.5x the fp32 training-step clips/s of the demo model, `make bench`); fp32 otherwise, where bf16 would be emulated and slow.
    Validation, evaluation, prediction and export always run fp32."""
    if requested and _cpu_has_native_bf16():
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
    return nullcontext()


def _cpu_has_native_bf16() -> bool:
    try:  # oneDNN's own check (AVX512-BF16 or AMX); a private op, so a torch without it counts as "no"
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def train_one_epoch(model, loader, optimizer, scheduler, criterion, device, epoch: int, cfg: Config,
                    ddp: Distributed) -> EpochStats:
    model.train()
    loss_sum = correct = clips = 0
    waited = 0.0
    failures, durations = [], []
    # fp16 autocast (a GPU without bf16) needs loss scaling; bf16 and fp32 do not, and the scaler is then a no-op.
    fp16 = device.type == "cuda" and cfg.train.amp and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler(device.type, enabled=fp16)
    started = last = time.perf_counter()
    progress = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", unit="step", leave=False,
                    disable=not ddp.is_main, dynamic_ncols=True)
    for step, batch in enumerate(progress):
        waited += time.perf_counter() - last
        failures += batch.failures
        if batch.failures and cfg.data.on_error == "raise":
            raise ValueError(f"{batch.failures[0].reason} (data.on_error=raise stops at the first video that cannot be "
                             "decoded; data.on_error=skip skips and counts it)")
        durations += [video["duration_s"] for video in batch.videos]
        if batch.label.numel() == 0:  # every clip of the batch failed to decode: nothing to learn from
            scheduler.step()
            last = time.perf_counter()
            continue
        clip = batch.clip.to(device, non_blocking=True)  # (B, T, C, H, W)
        label = batch.label.to(device, non_blocking=True)  # (B,)
        with autocast_for(device, cfg.train.amp) if device.type == "cuda" else cpu_autocast(cfg.train.cpu_bf16):
            logits = model(clip)  # (B, K)
            loss = criterion(logits.float(), label)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}: training "
                                   "stopped; lower optim.lr or check the data")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.optim.grad_clip:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        batch_size = label.shape[0]
        loss_sum += loss.item() * batch_size
        correct += (logits.argmax(dim=1) == label).sum().item()
        clips += batch_size
        elapsed = time.perf_counter() - started
        progress.set_postfix(loss=f"{loss_sum / clips:.3f}", clips_s=f"{clips * ddp.world_size / elapsed:.1f}")
        last = time.perf_counter()
    progress.close()
    seconds = time.perf_counter() - started
    totals = torch.tensor([loss_sum, correct, clips, len(failures)], dtype=torch.float64)
    if ddp.enabled:
        dist.all_reduce(totals)
    loss_sum, correct, clips, _ = totals.tolist()
    return EpochStats(loss_sum / max(clips, 1), correct / max(clips, 1), int(clips), seconds,
                      waited / max(seconds, 1e-9), failures, durations)


def evaluate(model, dataset: ClipDataset, cfg: Config, device, ddp: Distributed) -> SplitScores:
    """Scores of every video of `dataset`; under DDP each rank scores a shard and rank 0 gathers them."""
    shard = list(range(ddp.rank, len(dataset), ddp.world_size))
    loader = build_loader(dataset, cfg, cfg.train.eval_batch_size, sampler=shard)
    scores = score_loader(model.module if ddp.enabled else model, loader, device, cfg.train.amp)
    if not ddp.enabled:
        return scores
    gathered = [None] * ddp.world_size
    dist.all_gather_object(gathered, scores)
    order = np.argsort(np.concatenate([s.indices for s in gathered]), kind="stable")
    return SplitScores(np.concatenate([s.clip_scores for s in gathered])[order],
                       np.concatenate([s.targets for s in gathered])[order],
                       np.concatenate([s.indices for s in gathered])[order],
                       [f for s in gathered for f in s.failures])


def _log(path: Path, row: dict) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(row) + "\n")


def _drop_rows_after(path: Path, epoch: int) -> None:
    """On resume, forget log lines of epochs that the checkpoint does not hold (a kill came first), and a line
    that a kill cut short."""

    def kept(line: str) -> bool:
        try:
            return json.loads(line)["epoch"] <= epoch
        except (json.JSONDecodeError, KeyError, TypeError):
            return False

    if path.exists():
        temporary = path.with_name(f".{path.name}.tmp")  # replaced in one step: a kill now cannot empty the log
        temporary.write_text("".join(line + "\n" for line in path.read_text().splitlines() if kept(line)))
        os.replace(temporary, path)


def checkpoint_state(model, optimizer, scheduler, epoch: int, cfg: Config, class_names, best: float, metrics: dict,
                     clip_seconds: float) -> dict:
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,  # epochs completed
        "config": config_to_dict(cfg),
        "class_names": list(class_names),
        "best_mean_class_accuracy": best,
        "metrics": metrics,
        "clip_seconds": clip_seconds,  # median length of the training videos: the span live mode buffers
    }


@dataclass
class TrainResult:
    out_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    best_mean_class_accuracy: float
    epochs_run: int
    seconds: float
    is_main: bool = True  # False on the other ranks of a torchrun job, which report nothing


def train(cfg: Config, out_dir: str | os.PathLike, resume: bool = False) -> TrainResult:
    """Train `cfg`, writing config.yaml, metrics.jsonl, TensorBoard events, curves.png, last.pt and best.pt."""
    started = time.perf_counter()
    ddp = setup_distributed("cuda" if cfg.train.device != "cpu" and torch.cuda.is_available() else "cpu")
    device = resolve_device(cfg, ddp)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    out = Path(out_dir)
    last_path, best_path, log_path = out / "last.pt", out / "best.pt", out / "metrics.jsonl"
    if ddp.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if not resume and last_path.exists():
            raise FileExistsError(f"{out} already holds a run (last.pt); pass --resume to continue it, or choose "
                                  "another --out")
        if resume and not last_path.exists():
            raise FileNotFoundError(f"--resume: {last_path} does not exist")
        if not resume:
            _drop_rows_after(log_path, 0)  # lines of a run killed before its first checkpoint
        save_config(cfg, out / "config.yaml")

    splits = load_splits(cfg.data, seed=cfg.train.seed)
    if splits.missing and ddp.is_main:
        print(f"warning: {len(splits.missing)} listed videos are missing from disk and are left out, e.g. "
              f"{splits.missing[0][0]}:{splits.missing[0][1]}: {splits.missing[0][2]}")
    train_set, val_set = build_datasets(cfg, splits)
    num_classes = len(splits.class_names)

    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, splits.class_names, num_frames=cfg.sampler.num_frames).to(device)
    if device.type == "cuda" and cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    weights = class_weights_of([s.label for s in splits.train], num_classes)
    epoch_sampler = EpochSampler([s.label for s in splits.train], cfg.train.seed, ddp,
                                 weights if cfg.train.class_balance == "sampler" else None)
    # Failures come back from the workers as values, also with data.on_error=raise (train_one_epoch raises): an
    # exception raised inside a worker would reach the user as a traceback, not as a message naming the video.
    train_loader = build_loader(train_set, cfg, cfg.train.batch_size, sampler=epoch_sampler)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, len(train_loader))
    loss_weights = torch.tensor(weights, dtype=torch.float32, device=device) if cfg.train.class_balance == "weights" else None
    criterion = nn.CrossEntropyLoss(weight=loss_weights, label_smoothing=cfg.optim.label_smoothing)

    first_epoch, best, clip_seconds = 0, -1.0, 0.0
    if resume:
        state = load_checkpoint(last_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        first_epoch, best, clip_seconds = state["epoch"], state["best_mean_class_accuracy"], state["clip_seconds"]
        if ddp.is_main:
            _drop_rows_after(log_path, state["epoch"])
            print(f"resuming {out} after epoch {first_epoch} of {cfg.train.epochs}")
    train_model = nn.parallel.DistributedDataParallel(model) if ddp.enabled else model

    writer = None
    if ddp.is_main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tensorboard"), purge_step=first_epoch)
    if ddp.is_main:
        print(f"training {cfg.model.backbone} + {cfg.model.head} head on {len(splits.train)} videos "
              f"({len(splits.val)} for validation) of {num_classes} classes, {cfg.train.epochs} epochs x "
              f"{len(train_loader)} steps, on {device}{f' x {ddp.world_size} processes' if ddp.enabled else ''}")

    for epoch in range(first_epoch, cfg.train.epochs):
        torch.manual_seed(cfg.train.seed * 1000 + epoch)  # dropout: the same on a resumed run
        epoch_sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        stats = train_one_epoch(train_model, train_loader, optimizer, scheduler, criterion, device, epoch, cfg, ddp)
        if not clip_seconds and stats.durations:
            clip_seconds = float(np.median(stats.durations))
        row = {"epoch": epoch + 1, "split": "train", "loss": stats.loss, "accuracy": stats.accuracy,
               "clips": stats.clips, "clips_per_s": stats.clips / stats.seconds, "data_wait": stats.data_wait,
               "failed": len(stats.failures), "lr": optimizer.param_groups[0]["lr"], "seconds": stats.seconds}
        val_row = {}
        if len(val_set):
            scores = evaluate(train_model, val_set, cfg, device, ddp)
            if ddp.is_main:
                summary = summarise(scores, splits.class_names, len(val_set))
                val_loss = float(nn.functional.nll_loss(torch.log(torch.from_numpy(scores.video_scores).clamp_min(1e-8)),
                                                        torch.from_numpy(scores.targets)))
                val_row = {"epoch": epoch + 1, "split": "val", "loss": val_loss, "top1": summary["top1"],
                           "mean_class_accuracy": summary["mean_class_accuracy"], "macro_f1": summary["macro_f1"],
                           "failed": summary["num_failed"]}
        if ddp.is_main:
            _log(log_path, row)
            for failure in stats.failures:
                print(f"skipped: {failure.reason}")
            if val_row:
                _log(log_path, val_row)
            for key in ("loss", "accuracy", "clips_per_s", "data_wait", "lr"):
                writer.add_scalar(f"train/{key}", row[key], epoch + 1)
            for key in ("loss", "top1", "mean_class_accuracy"):
                if key in val_row:
                    writer.add_scalar(f"val/{key}", val_row[key], epoch + 1)
            writer.flush()
            score = val_row.get("mean_class_accuracy", stats.accuracy)
            improved = score > best
            best = max(best, score)
            state = checkpoint_state(model, optimizer, scheduler, epoch + 1, cfg, splits.class_names, best,
                                     {"train": row, "val": val_row}, clip_seconds)
            # best.pt first: a kill between the two writes then leaves the previous last.pt, and the resumed run
            # redoes this epoch and writes best.pt again (the other order loses this epoch's best.pt for good)
            if improved:
                save_checkpoint(state, best_path)
            save_checkpoint(state, last_path)
            from behavior.plots import plot_training_curves

            plot_training_curves(log_path, out / "curves.png")
            val_text = (f", val top-1 {val_row['top1']:.3f}, mean-class {val_row['mean_class_accuracy']:.3f}"
                        if val_row else "")
            print(f"epoch {epoch + 1}/{cfg.train.epochs}: loss {stats.loss:.3f}, train acc {stats.accuracy:.3f}"
                  f"{val_text}, {row['clips_per_s']:.1f} clips/s, data wait {100 * stats.data_wait:.0f}%, "
                  f"{row['failed']} videos skipped{' *' if improved else ''}", flush=True)
        if ddp.enabled:
            dist.barrier()
    if writer is not None:
        writer.close()
    if ddp.enabled:
        dist.barrier()
        dist.destroy_process_group()
    return TrainResult(out, best_path, last_path, best, cfg.train.epochs - first_epoch, time.perf_counter() - started,
                       ddp.is_main)

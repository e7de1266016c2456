"""`behavior train`: a plain loop, read top to bottom: `train_one_epoch`, then validation, then checkpoint.

`train()` is a short sequence of named steps: make the run folder, build what training needs, resume from
last.pt, then per epoch train, validate, save and log, and at the end fit the scores' temperature and the
rejection threshold (`calibrate`). Run it on one process, or under
`torchrun --nproc_per_node=N --no-python behavior train ...` for DDP (gloo on the CPU, nccl on a GPU): each
process trains on its shard of every epoch, validation is sharded and gathered, and only rank 0 writes
checkpoints and logs.

Over 400 lines because a training run's steps (run folder, build, resume, epoch, validate, save, calibrate) are
kept together so that the loop reads top to bottom; the run log, scoring and checkpoints live in their own
modules.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from behavior.config import Config, config_to_dict, save_config
from behavior.data.datasets import ClipDataset, DataSplits, SafeClips, build_dataset, class_order, load_splits
from behavior.data.feature_cache import FeatureClips, FeatureSource, feature_source, prepare
from behavior.data.loader import build_loader
from behavior.data.splits import VideoSample
from behavior.engine.checkpoint import load_checkpoint, save_checkpoint
from behavior.engine.confidence import Confidence, fit_confidence
from behavior.engine.outliers import made_up_outliers, uniform_loss
from behavior.engine.rejection import class_prototypes
from behavior.engine.runlog import RunLog
from behavior.engine.runtime import Distributed, autocast, choose_device, setup_distributed
from behavior.engine.scoring import score_dataset, summarise
from behavior.errors import CheckpointError, InputNotFound, OutputExists, TrainingDiverged, VideoError
from behavior.models.classifier import CachedForward, ClipClassifier, build_model


class EpochSampler(Sampler[int]):
    """The training order of one epoch, shared by every rank and cut into equal shards.

    Shuffled by a generator seeded from (seed, epoch), so a resumed run sees the same order. With
    `class_weights`, indices are drawn with replacement in proportion to their class weight, so rare
    classes are seen as often as common ones."""

    def __init__(
        self, labels: list[int], seed: int, ddp: Distributed, class_weights: np.ndarray | None = None
    ):
        self.labels = np.asarray(labels)
        self.seed = seed
        self.ddp = ddp
        self.weights = (
            None if class_weights is None else class_weights[self.labels] / class_weights[self.labels].sum()
        )
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


def build_optimizer(
    model: nn.Module, cfg: Config, pretrained: Sequence[nn.Parameter] = ()
) -> torch.optim.Optimizer:
    """The trainable weights in groups: no weight decay on biases and norm layers (as in timm and torchvision's
    references), and the `pretrained` ones (`ClipClassifier.pretrained_parameters()`) at optim.lr x
    optim.pretrained_lr_scale."""
    pretrained = {id(p) for p in pretrained}
    groups = []
    for is_pretrained in (False, True):
        scale = cfg.optim.pretrained_lr_scale if is_pretrained else 1.0
        chosen = [p for p in model.parameters() if p.requires_grad and (id(p) in pretrained) == is_pretrained]
        decay, no_decay = [p for p in chosen if p.ndim > 1], [p for p in chosen if p.ndim <= 1]
        groups += [
            {"params": decay, "weight_decay": cfg.optim.weight_decay, "lr": cfg.optim.lr * scale},
            {"params": no_decay, "weight_decay": 0.0, "lr": cfg.optim.lr * scale},
        ]
    groups = [group for group in groups if group["params"]]
    if cfg.optim.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.optim.lr, momentum=cfg.optim.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.optim.lr)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: Config, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
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


def train_one_epoch(
    model, loader, optimizer, scheduler, criterion, device, epoch: int, cfg: Config, ddp: Distributed
) -> EpochStats:
    model.train()
    loss_sum = correct = clips = 0
    waited = 0.0
    failures, durations = [], []
    # fp16 autocast (a GPU without bf16) needs loss scaling; bf16 and fp32 do not, and the scaler is then a no-op.
    fp16 = device.type == "cuda" and cfg.train.amp and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler(device.type, enabled=fp16)
    exposure = cfg.confidence.outlier_exposure
    outlier_generator = torch.Generator().manual_seed(cfg.train.seed * 1_000_003 + epoch * 1_009 + ddp.rank)
    started = last = time.perf_counter()
    progress = tqdm(
        loader,
        desc=f"epoch {epoch + 1}/{cfg.train.epochs}",
        unit="step",
        leave=False,
        disable=not ddp.is_main,
        dynamic_ncols=True,
    )
    for step, batch in enumerate(progress):
        waited += time.perf_counter() - last
        failures += batch.failures
        if batch.failures and cfg.data.on_error == "raise":
            failure = batch.failures[0]
            raise VideoError(
                failure.path,
                f"{failure.reason.removeprefix(failure.path + ': ')} (data.on_error=raise stops at the first "
                "video that cannot be decoded; data.on_error=skip skips and counts it)",
            )
        durations += [video["duration_s"] for video in batch.videos]
        if batch.label.numel() == 0:  # every clip of the batch failed to decode: nothing to learn from
            scheduler.step()
            last = time.perf_counter()
            continue
        clip = batch.clip.to(device, non_blocking=True)  # (B, T, C, H, W)
        label = batch.label.to(device, non_blocking=True)  # (B,)
        batch_size = label.shape[0]
        if exposure > 0:  # made-up outliers ride in the same forward, after the batch's clips
            count = max(1, round(batch_size * cfg.confidence.outlier_share))
            clip = torch.cat([clip, made_up_outliers(clip, count, outlier_generator)])  # (B + count, T, ...)
        with autocast(device, cfg.train.amp, cfg.train.cpu_bf16):
            logits = model(clip)  # (B, K), or (B + count, K) with outliers
            outlier_logits, logits = logits[batch_size:], logits[:batch_size]
            loss = criterion(logits.float(), label)
            if exposure > 0:
                loss = loss + exposure * uniform_loss(outlier_logits)
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}: training "
                "stopped; lower optim.lr or check the data"
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.optim.grad_clip:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        loss_sum += loss.item() * batch_size
        correct += (logits.argmax(dim=1) == label).sum().item()
        clips += batch_size
        elapsed = time.perf_counter() - started
        progress.set_postfix(
            loss=f"{loss_sum / clips:.3f}", clips_s=f"{clips * ddp.world_size / elapsed:.1f}"
        )
        last = time.perf_counter()
    progress.close()
    seconds = time.perf_counter() - started
    totals = torch.tensor([loss_sum, correct, clips, len(failures)], dtype=torch.float64)
    if ddp.enabled:
        dist.all_reduce(totals)
    loss_sum, correct, clips, _ = totals.tolist()
    return EpochStats(
        loss_sum / max(clips, 1),
        correct / max(clips, 1),
        int(clips),
        seconds,
        waited / max(seconds, 1e-9),
        failures,
        durations,
    )


@dataclass
class RunFolder:
    """The files of a run: RUN/config.yaml, metrics.jsonl, tensorboard/, curves.png, last.pt, best.pt."""

    path: Path

    @property
    def last(self) -> Path:
        return self.path / "last.pt"

    @property
    def best(self) -> Path:
        return self.path / "best.pt"


def prepare_run_folder(out_dir: str | os.PathLike, cfg: Config, resume: bool, ddp: Distributed) -> RunFolder:
    """The run folder, checked (a new run never overwrites one, a resumed one needs last.pt), with the resolved
    config written into it (rank 0 only)."""
    run = RunFolder(Path(out_dir))
    if ddp.is_main:
        run.path.mkdir(parents=True, exist_ok=True)
        if not resume and run.last.exists():
            raise OutputExists(
                f"{run.path} already holds a run (last.pt); pass --resume to continue it, or choose another --out"
            )
        if resume and not run.last.exists():
            raise InputNotFound(f"--resume: {run.last} does not exist")
        save_config(cfg, run.path / "config.yaml")
    return run


@dataclass
class Training:
    """Everything one training run works with, built from its config by `build_training`."""

    splits: DataSplits  # labels in the order of class_names
    class_names: list[str]  # the model's classes: an earlier run's first (--init-from), then new ones
    train_set: ClipDataset | FeatureClips
    val_set: ClipDataset | FeatureClips
    model: ClipClassifier
    forward: nn.Module  # what training and validation run: the model, or its part after the feature cache
    workers: int  # loader processes: decoding clips, or none for cached features (a memory-mapped read)
    epoch_sampler: EpochSampler
    loader: DataLoader
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    criterion: nn.Module
    lineage: list[dict]  # the earlier runs it grew from (--init-from): {"checkpoint", "class_names"} each


def build_datasets(cfg: Config, splits: DataSplits) -> tuple[ClipDataset, ClipDataset]:
    """Training and validation sets; both read through the frame cache when `data.cache_dir` is set."""
    return (
        build_dataset(splits.train, cfg, train=True, cached=True),
        build_dataset(splits.val, cfg, train=False, cached=True),
    )


def start_from(model: ClipClassifier, path: Path) -> list[dict]:
    """Load an earlier run's weights (`--init-from`) into `model`: every weight, but the classifier grows, keeping
    the rows of the classes the earlier run knew (new rows keep their initialisation). Returns the lineage the
    new checkpoint records: the earlier run's own, then the earlier run."""
    state = load_checkpoint(path)
    own = model.state_dict()
    earlier = state["model"]
    grows = ("head.fc.weight", "head.fc.bias")
    problems = sorted(set(own) ^ set(earlier))
    problems += [k for k in earlier if k in own and earlier[k].shape != own[k].shape and k not in grows]
    if problems:
        raise CheckpointError(
            f"--init-from {path}: its model differs from the one this config describes (e.g. {', '.join(problems[:3])});"
            " start from a run with the same model.* settings"
        )
    for key in grows:
        rows = earlier[key].shape[0]
        own[key][:rows] = earlier[key]
    model.load_state_dict({**earlier, **{k: own[k] for k in grows}})
    return [*state.get("lineage", []), {"checkpoint": str(path), "class_names": list(state["class_names"])}]


def build_training(
    cfg: Config,
    device: torch.device,
    ddp: Distributed,
    init_from: Path | None = None,
    classes_from: Path | None = None,
) -> Training:
    """The data splits and sets, the model (seeded; an earlier run's weights with `init_from`), the feature cache
    when the backbone's frozen part can be cached, the epoch sampler and loader, the optimizer, the schedule and
    the loss of a run. The classes of `classes_from` (a checkpoint: the run resumed, or `init_from`) come first,
    in its order."""
    splits = load_splits(cfg.data, seed=cfg.train.seed)
    if splits.missing and ddp.is_main:
        file, line, entry = splits.missing[0]
        print(
            f"warning: {len(splits.missing)} listed videos are missing from disk and are left out, e.g. "
            f"{file}:{line}: {entry}"
        )
    earlier = load_checkpoint(classes_from)["class_names"] if classes_from is not None else []
    splits = class_order(splits, earlier)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, splits.class_names, num_frames=cfg.sampler.num_frames).to(device)
    lineage = start_from(model, init_from) if init_from is not None else []
    if device.type == "cuda" and cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    train_set, val_set = build_datasets(cfg, splits)
    forward, workers = model, cfg.data.num_workers
    source = feature_source(cfg, model)
    if source is not None and fill_feature_cache(source, splits.train + splits.val, cfg, ddp):
        train_set = FeatureClips(splits.train, source.cache, cfg.sampler, train=True, seed=cfg.train.seed)
        val_set = FeatureClips(splits.val, source.cache, cfg.sampler, train=False, seed=cfg.train.seed)
        forward, workers = CachedForward(model, source.depth), 0
    labels = [s.label for s in splits.train]
    weights = class_weights_of(labels, len(splits.class_names))
    epoch_sampler = EpochSampler(
        labels, cfg.train.seed, ddp, weights if cfg.train.class_balance == "sampler" else None
    )
    # Failures come back from the workers as values, also with data.on_error=raise (train_one_epoch raises): an
    # exception raised inside a worker would reach the user as a traceback, not as a message naming the video.
    loader = build_loader(SafeClips(train_set), cfg.train.batch_size, workers, sampler=epoch_sampler)
    optimizer = build_optimizer(model, cfg, model.pretrained_parameters())
    scheduler = build_scheduler(optimizer, cfg, len(loader))
    loss_weights = (
        torch.tensor(weights, dtype=torch.float32, device=device)
        if cfg.train.class_balance == "weights"
        else None
    )
    criterion = nn.CrossEntropyLoss(weight=loss_weights, label_smoothing=cfg.optim.label_smoothing)
    return Training(
        splits,
        splits.class_names,
        train_set,
        val_set,
        model,
        forward,
        workers,
        epoch_sampler,
        loader,
        optimizer,
        scheduler,
        criterion,
        lineage,
    )


def fill_feature_cache(
    source: FeatureSource, samples: list[VideoSample], cfg: Config, ddp: Distributed
) -> bool:
    """Embed the videos the feature cache lacks (each process its share under torchrun); False when the cache
    cannot be used, and then by every process."""
    usable = (
        prepare(source, samples, cfg.data.num_workers, rank=ddp.rank, world_size=ddp.world_size) is not None
    )
    if ddp.enabled:
        flags = torch.tensor([int(usable)])
        dist.all_reduce(flags, op=dist.ReduceOp.MIN)  # every rank uses the cache, or none does
        usable = bool(flags.item())
    return usable


@dataclass
class Progress:
    """How far a run has come: epochs completed, the best validation score, the typical video length."""

    epochs_done: int = 0
    best: float = -1.0
    clip_seconds: float = 0.0


def resume_from(path: Path, parts: Training) -> Progress:
    """Load model, optimizer and schedule from `path` (last.pt); the run goes on after its epoch."""
    state = load_checkpoint(path)
    parts.model.load_state_dict(state["model"])
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.scheduler.load_state_dict(state["scheduler"])
    parts.lineage = state.get("lineage", [])
    return Progress(state["epoch"], state["best_mean_class_accuracy"], state["clip_seconds"])


def validate(parts: Training, cfg: Config, device: torch.device, ddp: Distributed, epoch: int) -> dict:
    """The validation row of the log for this epoch (rank 0; {} elsewhere and without a validation split)."""
    if not len(parts.val_set):
        return {}
    scores = score_dataset(parts.forward, parts.val_set, cfg, device, ddp, parts.workers)
    if not ddp.is_main:
        return {}
    summary = summarise(scores, parts.splits.class_names, len(parts.val_set))
    probabilities = torch.from_numpy(scores.video_scores).clamp_min(1e-8)
    val_loss = float(nn.functional.nll_loss(torch.log(probabilities), torch.from_numpy(scores.targets)))
    return {
        "epoch": epoch + 1,
        "split": "val",
        "loss": val_loss,
        "top1": summary["top1"],
        "mean_class_accuracy": summary["mean_class_accuracy"],
        "macro_f1": summary["macro_f1"],
        "failed": summary["num_failed"],
    }


def checkpoint_state(
    model,
    optimizer,
    scheduler,
    epoch: int,
    cfg: Config,
    class_names,
    best: float,
    metrics: dict,
    clip_seconds: float,
    lineage: Sequence[dict] = (),
) -> dict:
    """What last.pt and best.pt hold. The class list is the model's, in its order; `lineage` names the earlier
    runs this one grew from (`--init-from`) and the classes each knew."""
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
        "lineage": list(lineage),
    }


def save(
    run: RunFolder,
    parts: Training,
    cfg: Config,
    epoch: int,
    progress: Progress,
    improved: bool,
    metrics: dict,
) -> None:
    """last.pt after every epoch, and best.pt when validation improved. best.pt is written first: a kill between
    the two writes then leaves the previous last.pt, and the resumed run redoes this epoch and writes best.pt
    again (the other order loses this epoch's best.pt for good)."""
    state = checkpoint_state(
        parts.model,
        parts.optimizer,
        parts.scheduler,
        epoch + 1,
        cfg,
        parts.splits.class_names,
        progress.best,
        metrics,
        progress.clip_seconds,
        parts.lineage,
    )
    if improved:
        save_checkpoint(state, run.best)
    save_checkpoint(state, run.last)


def fit_checkpoint_confidence(
    parts: Training, cfg: Config, device: torch.device, weights: dict
) -> Confidence:
    """The `Confidence` of the model with `weights`: temperature and threshold fitted on the validation clips;
    without a validation split, the threshold from the training clips (scored as in evaluation) and temperature
    1. Class prototypes (from the training clips) only when the prototype score is asked for."""
    model = copy.deepcopy(parts.model)
    model.load_state_dict(weights)
    cached = isinstance(
        parts.forward, CachedForward
    )  # scored as training ran: on the feature cache, or on clips
    forward = CachedForward(model, parts.forward.depth) if cached else model
    alone = Distributed()  # scored by rank 0 alone: under torchrun the other ranks wait
    fitted_on = "val" if len(parts.val_set) else "train"
    prototypes = train_scores = None
    if fitted_on == "train" or cfg.confidence.rejection_score == "prototype":
        if cached:
            train_eval = FeatureClips(
                parts.splits.train, parts.train_set.cache, cfg.sampler, False, cfg.train.seed
            )
        else:
            train_eval = build_dataset(parts.splits.train, cfg, train=False, cached=True)
        train_scores = score_dataset(forward, train_eval, cfg, device, alone, parts.workers)
        prototypes = class_prototypes(
            train_scores.features, train_scores.targets, len(parts.splits.class_names)
        )
    held_out = (
        score_dataset(forward, parts.val_set, cfg, device, alone, parts.workers)
        if fitted_on == "val"
        else train_scores
    )
    return fit_confidence(
        cfg.confidence, held_out.clip_logits, held_out.targets, held_out.features, prototypes, fitted_on
    )


def calibrate(run: RunFolder, parts: Training, cfg: Config, device: torch.device, ddp: Distributed) -> None:
    """After the last epoch, on rank 0: fit the `Confidence` of best.pt's weights and of last.pt's (the same fit
    when they are the same epoch) and write each into its checkpoint under "confidence". A finished run resumed
    with --resume does only this, which is how a checkpoint from before calibration gets one."""
    if not ddp.is_main or not run.best.is_file():
        return
    best = load_checkpoint(run.best)
    confidence = fit_checkpoint_confidence(parts, cfg, device, best["model"])
    save_checkpoint({**best, "confidence": confidence.state()}, run.best)
    print(f"confidence of {run.best}: {confidence.describe()}", flush=True)
    if run.last.is_file():
        last = load_checkpoint(run.last)
        if last["epoch"] != best["epoch"]:
            confidence = fit_checkpoint_confidence(parts, cfg, device, last["model"])
            print(f"confidence of {run.last}: {confidence.describe()}", flush=True)
        save_checkpoint({**last, "confidence": confidence.state()}, run.last)


@dataclass
class TrainResult:
    out_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    best_mean_class_accuracy: float
    epochs_run: int
    seconds: float
    is_main: bool = True  # False on the other ranks of a torchrun job, which report nothing


def train(
    cfg: Config, out_dir: str | os.PathLike, resume: bool = False, init_from: str | os.PathLike | None = None
) -> TrainResult:
    """Train `cfg`, writing config.yaml, metrics.jsonl, TensorBoard events, curves.png, last.pt and best.pt.
    `init_from`: the best.pt of an earlier run to start from (its classes first; new classes of the data grow the
    classifier by a row each)."""
    started = time.perf_counter()
    ddp = setup_distributed(cfg.train.device)
    device = choose_device(cfg.train.device, ddp.local_rank)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    run = prepare_run_folder(out_dir, cfg, resume, ddp)
    init = Path(init_from) if init_from is not None and not resume else None
    parts = build_training(cfg, device, ddp, init, classes_from=run.last if resume else init)
    progress = resume_from(run.last, parts) if resume else Progress()
    log = RunLog(run.path, progress.epochs_done) if ddp.is_main else None
    train_model = nn.parallel.DistributedDataParallel(parts.forward) if ddp.enabled else parts.forward
    if ddp.is_main:
        if resume:
            print(f"resuming {run.path} after epoch {progress.epochs_done} of {cfg.train.epochs}")
        print(
            f"training {cfg.model.backbone} + {cfg.model.head} head on {len(parts.splits.train)} videos "
            f"({len(parts.splits.val)} for validation) of {len(parts.splits.class_names)} classes, "
            f"{cfg.train.epochs} epochs x {len(parts.loader)} steps, on {device}"
            f"{f' x {ddp.world_size} processes' if ddp.enabled else ''}"
        )

    for epoch in range(progress.epochs_done, cfg.train.epochs):
        torch.manual_seed(cfg.train.seed * 1000 + epoch)  # dropout: the same on a resumed run
        parts.epoch_sampler.set_epoch(epoch)
        parts.train_set.set_epoch(epoch)
        stats = train_one_epoch(
            train_model,
            parts.loader,
            parts.optimizer,
            parts.scheduler,
            parts.criterion,
            device,
            epoch,
            cfg,
            ddp,
        )
        if not progress.clip_seconds and stats.durations:
            progress.clip_seconds = float(np.median(stats.durations))
        row = {
            "epoch": epoch + 1,
            "split": "train",
            "loss": stats.loss,
            "accuracy": stats.accuracy,
            "clips": stats.clips,
            "clips_per_s": stats.clips / stats.seconds,
            "data_wait": stats.data_wait,
            "failed": len(stats.failures),
            "lr": parts.optimizer.param_groups[0]["lr"],
            "seconds": stats.seconds,
        }
        val_row = validate(parts, cfg, device, ddp, epoch)
        if ddp.is_main:
            for failure in stats.failures:
                print(f"skipped: {failure.reason}")
            log.write_epoch(epoch + 1, row, val_row)
            score = val_row.get("mean_class_accuracy", stats.accuracy)
            improved = score > progress.best
            progress.best = max(progress.best, score)
            save(run, parts, cfg, epoch, progress, improved, {"train": row, "val": val_row})
            val_text = (
                f", val top-1 {val_row['top1']:.3f}, mean-class {val_row['mean_class_accuracy']:.3f}"
                if val_row
                else ""
            )
            print(
                f"epoch {epoch + 1}/{cfg.train.epochs}: loss {stats.loss:.3f}, train acc {stats.accuracy:.3f}"
                f"{val_text}, {row['clips_per_s']:.1f} clips/s, data wait {100 * stats.data_wait:.0f}%, "
                f"{row['failed']} videos skipped{' *' if improved else ''}",
                flush=True,
            )
        if ddp.enabled:
            dist.barrier()
    calibrate(run, parts, cfg, device, ddp)
    if log is not None:
        log.close()
    if ddp.enabled:
        dist.barrier()
        dist.destroy_process_group()
    return TrainResult(
        run.path,
        run.best,
        run.last,
        progress.best,
        cfg.train.epochs - progress.epochs_done,
        time.perf_counter() - started,
        ddp.is_main,
    )

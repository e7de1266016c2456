"""Scoring: the one forward of validation, evaluation and batch prediction, and what a split's scores say.

`score_batch` folds views into the batch, runs the model and gives each view's logits and its clip feature (the
backbone's per-frame features averaged over T, which the prototype rejection score compares); probabilities are
made from the logits by `behavior.engine.calibration.probabilities` at the checkpoint's temperature (a video's
score is the mean over its views). `score_loader` runs it over a loader in eval mode; `score_dataset` scores a
data set, sharded across ranks under DDP; `summarise` turns a split's scores into the metrics report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from einops import rearrange
from torch.utils.data import Dataset

from behavior.config import Config
from behavior.data.datasets import ClipBatch, ClipFailure, SafeClips
from behavior.data.loader import build_loader
from behavior.engine.calibration import probabilities
from behavior.engine.metrics import classification_report
from behavior.engine.runtime import Distributed, autocast, eval_mode

# On a CPU a forward pass takes at most this many input values (clips x T x C x H x W; at least one clip):
# 4 demo clips (8 x 3 x 64 x 64), 1 efficientnet_lite0 clip at 112 px. Measured on the 2-core benchmark machine
# (16 clips, the same logits): in passes of this size they took 0.61x (demo) and 0.36x (Lite0) the time of one
# pass, and the process's memory rose 4x less during the forward (33 vs 138 MB, demo). Bigger passes lose time to
# fresh pages for their activations (glibc maps allocations that large anew each pass; with its mmap threshold
# raised one demo pass of 16 took 0.75x as long) and to the cache.
CPU_VALUES_PER_PASS = 400_000


def clips_per_pass(clips: torch.Tensor, device: torch.device) -> int:
    """How many of `clips` (N, T, ...) one forward pass takes: all of them off the CPU (accelerators want big
    batches), on the CPU as many as fit `CPU_VALUES_PER_PASS` (at least one)."""
    if device.type != "cpu" or len(clips) == 0:
        return max(1, len(clips))
    return max(1, min(len(clips), CPU_VALUES_PER_PASS // clips[0].numel()))


class ClipOutputs(NamedTuple):
    logits: torch.Tensor  # float (B, V, K)
    features: torch.Tensor  # float (B, V, D): the backbone's per-frame features averaged over T


def score_batch(
    model: torch.nn.Module, clip: torch.Tensor, device: torch.device, amp: bool = False
) -> ClipOutputs:
    """Logits float (B, V, K) and clip features float (B, V, D) of clips (B, T, C, H, W) or (B, V, T, C, H, W)
    (for a model on cached features, `CachedForward`, of its features (B, T, ...) or (B, V, T, ...)): the model's
    own two halves (`forward_scores`), so the logits are exactly `model(clip)`'s. `model` may also be the
    checkpoint's ONNX model (`behavior.tools.engines.OnnxModel`), which gives the same two outputs."""
    if clip.ndim == model.clip_ndim:
        clip = clip.unsqueeze(1)  # (B, 1, T, ...)
    views = clip.shape[1]
    clip = rearrange(clip, "b v t ... -> (b v) t ...").to(device, non_blocking=True)  # (B·V, T, ...)
    step = clips_per_pass(clip, device)
    with autocast(device, amp):
        parts = [model.forward_scores(clip[i : i + step]) for i in range(0, max(1, len(clip)), step)]
    logits = torch.cat([part[0] for part in parts])  # (B·V, K)
    features = torch.cat([part[1] for part in parts])  # (B·V, D)
    return ClipOutputs(
        rearrange(logits.float(), "(b v) k -> b v k", v=views),  # (B, V, K)
        rearrange(features.float(), "(b v) d -> b v d", v=views),  # (B, V, D)
    )


@dataclass
class SplitScores:
    """Scores of every video that decoded, in data-set order, and the videos that did not."""

    clip_logits: np.ndarray  # float (N, V, K): per view
    targets: np.ndarray  # int64 (N,)
    indices: np.ndarray  # int64 (N,): positions in the data set
    failures: list[ClipFailure] = field(default_factory=list)
    features: np.ndarray | None = None  # float (N, V, D): clip features, for the prototype rejection score
    temperature: float = 1.0  # the probabilities are softmax(logits / temperature)

    @property
    def clip_scores(self) -> np.ndarray:
        return probabilities(self.clip_logits, self.temperature)  # float (N, V, K)

    @property
    def video_scores(self) -> np.ndarray:
        return self.clip_scores.mean(axis=1)  # float (N, K)


def score_loader(
    model: torch.nn.Module, loader: Iterable[ClipBatch], device: torch.device, amp: bool = False
) -> SplitScores:
    """Run the model, in eval mode, over a loader of `ClipBatch`es (`behavior.data.loader.build_loader`)."""
    logits, features, targets, indices, failures = [], [], [], [], []
    with eval_mode(model):
        for batch in loader:
            failures += batch.failures
            if batch.label.numel() == 0:
                continue
            outputs = score_batch(model, batch.clip, device, amp)
            logits.append(outputs.logits.cpu().numpy())
            features.append(outputs.features.cpu().numpy())
            targets.append(batch.label.numpy())
            indices.append(batch.index.numpy())
    if not logits:
        empty = np.zeros((0, 1, getattr(model, "num_classes", 1)), dtype=np.float32)
        return SplitScores(empty, np.zeros(0, np.int64), np.zeros(0, np.int64), failures)
    order = np.argsort(np.concatenate(indices), kind="stable")
    return SplitScores(
        np.concatenate(logits)[order],
        np.concatenate(targets)[order],
        np.concatenate(indices)[order],
        failures,
        np.concatenate(features)[order],
    )


def score_dataset(
    model: torch.nn.Module,
    dataset: Dataset,
    cfg: Config,
    device: torch.device,
    ddp: Distributed,
    workers: int,
) -> SplitScores:
    """Scores of every video of `dataset` (a `ClipDataset`, or `FeatureClips` with the model's `CachedForward`;
    validation during training), loaded by `workers` processes; under DDP each rank scores a shard and every
    rank gets all of them, in data-set order."""
    shard = list(range(ddp.rank, len(dataset), ddp.world_size))
    loader = build_loader(SafeClips(dataset), cfg.train.eval_batch_size, workers, sampler=shard)
    scores = score_loader(model, loader, device, cfg.train.amp)
    if not ddp.enabled:
        return scores
    gathered = [None] * ddp.world_size
    dist.all_gather_object(gathered, scores)
    order = np.argsort(np.concatenate([s.indices for s in gathered]), kind="stable")
    scored = [s for s in gathered if s.features is not None]  # a rank whose shard all failed has none
    return SplitScores(
        np.concatenate([s.clip_logits for s in gathered])[order],
        np.concatenate([s.targets for s in gathered])[order],
        np.concatenate([s.indices for s in gathered])[order],
        [f for s in gathered for f in s.failures],
        np.concatenate([s.features for s in scored])[order] if scored else None,
    )


def summarise(scores: SplitScores, class_names: Sequence[str], num_videos: int) -> dict:
    """metrics.json content: video-level report, clip-level accuracy, and the failed videos."""
    report = classification_report(scores.video_scores, scores.targets, class_names)
    clip_predictions = scores.clip_scores.argmax(axis=-1)  # (N, V)
    clip_accuracy = (
        float((clip_predictions == scores.targets[:, None]).mean()) if len(scores.targets) else 0.0
    )
    return {
        "video_accuracy": report["top1"],
        "clip_accuracy": clip_accuracy,
        "num_views": int(scores.clip_scores.shape[1]),
        **report,
        "num_videos": num_videos,
        "num_scored": int(len(scores.targets)),
        "num_failed": len(scores.failures),
        "failed": [{"path": f.path, "reason": f.reason} for f in scores.failures],
    }

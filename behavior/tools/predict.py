"""`behavior predict`: one row per video, for folders of clips and for hour-long recordings.

The clips go through the same sampler, transform and forward as evaluation (`build_dataset` in evaluation
mode, `score_batch`); decoding runs in DataLoader workers and the model runs on batches. A video that
cannot be read gets a row with status=error and the reason, and every other video is still predicted.
Rows are appended and flushed one by one (`behavior.tools.rows`), and a re-run with the same output skips the
videos already written, so a killed run loses nothing. A video whose decoder hangs (or crashes its worker) is
cut off after `timeout_s` and gets an error row too (`behavior.data.guarded`). Under torchrun the video list is
sharded across ranks, each rank writes a part file, and rank 0 merges them into the output.

With `windows`, each video is cut into sliding windows (`behavior.tools.windows`); the row gains per-window
scores and merged segments `(start_s, end_s, label, score)`.

Scores are the checkpoint's calibrated probabilities, and a video whose rejection score (`unknown_score`) falls
below the checkpoint's threshold (`unknown_threshold`, or the one given here) is labelled `unknown`; its row
still lists the top-k behaviours and their scores. Every row names its possible labels in `labels`.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import Subset
from tqdm import tqdm

from behavior.config import DEFAULT_ENGINE, Config
from behavior.data.datasets import ClipBatch, ClipFailure, SafeClips, build_dataset, collate_clips
from behavior.data.feature_cache import FeatureClips, feature_source, prepare
from behavior.data.guarded import run_guarded
from behavior.data.loader import build_loader, guarded_batches
from behavior.data.splits import VideoSample
from behavior.engine.confidence import Confidence, prediction_rule
from behavior.engine.runtime import choose_device, setup_distributed
from behavior.engine.scoring import score_batch
from behavior.errors import UsageError
from behavior.models.classifier import CachedForward, ClipClassifier
from behavior.tools.engines import engine_device, load_engine
from behavior.tools.rows import (
    RowWriter,
    collect_inputs,
    error_row,
    label_set,
    merge_parts,
    output_fields,
    read_rows,
    top_labels,
)
from behavior.tools.windows import WindowOptions, predict_windows


@dataclass
class PredictSummary:
    out: Path | None
    num_videos: int  # rows in the output, this run and earlier ones
    num_written: int  # rows written by this run
    num_skipped: int  # videos already in the output
    num_failed: int  # rows with status=error in the output
    seconds: float


@dataclass
class PredictRun:
    """What every video of one `predict` call is predicted with, and where its rows go."""

    model: ClipClassifier
    cfg: Config
    device: torch.device
    batch_size: int  # clips per forward pass (and windows per chunk)
    workers: int  # decoding worker processes
    timeout_s: float  # seconds one video may take to decode
    top_k: int
    emit: Callable[[dict], None]  # writes one row
    progress: tqdm
    confidence: Confidence  # the temperature and the rejection rule
    labels: list[str]  # what the rows' label columns can hold


class RowSink:
    """Where rows go: the output file (`RowWriter`), or CSV on standard output; counts the error rows."""

    def __init__(self, part: Path | None, fields: list[str]):
        self.writer = RowWriter(part, fields) if part is not None else None
        self.stdout = (
            None if part is not None else csv.DictWriter(sys.stdout, fieldnames=fields, extrasaction="ignore")
        )
        if self.stdout:
            self.stdout.writeheader()
        self.num_failed = 0

    def emit(self, row: dict) -> None:
        self.num_failed += row["status"] == "error"
        if self.writer:
            self.writer.write(row)
        else:
            self.stdout.writerow(
                {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()}
            )

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def predict(
    checkpoint: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike | None = None,
    batch_size: int = 16,
    workers: int = 2,
    top_k: int = 5,
    windows: WindowOptions | None = None,
    timeout_s: float = 60.0,
    unknown_threshold: float | None = None,
    reject_unknown: bool = True,
    engine: str = DEFAULT_ENGINE,
) -> PredictSummary:
    """Predict every video of `inputs`; rows go to `out` (.csv or .jsonl), or to stdout as CSV. With workers, a
    video that takes longer than `timeout_s` to decode (or crashes its worker) gets an error row instead.
    `unknown_threshold` replaces the checkpoint's rejection threshold; `reject_unknown=False` calls nothing
    unknown. `engine` runs the model in PyTorch or on ONNX Runtime (`behavior.tools.engines`)."""
    if timeout_s <= 0:
        raise UsageError(f"--timeout must be positive, got {timeout_s}")
    started = time.perf_counter()
    ddp = setup_distributed()
    rank, world = ddp.rank, ddp.world_size
    device = engine_device(engine, choose_device(local_rank=ddp.local_rank))
    model, cfg = load_engine(checkpoint, engine, device)
    confidence = prediction_rule(model.confidence, unknown_threshold, reject_unknown)
    top_k = max(1, min(top_k, len(model.class_names)))
    fields = output_fields(top_k, windows is not None)
    paths = collect_inputs(inputs)
    if out is None and world > 1:
        raise UsageError("under torchrun, predict needs --out: each rank writes a part of it")

    target = Path(out) if out is not None else None
    part = target.with_name(f"{target.name}.part{rank}{target.suffix}") if target and world > 1 else target
    done: set[str] = set()
    if target is not None:
        done |= {row["path"] for row in read_rows(target)}
        for other in target.parent.glob(f"{target.name}.part*{target.suffix}"):
            done |= {row["path"] for row in read_rows(other)}
    todo = [p for p in paths if p not in done][rank::world]
    if world > 1:
        dist.barrier()  # every rank has read what is done before any writes its part: the shards stay disjoint
    sink = RowSink(part, fields)
    progress = tqdm(
        total=len(todo),
        unit="video",
        desc="predict",
        disable=rank != 0 or not todo,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    run = PredictRun(
        model,
        cfg,
        device,
        batch_size,
        min(workers, len(todo)),
        timeout_s,
        top_k,
        sink.emit,
        progress,
        confidence,
        label_set(model.class_names, confidence.rejects, windows is not None),
    )
    try:
        with torch.inference_mode():
            if windows is None:
                predict_clips(run, todo)
            else:
                predict_windows(run, todo, windows)
    finally:
        progress.close()
        sink.close()
    if world > 1:
        dist.barrier()
        if rank == 0:
            merge_parts(target, fields)
        dist.barrier()
    rows = read_rows(target) if target is not None else []
    return PredictSummary(
        target,
        len(rows) if target is not None else len(todo),
        len(todo),
        sum(p in done for p in paths),
        sum(r.get("status") == "error" for r in rows) if target is not None else sink.num_failed,
        time.perf_counter() - started,
    )


def clip_batches(clips: SafeClips, batch_size: int, workers: int, timeout_s: float) -> Iterator[ClipBatch]:
    """The batches of `clips` in order, decoded by `workers` processes, with a time limit of timeout_s per video.
    A batch that does not arrive in time (a decoder that hangs) or whose worker dies (a decoder that crashes) is
    retried video by video, each alone in one worker; a video lost that way again comes back as a
    `ClipFailure`, and the batches go on after it. With workers=0 everything runs in this process and nothing
    can be cut off."""

    def run(indices: list[int]) -> Iterator[ClipBatch]:
        loader = build_loader(
            Subset(clips, indices),
            batch_size,
            min(workers, len(indices)),
            timeout_s=min(batch_size, len(indices)) * timeout_s,
        )
        yield from guarded_batches(loader)

    def lost(index: int, reason: str) -> ClipBatch:
        path = clips.dataset.samples[index].path
        return collate_clips([ClipFailure(index, path, f"{path}: {reason}")])

    yield from run_guarded(
        range(len(clips)),
        run,
        finished=lambda batch: batch.index.tolist() + [failure.index for failure in batch.failures],
        lost=lost,
        suspects=batch_size,  # batches come in order: the one in wait holds the first unfinished videos
    )


def predict_clips(run: PredictRun, paths: list[str]) -> None:
    """One clip per video (the evaluation sampler's views, scores averaged), one row each, in input order. With a
    frozen backbone the videos go through the feature cache, as in evaluation (each embedded once)."""
    samples = [VideoSample(p, -1) for p in paths]
    # ONNX Runtime runs the whole model: the feature cache serves the PyTorch engine
    source = feature_source(run.cfg, run.model) if isinstance(run.model, ClipClassifier) else None
    report = prepare(source, samples, run.workers, timeout_s=run.timeout_s, quiet=True) if source else None
    if report is not None:
        cached = FeatureClips(
            samples, source.cache, run.cfg.sampler, False, run.cfg.train.seed, report.unreadable
        )
        forward, batches = (
            CachedForward(run.model, source.depth),
            build_loader(SafeClips(cached), run.batch_size, 0),
        )
    else:
        dataset = build_dataset(samples, run.cfg, train=False)
        forward, batches = (
            run.model,
            clip_batches(SafeClips(dataset), run.batch_size, run.workers, run.timeout_s),
        )
    for batch in batches:
        rows = {failure.index: error_row(failure.path, failure.reason) for failure in batch.failures}
        if batch.index.numel():
            outputs = score_batch(forward, batch.clip, run.device, run.cfg.train.amp)
            judged = run.confidence.judge(outputs.logits.cpu().numpy(), outputs.features.cpu().numpy())
            for i, (index, meta) in enumerate(zip(batch.index.tolist(), batch.videos)):
                rows[index] = {
                    "path": paths[index],
                    "status": "ok",
                    **top_labels(
                        judged.probabilities[i],
                        run.model.class_names,
                        run.top_k,
                        judged.scores[i],
                        judged.unknown[i],
                        run.confidence.threshold,
                    ),
                    "frames": meta["frames"],
                    "duration_s": round(meta["duration_s"], 3),
                    "labels": run.labels,
                }
        for index in sorted(rows):  # input order
            run.emit(rows[index])
        run.progress.update(len(rows))

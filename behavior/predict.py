"""`behavior predict`: one row per video, for folders of clips and for hour-long recordings.

The clips go through the same sampler, transform and forward as evaluation (`ClipDataset` in evaluation
mode, `score_batch`); decoding runs in DataLoader workers and the model runs on batches. A video that
cannot be read gets a row with status=error and the reason, and every other video is still predicted.
Rows are appended and flushed one by one, and a re-run with the same output skips the videos already
written, so a killed run loses nothing. A video whose decoder hangs (or crashes its worker) is cut off after
`timeout_s` and gets an error row too (`_guarded_batches`). Under torchrun the video list is sharded across
ranks, each rank writes a part file, and rank 0 merges them into the output.

With `window`, each video is cut into sliding windows (seconds, on the real frame timestamps, or frames);
every window is one clip, the row gains per-window scores and merged segments `(start_s, end_s, label,
score)`. Windows stream through the workers in chunks, so memory stays flat however long the video is.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, IterableDataset, Subset, get_worker_info
from tqdm import tqdm

from behavior.checkpoint import load_trained_model
from behavior.config import Config
from behavior.datasets import ClipBatch, ClipFailure, SafeClips, build_dataset, collate_clips
from behavior.evaluate import score_batch
from behavior.sampling import sample_indices, sliding_windows
from behavior.segments import segments_from_windows
from behavior.splits import VideoSample, find_videos
from behavior.transforms import ClipTransform
from behavior.video import Video, VideoError

LIST_SUFFIXES = (".txt", ".lst", ".list")


@dataclass
class WindowOptions:
    window: float  # window length, in seconds or frames
    stride: float  # step between window starts, same unit
    unit: str = "s"  # "s": seconds on the real timestamps; "frames": frame numbers
    smooth: int = 1  # moving average over this many windows before labelling
    min_segment_s: float = 0.0  # shorter segments are merged into a neighbour

    def __post_init__(self) -> None:
        if self.window <= 0 or self.stride <= 0:
            raise ValueError(f"--window and --stride must be positive, got {self.window} and {self.stride}")
        if self.unit not in ("s", "frames"):
            raise ValueError(f"window unit {self.unit!r} is unknown; valid: s, frames")
        if self.smooth < 1 or self.min_segment_s < 0:
            raise ValueError("--smooth must be >= 1 and --min-segment >= 0")


def collect_inputs(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Video files, folders (searched recursively for videos) and text files listing paths (relative
    entries are read from the list's folder), flattened in order, each path once. A path that does not
    exist is kept, so that it gets an error row rather than vanishing."""
    found: list[str] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            found += [str(p) for p in find_videos(path)]
        elif path.suffix.lower() in LIST_SUFFIXES and path.is_file():
            for line in path.read_text(errors="replace").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    listed = Path(line) if Path(line).is_absolute() else path.parent / line
                    found += collect_inputs([listed]) if listed.is_dir() else [str(listed)]
        else:
            found.append(str(path))
    return list(dict.fromkeys(os.path.normpath(p) for p in found))


class RowWriter:
    """Appends rows to a CSV or JSONL file, one flushed line at a time; knows which paths are already there."""

    def __init__(self, path: str | os.PathLike, fields: list[str]):
        self.path = Path(path)
        self.fields = fields
        self.jsonl = self.path.suffix.lower() == ".jsonl"
        if not self.jsonl and self.path.suffix.lower() != ".csv":
            raise ValueError(f"--out {self.path}: the output must end in .csv or .jsonl")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_torn_tail()
        self.rows = read_rows(self.path)
        if not self.jsonl and self.rows and list(self.rows[0]) != fields:
            raise ValueError(f"--out {self.path} holds other columns ({', '.join(list(self.rows[0])[:6])}, ...); "
                             "resume with the same options, or write to a new file")
        self._handle = open(self.path, "a", newline="")
        if not self.jsonl and self.path.stat().st_size == 0:
            self._write_line(self._csv_line(dict(zip(fields, fields))))

    def _repair_torn_tail(self) -> None:
        """A kill in the middle of a line leaves a partial last line: cut it, the video is predicted again."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            with open(self.path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

    def _csv_line(self, row: dict) -> str:
        buffer = io.StringIO()
        csv.writer(buffer).writerow([row.get(f, "") for f in self.fields])
        return buffer.getvalue()

    def _write_line(self, line: str) -> None:
        self._handle.write(line)
        self._handle.flush()

    @property
    def done(self) -> set[str]:
        return {row["path"] for row in self.rows}

    def write(self, row: dict) -> None:
        if self.jsonl:
            self._write_line(json.dumps({f: row.get(f) for f in self.fields}) + "\n")
        else:
            flat = {k: json.dumps(v) if isinstance(v, (list, dict)) else ("" if v is None else v) for k, v in row.items()}
            self._write_line(self._csv_line(flat))
        self.rows.append(row)

    def close(self) -> None:
        self._handle.close()


def read_rows(path: str | os.PathLike) -> list[dict]:
    """The complete rows of a CSV or JSONL prediction file (a torn last line is ignored)."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return []
    text = path.read_text()
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    if path.suffix.lower() == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return list(csv.DictReader(io.StringIO(text)))


def output_fields(top_k: int, windows: bool) -> list[str]:
    fields = ["path", "status", "label", "score"]
    for i in range(1, top_k + 1):
        fields += [f"top{i}_label", f"top{i}_score"]
    fields += ["frames", "duration_s", "error"]
    return fields + (["windows", "segments"] if windows else [])


def _top(scores: np.ndarray, class_names: list[str], top_k: int) -> dict:
    order = np.argsort(-scores)[:top_k]
    row = {"label": class_names[order[0]], "score": round(float(scores[order[0]]), 4)}
    for i, k in enumerate(order, start=1):
        row[f"top{i}_label"], row[f"top{i}_score"] = class_names[k], round(float(scores[k]), 4)
    return row


def _error_row(path: str, reason: str) -> dict:
    return {"path": path, "status": "error", "error": reason}


class WindowStream(IterableDataset):
    """Chunks of sliding-window clips, video after video (all of `paths`, or those at `indices`); each worker
    takes every n-th video.

    Yields dicts: `clip` float (n, T, C, H, W) with `spans` float (n, 2) in seconds, `last` on a video's
    final chunk; or `error` (a video that failed, possibly after some chunks, which are then discarded)."""

    def __init__(self, paths: list[str], cfg: Config, options: WindowOptions, chunk: int,
                 indices: list[int] | None = None):
        self.paths = paths
        self.indices = list(range(len(paths))) if indices is None else indices
        self.sampler = replace(cfg.sampler, num_views=1, time_based=options.unit == "s")
        self.transform = ClipTransform(cfg.transform, train=False)
        self.backend = cfg.data.backend
        self.short_side = cfg.transform.resize if cfg.data.decode_at_resize else None
        self.options = options
        self.chunk = chunk

    def __iter__(self) -> Iterator[dict]:
        worker = get_worker_info()
        share = self.indices if worker is None else self.indices[worker.id :: worker.num_workers]
        for i in share:
            yield from self._video(i, self.paths[i])

    def _video(self, i: int, path: str) -> Iterator[dict]:
        try:
            with Video(path, backend=self.backend, short_side=self.short_side) as video:
                info = video.info
                times = np.append(info.timestamps, info.duration_s)  # start of every frame, then the end
                length = info.duration_s if self.options.unit == "s" else info.num_frames
                spans = sliding_windows(length, self.options.window, self.options.stride)
                for start in range(0, len(spans), self.chunk):
                    part = spans[start : start + self.chunk]
                    indices = np.concatenate([sample_indices(info.num_frames, self.sampler, False, None,
                                                             info.timestamps, span=tuple(s)) for s in part])  # (n, T)
                    frames = video.get_frames(indices.reshape(-1))  # uint8 (n*T, H, W, C)
                    clip = self.transform(frames)  # float (n*T, C, H, W)
                    clip = clip.reshape(len(part), indices.shape[1], *clip.shape[1:])  # (n, T, C, H, W)
                    seconds = part if self.options.unit == "s" else times[np.clip(part.astype(int), 0, info.num_frames)]
                    yield {"i": i, "path": path, "clip": clip, "spans": seconds, "last": start + self.chunk >= len(spans),
                           "frames": info.num_frames, "duration_s": info.duration_s}
        except (VideoError, FileNotFoundError, IndexError, ValueError) as exc:
            yield {"i": i, "path": path, "error": str(exc), "last": True}


@dataclass
class PredictSummary:
    out: Path | None
    num_videos: int  # rows in the output, this run and earlier ones
    num_written: int  # rows written by this run
    num_skipped: int  # videos already in the output
    num_failed: int  # rows with status=error in the output
    seconds: float


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return (dist.get_rank(), dist.get_world_size()) if world > 1 else (0, 1)


def predict(
    checkpoint: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike | None = None,
    batch_size: int = 16,
    workers: int = 2,
    top_k: int = 5,
    windows: WindowOptions | None = None,
    timeout_s: float = 60.0,
) -> PredictSummary:
    """Predict every video of `inputs`; rows go to `out` (.csv or .jsonl), or to stdout as CSV. With workers, a
    video that takes longer than `timeout_s` to decode (or crashes its worker) gets an error row instead."""
    if timeout_s <= 0:
        raise ValueError(f"--timeout must be positive, got {timeout_s}")
    started = time.perf_counter()
    rank, world = _distributed()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, cfg = load_trained_model(checkpoint, device)
    names = model.class_names
    top_k = max(1, min(top_k, len(names)))
    fields = output_fields(top_k, windows is not None)
    paths = collect_inputs(inputs)
    if out is None and world > 1:
        raise ValueError("under torchrun, predict needs --out: each rank writes a part of it")

    target = Path(out) if out is not None else None
    part = target.with_name(f"{target.name}.part{rank}{target.suffix}") if target and world > 1 else target
    done: set[str] = set()
    if target is not None:
        done |= {row["path"] for row in read_rows(target)}
        for other in target.parent.glob(f"{target.name}.part*{target.suffix}"):
            done |= {row["path"] for row in read_rows(other)}
    todo = [p for p in paths if p not in done][rank::world]
    writer = RowWriter(part, fields) if part is not None else None
    stdout_csv = csv.DictWriter(sys.stdout, fieldnames=fields, extrasaction="ignore") if part is None else None
    if stdout_csv:
        stdout_csv.writeheader()

    writer_failures = [0]

    def emit(row: dict) -> None:
        writer_failures[0] += row["status"] == "error"
        if writer:
            writer.write(row)
        else:
            stdout_csv.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})

    progress = tqdm(total=len(todo), unit="video", desc="predict", disable=rank != 0 or not todo,
                    file=sys.stderr, dynamic_ncols=True)
    workers = min(workers, len(todo))
    try:
        with torch.inference_mode():
            if windows is None:
                _predict_clips(model, cfg, todo, batch_size, workers, timeout_s, device, names, top_k, emit, progress)
            else:
                _predict_windows(model, cfg, todo, windows, batch_size, workers, timeout_s, device, names, top_k, emit,
                                 progress)
    finally:
        progress.close()
        if writer:
            writer.close()
    if world > 1:
        dist.barrier()
        if rank == 0:
            _merge_parts(target, fields)
        dist.barrier()
    rows = read_rows(target) if target is not None else []
    failed = sum(r.get("status") == "error" for r in rows) if target is not None else None
    return PredictSummary(target, len(rows) if target is not None else len(todo), len(todo),
                          sum(p in done for p in paths), failed if failed is not None else writer_failures[0],
                          time.perf_counter() - started)


def _merge_parts(target: Path, fields: list[str]) -> None:
    """Append every rank's part file to the output (each video once), then remove the parts."""
    writer = RowWriter(target, fields)
    seen = writer.done
    parts = sorted(target.parent.glob(f"{target.name}.part*{target.suffix}"))
    for part in parts:
        for row in read_rows(part):
            if row["path"] not in seen:
                writer.write({k: _parse_json_field(v) for k, v in row.items()})
                seen.add(row["path"])
    writer.close()
    for part in parts:
        part.unlink()


def _parse_json_field(value):
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _lost_worker(exc: RuntimeError) -> bool:
    """True for the DataLoader's errors about a worker that hung or died (not for errors of the data itself)."""
    return str(exc).startswith("DataLoader") and ("timed out" in str(exc) or "exited unexpectedly" in str(exc)
                                                  or "killed by signal" in str(exc))


def _lost_reason(path: str, exc: RuntimeError, timeout_s: float) -> str:
    if "timed out" in str(exc):
        return f"{path}: stalled: no result within {timeout_s:g} s (the decoder hung)"
    return f"{path}: the decoder crashed its worker process ({exc})"


def _guarded_batches(clips: SafeClips, batch_size: int, workers: int, timeout_s: float) -> Iterator[ClipBatch]:
    """The batches of `clips` in order, decoded by `workers` processes, with a time limit.

    A batch that does not arrive within batch_size x timeout_s (a decoder that hangs) or whose worker dies (a
    decoder that crashes) is retried video by video, each in a fresh single-worker loader limited to `timeout_s`;
    a video that fails that way again comes back as a `ClipFailure`, and the loader restarts after that batch.
    With workers=0 everything runs in this process and nothing can be cut off."""
    indices = list(range(len(clips)))
    start = 0
    while start < len(indices):
        loader = DataLoader(Subset(clips, indices[start:]), batch_size=batch_size, num_workers=workers,
                            collate_fn=collate_clips, timeout=batch_size * timeout_s if workers else 0)
        try:
            for batch in loader:
                start += batch_size
                yield batch
            return
        except RuntimeError as exc:
            if not workers or not _lost_worker(exc):
                raise
        for index in indices[start : start + batch_size]:
            single = DataLoader(Subset(clips, [index]), batch_size=1, num_workers=1, collate_fn=collate_clips,
                                timeout=timeout_s)
            try:
                yield next(iter(single))
            except RuntimeError as exc:
                if not _lost_worker(exc):
                    raise
                path = clips.dataset.samples[index].path
                yield collate_clips([ClipFailure(index, path, _lost_reason(path, exc, timeout_s))])
        start += batch_size


def _predict_clips(model, cfg, todo, batch_size, workers, timeout_s, device, names, top_k, emit, progress) -> None:
    dataset = build_dataset([VideoSample(p, -1) for p in todo], cfg, train=False)
    for batch in _guarded_batches(SafeClips(dataset), batch_size, workers, timeout_s):
        rows = {failure.index: _error_row(failure.path, failure.reason) for failure in batch.failures}
        if batch.index.numel():
            scores = score_batch(model, batch.clip, device, cfg.train.amp).mean(dim=1).cpu().numpy()  # (B, K)
            for index, row_scores, meta in zip(batch.index.tolist(), scores, batch.videos):
                rows[index] = {"path": todo[index], "status": "ok", **_top(row_scores, names, top_k),
                               "frames": meta["frames"], "duration_s": round(meta["duration_s"], 3)}
        for index in sorted(rows):  # input order
            emit(rows[index])
        progress.update(len(rows))


def _guarded_chunks(todo: list[str], cfg: Config, options: WindowOptions, chunk: int, workers: int,
                    timeout_s: float) -> Iterator[dict]:
    """The items of `WindowStream` over `todo`, with a time limit of chunk x timeout_s per item. After a worker
    hangs or dies, the videos not finished yet are streamed one at a time, each in its own worker, so the one
    that hangs gets an error item and the others complete (their chunks seen so far are sent again)."""
    finished: set[int] = set()
    loader = DataLoader(WindowStream(todo, cfg, options, chunk), batch_size=None, num_workers=workers,
                        timeout=chunk * timeout_s if workers else 0)
    try:
        for item in loader:
            if item["last"]:
                finished.add(item["i"])
            yield item
        return
    except RuntimeError as exc:
        if not workers or not _lost_worker(exc):
            raise
    for i in range(len(todo)):
        if i in finished:
            continue
        single = DataLoader(WindowStream(todo, cfg, options, chunk, indices=[i]), batch_size=None, num_workers=1,
                            timeout=chunk * timeout_s)
        try:
            yield {"i": i, "restart": True}
            yield from single
        except RuntimeError as exc:
            if not _lost_worker(exc):
                raise
            yield {"i": i, "path": todo[i], "error": _lost_reason(todo[i], exc, chunk * timeout_s), "last": True}


def _predict_windows(model, cfg, todo, options, batch_size, workers, timeout_s, device, names, top_k, emit,
                     progress) -> None:
    pending: dict[int, dict] = {}
    for item in _guarded_chunks(todo, cfg, options, batch_size, workers, timeout_s):
        if item.get("restart"):
            pending.pop(item["i"], None)  # its chunks come again from the start
            continue
        state = pending.setdefault(item["i"], {"spans": [], "scores": []})
        if "error" in item:
            emit(_error_row(item["path"], item["error"]))
        else:
            state["spans"].append(np.asarray(item["spans"], dtype=np.float64))
            state["scores"].append(score_batch(model, item["clip"], device, cfg.train.amp)[:, 0].cpu().numpy())  # (n, K)
        if not item["last"]:
            continue
        del pending[item["i"]]
        progress.update(1)
        if "error" in item:
            continue
        spans, scores = np.concatenate(state["spans"]), np.concatenate(state["scores"])  # (W, 2), (W, K)
        segments = segments_from_windows(spans, scores, item["duration_s"], options.smooth, options.min_segment_s)
        emit({"path": item["path"], "status": "ok", **_top(scores.mean(axis=0), names, top_k), "frames": item["frames"],
              "duration_s": round(item["duration_s"], 3),
              "windows": [{"start_s": round(float(s[0]), 3), "end_s": round(float(s[1]), 3),
                           "scores": [round(float(v), 4) for v in p]} for s, p in zip(spans, scores)],
              "segments": [{"start_s": round(g.start_s, 3), "end_s": round(g.end_s, 3), "label": names[g.label],
                            "score": round(g.score, 4)} for g in segments]})

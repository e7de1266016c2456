"""The feature cache: with the backbone frozen, each video is decoded and embedded once, and every epoch after
that reads per-frame features from disk.

What is kept: for each frame the sampler can pick (every frame; every k-th of a video longer than MAX_FRAMES,
k = ceil(frames / MAX_FRAMES), so each of a clip's T segments still has MAX_FRAMES / T frames to draw from), the
output of the frozen part of the model (`ClipClassifier.cache_depth` steps of the backbone, `embed_frames`) for
the evaluation crop and, when `transform.flip` is on, for its mirror image: float16 (N, V, ...) memory-mapped.
Training still draws new frames each epoch (the sampler runs on the kept frames' timestamps) and picks the
crop or its mirror at random; evaluation takes the unflipped crop, so a cached evaluation scores the pixels an
uncached one does. Random crops and colour jitter are what a frozen cache gives up (docs/benchmarks.md has the
accuracy this costs).

Over 400 lines because the cache is one contract read in one place: its key and fingerprint, the atomic entry
format, the guarded extraction that fills it and the dataset that reads it back all depend on each other.

Entries live in FOLDER/<fingerprint>/<key>/. The fingerprint covers everything that changes a feature: the
backbone, its frozen weights and the depth they reach, the decoder and its decode size, and the transform; the
key covers the video (absolute path, size, modification time). A change to any of them recomputes that entry and
only that entry. An entry is a folder (features.npy, frames.npy, timestamps.npy, meta.json with a BLAKE2 digest
of the features) written under a temporary name and renamed into place in one step, so a kill leaves no torn
entry and two runs that fill one cache at once both end up reading a complete one. A damaged entry is found by
its digest, reported and recomputed. A cache folder that cannot be written (read-only, a full disk) is reported
in one line and the run goes on without the cache.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info
from tqdm import tqdm

from behavior.config import Config, SamplerConfig
from behavior.data.datasets import ClipRecipe, clip_recipe
from behavior.data.loader import VideoFailed, guarded_streams
from behavior.data.sampling import sample_indices
from behavior.data.splits import VideoSample
from behavior.data.video_info import VideoInfo, file_digest
from behavior.errors import VideoError

FORMAT = 1
MAX_FRAMES = 600  # frames kept per video; longer ones keep every k-th frame (see the module docstring)
CHUNK = 32  # frames decoded, transformed and embedded at a time


def cache_folder(setting: str) -> Path | None:
    """The folder `data.feature_cache` names: "auto" is $XDG_CACHE_HOME/behavior/features (~/.cache/...), ""
    turns the cache off."""
    if not setting:
        return None
    if setting == "auto":
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "behavior" / "features"
    return Path(setting).expanduser()


def fingerprint(model, depth: int, recipe: ClipRecipe) -> str:
    """A digest of everything that makes a cached feature what it is, but the video itself."""
    steps = model.backbone.steps()[:depth]
    transform = recipe.transform.cfg
    digest = hashlib.sha256()
    settings = {
        "format": FORMAT,
        "backbone": model.config.backbone,
        "steps": [name for name, _ in steps],
        "resize": transform.resize,
        "crop": transform.crop,
        "mean": list(transform.mean),
        "std": list(transform.std),
        "flip": transform.flip,
        "backend": recipe.backend,
        "decode_short_side": recipe.decode_short_side,
        "max_frames": MAX_FRAMES,
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for _, step in steps:
        for name, tensor in step.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def kept_frames(num_frames: int) -> np.ndarray:
    """int64 (N,): the frames of a video that the cache keeps (every frame, or every k-th of a long video)."""
    step = max(1, math.ceil(num_frames / MAX_FRAMES))
    return np.arange(0, num_frames, step, dtype=np.int64)


@dataclass
class CachedFeatures:
    """One entry: per-frame features of the kept frames of a video."""

    features: (
        np.ndarray
    )  # float16 (N, V, ...), memory-mapped: N kept frames, V crops (the centre crop; its mirror)
    frames: np.ndarray  # int64 (N,): the video's frame numbers they belong to
    info: VideoInfo  # the video's metadata; timestamps are those of the kept frames


class FeatureCache:
    """Entries of one model (its fingerprint) in `folder`."""

    def __init__(self, folder: str | os.PathLike, fingerprint: str):
        self.root = Path(folder)
        self.folder = self.root / fingerprint

    def entry(self, path: str | os.PathLike) -> Path:
        """The entry folder of the video at `path` (raises FileNotFoundError for a missing file)."""
        path = Path(path)
        stat = path.stat()
        key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
        return self.folder / key[:2] / key

    def read(self, path: str | os.PathLike, verify: bool = False) -> CachedFeatures | None:
        """The entry of `path`, memory-mapped; None when there is none. A damaged entry raises `VideoError`
        naming the video and the entry (`verify` also checks the digest of its features)."""
        entry = self.entry(path)
        if not entry.is_dir():
            return None
        try:
            meta = json.loads((entry / "meta.json").read_text())
            features = np.load(entry / "features.npy", mmap_mode="r")
            frames = np.load(entry / "frames.npy")
            timestamps = np.load(entry / "timestamps.npy")
        except (OSError, ValueError, KeyError) as exc:
            raise VideoError(path, f"feature cache entry {entry} is damaged ({exc})") from None
        if (
            list(features.shape) != meta["shape"]
            or len(frames) != len(features)
            or len(timestamps) != len(frames)
        ):
            raise VideoError(
                path, f"feature cache entry {entry} is damaged (its arrays disagree with meta.json)"
            )
        if verify and file_digest(entry / "features.npy") != meta["digest"]:
            raise VideoError(path, f"feature cache entry {entry} is damaged (its digest does not match)")
        info = VideoInfo(
            path=str(path),
            num_frames=meta["num_frames"],
            fps=meta["fps"],
            duration_s=meta["duration_s"],
            width=meta["width"],
            height=meta["height"],
            timestamps=timestamps,
            backend="feature-cache",
        )
        return CachedFeatures(features, frames, info)

    def write(
        self, path: str | os.PathLike, features: np.ndarray, frames: np.ndarray, info: VideoInfo
    ) -> None:
        """Store an entry in one step: written under a temporary name, then renamed into place. When another run
        stored the same entry first, its copy is kept. Raises OSError when the folder cannot be written."""
        entry = self.entry(path)
        entry.parent.mkdir(parents=True, exist_ok=True)
        temporary = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
        shutil.rmtree(temporary, ignore_errors=True)
        try:
            temporary.mkdir()
            np.save(temporary / "features.npy", features.astype(np.float16))
            np.save(temporary / "frames.npy", frames.astype(np.int64))
            np.save(temporary / "timestamps.npy", info.timestamps[frames].astype(np.float64))
            meta = {
                "format": FORMAT,
                "video": str(Path(path).resolve()),
                "shape": list(features.shape),
                "digest": file_digest(temporary / "features.npy"),
                "num_frames": info.num_frames,
                "fps": info.fps,
                "duration_s": info.duration_s,
                "width": info.width,
                "height": info.height,
            }
            (temporary / "meta.json").write_text(json.dumps(meta))
            if entry.exists() and not self._sound(
                path
            ):  # a damaged entry: moved aside in one step, then gone
                aside = entry.with_name(f".{entry.name}.{os.getpid()}.damaged.tmp")
                os.rename(entry, aside)
                shutil.rmtree(aside, ignore_errors=True)
            try:
                os.rename(temporary, entry)
            except OSError:
                if (
                    not entry.is_dir()
                ):  # another run's sound entry got there first: keep it; else a real failure
                    raise
        finally:
            shutil.rmtree(temporary, ignore_errors=True)

    def _sound(self, path: str | os.PathLike) -> bool:
        try:
            return self.read(path, verify=True) is not None
        except VideoError:
            return False


@dataclass
class FrameChunk:
    """Consecutive kept frames of one video, transformed for the model."""

    video: int  # position in the list of videos
    path: str
    frames: torch.Tensor  # float (n, C, crop, crop): the evaluation transform (centre crop)
    first: bool  # the video's first chunk: a video decoded again after a lost worker starts over here
    last: bool
    kept: np.ndarray  # int64 (N,): every kept frame of the video (see `kept_frames`)
    info: VideoInfo


class FrameChunks(IterableDataset):
    """Kept frames of the videos at `videos` (positions in `paths`), in chunks; each worker takes every n-th video."""

    def __init__(self, paths: Sequence[str], recipe: ClipRecipe, videos: list[int]):
        self.paths = paths
        self.recipe = recipe
        self.videos = videos

    def __iter__(self) -> Iterator[FrameChunk | VideoFailed]:
        worker = get_worker_info()
        share = self.videos if worker is None else self.videos[worker.id :: worker.num_workers]
        for i in share:
            try:
                with self.recipe.open(self.paths[i]) as video:
                    kept = kept_frames(video.info.num_frames)
                    for start in range(0, len(kept), CHUNK):
                        frames = video.get_frames(kept[start : start + CHUNK])  # uint8 (n, H, W, C)
                        yield FrameChunk(
                            i,
                            self.paths[i],
                            self.recipe.transform(frames),  # float (n, C, crop, crop)
                            first=start == 0,
                            last=start + CHUNK >= len(kept),
                            kept=kept,
                            info=video.info,
                        )
            except (VideoError, FileNotFoundError, IndexError, ValueError) as exc:
                yield VideoFailed(i, self.paths[i], str(exc))


@dataclass
class FillReport:
    """What filling the cache met."""

    problems: list[str]  # one line each: damaged entries recomputed, videos that cannot be read
    unreadable: dict[str, str]  # video -> why it has no entry (names the file)


@dataclass
class FeatureSource:
    """A model's frozen part and where its features are kept: what `fill` writes and `FeatureClips` reads."""

    cache: FeatureCache
    model: object  # the ClipClassifier
    depth: int  # backbone steps the cache runs (`ClipClassifier.cache_depth`)
    recipe: ClipRecipe  # the evaluation recipe: decoder, decode size, centre crop
    flip: bool  # the mirror image is kept too


def caches_features(cfg: Config, model) -> bool:
    """Whether `cfg` sets up a feature cache for `model`: `data.feature_cache` is on and the model has a frozen
    part before its first trainable or frame-mixing step."""
    return cache_folder(cfg.data.feature_cache) is not None and model.cache_depth() > 0


def feature_source(cfg: Config, model) -> FeatureSource | None:
    """The feature cache of `model` as `cfg` sets it up, or None where nothing can be cached
    (`caches_features`)."""
    if not caches_features(cfg, model):
        return None
    depth = model.cache_depth()
    recipe = clip_recipe(cfg, train=False)
    return FeatureSource(
        FeatureCache(cache_folder(cfg.data.feature_cache), fingerprint(model, depth, recipe)),
        model,
        depth,
        recipe,
        cfg.transform.flip,
    )


def fill(
    source: FeatureSource,
    samples: Sequence[VideoSample],
    workers: int,
    timeout_s: float = 60.0,
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
) -> FillReport:
    """Make sure every video of `samples` has a sound entry: entries that are missing or damaged are computed
    (this process takes every world_size-th of them, from `rank`), decoding in `workers` processes, a decoder that
    hangs or crashes cut off after `timeout_s`. Raises OSError when the cache folder cannot be written."""
    problems: list[str] = []
    unreadable: dict[str, str] = {}
    todo: list[str] = []
    for sample in samples:
        try:
            if source.cache.read(sample.path, verify=True) is None:
                todo.append(sample.path)
        except VideoError as exc:  # damaged: reported, then computed again
            problems.append(f"{exc}; recomputed")
            todo.append(sample.path)
        except FileNotFoundError:
            unreadable[sample.path] = f"{sample.path}: no such file"
    todo = sorted(set(todo))[rank::world_size]
    if not todo:
        return FillReport(problems, unreadable)
    source.cache.folder.mkdir(parents=True, exist_ok=True)
    bar = tqdm(
        total=len(todo), unit="video", desc="embedding (feature cache)", disable=not progress, file=sys.stderr
    )
    kept: dict[int, list[np.ndarray]] = {}
    model = source.model
    was_training = model.training
    model.eval()
    conv = next(p for p in model.parameters() if p.ndim == 4)
    layout = (
        torch.channels_last
        if conv.is_contiguous(memory_format=torch.channels_last)
        else torch.contiguous_format
    )
    # the embedding pass: channels-last convolutions are the faster ones on CPU
    model.to(memory_format=torch.channels_last)
    try:
        records = guarded_streams(
            todo, lambda videos: FrameChunks(todo, source.recipe, videos), workers, timeout_s
        )
        for record in records:
            if isinstance(record, VideoFailed):
                kept.pop(record.video, None)
                problems.append(record.reason)
                unreadable[record.path] = record.reason
                bar.update(1)
                continue
            if record.first:
                kept[record.video] = []
            kept[record.video].append(embed(source, record.frames))
            if record.last:
                features = np.concatenate(kept.pop(record.video))  # (N, V, ...)
                source.cache.write(record.path, features, record.kept, record.info)
                bar.update(1)
    finally:
        model.to(memory_format=layout)
        model.train(was_training)
        bar.close()
    return FillReport(problems, unreadable)


def prepare(
    source: FeatureSource,
    samples: Sequence[VideoSample],
    workers: int,
    rank: int = 0,
    world_size: int = 1,
    timeout_s: float = 60.0,
    quiet: bool = False,
) -> FillReport | None:
    """`fill` the cache for `samples`, saying on stdout what it met (unless `quiet`: the caller reports it); None,
    with one line saying why, when the cache folder cannot be written (the caller then goes on without it)."""
    try:
        report = fill(
            source, samples, workers, timeout_s, rank=rank, world_size=world_size, progress=rank == 0
        )
    except OSError as exc:
        print(
            f"warning: the feature cache {source.cache.root} cannot be written ({exc.strerror or exc}); going on "
            "without it (every pass decodes and runs the whole model)",
            file=sys.stderr if quiet else sys.stdout,
            flush=True,
        )
        return None
    for problem in [] if quiet else report.problems:
        print(f"feature cache: {problem}", flush=True)
    return report


@torch.inference_mode()
def embed(source: FeatureSource, frames: torch.Tensor) -> np.ndarray:
    """float16 (n, V, ...): the frozen part's output for frames (n, C, crop, crop), and for their mirror images."""
    device = next(source.model.parameters()).device
    frames = frames.to(device)
    variants = [frames, frames.flip(-1)] if source.flip else [frames]
    features = [source.model.embed_frames(v, source.depth).float() for v in variants]  # V x (n, ...)
    return torch.stack(features, dim=1).cpu().numpy().astype(np.float16)  # (n, V, ...)


class FeatureClips(Dataset):
    """A data set of cached features, interchangeable with `ClipDataset`: `load_clip(i) -> (features, label,
    info)` with features float (T, ...) (or (V_views, T, ...) when evaluating with several views), drawn by the
    same sampler on the kept frames' timestamps, with the same (seed, epoch, index) generators. Training picks
    the centre crop or its mirror at random per clip; evaluation takes the centre crop."""

    def __init__(
        self,
        samples: Sequence[VideoSample],
        cache: FeatureCache,
        sampler: SamplerConfig,
        train: bool,
        seed: int,
        unreadable: dict[str, str] | None = None,
    ):
        self.samples = list(samples)
        self.unreadable = unreadable or {}  # video -> why it has no entry (from `fill`)
        self.cache = cache
        self.sampler = sampler
        self.train = train
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def load_clip(self, index: int) -> tuple[torch.Tensor, int, VideoInfo]:
        sample = self.samples[index]
        if sample.path in self.unreadable:
            raise VideoError(sample.path, self.unreadable[sample.path].removeprefix(f"{sample.path}: "))
        entry = self.cache.read(sample.path)
        if entry is None:
            raise VideoError(sample.path, "has no feature cache entry")
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.train else None
        kept = len(entry.frames)
        picks = sample_indices(kept, self.sampler, self.train, rng, entry.info.timestamps)  # (V_views, T)
        variant = int(rng.integers(entry.features.shape[1])) if self.train else 0
        features = torch.from_numpy(np.asarray(entry.features[picks.reshape(-1), variant], dtype=np.float32))
        features = features.reshape(*picks.shape, *features.shape[1:])  # (V_views, T, ...)
        if picks.shape[0] == 1:
            features = features[0]  # (T, ...)
        return features, sample.label, entry.info

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        features, label, _ = self.load_clip(index)
        return features, label

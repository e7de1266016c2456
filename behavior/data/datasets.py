"""Data sets: the configured splits, and the map-style `ClipDataset` that turns a video into a clip.

A composed data set is samples x reader x sampler x transform, as in pytorchvideo: `ClipDataset` holds a
list of `VideoSample`s (from `behavior.data.splits`) and produces `(clip float (T, C, H, W), label int)` through
`behavior.data.video.Video`, `behavior.data.sampling.sample_indices` and `behavior.data.transforms.ClipTransform`.

`clip_recipe(cfg)` is the one place that turns a run config into the sampler, transform, decoder and decode
size of a clip; `build_dataset` (training, validation, evaluation, batch prediction, export checks, pictures),
window prediction and live mode all take theirs from it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from behavior.config import ON_ERROR, Config, DataConfig, SamplerConfig
from behavior.data.frame_cache import FrameCache
from behavior.data.sampling import sample_indices
from behavior.data.splits import (
    RootIndex,
    VideoSample,
    read_annotations,
    read_class_index,
    read_split_list,
    scan_class_folders,
    split_by_group,
)
from behavior.data.transforms import ClipTransform
from behavior.data.video import Video, VideoInfo
from behavior.errors import ConfigError, VideoError


@dataclass
class DataSplits:
    class_names: list[str]
    train: list[VideoSample]
    val: list[VideoSample]
    test: list[VideoSample]
    missing: list[tuple[str, int, str]]  # split or CSV entries with no file on disk


def load_splits(cfg: DataConfig, seed: int = 0) -> DataSplits:
    """Resolve the configured data into class names and train / val / test samples."""
    index = RootIndex(cfg.root)
    classes = list(cfg.classes)
    missing: list[tuple[str, int, str]] = []
    if cfg.train_csv or cfg.test_csv:
        if not (cfg.train_csv and cfg.test_csv):
            raise ConfigError("data.train_csv and data.test_csv go together: set both")
        classes, train_list = read_annotations(cfg.train_csv, index, classes or None)
        _, test_list = read_annotations(cfg.test_csv, index, classes)
        train, test = train_list.samples, test_list.samples
        missing = train_list.missing + test_list.missing
    elif cfg.splits:
        splits = Path(cfg.splits)
        classes = classes or read_class_index(splits / "classInd.txt")
        train_list = read_split_list(splits / f"trainlist{cfg.split_id:02d}.txt", index, classes)
        test_list = read_split_list(splits / f"testlist{cfg.split_id:02d}.txt", index, classes)
        train, test = train_list.samples, test_list.samples
        missing = train_list.missing + test_list.missing
    else:
        classes, everything = scan_class_folders(index, classes or None)
        train, test = split_by_group(everything, cfg.test_fraction, seed)
    if not train:
        raise ConfigError(
            f"no training videos found under {cfg.root} (splits={cfg.splits!r}, train_csv={cfg.train_csv!r})"
        )
    train, val = split_by_group(train, cfg.val_fraction, seed + 1)
    return DataSplits(classes, train, val, test, missing)


def class_order(splits: DataSplits, earlier: Sequence[str]) -> DataSplits:
    """The classes of an earlier run first, in its order, then the data's other classes; samples relabelled. So a
    model that grows keeps the rows of the classes it knew, and its class list says which row is which; and a
    checkpoint whose classes came in that order (`--init-from`) is scored against the right rows."""
    names = [*earlier, *(name for name in splits.class_names if name not in earlier)]
    position = [names.index(name) for name in splits.class_names]

    def relabel(samples: list[VideoSample]) -> list[VideoSample]:
        return [replace(s, label=position[s.label]) for s in samples]

    return replace(
        splits,
        class_names=names,
        train=relabel(splits.train),
        val=relabel(splits.val),
        test=relabel(splits.test),
    )


class ClipDataset(Dataset):
    """Map-style data set of clips: `dataset[i] -> (clip, label)`.

    clip: float32 (T, C, H, W) normalised, or (V, T, C, H, W) when evaluating with V > 1 views.
    A video that cannot be decoded raises `VideoError` naming it; `SafeClips` turns that into a counted
    skip. Randomness (training sampling, crop, flip) is drawn from a generator seeded by
    (seed, epoch, index), so results do not depend on which worker loads which item.
    """

    def __init__(
        self,
        samples: Sequence[VideoSample],
        sampler: SamplerConfig,
        transform: ClipTransform,
        train: bool,
        seed: int = 0,
        backend: str = "auto",
        decode_short_side: int | None = None,
        cache: FrameCache | None = None,
    ):
        self.samples = list(samples)
        self.sampler = sampler
        self.transform = transform
        self.train = train
        self.seed = seed
        self.backend = backend
        self.decode_short_side = decode_short_side
        self.cache = cache
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def rng_for(self, index: int) -> np.random.Generator | None:
        return np.random.default_rng([self.seed, self.epoch, index]) if self.train else None

    def load_frames(
        self, index: int, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray, VideoInfo]:
        """Decode the sampled frames of one video: uint8 (V*T, H, W, C), the indices int64 (V, T), and the
        video's metadata."""
        sample = self.samples[index]
        opened = (
            self.cache.open(sample.path, self.backend, self.decode_short_side)
            if self.cache is not None
            else Video(sample.path, backend=self.backend, short_side=self.decode_short_side)
        )
        with opened as video:
            info = video.info
            indices = sample_indices(info.num_frames, self.sampler, self.train, rng, info.timestamps)
            frames = video.get_frames(indices.reshape(-1), last=True)  # uint8 (V*T, H, W, C)
        return frames, indices, info

    def load_clip(self, index: int) -> tuple[torch.Tensor, int, VideoInfo]:
        """`(clip, label)` as `dataset[index]` gives them, plus the video's metadata."""
        rng = self.rng_for(index)
        frames, indices, info = self.load_frames(index, rng)
        clip = self.transform(frames, rng)  # float (V*T, C, H, W); one crop for all views
        if indices.shape[0] > 1:
            clip = clip.reshape(indices.shape[0], indices.shape[1], *clip.shape[1:])  # (V, T, C, H, W)
        return clip, self.samples[index].label, info

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        clip, label, _ = self.load_clip(index)
        return clip, label


@dataclass(frozen=True)
class ClipRecipe:
    """How a run config turns a video into a clip: which frames (`sampler`), the decoder (`backend`) and the size
    it is asked for (`decode_short_side`, None for full size), and the `transform`."""

    sampler: SamplerConfig
    transform: ClipTransform
    backend: str
    decode_short_side: int | None

    def open(self, path: str | os.PathLike, sequential: bool = False) -> Video:
        """The video at `path`, opened with this recipe's decoder and decode size (`sequential`: see `Video`)."""
        return Video(path, backend=self.backend, short_side=self.decode_short_side, sequential=sequential)


def clip_recipe(cfg: Config, train: bool = False, sampler: SamplerConfig | None = None) -> ClipRecipe:
    """The sampler, transform, decoder and decode size of a run config: the training transform (random crop,
    flip, jitter) when `train`, the evaluation one (centre crop) otherwise; the config's sampler unless `sampler`
    replaces it (window prediction and live mode sample one view of a span)."""
    return ClipRecipe(
        sampler=sampler or cfg.sampler,
        transform=ClipTransform(cfg.transform, train=train),
        backend=cfg.data.backend,
        decode_short_side=cfg.transform.resize if cfg.data.decode_at_resize else None,
    )


def span_recipe(cfg: Config, time_based: bool = True) -> ClipRecipe:
    """The evaluation recipe for one clip over a span of a video (a window of a long recording, or live mode's
    buffer): one view, placed on the real timestamps unless `time_based` is False (windows counted in frames)."""
    return clip_recipe(cfg, sampler=replace(cfg.sampler, num_views=1, time_based=time_based))


def build_dataset(
    samples: Sequence[VideoSample],
    cfg: Config,
    train: bool,
    sampler: SamplerConfig | None = None,
    cached: bool = False,
) -> ClipDataset:
    """The one way a `ClipDataset` is made from a run config, for training, validation, evaluation, batch
    prediction, export checks and pictures alike: `clip_recipe`'s sampler, transform and decoder, and the
    config's seed. `cached` reads through `data.cache_dir` when set (training and validation, which read the
    same videos every epoch)."""
    recipe = clip_recipe(cfg, train, sampler)
    return ClipDataset(
        samples,
        recipe.sampler,
        recipe.transform,
        train=train,
        seed=cfg.train.seed,
        backend=recipe.backend,
        decode_short_side=recipe.decode_short_side,
        cache=FrameCache(cfg.data.cache_dir, cfg.transform.resize) if cached and cfg.data.cache_dir else None,
    )


@dataclass
class ClipFailure:
    index: int
    path: str
    reason: str


@dataclass
class ClipBatch:
    clip: torch.Tensor  # float (B, T, C, H, W) or (B, V, T, C, H, W)
    label: torch.Tensor  # int64 (B,)
    index: torch.Tensor  # int64 (B,): positions in the data set
    failures: list[ClipFailure]  # videos of this batch that could not be decoded
    videos: list[dict] = field(default_factory=list)  # per clip: frames and duration_s of its video

    def pin_memory(self) -> ClipBatch:
        self.clip = self.clip.pin_memory()
        return self


class SafeClips(Dataset):
    """What a DataLoader iterates: `(index, clip, label)`, or a `ClipFailure` for a video that failed to
    decode, so one bad video never stops a run. With `on_error="raise"` the failure propagates."""

    def __init__(self, dataset: ClipDataset, on_error: str = "skip"):
        if on_error not in ON_ERROR:
            raise ConfigError(f"on_error={on_error!r} is unknown; valid: {', '.join(ON_ERROR)}")
        self.dataset = dataset
        self.on_error = on_error

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        try:
            clip, label, info = self.dataset.load_clip(index)
        except (VideoError, FileNotFoundError, IndexError) as exc:
            if self.on_error == "raise":
                raise
            return ClipFailure(index, self.dataset.samples[index].path, str(exc))
        return index, clip, label, {"frames": info.num_frames, "duration_s": info.duration_s}


def collate_clips(items: list) -> ClipBatch:
    """Stack the clips that decoded; keep the failures aside. An all-failed batch has B = 0."""
    good = [item for item in items if not isinstance(item, ClipFailure)]
    failures = [item for item in items if isinstance(item, ClipFailure)]
    if good:
        clip = torch.stack([c for _, c, _, _ in good])  # float (B, T, C, H, W) or (B, V, T, C, H, W)
    else:
        clip = torch.empty(0)
    label = torch.tensor([lab for _, _, lab, _ in good], dtype=torch.int64)  # (B,)
    index = torch.tensor([i for i, _, _, _ in good], dtype=torch.int64)  # (B,)
    return ClipBatch(clip, label, index, failures, [meta for _, _, _, meta in good])

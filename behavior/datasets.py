"""Data sets: the configured splits, and the map-style `ClipDataset` that turns a video into a clip.

A composed data set is samples x reader x sampler x transform, as in pytorchvideo: `ClipDataset` holds a
list of `VideoSample`s (from `behavior.splits`) and produces `(clip float (T, C, H, W), label int)` through
`behavior.video.Video`, `behavior.sampling.sample_indices` and `behavior.transforms.ClipTransform`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from behavior.cache import FrameCache
from behavior.sampling import SamplerConfig, sample_indices
from behavior.splits import (
    RootIndex,
    VideoSample,
    read_annotations,
    read_class_index,
    read_split_list,
    scan_class_folders,
    split_by_group,
)
from behavior.transforms import ClipTransform
from behavior.video import Video, VideoError, VideoInfo

if TYPE_CHECKING:
    from behavior.config import Config

ON_ERROR = ("skip", "raise")


@dataclass
class DataConfig:
    root: str = "data/synthetic/videos"  # videos laid out as root/<class>/<video>
    splits: str = "data/synthetic/splits"  # folder with classInd.txt, trainlistNN.txt, testlistNN.txt; "" = none
    split_id: int = 1  # which trainlistNN / testlistNN pair (UCF101 has 1, 2, 3)
    train_csv: str = ""  # annotation list (path,label) for training; replaces the split files when set
    test_csv: str = ""  # annotation list for testing
    classes: list[str] = field(default_factory=list)  # fixed class order; empty: classInd.txt or folder names
    test_fraction: float = 0.25  # with neither split files nor CSVs: share of each class's groups held out
    val_fraction: float = 0.15  # share of each class's training groups held out to choose best.pt (0 = none)
    backend: str = "auto"  # video decoder: auto (decord, then PyAV) | decord | pyav
    decode_at_resize: bool = False  # let the decoder scale to transform.resize: pays on 1080p, slower below ~720p
    cache_dir: str = ""  # keep training/validation frames at transform.resize here: epochs after the first never decode
    on_error: str = "skip"  # a video that fails to decode in training: skip (and count) | raise
    num_workers: int = 2  # DataLoader worker processes decoding clips

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise ValueError(f"data.on_error={self.on_error!r} is unknown; valid: {', '.join(ON_ERROR)}")
        for name in ("test_fraction", "val_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"data.{name} must lie in [0, 1), got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {self.num_workers}")


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
            raise ValueError("data.train_csv and data.test_csv go together: set both")
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
        raise ValueError(f"no training videos found under {cfg.root} (splits={cfg.splits!r}, "
                         f"train_csv={cfg.train_csv!r})")
    train, val = split_by_group(train, cfg.val_fraction, seed + 1)
    return DataSplits(classes, train, val, test, missing)


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

    def load_frames(self, index: int, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, VideoInfo]:
        """Decode the sampled frames of one video: uint8 (V*T, H, W, C), the indices int64 (V, T), and the
        video's metadata."""
        sample = self.samples[index]
        opened = (self.cache.open(sample.path, self.backend, self.decode_short_side) if self.cache is not None
                  else Video(sample.path, backend=self.backend, short_side=self.decode_short_side))
        with opened as video:
            info = video.info
            indices = sample_indices(info.num_frames, self.sampler, self.train, rng, info.timestamps)
            frames = video.get_frames(indices.reshape(-1))  # uint8 (V*T, H, W, C)
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


def build_dataset(samples: Sequence[VideoSample], cfg: Config, train: bool, sampler: SamplerConfig | None = None,
                  cached: bool = False) -> ClipDataset:
    """The one way a `ClipDataset` is made from a run config, for training, validation, evaluation, batch
    prediction, export checks and pictures alike: the config's sampler (or `sampler`), its decoder settings,
    the training or evaluation transform, and its seed. `cached` reads through `data.cache_dir` when set
    (training and validation, which read the same videos every epoch)."""
    return ClipDataset(
        samples,
        sampler or cfg.sampler,
        ClipTransform(cfg.transform, train=train),
        train=train,
        seed=cfg.train.seed,
        backend=cfg.data.backend,
        decode_short_side=cfg.transform.resize if cfg.data.decode_at_resize else None,
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
            raise ValueError(f"on_error={on_error!r} is unknown; valid: {', '.join(ON_ERROR)}")
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

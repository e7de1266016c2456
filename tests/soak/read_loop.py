"""Read clips through DataLoader workers in a fresh process, as training does, and print the resident memory of
this process and its children after every batch, as JSON: `python read_loop.py VIDEO_FOLDER READS`.

Run by test_soak.py in a subprocess, so that what the test process itself holds (a trained model, earlier
tests' objects) does not enter the figures.
"""

from __future__ import annotations

import json
import sys
import time

import psutil
import torch
from torch.utils.data import DataLoader

from behavior.config import SamplerConfig, TransformConfig
from behavior.data.datasets import ClipDataset, SafeClips, collate_clips
from behavior.data.splits import VideoSample, find_videos
from behavior.data.transforms import ClipTransform
from behavior.models.registry import IMAGENET_MEAN, IMAGENET_STD


def tree_rss_mb(process: psutil.Process) -> tuple[float, int]:
    """RSS of a process and all its children, in MB, and how many processes that is."""
    total, members = 0, [process, *process.children(recursive=True)]
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20, len(members)


def main(folder: str, num_reads: int) -> None:
    videos = find_videos(folder)
    dataset = ClipDataset(
        [VideoSample(str(p), 0) for p in videos],
        SamplerConfig(num_frames=8),
        ClipTransform(TransformConfig(resize=36, crop=32, mean=IMAGENET_MEAN, std=IMAGENET_STD), train=True),
        train=True,
        decode_short_side=36,
    )
    loader = DataLoader(
        SafeClips(dataset),
        batch_size=10,
        shuffle=True,
        num_workers=2,
        persistent_workers=True,
        collate_fn=collate_clips,
        generator=torch.Generator().manual_seed(0),
    )
    process = psutil.Process()
    reads, epoch, samples, started = 0, 0, [], time.perf_counter()
    while reads < num_reads:
        dataset.set_epoch(epoch)
        for batch in loader:
            reads += len(batch.index) + len(batch.failures)
            samples.append((reads, *tree_rss_mb(process)))
        epoch += 1
    print(
        json.dumps(
            {
                "reads": reads,
                "epochs": epoch,
                "videos": len(videos),
                "samples": samples,
                "seconds": time.perf_counter() - started,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

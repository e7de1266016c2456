"""GPU rows, only where a CUDA device is present: training clips/s of the demo model with AMP and channels-last
(as `behavior.engine.train` runs on a GPU), and the decode rate the loader would need to keep it fed, against the CPU
loader's measured rate per worker."""

from __future__ import annotations

import time

import torch
from harness import (
    DEMO_CONFIG,
    Settings,
    bench_config,
    invert,
    section_result,
    spread,
    synthetic_set,
    table,
    target,
)

from behavior.config import load_config
from behavior.data.datasets import ClipDataset, load_splits
from behavior.data.transforms import ClipTransform
from behavior.engine.runtime import autocast
from behavior.engine.train import build_optimizer
from behavior.models.classifier import build_model
from behavior.synthetic import CLASSES

TITLE = "GPU training and the decode rate it needs"
BATCHES = (16, 64)


def training_seconds(cfg, batch: int, repeats: int) -> list[float]:
    """Seconds per training step on the GPU, AMP + channels-last, one random batch used again and again."""
    device = torch.device("cuda")
    size, frames = cfg.transform.crop, cfg.sampler.num_frames
    model = (
        build_model(cfg.model, CLASSES, num_frames=frames).to(device).to(memory_format=torch.channels_last)
    )
    optimizer = build_optimizer(model, cfg)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=cfg.optim.label_smoothing)
    clip = torch.randn(batch, frames, 3, size, size, device=device)
    label = torch.randint(0, len(CLASSES), (batch,), device=device)
    seconds = []
    for step in range(repeats + 3):  # 3 warm-up steps: kernel selection, allocator
        torch.cuda.synchronize()
        started = time.perf_counter()
        with autocast(device, True):
            loss = criterion(model(clip).float(), label)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        torch.cuda.synchronize()
        if step >= 3:
            seconds.append(time.perf_counter() - started)
    return seconds


def loader_clips_per_s(settings: Settings, count: int) -> dict:
    """Clips/s of one loader process (training transform, no cache): what each worker adds."""
    cfg = bench_config(synthetic_set(settings), cache=settings.work / "cache" / "gpu")
    samples = load_splits(cfg.data, seed=cfg.train.seed).train[:count]
    dataset = ClipDataset(
        samples,
        cfg.sampler,
        ClipTransform(cfg.transform, train=True),
        train=True,
        seed=cfg.train.seed,
        backend=cfg.data.backend,
        decode_short_side=cfg.transform.resize if cfg.data.decode_at_resize else None,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker
    try:
        seconds = []
        for _ in range(3):
            started = time.perf_counter()
            for i in range(len(dataset)):
                dataset[i]
            seconds.append(time.perf_counter() - started)
    finally:
        torch.set_num_threads(threads)
    return invert(spread(seconds), len(dataset))


def run(settings: Settings) -> dict:
    if not torch.cuda.is_available():
        reason = "no CUDA device on this machine (torch.cuda.is_available() is False); the harness measured the CPU only"
        return section_result(
            TITLE,
            target("GPU rows only where a GPU is lent", None, None, None),
            [],
            [f"not measured: {reason}."],
            gpu={"measured": False, "reason": reason},
        )
    cfg = load_config(DEMO_CONFIG)
    frames = cfg.sampler.num_frames
    repeats = settings.pick(20, 5)
    per_worker = loader_clips_per_s(settings, settings.pick(64, 8))
    rows = []
    for batch in BATCHES:
        rate = invert(spread(training_seconds(cfg, batch, repeats)), batch)
        rows.append([batch, rate, rate["median"] * frames, rate["median"] / per_worker["median"]])
    tables = [
        table(
            f"{torch.cuda.get_device_name(0)}: demo model, AMP + channels-last, T={frames}, "
            f"{cfg.transform.crop}x{cfg.transform.crop}",
            ["batch", "training clips/s", "frames/s the loader must decode", "CPU loader processes needed"],
            rows,
        ),
        table(
            "one CPU loader process (training transform, no cache, 1 thread)",
            ["figure", "clips/s"],
            [["clips/s per worker", per_worker]],
        ),
    ]
    notes = [
        "the GPU steps reuse one random batch: they measure the model, not the loader; 'processes needed' is the "
        "GPU's clips/s divided by one CPU loader process's clips/s (decoding from video, the cache left out)."
    ]
    return section_result(
        TITLE,
        target("GPU rows only where a GPU is lent", None, None, None),
        tables,
        notes,
        gpu={"measured": True, "device": torch.cuda.get_device_name(0)},
    )

"""`behavior models`: what each backbone and head costs, in parameters, FLOPs and clips per second.

Also used by the benchmarks: `count_flops`, `measure_clips_per_second` and `measure_matmul_gflops` (this machine's
fp32 matmul rate, the yardstick the achieved GFLOPS are compared with).
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from behavior.config import ModelConfig
from behavior.engine.runtime import eval_mode
from behavior.models.classifier import ClipClassifier, build_model
from behavior.models.heads import build_head
from behavior.models.registry import BACKBONES, HEADS


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: ClipClassifier, num_frames: int, size: int) -> float:
    """GFLOPs of one forward pass on one clip (1, T, 3, size, size), in eval mode.

    Counted by torch.utils.flop_counter: matrix multiplies and convolutions at 2 FLOPs per multiply-add;
    element-wise work (BN, activations, attention gating, pooling) is not counted."""
    clip = torch.zeros(1, num_frames, 3, size, size)
    counter = FlopCounterMode(display=False)
    with eval_mode(model), counter:
        model(clip)
    return counter.get_total_flops() / 1e9


def measure_clips_per_second(
    model: nn.Module, num_frames: int, size: int, batch_size: int = 16, repeats: int = 3
) -> float:
    """Forward clips/s at `batch_size` in eval and inference mode: one warm-up, then the median of `repeats`."""
    clip = torch.randn(batch_size, num_frames, 3, size, size)
    times = []
    with eval_mode(model):
        model(clip)  # warm-up: first-call allocations and kernel selection
        for _ in range(repeats):
            start = time.perf_counter()
            model(clip)
            times.append(time.perf_counter() - start)
    return batch_size / statistics.median(times)


def measure_matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """This machine's fp32 matmul GFLOPS with torch's current threads: median of `repeats` n×n @ n×n."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    times = []
    with torch.inference_mode():
        a @ b  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def _format_count(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"


def format_model_table(num_frames: int = 8, size: int = 112, measure_speed: bool = False) -> str:
    """A text table: one row per backbone with the default config otherwise (parameters, GFLOPs per clip and,
    with `measure_speed`, forward clips/s at batch 16 and the share of the machine's matmul GFLOPS it reaches),
    then the heads' own cost on top of the default backbone."""
    class_names = [f"class{i}" for i in range(5)]  # K = 5, as in the synthetic set; K barely changes the cost
    batch_size = 16
    lines = [
        f"backbones (default config: head={ModelConfig.head}, attention={ModelConfig.attention}, "
        f"width={ModelConfig.width}), T={num_frames}, {size}x{size}, {len(class_names)} classes"
    ]
    header = f"{'backbone':<20} {'params':>9} {'GFLOPs/clip':>12}"
    matmul = None
    if measure_speed:
        matmul = measure_matmul_gflops()
        header += f" {'clips/s@16':>11} {'GFLOPS':>8} {'of matmul':>10}"
    lines.append(header)
    for name in BACKBONES:  # one row per entry of the registry
        model = build_model(ModelConfig(backbone=name), class_names, num_frames)
        gflops = count_flops(model, num_frames, size)
        row = f"{name:<20} {_format_count(count_parameters(model)):>9} {gflops:>12.2f}"
        if matmul is not None:
            clips_per_s = measure_clips_per_second(model, num_frames, size, batch_size)
            achieved = gflops * clips_per_s
            row += f" {clips_per_s:>11.2f} {achieved:>8.1f} {achieved / matmul:>9.0%}"
        lines.append(row)
    if matmul is not None:
        lines.append(
            f"fp32 matmul (2048x2048) on this machine: {matmul:.1f} GFLOPS with "
            f"{torch.get_num_threads()} threads, measured in this run"
        )

    default = build_model(ModelConfig(), class_names, num_frames)
    dim = default.backbone.num_features
    lines += [
        "",
        f"heads (on {ModelConfig.backbone} features: D={dim}, T={num_frames})",
        f"{'head':<20} {'params':>9} {'MFLOPs/clip':>12}",
    ]
    for name in HEADS:
        head = build_head(name, dim, len(class_names))
        counter = FlopCounterMode(display=False)
        with eval_mode(head), counter:
            head(torch.zeros(1, num_frames, dim))
        lines.append(
            f"{name:<20} {_format_count(count_parameters(head)):>9} {counter.get_total_flops() / 1e6:>12.2f}"
        )
    return "\n".join(lines)

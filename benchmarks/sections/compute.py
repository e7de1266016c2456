"""Compute efficiency: GFLOPS the demo model achieves, as a share of the same machine's fp32 matmul GFLOPS.

FLOPs are counted by `torch.utils.flop_counter` (matmuls and convolutions only, 2 per multiply-add), for the
forward in eval mode (`behavior.tools.profile.count_flops`) and for forward + backward in train mode. Every model variant
is timed in turns with `behavior.tools.profile.measure_matmul_gflops`, at the same torch thread count, and each round's
ratio uses that round's matmul figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import nullcontext

import torch
from harness import DEMO_CONFIG, REPO, Settings, ratios, section_result, spread, table, target
from torch.utils.flop_counter import FlopCounterMode

from behavior.config import load_config
from behavior.engine.train import build_optimizer
from behavior.models.classifier import build_model
from behavior.synthetic import CLASSES
from behavior.tools.profile import count_flops, measure_matmul_gflops

TITLE = "Compute efficiency"
THRESHOLD = 0.5  # inference GFLOPS as a share of fp32 matmul GFLOPS
BATCH = 32
HEADLINE = "inference_mode, fp32"  # how evaluation and prediction run the model on the CPU (score_loader)
MATMUL_OPS = ("conv", "mm", "linear", "matmul")  # ops whose FLOPs the counter counts


def bf16() -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16)


def build(cfg, channels_last: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(cfg.model, CLASSES, num_frames=cfg.sampler.num_frames)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def forward_runner(
    model: torch.nn.Module, clip: torch.Tensor, grad_mode, autocast=None
) -> Callable[[], None]:
    model.eval()

    def forward() -> None:
        with grad_mode(), autocast or nullcontext():
            model(clip)

    return forward


def training_runner(model: torch.nn.Module, clip: torch.Tensor, cfg, autocast=None) -> Callable[[], None]:
    """Forward, loss, backward and AdamW step, as one training step does them."""
    model.train()
    optimizer = build_optimizer(model, cfg)
    label = torch.randint(0, len(CLASSES), (clip.shape[0],))
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=cfg.optim.label_smoothing)

    def step() -> None:
        with autocast or nullcontext():
            loss = criterion(model(clip).float(), label)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def training_gflops(cfg, clip: torch.Tensor) -> float:
    """GFLOPs of forward + backward per clip, counted in train mode."""
    model = build(cfg).train()
    counter = FlopCounterMode(display=False)
    with counter:
        model(clip).sum().backward()
    return counter.get_total_flops() / 1e9 / clip.shape[0]


def bf16_matmul_gflops(n: int = 2048, repeats: int = 3) -> float:
    """This machine's bf16 matmul GFLOPS (AMX where present), for context only."""
    a, b = torch.randn(n, n, dtype=torch.bfloat16), torch.randn(n, n, dtype=torch.bfloat16)
    with torch.inference_mode():
        a @ b
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - started)
    return 2 * n**3 / sorted(times)[len(times) // 2] / 1e9


def measure_with_matmul(variants: dict[str, Callable[[], None]], repeats: int) -> tuple[dict, list[float]]:
    """Seconds of each variant and the matmul GFLOPS, in turns, round after round (one warm-up round first)."""
    seconds: dict[str, list[float]] = defaultdict(list)
    matmul = []
    for round_ in range(repeats + 1):
        gflops = measure_matmul_gflops(repeats=3)
        for name, work in variants.items():
            started = time.perf_counter()
            work()
            if round_:
                seconds[name].append(time.perf_counter() - started)
        if round_:
            matmul.append(gflops)
    return seconds, matmul


def profile_forward(model: torch.nn.Module, clip: torch.Tensor) -> dict[str, float]:
    """Self CPU seconds of one inference forward by op name."""
    model.eval()
    with (
        torch.inference_mode(),
        torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof,
    ):
        model(clip)
    return {event.key: event.self_cpu_time_total / 1e6 for event in prof.key_averages()}


def compile_probe(settings: Settings, repeats: int, timeout_s: int) -> dict:
    """torch.compile in a child process with an empty compilation cache, so the compile time is that of a first
    compilation; a failure or a run past `timeout_s` is recorded, not raised."""
    command = [
        sys.executable,
        str(REPO / "benchmarks" / "compile_probe.py"),
        "--batch",
        str(BATCH),
        "--repeats",
        str(repeats),
    ]
    with tempfile.TemporaryDirectory(dir=settings.work, prefix="inductor-cache-") as cache:
        environment = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "TRITON_CACHE_DIR": cache}
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout_s, cwd=REPO, env=environment
            )
        except subprocess.TimeoutExpired:
            return {"ok": False, "reason": f"compilation and timing did not finish within {timeout_s} s"}
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])[:400]
        return {"ok": False, "reason": f"torch.compile failed (exit {done.returncode}): {tail}"}
    return {"ok": True, **json.loads(done.stdout.strip().splitlines()[-1])}


def helps(base: dict, other: dict) -> str:
    """Whether a variant speeds the baseline up, from the medians of the two rates."""
    gain = other["median"] / base["median"]
    if gain > 1.05:
        return f"yes, {gain:.2f}x"
    if gain < 0.95:
        return f"no, {gain:.2f}x (slower)"
    return f"no change ({gain:.2f}x)"


def run(settings: Settings) -> dict:
    cfg = load_config(DEMO_CONFIG)
    size, frames = cfg.transform.crop, cfg.sampler.num_frames
    clip = torch.randn(BATCH, frames, 3, size, size)  # (B, T, C, H, W)
    forward_gflops = count_flops(build(cfg), frames, size)
    train_gflops = training_gflops(cfg, clip)
    repeats = settings.pick(5, 2)
    threads = torch.get_num_threads()

    plain, last = build(cfg), build(cfg, channels_last=True)
    inference = {
        "no_grad, fp32": forward_runner(plain, clip, torch.no_grad),
        HEADLINE: forward_runner(plain, clip, torch.inference_mode),
        "inference_mode, fp32, channels-last": forward_runner(last, clip, torch.inference_mode),
        "inference_mode, bf16 autocast": forward_runner(plain, clip, torch.inference_mode, bf16()),
    }
    training = {
        "training step, fp32": training_runner(build(cfg), clip, cfg),
        "training step, fp32, channels-last": training_runner(build(cfg, channels_last=True), clip, cfg),
        "training step, bf16 autocast": training_runner(build(cfg), clip, cfg, bf16()),
    }
    seconds, matmul = measure_with_matmul({**inference, **training}, repeats)
    torch.set_num_threads(1)
    try:
        one_thread = {
            f"{HEADLINE}, 1 thread": forward_runner(plain, clip, torch.inference_mode),
            "training step, fp32, 1 thread": training_runner(build(cfg), clip, cfg),
        }
        seconds_1, matmul_1 = measure_with_matmul(one_thread, repeats)
    finally:
        torch.set_num_threads(threads)
    bf16_peak = bf16_matmul_gflops()
    compiled = compile_probe(settings, repeats, settings.pick(300, 240))

    def row(name: str, values: list[float], gflops: float, peak: list[float]) -> list:
        achieved = [gflops * BATCH / s for s in values]
        return [name, spread([BATCH / s for s in values]), spread(achieved), ratios(achieved, peak)]

    rows = {name: row(name, seconds[name], forward_gflops, matmul) for name in inference}
    rows |= {name: row(name, seconds[name], train_gflops, matmul) for name in training}
    rows |= {
        name: row(name, seconds_1[name], forward_gflops if "inference" in name else train_gflops, matmul_1)
        for name in one_thread
    }
    if compiled["ok"]:
        rows["torch.compile, inference_mode, fp32"] = row(
            "torch.compile, inference_mode, fp32",
            compiled["compiled_s"],
            forward_gflops,
            compiled["matmul_gflops"],
        )
        rows["eager in the compile process"] = row(
            "eager in the compile process", compiled["eager_s"], forward_gflops, compiled["matmul_gflops"]
        )
    base_inference, base_training = rows[HEADLINE][1], rows["training step, fp32"][1]
    for name, cells in rows.items():
        base = base_training if name.startswith("training") else base_inference
        if name == "eager in the compile process":
            cells.append("-")
        elif name.startswith("torch.compile"):
            cells.append(helps(rows["eager in the compile process"][1], cells[1]))
        else:
            cells.append(
                helps(base, cells[1]) if name not in (HEADLINE, "training step, fp32") else "baseline"
            )

    headline = rows[HEADLINE][3]
    met = headline["median"] >= THRESHOLD
    times = profile_forward(plain, clip)
    total = sum(times.values())
    counted = sum(t for name, t in times.items() if any(op in name for op in MATMUL_OPS))
    others = sorted(
        ((t, name) for name, t in times.items() if not any(op in name for op in MATMUL_OPS)), reverse=True
    )
    in_counted = forward_gflops * BATCH / counted if counted else float("nan")
    profile_text = (
        f"{100 * counted / total:.0f}% of the forward's CPU time is in convolutions and matmuls, which run "
        f"at {in_counted:.1f} GFLOPS there; the other {100 * (total - counted) / total:.0f}% goes to ops "
        "whose FLOPs are not counted ("
        + ", ".join(f"{name} {100 * t / total:.0f}%" for t, name in others[:4])
        + ")"
    )
    limit = (
        ""
        if met
        else (
            f"the forward reaches {rows[HEADLINE][2]['median']:.1f} GFLOPS against "
            f"{spread(matmul)['median']:.0f} GFLOPS of fp32 matmul; {profile_text}"
        )
    )
    goal = target(
        "inference GFLOPS of the demo model at batch 32 at least 0.5 of the machine's fp32 matmul GFLOPS",
        headline["median"],
        THRESHOLD,
        met,
        limit,
    )
    tables = [
        table(
            f"demo model, batch {BATCH}, T={frames}, {size}x{size}; forward {forward_gflops:.3f} GFLOPs per clip, "
            f"forward + backward {train_gflops:.3f}",
            ["variant", "clips/s", "GFLOPS achieved", "share of fp32 matmul", "helps?"],
            list(rows.values()),
        ),
        table(
            "this machine's matmul (2048x2048), measured in the same run",
            ["figure", "GFLOPS"],
            [
                [f"fp32, {threads} threads (measure_matmul_gflops)", spread(matmul)],
                ["fp32, 1 thread", spread(matmul_1)],
                [
                    f"bf16, {threads} threads (context for the bf16 rows; the target compares with fp32)",
                    bf16_peak,
                ],
            ],
        ),
    ]
    notes = [
        f"forward profile ({HEADLINE}, torch.profiler self CPU time by op): {profile_text}.",
        "channels-last converts the model's weights (the clip is folded to (B*T, C, H, W) inside the model); "
        "training steps include the AdamW update, whose element-wise work the FLOP counter does not count.",
        "1-thread rows are divided by the 1-thread matmul figure; the others by the default-thread one.",
    ]
    if compiled["ok"]:
        notes.append(
            f"torch.compile: first call (compilation) took {compiled['compile_s']:.0f} s with an empty compilation "
            "cache; it is measured in its own process against an eager model and a matmul measured there."
        )
    else:
        notes.append(f"torch.compile: not measured: {compiled['reason']}.")
    return section_result(TITLE, goal, tables, notes)

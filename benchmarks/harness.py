"""What every benchmark section shares: where files go, how a figure is timed and summarised, the machine
description, the benchmark's own synthetic data, configs and an untrained checkpoint.

A section is a function `run(settings) -> dict` that returns a `section_result`: its target (with the
measured value and whether it is met), its tables and notes. `run.py` adds the date, machine and command.
"""

from __future__ import annotations

import inspect
import os
import platform
import shlex
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import torch

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / "work"
REAL_CLIPS = Path(__file__).resolve().parents[2] / "shared" / "real-clips"
DEMO_CONFIG = REPO / "configs" / "demo.yaml"


def demo_clips_per_class() -> int:
    """The number of clips per class `behavior demo` generates: the benchmark's default data size."""
    from behavior.tools.demo import run_demo

    return int(inspect.signature(run_demo).parameters["clips_per_class"].default)


@dataclass
class Settings:
    """How big a run is. `quick` shrinks every section for debugging; its files live apart from the real ones."""

    quick: bool
    clips_per_class: int
    work: Path  # WORK for real runs, WORK / "quick" for quick ones

    def pick(self, full, quick):
        """`quick` in a quick run, `full` otherwise."""
        return quick if self.quick else full


# ---------------------------------------------------------------------------------------------- figures


def spread(values: Sequence[float]) -> dict:
    """min, median and max of repeated measurements (the form every timed figure is stored in)."""
    values = [float(v) for v in values]
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def invert(seconds: dict, amount: float) -> dict:
    """A rate `amount / seconds` from a spread of seconds: the slowest repeat gives the min rate."""
    return {
        "min": amount / seconds["max"],
        "median": amount / seconds["median"],
        "max": amount / seconds["min"],
        "n": seconds["n"],
    }


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> dict:
    """The spread of per-repeat ratios of two figures measured side by side (interleaved) in one run."""
    return spread([a / b for a, b in zip(numerators, denominators)])


def time_interleaved(
    variants: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Seconds of each variant, `repeats` times, the variants taking turns in every round, so that a change of
    the machine's load during the run touches them alike. `warmup` untimed rounds come first."""
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(warmup + repeats):
        for name, work in variants.items():
            started = time.perf_counter()
            work()
            if round_ >= warmup:
                seconds[name].append(time.perf_counter() - started)
    return seconds


def target(
    text: str, measured: float | None, threshold: float | None, met: bool | None, limit: str = "", **details
) -> dict:
    """A section's target: the issue's wording, the measured value against the threshold, met or not, and
    (for a miss) what limits it, in words filled from the measurement."""
    return {"text": text, "measured": measured, "threshold": threshold, "met": met, "limit": limit, **details}


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence]) -> dict:
    """A table for the report: cells are numbers, text, None (shown as '-') or `spread` dicts."""
    return {"title": title, "columns": list(columns), "rows": [list(row) for row in rows]}


def section_result(
    title: str, target_: dict, tables: Sequence[dict], notes: Sequence[str] = (), **extra
) -> dict:
    return {"title": title, "target": target_, "tables": list(tables), "notes": list(notes), **extra}


# ---------------------------------------------------------------------------------------------- the machine


def _cpu_info() -> tuple[str, list[str]]:
    model, flags = platform.processor() or "unknown", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("unknown", platform.processor()):
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = value.split()
    except OSError:
        pass
    return model, flags


def _version(module: str) -> str:
    try:
        return str(__import__(module).__version__)
    except (ImportError, AttributeError):
        return "not installed"


def _own_cpu_seconds() -> float:
    """CPU seconds used so far by this process and its live children (e.g. DataLoader workers)."""
    total = 0.0
    me = psutil.Process()
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += times.user + times.system
    return total


def busy_percent(seconds: float = 1.0) -> float:
    """Share of all cores that processes outside this harness used over `seconds`: other people's load."""
    own = _own_cpu_seconds()
    psutil.cpu_percent(interval=None)
    time.sleep(seconds)
    everything = psutil.cpu_percent(interval=None)
    own = _own_cpu_seconds() - own
    return round(max(0.0, everything - 100.0 * own / (seconds * (psutil.cpu_count() or 1))), 1)


def describe_machine() -> dict:
    """CPU model, cores, RAM, library versions and the load when the description is taken."""
    model, flags = _cpu_info()
    import av  # before decord, as behavior.data.decord_reader does

    return {
        "cpu": model,
        "cpu_features": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8") if f in flags],
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "decord": _version("decord"),
        "pyav": av.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "busy_percent": busy_percent(),
    }


# ---------------------------------------------------------------------------------------------- data and models


def synthetic_folder(settings: Settings, difficulty: str = "medium", seed: int = 0) -> Path:
    return settings.work / "data" / f"{difficulty}-{settings.clips_per_class}pc-seed{seed}"


def synthetic_set(settings: Settings, difficulty: str = "medium", seed: int = 0) -> Path:
    """The benchmark's own synthetic data set (OUT/videos, OUT/splits), generated once and kept in the work folder."""
    from behavior.synthetic import generate_dataset

    folder = synthetic_folder(settings, difficulty, seed)
    if (folder / "splits" / "testlist01.txt").is_file():
        return folder
    partial = folder.with_name(folder.name + ".partial")  # a killed generation leaves only this behind
    shutil.rmtree(partial, ignore_errors=True)
    print(
        f"  generating {settings.clips_per_class} clips per class ({difficulty}, seed {seed}) in {folder}",
        flush=True,
    )
    generate_dataset(
        partial, clips_per_class=settings.clips_per_class, difficulty=difficulty, seed=seed, workers=2
    )
    partial.rename(folder)
    return folder


def bench_config(data: Path, overrides: Sequence[str] = (), cache: Path | None = None):
    """configs/demo.yaml pointed at a benchmark data set; when the demo caches frames, the cache goes to `cache`
    (a benchmark folder), so the demo's own cache is never touched."""
    from behavior.config import load_config

    sets = [f"data.root={data / 'videos'}", f"data.splits={data / 'splits'}"]
    if load_config(DEMO_CONFIG).data.cache_dir:
        if cache is None:
            raise ValueError("the demo config caches frames: pass a benchmark cache folder")
        sets.append(f"data.cache_dir={cache}")
    return load_config(DEMO_CONFIG, sets + list(overrides))


def training_clip_seconds(settings: Settings, difficulty: str = "medium", seed: int = 0) -> float:
    """Median length of the training videos of the benchmark set, as training records it for live mode."""
    from behavior.synthetic import plan_dataset

    specs = plan_dataset(settings.clips_per_class, difficulty, seed)
    return float(np.median([s.num_frames / s.fps for s in specs if s.split == "train"]))


def untrained_checkpoint(settings: Settings, path: Path, overrides: Sequence[str] = ()) -> Path:
    """A checkpoint of the demo model (with `overrides`) with its initial weights, for the sections that measure
    speed only (the cost of a forward does not depend on the weights' values)."""
    from behavior.engine.checkpoint import save_checkpoint
    from behavior.engine.train import build_optimizer, build_scheduler, checkpoint_state
    from behavior.models.classifier import build_model
    from behavior.synthetic import CLASSES

    if path.is_file():
        return path
    cfg = bench_config(synthetic_folder(settings), overrides, cache=settings.work / "cache" / "untrained")
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, CLASSES, num_frames=cfg.sampler.num_frames)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch=1)
    state = checkpoint_state(
        model, optimizer, scheduler, 0, cfg, CLASSES, 0.0, {}, training_clip_seconds(settings)
    )
    return save_checkpoint(state, path)


def shown(command: Sequence[str]) -> str:
    """A command line as the report shows it: the interpreter and paths inside the repository made relative."""

    def word(text: str) -> str:
        if text == sys.executable:
            return ".venv/bin/python" if Path(text).is_relative_to(REPO) else "python"
        path = Path(text)
        return str(path.relative_to(REPO)) if path.is_absolute() and path.is_relative_to(REPO) else text

    return shlex.join(word(str(w)) for w in command)


def memory_of_tree(process: psutil.Process) -> tuple[int, int]:
    """(RSS, PSS) bytes of a process and all its children. RSS counts a page shared by n processes n times (the
    pages forked workers share with their parent, for one); PSS counts 1/n of it in each, so its sum is what the
    tree really holds."""
    rss = pss = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            info = member.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss, pss

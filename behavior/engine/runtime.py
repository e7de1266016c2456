"""Where and how the model runs, decided once for every job: the device, the process group under torchrun,
the autocast policy, and the eval-mode context.

- `choose_device("auto" | "cpu" | "cuda")`: cuda when present and allowed, else the CPU.
- `setup_distributed(device)`: join the process group that torchrun describes in the environment (NCCL on a
  GPU, gloo on the CPU); a single process needs nothing and gets `Distributed()`.
- `autocast(device, amp, cpu_bf16)`: bf16 (fp16 on a GPU without bf16) on a GPU when `amp`; bf16 on a CPU only
  when `cpu_bf16` asks for it (training steps) and the CPU computes bf16 natively; fp32 otherwise, so
  validation, evaluation, prediction and export run fp32 on a CPU.
- `eval_mode(model)`: eval mode and `torch.inference_mode()` for a block, the model's mode restored after.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from behavior.errors import ConfigError


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def choose_device(wanted: str = "auto", local_rank: int = 0) -> torch.device:
    """The device a job runs on: `wanted` is train.device's value (auto | cpu | cuda); under torchrun each
    process takes the GPU of its `local_rank`."""
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda, but no CUDA device is available; use train.device=auto or cpu")
    if wanted == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def setup_distributed(wanted_device: str = "auto") -> Distributed:
    """Join the process group that torchrun describes in the environment (WORLD_SIZE, RANK, LOCAL_RANK, the
    master address); NCCL when the job will run on GPUs, gloo on CPUs. One process needs nothing."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    on_gpu = wanted_device != "cpu" and torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if on_gpu else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def cpu_has_native_bf16() -> bool:
    """True where oneDNN computes bf16 natively (AVX512-BF16 or AMX); bf16 would be emulated, and slow, elsewhere."""
    try:  # oneDNN's own check; a private op, so a torch without it counts as "no"
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast(device: torch.device, amp: bool = False, cpu_bf16: bool = False) -> AbstractContextManager:
    """The one mixed-precision policy. On a GPU: bf16 autocast (fp16 where the GPU has no bf16) when `amp`.
    On a CPU: bf16 autocast only when `cpu_bf16` (train.cpu_bf16, for training steps) and the CPU computes bf16
    natively (docs/benchmarks.md has the speed-up); fp32 otherwise."""
    if device.type == "cuda":
        if not amp:
            return nullcontext()
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    if cpu_bf16 and cpu_has_native_bf16():
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
    return nullcontext()


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode under `torch.inference_mode()`; its training mode is restored on exit."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield model
    finally:
        model.train(was_training)

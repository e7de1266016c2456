"""Convolutions that always take oneDNN's CPU kernel at inference.

PyTorch picks a CPU convolution kernel per call. For a batch of one small input (a 3x3 kernel and at most 20,480
input values: one 64 px RGB frame, or 16 channels of 32 x 32) it leaves oneDNN for its own im2col + GEMM kernel,
which on the 2-core AVX-512 benchmark machine took 3.2x as long for the demo model's first convolution (184 vs 57
us, channels-last) and 1.6x for its last (234 vs 144 us). Those are exactly the calls of the online shift's
one-frame step and of live mode. `use_onednn_convolutions` makes every eligible convolution of a model call oneDNN
directly (`torch.mkldnn_convolution`, the kernel PyTorch itself uses for bigger inputs) whenever the call runs
float32 on the CPU without autograd or autocast; everything else (training, CUDA, bf16) takes the ordinary path.
Outputs equal the ordinary path's to float rounding (the kernels sum in a different order).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from behavior.models.efficientnet import Conv2dSame


def _cpu_autocast_on() -> bool:
    """Whether autocast is on for the CPU (torch 2.3 names the call differently; later versions deprecate it)."""
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch 2.3: no device argument
        return torch.is_autocast_cpu_enabled()


class _OneDnn:
    """Replaces nn.Conv2d's `_conv_forward` (the call after any padding of its own): oneDNN for float32 CPU
    inference, the ordinary path otherwise."""

    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if (
            x.device.type == "cpu"
            and x.dtype == torch.float32
            and weight.dtype == torch.float32
            and not torch.is_grad_enabled()
            and not _cpu_autocast_on()
        ):
            return torch.mkldnn_convolution(
                x, weight, bias, self.padding, self.stride, self.dilation, self.groups
            )  # (N, C_out, H_out, W_out)
        return super()._conv_forward(x, weight, bias)


class OneDnnConv2d(_OneDnn, nn.Conv2d):
    """nn.Conv2d whose float32 CPU inference calls go to oneDNN whatever their size (see the module)."""


class OneDnnConv2dSame(_OneDnn, Conv2dSame):
    """EfficientNet's Conv2dSame (its TensorFlow padding first), then oneDNN as `OneDnnConv2d`."""


# the classes that are changed, to what; a subclass not named here keeps its own forward
_ONEDNN = {nn.Conv2d: OneDnnConv2d, Conv2dSame: OneDnnConv2dSame}


def _eligible(module: nn.Module) -> bool:
    return (
        type(module) in _ONEDNN
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)  # "same" / "valid" are resolved per call by nn.Conv2d
    )


def use_onednn_convolutions(model: nn.Module) -> int:
    """Make every plain nn.Conv2d of `model` (zero padding given in pixels) an `OneDnnConv2d`, and EfficientNet's
    Conv2dSame an `OneDnnConv2dSame`, in place: the same parameters and state dict, only the kernel choice
    changes. Nothing happens where PyTorch was built without oneDNN. Returns how many were changed."""
    if not torch.backends.mkldnn.is_available():
        return 0
    changed = 0
    for module in model.modules():
        if _eligible(module):
            module.__class__ = _ONEDNN[type(module)]
            changed += 1
    return changed

"""Convolutions that always take oneDNN's CPU kernel at inference.

PyTorch picks a CPU convolution kernel per call. For a batch of one small input (a 3x3 kernel and at most 20,480
input values: one 64 px RGB frame, or 16 channels of 32 x 32) it leaves oneDNN for its own im2col + GEMM kernel,
which on the 2-core AVX-512 benchmark machine took 3.2x as long for the demo model's first convolution (184 vs 57
us, channels-last) and 1.6x for its last (234 vs 144 us). Those are exactly the calls of the online shift's
one-frame step and of live mode. `use_onednn_convolutions` makes every eligible convolution of a model call oneDNN
directly (`torch.mkldnn_convolution`, the kernel PyTorch itself uses for bigger inputs) whenever the call runs
float32 on the CPU without autograd or autocast; everything else (training, CUDA, bf16) takes the ordinary path.
Outputs equal the ordinary path's to float rounding (the kernels sum in a different order).

oneDNN wants a convolution's weights in a blocked layout of its own, and `torch.mkldnn_convolution` reorders the
dense weights into it at every call: for a batch of one that reorder is a large share of the call (EfficientNet-
Lite0's last 1x1 convolution, 1152 -> 320 channels on 4 x 4 pixels: 159 us, 58 us with the weights reordered once).
So the weights are reordered once per input shape and kept beside the module (`_packed_weight`; again when the
weights change) and the call goes to `torch.ops.mkldnn._convolution_pointwise`, the call PyTorch's own compiler
makes with such weights. The temporal head's Conv1d runs the same way, as a convolution over a 1-pixel-high image.
"""

from __future__ import annotations

import weakref

import torch
from torch import Tensor, nn

from behavior.models.efficientnet import Conv2dSame


def _cpu_autocast_on() -> bool:
    """Whether autocast is on for the CPU (torch 2.3 names the call differently; later versions deprecate it)."""
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch 2.3: no device argument
        return torch.is_autocast_cpu_enabled()


def _takes_onednn(x: Tensor, weight: Tensor) -> bool:
    """Whether a convolution call is float32 CPU inference: the calls oneDNN takes here."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and not torch.is_grad_enabled()
        and not _cpu_autocast_on()
    )


def _pointwise_call():
    """`torch.ops.mkldnn._convolution_pointwise` (PyTorch's compiler's call for reordered weights), or None where
    this PyTorch has none."""
    try:
        return torch.ops.mkldnn._convolution_pointwise
    except (AttributeError, RuntimeError):
        return None


_POINTWISE = _pointwise_call()
_PACKED_SHAPES = 4  # reordered weights kept per module: one per input shape (live mode's frame, a clip, ...)
# module -> {(weight version, weight storage, input shape): the weights in oneDNN's layout}; beside the module, so
# that its state dict, copies and pickles stay those of a plain convolution
_PACKED: weakref.WeakKeyDictionary[nn.Module, dict[tuple, Tensor]] = weakref.WeakKeyDictionary()


def _packed_weight(
    module: nn.Module, weight: Tensor, input_shape: torch.Size, padding, stride, dilation
) -> Tensor:
    """`weight` (C_out, C_in / groups, kH, kW) reordered into oneDNN's layout for inputs of `input_shape`, made
    on the first call with that shape and kept until the weights change (an in-place update bumps `_version`)."""
    packed = _PACKED.setdefault(module, {})
    key = (weight._version, weight.data_ptr(), tuple(input_shape))
    if key not in packed:
        if len(packed) >= _PACKED_SHAPES:
            packed.clear()
        packed[key] = torch._C._nn.mkldnn_reorder_conv2d_weight(
            weight.to_mkldnn(), padding, stride, dilation, module.groups, list(input_shape)
        )
    return packed[key]


def _onednn_conv2d(
    module: nn.Module, x: Tensor, weight: Tensor, bias: Tensor | None, padding, stride, dilation
):
    """A 2D convolution of x (N, C_in, H, W) on oneDNN: with the weights reordered once where PyTorch offers
    the call for that, else `torch.mkldnn_convolution` (which reorders them every time)."""
    if _POINTWISE is None:
        return torch.mkldnn_convolution(x, weight, bias, padding, stride, dilation, module.groups)
    packed = _packed_weight(module, weight, x.shape, padding, stride, dilation)
    return _POINTWISE(
        x, packed, bias, padding, stride, dilation, module.groups, "none", [], None
    )  # (N, C_out, H_out, W_out)


class _OneDnn:
    """Replaces nn.Conv2d's `_conv_forward` (the call after any padding of its own): oneDNN for float32 CPU
    inference, the ordinary path otherwise."""

    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if not _takes_onednn(x, weight):
            return super()._conv_forward(x, weight, bias)
        return _onednn_conv2d(
            self, x, weight, bias, list(self.padding), list(self.stride), list(self.dilation)
        )  # (N, C_out, H_out, W_out)


class OneDnnConv2d(_OneDnn, nn.Conv2d):
    """nn.Conv2d whose float32 CPU inference calls go to oneDNN whatever their size (see the module)."""


class OneDnnConv2dSame(_OneDnn, Conv2dSame):
    """EfficientNet's Conv2dSame (its TensorFlow padding first), then oneDNN as `OneDnnConv2d`."""


class OneDnnConv1d(nn.Conv1d):
    """nn.Conv1d (the temporal head's) whose float32 CPU inference calls go to oneDNN as a convolution over a
    1-pixel-high image, with reordered weights as `OneDnnConv2d`."""

    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if not _takes_onednn(x, weight):
            return super()._conv_forward(x, weight, bias)
        y = _onednn_conv2d(
            self,
            x.unsqueeze(2),  # (N, C_in, 1, L)
            weight.unsqueeze(2),  # (C_out, C_in / groups, 1, k)
            bias,
            [0, self.padding[0]],
            [1, self.stride[0]],
            [1, self.dilation[0]],
        )  # (N, C_out, 1, L_out)
        return y.squeeze(2)  # (N, C_out, L_out)


# the classes that are changed, to what; a subclass not named here keeps its own forward
_ONEDNN = {nn.Conv2d: OneDnnConv2d, Conv2dSame: OneDnnConv2dSame, nn.Conv1d: OneDnnConv1d}


def _eligible(module: nn.Module) -> bool:
    return (
        type(module) in _ONEDNN
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)  # "same" / "valid" are resolved per call by nn.Conv2d
    )


def use_onednn_convolutions(model: nn.Module) -> int:
    """Make every plain nn.Conv2d of `model` (zero padding given in pixels) an `OneDnnConv2d`, EfficientNet's
    Conv2dSame an `OneDnnConv2dSame` and every plain nn.Conv1d an `OneDnnConv1d`, in place: the same parameters
    and state dict, only the kernel choice changes. Nothing happens where PyTorch was built without oneDNN.
    Returns how many were changed."""
    if not torch.backends.mkldnn.is_available():
        return 0
    changed = 0
    for module in model.modules():
        if _eligible(module):
            module.__class__ = _ONEDNN[type(module)]
            changed += 1
    return changed

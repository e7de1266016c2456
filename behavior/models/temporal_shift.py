"""TSM: the temporal shift (Lin et al., "TSM: Temporal Shift Module for Efficient Video Understanding", ICCV
2019, arXiv:1811.08383).

Some channels of every frame are replaced by the same channels of a neighbouring frame: no parameters and no
FLOPs are added, and a 2D CNN with shifts inside it sees motion. The backbones put the shift at the start of
every residual branch ("residual shift", the variant the paper found best) or, without residual branches,
before a convolution ("in-place shift"). Two kinds (`model.shift`):

- `two_way` (the paper's offline TSM): 1/8 of the channels come from the next frame, 1/8 from the previous. A
  frame's features then depend on the frames after it, so a backbone with these shifts needs whole clips of
  exactly `num_frames` frames, in order, folded into the batch as (b t).
- `online` (the paper's online TSM, section 4): 1/8 of the channels come from the previous frame only (zeros for
  the first frame). A frame's features depend on the frames before it alone, so frames can also be streamed one
  at a time: each shift keeps the slice it would hand to the next frame (`stream`), and a new frame costs one
  backbone pass. Streaming frames from a fresh state gives exactly the clip forward over the same frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def _in_layout_of(out: Tensor, x: Tensor) -> Tensor:
    """`out` (B·T, C, H, W), which torch.cat made contiguous, in the channels-last layout of `x` where x has it
    (the torch engine's and GPU training's): the convolution after the shift then takes channels-last input and
    gives channels-last output, which is faster than mixing layouts (the demo model's clip: 1.1-1.3x)."""
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return out.contiguous(memory_format=torch.channels_last)
    return out


class _Stream:
    """A shift's state while streaming, in a plain object: nn.Module's attribute assignment costs ~1 us each, six
    times per shift and frame."""

    __slots__ = ("active", "previous", "kept")

    def __init__(self) -> None:
        self.active = False  # between start_step and end_step
        self.previous: Tensor | None = (
            None  # float (N, C/8, H, W) of the streams' previous frames; None: zeros
        )
        self.kept: Tensor | None = None  # float (N, C/8, H, W) of the new frames, for the next step


class TemporalShift(nn.Module):
    """TSM shift over (b t)-folded frames: float (B·T, C, H, W) -> same shape, no parameters.

    Two-way: channels [0, C/8) of frame t take frame t+1's values, channels [C/8, C/4) take frame t-1's, the rest
    stay. Online: channels [0, C/8) take frame t-1's, the rest stay. Frames shifted in from outside the clip are
    zeros (as in the reference implementation).

    While streaming (`start_step` ... `end_step`), the input is one new frame of each of N streams, (N, C, H, W):
    channels [0, C/8) take the slice its stream's previous frame kept (zeros for a stream's first frame), and
    the frame's own slice is kept for the next one."""

    def __init__(self, num_frames: int, fold_div: int = 8, online: bool = False):
        super().__init__()
        self.num_frames = num_frames
        self.fold_div = fold_div
        self.online = online
        self.stream = _Stream()

    def forward(self, x: Tensor) -> Tensor:
        if self.stream.active:
            return self._step(x)
        clips = rearrange(x, "(b t) c h w -> b t c h w", t=self.num_frames)  # (B, T, C, H, W)
        fold = clips.shape[2] // self.fold_div
        if self.online:
            from_prev = F.pad(
                clips[:, :-1, :fold], (0, 0, 0, 0, 0, 0, 1, 0)
            )  # (B, T, fold, H, W), zeros at t = 0
            out = torch.cat([from_prev, clips[:, :, fold:]], dim=2)  # (B, T, C, H, W)
            return _in_layout_of(rearrange(out, "b t c h w -> (b t) c h w"), x)
        from_next = F.pad(
            clips[:, 1:, :fold], (0, 0, 0, 0, 0, 0, 0, 1)
        )  # (B, T, fold, H, W), zeros at t = T-1
        from_prev = F.pad(
            clips[:, :-1, fold : 2 * fold], (0, 0, 0, 0, 0, 0, 1, 0)
        )  # (B, T, fold, H, W), zeros at t = 0
        out = torch.cat([from_next, from_prev, clips[:, :, 2 * fold :]], dim=2)  # (B, T, C, H, W)
        return _in_layout_of(rearrange(out, "b t c h w -> (b t) c h w"), x)

    def _step(self, x: Tensor) -> Tensor:
        fold = x.shape[1] // self.fold_div
        stream = self.stream
        stream.kept = x[:, :fold]  # (N, fold, H, W): what the stream's next frame takes
        previous = torch.zeros_like(stream.kept) if stream.previous is None else stream.previous
        return torch.cat([previous, x[:, fold:]], dim=1)  # (N, C, H, W)

    def start_step(self, previous: Tensor | None) -> None:
        """Stream the next forward: one new frame per stream, `previous` the slices their previous frames kept
        (None for the streams' first frames)."""
        if not self.online:
            raise ValueError(
                "the two-way shift takes channels from the next frame: frames cannot be streamed"
            )
        self.stream.active, self.stream.previous, self.stream.kept = True, previous, None

    def end_step(self) -> Tensor | None:
        """Back to clips; returns the slice the streamed frames kept (None when the forward did not get here)."""
        kept = self.stream.kept
        self.stream.active, self.stream.previous, self.stream.kept = False, None, None
        return kept

    def extra_repr(self) -> str:
        return f"num_frames={self.num_frames}, fold_div={self.fold_div}, online={self.online}"

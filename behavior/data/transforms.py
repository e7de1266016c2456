"""The one clip transform: uint8 frames (T, H, W, C) -> normalised float clip (T, C, H, W).

Training and evaluation differ only in randomness (random crop and flip versus centre crop), as in
torchvision's `references/video_classification` presets; batch and live inference use the evaluation
transform. The same crop and flip apply to every frame of a clip, so motion stays coherent.
"""

from __future__ import annotations

import functools
import platform

import numpy as np
import torch
import torch.nn.functional as F

from behavior.config import TransformConfig
from behavior.errors import UsageError


def resize_short_side(frames: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (T, H, W, C) -> uint8 (T, h, w, C) with min(h, w) = size, aspect kept (antialiased bilinear).

    The one resize of the pipeline: the transform and the frame cache both call it, so cached and decoded
    frames are the same pixels. Frames already at that size are returned as they are."""
    height, width = frames.shape[1:3]
    if min(height, width) == size:
        return frames
    # torchvision's `resize(..., [size], antialias=True)`, pixel for pixel (a test compares them): the long side
    # truncated, and on CPUs with torch's fast uint8 kernel (AVX2, AVX-512, ARM) the uint8 frames interpolated
    # as they are, elsewhere in float32 and rounded back. Written here so that inference does not import
    # torchvision (seconds of `behavior live`'s start-up).
    if height <= width:
        new_height, new_width = size, int(size * width / height)
    else:
        new_height, new_width = int(size * height / width), size
    chw = frames.permute(0, 3, 1, 2)  # (T, C, H, W) view with channels-last strides
    native = _native_uint8_resize()
    resized = F.interpolate(
        chw if native else chw.float(),
        size=[new_height, new_width],
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )
    if not native:
        resized = resized.round_().to(torch.uint8)
    return resized.permute(0, 2, 3, 1)  # uint8 (T, h, w, C)


@functools.cache  # asked for every clip; the CPU does not change
def _native_uint8_resize() -> bool:
    """Whether torch interpolates uint8 images itself on this CPU (torchvision's rule for bilinear)."""
    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") or platform.machine() in (
        "aarch64",
        "arm64",
    )


def _jitter_colours(clip: torch.Tensor, brightness: float, contrast: float, saturation: float) -> None:
    """Scale brightness, contrast (about the clip's mean grey) and saturation (about each pixel's grey) of a float
    clip (T, C, H, W) in 0..255, in place; the same for every frame, so the clip's motion is untouched."""
    grey = clip[:, 0] * 0.299 + clip[:, 1] * 0.587 + clip[:, 2] * 0.114  # (T, H, W)
    clip.mul_(brightness)
    grey.mul_(brightness)
    clip.sub_(grey.mean()).mul_(contrast).add_(grey.mean())
    grey.sub_(grey.mean()).mul_(contrast).add_(grey.mean())
    clip.sub_(grey.unsqueeze(1)).mul_(saturation).add_(grey.unsqueeze(1))
    clip.clamp_(0.0, 255.0)


class ClipTransform:
    """Callable `(frames uint8 (T, H, W, C), rng) -> float32 (T, C, crop, crop)`, normalised.

    `train=True`: random crop and (optionally) horizontal flip, drawn from `rng`; `train=False`: centre
    crop, no randomness (rng may be None). Frames of any size are first resized so the short side equals
    `cfg.resize` (skipped when the decoder already delivered that size).
    """

    def __init__(self, cfg: TransformConfig, train: bool):
        if cfg.mean is None or cfg.std is None:
            raise UsageError(
                "transform.mean/std are not set: they come from the backbone when the TransformConfig is part of "
                "a Config (load_config, or Config(...)); a bare TransformConfig needs them given"
            )
        self.cfg = cfg
        self.train = train
        self._mean = torch.tensor(cfg.mean).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(cfg.std).view(1, 3, 1, 1) * 255.0
        self._inverse_std = 1.0 / self._std

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
        clip = resize_short_side(
            torch.from_numpy(np.ascontiguousarray(frames)), self.cfg.resize
        )  # uint8 (T, h, w, C)
        height, width = clip.shape[1:3]
        size = self.cfg.crop
        if self.train:
            if rng is None:
                raise ValueError("the training transform is random: pass a numpy Generator")
            top = int(rng.integers(0, height - size + 1))
            left = int(rng.integers(0, width - size + 1))
            flip = self.cfg.flip and bool(rng.random() < 0.5)
            jitter = (
                1.0 + self.cfg.color_jitter * (2.0 * rng.random(3) - 1.0) if self.cfg.color_jitter else None
            )
        else:
            top, left, flip, jitter = (height - size) // 2, (width - size) // 2, False, None
        clip = clip[:, top : top + size, left : left + size]  # uint8 (T, crop, crop, C)
        if flip:
            clip = clip.flip(2)
        out = torch.empty((clip.shape[0], 3, size, size))  # float32 (T, C, crop, crop)
        out.copy_(clip.permute(0, 3, 1, 2))
        if jitter is not None:
            _jitter_colours(out, *jitter)
        return out.sub_(self._mean).mul_(self._inverse_std)  # normalised in place: no temporaries

    def crop_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) in the pixels of a (height, width) frame: the region the evaluation transform
        keeps, so that a map over the model's input can be drawn back onto the frame."""
        scale = self.cfg.resize / min(height, width)
        resized_h, resized_w = round(height * scale), round(width * scale)
        top, left = (resized_h - self.cfg.crop) // 2, (resized_w - self.cfg.crop) // 2
        return (
            round(left / scale),
            round(top / scale),
            round((left + self.cfg.crop) / scale),
            round((top + self.cfg.crop) / scale),
        )

    def to_uint8(self, clip: torch.Tensor) -> np.ndarray:
        """Undo the normalisation for display: float (..., C, H, W) -> uint8 (..., H, W, C)."""
        pixels = clip.detach().cpu().float() * self._std.view(3, 1, 1) + self._mean.view(3, 1, 1)
        return pixels.clamp(0, 255).round().to(torch.uint8).movedim(-3, -1).numpy()

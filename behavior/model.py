"""The clip classifier: a 2D backbone with spatial attention on every frame, then a temporal head.

    clip (B, T, C, H, W) ──fold 'b t c h w -> (b t) c h w'──▶ backbone ─▶ (B·T, D)
        ──unfold '(b t) d -> b t d'──▶ head ─▶ logits (B, K)

- `forward(clip) -> logits (B, K)`: the plain path, used by training, evaluation and ONNX export
  (fixed T, dynamic B). The model returns logits only; the loss lives in the training loop.
- `forward_features(clip) -> (B, T, D)` and `forward_head(features) -> (B, K)`: the two halves.
- `forward_frames(frames (N, C, H, W)) -> (N, D)`: the backbone on independent frames. Live inference runs each
  new frame through it once, keeps the last T features in a ring buffer and calls `forward_head` on the
  buffer; with `temporal_shift=False` that gives exactly `forward(clip)` (tested).
- `forward(clip, return_attention=True) -> (logits, AttentionMaps)` and
  `forward_frames(frames, return_attention=True) -> (features, map (N, h, w) | None)` read the attention back
  for display.

With T = 1 the same model is a per-image classifier.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from behavior.attention import ATTENTIONS
from behavior.backbones import BACKBONES, DEFAULT_ATTENTION_STAGES, NUM_STAGES, Backbone, build_backbone
from behavior.heads import HEADS, build_head


@dataclass
class ModelConfig:
    backbone: str = "seed-cnn"  # seed-cnn | resnet18 | mobilenet_v3_small: the 2D CNN run on every frame
    width: float = 1.0  # channel multiplier of seed-cnn and mobilenet_v3_small; below 1 buys CPU speed
    attention: str = "spatial"  # spatial | cbam | none: the layer after each of attention_stages
    attention_kernel: int = 7  # odd k of the spatial attention's k×k conv; 7 beat 3 in CBAM's ablation
    attention_stages: tuple[int, ...] | None = None  # stages followed by attention; None: seed-cnn 3, 6, others 3, 4
    head: str = "tconv"  # avg | max | attention | tconv: pooling over T; only tconv sees frame order
    dropout: float = 0.5  # before the classifier; TSM's default for fine-tuning on small data sets
    pretrained: str = "none"  # none | imagenet (torch hub's local cache only, never downloaded) | state-dict path
    temporal_shift: bool = False  # TSM: 1/4 of the channels swap with neighbouring frames; order-aware, 0 FLOPs

    def __post_init__(self) -> None:
        if isinstance(self.attention_stages, list):  # a YAML list
            self.attention_stages = tuple(self.attention_stages)
        validate_model(self)


def validate_model(cfg: ModelConfig) -> None:
    """Raise ValueError naming the field and the valid values when a model setting is out of range."""
    for name, value, valid in (
        ("backbone", cfg.backbone, BACKBONES),
        ("attention", cfg.attention, ATTENTIONS),
        ("head", cfg.head, HEADS),
    ):
        if value not in valid:
            raise ValueError(f"model.{name}={value!r} is unknown; valid: {', '.join(valid)}")
    if isinstance(cfg.width, bool) or not isinstance(cfg.width, (int, float)) or cfg.width <= 0:
        raise ValueError(f"model.width must be a positive number, got {cfg.width!r}")
    if cfg.backbone == "resnet18" and cfg.width != 1.0:
        raise ValueError(f"model.width={cfg.width}: resnet18 has fixed widths; valid: 1.0")
    k = cfg.attention_kernel
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
        raise ValueError(f"model.attention_kernel must be a positive odd integer (3, 5, 7, ...), got {k!r}")
    if cfg.attention_stages is not None:
        num_stages = NUM_STAGES[cfg.backbone]
        stages = cfg.attention_stages
        if not isinstance(stages, tuple) or not all(
            isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= num_stages for s in stages
        ):
            raise ValueError(
                f"model.attention_stages={stages!r}: {cfg.backbone} takes a list of stage numbers 1..{num_stages} "
                f"(default {list(DEFAULT_ATTENTION_STAGES[cfg.backbone])})"
            )
        if len(set(stages)) != len(stages):
            raise ValueError(f"model.attention_stages={list(stages)} lists a stage twice")
    if isinstance(cfg.dropout, bool) or not isinstance(cfg.dropout, (int, float)) or not 0 <= cfg.dropout < 1:
        raise ValueError(f"model.dropout must be in [0, 1), got {cfg.dropout!r}")
    if not isinstance(cfg.pretrained, str) or not cfg.pretrained:
        raise ValueError(f"model.pretrained={cfg.pretrained!r}; valid: 'none', 'imagenet' or the path of a state dict")
    if not isinstance(cfg.temporal_shift, bool):
        raise ValueError(f"model.temporal_shift must be true or false, got {cfg.temporal_shift!r}")


@dataclass
class AttentionMaps:
    """What the model attended to, for display. Spatial maps are float in [0, 1], one value per feature cell."""

    spatial: Tensor | None  # (B, T, h, w): the map of the last attention layer; None when attention="none"
    layers: dict[str, Tensor] = field(default_factory=dict)  # every layer: "stage{i}" -> (B, T, h_i, w_i)
    temporal: Tensor | None = None  # (B, T): the attention head's frame weights, summing to 1; None for other heads


class ClipClassifier(nn.Module):
    """Backbone on every frame, temporal head over the frames. Build it with `build_model`."""

    def __init__(self, cfg: ModelConfig, backbone: Backbone, head: nn.Module, class_names: Sequence[str],
                 num_frames: int):
        super().__init__()
        self.config = cfg
        self.backbone = backbone
        self.head = head
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.num_frames = num_frames  # T the model was built for; the temporal shift requires exactly this T

    def _check_clip(self, clip: Tensor) -> None:
        if clip.ndim != 5:
            raise ValueError(f"expected a clip (B, T, C, H, W), got shape {tuple(clip.shape)}")
        if self.config.temporal_shift and clip.shape[1] != self.num_frames:
            raise ValueError(
                f"this model shifts channels between frames (temporal_shift=True) and was built for T="
                f"{self.num_frames}; got a clip of T={clip.shape[1]}"
            )

    def forward_features(self, clip: Tensor) -> Tensor:
        """Per-frame features: float clip (B, T, C, H, W) -> float (B, T, D)."""
        self._check_clip(clip)
        frames = rearrange(clip, "b t c h w -> (b t) c h w")  # (B·T, C, H, W)
        return rearrange(self.backbone(frames), "(b t) d -> b t d", t=clip.shape[1])  # (B, T, D)

    def forward_head(self, features: Tensor) -> Tensor:
        """Logits float (B, K) of per-frame features (B, T, D)."""
        return self.head(features)  # (B, K)

    def forward(self, clip: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, AttentionMaps]:
        """Logits float (B, K) of a clip (B, T, C, H, W); with `return_attention` also its `AttentionMaps`."""
        if not return_attention:
            return self.forward_head(self.forward_features(clip))
        self._check_clip(clip)
        num_frames = clip.shape[1]
        frames = rearrange(clip, "b t c h w -> (b t) c h w")  # (B·T, C, H, W)
        features, maps = self.backbone(frames, return_attention=True)  # (B·T, D), {(B·T, h_i, w_i)}
        features = rearrange(features, "(b t) d -> b t d", t=num_frames)  # (B, T, D)
        logits, temporal = self.head(features, return_weights=True)  # (B, K), (B, T) | None
        layers = {k: rearrange(m, "(b t) h w -> b t h w", t=num_frames) for k, m in maps.items()}
        spatial = list(layers.values())[-1] if layers else None  # (B, T, h, w)
        return logits, AttentionMaps(spatial=spatial, layers=layers, temporal=temporal)

    def forward_frames(
        self, frames: Tensor, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor | None]:
        """Features float (N, D) of independent frames (N, C, H, W); with `return_attention` also the last
        attention layer's map float (N, h, w) in [0, 1] (None when attention="none")."""
        if self.config.temporal_shift:
            raise ValueError(
                "forward_frames runs frames independently, but temporal_shift=True mixes neighbouring frames: "
                "use forward(clip) with whole clips, or a model with temporal_shift=False"
            )
        if frames.ndim != 4:
            raise ValueError(f"expected frames (N, C, H, W), got shape {tuple(frames.shape)}")
        if not return_attention:
            return self.backbone(frames)  # (N, D)
        features, maps = self.backbone(frames, return_attention=True)  # (N, D), {(N, h_i, w_i)}
        return features, (list(maps.values())[-1] if maps else None)


def build_model(cfg: ModelConfig, class_names: Sequence[str], num_frames: int) -> ClipClassifier:
    """The classifier described by `cfg` for K = len(class_names) classes and clips of T = num_frames."""
    validate_model(cfg)
    if len(class_names) == 0:
        raise ValueError("class_names is empty: the model needs at least one class")
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names lists a name twice: {list(class_names)}")
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
    backbone = build_backbone(
        cfg.backbone,
        width=cfg.width,
        attention=cfg.attention,
        attention_kernel=cfg.attention_kernel,
        attention_stages=cfg.attention_stages,
        pretrained=cfg.pretrained,
        temporal_shift=cfg.temporal_shift,
        num_frames=num_frames,
    )
    head = build_head(cfg.head, backbone.num_features, len(class_names), cfg.dropout)
    return ClipClassifier(cfg, backbone, head, class_names, num_frames)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: ClipClassifier, num_frames: int, size: int) -> float:
    """GFLOPs of one forward pass on one clip (1, T, 3, size, size), in eval mode.

    Counted by torch.utils.flop_counter: matrix multiplies and convolutions at 2 FLOPs per multiply-add;
    element-wise work (BN, activations, attention gating, pooling) is not counted."""
    clip = torch.zeros(1, num_frames, 3, size, size)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(clip)
    model.train(was_training)
    return counter.get_total_flops() / 1e9


def measure_clips_per_second(model: nn.Module, num_frames: int, size: int, batch_size: int = 16,
                             repeats: int = 3) -> float:
    """Forward clips/s at `batch_size` in eval and inference mode: one warm-up, then the median of `repeats`."""
    clip = torch.randn(batch_size, num_frames, 3, size, size)
    was_training = model.training
    model.eval()
    times = []
    with torch.inference_mode():
        model(clip)  # warm-up: first-call allocations and kernel selection
        for _ in range(repeats):
            start = time.perf_counter()
            model(clip)
            times.append(time.perf_counter() - start)
    model.train(was_training)
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
    class_names = [f"class{i}" for i in range(5)]  # K = 5, as in the synthetic data set; K barely changes the cost
    batch_size = 16
    lines = [f"backbones (default config: head={ModelConfig.head}, attention={ModelConfig.attention}, "
             f"width={ModelConfig.width}), T={num_frames}, {size}x{size}, {len(class_names)} classes"]
    header = f"{'backbone':<20} {'params':>9} {'GFLOPs/clip':>12}"
    matmul = None
    if measure_speed:
        matmul = measure_matmul_gflops()
        header += f" {'clips/s@16':>11} {'GFLOPS':>8} {'of matmul':>10}"
    lines.append(header)
    for name in BACKBONES:
        model = build_model(ModelConfig(backbone=name), class_names, num_frames)
        gflops = count_flops(model, num_frames, size)
        row = f"{name:<20} {_format_count(count_parameters(model)):>9} {gflops:>12.2f}"
        if matmul is not None:
            clips_per_s = measure_clips_per_second(model, num_frames, size, batch_size)
            achieved = gflops * clips_per_s
            row += f" {clips_per_s:>11.2f} {achieved:>8.1f} {achieved / matmul:>9.0%}"
        lines.append(row)
    if matmul is not None:
        lines.append(f"fp32 matmul (2048x2048) on this machine: {matmul:.1f} GFLOPS with "
                     f"{torch.get_num_threads()} threads, measured in this run")

    default = build_model(ModelConfig(), class_names, num_frames)
    dim = default.backbone.num_features
    lines += ["", f"heads (on {ModelConfig.backbone} features: D={dim}, T={num_frames})",
              f"{'head':<20} {'params':>9} {'MFLOPs/clip':>12}"]
    for name in HEADS:
        head = build_head(name, dim, len(class_names)).eval()
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            head(torch.zeros(1, num_frames, dim))
        lines.append(f"{name:<20} {_format_count(count_parameters(head)):>9} {counter.get_total_flops() / 1e6:>12.2f}")
    return "\n".join(lines)

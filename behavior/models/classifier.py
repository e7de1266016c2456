"""The clip classifier: a 2D backbone with spatial attention on every frame, then a temporal head.

    clip (B, T, C, H, W) ──fold 'b t c h w -> (b t) c h w'──▶ backbone ─▶ (B·T, D)
        ──unfold '(b t) d -> b t d'──▶ head ─▶ logits (B, K)

- `forward(clip) -> logits (B, K)`: the plain path, used by training, evaluation and ONNX export
  (fixed T, dynamic B). The model returns logits only; the loss lives in the training loop.
- `forward_features(clip) -> (B, T, D)` and `forward_head(features) -> (B, K)`: the two halves.
- `forward_frames(frames (N, C, H, W)) -> (N, D)`: the backbone on independent frames. Live inference runs each
  new frame through it once, keeps the last T features in a ring buffer and calls `forward_head` on the
  buffer; with `temporal_shift=False` that gives exactly `forward(clip)` (tested).
- `forward_step(frames (N, C, H, W), shifted) -> StreamStep`: the backbone on the next frame of each of N
  streams, for the online temporal shift (`model.shift: online`): `shifted` are the slices the streams'
  previous frames kept (None at a stream's start), and the step returns the new frames' features, attention and
  slices. Streaming T frames this way from a fresh start gives exactly `forward_features` of the clip (tested);
  without shifts it is `forward_frames`.
- `forward(clip, return_attention=True) -> (logits, AttentionMaps)` and
  `forward_frames(frames, return_attention=True) -> (features, map (N, h, w) | None)` read the attention back
  for display.

With T = 1 the same model is a per-image classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from einops import rearrange
from torch import Tensor, nn

from behavior.config import ModelConfig, frozen_parts, validate_model
from behavior.errors import ConfigError
from behavior.models.backbones import Backbone, backbone_for
from behavior.models.heads import build_head
from behavior.models.temporal_shift import TemporalShift


@dataclass
class StreamStep:
    """One streamed frame per stream, through the backbone (`ClipClassifier.forward_step`)."""

    features: Tensor  # float (N, D)
    attention: (
        Tensor | None
    )  # float (N, h, w) in [0, 1]: the last attention layer's map; None when there is none
    shifted: list[Tensor]  # per online shift, float (N, C_i/8, h_i, w_i): what each stream's next frame takes


@dataclass
class AttentionMaps:
    """What the model attended to, for display. Spatial maps are float in [0, 1], one value per feature cell."""

    spatial: Tensor | None  # (B, T, h, w): the map of the last attention layer; None when attention="none"
    layers: dict[str, Tensor] = field(default_factory=dict)  # every layer: "stage{i}" -> (B, T, h_i, w_i)
    temporal: Tensor | None = None  # (B, T): the attention head's frame weights, summing to 1; else None


class ClipClassifier(nn.Module):
    """Backbone on every frame, temporal head over the frames. Build it with `build_model`."""

    clip_ndim = 5  # a batch of clips (B, T, C, H, W)

    def __init__(
        self,
        cfg: ModelConfig,
        backbone: Backbone,
        head: nn.Module,
        class_names: Sequence[str],
        num_frames: int,
    ):
        super().__init__()
        self.config = cfg
        self.backbone = backbone
        self.head = head
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.num_frames = num_frames  # T the model was built for; the temporal shift requires exactly this T
        self.frozen: list[str] = []  # names of the submodules whose weights and BN statistics stay as loaded
        self._shifts: list[TemporalShift] | None = None  # found on first use; `freeze` removes some

    def freeze(self, names: Sequence[str]) -> None:
        """Keep the weights of the submodules `names` as they are (no gradient) and their batch norms in eval
        mode, so training neither changes their weights nor their running statistics. Frozen parts also lose
        their temporal shifts: a shift would change what their weights compute, and nothing there could adapt
        to it (the shifts stay in the stages that train)."""
        self.frozen = list(names)
        for name in self.frozen:
            frozen = self.get_submodule(name)
            frozen.requires_grad_(False)
            for parent in list(frozen.modules()):
                for child, module in list(parent.named_children()):
                    if isinstance(module, TemporalShift):
                        setattr(parent, child, nn.Identity())
        self._shifts = None
        self.train(self.training)

    @property
    def mixes_frames(self) -> bool:
        """Whether frames mix inside the backbone (temporal shifts): it then needs whole clips of exactly T
        frames, and no frame can run alone."""
        return bool(self.shifts)

    @property
    def shifts(self) -> list[TemporalShift]:
        """The temporal shifts of the backbone, in module order (frozen stages have none). Found once: live mode
        asks at every frame, and a walk over every module costs a tenth of a small model's step."""
        if self._shifts is None:
            self._shifts = [m for m in self.backbone.modules() if isinstance(m, TemporalShift)]
        return self._shifts

    @property
    def streams_frames(self) -> bool:
        """Whether frames can go through the backbone one at a time, each once (`forward_step`): no shift, or
        only online shifts, which look at past frames alone."""
        return all(shift.online for shift in self.shifts)

    def train(self, mode: bool = True) -> ClipClassifier:
        super().train(mode)
        for name in self.frozen:
            self.get_submodule(name).eval()  # frozen batch norms keep their pretrained running statistics
        return self

    def cache_depth(self) -> int:
        """How many backbone steps (`Backbone.steps`) a feature cache can run once per frame and keep: the leading
        frozen steps that hold no temporal shift (a shift mixes each frame with its neighbours, so its output is no
        property of the frame alone). 0: nothing can be cached."""
        depth = 0
        for name, step in self.backbone.steps():
            if f"backbone.{name}" not in self.frozen or any(
                isinstance(m, TemporalShift) for m in step.modules()
            ):
                break
            depth += 1
        return depth

    def embed_frames(self, frames: Tensor, depth: int) -> Tensor:
        """What a feature cache keeps of frames (N, C, H, W): the output of the first `depth` backbone steps,
        float (N, C_d, h, w), or the pooled features (N, D) when the whole backbone runs before the cache."""
        x = self.backbone.forward_prefix(frames, depth)  # (N, C_d, h, w)
        return x.mean(dim=(2, 3)) if depth == len(self.backbone.steps()) else x

    def forward_cached(self, features: Tensor, depth: int) -> Tensor:
        """Logits float (B, K) of cached per-frame features (B, T, ...) (`embed_frames` of each frame): the
        backbone from step `depth` on, then the head; equal to `forward` on the clip the features came from."""
        return CachedForward(self, depth)(features)  # (B, K)

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """The backbone weights that came from `model.pretrained` (none when it is "none"); attention layers and
        the head are new."""
        if self.config.pretrained == "none":
            return []
        return [
            p for name in self.backbone.part_names() for p in self.backbone.get_submodule(name).parameters()
        ]

    def _check_clip(self, clip: Tensor) -> None:
        if clip.ndim != 5:
            raise ValueError(f"expected a clip (B, T, C, H, W), got shape {tuple(clip.shape)}")
        if self.mixes_frames and clip.shape[1] != self.num_frames:
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

    def forward_scores(self, clip: Tensor, return_attention: bool = False) -> tuple[Tensor, ...]:
        """One pass over a clip (B, T, C, H, W): logits float (B, K) and the clip feature float (B, D) (the
        per-frame features averaged over T, what the prototype rejection score compares); with `return_attention`
        also the last attention layer's maps float (B, T, h, w) in [0, 1], or None (attention="none"). Scoring,
        live mode's whole clips and the exported model all give these."""
        if not return_attention:
            features = self.forward_features(clip)  # (B, T, D)
            return self.forward_head(features), features.mean(dim=1)
        self._check_clip(clip)
        frames = rearrange(clip, "b t c h w -> (b t) c h w")  # (B·T, C, H, W)
        features, maps = self.backbone(frames, return_attention=True)  # (B·T, D), {(B·T, h_i, w_i)}
        features = rearrange(features, "(b t) d -> b t d", t=clip.shape[1])  # (B, T, D)
        last = list(maps.values())[-1] if maps else None
        spatial = None if last is None else rearrange(last, "(b t) h w -> b t h w", t=clip.shape[1])
        return self.forward_head(features), features.mean(dim=1), spatial

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
        if self.mixes_frames:
            raise ValueError(
                "forward_frames runs frames independently, but temporal_shift=True mixes neighbouring frames: "
                "use forward(clip) with whole clips, forward_step for the online shift, or a model with "
                "temporal_shift=False"
            )
        if frames.ndim != 4:
            raise ValueError(f"expected frames (N, C, H, W), got shape {tuple(frames.shape)}")
        if not return_attention:
            return self.backbone(frames)  # (N, D)
        features, maps = self.backbone(frames, return_attention=True)  # (N, D), {(N, h_i, w_i)}
        return features, (list(maps.values())[-1] if maps else None)

    def forward_step(
        self, frames: Tensor, shifted: Sequence[Tensor] | None = None, return_attention: bool = False
    ) -> StreamStep:
        """The next frame of each of N streams, frames float (N, C, H, W), through the backbone: `shifted` are the
        slices the streams' previous frames kept (`StreamStep.shifted` of the step before; None for the streams'
        first frames, which take zeros). Streaming a clip's frames one step at a time gives exactly
        `forward_features(clip)`; a model without shifts gives `forward_frames`. Two-way shifts cannot stream."""
        if not self.streams_frames:
            raise ValueError(
                "forward_step streams frames one at a time, but this model's two-way temporal shift takes "
                "channels from the next frame: use forward(clip) with whole clips, or model.shift=online"
            )
        if frames.ndim != 4:
            raise ValueError(f"expected frames (N, C, H, W), got shape {tuple(frames.shape)}")
        shifts = self.shifts
        if shifted is not None and len(shifted) != len(shifts):
            raise ValueError(
                f"expected {len(shifts)} shifted slices (one per online shift), got {len(shifted)}"
            )
        for shift, previous in zip(shifts, shifted if shifted is not None else [None] * len(shifts)):
            shift.start_step(previous)
        try:
            if return_attention:
                features, maps = self.backbone(frames, return_attention=True)  # (N, D), {(N, h_i, w_i)}
                attention = list(maps.values())[-1] if maps else None  # (N, h, w)
            else:
                features, attention = self.backbone(frames), None  # (N, D)
        finally:
            kept = [shift.end_step() for shift in shifts]
        return StreamStep(features, attention, kept)


def build_model(cfg: ModelConfig, class_names: Sequence[str], num_frames: int) -> ClipClassifier:
    """The classifier described by `cfg` for K = len(class_names) classes and clips of T = num_frames."""
    validate_model(cfg)
    if len(class_names) == 0:
        raise ConfigError("class_names is empty: the model needs at least one class")
    if len(set(class_names)) != len(class_names):
        raise ConfigError(f"class_names lists a name twice: {list(class_names)}")
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ConfigError(f"num_frames must be a positive integer, got {num_frames!r}")
    backbone = backbone_for(cfg, num_frames)
    head = build_head(cfg.head, backbone.num_features, len(class_names), cfg.dropout)
    model = ClipClassifier(cfg, backbone, head, class_names, num_frames)
    model.freeze([f"backbone.{name}" for name in backbone.part_names()[: frozen_parts(cfg)]])
    return model


class CachedForward(nn.Module):
    """A model's `forward_cached(features, depth)` as a module's forward, so that training (DDP included) and
    scoring run on feature-cache entries as they run the model on clips."""

    def __init__(self, model: ClipClassifier, depth: int):
        super().__init__()
        self.model = model
        self.depth = depth
        self.num_classes = model.num_classes
        whole = depth == len(model.backbone.steps())
        self.clip_ndim = 3 if whole else 5  # a batch of cached features: (B, T, D), or maps (B, T, C, h, w)

    def forward_features(self, features: Tensor) -> Tensor:
        """Per-frame features float (B, T, D) of cached features (B, T, ...): the backbone from step `depth` on."""
        num_frames = features.shape[1]
        pooled = self.model.backbone(
            rearrange(features, "b t ... -> (b t) ..."), start=self.depth
        )  # (B·T, D)
        return rearrange(pooled, "(b t) d -> b t d", t=num_frames)  # (B, T, D)

    def forward_head(self, features: Tensor) -> Tensor:
        return self.model.forward_head(features)  # (B, K)

    def forward_scores(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Logits float (B, K) and clip features float (B, D) of cached features (B, T, ...)."""
        per_frame = self.forward_features(features)  # (B, T, D)
        return self.forward_head(per_frame), per_frame.mean(dim=1)

    def forward(self, features: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(features))  # (B, K)

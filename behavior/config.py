"""Run configuration: YAML files under `configs/`, read into typed dataclasses, one per section.

Every field has a default and a one-line reason beside it, all on this page: `DataConfig`, `SamplerConfig`,
`TransformConfig`, `ModelConfig`, `OptimConfig`, `TrainConfig` and `ConfidenceConfig`, gathered in `Config`.
An unknown key or a value of the wrong type is a `ConfigError` that names the key and the valid keys or the
expected type; the CLI turns it into exit status 2.

This module imports no torch (the named model parts come from the torch-free `behavior.models.registry`), so a
config error is reported at once. It is over 400 lines because every field and every check of a value lives on
this one page, where a user looks up what a key means.

    cfg = load_config("configs/demo.yaml", overrides=["optim.lr=0.003", "model.head=avg"])
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from behavior.errors import ConfigError, InputNotFound
from behavior.models.registry import ATTENTIONS, BACKBONES, HEADS

ON_ERROR = ("skip", "raise")
STRATEGIES = ("segment", "uniform", "dense")
PAD_POLICIES = ("repeat_last", "loop")
OPTIMIZERS = ("adamw", "sgd")
CLASS_BALANCE = ("none", "sampler", "weights")
DEVICES = ("auto", "cpu", "cuda")
# what runs a trained model in predict and live (--engine; behavior.tools.engines): eager PyTorch | ONNX Runtime
ENGINES = ("torch", "onnx")
# torch by default although ONNX Runtime was 1.2-3.7x faster than the torch engine (channels-last, batch norms
# folded, oneDNN) in every case of `benchmarks/run.py engines` on 2026-12-02 (docs/benchmarks.md): onnx needs the
# optional export extra and pays a one-off export per checkpoint (5-23 s)
DEFAULT_ENGINE = "torch"
REJECTION_SCORES = ("msp", "energy", "prototype", "none")  # behavior.engine.rejection; none: never unknown
SHIFTS = ("two_way", "online")  # behavior.models.temporal_shift


@dataclass
class DataConfig:
    root: str = "data/synthetic/videos"  # videos laid out as root/<class>/<video>
    splits: str = "data/synthetic/splits"  # folder of classInd.txt, trainlistNN.txt, testlistNN.txt; "": none
    split_id: int = 1  # which trainlistNN / testlistNN pair (UCF101 has 1, 2, 3)
    train_csv: str = ""  # annotation list (path,label) for training; replaces the split files when set
    test_csv: str = ""  # annotation list for testing
    classes: list[str] = field(default_factory=list)  # fixed class order; empty: classInd.txt or folder names
    test_fraction: float = 0.25  # with neither split files nor CSVs: share of each class's groups held out
    val_fraction: float = 0.15  # share of each class's training groups held out to choose best.pt (0 = none)
    backend: str = "auto"  # video decoder: auto (decord, then PyAV) | decord | pyav
    # let the decoder scale to transform.resize: pays on 1080p, slower below ~720p
    decode_at_resize: bool = False
    # keep training/validation frames at transform.resize here: epochs after the first never decode
    cache_dir: str = ""
    # a frozen backbone's per-frame features: auto (~/.cache/behavior/features) | a folder | "" (off)
    feature_cache: str = "auto"
    on_error: str = "skip"  # a video that fails to decode in training: skip (and count) | raise
    num_workers: int = 2  # DataLoader worker processes decoding clips

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise ConfigError(f"data.on_error={self.on_error!r} is unknown; valid: {', '.join(ON_ERROR)}")
        for name in ("test_fraction", "val_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"data.{name} must lie in [0, 1), got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {self.num_workers}")


@dataclass
class SamplerConfig:
    strategy: str = "segment"  # segment (TSN) | uniform | dense: how T frames are picked from a video
    num_frames: int = 8  # T: frames per clip; the model sees exactly this many
    stride: int = 2  # dense only: frames between consecutive picks of a window
    num_views: int = 1  # clips per video at evaluation; their scores are averaged per video
    time_based: bool = True  # follow the real timestamps: variable-frame-rate video is sampled evenly in time
    pad: str = "repeat_last"  # how a video shorter than the clip is filled: repeat_last | loop

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"sampler.strategy={self.strategy!r} is unknown; valid: {', '.join(STRATEGIES)}"
            )
        if self.pad not in PAD_POLICIES:
            raise ConfigError(f"sampler.pad={self.pad!r} is unknown; valid: {', '.join(PAD_POLICIES)}")
        for name in ("num_frames", "stride", "num_views"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"sampler.{name} must be a positive integer, got {value!r}")


@dataclass
class TransformConfig:
    resize: int = 128  # short side after resizing, before the crop (the decoder is asked for this size)
    crop: int = 112  # square crop the model sees, H = W
    flip: bool = True  # random horizontal flip in training; turn off where left/right carries the label
    color_jitter: float = 0.0  # training only: brightness, contrast, saturation each scaled by 1 +- this
    # per-channel normalisation in [0, 1] pixel units; None: the backbone's own (what its weights were trained with)
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.crop < 8 or self.resize < self.crop:
            raise ConfigError(
                f"transform.crop={self.crop} must be >= 8 and transform.resize={self.resize} "
                "at least as large as the crop"
            )
        if (self.mean is not None and len(self.mean) != 3) or (
            self.std is not None and (len(self.std) != 3 or min(self.std) <= 0)
        ):
            raise ConfigError("transform.mean and transform.std need 3 values each, std > 0")
        if not 0.0 <= self.color_jitter < 1.0:
            raise ConfigError(f"transform.color_jitter={self.color_jitter} must be in [0, 1)")
        if self.mean is not None:
            self.mean = tuple(float(v) for v in self.mean)
        if self.std is not None:
            self.std = tuple(float(v) for v in self.std)


@dataclass
class ModelConfig:
    backbone: str = "seed-cnn"  # the 2D CNN run on every frame: a name of behavior.models.registry.BACKBONES
    width: float = 1.0  # channel multiplier of the backbones that take one; below 1 buys CPU speed
    attention: str = "spatial"  # spatial | cbam | none: the layer after each of attention_stages
    attention_kernel: int = 7  # odd k of the spatial attention's k×k conv; 7 beat 3 in CBAM's ablation
    attention_stages: tuple[int, ...] | None = None  # stages followed by attention; None: the backbone's own
    head: str = "tconv"  # avg | max | attention | tconv: pooling over T; only tconv sees frame order
    dropout: float = 0.5  # before the classifier; TSM's default for fine-tuning on small data sets
    pretrained: str = "none"  # none | imagenet | the path of a state dict
    temporal_shift: bool = False  # TSM: channels move between neighbouring frames; order-aware, no FLOPs
    # which TSM shift: two_way (1/8 of channels from the next frame, 1/8 from the previous: the offline TSM) |
    # online (1/8 from the previous frame only: live mode then runs one backbone pass per frame)
    shift: str = "two_way"
    # which pretrained weights stay as they are, with their batch-norm statistics: none | backbone (stem, stages,
    # neck; new attention layers and the head train) | stageN (the stem and stages 1..N)
    freeze: str = "none"

    def __post_init__(self) -> None:
        if isinstance(self.attention_stages, list):  # a YAML list
            self.attention_stages = tuple(self.attention_stages)
        validate_model(self)


def validate_model(cfg: ModelConfig) -> None:
    """Raise ConfigError naming the field and the valid values when a model setting is out of range."""
    for name, value, valid in (
        ("backbone", cfg.backbone, BACKBONES),
        ("attention", cfg.attention, ATTENTIONS),
        ("head", cfg.head, HEADS),
    ):
        if value not in valid:
            raise ConfigError(f"model.{name}={value!r} is unknown; valid: {', '.join(valid)}")
    backbone = BACKBONES[cfg.backbone]
    if isinstance(cfg.width, bool) or not isinstance(cfg.width, (int, float)) or cfg.width <= 0:
        raise ConfigError(f"model.width must be a positive number, got {cfg.width!r}")
    if not backbone.scalable and cfg.width != 1.0:
        raise ConfigError(f"model.width={cfg.width}: {cfg.backbone} has fixed widths; valid: 1.0")
    k = cfg.attention_kernel
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
        raise ConfigError(f"model.attention_kernel must be a positive odd integer (3, 5, 7, ...), got {k!r}")
    if cfg.attention_stages is not None:
        stages = cfg.attention_stages
        if not isinstance(stages, tuple) or not all(
            isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= backbone.num_stages for s in stages
        ):
            raise ConfigError(
                f"model.attention_stages={stages!r}: {cfg.backbone} takes a list of stage numbers "
                f"1..{backbone.num_stages} (default {list(backbone.attention_stages)})"
            )
        if len(set(stages)) != len(stages):
            raise ConfigError(f"model.attention_stages={list(stages)} lists a stage twice")
    if isinstance(cfg.dropout, bool) or not isinstance(cfg.dropout, (int, float)) or not 0 <= cfg.dropout < 1:
        raise ConfigError(f"model.dropout must be in [0, 1), got {cfg.dropout!r}")
    if not isinstance(cfg.pretrained, str) or not cfg.pretrained:
        raise ConfigError(
            f"model.pretrained={cfg.pretrained!r}; valid: 'none', 'imagenet' or the path of a state dict"
        )
    if cfg.pretrained == "imagenet" and not backbone.imagenet:
        raise ConfigError(
            f"model.pretrained='imagenet': {cfg.backbone} has no ImageNet weights; valid for {cfg.backbone}: "
            f"'none' or the path of a {cfg.backbone} backbone state dict"
        )
    if cfg.pretrained == "imagenet" and cfg.width != 1.0:
        raise ConfigError(
            f"model.width={cfg.width}: the ImageNet weights of {cfg.backbone} exist for width=1.0 only"
        )
    if not isinstance(cfg.temporal_shift, bool):
        raise ConfigError(f"model.temporal_shift must be true or false, got {cfg.temporal_shift!r}")
    if cfg.shift not in SHIFTS:
        raise ConfigError(f"model.shift={cfg.shift!r} is unknown; valid: {', '.join(SHIFTS)}")
    if frozen_parts(cfg) is None:
        raise ConfigError(
            f"model.freeze={cfg.freeze!r} is unknown; valid: none, backbone, or stage0..stage{backbone.num_stages} "
            f"({cfg.backbone} has {backbone.num_stages} stages; stage0 is the stem alone)"
        )


def frozen_parts(cfg: ModelConfig) -> int | None:
    """How many leading parts of the backbone (stem, stage 1, ..., stage S, neck) model.freeze keeps frozen: 0 for
    none, N + 1 for stageN (the stem and N stages), S + 2 for the whole backbone; None when it is not valid."""
    num_stages = BACKBONES[cfg.backbone].num_stages
    if cfg.freeze == "none":
        return 0
    if cfg.freeze == "backbone":
        return num_stages + 2
    digits = cfg.freeze.removeprefix("stage") if isinstance(cfg.freeze, str) else ""
    if cfg.freeze.startswith("stage") and digits.isascii() and digits.isdigit() and int(digits) <= num_stages:
        return int(digits) + 1
    return None


@dataclass
class OptimConfig:
    name: str = "adamw"  # adamw | sgd
    lr: float = 1e-3  # peak learning rate, reached after the warm-up
    weight_decay: float = 0.05  # decoupled for AdamW; L2 for SGD
    momentum: float = 0.9  # SGD only (Nesterov)
    warmup_epochs: float = 1.0  # linear warm-up from lr/100 before the cosine decay to 0
    label_smoothing: float = 0.1  # cross-entropy target smoothing; curbs over-confident scores
    grad_clip: float = 5.0  # clip the gradient norm at this value; 0 = off
    pretrained_lr_scale: float = 1.0  # optim.lr times this for the pretrained backbone weights that train

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ConfigError(f"optim.name={self.name!r} is unknown; valid: {', '.join(OPTIMIZERS)}")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_epochs < 0 or self.grad_clip < 0:
            raise ConfigError("optim.lr must be > 0 and optim.weight_decay, warmup_epochs, grad_clip >= 0")
        if not 0 < self.pretrained_lr_scale <= 10:
            raise ConfigError(f"optim.pretrained_lr_scale must be in (0, 10], got {self.pretrained_lr_scale}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"optim.label_smoothing must lie in [0, 1), got {self.label_smoothing}")


@dataclass
class TrainConfig:
    epochs: int = 10  # passes over the training set; the schedule spans exactly epochs x steps
    batch_size: int = 16  # clips per step (per process under torchrun)
    eval_batch_size: int = 32  # videos per step in validation and evaluation
    seed: int = 0  # one seed for sampling, augmentation, initialisation and shuffling
    class_balance: str = "none"  # none | sampler (draw classes equally often) | weights (weight the loss)
    device: str = "auto"  # auto (cuda when present) | cpu | cuda
    amp: bool = True  # mixed precision, on a GPU only; the CPU always runs fp32
    channels_last: bool = True  # channels-last weights: training on a GPU, inference everywhere
    cpu_bf16: bool = False  # bf16 autocast for training steps on a CPU that computes bf16 natively (AMX)
    threads: int = 0  # torch threads on the CPU; 0 = torch's default (one per core)

    def __post_init__(self) -> None:
        if self.class_balance not in CLASS_BALANCE:
            raise ConfigError(
                f"train.class_balance={self.class_balance!r} is unknown; valid: {', '.join(CLASS_BALANCE)}"
            )
        if self.device not in DEVICES:
            raise ConfigError(f"train.device={self.device!r} is unknown; valid: {', '.join(DEVICES)}")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError("train.epochs, train.batch_size and train.eval_batch_size must be >= 1")


@dataclass
class ConfidenceConfig:
    """What training fits after its last epoch, on the validation split: the temperature, and the threshold of
    the rejection score below which a clip is `unknown`."""

    calibrate: bool = (
        True  # fit the temperature: scores then mean how often the model is right (false: T = 1)
    )
    rejection_score: str = "msp"  # msp | energy | prototype | none: separated unseen behaviours best here
    keep_known: float = 0.95  # share of known validation clips the threshold keeps; the rest would be unknown
    # Outlier exposure (behavior.engine.outliers): each training step adds clips made from the batch that are
    # none of the behaviours (a frame held still, the frames shuffled) and pushes their scores towards equal.
    outlier_exposure: float = 0.0  # weight of that loss beside the classification loss; 0 = off
    outlier_share: float = 0.25  # made-up outlier clips per step, as a share of the batch size

    def __post_init__(self) -> None:
        if self.rejection_score not in REJECTION_SCORES:
            raise ConfigError(
                f"confidence.rejection_score={self.rejection_score!r} is unknown; valid: "
                f"{', '.join(REJECTION_SCORES)}"
            )
        if not 0.0 < self.keep_known <= 1.0:
            raise ConfigError(f"confidence.keep_known must lie in (0, 1], got {self.keep_known}")
        if self.outlier_exposure < 0:
            raise ConfigError(f"confidence.outlier_exposure must be >= 0, got {self.outlier_exposure}")
        if not 0.0 < self.outlier_share <= 1.0:
            raise ConfigError(f"confidence.outlier_share must lie in (0, 1], got {self.outlier_share}")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    transform: TransformConfig = field(default_factory=TransformConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    confidence: ConfidenceConfig = field(default_factory=ConfidenceConfig)

    def __post_init__(self) -> None:
        resolve_normalisation(self)


def resolve_normalisation(cfg: Config) -> None:
    """Normalisation belongs to the backbone: transform.mean/std left empty take the statistics its weights were
    trained with (so they travel, as numbers, in every saved config and checkpoint). ImageNet weights fed other
    statistics would see other pixels than they learned on: a ConfigError names the values to use."""
    backbone = BACKBONES[cfg.model.backbone]
    if cfg.transform.mean is None:
        cfg.transform.mean = backbone.input_mean
    if cfg.transform.std is None:
        cfg.transform.std = backbone.input_std
    expected = (*backbone.input_mean, *backbone.input_std)
    given = (*cfg.transform.mean, *cfg.transform.std)
    if cfg.model.pretrained == "imagenet" and any(abs(a - b) > 1e-6 for a, b in zip(given, expected)):
        raise ConfigError(
            f"transform.mean={list(cfg.transform.mean)}, transform.std={list(cfg.transform.std)}: the ImageNet "
            f"weights of {cfg.model.backbone} were trained with mean {[round(v, 6) for v in backbone.input_mean]} "
            f"and std {[round(v, 6) for v in backbone.input_std]}; leave transform.mean and transform.std out "
            "(they then follow the backbone)"
        )


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value, tp, key: str):
    """Check `value` against the annotation `tp`; ints are accepted where floats are expected."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _coerce(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # a YAML number where a name is expected, e.g. a class called 2
    elif origin is list:
        if isinstance(value, (list, tuple)):
            return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    elif origin is tuple:
        if isinstance(value, (list, tuple)):
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
            if len(value) == len(args):
                return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    else:
        raise ConfigError(f"{key}: unsupported field type {tp}")
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")


def _build(cls, values: dict, prefix: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping of keys, got {values!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            raise ConfigError(
                f"unknown key {full!r}; valid keys{' in ' + prefix if prefix else ''}: {', '.join(fields)}"
            )
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value or {}, full)
        else:
            kwargs[key] = _coerce(value, tp, full)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from None


def config_from_dict(values: dict) -> Config:
    return _build(Config, values, "")


def parse_override(text: str) -> tuple[list[str], object]:
    """`a.b=value` -> (["a", "b"], value parsed as YAML: 3 -> int, true -> bool, [a, b] -> list)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. optim.lr=0.001")
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    except RecursionError:
        raise ConfigError(f"--set {text[:80]!r}: the value nests too deeply") from None
    return path, value


def _set_path(values: dict, path: list[str], value, text: str) -> None:
    node = values
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {text!r}: {part!r} is a value, not a section")
        node = child
    node[path[-1]] = value


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (or the defaults when `path` is None) and apply `KEY=VALUE` overrides."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise InputNotFound(f"config {path}: no such file")
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config {path}: not valid YAML ({exc})") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except RecursionError:
            raise ConfigError(f"config {path}: not valid YAML (nested too deeply)") from None
        if not isinstance(values, dict):
            raise ConfigError(f"config {path}: expected a mapping of sections (data:, model:, ...)")
    for text in overrides:
        _set_path(values, *parse_override(text), text)
    try:
        return config_from_dict(values)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path else str(exc)) from None


def config_to_dict(cfg: Config) -> dict:
    """Plain dict (lists, not tuples) for YAML, JSON and checkpoints."""

    def plain(value):
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(cfg))


def save_config(cfg: Config, path: str | os.PathLike) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))

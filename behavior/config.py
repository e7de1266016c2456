"""Run configuration: YAML files under `configs/`, read into typed dataclasses.

Every field has a default and a one-line reason beside it, in the dataclass that owns it (`DataConfig` in
datasets.py, `SamplerConfig` in sampling.py, `TransformConfig` in transforms.py, `ModelConfig` in model.py,
`OptimConfig` and `TrainConfig` here). An unknown key or a value of the wrong type is a `ConfigError` that
names the key and the valid keys or the expected type; the CLI turns it into exit status 2.

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

from behavior.datasets import DataConfig
from behavior.model import ModelConfig
from behavior.sampling import SamplerConfig
from behavior.transforms import TransformConfig

OPTIMIZERS = ("adamw", "sgd")
CLASS_BALANCE = ("none", "sampler", "weights")


class ConfigError(ValueError):
    """A config key or value that cannot be used; the message names the key."""


@dataclass
class OptimConfig:
    name: str = "adamw"  # adamw | sgd
    lr: float = 1e-3  # peak learning rate, reached after the warm-up
    weight_decay: float = 0.05  # decoupled for AdamW; L2 for SGD
    momentum: float = 0.9  # SGD only (Nesterov)
    warmup_epochs: float = 1.0  # linear warm-up from lr/100 before the cosine decay to 0
    label_smoothing: float = 0.1  # cross-entropy target smoothing; curbs over-confident scores
    grad_clip: float = 5.0  # clip the gradient norm at this value; 0 = off

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ConfigError(f"optim.name={self.name!r} is unknown; valid: {', '.join(OPTIMIZERS)}")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_epochs < 0 or self.grad_clip < 0:
            raise ConfigError("optim.lr must be > 0 and optim.weight_decay, warmup_epochs, grad_clip >= 0")
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
    channels_last: bool = True  # channels-last weights: training on a GPU, inference everywhere (faster on both)
    cpu_bf16: bool = False  # bf16 autocast for training steps on a CPU that computes bf16 natively (AMX, AVX512-BF16)
    threads: int = 0  # torch threads on the CPU; 0 = torch's default (one per core)

    def __post_init__(self) -> None:
        if self.class_balance not in CLASS_BALANCE:
            raise ConfigError(f"train.class_balance={self.class_balance!r} is unknown; valid: "
                              f"{', '.join(CLASS_BALANCE)}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"train.device={self.device!r} is unknown; valid: auto, cpu, cuda")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError("train.epochs, train.batch_size and train.eval_batch_size must be >= 1")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    transform: TransformConfig = field(default_factory=TransformConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


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
            raise ConfigError(f"unknown key {full!r}; valid keys{' in ' + prefix if prefix else ''}: "
                              f"{', '.join(fields)}")
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
            raise FileNotFoundError(f"config {path}: no such file")
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

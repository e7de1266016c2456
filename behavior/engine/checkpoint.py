"""Checkpoints: written atomically, loaded without running pickled code.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only: model weights, optimizer and
scheduler state, epoch, the resolved config and the class names, and (once training has finished) the fitted
temperature and rejection threshold under "confidence" (`behavior.engine.confidence`). `save_checkpoint`
writes a temporary file in the same folder, flushes it to disk, then renames it over the target, so a kill at any moment
leaves either the previous checkpoint or the new one, never a torn file; the temporary file that such a kill
leaves behind is removed by the next successful write. `load_checkpoint` uses `torch.load(weights_only=True)`,
which refuses any object that would run code while unpickling.
"""

from __future__ import annotations

import glob
import os
import pickle
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from behavior.config import config_from_dict
from behavior.engine.confidence import Confidence
from behavior.errors import CheckpointError, ConfigError, InputNotFound
from behavior.models.classifier import build_model

FORMAT = "behavior-checkpoint-1"


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write `state` to `path` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save({"format": FORMAT, **state}, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
        for stale in path.parent.glob(
            f".{glob.escape(path.name)}.*.tmp"
        ):  # left by writes that a kill cut short
            stale.unlink(missing_ok=True)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # make the rename itself durable
        finally:
            os.close(directory)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by `save_checkpoint`. Raises CheckpointError for a file that is missing,
    torn, not a behavior checkpoint, or that carries objects which would run code when unpickled."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFound(f"checkpoint {path}: no such file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = " ".join(str(exc).split())[:400]
        raise CheckpointError(
            f"checkpoint {path} was refused: it holds objects that would run code when loaded, "
            f"and only plain tensors and values are accepted ({reason})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} cannot be read (truncated or not a torch file): "
            f"{' '.join(str(exc).split())[:300]}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path} is not a behavior checkpoint (no format {FORMAT!r}); "
            "use one written by `behavior train`"
        )
    return state


def load_trained_model(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """The model of a training checkpoint, in eval mode, with its config and class names, channels-last when
    `train.channels_last` (faster inference on CPUs and GPUs; docs/benchmarks.md). `model.confidence` is its
    fitted `Confidence` (temperature 1 and no rejection for a checkpoint written before those were fitted).

    Returns (model, config). ImageNet weights are not looked for: the checkpoint holds every weight."""
    state = load_checkpoint(path)
    try:
        cfg = config_from_dict(state["config"])
    except (ConfigError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path}: its config cannot be read ({exc})") from None
    cfg = replace(cfg, model=replace(cfg.model, pretrained="none"))
    model = build_model(cfg.model, state["class_names"], num_frames=cfg.sampler.num_frames)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint {path}: weights do not fit the model its config describes "
            f"({' '.join(str(exc).split())[:300]})"
        ) from None
    model.clip_seconds = float(
        state.get("clip_seconds") or 0.0
    )  # typical training video length, for live mode
    try:
        model.confidence = Confidence.from_state(state.get("confidence"))
    except (AttributeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path}: its confidence entry cannot be read ({exc})") from None
    model = model.to(device).eval()
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, cfg

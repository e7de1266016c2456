"""Inference engines: what runs a checkpoint's model in `behavior predict` and `behavior live` (`--engine`).

- `torch`: the model in eager PyTorch, channels-last (`behavior.engine.checkpoint.load_trained_model`), with
  its batch norms folded into the convolutions before them (`behavior.models.fusion`) unless the feature cache
  serves its frozen part;
- `onnx`: the checkpoint exported to ONNX (`behavior.tools.export`) and run by ONNX Runtime on the CPU.

The ONNX files are exported on first use into a cache folder keyed by the checkpoint's content (its SHA-256) and
the export format, $XDG_CACHE_HOME/behavior/onnx (~/.cache/...): a user passes the same checkpoint to either
engine, a checkpoint trained again gets a new export, and only the first run pays for the export. `OnnxModel`
offers the calls prediction and live mode make on a `ClipClassifier` (`forward_scores`, `forward_frames`,
`forward_step`, `forward_head`) with the same tensors in and out, and keeps the checkpoint's `Confidence`, so the
temperature and the rejection rule apply the same way with either engine. Its outputs equal PyTorch's within
the export's TOLERANCE (tested).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from behavior.config import ENGINES
from behavior.data.feature_cache import caches_features
from behavior.engine.checkpoint import load_trained_model
from behavior.errors import UsageError
from behavior.models.classifier import ClipClassifier, StreamStep
from behavior.models.fusion import fold_batch_norms
from behavior.models.onednn import use_onednn_convolutions


def onnx_cache_folder() -> Path:
    """$XDG_CACHE_HOME/behavior/onnx (~/.cache/behavior/onnx): one folder of ONNX files per checkpoint."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "behavior" / "onnx"


def exported_files(checkpoint: str | os.PathLike) -> list[Path]:
    """The ONNX files of `checkpoint` (model.onnx, and the backbone and head halves where the model has them),
    exported into the cache the first time (written to a temporary folder, then renamed: a killed export leaves
    nothing half-written behind)."""
    from behavior.tools.export import FORMAT, export_onnx

    digest = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()[:24]
    folder = onnx_cache_folder() / f"{digest}-format{FORMAT}"
    if not (folder / "model.onnx").is_file():
        partial = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            export_onnx(checkpoint, partial / "model.onnx")
            partial.replace(folder)
        except OSError:
            if not (folder / "model.onnx").is_file():  # not a concurrent export that got there first
                raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return [folder / name for name in ("model.onnx", "model.backbone.onnx", "model.head.onnx")]


def _array(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().cpu().float().numpy())  # float32, C order


class OnnxModel:
    """A checkpoint's model on ONNX Runtime: `ClipClassifier`'s inference calls, the same tensors in and out."""

    clip_ndim = 5  # a batch of clips (B, T, C, H, W)

    def __init__(self, model: ClipClassifier, files: list[Path], threads: int = 0):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()  # as many as torch would use
        options.log_severity_level = 3  # errors only
        # ONNX Runtime's threads busy-wait after each run by default, taking the cores from the torch transform
        # and the decoding workers that run between calls: live mode with Lite0 spent 16.2 ms per frame so (the
        # step itself 2.8 ms) and 5.6 ms without; calls back to back lose 0-13% without it (benchmarks, streaming)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")

        def session(path: Path):
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        self.config = model.config
        self.class_names = model.class_names
        self.num_classes = model.num_classes
        self.num_frames = model.num_frames
        self.clip_seconds = model.clip_seconds
        self.confidence = model.confidence  # the checkpoint's temperature and rejection rule
        self.mixes_frames = model.mixes_frames
        self.streams_frames = model.streams_frames
        self._whole = session(files[0])
        self._backbone = session(files[1]) if model.streams_frames else None
        self._head = session(files[2]) if model.streams_frames else None
        # per online shift, (C_i/8, h_i, w_i) of the slice a frame hands to the next: the backbone's extra inputs
        self._slices = [tuple(i.shape[1:]) for i in self._backbone.get_inputs()[1:]] if self._backbone else []

    def eval(self) -> OnnxModel:
        return self

    def forward_scores(self, clip: torch.Tensor, return_attention: bool = False) -> tuple[torch.Tensor, ...]:
        """`ClipClassifier.forward_scores`: logits (B, K), clip features (B, D)[, attention (B, T, h, w) or None]."""
        outputs = [torch.from_numpy(o) for o in self._whole.run(None, {"clip": _array(clip)})]
        if not return_attention:
            return outputs[0], outputs[1]
        return outputs[0], outputs[1], (outputs[2] if len(outputs) > 2 else None)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits float (B, K) of per-frame features (B, T, D)."""
        return torch.from_numpy(self._head.run(None, {"features": _array(features)})[0])

    def forward_frames(self, frames: torch.Tensor, return_attention: bool = False):
        """`ClipClassifier.forward_frames`: features (N, D)[, attention (N, h, w) or None]."""
        if self.mixes_frames or self._backbone is None:
            raise ValueError("forward_frames runs frames independently, but this model mixes frames")
        outputs = [torch.from_numpy(o) for o in self._backbone.run(None, {"frames": _array(frames)})]
        if not return_attention:
            return outputs[0]
        return outputs[0], (outputs[1] if len(outputs) > 1 else None)

    def forward_step(
        self, frames: torch.Tensor, shifted: list[torch.Tensor] | None = None, return_attention: bool = False
    ) -> StreamStep:
        """`ClipClassifier.forward_step`: the next frame (N, C, H, W) of each of N streams, with the slices their
        previous frames kept (None: zeros, the streams' first frames)."""
        if self._backbone is None:
            raise ValueError("the two-way temporal shift cannot stream frames: use model.shift=online")
        if shifted is not None and len(shifted) != len(self._slices):
            raise ValueError(f"expected {len(self._slices)} shifted slices, got {len(shifted)}")
        inputs = {"frames": _array(frames)}
        for i, shape in enumerate(self._slices):
            previous = None if shifted is None else shifted[i]
            zeros = np.zeros((frames.shape[0], *shape), np.float32)
            inputs[f"shifted_{i}"] = zeros if previous is None else _array(previous)
        outputs = [torch.from_numpy(o) for o in self._backbone.run(None, inputs)]
        count = len(outputs) - len(self._slices)  # features[, attention], then the new slices
        attention = outputs[1] if count > 1 and return_attention else None
        return StreamStep(outputs[0], attention, outputs[count:])


def engine_device(engine: str, torch_device: torch.device) -> torch.device:
    """Where an engine's inputs go: ONNX Runtime runs on the CPU here, PyTorch where `choose_device` says."""
    return torch.device("cpu") if engine == "onnx" else torch_device


def for_torch_engine(model: ClipClassifier, fold: bool = True) -> ClipClassifier:
    """What `--engine torch` makes of a loaded eval-mode model, in place: batch norms folded into their
    convolutions when `fold` (the same outputs in 0.56-0.87x the time per clip, behavior.models.fusion), and every
    convolution on oneDNN (one-frame steps in less time: the demo model's online step, median of 9 interleaved
    rounds, 1.50 -> 1.29 ms; behavior.models.onednn). The engines benchmark times this same model."""
    if fold:
        fold_batch_norms(model)
    use_onednn_convolutions(model)
    return model


def load_engine(
    checkpoint: str | os.PathLike, engine: str, device: torch.device
) -> tuple[ClipClassifier | OnnxModel, object]:
    """(model, config) of a checkpoint on `engine`: `torch` gives `load_trained_model`'s model on `device`; `onnx`
    its ONNX export (cached) on ONNX Runtime's CPU provider (`engine_device` is then the CPU)."""
    if engine not in ENGINES:
        raise UsageError(f"--engine {engine!r} is unknown; valid: {', '.join(ENGINES)}")
    model, cfg = load_trained_model(checkpoint, device)
    if engine == "torch":
        # not folded where the feature cache serves the model's frozen part, whose entries are keyed by those
        # layers' weights (folded ones would miss every entry that training and evaluation made)
        return for_torch_engine(model, fold=not caches_features(cfg, model)), cfg
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"--engine onnx needs the export extra: pip install 'behavior[export]' ({exc})"
        ) from None
    return OnnxModel(model, exported_files(checkpoint)), cfg

"""`behavior export`: the model as ONNX, with its preprocessing contract, checked against PyTorch.

Three files (one for a model with the temporal shift, whose frames cannot run alone): OUT (the whole model:
clip (batch, T, 3, S, S) -> logits (batch, K), T fixed, batch dynamic),
OUT with `.backbone.onnx` (frames (N, 3, S, S) -> features (N, D) and attention (N, h, w): what live mode
runs on every frame) and `.head.onnx` (features (batch, T, D) -> logits (batch, K): what it runs on the
ring buffer). Each carries the preprocessing contract in its metadata: mean, std, resize, crop, T, the
sampler, the class names and the clip length live mode buffers.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from behavior.checkpoint import load_trained_model

TOLERANCE = 1e-3  # max |logit difference| between PyTorch and onnxruntime, fp32 on both sides


class _Backbone(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, frames):
        if self.model.config.attention == "none":
            return self.model.forward_frames(frames)  # (N, D)
        features, attention = self.model.forward_frames(frames, return_attention=True)  # (N, D), (N, h, w)
        return features, attention


class _Head(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, features):
        return self.model.forward_head(features)  # (B, K)


def _metadata(model, cfg) -> dict[str, str]:
    transform = cfg.transform
    return {
        "behavior.format": "1",
        "behavior.class_names": json.dumps(model.class_names),
        "behavior.num_frames": str(cfg.sampler.num_frames),
        "behavior.sampler": json.dumps(asdict(cfg.sampler)),
        "behavior.resize": str(transform.resize),
        "behavior.crop": str(transform.crop),
        "behavior.mean": json.dumps(list(transform.mean)),
        "behavior.std": json.dumps(list(transform.std)),
        "behavior.input": "RGB, float32, (x / 255 - mean) / std, short side resized to `resize`, centre crop "
                          "`crop` x `crop`, frames picked by `sampler` (evaluation mode)",
        "behavior.clip_seconds": str(model.clip_seconds),
    }


def _export(module: nn.Module, example: tuple, path: Path, input_names, output_names, dynamic: dict, metadata) -> None:
    import onnx

    with contextlib.redirect_stdout(io.StringIO()):  # the exporter narrates each of its passes
        program = torch.onnx.export(module, example, dynamic_shapes=dynamic, input_names=input_names,
                                    output_names=output_names, dynamo=True, verbose=False, optimize=True)
    program.save(str(path))
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, metadata)
    onnx.save(proto, str(path))


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


@dataclass
class ExportReport:
    files: list[Path]
    max_difference: dict[str, float] | None = None  # per file, on real clips, when verified
    num_clips: int = 0


def export_onnx(checkpoint: str | os.PathLike, out: str | os.PathLike, verify: bool = False,
                videos: list[str] | None = None, num_videos: int = 8) -> ExportReport:
    """Export the model, its backbone and its head; with `verify`, compare onnxruntime with PyTorch on real
    sampled clips (`videos`, or the first `num_videos` of the checkpoint's test split) and raise ValueError
    when any output differs by more than TOLERANCE."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ValueError(f"export needs the export extra: pip install 'behavior[export]' ({exc})") from None
    out = Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"--out {out}: the file name must end in .onnx")
    out.parent.mkdir(parents=True, exist_ok=True)
    model, cfg = load_trained_model(checkpoint)
    size, T = cfg.transform.crop, cfg.sampler.num_frames
    metadata = _metadata(model, cfg)
    batch = torch.export.Dim("batch", min=1, max=4096)
    # A model with the temporal shift has no per-frame backbone (frames mix inside it): only the whole model.
    halves = not model.config.temporal_shift
    paths = [out, out.with_suffix(".backbone.onnx"), out.with_suffix(".head.onnx")] if halves else [out]
    clip = torch.zeros(2, T, 3, size, size)
    with torch.no_grad():
        _export(model, (clip,), paths[0], ["clip"], ["logits"], {"clip": {0: batch}}, metadata)
    if halves:
        _export_halves(model, paths, clip, batch, metadata)
    report = ExportReport(paths)
    if verify:
        clips = _real_clips(cfg, videos, num_videos)
        report.max_difference, report.num_clips = _verify(model, paths, clips), len(clips)
        worst = max(report.max_difference.values())
        if worst > TOLERANCE:
            raise ValueError(f"onnxruntime and PyTorch differ by up to {worst:.2e} (> {TOLERANCE:g}) on real clips: "
                             + ", ".join(f"{Path(k).name} {v:.2e}" for k, v in report.max_difference.items()))
    return report


def _export_halves(model, paths: list[Path], clip: torch.Tensor, batch, metadata) -> None:
    """The two streaming halves live mode runs: the backbone on frames, the head on T features; `clip` is the
    example clip (2, T, C, S, S) the whole model was exported with."""
    frames = torch.export.Dim("frames", min=1, max=4096)
    with torch.no_grad():
        features = model.forward_features(clip)  # (2, T, D)
        outputs = ["features"] if model.config.attention == "none" else ["features", "attention"]
        _export(_Backbone(model).eval(), (clip[:, 0],), paths[1], ["frames"], outputs, {"frames": {0: frames}},
                metadata)
        _export(_Head(model).eval(), (torch.zeros_like(features),), paths[2], ["features"], ["logits"],
                {"features": {0: batch}}, metadata)


def _real_clips(cfg, videos: list[str] | None, num_videos: int) -> torch.Tensor:
    """float (N, T, C, H, W): clips sampled and transformed exactly as evaluation does."""
    from behavior.datasets import build_dataset, load_splits
    from behavior.splits import VideoSample

    if videos:
        samples = [VideoSample(str(v), -1) for v in videos]
    else:
        try:
            samples = load_splits(cfg.data, seed=cfg.train.seed).test[:num_videos]
        except (FileNotFoundError, ValueError) as exc:
            raise ValueError(f"--verify needs real videos: the checkpoint's data is not here ({exc}); "
                             "pass --videos PATH...") from None
    dataset = build_dataset(samples, cfg, train=False, sampler=replace(cfg.sampler, num_views=1))
    return torch.stack([dataset[i][0] for i in range(len(dataset))])  # (N, T, C, H, W)


def _verify(model, paths: list[Path], clips: torch.Tensor) -> dict[str, float]:
    import onnxruntime as ort

    def run(path, **inputs):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {k: v.numpy() for k, v in inputs.items()})

    with torch.no_grad():
        logits = model(clips).numpy()
    whole = run(paths[0], clip=clips)[0]
    if len(paths) == 1:  # a temporal-shift model: the whole model only
        return {str(paths[0]): float(np.abs(whole - logits).max())}
    with torch.no_grad():
        flat = clips.reshape(-1, *clips.shape[2:])  # (N·T, C, H, W)
        expected = _Backbone(model)(flat)
        expected = expected if isinstance(expected, tuple) else (expected,)  # features (N·T, D)[, attention]
        features = expected[0].reshape(clips.shape[0], clips.shape[1], -1)  # (N, T, D)
        head_logits = model.forward_head(features).numpy()
    backbone = run(paths[1], frames=flat)
    head = run(paths[2], features=features)[0]
    return {
        str(paths[0]): float(np.abs(whole - logits).max()),
        str(paths[1]): float(max(np.abs(got - want.numpy()).max() for got, want in zip(backbone, expected))),
        str(paths[2]): float(np.abs(head - head_logits).max()),
    }

"""`behavior export`: the model as ONNX, with its preprocessing contract, checked against PyTorch.

Three files (one for a model with the two-way temporal shift, whose frames cannot run alone):
- OUT, the whole model: clip (batch, T, 3, S, S) -> logits (batch, K), features (batch, D) (the per-frame
  features averaged over T, what the prototype rejection score compares) and, when the model has attention,
  attention (batch, T, h, w); T fixed, batch dynamic;
- OUT with `.backbone.onnx`, what live mode runs on every frame: frames (N, 3, S, S) -> features (N, D) and
  attention (N, h, w). For the online temporal shift (`model.shift: online`) it also takes, per shift, the slice
  the previous frame of each stream kept (inputs `shifted_0` ... , zeros for a stream's first frame) and returns
  the new frames' slices (outputs `shifted_out_0` ...), so that a stream costs one backbone pass per frame;
- OUT with `.head.onnx`, what it runs on the T features: features (batch, T, D) -> logits (batch, K).
Each carries the preprocessing contract in its metadata: mean, std, resize, crop, T, the sampler, the class names
and the clip length live mode buffers; and what turns logits into answers: the temperature (probabilities =
softmax(logits / temperature)), the rejection score, its threshold (below it: `unknown`) and, for the prototype
score, the class prototypes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from behavior.data.datasets import build_dataset, load_splits
from behavior.data.splits import VideoSample
from behavior.engine.checkpoint import load_trained_model
from behavior.errors import ExportVerificationError, UsageError

TOLERANCE = 1e-3  # max |logit difference| between PyTorch and onnxruntime, fp32 on both sides
FORMAT = "2"  # behavior.format of the metadata; 2: the whole model also gives features and attention


class _Scores(nn.Module):
    """The whole model: clip -> logits, features[, attention]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, clip):
        if self.model.config.attention == "none":
            return self.model.forward_scores(clip)  # (B, K), (B, D)
        return self.model.forward_scores(clip, return_attention=True)  # (B, K), (B, D), (B, T, h, w)


class _Backbone(nn.Module):
    """The per-frame half: frames[, shifted_i...] -> features[, attention][, shifted_out_i...]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, frames, *shifted):
        attention = self.model.config.attention != "none"
        if not self.model.mixes_frames:
            if not attention:
                return self.model.forward_frames(frames)  # (N, D)
            return self.model.forward_frames(frames, return_attention=True)  # (N, D), (N, h, w)
        step = self.model.forward_step(frames, list(shifted) or None, return_attention=attention)
        return (step.features, *([step.attention] if attention else []), *step.shifted)


class _Head(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, features):
        return self.model.forward_head(features)  # (B, K)


def shift_kind(model) -> str:
    """none | two_way | online: the temporal shift that decides how the model's frames can run."""
    if not model.mixes_frames:
        return "none"
    return "online" if model.streams_frames else "two_way"


def _metadata(model, cfg) -> dict[str, str]:
    transform = cfg.transform
    return {
        "behavior.format": FORMAT,
        "behavior.shift": shift_kind(model),
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
        **(
            {
                "behavior.streaming": "online temporal shift: feed each new frame with the shifted_out_i its stream's "
                "previous frame returned as shifted_i (zeros for a stream's first frame); live mode's previous "
                "frame is the newest one at least clip_seconds / num_frames older, and the head takes the features "
                "of the newest frame and its num_frames - 1 predecessors"
            }
            if shift_kind(model) == "online"
            else {}
        ),
        **_confidence_metadata(model.confidence),
    }


def _confidence_metadata(confidence) -> dict[str, str]:
    """The temperature and the rejection rule (`behavior.engine.confidence.Confidence`), as metadata."""
    scores = {
        "msp": "max(softmax(logits / temperature)) (in [0, 1])",
        "energy": "temperature * logsumexp(logits / temperature) (the negative free energy)",
        "prototype": "max cosine similarity of the backbone's features averaged over T (model.backbone.onnx) "
        "to behavior.prototypes",
    }
    metadata = {
        "behavior.temperature": repr(float(confidence.temperature)),
        "behavior.probabilities": "softmax(logits / temperature)",
        "behavior.unknown_score": confidence.score if confidence.rejects else "none",
        "behavior.unknown_threshold": ""
        if confidence.threshold is None
        else repr(float(confidence.threshold)),
    }
    if confidence.rejects:
        metadata["behavior.unknown_rule"] = (
            f"label 'unknown' when {scores[confidence.score]} < unknown_threshold"
        )
    if confidence.prototypes is not None:
        metadata["behavior.prototypes"] = json.dumps(np.round(confidence.prototypes, 6).tolist())
    return metadata


def _export(
    module: nn.Module, example: tuple, path: Path, input_names, output_names, dynamic: dict, metadata
) -> None:
    import onnx

    with (
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
    ):  # it narrates each of its passes
        # the frames of the online backbone's inputs share one batch axis: the exporter says so, once per name
        warnings.filterwarnings("ignore", message="# The axis name", category=UserWarning)
        program = torch.onnx.export(
            module,
            example,
            dynamic_shapes=dynamic,
            input_names=input_names,
            output_names=output_names,
            dynamo=True,
            verbose=False,
            optimize=True,
        )
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


def export_onnx(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    verify: bool = False,
    videos: list[str] | None = None,
    num_videos: int = 8,
) -> ExportReport:
    """Export the model, its backbone and its head; with `verify`, compare onnxruntime with PyTorch on real
    sampled clips (`videos`, or the first `num_videos` of the checkpoint's test split) and raise
    `ExportVerificationError` when any output differs by more than TOLERANCE."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"export needs the export extra: pip install 'behavior[export]' ({exc})") from None
    out = Path(out)
    if out.suffix != ".onnx":
        raise UsageError(f"--out {out}: the file name must end in .onnx")
    out.parent.mkdir(parents=True, exist_ok=True)
    model, cfg = load_trained_model(checkpoint)
    model = model.to(memory_format=torch.contiguous_format)  # the exporter traces the plain layout
    size, T = cfg.transform.crop, cfg.sampler.num_frames
    metadata = _metadata(model, cfg)
    batch = torch.export.Dim("batch", min=1, max=4096)
    # A model with the two-way temporal shift has no per-frame backbone (frames mix both ways): only the whole model.
    halves = model.streams_frames
    paths = [out, out.with_suffix(".backbone.onnx"), out.with_suffix(".head.onnx")] if halves else [out]
    clip = torch.zeros(2, T, 3, size, size)
    outputs = ["logits", "features"] + ([] if cfg.model.attention == "none" else ["attention"])
    with torch.no_grad():
        _export(_Scores(model).eval(), (clip,), paths[0], ["clip"], outputs, {"clip": {0: batch}}, metadata)
    if halves:
        _export_halves(model, paths, clip, batch, metadata)
    report = ExportReport(paths)
    if verify:
        clips = _real_clips(cfg, videos, num_videos)
        report.max_difference, report.num_clips = _verify(model, paths, clips), len(clips)
        worst = max(report.max_difference.values())
        if worst > TOLERANCE:
            raise ExportVerificationError(
                f"onnxruntime and PyTorch differ by up to {worst:.2e} (> {TOLERANCE:g}) on real clips: "
                + ", ".join(f"{Path(k).name} {v:.2e}" for k, v in report.max_difference.items())
            )
    return report


def _export_halves(model, paths: list[Path], clip: torch.Tensor, batch, metadata) -> None:
    """The two streaming halves live mode runs: the backbone on frames (with the shifted slices of the online
    shift), the head on T features; `clip` is the example clip (2, T, C, S, S) the whole model was exported with."""
    frames = torch.export.Dim("frames", min=1, max=4096)
    with torch.no_grad():
        features = model.forward_features(clip)  # (2, T, D)
        shifted = (
            model.forward_step(clip[:, 0]).shifted if model.mixes_frames else []
        )  # [(2, C_i/8, h_i, w_i)]
        names = [f"shifted_{i}" for i in range(len(shifted))]
        outputs = ["features"] + ([] if model.config.attention == "none" else ["attention"])
        _export(
            _Backbone(model).eval(),
            (clip[:, 0], *shifted),
            paths[1],
            ["frames", *names],
            outputs + [f"shifted_out_{i}" for i in range(len(shifted))],
            {"frames": {0: frames}, **({"shifted": tuple({0: frames} for _ in shifted)} if shifted else {})},
            metadata,
        )
        _export(
            _Head(model).eval(),
            (torch.zeros_like(features),),
            paths[2],
            ["features"],
            ["logits"],
            {"features": {0: batch}},
            metadata,
        )


def _real_clips(cfg, videos: list[str] | None, num_videos: int) -> torch.Tensor:
    """float (N, T, C, H, W): clips sampled and transformed exactly as evaluation does."""
    if videos:
        samples = [VideoSample(str(v), -1) for v in videos]
    else:
        try:
            samples = load_splits(cfg.data, seed=cfg.train.seed).test[:num_videos]
        except (FileNotFoundError, ValueError) as exc:
            raise UsageError(
                f"--verify needs real videos: the checkpoint's data is not here ({exc}); "
                "pass --videos PATH..."
            ) from None
    dataset = build_dataset(samples, cfg, train=False, sampler=replace(cfg.sampler, num_views=1))
    return torch.stack([dataset[i][0] for i in range(len(dataset))])  # (N, T, C, H, W)


def _difference(got: list[np.ndarray], want: list[torch.Tensor]) -> float:
    return float(max(np.abs(g - w.numpy()).max() for g, w in zip(got, want)))


def _verify(model, paths: list[Path], clips: torch.Tensor) -> dict[str, float]:
    """Max |difference| per file between onnxruntime and PyTorch: the whole model on `clips`; the backbone on
    their frames (streamed frame by frame, each stream's slices fed back, for the online shift); the head on their
    features."""
    import onnxruntime as ort

    def session(path):
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    whole = session(paths[0])
    with torch.no_grad():
        expected = _Scores(model)(clips)
    differences = {str(paths[0]): _difference(whole.run(None, {"clip": clips.numpy()}), list(expected))}
    if len(paths) == 1:  # a two-way temporal-shift model: the whole model only
        return differences
    backbone, head = session(paths[1]), session(paths[2])
    worst, torch_shifted = 0.0, []
    with torch.no_grad():
        for t in range(clips.shape[1] if model.mixes_frames else 1):
            frames = (
                clips[:, t] if model.mixes_frames else clips.reshape(-1, *clips.shape[2:])
            )  # (N, C, H, W)
            want = _Backbone(model)(frames, *torch_shifted)
            want = list(want) if isinstance(want, tuple) else [want]
            count = len(want) - len(model.shifts)  # features[, attention], then the slices kept
            if t == 0:
                shifted = [np.zeros_like(w.numpy()) for w in want[count:]]  # the streams' first frames
            inputs = {"frames": frames.numpy()} | {f"shifted_{i}": s for i, s in enumerate(shifted)}
            got = backbone.run(None, inputs)
            worst = max(worst, _difference(got, want))
            shifted, torch_shifted = got[count:], want[count:]  # each stream's slices, fed back
        features = model.forward_features(clips)  # (N, T, D)
        head_logits = model.forward_head(features)
    differences[str(paths[1])] = worst
    differences[str(paths[2])] = _difference(head.run(None, {"features": features.numpy()}), [head_logits])
    return differences

"""Inference engines on the CPU: clips/s of eager PyTorch (contiguous), PyTorch channels-last, PyTorch
channels-last with its batch norms folded into the convolutions and oneDNN for every convolution (what `--engine
torch` loads) and ONNX Runtime (`--engine onnx`), on the demo model and on efficientnet_lite0, at batch 1 and batch
32; and the per-frame step of live mode (`forward_step`, one frame, the online shift) on each engine.

Every variant runs in this process under `torch.inference_mode()` (ONNX Runtime with as many intra-op threads as
torch uses, as `behavior.tools.engines.OnnxModel` opens it), on the same random clips, in turns (interleaved) in
every round. The ONNX files are `behavior export`'s (`behavior.tools.export.export_onnx`) of an untrained
checkpoint (the cost of a forward does not depend on the weights' values); the max |logit difference| between
ONNX Runtime and PyTorch is checked on the same clips against the export's TOLERANCE.
"""

from __future__ import annotations

import copy
import time

import torch
from harness import (
    Settings,
    invert,
    ratios,
    section_result,
    spread,
    table,
    target,
    time_interleaved,
    untrained_checkpoint,
)

from behavior.engine.checkpoint import load_trained_model
from behavior.tools.engines import OnnxModel, for_torch_engine
from behavior.tools.export import TOLERANCE, export_onnx

TITLE = "Inference engines: eager PyTorch, channels-last, ONNX Runtime"
TORCH_ENGINE = "PyTorch channels-last, batch norms folded, oneDNN"  # what --engine torch loads (load_engine)
TORCH_VARIANTS = ("PyTorch eager", "PyTorch channels-last", TORCH_ENGINE)
CLEARLY = 1.1  # an engine is "clearly faster" when its clips/s is at least this multiple of the other's

MODELS = {
    "demo (seed-cnn, width 0.25, 64 px)": ("demo", []),
    "efficientnet_lite0 (112 px)": (
        "lite0",
        [
            "model.backbone=efficientnet_lite0",
            "model.width=1.0",
            "model.pretrained=none",
            "model.freeze=none",
            "transform.resize=128",
            "transform.crop=112",
        ],
    ),
}
ONLINE = ["model.temporal_shift=true", "model.shift=online"]


def engines_of(settings: Settings, short: str, overrides: list[str]) -> tuple[dict, object, float]:
    """The three engines of one checkpoint: {name: model}, its config, and the export seconds (None when an
    earlier run's files are reused)."""
    checkpoint = untrained_checkpoint(settings, settings.work / "models" / f"untrained-{short}.pt", overrides)
    model, cfg = load_trained_model(checkpoint)
    contiguous = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    channels_last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    folded = for_torch_engine(copy.deepcopy(channels_last))
    folder, seconds = settings.work / "engines" / checkpoint.stem, None
    if not (folder / "model.onnx").is_file():
        started = time.perf_counter()
        export_onnx(checkpoint, folder / "model.onnx")
        seconds = time.perf_counter() - started
    files = [folder / name for name in ("model.onnx", "model.backbone.onnx", "model.head.onnx")]
    return (
        {
            "PyTorch eager": contiguous,
            "PyTorch channels-last": channels_last,
            TORCH_ENGINE: folded,
            "ONNX Runtime": OnnxModel(model, files),
        },
        cfg,
        seconds,
    )


def scoring(engine, clip: torch.Tensor, calls: int):
    """`calls` calls of `forward_scores` on the clip batch (what `behavior predict` runs)."""

    @torch.inference_mode()
    def run() -> None:
        for _ in range(calls):
            engine.forward_scores(clip)

    return run


def stepping(engine, frames: torch.Tensor):
    """A stream of frames one at a time through `forward_step`, each with the slices of the one before (what live
    mode runs on every frame with the online shift)."""

    @torch.inference_mode()
    def run() -> None:
        shifted = None
        for frame in frames:
            shifted = engine.forward_step(frame[None], shifted).shifted

    return run


def differences_of(engines: dict, clip: torch.Tensor) -> dict[str, float]:
    """max |ONNX Runtime - eager PyTorch| of the logits and of the clip features on the clips, and the largest
    |logit| (the scale the difference is read against: an untrained model's logits are small)."""
    with torch.inference_mode():
        want = engines["PyTorch eager"].forward_scores(clip)
        got = engines["ONNX Runtime"].forward_scores(clip)
    return {
        "logits": float((got[0] - want[0]).abs().max()),
        "features": float((got[1] - want[1]).abs().max()),
        "largest logit": float(want[0].abs().max()),
    }


def run(settings: Settings) -> dict:
    repeats = settings.pick(5, 1)
    batches = (1, 32)
    rows, steps, differences, exports = [], [], {}, {}
    generator = torch.Generator().manual_seed(0)
    for name, (short, overrides) in MODELS.items():
        engines, cfg, exports[name] = engines_of(settings, short, overrides)
        T, size = cfg.sampler.num_frames, cfg.transform.crop
        clips = torch.randn(max(batches), T, 3, size, size, generator=generator)
        differences[name] = differences_of(engines, clips[:4])
        for batch in batches:
            # about the same work per timed call at every batch: more calls at batch 1
            calls = settings.pick(max(1, 64 // batch), max(1, 8 // batch))
            print(f"  {name}, batch {batch}: {calls} calls per repeat", flush=True)
            seconds = time_interleaved(
                {engine: scoring(model, clips[:batch], calls) for engine, model in engines.items()}, repeats
            )
            base = seconds["PyTorch eager"]
            for engine, values in seconds.items():
                rows.append(
                    [name, batch, engine, invert(spread(values), batch * calls), ratios(base, values)]
                )
        online, online_cfg, _ = engines_of(settings, f"{short}-online", overrides + ONLINE)
        frames = torch.randn(settings.pick(64, 8), 3, size, size, generator=generator)
        print(f"  {name}, online shift: forward_step on {len(frames)} frames", flush=True)
        seconds = time_interleaved(
            {engine: stepping(model, frames) for engine, model in online.items()}, repeats
        )
        base = seconds["PyTorch eager"]
        for engine, values in seconds.items():
            steps.append([name, engine, invert(spread(values), len(frames)), ratios(base, values)])

    def median_of(model: str, batch: int, engine: str) -> float:
        return next(r[3]["median"] for r in rows if r[0] == model and r[1] == batch and r[2] == engine)

    def step_of(model: str, engine: str) -> float:
        return next(r[2]["median"] for r in steps if r[0] == model and r[1] == engine)

    verdicts = []
    for name in MODELS:
        for batch in batches:
            torch_best = max(median_of(name, batch, e) for e in TORCH_VARIANTS)
            verdicts.append((f"{name}, batch {batch}", median_of(name, batch, "ONNX Runtime") / torch_best))
        verdicts.append(
            (
                f"{name}, live step (batch 1, online shift)",
                step_of(name, "ONNX Runtime") / step_of(name, TORCH_ENGINE),
            )
        )
    onnx_wins = [label for label, ratio in verdicts if ratio >= CLEARLY]
    torch_wins = [label for label, ratio in verdicts if ratio <= 1 / CLEARLY]
    worst = max(d["logits"] for d in differences.values())
    met = worst < TOLERANCE
    goal = target(
        f"ONNX Runtime gives the same logits as PyTorch within the export tolerance ({TOLERANCE:g}); the default "
        "engine is chosen from the clips/s below (no speed threshold)",
        worst,
        TOLERANCE,
        met,
        "" if met else f"max |logit difference| {worst:.2e} >= {TOLERANCE:g}",
        onnx_over_best_torch={label: ratio for label, ratio in verdicts},
        onnx_clearly_faster=onnx_wins,
        torch_clearly_faster=torch_wins,
    )
    tables = [
        table(
            "clips/s of forward_scores (what predict runs), inference mode",
            ["model", "batch", "engine", "clips/s", "x eager PyTorch"],
            rows,
        ),
        table(
            "frames/s of forward_step, one frame at a time (what live mode runs with the online shift)",
            ["model", "engine", "frames/s", "x eager PyTorch"],
            steps,
        ),
        table(
            "ONNX Runtime clips/s over the fastest PyTorch variant (per-frame step: over the folded one, what "
            "--engine torch loads)",
            ["case", "ratio"],
            [[label, ratio] for label, ratio in verdicts],
        ),
        table(
            "ONNX Runtime against PyTorch",
            [
                "model",
                "max |logit difference| (4 clips)",
                "tolerance",
                "max |feature difference|",
                "largest |logit|",
                "export seconds (first use)",
            ],
            [
                [
                    name,
                    differences[name]["logits"],
                    TOLERANCE,
                    differences[name]["features"],
                    differences[name]["largest logit"],
                    exports[name],
                ]
                for name in MODELS
            ],
        ),
    ]
    notes = [
        f"torch threads {torch.get_num_threads()}; ONNX Runtime's CPU provider with intra-op threads = torch "
        "threads; random clips (B, T, 3, S, S); the clip models have the demo config's two-way shift, the "
        "per-frame step models the online shift (model.shift=online).",
        f"faster by at least {CLEARLY:g}x: ONNX Runtime in "
        + (", ".join(onnx_wins) or "no case")
        + "; PyTorch in "
        + (", ".join(torch_wins) or "no case")
        + "; the rest within that margin.",
        "export seconds are '-' when the ONNX files of an earlier run were reused; `--engine onnx` "
        "pays them once per checkpoint.",
    ]
    return section_result(TITLE, goal, tables, notes)

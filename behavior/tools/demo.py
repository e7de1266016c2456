"""`behavior demo` (what `make demo` runs): synthetic data -> check -> train -> evaluate -> headline figures."""

from __future__ import annotations

import json
import time
from pathlib import Path

from behavior.config import load_config
from behavior.engine.evaluate import evaluate_checkpoint, format_metrics
from behavior.engine.train import train
from behavior.synthetic import generate_dataset
from behavior.tools.check import check_paths, format_report


def run_demo(
    config: str | Path = "configs/demo.yaml",
    overrides: list[str] | tuple[str, ...] = (),
    out: str | Path | None = None,
    clips_per_class: int = 140,
    difficulty: str = "medium",
    compare_shift: bool = False,
) -> int:
    started = time.perf_counter()
    cfg = load_config(config, overrides)
    root, splits = Path(cfg.data.root), Path(cfg.data.splits)
    if not (splits / "classInd.txt").is_file():
        folder = root.parent
        print(
            f"[1/4] generating the synthetic data set in {folder} ({clips_per_class} clips per class, "
            f"{difficulty})",
            flush=True,
        )
        report = generate_dataset(
            folder,
            clips_per_class=clips_per_class,
            difficulty=difficulty,
            seed=cfg.train.seed,
            workers=max(1, cfg.data.num_workers),
        )
        print(report.summary(), flush=True)
    else:
        print(f"[1/4] using the synthetic data set in {root.parent}", flush=True)

    print("[2/4] checking it", flush=True)
    checked = check_paths([root], splits_dir=splits, decode="sample", workers=max(1, cfg.data.num_workers))
    print(format_report(checked, max_rows=10), flush=True)

    run = Path(out) if out else Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S")
    print(f"[3/4] training {config} into {run}", flush=True)
    result = train(cfg, run)

    print(f"[4/4] evaluating {result.best_checkpoint} on the held-out test groups", flush=True)
    metrics = evaluate_checkpoint(result.best_checkpoint, run / "eval-test")
    print(format_metrics(metrics))
    seconds = time.perf_counter() - started
    recall = {name: row["recall"] for name, row in metrics["per_class"].items()}
    headline = {
        "test_top1": metrics["top1"],
        "test_mean_class_accuracy": metrics["mean_class_accuracy"],
        "recall": recall,
        "temperature": metrics["temperature"],
        "ece_before": metrics["ece_before"],
        "ece_after": metrics["ece_after"],
        "known_kept": metrics["rejection"]["known_kept"],
        "train_seconds": result.seconds,
        "demo_seconds": seconds,
        "metrics": str(run / "eval-test" / "metrics.json"),
        "confusion_matrix": str(run / "eval-test" / "confusion_matrix.png"),
    }
    (run / "demo.json").write_text(json.dumps(headline, indent=2) + "\n")
    order_pair = ", ".join(f"{c} recall {recall[c]:.2f}" for c in ("sit_down", "stand_up") if c in recall)
    print(
        f"\ndemo: test top-1 {metrics['top1']:.3f}, mean-class accuracy {metrics['mean_class_accuracy']:.3f}"
        f"{', ' + order_pair if order_pair else ''}; {seconds:.0f} s in all ({result.seconds:.0f} s training)"
    )
    print(f"  metrics:          {headline['metrics']}")
    print(f"  confusion matrix: {headline['confusion_matrix']}")
    print(f"  reliability:      {run / 'eval-test' / 'reliability_diagram.png'}")
    print(f"  training curves:  {run / 'curves.png'}")
    if compare_shift:
        headline["shifts"] = compare_shifts(cfg, config, overrides, run, metrics, result.seconds)
        (run / "demo.json").write_text(json.dumps(headline, indent=2) + "\n")
    return 0


def compare_shifts(cfg, config, overrides, run: Path, metrics: dict, seconds: float) -> dict:
    """Train and evaluate the demo recipe again with the other temporal shift (into run/shift-<kind>) and print
    the two runs' test figures side by side; returns them by shift."""
    if not cfg.model.temporal_shift:
        print(
            "compare-shift: this config has no temporal shift (model.temporal_shift: false); nothing to compare"
        )
        return {}
    other = "online" if cfg.model.shift == "two_way" else "two_way"
    folder = run / f"shift-{other}"
    print(f"\n[compare] training {config} with model.shift={other} into {folder}", flush=True)
    result = train(load_config(config, [*overrides, f"model.shift={other}"]), folder)
    other_metrics = evaluate_checkpoint(result.best_checkpoint, folder / "eval-test")
    rows = {cfg.model.shift: (metrics, seconds), other: (other_metrics, result.seconds)}
    passes = {"two_way": f"{cfg.sampler.num_frames} (the whole clip)", "online": "1"}
    print(
        "\nshift     test top-1  mean-class  sit_down/stand_up recall  training s  live: backbone passes/frame"
    )
    figures = {}
    for kind in ("two_way", "online"):
        m, train_seconds = rows[kind]
        recall = {name: row["recall"] for name, row in m["per_class"].items()}
        pair = "/".join(f"{recall[c]:.2f}" for c in ("sit_down", "stand_up") if c in recall)
        print(
            f"{kind:<9} {m['top1']:>10.3f}  {m['mean_class_accuracy']:>10.3f}  {pair:>24}  {train_seconds:>10.0f}"
            f"  {passes[kind]}"
        )
        figures[kind] = {
            "test_top1": m["top1"],
            "mean_class_accuracy": m["mean_class_accuracy"],
            "recall": recall,
        }
    return figures

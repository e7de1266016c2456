"""`behavior demo` (what `make demo` runs): synthetic data -> check -> train -> evaluate -> headline figures."""

from __future__ import annotations

import json
import time
from pathlib import Path


def run_demo(config: str | Path = "configs/demo.yaml", overrides: list[str] | tuple[str, ...] = (),
             out: str | Path | None = None, clips_per_class: int = 140, difficulty: str = "medium") -> int:
    from behavior.check import check_paths, format_report
    from behavior.config import load_config
    from behavior.evaluate import evaluate_checkpoint, format_metrics
    from behavior.synthetic import generate_dataset
    from behavior.train import train

    started = time.perf_counter()
    cfg = load_config(config, overrides)
    root, splits = Path(cfg.data.root), Path(cfg.data.splits)
    if not (splits / "classInd.txt").is_file():
        folder = root.parent
        print(f"[1/4] generating the synthetic data set in {folder} ({clips_per_class} clips per class, "
              f"{difficulty})", flush=True)
        report = generate_dataset(folder, clips_per_class=clips_per_class, difficulty=difficulty,
                                  seed=cfg.train.seed, workers=max(1, cfg.data.num_workers))
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
        "train_seconds": result.seconds,
        "demo_seconds": seconds,
        "metrics": str(run / "eval-test" / "metrics.json"),
        "confusion_matrix": str(run / "eval-test" / "confusion_matrix.png"),
    }
    (run / "demo.json").write_text(json.dumps(headline, indent=2) + "\n")
    order_pair = ", ".join(f"{c} recall {recall[c]:.2f}" for c in ("sit_down", "stand_up") if c in recall)
    print(f"\ndemo: test top-1 {metrics['top1']:.3f}, mean-class accuracy {metrics['mean_class_accuracy']:.3f}"
          f"{', ' + order_pair if order_pair else ''}; {seconds:.0f} s in all ({result.seconds:.0f} s training)")
    print(f"  metrics:          {headline['metrics']}")
    print(f"  confusion matrix: {headline['confusion_matrix']}")
    print(f"  training curves:  {run / 'curves.png'}")
    return 0

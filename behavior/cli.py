"""The `behavior` command: one subcommand per job. Heavy modules are imported inside each handler,
so `behavior --help` answers at once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _add_check(sub) -> None:
    p = sub.add_parser(
        "check",
        help="report what a data root or a set of videos holds, and what cannot be read",
        description="Read every video under the given data roots, folders or files and report counts per class "
        "and split, frames, fps, size and duration of each video, unreadable files with the reason, split "
        "entries missing from disk, videos no split lists, and duplicates. Nothing is modified. "
        "Exit status: 0 when every video reads, 3 when some do not, 2 on bad arguments.",
    )
    p.add_argument("paths", nargs="+", type=Path, help="a data root (root/<class>/<video>), folders or video files")
    p.add_argument("--splits", type=Path, help="folder with classInd.txt, trainlistNN.txt and testlistNN.txt")
    p.add_argument("--annotations", type=Path, action="append",
                   help="CSV of path,label lines, paths relative to the root (repeat for several lists)")
    p.add_argument("--json", type=Path, help="write one entry per video to this JSON file")
    p.add_argument("--decode", choices=("sample", "all", "none"), default="sample",
                   help="how much of each video to decode: 8 frames spread over it (default), every frame, or "
                   "only the header")
    p.add_argument("--workers", type=int, default=2, help="processes reading videos in parallel (default 2)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds one video may take before it is reported as stalled (default 60)")
    p.set_defaults(handler=_run_check)


def _run_check(args) -> int:
    from behavior.check import check_paths, format_report, write_json

    report = check_paths(args.paths, splits_dir=args.splits, annotations=args.annotations, decode=args.decode,
                         workers=args.workers, timeout_s=args.timeout)
    print(format_report(report))
    if args.json:
        write_json(report, args.json)
        print(f"wrote {args.json}")
    return 0 if report.num_failed == 0 else 3


def _add_synth(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="write the synthetic five-behaviour data set (walk, run, wave, sit_down, stand_up)",
        description="Write a UCF101-style tree of real encoded videos (mp4 and avi) of procedurally drawn figures "
        "performing five behaviours, with classInd.txt, trainlist01.txt and testlist01.txt. Train and test "
        "are split by group: an actor and scene look never appears in both. Layout: OUT/videos/<class>/"
        "v_<Class>_gGG_cCC.<ext> and OUT/splits/. The same seed gives the same videos.",
    )
    p.add_argument("out", type=Path, help="output folder (created; existing videos are never overwritten)")
    p.add_argument("--clips-per-class", type=int, default=100, help="videos per behaviour (default 100)")
    p.add_argument("--difficulty", choices=("easy", "medium", "hard"), default="medium",
                   help="easy: plain scenes; medium: textured backgrounds, a distractor, slight shake; "
                   "hard: clutter, several distractors, shake, noise and partial occlusion (default medium)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same data set")
    p.add_argument("--workers", type=int, default=2, help="processes rendering and encoding (default 2)")
    p.set_defaults(handler=_run_synth)


def _run_synth(args) -> int:
    from behavior.synthetic import generate_dataset

    report = generate_dataset(args.out, clips_per_class=args.clips_per_class, difficulty=args.difficulty,
                              seed=args.seed, workers=args.workers)
    print(report.summary())
    return 0


def _add_models(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list the backbones and heads, with parameters and FLOPs per clip",
        description="List every backbone and temporal head that build_model knows, with parameters and GFLOPs "
        "per clip (counted with torch.utils.flop_counter) at the default input size. With --speed, also "
        "measure forward clips/s at batch 16 on this machine and its fp32 matmul GFLOPS in the same run.",
    )
    p.add_argument("--frames", type=int, default=8, help="T, frames per clip (default 8)")
    p.add_argument("--size", type=int, default=112, help="input height and width (default 112)")
    p.add_argument("--speed", action="store_true", help="also measure forward clips/s at batch 16")
    p.set_defaults(handler=_run_models)


def _run_models(args) -> int:
    from behavior.model import format_model_table

    print(format_model_table(num_frames=args.frames, size=args.size, measure_speed=args.speed))
    return 0


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a YAML config",
        description="Train the model a YAML config describes: train_one_epoch, evaluate on the validation groups, "
        "checkpoint (last.pt, and best.pt by validation mean-class accuracy), written atomically. Logs go to "
        "RUN/metrics.jsonl, RUN/tensorboard and RUN/curves.png; the resolved config to RUN/config.yaml. "
        "Under `torchrun --nproc_per_node=N --no-python behavior train ...` it trains with DDP. "
        "Exit status: 0 done, 1 the loss diverged, 2 a bad config or argument.",
    )
    p.add_argument("--config", type=Path, required=True, help="YAML config, e.g. configs/demo.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set optim.lr=0.003 --set model.head=avg (repeatable)")
    p.add_argument("--out", type=Path, help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.set_defaults(handler=_run_train)


def _run_train(args) -> int:
    from behavior.config import load_config
    from behavior.train import TrainingDiverged, train

    cfg = load_config(args.config, args.overrides)
    out = args.out or Path("runs") / args.config.stem
    try:
        result = train(cfg, out, resume=args.resume)
    except TrainingDiverged as exc:
        print(f"behavior train: {exc}", file=sys.stderr)
        return 1
    if result.is_main:
        print(f"done in {result.seconds:.0f} s: best validation mean-class accuracy {result.best_mean_class_accuracy:.3f}; "
              f"checkpoints {result.best_checkpoint}, {result.last_checkpoint}")
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a checkpoint: metrics, confusion matrix, per-video predictions",
        description="Score every video of a split with a trained checkpoint and write DIR/metrics.json (top-1, "
        "top-5 when K > 5, mean-class accuracy, macro-F1, per-class precision/recall/F1/support, clip- and "
        "video-level accuracy, failed videos), DIR/confusion_matrix.csv and .png (raw and row-normalised), and "
        "DIR/predictions.csv. It refuses to report on a split that lost videos to decode errors unless "
        "--allow-failed is given. Exit status: 0 done, 3 refused because videos failed, 2 bad arguments.",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="best.pt or last.pt of a training run")
    p.add_argument("--data", help="data root to evaluate on (default: the checkpoint's data.root)")
    p.add_argument("--splits", help="split-file folder (default: the checkpoint's data.splits; '' for none)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="which split (default test)")
    p.add_argument("--views", type=int, help="clips per video, scores averaged (default: the config's)")
    p.add_argument("--out", type=Path, help="output folder (default: next to the checkpoint, eval-<split>)")
    p.add_argument("--allow-failed", action="store_true",
                   help="report even when some videos fail to decode; the loss is recorded in metrics.json")
    p.add_argument("--batch-size", type=int, help="videos per batch (default: the config's eval_batch_size)")
    p.add_argument("--workers", type=int, help="decoding worker processes (default: the config's)")
    p.set_defaults(handler=_run_evaluate)


def _run_evaluate(args) -> int:
    from behavior.evaluate import EvaluationRefused, evaluate_checkpoint, format_metrics

    out = args.out or args.checkpoint.parent / f"eval-{args.split}"
    try:
        metrics = evaluate_checkpoint(args.checkpoint, out, data_root=args.data, splits_dir=args.splits,
                                      split=args.split, views=args.views, allow_failed=args.allow_failed,
                                      batch_size=args.batch_size, workers=args.workers)
    except EvaluationRefused as exc:
        print(f"behavior evaluate: refused: {exc}", file=sys.stderr)
        return 3
    print(format_metrics(metrics))
    print(f"wrote {out / 'metrics.json'}, {out / 'confusion_matrix.png'}, {out / 'predictions.csv'}")
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="the main job: synthetic data, training, evaluation, headline figures",
        description="Generate the synthetic five-behaviour set when it is missing, check it, train "
        "configs/demo.yaml, evaluate the best checkpoint on the held-out test groups, and print the headline "
        "figures with the paths of metrics.json and confusion_matrix.png. This is what `make demo` runs.",
    )
    p.add_argument("--config", type=Path, default=Path("configs/demo.yaml"), help="default configs/demo.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (repeatable)")
    p.add_argument("--out", type=Path, help="run folder (default: runs/demo-<date>-<time>)")
    p.add_argument("--clips-per-class", type=int, default=60, help="size of the synthetic set when it is made")
    p.add_argument("--difficulty", choices=("easy", "medium", "hard"), default="medium",
                   help="difficulty of the synthetic set when it is made (default medium)")
    p.set_defaults(handler=_run_demo)


def _run_demo(args) -> int:
    from behavior.demo import run_demo

    return run_demo(args.config, args.overrides, args.out, args.clips_per_class, args.difficulty)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="behavior",
        description="Video action recognition: sample frames, run a 2D CNN with spatial attention on each, pool "
        "them over time, and report confusion matrices. Run `behavior SUBCOMMAND --help` for each job.",
    )
    from behavior import __version__

    parser.add_argument("--version", action="version", version=f"behavior {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for add in (_add_demo, _add_check, _add_synth, _add_train, _add_evaluate, _add_models):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as exc:  # errors a user can fix: one clear line, no traceback
        print(f"behavior {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

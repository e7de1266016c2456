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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="behavior",
        description="Video action recognition: sample frames, run a 2D CNN with spatial attention on each, pool "
        "them over time, and report confusion matrices. Run `behavior SUBCOMMAND --help` for each job.",
    )
    from behavior import __version__

    parser.add_argument("--version", action="version", version=f"behavior {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for add in (_add_check, _add_synth, _add_models):
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

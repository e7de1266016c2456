"""The `behavior` command: one subcommand per job. Heavy modules are imported inside each handler, so
`behavior --help` and a config error answer at once.

Exit status: 0 done; 2 an error a user can fix (`behavior.errors.BehaviorError`: one line naming what to fix);
1 training diverged or an export failed verification; 3 some videos could not be read (check, predict) or an
evaluation was refused; 130 interrupted. Any other exception is a bug and shows its traceback.

Over 400 lines because every option of every job, with its help text, is written out here where `--help` is
made: one `_add_<job>` and one `_run_<job>` per subcommand, nothing else to split off."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from behavior.errors import (
    BehaviorError,
    EvaluationRefused,
    ExportVerificationError,
    TrainingDiverged,
    UsageError,
)

# How the CLI reports the errors that have their own exit status; every other BehaviorError is "error: ", status 2.
OUTCOMES: dict[type[BehaviorError], tuple[str, int]] = {
    TrainingDiverged: ("", 1),
    ExportVerificationError: ("verification failed: ", 1),
    EvaluationRefused: ("refused: ", 3),
}


def _threshold(text: str) -> float | str:
    """--unknown-threshold: a number, or "off"."""
    if text.strip().lower() == "off":
        return "off"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'off', got {text!r}") from None


def _add_unknown_threshold(p) -> None:
    p.add_argument(
        "--unknown-threshold",
        type=_threshold,
        metavar="VALUE|off",
        help="call a clip unknown when its rejection score (unknown_score) falls below VALUE instead of the "
        "threshold training chose (kept in the checkpoint; e.g. 0.6 for the msp score, which lies in [0, 1]); "
        "off: never unknown",
    )


def _add_engine(p) -> None:
    from behavior.config import DEFAULT_ENGINE, ENGINES

    p.add_argument(
        "--engine",
        choices=ENGINES,
        default=DEFAULT_ENGINE,
        help=f"what runs the model: torch (eager PyTorch) or onnx (the checkpoint exported once, cached under "
        f"~/.cache/behavior/onnx, on ONNX Runtime's CPU provider; needs the export extra) (default {DEFAULT_ENGINE})",
    )


def _threshold_arguments(args) -> dict:
    """run_live's and predict's unknown_threshold and reject_unknown from --unknown-threshold."""
    value = args.unknown_threshold
    return {"unknown_threshold": None if value in (None, "off") else value, "reject_unknown": value != "off"}


def _add_check(sub) -> None:
    p = sub.add_parser(
        "check",
        help="report what a data root or a set of videos holds, and what cannot be read",
        description="Read every video under the given data roots, folders or files and report counts per class "
        "and split, frames, fps, size and duration of each video, unreadable files with the reason, split "
        "entries missing from disk, videos no split lists, and duplicates. Nothing is modified. "
        "Exit status: 0 when every video reads, 3 when some do not, 2 on bad arguments.",
    )
    p.add_argument(
        "paths", nargs="+", type=Path, help="a data root (root/<class>/<video>), folders or video files"
    )
    p.add_argument("--splits", type=Path, help="folder with classInd.txt, trainlistNN.txt and testlistNN.txt")
    p.add_argument(
        "--annotations",
        type=Path,
        action="append",
        help="CSV of path,label lines, paths relative to the root (repeat for several lists)",
    )
    p.add_argument("--json", type=Path, help="write one entry per video to this JSON file")
    p.add_argument(
        "--decode",
        choices=("sample", "all", "none"),
        default="sample",
        help="how much of each video to decode: 8 frames spread over it (default), every frame, or "
        "only the header",
    )
    p.add_argument("--workers", type=int, default=2, help="processes reading videos in parallel (default 2)")
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds one video may take before it is reported as stalled (default 60)",
    )
    p.set_defaults(handler=_run_check)


def _run_check(args) -> int:
    from behavior.tools.check import check_paths, format_report, write_json

    report = check_paths(
        args.paths,
        splits_dir=args.splits,
        annotations=args.annotations,
        decode=args.decode,
        workers=args.workers,
        timeout_s=args.timeout,
    )
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
        "v_<Class>_gGG_cCC.<ext> and OUT/splits/. The same seed gives the same videos. --unseen and "
        "--recordings add what measures 'none of these' (when OUT already holds the five, only they are written: "
        "give the same --clips-per-class, --difficulty and --seed as the set).",
    )
    p.add_argument("out", type=Path, help="output folder (created; existing videos are never overwritten)")
    p.add_argument("--clips-per-class", type=int, default=100, help="videos per behaviour (default 100)")
    p.add_argument(
        "--difficulty",
        choices=("easy", "medium", "hard"),
        default="medium",
        help="easy: plain scenes; medium: textured backgrounds, a distractor, slight shake; "
        "hard: clutter, several distractors, shake, noise and partial occlusion (default medium)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same data set")
    p.add_argument("--workers", type=int, default=2, help="processes rendering and encoding (default 2)")
    p.add_argument(
        "--unseen",
        action="store_true",
        help="also write OUT/unseen/<behaviour>/: jump, bend, clap and idle, behaviours outside the five, in the "
        "looks of the test groups; no split file lists them, so no model trains on them",
    )
    p.add_argument(
        "--recordings",
        type=int,
        default=0,
        metavar="N",
        help="also write N long recordings to OUT/recordings/: known behaviours separated by idle stretches, "
        "the empty scene and unseen behaviours, each with a per-frame label track (NAME.labels.csv)",
    )
    p.add_argument(
        "--recording-seconds",
        type=float,
        default=120.0,
        help="length of each recording, in seconds (default 120)",
    )
    p.set_defaults(handler=_run_synth)


def _run_synth(args) -> int:
    from behavior.synthetic import generate_dataset, generate_recordings, generate_unseen

    settings = {"clips_per_class": args.clips_per_class, "difficulty": args.difficulty, "seed": args.seed}
    extras = args.unseen or args.recordings
    if args.recordings < 0:
        raise UsageError(f"--recordings must be >= 0, got {args.recordings}")
    if extras and (args.out / "splits" / "classInd.txt").is_file():
        print(f"{args.out} holds the five behaviours already: writing only what was asked for beside them")
    else:
        print(generate_dataset(args.out, workers=args.workers, **settings).summary())
    if args.unseen:
        print(generate_unseen(args.out, workers=args.workers, **settings).summary())
    if args.recordings:
        print(generate_recordings(args.out, args.recordings, args.recording_seconds, **settings).summary())
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
    from behavior.tools.profile import format_model_table

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
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set optim.lr=0.003 --set model.head=avg (repeatable)",
    )
    p.add_argument("--out", type=Path, help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument(
        "--init-from",
        type=Path,
        help="start from an earlier run's checkpoint (e.g. RUN/best.pt): its weights and classes, in its order; a "
        "class folder the data has gained grows the classifier by a row (with a frozen backbone, only new or "
        "changed videos are embedded)",
    )
    p.set_defaults(handler=_run_train)


def _run_train(args) -> int:
    from behavior.config import load_config

    cfg = load_config(args.config, args.overrides)  # before torch is loaded: a config error answers at once
    from behavior.engine.train import train

    out = args.out or Path("runs") / args.config.stem
    result = train(cfg, out, resume=args.resume, init_from=args.init_from)
    if result.is_main:
        print(
            f"done in {result.seconds:.0f} s: best validation mean-class accuracy {result.best_mean_class_accuracy:.3f}; "
            f"checkpoints {result.best_checkpoint}, {result.last_checkpoint}"
        )
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a checkpoint: metrics, confusion matrix, per-video predictions",
        description="Score every video of a split with a trained checkpoint and write DIR/metrics.json (top-1, "
        "top-5 when K > 5, mean-class accuracy, macro-F1, per-class precision/recall/F1/support, clip- and "
        "video-level accuracy, failed videos; the temperature, expected calibration error before and after it, "
        "and the share of the videos the rejection threshold keeps), DIR/confusion_matrix.csv and .png (raw and "
        "row-normalised), DIR/reliability_diagram.png (before and after the temperature), and DIR/predictions.csv; with --gallery also DIR/gallery.html, the misclassified videos grouped by the most "
        "confused (true, predicted) pairs, each with a strip of its sampled frames. It refuses to report on a "
        "split that lost videos to decode errors unless --allow-failed is given. "
        "Exit status: 0 done, 3 refused because videos failed, 2 bad arguments.",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="best.pt or last.pt of a training run")
    p.add_argument("--data", help="data root to evaluate on (default: the checkpoint's data.root)")
    p.add_argument("--splits", help="split-file folder (default: the checkpoint's data.splits; '' for none)")
    p.add_argument(
        "--split", default="test", choices=("train", "val", "test"), help="which split (default test)"
    )
    p.add_argument("--views", type=int, help="clips per video, scores averaged (default: the config's)")
    p.add_argument("--out", type=Path, help="output folder (default: next to the checkpoint, eval-<split>)")
    p.add_argument(
        "--allow-failed",
        action="store_true",
        help="report even when some videos fail to decode; the loss is recorded in metrics.json",
    )
    p.add_argument("--batch-size", type=int, help="videos per batch (default: the config's eval_batch_size)")
    p.add_argument("--workers", type=int, help="decoding worker processes (default: the config's)")
    p.add_argument(
        "--gallery",
        action="store_true",
        help="also write DIR/gallery.html: the misclassified videos with thumbnails, by confused pair",
    )
    p.set_defaults(handler=_run_evaluate)


def _run_evaluate(args) -> int:
    from behavior.engine.evaluate import evaluate_checkpoint, format_metrics

    out = args.out or args.checkpoint.parent / f"eval-{args.split}"
    metrics = evaluate_checkpoint(
        args.checkpoint,
        out,
        data_root=args.data,
        splits_dir=args.splits,
        split=args.split,
        views=args.views,
        allow_failed=args.allow_failed,
        batch_size=args.batch_size,
        workers=args.workers,
    )
    print(format_metrics(metrics))
    print(
        f"wrote {out / 'metrics.json'}, {out / 'confusion_matrix.png'}, {out / 'reliability_diagram.png'}, "
        f"{out / 'predictions.csv'}"
    )
    if args.gallery:
        from behavior.pictures.gallery import misclassified_gallery

        print(f"wrote {misclassified_gallery(out, out / 'gallery.html')}")
    return 0


def _add_attention(sub) -> None:
    p = sub.add_parser(
        "attention",
        help="draw where the model looks: the sampled frames of a video with their attention heatmaps",
        description="Sample, decode and transform one video exactly as `behavior evaluate` does, run the model, and "
        "write what it attended to. FILE.png: a labelled grid, one column per sampled frame, the frames with their "
        "frame number and time above, the spatial-attention heatmaps over the region the model saw below, the "
        "temporal weights as bars when the head is model.head=attention, and the predicted class, score and true "
        "class in the title. FILE.gif or FILE.mp4: the heatmap frames as an animation. The true class is --label, "
        "or the video's folder when it is named after a class (root/<class>/<video>). "
        "Exit status: 0 done, 2 a video, checkpoint or argument that cannot be used.",
    )
    p.add_argument("video", type=Path, help="the video file")
    p.add_argument("--checkpoint", type=Path, required=True, help="best.pt of a training run")
    p.add_argument("--out", type=Path, required=True, help="FILE.png, FILE.gif or FILE.mp4")
    p.add_argument(
        "--label",
        help="the video's true class, shown beside the prediction (default: its folder's name "
        "when that is a class)",
    )
    p.set_defaults(handler=_run_attention)


def _run_attention(args) -> int:
    from behavior.engine.checkpoint import load_trained_model
    from behavior.pictures.attention import PICTURES, attention_frames, save_attention

    if args.out.suffix.lower() not in PICTURES:
        raise UsageError(f"--out {args.out}: valid extensions are {', '.join(PICTURES)}")
    model, cfg = load_trained_model(args.checkpoint)
    label = args.label
    if label is None:
        folder = args.video.resolve().parent.name.lower()
        label = next((name for name in model.class_names if name.lower() == folder), None)
    result = attention_frames((model, cfg), args.video, true_label=label)
    save_attention(result, args.out)
    print(f"{result.title()}; frames {', '.join(str(i) for i in result.indices)}; wrote {args.out}")
    return 0


def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="predict the behaviour of many videos, or segments of long ones",
        description="Predict every video given: video files, folders (searched recursively) or text files listing "
        "paths. One row per video: path, status (ok/error), label, score, the top-k labels and scores, frames, "
        "duration_s, error. Decoding runs in worker processes, the model on batches. A video that cannot be "
        "read gets status=error and the reason; the others are still predicted. Re-running with the same --out "
        "skips the videos already written, so an interrupted run loses nothing. With --window/--stride (seconds, "
        "on the real frame timestamps) or --window-frames/--stride-frames, long videos are scored window by "
        "window and rows gain per-window scores and merged segments. Scores are calibrated (the temperature "
        "training fitted); a video whose rejection score (unknown_score) falls below the threshold training "
        "chose gets label 'unknown' and still its top-k behaviours, and stretches of a long video where nothing "
        "known happens become 'none' segments; every row lists its possible labels in the labels column. "
        "Under torchrun the videos are shared across ranks and the parts merged into --out. "
        "Exit status: 0 when every video was predicted, 3 when some failed, 2 on bad arguments.",
    )
    p.add_argument("paths", nargs="+", help="video files, folders, or .txt/.lst files listing paths")
    p.add_argument("--checkpoint", type=Path, required=True, help="best.pt of a training run")
    p.add_argument(
        "--out", type=Path, help="FILE.csv or FILE.jsonl (default: CSV on standard output, no resume)"
    )
    p.add_argument("--batch-size", type=int, default=16, help="clips per forward pass (default 16)")
    p.add_argument("--workers", type=int, default=2, help="decoding worker processes (default 2)")
    p.add_argument("--top-k", type=int, default=5, help="labels and scores listed per video (default 5)")
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds one video may take to decode before it gets an error row as stalled (default 60; "
        "needs --workers > 0)",
    )
    windows = p.add_argument_group("long videos")
    windows.add_argument("--window", type=float, help="window length in seconds")
    windows.add_argument("--stride", type=float, help="seconds between window starts (default: window / 2)")
    windows.add_argument("--window-frames", type=int, help="window length in frames, instead of seconds")
    windows.add_argument(
        "--stride-frames", type=int, help="frames between window starts (default: window / 2)"
    )
    windows.add_argument(
        "--smooth", type=int, default=1, help="average scores over this many windows (default 1)"
    )
    windows.add_argument(
        "--min-segment",
        type=float,
        default=0.0,
        help="merge segments shorter than this many seconds into a neighbour (default 0)",
    )
    _add_unknown_threshold(p)
    _add_engine(p)
    p.set_defaults(handler=_run_predict)


def _run_predict(args) -> int:
    from behavior.tools.predict import predict
    from behavior.tools.windows import WindowOptions

    if args.window is not None and args.window_frames is not None:
        raise UsageError("give --window (seconds) or --window-frames, not both")
    options = None
    if args.window is not None:
        options = WindowOptions(
            args.window, args.stride or args.window / 2, "s", args.smooth, args.min_segment
        )
    elif args.window_frames is not None:
        options = WindowOptions(
            args.window_frames,
            args.stride_frames or max(1, args.window_frames // 2),
            "frames",
            args.smooth,
            args.min_segment,
        )
    elif args.stride is not None or args.stride_frames is not None:
        raise UsageError("--stride needs --window (and --stride-frames needs --window-frames)")
    summary = predict(
        args.checkpoint,
        args.paths,
        out=args.out,
        batch_size=args.batch_size,
        workers=args.workers,
        top_k=args.top_k,
        windows=options,
        timeout_s=args.timeout,
        engine=args.engine,
        **_threshold_arguments(args),
    )
    if summary.out is not None and int(os.environ.get("RANK", "0")) == 0:
        print(
            f"{summary.num_written} videos predicted in {summary.seconds:.1f} s, {summary.num_skipped} already in "
            f"{summary.out}; {summary.num_failed} of {summary.num_videos} rows are errors",
            file=sys.stderr,
        )
    return 3 if summary.num_failed else 0


def _add_live(sub) -> None:
    p = sub.add_parser(
        "live",
        help="predict frame by frame from a camera, stream or file, with attention overlays",
        description="Read frames as they arrive from a camera index (OpenCV), a stream URL or a file (PyAV). Each "
        "frame goes through the backbone once (a model with the two-way temporal shift runs its T picked frames "
        "as one clip at every frame); its features join a ring buffer spanning the typical training "
        "video length, and the temporal head runs on T of them. Every frame is drawn with the current label and "
        "score and the spatial-attention heatmap, optionally with face or body boxes from OpenCV's Haar "
        "cascades (--roi restricts the model to that region); 'unknown' (with the closest behaviour) when the "
        "clip's rejection score falls below the checkpoint's threshold. Output goes to a window (--show) and/or an "
        "encoded video (--out). A source that cannot be opened exits with status 2; a stream that ends or "
        "drops ends the run cleanly with the output finalised.",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="best.pt of a training run")
    p.add_argument("--source", required=True, help="camera index (0), stream URL, or video file")
    p.add_argument("--out", type=Path, help="write the annotated video here (.mp4, .avi, .mkv, .webm)")
    p.add_argument("--show", action="store_true", help="show the annotated frames in a window (q quits)")
    p.add_argument(
        "--roi",
        choices=("none", "face", "body"),
        default="none",
        help="restrict the model to the face or body found by OpenCV's Haar cascades (default none)",
    )
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    _add_unknown_threshold(p)
    _add_engine(p)
    p.set_defaults(handler=_run_live)


def _run_live(args) -> int:
    from behavior.tools.live import run_live

    if not args.out and not args.show:
        raise UsageError("nothing to show: give --out FILE and/or --show")
    summary = run_live(
        args.checkpoint,
        args.source,
        out=args.out,
        show=args.show,
        roi=args.roi,
        max_frames=args.max_frames,
        engine=args.engine,
        **_threshold_arguments(args),
    )
    print(
        f"live: {summary.frames} frames in {summary.seconds:.1f} s = {summary.fps:.1f} frames/s "
        f"({summary.fps / summary.source_fps:.1f}x the source's {summary.source_fps:.1f} fps); {summary.stopped}"
        + (f"; wrote {summary.out}" if summary.out else "")
    )
    return 130 if summary.stopped == "interrupted" else 0


def _add_export(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export the model to ONNX, with its preprocessing contract, and verify it",
        description="Export a checkpoint to ONNX: OUT (clip -> logits, T fixed, batch dynamic), OUT.backbone.onnx "
        "(frames -> features and attention, for streaming) and OUT.head.onnx (features over T -> logits). The "
        "preprocessing contract (mean, std, resize, crop, T, sampler, class names) is written into each "
        "model's metadata. --verify runs PyTorch and onnxruntime on real sampled clips and fails (exit 1) when "
        "any output differs by more than 1e-3. Needs the export extra (onnx, onnxscript, onnxruntime).",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="best.pt of a training run")
    p.add_argument(
        "--out", type=Path, required=True, help="model.onnx (the two streaming parts go beside it)"
    )
    p.add_argument("--verify", action="store_true", help="compare onnxruntime with PyTorch on real clips")
    p.add_argument(
        "--videos", nargs="+", help="videos to verify on (default: 8 of the checkpoint's test split)"
    )
    p.set_defaults(handler=_run_export)


def _run_export(args) -> int:
    from behavior.tools.export import export_onnx

    report = export_onnx(args.checkpoint, args.out, verify=args.verify, videos=args.videos)
    for path in report.files:
        difference = report.max_difference.get(str(path)) if report.max_difference else None
        print(
            f"wrote {path}"
            + (
                f" (max |difference| {difference:.1e} on {report.num_clips} real clips)"
                if difference is not None
                else ""
            )
        )
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
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field (repeatable)",
    )
    p.add_argument("--out", type=Path, help="run folder (default: runs/demo-<date>-<time>)")
    p.add_argument(
        "--clips-per-class",
        type=int,
        default=140,
        help="size of the synthetic set when it is made (default 140)",
    )
    p.add_argument(
        "--difficulty",
        choices=("easy", "medium", "hard"),
        default="medium",
        help="difficulty of the synthetic set when it is made (default medium)",
    )
    p.add_argument(
        "--compare-shift",
        action="store_true",
        help="also train and evaluate the same recipe with the other temporal shift (online for two-way, two-way "
        "for online) and print the two side by side: the online shift runs live at one backbone pass per frame "
        "(twice the training time)",
    )
    p.set_defaults(handler=_run_demo)


def _run_demo(args) -> int:
    from behavior.config import load_config

    load_config(args.config, args.overrides)  # before torch is loaded: a config error answers at once
    from behavior.tools.demo import run_demo

    return run_demo(
        args.config, args.overrides, args.out, args.clips_per_class, args.difficulty, args.compare_shift
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="behavior",
        description="Video action recognition: sample frames, run a 2D CNN with spatial attention on each, pool "
        "them over time, and report confusion matrices. Run `behavior SUBCOMMAND --help` for each job.",
    )
    from behavior import __version__

    parser.add_argument("--version", action="version", version=f"behavior {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for add in (
        _add_demo,
        _add_check,
        _add_synth,
        _add_train,
        _add_evaluate,
        _add_attention,
        _add_predict,
        _add_live,
        _add_export,
        _add_models,
    ):
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
    except (
        BehaviorError
    ) as exc:  # an error a user can fix: one clear line, no traceback; anything else is a bug
        label, status = OUTCOMES.get(type(exc), ("error: ", 2))
        print(f"behavior {args.command}: {label}{exc}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())

"""The benchmark harness: `make bench` runs every section, writes benchmarks/results.json and renders
docs/benchmarks.md.

    .venv/bin/python benchmarks/run.py                    # every section (what `make bench` runs)
    .venv/bin/python benchmarks/run.py decode compute     # only these; merged into the existing results.json
    .venv/bin/python benchmarks/run.py --quick            # tiny data, few repeats: to debug the harness

Quick runs write benchmarks/work/quick-results.json and benchmarks/work/quick-benchmarks.md and never touch the
real results or the doc. Generated data, runs and caches live under benchmarks/work (git-ignored).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import shlex
import sys
import time
import traceback
from pathlib import Path

from harness import REPO, WORK, Settings, busy_percent, demo_clips_per_class, describe_machine
from report import render_report
from sections import SECTIONS

QUICK_CLIPS_PER_CLASS = 8  # two groups per class: one to train on, one to test on


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "sections",
        nargs="*",
        metavar="SECTION",
        help=f"sections to run (default: all): {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="shrink every section (tiny data, few repeats, short budgets) to debug the harness",
    )
    parser.add_argument(
        "--clips-per-class",
        type=int,
        help="size of the benchmark's synthetic data set (default: what `behavior demo` generates; "
        f"{QUICK_CLIPS_PER_CLASS} with --quick)",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.sections if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}")
    if args.clips_per_class is not None and args.clips_per_class < 2:
        parser.error("--clips-per-class must be at least 2 (each class needs a training and a test group)")
    return args


def output_paths(quick: bool) -> tuple[Path, Path]:
    """(results JSON, rendered doc) of a real or a quick run."""
    if quick:
        return WORK / "quick-results.json", WORK / "quick-benchmarks.md"
    return REPO / "benchmarks" / "results.json", REPO / "docs" / "benchmarks.md"


def load_results(path: Path) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    return {"sections": {}}


def save_results(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(temporary, path)


def section_command(name: str, args: argparse.Namespace) -> str:
    """The command that measures this section again, as the report shows it."""
    words = [".venv/bin/python", "benchmarks/run.py", name]
    if args.quick:
        words.append("--quick")
    if args.clips_per_class is not None:
        words += ["--clips-per-class", str(args.clips_per_class)]
    return shlex.join(words)


def run_section(name: str, settings: Settings, command: str) -> dict:
    """Run one section; an exception becomes an `error` entry, so the other sections still run."""
    module = importlib.import_module(f"sections.{name}")
    machine = describe_machine()
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    started = time.perf_counter()
    print(f"== {name}: {module.TITLE}", flush=True)
    try:
        result = module.run(settings)
    except Exception:  # reported in the results and the doc, and by the exit status
        traceback.print_exc()
        result = {"title": module.TITLE, "error": traceback.format_exc(limit=8)}
    seconds = time.perf_counter() - started
    machine["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    machine["busy_percent_end"] = busy_percent()
    result.update(
        date=date,
        seconds=round(seconds, 1),
        machine=machine,
        command=command,
        quick=settings.quick,
        clips_per_class=settings.clips_per_class,
    )
    verdict = result.get("target", {}).get("met")
    print(
        f"== {name}: {'error' if 'error' in result else {True: 'met', False: 'missed', None: 'no target'}[verdict]}"
        f" ({seconds:.0f} s)",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    default_size = QUICK_CLIPS_PER_CLASS if args.quick else demo_clips_per_class()
    settings = Settings(
        quick=args.quick,
        clips_per_class=args.clips_per_class or default_size,
        work=WORK / "quick" if args.quick else WORK,
    )
    settings.work.mkdir(parents=True, exist_ok=True)
    results_path, doc_path = output_paths(args.quick)
    results = load_results(results_path)
    failed = []
    for name in args.sections or SECTIONS:
        result = run_section(name, settings, section_command(name, args))
        results["sections"][name] = result
        if "gpu" in result:  # where the issue looks for it: "gpu": {"measured": false, "reason": ...}
            results["gpu"] = result["gpu"]
        save_results(results_path, results)  # after every section: a later crash keeps what was measured
        render_report(results, doc_path)
        if "error" in result:
            failed.append(name)
    print(f"results: {results_path}\nreport:  {doc_path}")
    if failed:
        print(f"sections that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

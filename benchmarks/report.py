"""Render benchmarks/results.json as docs/benchmarks.md: a summary of the targets, the machines, then one
part per section with its target, verdict, command, machine, date, tables and notes."""

from __future__ import annotations

from pathlib import Path

from sections import SECTIONS

VERDICT = {True: "met", False: "missed", None: "no target"}
BUSY_PERCENT = (
    15.0  # CPU use by other processes, before or after a section, above which its timings are suspect
)


def format_number(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def format_cell(value) -> str:
    """A table cell: a spread of repeats is 'median [min-max]'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict) and "median" in value:
        if value.get("n", 2) == 1 or value["min"] == value["max"]:
            return format_number(value["median"])
        return (
            f"{format_number(value['median'])} [{format_number(value['min'])}–{format_number(value['max'])}]"
        )
    if isinstance(value, float):
        return format_number(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(columns: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def machine_line(machine: dict) -> str:
    gib = machine.get("ram_gib")
    features = ", ".join(machine.get("cpu_features") or []) or "none listed"
    return (
        f"{machine.get('cpu')} ({features}), {machine.get('usable_cores')} of {machine.get('cores')} cores usable, "
        f"{gib} GiB RAM{', GPU ' + machine['gpu'] if machine.get('gpu') else ', no GPU'}; Python "
        f"{machine.get('python')}, torch {machine.get('torch')}, torchvision {machine.get('torchvision')}, decord "
        f"{machine.get('decord')}, PyAV {machine.get('pyav')}, {machine.get('torch_threads')} torch threads"
    )


def others_busy(result: dict) -> float:
    """The larger of the two samples of other processes' CPU use around a section, in percent."""
    machine = result.get("machine", {})
    return max(machine.get("busy_percent") or 0.0, machine.get("busy_percent_end") or 0.0)


def busy_of(result: dict) -> bool:
    """True when other processes loaded the CPU around a section that timed something."""
    return others_busy(result) > BUSY_PERCENT and bool(result.get("tables"))


def verdict_of(result: dict) -> str:
    if "error" in result:
        return "error"
    return VERDICT[result["target"].get("met")]


def measured_of(result: dict) -> str:
    goal = result.get("target", {})
    if goal.get("measured") is None:
        return "-"
    threshold = (
        f" (threshold {format_number(goal['threshold'])})" if goal.get("threshold") is not None else ""
    )
    return format_number(goal["measured"]) + threshold


def section_lines(number: int, name: str, result: dict) -> list[str]:
    lines = [f"## {number}. {result.get('title', name)} (`{name}`)", ""]
    machine = result.get("machine", {})
    lines += [
        f"- Command: `{result.get('command')}`",
        f"- Measured {result.get('date')} in {result.get('seconds')} s, {result.get('clips_per_class')} clips per "
        f"class; load average {machine.get('load_avg_1min')} at the start, {machine.get('load_avg_1min_end')} "
        "at the end",
        f"- Machine: {machine_line(machine)}",
        f"- CPU use by other processes (1 s sample, the harness's own processes left out): {machine.get('busy_percent')}% "
        f"before, {machine.get('busy_percent_end')}% after",
        "",
    ]
    if busy_of(result):
        lines += [
            f"> **Warning:** other processes kept the CPU {others_busy(result):.0f}% busy around this section; its timings "
            "do not describe a quiet machine. Measure it again when the machine is idle.",
            "",
        ]
    if "error" in result:
        return [*lines, "**The section failed:**", "", "```", result["error"].rstrip(), "```", ""]
    goal = result["target"]
    verdict = verdict_of(result)
    lines.append(
        f"**Target:** {goal['text']}. **Result: {verdict}**"
        + (f" — measured {measured_of(result)}." if goal.get("measured") is not None else ".")
    )
    if goal.get("met") is False and goal.get("limit"):
        lines.append(f"What limits it: {goal['limit']}.")
    lines.append("")
    for block in result.get("tables", []):
        lines += [f"**{block['title']}**", "", *markdown_table(block["columns"], block["rows"]), ""]
    if result.get("notes"):
        lines += ["Notes:", ""] + [f"- {note}" for note in result["notes"]] + [""]
    return lines


def render_report(results: dict, path: Path) -> Path:
    """Write the Markdown report of every section present in `results`, in the harness's order."""
    present = [name for name in SECTIONS if name in results.get("sections", {})]
    sections = results["sections"]
    quick = any(sections[name].get("quick") for name in present)
    lines = [
        "# Benchmarks" + (" — QUICK RUN (tiny data, few repeats: for debugging only)" if quick else ""),
        "",
        "Measured by `make bench` (`.venv/bin/python benchmarks/run.py`); `.venv/bin/python benchmarks/run.py "
        "SECTION...` measures some sections again and merges them into `benchmarks/results.json`, from which this "
        "page is rendered. A timed figure reads *median [min–max]* over the repeats; a ratio is taken between "
        "figures measured side by side, taking turns, in the same run.",
        "",
        "## Summary",
        "",
    ]
    rows = [
        [
            f"[{sections[name].get('title', name)}](#{anchor(SECTIONS.index(name) + 1, name, sections[name])})",
            sections[name].get("target", {}).get("text", "-"),
            measured_of(sections[name]),
            f"**{verdict_of(sections[name])}**" + (" (busy machine)" if busy_of(sections[name]) else ""),
            sections[name].get("date", "-"),
        ]
        for name in present
    ]
    lines += markdown_table(["section", "target", "measured", "result", "date"], rows) + [""]
    for name in present:
        lines += section_lines(SECTIONS.index(name) + 1, name, sections[name])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path


def anchor(number: int, name: str, result: dict) -> str:
    """GitHub's anchor for a section heading."""
    heading = f"{number}. {result.get('title', name)} ({name})".lower()
    kept = "".join(c for c in heading if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")

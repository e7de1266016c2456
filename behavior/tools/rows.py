"""Prediction files: the inputs a user names, and the rows `behavior predict` writes.

`collect_inputs` flattens files, folders and list files into video paths. `RowWriter` appends rows to a CSV or
JSONL file one flushed line at a time and knows which videos are already there, so a killed run resumes where
it stopped; `merge_parts` joins the part files of a torchrun job.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from behavior.data.splits import find_videos
from behavior.engine.confidence import NONE, UNKNOWN
from behavior.errors import UsageError

LIST_SUFFIXES = (".txt", ".lst", ".list")


def collect_inputs(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Video files, folders (searched recursively for videos) and text files listing paths (relative
    entries are read from the list's folder), flattened in order, each path once. A path that does not
    exist is kept, so that it gets an error row rather than vanishing."""
    found: list[str] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            found += [str(p) for p in find_videos(path)]
        elif path.suffix.lower() in LIST_SUFFIXES and path.is_file():
            for line in path.read_text(errors="replace").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    listed = Path(line) if Path(line).is_absolute() else path.parent / line
                    found += collect_inputs([listed]) if listed.is_dir() else [str(listed)]
        else:
            found.append(str(path))
    return list(dict.fromkeys(os.path.normpath(p) for p in found))


class RowWriter:
    """Appends rows to a CSV or JSONL file, one flushed line at a time; knows which paths are already there."""

    def __init__(self, path: str | os.PathLike, fields: list[str]):
        self.path = Path(path)
        self.fields = fields
        self.jsonl = self.path.suffix.lower() == ".jsonl"
        if not self.jsonl and self.path.suffix.lower() != ".csv":
            raise UsageError(f"--out {self.path}: the output must end in .csv or .jsonl")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_torn_tail()
        self.rows = read_rows(self.path)
        if not self.jsonl and self.rows and list(self.rows[0]) != fields:
            raise UsageError(
                f"--out {self.path} holds other columns ({', '.join(list(self.rows[0])[:6])}, ...); "
                "resume with the same options, or write to a new file"
            )
        self._handle = open(self.path, "a", newline="")
        if not self.jsonl and self.path.stat().st_size == 0:
            self._write_line(self._csv_line(dict(zip(fields, fields))))

    def _repair_torn_tail(self) -> None:
        """A kill in the middle of a line leaves a partial last line: cut it, the video is predicted again."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            with open(self.path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

    def _csv_line(self, row: dict) -> str:
        buffer = io.StringIO()
        csv.writer(buffer).writerow([row.get(f, "") for f in self.fields])
        return buffer.getvalue()

    def _write_line(self, line: str) -> None:
        self._handle.write(line)
        self._handle.flush()

    @property
    def done(self) -> set[str]:
        return {row["path"] for row in self.rows}

    def write(self, row: dict) -> None:
        if self.jsonl:
            self._write_line(json.dumps({f: row.get(f) for f in self.fields}) + "\n")
        else:
            flat = {
                k: json.dumps(v) if isinstance(v, (list, dict)) else ("" if v is None else v)
                for k, v in row.items()
            }
            self._write_line(self._csv_line(flat))
        self.rows.append(row)

    def close(self) -> None:
        self._handle.close()


def read_rows(path: str | os.PathLike) -> list[dict]:
    """The complete rows of a CSV or JSONL prediction file (a torn last line is ignored)."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return []
    text = path.read_text()
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    if path.suffix.lower() == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return list(csv.DictReader(io.StringIO(text)))


def output_fields(top_k: int, windows: bool) -> list[str]:
    """The columns of a prediction file. `labels` lists, in every row, the labels its label columns can hold:
    the classes, `unknown` when the checkpoint rejects (window rows: `none` for the segments too)."""
    fields = ["path", "status", "label", "score"]
    for i in range(1, top_k + 1):
        fields += [f"top{i}_label", f"top{i}_score"]
    fields += ["frames", "duration_s", "error", "unknown_score", "unknown_threshold", "labels"]
    return fields + (["windows", "segments"] if windows else [])


def label_set(class_names: list[str], rejects: bool, windows: bool) -> list[str]:
    """The labels a row's label columns can hold (its `labels` column)."""
    return [*class_names, *([UNKNOWN] if rejects else []), *([NONE] if rejects and windows else [])]


def top_labels(
    scores: np.ndarray,
    class_names: list[str],
    top_k: int,
    known_score: float | None = None,
    unknown: bool = False,
    threshold: float | None = None,
) -> dict:
    """`label`, `score` and the top-k labels and scores of class probabilities float (K,); the label is `unknown`
    when the rejection rule says so, while `score` and the top-k still give the classes it was closest to."""
    order = np.argsort(-scores)[:top_k]
    row = {
        "label": UNKNOWN if unknown else class_names[order[0]],
        "score": round(float(scores[order[0]]), 4),
    }
    for i, k in enumerate(order, start=1):
        row[f"top{i}_label"], row[f"top{i}_score"] = class_names[k], round(float(scores[k]), 4)
    if known_score is not None:  # unrounded, so that the file says exactly why a clip is unknown
        row["unknown_score"] = float(known_score)
        row["unknown_threshold"] = None if threshold is None else float(threshold)
    return row


def error_row(path: str, reason: str) -> dict:
    return {"path": path, "status": "error", "error": reason}


def merge_parts(target: Path, fields: list[str]) -> None:
    """Append every rank's part file to the output (each video once), then remove the parts."""
    writer = RowWriter(target, fields)
    seen = writer.done
    parts = sorted(target.parent.glob(f"{target.name}.part*{target.suffix}"))
    for part in parts:
        for row in read_rows(part):
            if row["path"] not in seen:
                writer.write({k: _parse_json_field(v) for k, v in row.items()})
                seen.add(row["path"])
    writer.close()
    for part in parts:
        part.unlink()


def _parse_json_field(value):
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value

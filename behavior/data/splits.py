"""Which videos belong to a split, with which labels: UCF101 split files, CSV annotation lists, or
class folders. Pure parsing and file lookup, no decoding and no torch, so `behavior check` stays light.

Every way is resolved against a data root laid out as `root/<class_name>/<video>`:
- UCF101 split files: `classInd.txt` (1-based ids), `trainlistNN.txt` (path and 1-based label),
  `testlistNN.txt` (path only; the label is the folder's class);
- an annotation list, a CSV of `path,label` lines (label: a class name, or a 0-based class index);
- the folder alone: every video under a class folder, held out by group for testing.

Entries are matched to files case-insensitively (the real UCF101 has `HandstandPushups/` holding
`v_HandStandPushups_*`), Windows separators are accepted, and an entry that points outside the root (an
absolute path or `..`) is refused with an error naming the file and line. Every problem with a list is a
`SplitFileError` (a ValueError) naming the file and line.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from behavior.data.video import VIDEO_EXTENSIONS
from behavior.errors import InputNotFound, SplitFileError

_GROUP_PATTERN = re.compile(r"_g(\d+)_c(\d+)", re.IGNORECASE)  # UCF101's v_<Class>_gGG_cCC


@dataclass(frozen=True)
class VideoSample:
    path: str  # the file on disk
    label: int  # index into the class names; -1 when unknown
    group: str = ""  # videos of one group (UCF101's gGG: one actor and scene) never straddle splits


def group_of(path: str | os.PathLike) -> str:
    """The UCF101 group of a video (`g03` for v_Walk_g03_c01.avi), else the file itself.

    A group number is one set of recording conditions across all classes, as UCF101's splits use it (groups
    1-7 are split 1's test set in every class), so it is not prefixed with the class."""
    match = _GROUP_PATTERN.search(Path(path).stem)
    return f"g{int(match.group(1)):02d}" if match else str(path)


def find_videos(folder: str | os.PathLike) -> list[Path]:
    """Every video file under `folder`, sorted. Hidden entries are skipped; symlinks are followed once
    (a symlink loop is not entered twice). A broken symlink with a video extension is listed too, so that it is
    reported as unreadable rather than silently missing."""
    folder = Path(folder)
    found, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if (
                not name.startswith(".")
                and path.suffix.lower() in VIDEO_EXTENSIONS
                and (path.is_file() or path.is_symlink())
            ):
                found.append(path)
    return found


class RootIndex:
    """All video files under a data root, looked up by relative path without regard to case."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputNotFound(f"data root {self.root} is not a folder")
        self.files = find_videos(self.root)
        self._by_key: dict[str, Path] = {}
        for path in self.files:
            self._by_key.setdefault(path.relative_to(self.root).as_posix().lower(), path)

    def resolve(self, entry: str, source: str | os.PathLike, line: int) -> Path | None:
        """The file an entry names, or None when it is not on disk. Refuses entries outside the root."""
        key = safe_relative_path(entry, source, line)
        return self._by_key.get(key.lower())


def safe_relative_path(entry: str, source: str | os.PathLike, line: int) -> str:
    """Normalise a split entry to a relative POSIX path; refuse absolute paths and `..`."""
    text = entry.strip().replace("\\", "/")
    if not text:
        raise SplitFileError(source, line, "empty path")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text) or "\x00" in text:
        raise SplitFileError(
            source, line, f"{entry.strip()!r} is an absolute path; entries must be relative to the data root"
        )
    parts = [p for p in PurePosixPath(text).parts if p not in ("", ".")]
    if ".." in parts:
        raise SplitFileError(source, line, f"{entry.strip()!r} points outside the data root ('..')")
    if not parts:
        raise SplitFileError(source, line, f"{entry.strip()!r} names no file")
    return "/".join(parts)


def _is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts characters such as '²' that int() cannot read."""
    return text.isascii() and text.isdigit()


def _read_lines(path: str | os.PathLike) -> list[tuple[int, str]]:
    """(line number, text) of the non-blank, non-comment lines of a text file."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFound(f"{path}: no such file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SplitFileError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            lines.append((number, line))
    return lines


def read_class_index(path: str | os.PathLike) -> list[str]:
    """Class names from a UCF101 `classInd.txt` (`1 ApplyEyeMakeup` ...), in id order."""
    names: dict[int, str] = {}
    for number, line in _read_lines(path):
        parts = line.split()
        if len(parts) != 2 or not _is_number(parts[0]):
            raise SplitFileError(path, number, f"expected '<id> <class_name>', got {line!r}")
        class_id, name = int(parts[0]), parts[1]
        if class_id in names:
            raise SplitFileError(path, number, f"class id {class_id} appears twice")
        if name.lower() in (n.lower() for n in names.values()):
            raise SplitFileError(path, number, f"class name {name!r} appears twice")
        names[class_id] = name
    if not names:
        raise SplitFileError(path, None, "no classes listed")
    if sorted(names) != list(range(1, len(names) + 1)):
        raise SplitFileError(
            path, None, f"class ids must be 1..{len(names)} (1-based, each once), got {sorted(names)[:10]}"
        )
    return [names[i] for i in range(1, len(names) + 1)]


def _class_of_folder(relative: str, class_names: Sequence[str]) -> int | None:
    folder = relative.split("/")[0].lower() if "/" in relative else ""
    for index, name in enumerate(class_names):
        if name.lower() == folder:
            return index
    return None


@dataclass
class SplitList:
    """The videos a split file names: those found on disk, and the entries that were not."""

    samples: list[VideoSample]
    missing: list[tuple[str, int, str]]  # (split file, line, entry) for entries with no file on disk


def read_split_list(path: str | os.PathLike, index: RootIndex, class_names: Sequence[str]) -> SplitList:
    """Read a UCF101 `trainlistNN.txt` (path and 1-based label) or `testlistNN.txt` (path only)."""
    samples, missing = [], []
    for number, line in _read_lines(path):
        entry, _, label_text = line.rpartition(" ") if " " in line else (line, "", "")
        entry, label_text = (entry, label_text) if _is_number(label_text.strip()) else (line, "")
        relative = safe_relative_path(entry, path, number)
        folder_label = _class_of_folder(relative, class_names)
        if label_text:
            label = int(label_text) - 1
            if not 0 <= label < len(class_names):
                raise SplitFileError(
                    path,
                    number,
                    f"label {label_text} is not a class id of classInd.txt (1..{len(class_names)})",
                )
            if folder_label is not None and folder_label != label:
                raise SplitFileError(
                    path,
                    number,
                    f"label {label_text} ({class_names[label]}) disagrees with "
                    f"the folder {relative.split('/')[0]!r}",
                )
        elif folder_label is None:
            raise SplitFileError(
                path,
                number,
                f"no label, and the folder of {relative!r} is not a class of "
                f"classInd.txt ({', '.join(class_names[:8])}{', ...' if len(class_names) > 8 else ''})",
            )
        else:
            label = folder_label
        found = index.resolve(relative, path, number)
        if found is None:
            missing.append((str(path), number, relative))
        else:
            samples.append(VideoSample(str(found), label, group_of(found)))
    return SplitList(samples, missing)


def read_annotations(
    path: str | os.PathLike, index: RootIndex, class_names: Sequence[str] | None
) -> tuple[list[str], SplitList]:
    """Read a CSV annotation list of `path,label` lines (an optional header `path,label` is skipped).

    A label is a class name, or a 0-based index when `class_names` is given. Returns the class names
    (the given ones, or the sorted names found) and the samples.
    """
    rows = []
    lines = _read_lines(path)
    numbers = [number for number, _ in lines]
    try:
        parsed = list(csv.reader(io.StringIO("\n".join(line for _, line in lines)), strict=True))
    except csv.Error as exc:
        raise SplitFileError(path, None, f"not a CSV of path,label lines ({exc})") from None
    if len(parsed) != len(lines):
        raise SplitFileError(path, None, "a quoted field spans lines; put one path,label per line")
    for number, fields in zip(numbers, parsed):
        if len(fields) != 2:
            raise SplitFileError(path, number, f"expected 2 fields 'path,label', got {len(fields)}")
        entry, label = fields[0].strip(), fields[1].strip()
        if number == numbers[0] and entry.lower() == "path" and label.lower() == "label":
            continue
        if not label:
            raise SplitFileError(path, number, "empty label")
        rows.append((number, entry, label))
    if class_names:
        names = list(class_names)
    else:
        names = sorted({label for _, _, label in rows if not _is_number(label)}, key=str.lower)
    lookup = {name.lower(): i for i, name in enumerate(names)}
    samples, missing = [], []
    for number, entry, label in rows:
        relative = safe_relative_path(entry, path, number)
        if label.lower() in lookup:
            target = lookup[label.lower()]
        elif _is_number(label) and class_names and int(label) < len(names):
            target = int(label)
        else:
            raise SplitFileError(
                path,
                number,
                f"label {label!r} is not a class; valid: {', '.join(names[:10])}"
                f"{', ...' if len(names) > 10 else ''}"
                + ("" if class_names else " (numeric labels need data.classes)"),
            )
        found = index.resolve(relative, path, number)
        if found is None:
            missing.append((str(path), number, relative))
        else:
            samples.append(VideoSample(str(found), target, group_of(found)))
    return names, SplitList(samples, missing)


def scan_class_folders(
    index: RootIndex, class_names: Sequence[str] | None = None
) -> tuple[list[str], list[VideoSample]]:
    """Videos of `root/<class>/...`, labelled by their class folder. Videos outside class folders are left
    out. With `class_names`, folders are matched to them case-insensitively."""
    by_folder: dict[str, list[Path]] = defaultdict(list)
    for path in index.files:
        parts = path.relative_to(index.root).parts
        if len(parts) >= 2:
            by_folder[parts[0]].append(path)
    names = list(class_names) if class_names else sorted(by_folder, key=str.lower)
    lookup = {name.lower(): i for i, name in enumerate(names)}
    samples = []
    for folder, paths in sorted(by_folder.items()):
        label = lookup.get(folder.lower())
        if label is not None:
            samples.extend(VideoSample(str(p), label, group_of(p)) for p in paths)
    return names, samples


def split_by_group(
    samples: Sequence[VideoSample], fraction: float, seed: int
) -> tuple[list[VideoSample], list[VideoSample]]:
    """Hold out about `fraction` of each class's groups (at least one where a class has two or more).

    Returns (kept, held_out). Groups are ranked once, by a seeded permutation of all group ids, and each class
    holds out its lowest-ranked groups: where group ids are shared across classes (UCF101's gGG), every class
    holds out the same groups, so no group lands on both sides. Deterministic for a seed.
    """
    if fraction <= 0:
        return list(samples), []
    all_groups = sorted({s.group for s in samples})
    rank = {
        group: position for position, group in enumerate(np.random.default_rng(seed).permutation(all_groups))
    }
    groups_by_class: dict[int, set[str]] = defaultdict(set)
    for s in samples:
        groups_by_class[s.label].add(s.group)
    held: set[str] = set()
    for label in sorted(groups_by_class):
        groups = sorted(groups_by_class[label], key=rank.__getitem__)
        if len(groups) >= 2:
            held.update(groups[: min(len(groups) - 1, max(1, round(fraction * len(groups))))])
    kept = [s for s in samples if s.group not in held]
    return kept, [s for s in samples if s.group in held]

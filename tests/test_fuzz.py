"""Fuzzing the parsers a user feeds by hand: class index, split lists, annotation CSVs, YAML configs and `--set`.

Whatever the input, the result is a parsed value or the documented error (`SplitFileError`, `ConfigError`,
`FileNotFoundError`) whose message names the file or the key to fix, never any other exception.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from behavior.config import Config, load_config
from behavior.data.splits import RootIndex, read_annotations, read_class_index, read_split_list
from behavior.errors import ConfigError, SplitFileError

EXAMPLES = 200
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLASSES = ["Walk", "HandstandPushups"]

# Text that looks like the real files often enough to get past the first checks.
_names = st.sampled_from(
    ["Walk", "walk", "HandstandPushups", "Jump", "", "..", ".", "a b", "é", "C:", "\\", "/"]
)
_entries = st.lists(_names, min_size=1, max_size=4).map("/".join) | st.sampled_from(
    [
        "Walk/v_Walk_g01_c01.avi",
        "walk\\V_WALK_G01_C01.AVI",
        "/etc/passwd",
        "../x.avi",
        "Walk/../../x.avi",
        "C:\\x.avi",
        "\\\\host\\share\\x.avi",
        "Walk/v_Walk_g01_c01.avi\x00",
        "Walk/ v.avi",
    ]
)
_labels = st.sampled_from(
    ["1", "2", "0", "3", "-1", "01", "99999999999999999999", "walk", "Walk", "", " ", "١"]
)
_separators = st.sampled_from([" ", ",", "\t", "  ", ", ", ";", ""])
_line = st.tuples(_entries, _separators, _labels).map("".join) | st.text(max_size=40)
_listing = st.lists(_line, max_size=8).map("\n".join) | st.text(max_size=300)
_raw = st.binary(max_size=300)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> RootIndex:
    """A data root with two class folders (the file content does not matter to the parsers)."""
    folder = tmp_path_factory.mktemp("root")
    for relative in ("Walk/v_Walk_g01_c01.avi", "HandstandPushups/v_HandStandPushups_g01_c01.avi", "é/x.mp4"):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(b"\x00")
    return RootIndex(folder)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _write(folder: Path, content: str | bytes, name: str) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    return path


def _names_the_file(error: Exception, path: Path) -> bool:
    return str(path) in str(error)


@FUZZ
@given(content=_listing | _raw)
@example(content="1 Walk\n1 Walk\n")
@example(content="0 Walk\n")
@example(content="１ Walk\n")  # a full-width digit: isdigit() is True, int() reads 1
@example(content="² Walk\n")  # superscript two: isdigit() was True, and int() raised a bare ValueError
def test_class_index_never_crashes(scratch, content):
    path = _write(scratch, content, "classInd.txt")
    try:
        names = read_class_index(path)
    except SplitFileError as error:
        assert _names_the_file(error, path), error
        return
    assert names and all(isinstance(n, str) and n for n in names)
    assert len({n.lower() for n in names}) == len(names)


@FUZZ
@given(content=_listing | _raw, listing=st.sampled_from(["trainlist01.txt", "testlist01.txt"]))
@example(content="Walk/v_Walk_g01_c01.avi ²\n", listing="trainlist01.txt")
@example(content="Walk/v_Walk_g01_c01.avi 99999999999999999999\n", listing="trainlist01.txt")
def test_split_lists_never_crash(scratch, root, content, listing):
    path = _write(scratch, content, listing)
    try:
        result = read_split_list(path, root, CLASSES)
    except SplitFileError as error:
        assert _names_the_file(error, path), error
        return
    for sample in result.samples:
        assert 0 <= sample.label < len(CLASSES)
        assert Path(sample.path).resolve().is_relative_to(root.root.resolve())


@FUZZ
@given(content=_listing | _raw, given_classes=st.sampled_from([None, CLASSES, ["é", "walk"]]))
@example(content='"Walk/v_Walk_g01_c01.avi\n",Walk\n', given_classes=None)
@example(content="path,label\n", given_classes=None)
@example(content="Walk/v_Walk_g01_c01.avi,²\n", given_classes=CLASSES)
def test_annotation_lists_never_crash(scratch, root, content, given_classes):
    path = _write(scratch, content, "train.csv")
    try:
        names, result = read_annotations(path, root, given_classes)
    except SplitFileError as error:
        assert _names_the_file(error, path), error
        return
    for sample in result.samples:
        assert 0 <= sample.label < len(names)
        assert Path(sample.path).resolve().is_relative_to(root.root.resolve())


def test_missing_lists_are_file_not_found(tmp_path, root):
    for read in (
        read_class_index,
        lambda p: read_split_list(p, root, CLASSES),
        lambda p: read_annotations(p, root, None),
    ):
        with pytest.raises(FileNotFoundError, match="absent.txt"):
            read(tmp_path / "absent.txt")


# --- configs ---------------------------------------------------------------------------------------------------

_keys = st.sampled_from(
    [
        "data",
        "sampler",
        "transform",
        "model",
        "optim",
        "train",
        "data.root",
        "data.num_workers",
        "sampler.num_frames",
        "transform.mean",
        "model.head",
        "model.width",
        "optim.lr",
        "train.epochs",
        "train.batch_size",
        "model.attention_stages",
        "data.classes",
        "nonsense",
        "data.nonsense",
        "optim.lr.x",
        "",
        ".",
        "..",
        "a..b",
    ]
)
_values = st.sampled_from(
    [
        "3",
        "-1",
        "0",
        "0.5",
        "1e400",
        ".nan",
        "-.inf",
        "true",
        "null",
        "~",
        "[1, 2]",
        "[]",
        "{}",
        "{a: 1}",
        "[[[[]]]]",
        "'x'",
        '"',
        "[",
        "{",
        "!!binary aGk=",
        "!!python/object:os.system x",
        "&a [*a]",
        "2001-01-01",
        "0x10",
        "0o7",
        "1_000",
        "é",
        "",
    ]
)
_override = st.tuples(_keys, st.sampled_from(["=", "==", " = ", ""]), _values).map("".join) | st.text(
    max_size=40
)

_yaml_scalars = st.sampled_from(
    [
        "1",
        "0.5",
        "-3",
        "true",
        "null",
        "abc",
        "[1, 2]",
        "{}",
        "[a, b]",
        "1e400",
        "'s'",
        "!!float 1",
        "!!str 1",
        "*x",
        "&x 1",
    ]
)
_yaml_mapping = st.lists(st.tuples(_keys, _yaml_scalars), max_size=5).map(
    lambda items: "\n".join(f"{k}: {v}" for k, v in items)
)
_yaml_nested = st.lists(
    st.tuples(
        st.sampled_from(["data", "model", "optim", "train", "sampler", "bogus"]),
        st.lists(st.tuples(_keys, _yaml_scalars), max_size=3),
    ),
    max_size=3,
).map(
    lambda sections: "\n".join(
        f"{s}:\n" + "\n".join(f"  {k}: {v}" for k, v in fields) for s, fields in sections
    )
)
_yaml_text = _yaml_mapping | _yaml_nested | st.text(max_size=200)


@FUZZ
@given(text=_yaml_text | _raw)
@example(text=b"\x80")  # found by hypothesis: a UnicodeDecodeError escaped load_config
@example(text="[" * 2000)
@example(text="a: &a [*a, *a]\nb: *a\n")
@example(text="!!python/object/apply:os.system ['echo hi']\n")
@example(text="? [a, b]\n: 1\n")
def test_config_files_never_crash(scratch, text):
    path = _write(scratch, text, "config.yaml")
    try:
        cfg = load_config(path)
    except ConfigError as error:
        assert _names_the_file(error, path), error
        return
    assert isinstance(cfg, Config)


@FUZZ
@given(override=_override)
@example(override="train.epochs=" + "[" * 2000)
@example(override="optim.lr=1e400")
@example(override="data=3")
@example(override="model.width=.nan")
def test_set_overrides_never_crash(override):
    try:
        cfg = load_config(None, [override])
    except ConfigError as error:
        key = override.split("=", 1)[0].strip()
        named = [part for part in key.split(".") if part]
        message = str(error)
        assert any(text in message for text in (override, repr(override), *named, *map(repr, named))), (
            override,
            message,
        )
        return
    assert isinstance(cfg, Config)


def test_a_missing_config_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.yaml"):
        load_config(tmp_path / "absent.yaml")

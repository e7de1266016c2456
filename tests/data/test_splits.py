from __future__ import annotations

import os

import pytest

from behavior.data.splits import (
    RootIndex,
    find_videos,
    group_of,
    read_annotations,
    read_class_index,
    read_split_list,
    safe_relative_path,
    scan_class_folders,
    split_by_group,
)
from behavior.errors import SplitFileError


def test_ucf_split_files_with_case_mismatch(ucf_root):
    root, splits = ucf_root
    classes = read_class_index(splits / "classInd.txt")
    assert classes == ["Walk", "HandstandPushups"]
    index = RootIndex(root)
    train = read_split_list(splits / "trainlist01.txt", index, classes)
    test = read_split_list(splits / "testlist01.txt", index, classes)
    assert len(train.samples) == 4 and len(test.samples) == 4 and not train.missing and not test.missing
    assert sorted(s.label for s in train.samples) == [0, 0, 1, 1]
    assert sorted(s.label for s in test.samples) == [0, 0, 1, 1]  # testlist labels come from the folder
    # matched case-insensitively to the real file on disk
    assert any(s.path.endswith("HandstandPushups/v_HandStandPushups_g02_c01.avi") for s in train.samples)
    assert {group_of(s.path) for s in train.samples}.isdisjoint({group_of(s.path) for s in test.samples})


def test_windows_separators_odd_case_and_trailing_slash(ucf_root, tmp_path):
    root, splits = ucf_root
    listing = tmp_path / "trainlist09.txt"
    listing.write_text(
        "walk\\V_WALK_G01_C01.AVI 1\r\n\r\n# a comment\r\nHANDSTANDPUSHUPS\\v_HandStandPushups_g01_c02.avi 2\r\n"
    )
    index = RootIndex(str(root) + "/")
    result = read_split_list(listing, index, ["Walk", "HandstandPushups"])
    assert [s.label for s in result.samples] == [0, 1] and not result.missing


@pytest.mark.parametrize(
    "entry", ["/etc/passwd", "../outside/v_x.avi", "Walk/../../x.avi", "C:\\videos\\x.avi"]
)
def test_entries_outside_the_root_are_refused_with_file_and_line(ucf_root, tmp_path, entry):
    root, _ = ucf_root
    listing = tmp_path / "trainlist01.txt"
    listing.write_text(f"Walk/v_Walk_g01_c01.avi 1\n{entry} 1\n")
    with pytest.raises(SplitFileError, match=r"trainlist01.txt:2: .*(absolute|outside)"):
        read_split_list(listing, RootIndex(root), ["Walk", "HandstandPushups"])


def test_missing_files_are_reported_not_fatal(ucf_root, tmp_path):
    root, _ = ucf_root
    listing = tmp_path / "testlist01.txt"
    listing.write_text("Walk/v_Walk_g01_c01.avi\nWalk/v_Walk_g09_c01.avi\n")
    result = read_split_list(listing, RootIndex(root), ["Walk", "HandstandPushups"])
    assert len(result.samples) == 1
    assert result.missing == [(str(listing), 2, "Walk/v_Walk_g09_c01.avi")]


@pytest.mark.parametrize(
    "content, message",
    [
        ("1 Walk\n1 Run\n", r"classInd.txt:2: class id 1 appears twice"),
        ("1 Walk\n3 Run\n", r"class ids must be 1..2"),
        ("Walk 1\n", r"classInd.txt:1: expected '<id> <class_name>'"),
        ("", r"no classes listed"),
        ("1 Walk\n2 walk\n", r"classInd.txt:2: class name 'walk' appears twice"),
    ],
)
def test_bad_class_index(tmp_path, content, message):
    path = tmp_path / "classInd.txt"
    path.write_text(content)
    with pytest.raises(SplitFileError, match=message):
        read_class_index(path)


def test_bad_split_lines_name_file_and_line(ucf_root, tmp_path):
    root, _ = ucf_root
    index, classes = RootIndex(root), ["Walk", "HandstandPushups"]
    listing = tmp_path / "trainlist01.txt"
    listing.write_text("Walk/v_Walk_g01_c01.avi 7\n")
    with pytest.raises(SplitFileError, match=r"trainlist01.txt:1: label 7 is not a class id .*1..2"):
        read_split_list(listing, index, classes)
    listing.write_text("Walk/v_Walk_g01_c01.avi 2\n")
    with pytest.raises(
        SplitFileError, match=r":1: label 2 \(HandstandPushups\) disagrees with the folder 'Walk'"
    ):
        read_split_list(listing, index, classes)
    listing.write_text("Jump/v_Jump_g01_c01.avi\n")
    with pytest.raises(SplitFileError, match=r":1: no label, and the folder .* is not a class"):
        read_split_list(listing, index, classes)
    listing.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(SplitFileError, match="not UTF-8"):
        read_split_list(listing, index, classes)


def test_annotation_csv(ucf_root, tmp_path):
    root, _ = ucf_root
    index = RootIndex(root)
    csv_file = tmp_path / "train.csv"
    csv_file.write_text(
        'path,label\nWalk/v_Walk_g01_c01.avi,walk\n"HandstandPushups/v_HandStandPushups_g01_c01.avi",HandstandPushups\n'
    )
    names, result = read_annotations(csv_file, index, None)
    assert names == ["HandstandPushups", "walk"] and [s.label for s in result.samples] == [1, 0]
    csv_file.write_text("Walk/v_Walk_g01_c01.avi,1\n")
    _, result = read_annotations(csv_file, index, ["Walk", "HandstandPushups"])
    assert result.samples[0].label == 1  # numeric labels are 0-based indices into the given classes
    csv_file.write_text("Walk/v_Walk_g01_c01.avi,jump\n")
    with pytest.raises(SplitFileError, match=r"train.csv:1: label 'jump' is not a class; valid: Walk"):
        read_annotations(csv_file, index, ["Walk", "HandstandPushups"])
    csv_file.write_text("Walk/v_Walk_g01_c01.avi\n")
    with pytest.raises(SplitFileError, match=r"train.csv:1: expected 2 fields"):
        read_annotations(csv_file, index, None)
    csv_file.write_text("../../etc/passwd,walk\n")
    with pytest.raises(SplitFileError, match="outside the data root"):
        read_annotations(csv_file, index, None)


def test_class_folders_and_group_split(ucf_root):
    root, _ = ucf_root
    names, samples = scan_class_folders(RootIndex(root))
    assert names == ["HandstandPushups", "Walk"] and len(samples) == 8
    kept, held = split_by_group(samples, 0.5, seed=0)
    assert len(kept) == 4 and len(held) == 4
    assert {group_of(s.path) for s in kept}.isdisjoint({group_of(s.path) for s in held})
    assert {s.label for s in held} == {0, 1}  # every class is held out
    assert split_by_group(samples, 0.5, seed=0) == (kept, held)  # deterministic


def test_find_videos_survives_a_symlink_loop(ucf_root):
    root, _ = ucf_root
    os.symlink(root, root / "Walk" / "loop")
    found = find_videos(root)
    assert len(found) == 8  # each file once, and no endless walk


@pytest.mark.parametrize(
    "entry, expected", [("a/b.avi", "a/b.avi"), ("./a//b.avi", "a/b.avi"), ("a\\b.avi", "a/b.avi")]
)
def test_safe_relative_path_normalises(entry, expected):
    assert safe_relative_path(entry, "list.txt", 1) == expected

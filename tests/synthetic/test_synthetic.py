from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pytest

from behavior.data.video import Video
from behavior.synthetic import (
    CLASSES,
    compute_pose,
    draw_clip_spec,
    generate_dataset,
    plan_dataset,
    render_clip,
    sit_progress,
)

SIZE = (96, 72)  # (W, H): small, so the tests stay fast
FPS = 15
MIN_FRAMES, MAX_FRAMES = math.ceil(1.5 * FPS), math.floor(4.0 * FPS)
TRAIN_LINE = re.compile(r"^([a-z_]+)/v_([A-Za-z]+)_g(\d\d)_c(\d\d)\.(mp4|avi) (\d+)$")
TEST_LINE = re.compile(r"^([a-z_]+)/v_([A-Za-z]+)_g(\d\d)_c(\d\d)\.(mp4|avi)$")


def camel(label: str) -> str:
    return "".join(part.capitalize() for part in label.split("_"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """8 clips per class, two worker processes."""
    out = tmp_path_factory.mktemp("synth")
    report = generate_dataset(
        out, clips_per_class=8, difficulty="medium", seed=0, workers=2, size=SIZE, fps=FPS
    )
    return out, report


def read_lists(out):
    splits = out / "splits"
    return {
        name: (splits / name).read_bytes().decode()
        for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt")
    }


def test_split_files_follow_the_ucf101_format(dataset):
    out, report = dataset
    lists = read_lists(out)
    assert lists["classInd.txt"] == "1 walk\n2 run\n3 wave\n4 sit_down\n5 stand_up\n"
    assert all("\r" not in text and text.endswith("\n") for text in lists.values())
    for line in lists["trainlist01.txt"].splitlines():
        match = TRAIN_LINE.match(line)
        assert match, line
        label, class_camel, label_id = match.group(1), match.group(2), int(match.group(6))
        assert CLASSES[label_id - 1] == label and class_camel == camel(label)
    for line in lists["testlist01.txt"].splitlines():
        match = TEST_LINE.match(line)
        assert match, line  # no label on test lines, as in UCF101
        assert match.group(2) == camel(match.group(1))
    assert report.root == out / "videos" and report.splits_dir == out / "splits"


def test_the_lists_name_exactly_the_videos_on_disk(dataset):
    out, report = dataset
    lists = read_lists(out)
    listed = [
        line.split()[0] for name in ("trainlist01.txt", "testlist01.txt") for line in lists[name].splitlines()
    ]
    on_disk = sorted(
        p.relative_to(out / "videos").as_posix() for p in (out / "videos").rglob("*") if p.is_file()
    )
    assert sorted(listed) == on_disk  # no partial or hidden files left behind either
    assert len(on_disk) == report.num_videos == 8 * len(CLASSES)
    assert {c: report.counts[c]["train"] + report.counts[c]["test"] for c in CLASSES} == dict.fromkeys(
        CLASSES, 8
    )
    summary = report.summary()
    assert str(report.root) in summary and str(report.splits_dir) in summary and "stand_up" in summary


def test_every_class_is_in_both_splits_and_no_group_is_in_both(dataset):
    out, _ = dataset
    lists = read_lists(out)
    train = [TRAIN_LINE.match(line) for line in lists["trainlist01.txt"].splitlines()]
    test = [TEST_LINE.match(line) for line in lists["testlist01.txt"].splitlines()]
    assert {m.group(1) for m in train} == {m.group(1) for m in test} == set(CLASSES)
    # gGG is one actor and scene in every class, so a group number must not appear in both splits
    assert not {m.group(3) for m in train} & {m.group(3) for m in test}


def test_every_video_decodes_with_the_planned_frame_count(dataset):
    out, report = dataset
    specs = plan_dataset(8, "medium", seed=0, size=SIZE, fps=FPS)
    assert len(specs) == report.num_videos
    for spec in specs:
        with Video(out / "videos" / spec.relpath) as video:
            frames = video.get_frames([0, spec.num_frames - 1])
            assert video.info.num_frames == spec.num_frames
        assert MIN_FRAMES <= spec.num_frames <= MAX_FRAMES
        assert frames.shape == (2, SIZE[1], SIZE[0], 3) and frames.dtype == np.uint8
    assert report.num_frames == sum(s.num_frames for s in specs)


def test_both_containers_appear_about_half_each(dataset):
    out, _ = dataset
    suffixes = [p.suffix for p in (out / "videos").rglob("v_*")]
    assert 0.4 <= suffixes.count(".mp4") / len(suffixes) <= 0.6
    assert set(suffixes) == {".mp4", ".avi"}


def test_same_seed_gives_the_same_frames_whatever_the_workers_or_set_size(dataset, tmp_path):
    out, _ = dataset
    generate_dataset(tmp_path, clips_per_class=2, difficulty="medium", seed=0, workers=1, size=SIZE, fps=FPS)
    for name in ("walk/v_Walk_g01_c01.mp4", "stand_up/v_StandUp_g02_c01.avi"):
        with Video(out / "videos" / name) as first, Video(tmp_path / "videos" / name) as second:
            indices = np.arange(first.info.num_frames)
            np.testing.assert_array_equal(first.get_frames(indices), second.get_frames(indices))


def test_another_seed_gives_other_clips():
    spec = draw_clip_spec("walk", 1, 1, "medium", seed=0, size=SIZE)
    other = draw_clip_spec("walk", 1, 1, "medium", seed=1, size=SIZE)
    assert spec.look != other.look
    assert not np.array_equal(render_clip(spec)[:MIN_FRAMES], render_clip(other)[:MIN_FRAMES])


@pytest.mark.parametrize("difficulty", ["easy", "hard"])
def test_stand_up_is_sit_down_played_backwards(difficulty):
    spec = draw_clip_spec("stand_up", 2, 3, difficulty, seed=0, size=SIZE)
    frames = render_clip(spec)
    reversed_sit = render_clip(replace(spec, label="sit_down"))[::-1]
    np.testing.assert_array_equal(frames, reversed_sit)
    progress = sit_progress(spec)
    assert progress[0] == 0 and progress[-1] == 1  # sit_down starts standing and ends seated
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 1  # the clip is not a palindrome


def test_sit_down_holds_have_one_distribution():
    specs = [s for s in plan_dataset(100, "easy", seed=0, size=SIZE) if s.label in ("sit_down", "stand_up")]
    standing = np.array([s.motion.sit_start_s for s in specs])
    seated = np.array([s.num_frames / s.fps - s.motion.sit_start_s - s.motion.sit_duration_s for s in specs])
    assert (seated > -1e-9).all()
    assert abs(standing.mean() - seated.mean()) < 0.15 * (standing.mean() + seated.mean()) / 2


def test_a_group_is_one_look_in_every_class_and_no_look_is_in_both_splits():
    specs = plan_dataset(100, "hard", seed=0, size=SIZE)
    looks = {split: {s.look for s in specs if s.split == split} for split in ("train", "test")}
    assert not looks["train"] & looks["test"]
    assert len(looks["test"]) == 7 and len(looks["train"]) == 18  # UCF101 split 1: groups 1-7 of 25 are test
    for label in CLASSES:
        mine = [s for s in specs if s.label == label]
        assert len(mine) == 100
        assert {s.group for s in mine if s.split == "test"} == set(range(1, 8))
    for group in range(1, 26):
        in_group = [s for s in specs if s.group == group]
        assert len({s.look for s in in_group}) == 1  # one actor and scene ...
        assert {s.label for s in in_group} == set(CLASSES)  # ... performing every behaviour


@pytest.mark.parametrize("clips_per_class", [2, 8, 9, 12])
def test_small_sets_still_have_a_test_and_a_train_group_per_class(clips_per_class):
    specs = plan_dataset(clips_per_class, "easy", seed=0, size=SIZE)
    for label in CLASSES:
        mine = [s for s in specs if s.label == label]
        assert len(mine) == clips_per_class
        test_groups = {s.group for s in mine if s.split == "test"}
        train_groups = {s.group for s in mine if s.split == "train"}
        assert test_groups and train_groups and not test_groups & train_groups


def test_length_and_colour_do_not_give_the_class_away():
    """A nearest-class-mean classifier on clip length and mean colour, fitted on the train split, is near
    chance (0.2) on the test split."""
    specs = plan_dataset(100, "medium", seed=0, size=(64, 48))
    features = np.array(
        [
            [s.num_frames / s.fps, *render_clip(replace(s, num_frames=2)).mean(axis=(0, 1, 2)) / 64]
            for s in specs
        ]
    )  # seconds and RGB on comparable scales, (N, 4)
    labels = np.array([CLASSES.index(s.label) for s in specs])
    train = np.array([s.split == "train" for s in specs])
    centroids = np.stack([features[train & (labels == k)].mean(0) for k in range(len(CLASSES))])  # (K, 4)
    distances = np.linalg.norm(features[~train, None] - centroids[None], axis=-1)  # (N_test, K)
    accuracy = (distances.argmin(1) == labels[~train]).mean()
    assert accuracy < 0.4


def test_walkers_and_runners_stay_in_frame_and_runners_are_faster():
    specs = [s for s in plan_dataset(20, "medium", seed=0) if s.label in ("walk", "run")]
    for spec in specs:
        pose = compute_pose(spec)
        t = np.arange(spec.num_frames) / spec.fps
        camera = spec.camera_x0 + spec.motion.facing * spec.pan_px_s * t
        in_frame = pose.pelvis[:, 0] - camera
        assert (in_frame > 0).all() and (in_frame < spec.size[0]).all()
    speed = {c: np.mean([s.motion.speed for s in specs if s.label == c]) for c in ("walk", "run")}
    assert 2.0 <= speed["run"] / speed["walk"] <= 3.0


def test_existing_files_are_never_overwritten(tmp_path):
    spec = plan_dataset(2, "easy", seed=0, size=SIZE)[0]
    existing = tmp_path / "videos" / spec.relpath
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match=re.escape(spec.name)):
        generate_dataset(tmp_path, clips_per_class=2, difficulty="easy", workers=1, size=SIZE)
    assert existing.read_bytes() == b"keep me"
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [existing]  # nothing else was written


def test_existing_split_files_are_never_overwritten(tmp_path):
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "trainlist01.txt").write_text("mine\n")
    with pytest.raises(FileExistsError, match="trainlist01.txt"):
        generate_dataset(tmp_path, clips_per_class=2, workers=1, size=SIZE)
    assert (tmp_path / "splits" / "trainlist01.txt").read_text() == "mine\n"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"difficulty": "extreme"}, r"difficulty='extreme'.*valid: easy, medium, hard"),
        ({"clips_per_class": 0}, r"clips_per_class=0.*valid: an integer >= 2"),
        ({"size": (97, 72)}, r"size=\(97, 72\).*even"),
        ({"workers": 0}, r"workers=0.*valid"),
    ],
)
def test_bad_arguments_name_the_argument_and_valid_values(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_dataset(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()

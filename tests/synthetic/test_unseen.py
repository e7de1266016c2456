"""The behaviours outside the five and the long recordings: what measures whether a model says "none of these"."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from behavior.cli import main
from behavior.data.splits import find_videos
from behavior.data.video import Video
from behavior.synthetic import (
    CLASSES,
    UNSEEN,
    compute_pose,
    draw_clip_spec,
    generate_dataset,
    generate_unseen,
    label_track_path,
    plan_dataset,
    plan_recording,
    plan_unseen,
    read_label_track,
    render_clip,
    write_recording,
)

SIZE = (64, 48)


def test_unseen_videos_are_the_new_behaviours_in_the_test_looks_and_the_same_for_a_seed(tmp_path):
    first = generate_unseen(tmp_path / "a", clips_per_class=8, seed=2, workers=1, size=SIZE, fps=10)
    second = generate_unseen(tmp_path / "b", clips_per_class=8, seed=2, workers=2, size=SIZE, fps=10)
    names = sorted(p.relative_to(first.root).as_posix() for p in find_videos(first.root))
    assert {name.split("/")[0] for name in names} == set(UNSEEN) and len(names) == sum(first.counts.values())
    assert sorted(p.relative_to(second.root).as_posix() for p in find_videos(second.root)) == names
    for name in names[::5]:
        with Video(first.root / name) as a, Video(second.root / name) as b:
            indices = list(range(a.info.num_frames))
            assert np.array_equal(a.get_frames(indices), b.get_frames(indices))
    test_groups = {s.group for s in plan_dataset(8, seed=2, size=SIZE, fps=10) if s.split == "test"}
    assert {
        s.group for s in plan_unseen(8, seed=2, size=SIZE, fps=10)
    } == test_groups  # never a training look
    assert not (tmp_path / "a" / "splits").exists()  # listed nowhere


def motion_of(spec) -> float:
    """Mean absolute change between consecutive frames, in 0..255 levels."""
    return float(np.abs(np.diff(render_clip(spec).astype(int), axis=0)).mean())


@pytest.mark.parametrize("behaviour", UNSEEN[:3])
def test_each_new_behaviour_moves_like_itself(behaviour):
    spec = draw_clip_spec(behaviour, 1, 1, "easy", 0, (96, 72), 15)
    idle = draw_clip_spec("idle", 1, 1, "easy", 0, (96, 72), 15)  # the same actor and scene, standing idle
    pose = compute_pose(spec)
    lean, height = np.degrees(np.abs(pose.lean)).max(), pose.pelvis[:, 1]
    assert motion_of(spec) > 5 * motion_of(idle)
    assert np.degrees(np.abs(compute_pose(idle).lean)).max() < 10
    if behaviour == "bend":
        assert lean > 60  # the torso goes down towards the floor
    if behaviour == "jump":
        assert height.max() - height.min() > 0.1 * spec.size[1]  # the pelvis goes up and down
    if behaviour == "clap":
        assert pose.view == "front"
    assert spec.label == behaviour and behaviour not in CLASSES


def test_a_recording_has_a_label_for_every_frame_of_what_it_shows(tmp_path):
    parts = plan_recording(1, 20.0, clips_per_class=8, seed=0, size=SIZE, fps=10)
    assert {p.label for p in parts} & set(CLASSES) and "none" in {p.label for p in parts}
    assert all((p.label == "none") == (p.spec.label not in CLASSES) for p in parts)
    video = write_recording(tmp_path / "recording-01.mp4", parts)
    truth = read_label_track(video)
    with Video(video) as opened:
        assert opened.info.num_frames == len(truth) == sum(p.spec.num_frames for p in parts)
        first = parts[0].spec.num_frames
        decoded = opened.get_frames([0, first - 1, first])
    assert truth == [p.label for p in parts for _ in range(p.spec.num_frames)]
    assert np.abs(decoded[0].astype(int) - render_clip(parts[0].spec)[0]).mean() < 6  # the frames it labels
    with open(label_track_path(video), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["frame", "time_s", "label", "behaviour"] and rows[first]["frame"] == str(first)
    assert float(rows[first]["time_s"]) == pytest.approx(first / 10)
    with pytest.raises(FileExistsError, match="recording-01"):
        write_recording(video, parts)


def test_synth_adds_the_unseen_set_and_recordings_beside_an_existing_set(tmp_path, capsys):
    generate_dataset(tmp_path, clips_per_class=4, seed=0, workers=1, size=(64, 48), fps=10)
    assert (
        main(
            [
                "synth",
                str(tmp_path),
                "--clips-per-class",
                "4",
                "--unseen",
                "--recordings",
                "1",
                "--recording-seconds",
                "6",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "holds the five behaviours already" in text and "unseen behaviours" in text
    assert {p.parent.name for p in find_videos(tmp_path / "unseen")} == set(UNSEEN)
    assert (tmp_path / "recordings" / "recording-01.labels.csv").is_file()
    assert "unseen" not in (tmp_path / "splits" / "trainlist01.txt").read_text()

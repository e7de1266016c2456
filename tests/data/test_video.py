from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import REAL_CLIPS, coded_frames, frame_number, read_manifest

import behavior.data.decord_reader as decord_module
from behavior.config import SamplerConfig
from behavior.data.decord_reader import DecordReader
from behavior.data.sampling import sample_indices
from behavior.data.video import Video, read_info
from behavior.data.writer import VideoWriter, write_video
from behavior.errors import VideoError

MANIFEST = read_manifest() if (REAL_CLIPS / "MANIFEST.tsv").is_file() else []
BROKEN = {"decord_corrupted_SYNTHETIC.mp4"}
# The manifest gives the container's duration; this file's default stream is 3.5 s shorter than its longest.
CONTAINER_DURATION = {"torchcodec_nasa_13013.mp4"}


def _manifest_ids(rows):
    return [r["file"] for r in rows]


@pytest.mark.parametrize("row", MANIFEST, ids=_manifest_ids(MANIFEST))
def test_real_clip_reads_as_the_manifest_says(real_clips, row):
    path = real_clips / row["file"]
    uniform = SamplerConfig(strategy="uniform", num_frames=8, time_based=False)
    if row["file"] in BROKEN:
        with pytest.raises(VideoError) as error, Video(path) as video:
            video.get_frames(sample_indices(video.info.num_frames, uniform, train=False)[0])
        assert row["file"] in str(error.value)  # the error names the file
        return
    with Video(path) as video:
        info = video.info
        frames = video.get_frames(sample_indices(info.num_frames, uniform, train=False)[0])
    assert info.num_frames == int(row["frames"])
    assert (info.width, info.height) == (int(row["upright_width"]), int(row["upright_height"]))
    assert frames.shape == (8, info.height, info.width, 3) and frames.dtype == np.uint8
    assert len(info.timestamps) == info.num_frames and np.all(np.diff(info.timestamps) >= 0)
    if row["file"] not in CONTAINER_DURATION:
        expected = float(row["duration_s"])
        assert abs(info.duration_s - expected) <= max(0.15, 0.02 * expected)


READABLE = [r for r in MANIFEST if r["file"] not in BROKEN and not r["file"].endswith(".gif")]


@pytest.mark.parametrize("row", READABLE, ids=_manifest_ids(READABLE))
def test_decord_and_pyav_give_the_same_frames(real_clips, row):
    path = real_clips / row["file"]
    with Video(path, backend="decord") as a, Video(path, backend="pyav") as b:
        assert a.info.num_frames == b.info.num_frames
        assert (a.info.width, a.info.height) == (b.info.width, b.info.height)
        assert np.allclose(a.info.timestamps, b.info.timestamps, atol=1e-3)
        n = a.info.num_frames
        rng = np.random.default_rng(0)
        # unsorted, repeated, and far apart (PyAV seeks over long gaps)
        indices = np.concatenate([rng.integers(0, n, size=4), [n - 1, 0, n // 2, n // 2]])
        x, y = a.get_frames(indices), b.get_frames(indices)
    per_frame = np.abs(x.astype(int) - y.astype(int)).mean(axis=(1, 2, 3))
    assert per_frame.max() < 1.0, (
        f"frames {indices[per_frame >= 1.0].tolist()} differ"
    )  # a stale frame differs


@pytest.mark.parametrize("row", READABLE, ids=_manifest_ids(READABLE))
def test_the_last_frame_after_a_long_jump_is_the_last_frame(real_clips, row):
    """decord 0.6 repeats the frame before when it seeks to the last one; the reader steps onto it instead."""
    path = real_clips / row["file"]
    with Video(path, backend="pyav") as reference:
        n = reference.info.num_frames
        expected = reference.get_frames([n - 1])[0]
    for first in (0, n // 3):
        with Video(path, backend="decord") as video:
            got = video.get_frames(np.array([first, n - 1]))[1]
        assert np.abs(got.astype(int) - expected.astype(int)).mean() < 1.0, (
            f"frame {n - 1} after frame {first}"
        )


def test_rotation_is_applied_by_both_backends(real_clips):
    for backend in ("decord", "pyav"):
        shapes = {}
        for degrees in (0, 90, 180, 270):
            with Video(real_clips / f"decord_rotation_{degrees}.mov", backend=backend) as video:
                shapes[degrees] = video.get_frames([0]).shape[1:3]
        assert shapes[0] == shapes[180] == (320, 568)
        assert shapes[90] == shapes[270] == (568, 320)
    # The pixels are turned, not only the shape: both backends agree on the 180-degree file.
    with (
        Video(real_clips / "decord_rotation_180.mov", backend="decord") as a,
        Video(real_clips / "decord_rotation_180.mov", backend="pyav") as b,
    ):
        assert np.abs(a.get_frames([1]).astype(int) - b.get_frames([1]).astype(int)).mean() < 0.5


def test_two_video_streams_read_the_default_stream(real_clips):
    for backend in ("decord", "pyav"):
        info = read_info(real_clips / "torchcodec_nasa_13013.mp4", backend=backend)
        assert (info.width, info.height, info.num_frames) == (480, 270, 390)


def test_gif_reads_through_the_fallback(real_clips):
    with Video(real_clips / "i3d_v_CricketShot_g04_c01_rgb_ucf101.gif") as video:
        assert video.backend == "pyav"
        assert video.get_frames([0, 78]).shape == (2, 224, 224, 3)


def test_variable_frame_rate_timestamps_are_real(real_clips):
    info = read_info(real_clips / "torchcodec_var_fps_SYNTHETIC.mp4")
    gaps = np.diff(info.timestamps)
    assert gaps.max() > 0.5 and gaps.min() < 0.04  # one 0.53 s gap among 1/30 s frames
    cfg = SamplerConfig(strategy="segment", num_frames=10, time_based=True)
    picked = info.timestamps[sample_indices(info.num_frames, cfg, train=False, timestamps=info.timestamps)[0]]
    # Evenly spread in time: every sampled time is within one frame gap of its bin centre.
    centres = (np.arange(10) + 0.5) * info.duration_s / 10
    assert np.all(np.abs(picked - centres) <= gaps.max() + 1e-6)


def test_packed_b_frames_avi_comes_out_in_display_order(real_clips):
    path = real_clips / "mmaction2_test_applyeyemakeup_ucf101style.avi"
    with Video(path, backend="decord") as a, Video(path, backend="pyav") as b:
        every = np.arange(a.info.num_frames)
        assert np.array_equal(a.get_frames(every[:40]), b.get_frames(every[:40]))
        assert np.allclose(a.info.timestamps, every / 25.0, atol=1e-3)  # not decord's placeholder times


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_frames_come_back_for_the_indices_asked(make_video, backend):
    path = make_video("long.mp4", num_frames=200, fps=25, height=32, width=64)
    indices = [150, 3, 3, 199, 0, 64, 130]
    with Video(path, backend=backend) as video:
        assert video.info.num_frames == 200
        frames = video.get_frames(indices)
    assert [frame_number(f) for f in frames] == [i % 64 for i in indices]


def test_a_width_decord_cannot_decode_still_reads(make_video):
    # decord 0.6 fails get_batch on frames 16, 24, 48 or 72 pixels wide ("The size must exactly match").
    path = make_video("narrow.mp4", num_frames=10, height=32, width=48)
    with Video(path) as video:
        frames = video.get_frames([2, 9])
        assert video.backend == "pyav" and frames.shape == (2, 32, 48, 3)
    assert [frame_number(f) for f in frames] == [2, 9]


def test_container_is_detected_from_content_not_extension(tmp_path, make_video):
    mp4 = make_video("real.mp4", num_frames=10)
    disguised = tmp_path / "disguised.avi"
    shutil.copy(mp4, disguised)
    for backend in ("decord", "pyav"):
        with Video(disguised, backend=backend) as video:
            assert [frame_number(f) for f in video.get_frames([2, 7])] == [2, 7]


def test_decoding_at_reduced_size_keeps_aspect_and_orientation(make_video, real_clips):
    path = make_video("big.mp4", num_frames=6, height=96, width=128)
    for backend in ("decord", "pyav"):
        with Video(path, backend=backend, short_side=48) as video:
            assert (video.info.width, video.info.height) == (64, 48)
            assert video.get_frames([0]).shape == (1, 48, 64, 3)
        with Video(real_clips / "decord_rotation_90.mov", backend=backend, short_side=160) as video:
            assert video.get_frames([0]).shape == (1, 284, 160, 3)  # still portrait


def test_decord_failure_falls_back_to_pyav(make_video, monkeypatch):
    path = make_video("clip.mp4", num_frames=10)

    def broken(self, indices, last=False):
        raise RuntimeError("simulated decord failure")

    monkeypatch.setattr(DecordReader, "get_frames", broken)
    with Video(path) as video:
        frames = video.get_frames([1, 8])
        assert video.backend == "pyav"
    assert [frame_number(f) for f in frames] == [1, 8]


def test_missing_decord_means_pyav(make_video, monkeypatch):
    path = make_video("clip.mp4", num_frames=10)
    monkeypatch.setattr(decord_module, "decord", None)
    with Video(path) as video:
        assert video.backend == "pyav"
        assert frame_number(video.get_frames([4])[0]) == 4
    with pytest.raises(ValueError, match="decord is not installed"):
        Video(path, backend="decord")


def _bad_file(folder, kind):
    if kind == "zero-byte":
        path = folder / "empty.mp4"
        path.write_bytes(b"")
    elif kind == "text-renamed":
        path = folder / "notes.mp4"
        path.write_text("not a video\n" * 50)
    elif kind == "directory":
        path = folder / "folder.mp4"
        path.mkdir()
    else:
        path = folder / "noise.avi"
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    return path


@pytest.mark.parametrize(
    "kind, message",
    [
        ("zero-byte", "empty file"),
        ("text-renamed", "cannot be read"),
        ("directory", "is a directory"),
        ("random-bytes", "cannot be read"),
    ],
)
def test_bad_files_get_a_clear_error_naming_the_file(tmp_path, kind, message):
    path = _bad_file(tmp_path, kind)
    with pytest.raises(VideoError, match=message) as error:
        Video(path)
    assert str(path) in str(error.value)


def test_missing_file_and_bad_indices(tmp_path, make_video):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        Video(tmp_path / "nope.mp4")
    with Video(make_video("clip.mp4", num_frames=10)) as video, pytest.raises(IndexError, match=r"\[0, 9\]"):
        video.get_frames([3, 10])
    with pytest.raises(ValueError, match="valid: auto, decord, pyav"):
        Video(tmp_path / "clip.mp4", backend="opencv")


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".webm", ".gif"])
def test_writer_round_trip(tmp_path, suffix):
    frames = coded_frames(12, 32, 48)
    path = write_video(tmp_path / f"out{suffix}", frames, fps=12)
    with Video(path) as video:
        assert video.info.num_frames == 12 and (video.info.width, video.info.height) == (48, 32)
        assert [frame_number(f) for f in video.get_frames([0, 5, 11])] == [0, 5, 11]


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_realtime_writer_gives_the_same_frames_and_colours_as_the_default_one(tmp_path, suffix):
    """Live mode's writer (ultrafast H.264, OpenCV's colour conversion) decodes to the same frames, with colours
    as close to the input as the default writer's, and gives the same bytes for the same frames."""
    frames = coded_frames(
        12, 32, 48
    )  # flat greys on the left (a colour shift shows there), texture on the right
    paths = {}
    for realtime in (False, True):
        paths[realtime] = tmp_path / f"{realtime}{suffix}"
        with VideoWriter(paths[realtime], fps=12, realtime=realtime) as writer:
            for frame in frames:
                writer.write(frame)
    errors = {}
    for realtime, path in paths.items():
        with Video(path) as video:
            decoded = video.get_frames(range(12))
        assert [frame_number(f) for f in decoded[[0, 5, 11]]] == [0, 5, 11]
        difference = np.abs(decoded.astype(int) - frames.astype(int))  # (T, H, W, 3)
        errors[realtime] = difference[:, :, :24].mean(), difference[:, :, 24:].mean()  # flat greys, texture
    assert errors[True][0] <= errors[False][0] + 0.5, errors  # colours: as close as ffmpeg's conversion
    # random colour noise loses a little more to OpenCV's chroma subsampling (on real footage it is no worse)
    assert errors[True][1] <= 1.2 * errors[False][1], errors
    again = tmp_path / f"again{suffix}"
    with VideoWriter(again, fps=12, realtime=True) as writer:
        for frame in frames:
            writer.write(frame)
    assert again.read_bytes() == paths[True].read_bytes()


def test_writer_refuses_unknown_extension_and_bad_frames(tmp_path):
    with pytest.raises(ValueError, match="valid: .avi"):
        VideoWriter(tmp_path / "out.xyz", fps=10)
    with VideoWriter(tmp_path / "out.mp4", fps=10) as writer, pytest.raises(ValueError, match="uint8"):
        writer.write(np.zeros((8, 8, 3), np.float32))


def _rotated_mov(path, frames, degrees):
    """A MOV whose frames are stored as given and whose display matrix turns them `degrees` counter-clockwise."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "12", "preset": "superfast", "threads": "1"}
        stream.set_display_rotation(degrees)
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_decord_opens_a_video_once_and_decodes_nothing_to_learn_its_shape(tmp_path, monkeypatch, degrees):
    """The header gives the size and the rotation: one decord reader, opened at the upright (scaled) size, and no
    frame decoded before the ones asked for. The frames match PyAV's, which turns each frame by its metadata."""
    path = _rotated_mov(tmp_path / f"turned{degrees}.mov", coded_frames(12, 64, 128), degrees)
    opened, decoded = [], []

    class Counting(decord_module.decord.VideoReader):
        def __init__(self, *args, **kwargs):
            opened.append(kwargs)
            super().__init__(*args, **kwargs)

        def __getitem__(self, index):
            decoded.append(index)
            return super().__getitem__(index)

    monkeypatch.setattr(decord_module.decord, "VideoReader", Counting)
    upright = (128, 64) if degrees % 180 else (64, 128)  # (H, W) on screen
    for short_side in (None, 32):
        opened.clear()
        with Video(path, backend="decord", short_side=short_side) as video:
            frames = video.get_frames([0, 7])
            size = (video.info.height, video.info.width)
        with Video(path, backend="pyav", short_side=short_side) as reference:
            expected = reference.get_frames([0, 7])
        assert len(opened) == 1 and not decoded
        assert size == frames.shape[1:3] == expected.shape[1:3]
        assert size == (upright if short_side is None else tuple(side // 2 for side in upright))
        # the same picture, turned the same way: 8x8 block means agree (the flat half is dark, the noise grey)
        blocks = [
            f.reshape(2, f.shape[1] // 8, 8, f.shape[2] // 8, 8, 3).mean(axis=(2, 4))
            for f in (frames, expected)
        ]
        assert np.abs(blocks[0] - blocks[1]).max() < 8 and np.ptp(blocks[1]) > 60


def test_a_rotation_the_header_probe_misses_falls_back_to_pyav(tmp_path, monkeypatch):
    """Should the probe get the rotation wrong, decord's frames do not have the declared shape: the video is read
    by PyAV instead, upright, rather than handed out with the wrong size."""
    path = _rotated_mov(tmp_path / "turned.mov", coded_frames(12, 64, 128), 90)
    monkeypatch.setattr(decord_module, "video_header", lambda _: (128, 64, 0))  # the header reader misses it
    monkeypatch.setattr(decord_module, "mp4_quarter_turns", lambda *_: 0)  # and so does PyAV's probe
    with Video(path) as video:
        frames = video.get_frames([0, 5])
        assert video.backend == "pyav" and frames.shape == (2, 128, 64, 3)


def test_a_last_read_gives_the_same_frames_and_later_reads_stay_right(make_video):
    """`last=True` (a clip read once, then closed) skips only the decoder's read-ahead stop: the frames are the
    same, and a reader that reads again after all still returns the right frames."""
    path = make_video("clip.mp4", num_frames=30)
    for backend in ("decord", "pyav"):
        with Video(path, backend=backend) as once, Video(path, backend=backend) as twice:
            first = once.get_frames([3, 9, 20], last=True)
            assert np.array_equal(first, twice.get_frames([3, 9, 20]))
            assert [frame_number(f) for f in first] == [3, 9, 20]
            assert [frame_number(f) for f in once.get_frames([1, 25, 2])] == [1, 25, 2]


def test_decord_stops_reading_ahead_after_every_read_but_a_last_one(make_video, monkeypatch):
    """A reader kept open between reads (window prediction, live mode, the frame cache) must stop decord's
    read-ahead after each read, or its decoder thread fills memory while it waits; a last read before closing
    need not (it saves the seek)."""
    path = make_video("clip.mp4", num_frames=30)
    stops = []
    monkeypatch.setattr(DecordReader, "_drop_read_ahead", lambda self: stops.append(True))
    with Video(path, backend="decord") as video:
        video.get_frames([2, 5])
        video.get_frames([29])  # the video's last frame takes decord's other path
        assert len(stops) == 2
        video.get_frames([7, 29], last=True)
        assert len(stops) == 2


def test_pyav_reads_back_from_the_keyframe_before_not_from_the_start(make_video, monkeypatch):
    """Window prediction reads overlapping chunks, each starting before the last one ended: going back must not
    decode the video again from its first frame (that made a long video quadratic)."""
    from behavior.data.pyav_reader import PyAVReader

    path = make_video("long.mp4", num_frames=600, fps=25, height=32, width=64)  # x264 keyframes: 0, 250, 500
    decoded = []
    next_frame = PyAVReader._next_frame
    monkeypatch.setattr(PyAVReader, "_next_frame", lambda self: decoded.append(1) or next_frame(self))
    with Video(path, backend="pyav") as video:
        first = video.get_frames(np.arange(520, 531))
        decoded.clear()
        back = video.get_frames(np.arange(505, 516))
    assert [frame_number(f) for f in first] == [i % 64 for i in range(520, 531)]
    assert [frame_number(f) for f in back] == [i % 64 for i in range(505, 516)]
    assert len(decoded) < 100  # from the keyframe at 500, not 516 frames from the start


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_both_decoders_give_the_same_pixels_at_a_reduced_size(make_video, suffix):
    """The size the loader asks for (72 px here): PyAV scales as decord does, so a video read by either one, or
    falling back from one to the other, reaches the model with the same pixels."""
    path = make_video("big" + suffix, num_frames=12, height=120, width=160)
    every = np.arange(12)
    with Video(path, backend="decord", short_side=72) as a, Video(path, backend="pyav", short_side=72) as b:
        assert np.array_equal(a.get_frames(every), b.get_frames(every))


def test_a_sequential_read_takes_pyav_first_and_falls_back_to_decord(make_video, monkeypatch):
    """Window prediction reads forward: PyAV first, which decodes nothing ahead; decord when PyAV cannot."""
    from behavior.data.pyav_reader import PyAVReader

    path = make_video("clip.mp4", num_frames=10)
    with Video(path, sequential=True) as video:
        assert video.backend == "pyav"
        assert [frame_number(f) for f in video.get_frames([2, 7])] == [2, 7]

    def broken(self, indices, last=False):
        raise RuntimeError("simulated PyAV failure")

    monkeypatch.setattr(PyAVReader, "get_frames", broken)
    with Video(path, sequential=True) as video:
        frames = video.get_frames([1, 8])
        assert video.backend == "decord"
    assert [frame_number(f) for f in frames] == [1, 8]

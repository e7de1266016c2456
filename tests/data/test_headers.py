"""Container headers: the size and rotation the decord reader opens an H.264 MP4/MOV with, read without a demuxer,
agree with what PyAV's probe (ffmpeg's demuxer and decoder) reports; where the header reader cannot tell (other
containers and codecs, several video tracks), it says so (None) and PyAV is asked instead."""

from __future__ import annotations

import struct

import av
import numpy as np
import pytest
from conftest import coded_frames, read_manifest

import behavior.data.decord_reader as decord_module
from behavior.data.decord_reader import probe
from behavior.data.headers import video_header
from behavior.data.video import Video
from behavior.errors import VideoError


def _write(path, frames, codec="libx264", degrees=None, extra_stream=None, options=None):
    """A video of `frames`; `degrees` sets the display rotation; `extra_stream` (W, H) adds a second video
    stream of that size; `options` go to the encoder."""
    with av.open(str(path), mode="w") as container:
        streams = [container.add_stream(codec, rate=10)]
        streams[0].width, streams[0].height = frames.shape[2], frames.shape[1]
        streams[0].options = options or {}
        if extra_stream is not None:
            streams.append(container.add_stream(codec, rate=10))
            streams[1].width, streams[1].height = extra_stream
        for stream in streams:
            stream.pix_fmt = "yuv420p"
        if degrees is not None:
            streams[0].set_display_rotation(degrees)
        for frame in frames:
            for stream in streams:
                picture = np.ascontiguousarray(frame[: stream.height, : stream.width])
                for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                    container.mux(packet)
        for stream in streams:
            for packet in stream.encode():
                container.mux(packet)
    return path


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_mov_size_and_rotation_match_pyav(tmp_path, degrees):
    path = _write(tmp_path / "turned.mov", coded_frames(4, 48, 80), degrees=degrees)
    assert video_header(path) == probe(path) == (80, 48, degrees // 90)


@pytest.mark.parametrize(
    "size,options",
    [
        ((96, 72), {}),
        ((70, 50), {}),  # not whole macroblocks: the SPS crops the right and bottom edges
        ((64, 48), {"x264-params": "cqm=jvt"}),  # the SPS carries scaling matrices
        (
            (64, 48),
            {"x264-params": "interlaced=1"},
        ),  # field coding: height counted in pairs of macroblock rows
        ((64, 48), {"profile": "baseline"}),  # no chroma format fields
    ],
)
def test_h264_sizes_match_pyav(tmp_path, size, options):
    path = _write(tmp_path / "clip.mp4", coded_frames(4, size[1], size[0]), options=options)
    assert video_header(path) == probe(path) == (*size, 0)


@pytest.mark.parametrize(
    "name,codec", [("clip.avi", "libx264"), ("clip.avi", "msmpeg4"), ("clip.mp4", "mpeg4")]
)
def test_other_containers_and_codecs_are_left_to_pyav(tmp_path, name, codec):
    path = _write(tmp_path / name, coded_frames(4, 72, 96), codec=codec)
    assert video_header(path) is None and probe(path) == (96, 72, 0)


@pytest.mark.parametrize(
    "size,options",
    [
        ((96, 72), {}),
        ((70, 50), {}),  # not whole macroblocks
        ((64, 48), {"flags": "+global_header"}),  # the VOL in the stream's codec data, not the first frame
        ((64, 48), {"g": "1", "bf": "2"}),  # B-frames: the VOL header carries more fields
    ],
)
def test_mpeg4_avi_sizes_match_pyav(tmp_path, size, options):
    path = _write(tmp_path / "clip.avi", coded_frames(4, size[1], size[0]), codec="mpeg4", options=options)
    assert video_header(path) == probe(path) == (*size, 0)


def test_the_vol_decides_an_avi_size_not_the_stream_header(tmp_path):
    """An AVI whose stream format declares a small picture but whose VOL header a huge one is judged by the VOL,
    as the decoder will decode it, and refused before decord opens it."""
    path = _write(tmp_path / "clip.avi", coded_frames(4, 48, 64), codec="mpeg4")
    data = bytearray(path.read_bytes())
    at = data.index(b"strf") + 12  # biWidth, biHeight of the BITMAPINFOHEADER
    assert struct.unpack("<ii", data[at : at + 8]) == (64, 48)
    data[at : at + 8] = struct.pack("<ii", 16, 16)
    bomb = tmp_path / "bomb.avi"
    bomb.write_bytes(bytes(data))
    assert video_header(bomb) == (64, 48, 0)
    vol = data.index(b"\x00\x00\x01\x20")
    bits = "".join(f"{byte:08b}" for byte in data[vol + 4 : vol + 16])
    width_at = bits.index(format(64, "013b") + "1" + format(48, "013b"))  # width, marker, height
    bits = bits[:width_at] + format(8000, "013b") + "1" + format(8000, "013b") + bits[width_at + 27 :]
    data[vol + 4 : vol + 16] = int(bits, 2).to_bytes(12, "big")
    bomb.write_bytes(bytes(data))
    assert video_header(bomb) == (8000, 8000, 0)
    with pytest.raises(VideoError, match="8000x8000"):
        Video(bomb, backend="decord")


def test_the_sps_decides_the_size_not_the_other_boxes(tmp_path):
    """A file whose sample entry and track header declare a small picture but whose SPS declares a huge one (a
    decompression bomb) is judged by its SPS, as the decoder will decode it."""
    from test_reliability import write_size_bomb

    small = _write(tmp_path / "small.mp4", coded_frames(4, 48, 64))
    bomb = write_size_bomb(small, tmp_path / "bomb.mp4", 12000, 12000)
    assert video_header(small) == (64, 48, 0) and video_header(bomb) == (12000, 12000, 0)


def test_two_video_tracks_or_another_container_are_left_to_pyav(tmp_path):
    two = _write(tmp_path / "two.mp4", coded_frames(4, 64, 96), extra_stream=(48, 32))
    mkv = _write(tmp_path / "clip.mkv", coded_frames(4, 48, 64))
    assert (
        video_header(two) is None and probe(two) is not None
    )  # ffmpeg picks among the tracks, not this reader
    assert video_header(mkv) is None and probe(mkv) == (64, 48, 0)
    with Video(two, backend="decord") as video:  # the probe's choice still opens it at the right size
        assert video.get_frames([0]).shape[1:3] == (video.info.height, video.info.width)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_header_gives_none_not_an_error(tmp_path, damage):
    whole = _write(tmp_path / "clip.mp4", coded_frames(4, 48, 64)).read_bytes()
    broken = tmp_path / f"{damage}.mp4"
    contents = {"truncated": whole[:40], "garbage": b"\x00\x00\x00\x10ftyp" + bytes(200), "empty": b""}
    broken.write_bytes(contents[damage])
    assert video_header(broken) is None


@pytest.mark.parametrize("damage", ["truncated", "garbage", "no frame"])
def test_a_damaged_avi_header_gives_none_not_an_error(tmp_path, damage):
    whole = _write(tmp_path / "clip.avi", coded_frames(4, 48, 64), codec="mpeg4").read_bytes()
    movi = whole.index(b"movi")
    contents = {
        "truncated": whole[:200],  # inside the stream headers
        "garbage": whole[:12] + bytes(range(256)) * 4,
        "no frame": whole[: movi + 4],  # the headers, and no frame to read the VOL from
    }
    broken = tmp_path / f"{damage}.avi"
    broken.write_bytes(contents[damage])
    assert video_header(broken) is None


def test_decord_reader_opens_an_h264_mp4_or_mov_and_an_mpeg4_avi_without_pyav(tmp_path, monkeypatch):
    """One open per video: the header reader gives the size, so PyAV never opens the file."""
    paths = [_write(tmp_path / name, coded_frames(6, 48, 64)) for name in ("a.mp4", "b.mov")]
    paths.append(_write(tmp_path / "c.avi", coded_frames(6, 48, 64), codec="mpeg4"))
    opened = []
    real_open = av.open
    monkeypatch.setattr(decord_module.av, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    for path in paths:
        with Video(path, backend="decord", short_side=24) as video:
            assert video.get_frames([0, 5]).shape == (2, 24, 32, 3)
    assert opened == []


def test_real_clip_headers_match_pyav(real_clips):
    """On every real clip the header reader reads (H.264 in MP4 or MOV, MPEG-4 part 2 in AVI, one video track),
    the size and rotation equal PyAV's; the others (other codecs, Matroska, GIF, two video streams) are left to
    PyAV."""
    read = 0
    for row in read_manifest():
        path = real_clips / row["file"]
        found = video_header(path)
        if found is None:
            readable = (row["container"] in ("mp4", "mov") and row["codec"] == "h264") or (
                row["container"] == "avi" and row["codec"].startswith("mpeg4")
            )
            assert not readable or "TWO" in row["quirk"], row
            continue
        assert found == probe(path), row["file"]
        read += 1
    assert read >= 19  # the 17 H.264 MP4/MOV files with one video track and the 2 Xvid AVIs

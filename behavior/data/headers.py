"""Container headers read without a demuxer: the size and rotation of the one video stream of an MP4/MOV file
with H.264 and of an AVI file with MPEG-4 part 2 (DivX, Xvid, ffmpeg's mpeg4).

The decord reader needs a video's size (to refuse decompression bombs before decord allocates anything, and to ask
decord for the scaled size) and its rotation (decord turns the frames upright) before it opens the file. For the
files most clips come as, the headers hold both, and reading them takes a few small reads instead of a second
open by PyAV. The size is always the one the decoder itself will use, so that a file whose container declares a
small size and whose bitstream a huge one is judged by the bitstream, as ffmpeg would decode it: in MP4/MOV the
sequence parameter set (SPS) in the `avcC` box, in AVI the video object layer (VOL) header at the start of the
first frame. MP4/MOV carry the rotation in the track's display matrix; AVI has none. `video_header` gives (width,
height, quarter turns), or None for another container or codec, several video streams (ffmpeg's choice among
them is its own), or anything it does not understand, and the caller asks PyAV instead.
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

_IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
_ISO_BMFF_FIRST = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"}  # a file's first box


def _boxes(handle, start: int, end: int):
    """(type, payload start, payload end) of the ISO-BMFF boxes (MP4/MOV atoms) between two file offsets."""
    position = start
    while position + 8 <= end:
        handle.seek(position)
        header = handle.read(16)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header[:8])
        offset = 8
        if size == 1 and len(header) == 16:  # a 64-bit size follows the type
            size, offset = struct.unpack(">Q", header[8:])[0], 16
        elif size == 0:  # the box runs to the end of its parent
            size = end - position
        if size < offset:
            return
        yield kind, position + offset, min(position + size, end)
        position += size


def _child(handle, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    """(payload start, payload end) of the first box of type `kind` between two offsets."""
    return next(((s, e) for k, s, e in _boxes(handle, start, end) if k == kind), None)


def _matrix(handle, at: int) -> tuple[tuple[float, ...], ...]:
    """The 3x3 display matrix stored at `at` (a, b, u, c, d, v, x, y, w; u, v, w in 2.30 fixed point, the rest
    16.16), as floats, row by row."""
    handle.seek(at)
    values = struct.unpack(">9i", handle.read(36))
    return tuple(tuple(values[3 * i + j] / (2**30 if j == 2 else 2**16) for j in range(3)) for i in range(3))


def quarter_turns(track, movie) -> int:
    """Quarter turns of a track's display matrix after the movie's (as ffmpeg composes them), as ffmpeg's
    av_display_rotation_get reads them: the angle of the first row, each column scaled to unit length."""
    m = [[sum(track[i][e] * movie[e][j] for e in range(3)) for j in range(3)] for i in range(3)]
    scale_x, scale_y = math.hypot(m[0][0], m[1][0]), math.hypot(m[0][1], m[1][1])
    if scale_x == 0 or scale_y == 0:
        return 0
    degrees = -math.degrees(math.atan2(m[0][1] / scale_y, m[0][0] / scale_x))
    return round(degrees / 90) % 4


def _track(handle, start: int, end: int) -> dict:
    """What one trak box says: its id and display matrix (tkhd), handler (hdlr: b"vide" for video) and, when its
    first sample description (stsd) is H.264, the picture size of its SPS."""
    found: dict = {}
    tkhd = _child(handle, start, end, b"tkhd")
    if tkhd is not None:
        handle.seek(tkhd[0])
        long = handle.read(1) == b"\x01"
        handle.seek(tkhd[0] + (20 if long else 12))
        found["id"] = struct.unpack(">I", handle.read(4))[0]
        found["matrix"] = _matrix(handle, tkhd[0] + (52 if long else 40))
    mdia = _child(handle, start, end, b"mdia")
    if mdia is None:
        return found
    hdlr = _child(handle, *mdia, b"hdlr")
    if hdlr is not None:
        handle.seek(hdlr[0] + 8)  # version/flags, pre_defined
        found["handler"] = handle.read(4)
    stbl = None
    minf = _child(handle, *mdia, b"minf")
    if minf is not None:
        stbl = _child(handle, *minf, b"stbl")
    stsd = _child(handle, *stbl, b"stsd") if stbl is not None else None
    if stsd is not None:
        entry = next(_boxes(handle, stsd[0] + 8, stsd[1]), None)  # after version/flags and the entry count
        if entry is not None and entry[0] in (b"avc1", b"avc3"):
            # a visual sample entry's fields take 78 bytes; its child boxes follow
            avcc = _child(handle, entry[1] + 78, entry[2], b"avcC")
            if avcc is not None:
                found["size"] = _avcc_size(handle, *avcc)
    return found


def _avcc_size(handle, start: int, end: int) -> tuple[int, int] | None:
    """(width, height) of the first SPS in an avcC box (AVCDecoderConfigurationRecord)."""
    handle.seek(start)
    record = handle.read(min(end - start, 1024))
    if len(record) < 8 or record[5] & 0x1F == 0:  # no SPS
        return None
    length = struct.unpack(">H", record[6:8])[0]
    return sps_size(record[8 : 8 + length])


class _Bits:
    """Reads a bitstream header bit by bit, most significant bit first."""

    def __init__(self, data: bytes):
        self.data = data
        self.position = 0

    def bit(self) -> int:
        byte = self.data[self.position >> 3]  # IndexError past the end: the caller gives up
        self.position += 1
        return (byte >> (7 - ((self.position - 1) & 7))) & 1

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:  # unsigned Exp-Golomb
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:  # signed Exp-Golomb
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)


_HIGH_PROFILES = {
    100,
    110,
    122,
    244,
    44,
    83,
    86,
    118,
    128,
    138,
    139,
    134,
    135,
}  # SPS with chroma format fields


def sps_size(nal: bytes) -> tuple[int, int] | None:
    """(width, height) of the pictures an H.264 sequence parameter set NAL unit declares, after its cropping
    (H.264 7.3.2.1.1 and 7.4.2.1.1); None when it is not an SPS, it crops the left or top edge (ffmpeg may then
    keep some of it), or it cannot be parsed."""
    if len(nal) < 4 or nal[0] & 0x1F != 7:
        return None
    try:
        bits = _Bits(nal[1:].replace(b"\x00\x00\x03", b"\x00\x00"))  # the RBSP: no emulation bytes
        profile = bits.bits(8)
        bits.bits(16)  # constraint flags, level
        bits.ue()  # seq_parameter_set_id
        chroma_format, separate_planes = 1, 0
        if profile in _HIGH_PROFILES:
            chroma_format = bits.ue()
            if chroma_format == 3:
                separate_planes = bits.bit()
            bits.ue(), bits.ue()  # bit depths
            bits.bit()  # qpprime_y_zero_transform_bypass_flag
            if bits.bit():  # seq_scaling_matrix_present_flag
                for i in range(8 if chroma_format != 3 else 12):
                    if bits.bit():  # this scaling list is present
                        last = following = 8
                        for _ in range(16 if i < 6 else 64):
                            if following:
                                following = (last + bits.se() + 256) % 256
                            last = following or last
        bits.ue()  # log2_max_frame_num_minus4
        poc_type = bits.ue()
        if poc_type == 0:
            bits.ue()
        elif poc_type == 1:
            bits.bit(), bits.se(), bits.se()
            for _ in range(bits.ue()):
                bits.se()
        bits.ue(), bits.bit()  # max_num_ref_frames, gaps_in_frame_num_value_allowed_flag
        width_mbs, height_units = bits.ue() + 1, bits.ue() + 1
        frames_only = bits.bit()
        if not frames_only:
            bits.bit()  # mb_adaptive_frame_field_flag
        bits.bit()  # direct_8x8_inference_flag
        left = right = top = bottom = 0
        if bits.bit():  # frame_cropping_flag
            left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
    except (IndexError, ValueError):
        return None
    if left or top:
        return None
    if separate_planes or chroma_format == 0:
        unit_x, unit_y = 1, 2 - frames_only
    else:
        unit_x, unit_y = (
            (1 if chroma_format == 3 else 2),
            (2 if chroma_format == 1 else 1) * (2 - frames_only),
        )
    width = width_mbs * 16 - right * unit_x
    height = height_units * 16 * (2 - frames_only) - bottom * unit_y
    return (width, height) if width > 0 and height > 0 else None


def _movie(handle, end: int) -> tuple[tuple[tuple[float, ...], ...], list[dict]] | None:
    """The movie's display matrix (mvhd) and what each of its tracks says (`_track`), or None without a moov."""
    moov = _child(handle, 0, end, b"moov")
    if moov is None:
        return None
    matrix, tracks = _IDENTITY, []
    for kind, start, stop in _boxes(handle, *moov):
        if kind == b"mvhd":
            handle.seek(start)
            matrix = _matrix(handle, start + (48 if handle.read(1) == b"\x01" else 36))
        elif kind == b"trak":
            tracks.append(_track(handle, start, stop))
    return matrix, tracks


def _iso_bmff(handle, end: int) -> tuple[int, int, int] | None:
    movie = _movie(handle, end)
    if movie is None:
        return None
    videos = [track for track in movie[1] if track.get("handler") == b"vide"]
    if len(videos) != 1 or videos[0].get("size") is None:
        return None
    width, height = videos[0]["size"]
    return width, height, quarter_turns(videos[0].get("matrix", _IDENTITY), movie[0])


# ------------------------------------------------------------------------------------------------------------ AVI

# codec tags (strf biCompression) that ffmpeg decodes as MPEG-4 part 2, the ones AVI files commonly carry
_MPEG4_PART2 = {
    b"FMP4", b"DIVX", b"DX50", b"XVID", b"MP4V", b"MP4S", b"M4S2", b"3IV2", b"UMP4", b"RMP4", b"SMP4", b"DM4V"
}  # fmt: skip


def _chunks(handle, start: int, end: int):
    """(id, list type or None, payload start, payload end) of the RIFF chunks between two file offsets; a LIST's
    payload starts after its type."""
    position = start
    while position + 8 <= end:
        handle.seek(position)
        header = handle.read(12)
        if len(header) < 8:
            return
        kind, size = struct.unpack("<4sI", header[:8])
        stop = min(position + 8 + size, end)
        if kind == b"LIST":
            if len(header) < 12:
                return
            yield kind, header[8:12], position + 12, stop
        else:
            yield kind, None, position + 8, stop
        position += 8 + size + (size & 1)  # chunks are padded to even sizes


def vol_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of the first MPEG-4 part 2 video object layer header in `data` (ISO/IEC 14496-2
    6.2.3); None when there is none, its shape is not rectangular, or it cannot be parsed."""
    at = 0
    while (at := data.find(b"\x00\x00\x01", at)) >= 0 and at + 3 < len(data):
        if 0x20 <= data[at + 3] <= 0x2F:  # video_object_layer_start_code
            break
        at += 3
    else:
        return None
    try:
        bits = _Bits(data[at + 4 :])
        bits.bits(9)  # random_accessible_vol, video_object_type_indication
        verid = 1
        if bits.bit():  # is_object_layer_identifier
            verid = bits.bits(4)
            bits.bits(3)  # video_object_layer_priority
        if bits.bits(4) == 0xF:  # aspect_ratio_info: extended
            bits.bits(16)  # par_width, par_height
        if bits.bit():  # vol_control_parameters
            bits.bits(3)  # chroma_format, low_delay
            if bits.bit():  # vbv_parameters
                bits.bits(79)  # bit rate, buffer size and occupancy with their markers
        shape = bits.bits(2)
        if shape == 3 and verid != 1:  # greyscale
            bits.bits(4)
        bits.bit()  # marker
        resolution = bits.bits(16)  # vop_time_increment_resolution
        bits.bit()  # marker
        if bits.bit():  # fixed_vop_rate
            bits.bits(max(1, (resolution - 1).bit_length()))  # fixed_vop_time_increment
        if shape != 0:  # not rectangular: no size here
            return None
        bits.bit()  # marker
        width = bits.bits(13)
        bits.bit()  # marker
        height = bits.bits(13)
    except IndexError:
        return None
    return (width, height) if width and height else None


def _avi(handle, end: int) -> tuple[int, int, int] | None:
    """(width, height, 0) of the one video stream of an AVI file when it is MPEG-4 part 2, from the VOL header
    in its codec data or its first frame; None otherwise."""
    handle.seek(0)
    head = handle.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"AVI ":
        return None
    end = min(end, 8 + struct.unpack("<I", head[4:8])[0])
    videos, movi = [], None  # (stream number, codec tag, codec data)
    for _, listed, start, stop in _chunks(handle, 12, end):
        if listed == b"hdrl":
            streams = [(s, e) for _, inner, s, e in _chunks(handle, start, stop) if inner == b"strl"]
            for number, (s, e) in enumerate(streams):
                parts = {k: (a, b) for k, _, a, b in _chunks(handle, s, e) if k in (b"strh", b"strf")}
                if b"strh" not in parts:
                    return None
                handle.seek(parts[b"strh"][0])
                if handle.read(4) != b"vids":
                    continue
                if b"strf" not in parts or parts[b"strf"][1] - parts[b"strf"][0] < 40:
                    return None
                a, b = parts[b"strf"]
                handle.seek(a)
                info = handle.read(min(b - a, 4096))  # BITMAPINFOHEADER (40 bytes), then codec data
                videos.append((number, info[16:20].upper(), info[40:]))
        elif listed == b"movi":
            movi = (start, stop)
            break
    if len(videos) != 1 or movi is None or videos[0][1] not in _MPEG4_PART2:
        return None
    number, _, codec_data = videos[0]
    size = vol_size(codec_data)
    if size is None:
        frames = {b"%02ddc" % number, b"%02ddb" % number}
        for kind, listed, start, stop in _chunks(handle, *movi):
            if listed is not None or kind not in frames:
                continue
            if start == stop:  # an empty (dropped) frame
                continue
            handle.seek(start)
            size = vol_size(handle.read(min(stop - start, 4096)))
            break
    return None if size is None else (*size, 0)


def mp4_quarter_turns(path: Path, track_id: int) -> int:
    """Quarter turns of the display matrix of track `track_id` of an MP4/MOV file (the movie's matrix composed
    with the track's), for a file with several video tracks whose chosen one PyAV names; 0 when the track or its
    header is not found."""
    with open(path, "rb") as handle:
        movie = _movie(handle, os.fstat(handle.fileno()).st_size)
    if movie is None:
        return 0
    matrices = [track["matrix"] for track in movie[1] if track.get("id") == track_id and "matrix" in track]
    return quarter_turns(matrices[-1], movie[0]) if matrices else 0


def video_header(path: Path) -> tuple[int, int, int] | None:
    """(width, height, quarter turns) of the one video stream of an MP4/MOV file with H.264 or an AVI file with
    MPEG-4 part 2, from its headers: the size the decoder will output (before turning) and the turns that make it
    upright. None for other containers and codecs, several video streams, a header this does not understand, or
    a file it cannot read."""
    try:
        with open(path, "rb") as handle:
            end = os.fstat(handle.fileno()).st_size
            first = handle.read(8)
            if first[:4] == b"RIFF":
                found = _avi(handle, end)
            elif first[4:8] in _ISO_BMFF_FIRST:
                found = _iso_bmff(handle, end)
            else:
                return None
    except (OSError, struct.error):
        return None
    if found is None or not found[0] or not found[1]:
        return None
    return found

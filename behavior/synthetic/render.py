"""Rendering: a `ClipSpec` becomes uint8 (T, H, W, 3) frames, with no randomness of its own beyond the spec's
render seed: the group's scene panorama, the chair, distractors, the figure, the occluder, camera pan and
shake, and pixel noise."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache
from statistics import NormalDist

import numpy as np
from PIL import Image, ImageDraw

from behavior.synthetic.plan import panorama_extra
from behavior.synthetic.pose import Body, Pose, body_of, compute_pose, skeleton
from behavior.synthetic.spec import EMPTY, RGB, ClipSpec, Distractor, GroupLook


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Smooth random field float32 (height, width) in about -1..1, features about `cell` pixels wide."""
    grid = rng.uniform(-1, 1, (max(2, int(height / cell) + 2), max(2, int(width / cell) + 2))).astype(
        np.float32
    )
    return np.asarray(Image.fromarray(grid, mode="F").resize((width, height), Image.BICUBIC))


def _wall_texture(
    rng: np.random.Generator, look: GroupLook, height: int, width: int, amp: float
) -> np.ndarray:
    """float32 (height, width, 1 or 3) offsets added to the wall colour."""
    ys = np.linspace(-1, 1, height, dtype=np.float32)[:, None, None]
    if look.wall_texture == "solid":
        return np.zeros((1, 1, 1), np.float32)
    if look.wall_texture == "gradient":
        return ys * rng.uniform(-1, 1, 3).astype(np.float32) * amp
    if look.wall_texture == "stripes":
        period = rng.uniform(6, 24)
        xs = np.arange(width, dtype=np.float32)[None, :, None]
        stripes = (np.sin(2 * np.pi * xs / period) > rng.uniform(-0.5, 0.5)).astype(np.float32) - 0.5
        return stripes * rng.uniform(-1, 1, 3).astype(np.float32) * amp * 1.4
    blobs = np.stack([_smooth_noise(rng, height, width, rng.uniform(10, 30)) for _ in range(3)], -1)
    return blobs * amp


def _floor_texture(
    rng: np.random.Generator, look: GroupLook, height: int, width: int, amp: float
) -> np.ndarray:
    """float32 (height, width, 1 or 3) offsets added to the floor colour."""
    if look.floor_texture == "planks":
        plank = rng.uniform(4, 10)
        rows = (np.arange(height) // plank).astype(np.int64)
        shade = rng.uniform(-1, 1, rows.max() + 1).astype(np.float32)[rows]
        return shade[:, None, None] * np.ones((1, width, 1), np.float32) * amp
    if look.floor_texture == "tiles":
        tile = int(rng.uniform(8, 20))
        checker = ((np.arange(height)[:, None] // tile + np.arange(width)[None, :] // tile) % 2).astype(
            np.float32
        )
        return (checker[..., None] - 0.5) * amp * 1.2
    return _smooth_noise(rng, height, width, rng.uniform(8, 24))[..., None] * amp


@lru_cache(maxsize=8)
def _panorama(look: GroupLook, size: tuple[int, int], margin: int) -> np.ndarray:
    """The group's scene, uint8 (H + 2 margin, W + 2 margin + extra, 3); row r is world row r - margin."""
    width, height = size
    rows, cols = height + 2 * margin, width + 2 * margin + panorama_extra(size)
    rng = np.random.default_rng(look.texture_seed)
    horizon = int(look.horizon_frac * height) + margin
    amp = {"plain": 18.0, "textured": 22.0, "busy": 32.0}[look.background]
    image = np.empty((rows, cols, 3), np.float32)
    image[:horizon] = np.asarray(look.wall, np.float32) + _wall_texture(rng, look, horizon, cols, amp)
    if look.background == "plain":
        image[horizon:] = np.asarray(look.floor, np.float32) + _wall_texture(
            rng, look, rows - horizon, cols, amp
        )
    else:
        image[horizon:] = np.asarray(look.floor, np.float32) + _floor_texture(
            rng, look, rows - horizon, cols, amp
        )
    if look.background == "busy":
        _add_clutter(rng, image, horizon, look.wall)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _add_clutter(rng: np.random.Generator, image: np.ndarray, horizon: int, wall: RGB) -> None:
    """Frames, shelves and posters on the wall, in place: the busy scenes of `hard`. Their colours stay
    within 60 levels of the wall's, so the figure keeps most of its contrast."""
    rows, cols = image.shape[:2]
    for _ in range(int(cols / rows * 4)):
        h, w = int(rng.uniform(0.08, 0.35) * rows), int(rng.uniform(0.05, 0.3) * rows)
        y, x = int(rng.uniform(0, max(1, horizon - h))), int(rng.uniform(0, cols - w))
        color = np.asarray(wall, np.float32) + rng.uniform(-60, 60, 3).astype(np.float32)
        image[y : y + h, x : x + w] = 0.3 * image[y : y + h, x : x + w] + 0.7 * color


def _shade(color: RGB, factor: float) -> RGB:
    return tuple(int(c * factor) for c in color)


def _limb(draw: ImageDraw.ImageDraw, points: np.ndarray, colors: tuple[RGB, RGB], width: int) -> None:
    """Two segments (3, 2) with rounded joints and ends; the second segment may have its own colour."""
    r = width / 2
    a, b, c = (tuple(p) for p in points)
    draw.line([a, b], fill=colors[0], width=width)
    draw.line([b, c], fill=colors[1], width=width)
    for (x, y), color in ((a, colors[0]), (b, colors[0]), (c, colors[1])):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=color)


def _draw_figure(
    draw: ImageDraw.ImageDraw,
    joints: dict[str, np.ndarray],
    t: int,
    body: Body,
    look: GroupLook,
    pose: Pose,
    offset: np.ndarray,
) -> None:
    """The figure at frame t; `offset` (2,) maps world to canvas pixels."""

    def at(name: str) -> np.ndarray:
        return joints[name][t] + offset

    def leg(i: int, factor: float) -> None:
        points = at(f"leg{i}")
        shin_color = look.skin if look.shorts else look.pants
        _limb(draw, points, (_shade(look.pants, factor), _shade(shin_color, factor)), body.leg_w)
        ankle = points[2]
        if pose.view == "side":
            toe = ankle + np.array([pose.facing * 0.08 * body.height, 0.0])
        else:
            toe = ankle + np.array([(i - 0.5) * 0.06 * body.height, 0.0])
        draw.line([tuple(ankle), tuple(toe)], fill=_shade(look.shoes, factor), width=max(2, body.leg_w - 1))

    def arm(i: int, factor: float) -> None:
        points = at(f"arm{i}")
        forearm_color = look.shirt if look.long_sleeves else look.skin
        _limb(draw, points, (_shade(look.shirt, factor), _shade(forearm_color, factor)), body.arm_w)
        x, y = points[2]
        r = body.arm_w * 0.7
        draw.ellipse([x - r, y - r, x + r, y + r], fill=_shade(look.skin, factor))

    def torso_and_head() -> None:
        draw.polygon([tuple(p) for p in at("torso")], fill=look.shirt)
        x, y = at("head")
        r = body.head_r
        draw.ellipse([x - r, y - r, x + r, y + r], fill=look.skin)
        draw.chord([x - r, y - r, x + r, y + r], start=180, end=360, fill=look.hair)

    if pose.view == "side":  # far side darker and behind the torso
        arm(1, 0.7)
        leg(1, 0.7)
        torso_and_head()
        leg(0, 1.0)
        arm(0, 1.0)
    else:
        leg(0, 1.0)
        leg(1, 1.0)
        torso_and_head()
        arm(0, 1.0)
        arm(1, 1.0)


def _draw_chair(draw: ImageDraw.ImageDraw, spec: ClipSpec, body: Body, offset: np.ndarray) -> None:
    """A chair (or stool) whose seat is at knee height, its back on the side away from `chair_facing`."""
    d, color = spec.chair_facing, spec.look.chair
    x = spec.chair_x + offset[0]
    ground = spec.ground_y + offset[1]
    seat_y = ground - body.shin
    thick = max(2, round(0.04 * body.height))
    leg_w = max(2, round(0.03 * body.height))
    front, back = x + d * 0.5 * body.thigh, x - d * 0.45 * body.thigh
    x0, x1 = min(front, back), max(front, back)
    draw.rectangle([x0, seat_y, x1, seat_y + thick], fill=color)
    for leg_x in (front, back):
        draw.line([(leg_x, seat_y), (leg_x, ground)], fill=_shade(color, 0.8), width=leg_w)
    if spec.look.chair_back:
        draw.line(
            [(back, seat_y), (back - d * 0.03 * body.height, seat_y - 0.32 * body.height)],
            fill=color,
            width=leg_w + 1,
        )


def _draw_distractor_at(draw: ImageDraw.ImageDraw, item: Distractor, t: float, offset: np.ndarray) -> None:
    x = item.x0 + item.vx * t + offset[0]
    y = item.y0 - item.hop_px * abs(math.sin(math.pi * item.hop_hz * t)) + offset[1]
    r = item.size_px
    if item.shape == "ball":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=item.color)
    else:
        draw.rectangle([x - r, y - r, x + r, y + r], fill=item.color, outline=_shade(item.color, 0.6))


def _camera_shake(spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    """Integer offsets int (T, 2) within +-shake_px: a slow wobble plus jitter."""
    if spec.shake_px == 0:
        return np.zeros((spec.num_frames, 2), np.int64)
    t = np.arange(spec.num_frames) / spec.fps
    freq, phase = rng.uniform(0.5, 2.0, 2), rng.uniform(0, 2 * np.pi, 2)
    wobble = np.sin(2 * np.pi * freq * t[:, None] + phase)
    jitter = rng.uniform(-1, 1, (spec.num_frames, 2))
    return np.clip(
        np.round(spec.shake_px * (0.65 * wobble + 0.35 * jitter)), -spec.shake_px, spec.shake_px
    ).astype(np.int64)


def render_clip(spec: ClipSpec) -> np.ndarray:
    """The clip's frames, uint8 (T, H, W, 3) RGB. stand_up is the sit_down clip of the same spec reversed; an
    `EMPTY` clip is the scene, distractors and all, with no figure."""
    if spec.label == "stand_up":
        return np.ascontiguousarray(render_clip(replace(spec, label="sit_down"))[::-1])
    width, height = spec.size
    margin = spec.shake_px
    body = body_of(spec.look, spec.scale, height)
    pose = compute_pose(spec)
    joints = skeleton(pose, body)
    panorama = _panorama(spec.look, spec.size, margin)
    rng = np.random.default_rng(spec.render_seed)
    shake = _camera_shake(spec, rng)
    pan_dir = spec.motion.facing if spec.label in ("walk", "run") else 0
    frames = np.empty((spec.num_frames, height, width, 3), np.uint8)
    for t in range(spec.num_frames):
        seconds = t / spec.fps
        camera = round(spec.camera_x0 + pan_dir * spec.pan_px_s * seconds)  # world x of the left edge
        camera = min(max(camera, 0), panorama.shape[1] - width - 2 * margin)
        canvas = Image.fromarray(np.ascontiguousarray(panorama[:, camera : camera + width + 2 * margin]))
        draw = ImageDraw.Draw(canvas)
        offset = np.array([margin - camera, margin], np.float64)  # world -> canvas pixels
        if spec.chair_x is not None:
            _draw_chair(draw, spec, body, offset)
        for item in spec.distractors:
            if not item.in_front:
                _draw_distractor_at(draw, item, seconds, offset)
        if spec.label != EMPTY:
            _draw_figure(draw, joints, t, body, spec.look, pose, offset)
        for item in spec.distractors:
            if item.in_front:
                _draw_distractor_at(draw, item, seconds, offset)
        if spec.occluder is not None:
            o = spec.occluder
            draw.rectangle(
                [o.x0 + offset[0], o.y0 + offset[1], o.x1 + offset[0], o.y1 + offset[1]], fill=o.color
            )
        dx, dy = shake[t]
        frames[t] = np.asarray(canvas)[margin + dy : margin + dy + height, margin + dx : margin + dx + width]
    if spec.noise_std > 0:
        frames = _add_noise(frames, spec.noise_std, rng)
    return frames


@lru_cache(maxsize=4)
def _noise_table(std: float) -> np.ndarray:
    """int16 (256,): Gaussian quantiles at the centres of 256 equal-probability bins, times `std`."""
    quantiles = [NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)]
    return np.round(np.asarray(quantiles) * std).astype(np.int16)


def _add_noise(frames: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """frames plus Gaussian noise (quantised to 256 levels: random bytes through a table, three times
    cheaper than drawing normals), uint8 like the input."""
    uniform = np.frombuffer(rng.bytes(frames.size), np.uint8).reshape(frames.shape)
    return np.clip(frames + _noise_table(std)[uniform], 0, 255).astype(np.uint8)

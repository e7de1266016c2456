"""Planning a data set: every random choice of each synthetic clip, drawn into a `ClipSpec` from a seed derived
from (seed, class, group, clip), so workers never change the result. `plan_dataset` draws the specs of a whole
data set; `draw_group_look` the actor and scene of a group, shared by every class.

Over 400 lines because it holds the motion tables of every behaviour, known and unseen, beside the draws that
use them: one place to read what a clip of each behaviour can look like."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from behavior.errors import UsageError
from behavior.synthetic.pose import body_of, figure_height
from behavior.synthetic.spec import (
    BEHAVIOURS,
    CLASSES,
    CLIPS_PER_GROUP,
    CONTAINERS,
    DIFFICULTIES,
    LEVELS,
    MAX_SECONDS,
    MIN_SECONDS,
    RGB,
    TEST_GROUP_FRACTION,
    UNSEEN,
    ClipSpec,
    Distractor,
    GroupLook,
    Motion,
    Occluder,
)

# Skin tones and hair colours to draw from; clothing colours are drawn from the whole colour space.
_SKIN = ((255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 60, 40))
_HAIR = ((20, 20, 20), (60, 40, 25), (110, 75, 40), (200, 170, 100), (150, 150, 150), (140, 50, 20))


def clip_rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def _hsv_color(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> np.ndarray:
    """A random RGB colour, float (3,) in 0..255."""
    h, s, v = rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val)
    i, f = int(h * 6) % 6, h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb) * 255.0


def _contrasting(
    draw_color, backgrounds: Sequence[np.ndarray], contrast: tuple[float, float], rng: np.random.Generator
) -> RGB:
    """A colour from `draw_color()` whose RGB distance to the nearest background colour is at least
    contrast[0] (redrawn up to 40 times, else the best one), and at most contrast[1] (blended towards that
    background colour, to a distance drawn uniformly in the range)."""
    lo, hi = contrast

    def distance(color: np.ndarray) -> float:
        return min(float(np.linalg.norm(color - b)) for b in backgrounds)

    best = draw_color()
    for _ in range(40):
        if distance(best) >= lo:
            break
        candidate = draw_color()
        if distance(candidate) > distance(best):
            best = candidate
    if distance(best) > hi:
        nearest = min(backgrounds, key=lambda b: float(np.linalg.norm(best - b)))
        best = nearest + (best - nearest) * (rng.uniform(lo, hi) / distance(best))
    return tuple(int(c) for c in np.clip(np.round(best), 0, 255))


def draw_group_look(group: int, difficulty: str, seed: int = 0) -> GroupLook:
    """The actor and scene look of group `group` of every class, from (seed, group) alone."""
    rng = clip_rng(seed, 1, group)
    level = LEVELS[difficulty]
    wall = _hsv_color(rng, (0.0, 0.6), (0.25, 0.95))
    floor = _hsv_color(rng, (0.0, 0.6), (0.2, 0.85))
    if level.background == "plain":
        floor = wall if rng.uniform() < 0.5 else np.clip(wall + rng.uniform(-25, 25, 3), 0, 255)
        wall_texture = str(rng.choice(["solid", "gradient"]))
    else:
        wall_texture = str(rng.choice(["gradient", "blobs", "stripes"]))
    backgrounds = (wall, floor)

    def visible(draw_color) -> RGB:
        return _contrasting(draw_color, backgrounds, level.contrast, rng)

    skin = visible(lambda: np.array(_SKIN[rng.integers(len(_SKIN))], dtype=np.float64))
    shirt = visible(lambda: _hsv_color(rng, (0.3, 1.0), (0.2, 0.95)))
    pants = visible(lambda: _hsv_color(rng, (0.1, 0.9), (0.1, 0.8)))
    num_distractor_colors = 3
    return GroupLook(
        height_frac=float(rng.uniform(0.55, 0.72)),
        limb_scale=float(rng.uniform(0.9, 1.2)),
        build=float(rng.uniform(0.85, 1.2)),
        leg_ratio=float(rng.uniform(0.92, 1.08)),
        skin=skin,
        hair=tuple(int(c) for c in _HAIR[rng.integers(len(_HAIR))]),
        shirt=shirt,
        pants=pants,
        shoes=tuple(int(c) for c in _hsv_color(rng, (0.0, 0.5), (0.05, 0.35))),
        long_sleeves=bool(rng.uniform() < 0.5),
        shorts=bool(rng.uniform() < 0.25),
        background=level.background,
        wall=tuple(int(c) for c in wall),
        floor=tuple(int(c) for c in floor),
        wall_texture=wall_texture,
        floor_texture=str(rng.choice(["blobs", "planks", "tiles"])),
        horizon_frac=float(rng.uniform(0.45, 0.7)),
        texture_seed=int(rng.integers(2**31)),
        chair=tuple(int(c) for c in _hsv_color(rng, (0.2, 0.8), (0.2, 0.7))),
        chair_back=bool(rng.uniform() < 0.7),
        distractor_shape=str(rng.choice(["ball", "box"])),
        distractor_colors=tuple(
            tuple(int(c) for c in _hsv_color(rng, (0.4, 1.0), (0.3, 1.0)))
            for _ in range(num_distractor_colors)
        ),
        occluder_kind=str(rng.choice(["pole", "box"])),
        occluder=visible(lambda: _hsv_color(rng, (0.0, 0.6), (0.1, 0.7))),
    )


def _draw_motion(rng: np.random.Generator, label: str) -> Motion:
    facing = int(rng.choice([-1, 1]))
    if label == "walk":
        return Motion(
            facing=facing,
            cadence_hz=rng.uniform(0.8, 1.3),
            phase=rng.uniform(0, 2 * np.pi),
            swing_deg=rng.uniform(24, 32),
            knee_min_deg=rng.uniform(2, 6),
            knee_amp_deg=rng.uniform(25, 40),
            arm_swing_deg=rng.uniform(20, 30),
            arm_offset_deg=rng.uniform(-3, 3),
            elbow_deg=rng.uniform(10, 25),
            lean_deg=rng.uniform(0, 5),
            speed=rng.uniform(0.6, 0.85),
        )
    if label == "run":
        return Motion(
            facing=facing,
            cadence_hz=rng.uniform(1.6, 2.6),
            phase=rng.uniform(0, 2 * np.pi),
            swing_deg=rng.uniform(38, 50),
            knee_min_deg=rng.uniform(12, 20),
            knee_amp_deg=rng.uniform(60, 90),
            arm_swing_deg=rng.uniform(30, 45),
            arm_offset_deg=rng.uniform(5, 15),
            elbow_deg=rng.uniform(80, 100),
            lean_deg=rng.uniform(10, 20),
            bounce=rng.uniform(0.03, 0.06),
            speed=rng.uniform(1.5, 2.2),
        )
    if label == "wave":
        front = rng.uniform() < 0.6
        return Motion(
            facing=facing,
            view="front" if front else "side",
            phase=rng.uniform(0, 2 * np.pi),
            wave_arm=str(rng.choice(["left", "right"] if front else ["near", "far"])),
            wave_hz=rng.uniform(1.5, 3.0),
            wave_amp_deg=rng.uniform(30, 40),
            raise_deg=rng.uniform(120, 160) if front else rng.uniform(100, 140),
            sway_px=rng.uniform(0.5, 2.5),
            sway_hz=rng.uniform(0.2, 0.5),
            elbow_deg=rng.uniform(5, 15),
            lean_deg=rng.uniform(-2, 2),
        )
    if label == "jump":
        return Motion(
            facing=facing,
            phase=rng.uniform(0, 2 * np.pi),
            jump_hz=rng.uniform(0.9, 1.5),
            jump_height=rng.uniform(0.12, 0.25),
            crouch_deg=rng.uniform(30, 55),
        )
    if label == "bend":
        return Motion(facing=facing, bend_deg=rng.uniform(65, 95), elbow_deg=rng.uniform(5, 15))
    if label == "clap":
        return Motion(
            view="front",
            phase=rng.uniform(0, 2 * np.pi),
            clap_hz=rng.uniform(1.8, 3.2),
            sway_px=rng.uniform(0.3, 1.5),
            sway_hz=rng.uniform(0.2, 0.5),
            lean_deg=rng.uniform(-2, 2),
        )
    if label in ("idle", "empty"):
        return Motion(
            facing=facing,
            view="front" if rng.uniform() < 0.5 else "side",
            phase=rng.uniform(0, 2 * np.pi),
            sway_px=rng.uniform(0.5, 2.5),
            sway_hz=rng.uniform(0.1, 0.4),
            elbow_deg=rng.uniform(5, 20),
            lean_deg=rng.uniform(-2, 3),
        )
    # sit_down; stand_up is its time reversal and draws the same parameters
    return Motion(
        facing=facing,
        sit_lean_deg=rng.uniform(25, 40),
        elbow_deg=rng.uniform(10, 20),
        arm_swing_deg=rng.uniform(15, 30),
    )


def _draw_sit_timing(rng: np.random.Generator, motion: Motion, seconds: float) -> Motion:
    """Standing hold, motion, seated hold: the two holds come from one distribution (the split point of the
    remaining time is uniform and symmetric), so how long a clip stands or sits tells nothing of its class."""
    duration = min(rng.uniform(1.0, 2.0), 0.7 * seconds)
    start = (seconds - duration) * rng.uniform(0.1, 0.9)
    return replace(motion, sit_start_s=float(start), sit_duration_s=float(duration))


def _draw_bend_timing(rng: np.random.Generator, motion: Motion, seconds: float) -> Motion:
    """Upright hold, down and up, upright hold: the motion takes 1 to 2 s (at most 80% of the clip)."""
    duration = min(rng.uniform(1.0, 2.0), 0.8 * seconds)
    start = (seconds - duration) * rng.uniform(0.1, 0.9)
    return replace(motion, bend_start_s=float(start), bend_duration_s=float(duration))


def draw_clip_spec(
    label: str,
    group: int,
    clip: int,
    difficulty: str = "medium",
    seed: int = 0,
    size: tuple[int, int] = (160, 120),
    fps: int = 15,
    split: str = "train",
) -> ClipSpec:
    """All random choices of one clip, from (seed, class, group, clip) alone. `label` is one of the five classes,
    or a behaviour outside them (`UNSEEN`, or `EMPTY`: the scene with no one in it)."""
    if label not in BEHAVIOURS:
        raise UsageError(f"unknown behaviour {label!r}; valid: {', '.join(BEHAVIOURS)}")
    if difficulty not in DIFFICULTIES:
        raise UsageError(f"difficulty={difficulty!r} is unknown; valid: {', '.join(DIFFICULTIES)}")
    width, height = size
    level = LEVELS[difficulty]
    look = draw_group_look(group, difficulty, seed)
    rng = clip_rng(seed, 2, BEHAVIOURS.index(label), group, clip)
    behaviour = "sit_down" if label == "stand_up" else label
    num_frames = int(rng.integers(math.ceil(MIN_SECONDS * fps), math.floor(MAX_SECONDS * fps) + 1))
    seconds = num_frames / fps
    scale = float(rng.uniform(0.9, 1.1))
    fig_h = figure_height(look, scale, height)
    horizon = look.horizon_frac * height
    ground_lo = max(horizon + 0.05 * height, fig_h + 0.04 * height)
    ground_y = float(rng.uniform(min(ground_lo, 0.95 * height), 0.96 * height))
    motion = _draw_motion(rng, behaviour)
    if behaviour == "sit_down":
        motion = _draw_sit_timing(rng, motion, seconds)
    elif behaviour == "bend":
        motion = _draw_bend_timing(rng, motion, seconds)
    pano_extra = panorama_extra(size)
    pan, camera_x0 = 0.0, float(rng.uniform(0, pano_extra))
    if behaviour in ("walk", "run"):
        lo, hi = 0.22 * width, 0.78 * width  # the pelvis stays in this band: inside a square centre crop
        distance = motion.speed * fig_h * seconds  # world pixels covered
        travel = min(distance, (hi - lo) * rng.uniform(0.75, 1.0))  # of which the frame shows this much
        pan = (distance - travel) / seconds  # the camera follows with the rest
        pan_total = pan * seconds
        if motion.facing > 0:
            camera_x0 = float(rng.uniform(0, max(0.0, pano_extra - pan_total)))
            start_in_frame = rng.uniform(lo, hi - travel)
        else:
            camera_x0 = float(rng.uniform(min(pan_total, pano_extra), pano_extra))
            start_in_frame = rng.uniform(lo + travel, hi)
        start_x = camera_x0 + start_in_frame
        span = sorted((start_x, start_x + motion.facing * distance))
    elif behaviour == "sit_down":
        thigh = body_of(look, scale, height).thigh
        start_x = camera_x0 + rng.uniform(0.35, 0.65) * width + motion.facing * thigh / 2  # the feet
        span = sorted((start_x, start_x - motion.facing * thigh))  # feet to seat
    else:  # wave and the behaviours outside the five: in place
        start_x = camera_x0 + rng.uniform(0.35, 0.65) * width
        span = [start_x, start_x]
    chair_x, chair_facing = None, motion.facing
    if behaviour == "sit_down":
        chair_x = start_x - motion.facing * body_of(look, scale, height).thigh
    elif rng.uniform() < level.prop_chair_p:
        chair_x = camera_x0 + rng.uniform(0.1, 0.9) * width
        chair_facing = int(rng.choice([-1, 1]))
    distractors = tuple(
        _draw_distractor(rng, look, size, camera_x0, ground_y, seconds)
        for _ in range(int(rng.integers(level.min_distractors, level.max_distractors + 1)))
    )
    moves = behaviour in ("walk", "run")
    occluder = _draw_occluder(rng, look, span, moves, ground_y, fig_h) if level.occlusion else None
    shake = round(level.shake_px * height / 120)
    return ClipSpec(
        label=label,
        group=group,
        clip=clip,
        split=split,
        container=CONTAINERS[(group + clip) % 2],
        difficulty=difficulty,
        size=(width, height),
        fps=fps,
        num_frames=num_frames,
        look=look,
        scale=scale,
        ground_y=ground_y,
        start_x=float(start_x),
        pan_px_s=float(pan),
        camera_x0=float(camera_x0),
        motion=motion,
        chair_x=None if chair_x is None else float(chair_x),
        chair_facing=chair_facing,
        distractors=distractors,
        occluder=occluder,
        shake_px=shake,
        noise_std=level.noise_std,
        render_seed=int(rng.integers(2**31)),
    )


def _draw_distractor(
    rng: np.random.Generator,
    look: GroupLook,
    size: tuple[int, int],
    camera_x0: float,
    ground_y: float,
    seconds: float,
) -> Distractor:
    width, height = size
    shape = look.distractor_shape
    radius = rng.uniform(0.04, 0.08) * height
    vx = rng.choice([-1, 1]) * rng.uniform(0.15, 0.6) * width
    x0 = camera_x0 + rng.uniform(0.0, 1.0) * width - vx * seconds * rng.uniform(0.0, 0.5)
    if shape == "ball":
        y0 = ground_y - radius - rng.uniform(0, 0.1) * height
        hop, hop_hz = rng.uniform(0.05, 0.3) * height, rng.uniform(0.6, 1.8)
    else:
        y0 = rng.uniform(0.3 * height, ground_y - radius)
        hop, hop_hz = 0.0, 0.0
    color = look.distractor_colors[rng.integers(len(look.distractor_colors))]
    return Distractor(
        shape,
        color,
        float(radius),
        float(x0),
        float(y0),
        float(vx),
        float(hop),
        float(hop_hz),
        bool(rng.uniform() < 0.4),
    )


def _draw_occluder(
    rng: np.random.Generator,
    look: GroupLook,
    span: Sequence[float],
    moves: bool,
    ground_y: float,
    fig_h: float,
) -> Occluder:
    """A pole or a low box in front of the figure, covering about a quarter of it at most. `span` is the
    (min, max) world x of the pelvis over the clip: a walker or runner passes behind a pole inside it; a
    figure in place has the pole beside it, over an arm or a leg, and the box over its shins."""
    lo, hi = span
    if look.occluder_kind == "pole":
        half = rng.uniform(0.03, 0.05) * fig_h
        if moves:
            x = rng.uniform(lo, hi)
        else:
            gap = rng.uniform(0.1, 0.2) * fig_h
            x = lo - gap if rng.uniform() < 0.5 else hi + gap
        return Occluder(
            "pole",
            look.occluder,
            float(x - half),
            float(x + half),
            float(ground_y - 1.3 * fig_h),
            float(ground_y + 2),
        )
    half = rng.uniform(0.25, 0.45) * fig_h
    x = (lo + hi) / 2 + rng.uniform(-0.15, 0.15) * fig_h
    top = ground_y - rng.uniform(0.12, 0.25) * fig_h
    return Occluder("box", look.occluder, float(x - half), float(x + half), float(top), float(ground_y + 2))


def num_groups_for(clips_per_class: int) -> int:
    return max(2, math.ceil(clips_per_class / CLIPS_PER_GROUP))


def num_test_groups(num_groups: int) -> int:
    """Groups held out for testing: the first ~28%, at least one, and at least one group left to train."""
    return max(1, min(num_groups - 1, round(num_groups * TEST_GROUP_FRACTION)))


def plan_dataset(
    clips_per_class: int = 100,
    difficulty: str = "medium",
    seed: int = 0,
    size: tuple[int, int] = (160, 120),
    fps: int = 15,
) -> list[ClipSpec]:
    """One spec per video, ordered by class, group and clip. Groups get `CLIPS_PER_GROUP` clips (the last
    ones one fewer when the clips do not divide evenly); every class has at least two groups."""
    validate_settings(clips_per_class, difficulty, seed, size, fps, workers=1)
    size = (int(size[0]), int(size[1]))
    num_groups = num_groups_for(clips_per_class)
    held_out = num_test_groups(num_groups)
    base, extra = divmod(clips_per_class, num_groups)
    specs = []
    for label in CLASSES:
        for group in range(1, num_groups + 1):
            split = "test" if group <= held_out else "train"
            for clip in range(1, base + (1 if group <= extra else 0) + 1):
                specs.append(draw_clip_spec(label, group, clip, difficulty, seed, size, fps, split))
    return specs


def plan_unseen(
    clips_per_class: int = 100,
    difficulty: str = "medium",
    seed: int = 0,
    size: tuple[int, int] = (160, 120),
    fps: int = 15,
) -> list[ClipSpec]:
    """The unseen set that goes with `plan_dataset(clips_per_class, difficulty, seed)`: clips of the behaviours
    outside the five (`UNSEEN`), in the looks of that set's test groups (as many clips per group as its test
    groups have), so a model meets them in scenes it never trained on, like its test clips."""
    validate_settings(clips_per_class, difficulty, seed, size, fps, workers=1)
    size = (int(size[0]), int(size[1]))
    num_groups = num_groups_for(clips_per_class)
    base, extra = divmod(clips_per_class, num_groups)
    return [
        draw_clip_spec(label, group, clip, difficulty, seed, size, fps, split="unseen")
        for label in UNSEEN
        for group in range(1, num_test_groups(num_groups) + 1)
        for clip in range(1, base + (1 if group <= extra else 0) + 1)
    ]


def validate_settings(clips_per_class, difficulty, seed, size, fps, workers) -> None:
    if difficulty not in DIFFICULTIES:
        raise UsageError(f"difficulty={difficulty!r} is unknown; valid: {', '.join(DIFFICULTIES)}")
    if not isinstance(clips_per_class, int) or isinstance(clips_per_class, bool) or clips_per_class < 2:
        raise UsageError(
            f"clips_per_class={clips_per_class!r} is invalid; valid: an integer >= 2 (each class "
            "needs one test and one train group)"
        )
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise UsageError(f"seed={seed!r} is invalid; valid: an integer >= 0")
    if len(size) != 2 or any(not isinstance(s, int) or s < 32 or s % 2 for s in size):
        raise UsageError(f"size={size!r} is invalid; valid: (width, height), even integers >= 32")
    if not isinstance(fps, int) or not 8 <= fps <= 60:
        raise UsageError(f"fps={fps!r} is invalid; valid: an integer from 8 to 60")
    if not isinstance(workers, int) or workers < 1:
        raise UsageError(f"workers={workers!r} is invalid; valid: an integer >= 1")


def panorama_extra(size: tuple[int, int]) -> int:
    """Columns of background beyond one frame: room for the longest camera pan of a run."""
    return 7 * size[1]

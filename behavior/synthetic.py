"""The embedded data set: five behaviours of procedurally drawn figures, written as real encoded videos.

`generate_dataset(out)` writes a UCF101-style tree that every other command reads like the real thing:

    OUT/videos/<class>/v_<ClassCamel>_gGG_cCC.<mp4|avi>
    OUT/splits/classInd.txt  trainlist01.txt  testlist01.txt

Classes: walk, run, wave, sit_down, stand_up. A *group* (UCF101's gGG) is one actor and scene look: body
size and proportions, clothing colours, background, distractor and occluder look. Group gGG has the same look
in every class (as in KTH, every actor performs every behaviour), so a look tells nothing about the class and
a model cannot score by remembering scenes. Clips of a group vary position, speed, phase, direction, camera
position and pan, and length (1.5 to 4 s). Groups 1 to ~28% are the test split in every class (UCF101
split 1 holds out groups 1-7 of 25), so no look is in both splits.

Drawing and rendering are separate: `plan_dataset` draws one `ClipSpec` per video (every random choice of
the clip, from a seed derived from (seed, class, group, clip), so workers never change the result), and
`render_clip(spec)` turns a spec into uint8 (T, H, W, 3) frames with no randomness of its own.

What makes the classes learnable and honest:
- every look, colour, size, length and scene setting is drawn from the same distribution for every class;
- walk and run differ in pose (run: forward lean, bent pumping arms, larger leg swing, strong knee bend,
  bounce, faster cadence) and in world speed (2-3x; the camera pans to keep a fast figure in frame);
- wave is a standing figure, one forearm swinging side to side above the shoulder;
- stand_up is exactly sit_down played backwards (`render_clip` renders the sit_down clip of the same spec,
  distractors, shake and noise included, and reverses it), with start and end holds drawn from one
  distribution, so only the order of the frames tells the two apart.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from statistics import NormalDist

import numpy as np
from PIL import Image, ImageDraw

from behavior.video import write_video

CLASSES = ("walk", "run", "wave", "sit_down", "stand_up")
DIFFICULTIES = ("easy", "medium", "hard")
CLIPS_PER_GROUP = 4  # UCF101 has 4-7 clips per group; 100 clips per class -> 25 groups, as in UCF101
TEST_GROUP_FRACTION = 7 / 25  # UCF101 split 1: groups 1-7 of 25 are the test set
MIN_SECONDS, MAX_SECONDS = 1.5, 4.0  # clip length, uniform in frames over this range
CONTAINERS = ("mp4", "avi")  # H.264 in MP4 and MPEG-4 part 2 in AVI, alternating within each group
# (codec, options) per container. Quality is high enough that 3-px limbs stay sharp. x264 runs the
# "superfast" preset on one thread: with the libx264 that the PyAV 18 wheels bundle, the presets from
# "veryfast" on (mb-tree rate control, lookahead) read uninitialised memory, so the same frames encode to
# different pictures from run to run (checked with MALLOC_PERTURB_), and the same seed must give the same data.

@dataclass(frozen=True)
class SceneLevel:
    """What one difficulty puts into the scene."""

    background: str  # plain | textured | busy
    min_distractors: int
    max_distractors: int
    shake_px: int  # camera shake amplitude in pixels (at 120 px frame height)
    noise_std: float  # Gaussian pixel noise, in 0..255 levels
    occlusion: bool  # an occluder (pole or box) in front of the figure
    prop_chair_p: float  # chance of a chair in the scene of walk, run and wave, so a chair alone is no cue
    contrast: tuple[float, float]  # RGB distance of clothing to the background colours (min, max)


LEVELS = {
    "easy": SceneLevel("plain", 0, 0, 0, 0.0, False, 0.0, (110.0, 260.0)),
    "medium": SceneLevel("textured", 1, 1, 1, 3.0, False, 0.5, (90.0, 260.0)),
    "hard": SceneLevel("busy", 2, 3, 3, 7.0, True, 0.5, (65.0, 110.0)),
}

RGB = tuple[int, int, int]

# Skin tones and hair colours to draw from; clothing colours are drawn from the whole colour space.
_SKIN = ((255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 60, 40))
_HAIR = ((20, 20, 20), (60, 40, 25), (110, 75, 40), (200, 170, 100), (150, 150, 150), (140, 50, 20))


@dataclass(frozen=True)
class GroupLook:
    """One actor and scene (gGG): shared by the clips of group GG in every class, never by two groups."""

    height_frac: float  # standing figure height / frame height, before the clip's own scale
    limb_scale: float  # limb thickness relative to the default
    build: float  # torso width relative to the default
    leg_ratio: float  # leg length relative to the default (the torso takes up the difference)
    skin: RGB
    hair: RGB
    shirt: RGB
    pants: RGB
    shoes: RGB
    long_sleeves: bool
    shorts: bool
    background: str  # plain | textured | busy
    wall: RGB
    floor: RGB
    wall_texture: str  # gradient | blobs | stripes (plain: solid | gradient)
    floor_texture: str  # blobs | planks | tiles
    horizon_frac: float  # where the wall meets the floor, as a fraction of the frame height
    texture_seed: int
    chair: RGB
    chair_back: bool
    distractor_shape: str  # ball | box
    distractor_colors: tuple[RGB, ...]
    occluder_kind: str  # pole | box
    occluder: RGB


@dataclass(frozen=True)
class Motion:
    """The behaviour's own parameters; the fields a class does not use keep their defaults."""

    facing: int = 1  # +1: faces / moves to the right, -1: to the left
    view: str = "side"  # side | front (wave only)
    cadence_hz: float = 1.0  # stride cycles per second (walk, run)
    phase: float = 0.0  # radians, start of the stride or wave cycle
    swing_deg: float = 25.0  # thigh swing amplitude
    knee_min_deg: float = 3.0
    knee_amp_deg: float = 30.0  # extra knee bend while the leg swings forward
    arm_swing_deg: float = 20.0
    arm_offset_deg: float = 0.0
    elbow_deg: float = 15.0
    lean_deg: float = 0.0  # forward torso lean
    bounce: float = 0.0  # vertical bounce, fraction of the figure height
    speed: float = 0.0  # world speed, figure heights per second
    wave_arm: str = "right"  # left | right (front view) or near | far (side view)
    wave_hz: float = 2.0
    wave_amp_deg: float = 35.0
    raise_deg: float = 140.0  # upper arm of the waving arm, from hanging down
    sway_px: float = 0.0
    sway_hz: float = 0.3
    sit_start_s: float = 0.0  # sit_down: end of the standing hold
    sit_duration_s: float = 1.2  # sit_down: standing to seated
    sit_lean_deg: float = 30.0  # sit_down: largest forward lean during the motion


@dataclass(frozen=True)
class Distractor:
    """An object moving on its own path, in world pixels."""

    shape: str  # ball | box
    color: RGB
    size_px: float  # radius (ball) or half side (box)
    x0: float
    y0: float
    vx: float  # px/s
    hop_px: float  # ball: bounce height; box: 0
    hop_hz: float
    in_front: bool  # drawn over the figure


@dataclass(frozen=True)
class Occluder:
    kind: str  # pole | box
    color: RGB
    x0: float  # world pixels, left edge
    x1: float
    y0: float  # top
    y1: float  # bottom


@dataclass(frozen=True)
class ClipSpec:
    """Every random choice of one clip; `render_clip` draws nothing random of its own."""

    label: str
    group: int  # 1-based, as gGG
    clip: int  # 1-based, as cCC
    split: str  # train | test
    container: str  # mp4 | avi
    difficulty: str
    size: tuple[int, int]  # (W, H) of the frames
    fps: int
    num_frames: int
    look: GroupLook
    scale: float  # the clip's figure size relative to the group's (distance to the camera)
    ground_y: float  # frame row of the feet
    start_x: float  # world x of the figure (walk, run, wave) or of its feet (sit_down)
    pan_px_s: float  # camera pan speed, in the direction of travel
    camera_x0: float  # world x of the frame's left edge at t = 0
    motion: Motion
    chair_x: float | None  # world x of the seat centre, or None for no chair
    chair_facing: int
    distractors: tuple[Distractor, ...]
    occluder: Occluder | None
    shake_px: int
    noise_std: float
    render_seed: int  # shake and noise

    @property
    def name(self) -> str:
        """File name, e.g. v_SitDown_g03_c02.avi."""
        camel = "".join(part.capitalize() for part in self.label.split("_"))
        return f"v_{camel}_g{self.group:02d}_c{self.clip:02d}.{self.container}"

    @property
    def relpath(self) -> str:
        """Path relative to the videos folder, e.g. sit_down/v_SitDown_g03_c02.avi."""
        return f"{self.label}/{self.name}"


@dataclass
class SynthReport:
    """What `generate_dataset` wrote."""

    root: Path  # the videos folder: the data root to pass on
    splits_dir: Path  # classInd.txt, trainlist01.txt, testlist01.txt
    num_videos: int
    counts: dict[str, dict[str, int]]  # class -> {"train": n, "test": n}
    num_frames: int  # frames in all videos together
    seconds: float  # wall time of the generation
    difficulty: str
    seed: int
    size: tuple[int, int]
    fps: int
    containers: dict[str, int] = field(default_factory=dict)  # extension -> videos

    def summary(self) -> str:
        """Human-readable counts per class and split, time, and the two paths to pass on."""
        width = max(len(c) for c in self.counts)
        lines = [f"synthetic behaviours: {self.num_videos} videos, {self.num_frames} frames, "
                 f"{self.size[0]}x{self.size[1]} at {self.fps} fps, difficulty {self.difficulty}, seed {self.seed}",
                 f"  {'class':<{width}}  train  test"]
        for name, count in self.counts.items():
            lines.append(f"  {name:<{width}}  {count['train']:5d}  {count['test']:4d}")
        total_train = sum(c["train"] for c in self.counts.values())
        total_test = sum(c["test"] for c in self.counts.values())
        lines.append(f"  {'total':<{width}}  {total_train:5d}  {total_test:4d}")
        containers = ", ".join(f"{n} .{ext}" for ext, n in sorted(self.containers.items()))
        lines += [f"containers: {containers}",
                  f"time: {self.seconds:.1f} s",
                  f"data root: {self.root}",
                  f"splits:    {self.splits_dir}"]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- drawing specs


def _clip_rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def _hsv_color(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> np.ndarray:
    """A random RGB colour, float (3,) in 0..255."""
    h, s, v = rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val)
    i, f = int(h * 6) % 6, h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb) * 255.0


def _contrasting(draw_color, backgrounds: Sequence[np.ndarray], contrast: tuple[float, float],
                 rng: np.random.Generator) -> RGB:
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
    rng = _clip_rng(seed, 1, group)
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
        distractor_colors=tuple(tuple(int(c) for c in _hsv_color(rng, (0.4, 1.0), (0.3, 1.0)))
                                for _ in range(num_distractor_colors)),
        occluder_kind=str(rng.choice(["pole", "box"])),
        occluder=visible(lambda: _hsv_color(rng, (0.0, 0.6), (0.1, 0.7))),
    )


def _draw_motion(rng: np.random.Generator, label: str) -> Motion:
    facing = int(rng.choice([-1, 1]))
    if label == "walk":
        return Motion(facing=facing, cadence_hz=rng.uniform(0.8, 1.3), phase=rng.uniform(0, 2 * np.pi),
                      swing_deg=rng.uniform(24, 32), knee_min_deg=rng.uniform(2, 6),
                      knee_amp_deg=rng.uniform(25, 40), arm_swing_deg=rng.uniform(20, 30),
                      arm_offset_deg=rng.uniform(-3, 3), elbow_deg=rng.uniform(10, 25),
                      lean_deg=rng.uniform(0, 5), speed=rng.uniform(0.6, 0.85))
    if label == "run":
        return Motion(facing=facing, cadence_hz=rng.uniform(1.6, 2.6), phase=rng.uniform(0, 2 * np.pi),
                      swing_deg=rng.uniform(38, 50), knee_min_deg=rng.uniform(12, 20),
                      knee_amp_deg=rng.uniform(60, 90), arm_swing_deg=rng.uniform(30, 45),
                      arm_offset_deg=rng.uniform(5, 15), elbow_deg=rng.uniform(80, 100),
                      lean_deg=rng.uniform(10, 20), bounce=rng.uniform(0.03, 0.06), speed=rng.uniform(1.5, 2.2))
    if label == "wave":
        front = rng.uniform() < 0.6
        return Motion(facing=facing, view="front" if front else "side", phase=rng.uniform(0, 2 * np.pi),
                      wave_arm=str(rng.choice(["left", "right"] if front else ["near", "far"])),
                      wave_hz=rng.uniform(1.5, 3.0), wave_amp_deg=rng.uniform(30, 40),
                      raise_deg=rng.uniform(120, 160) if front else rng.uniform(100, 140),
                      sway_px=rng.uniform(0.5, 2.5), sway_hz=rng.uniform(0.2, 0.5),
                      elbow_deg=rng.uniform(5, 15), lean_deg=rng.uniform(-2, 2))
    # sit_down; stand_up is its time reversal and draws the same parameters
    return Motion(facing=facing, sit_lean_deg=rng.uniform(25, 40), elbow_deg=rng.uniform(10, 20),
                  arm_swing_deg=rng.uniform(15, 30))


def _draw_sit_timing(rng: np.random.Generator, motion: Motion, seconds: float) -> Motion:
    """Standing hold, motion, seated hold: the two holds come from one distribution (the split point of the
    remaining time is uniform and symmetric), so how long a clip stands or sits tells nothing of its class."""
    duration = min(rng.uniform(1.0, 2.0), 0.7 * seconds)
    start = (seconds - duration) * rng.uniform(0.1, 0.9)
    return replace(motion, sit_start_s=float(start), sit_duration_s=float(duration))


def _figure_height(look: GroupLook, scale: float, height: int) -> float:
    return min(look.height_frac * scale, 0.75) * height


def draw_clip_spec(label: str, group: int, clip: int, difficulty: str = "medium", seed: int = 0,
                   size: tuple[int, int] = (160, 120), fps: int = 15, split: str = "train") -> ClipSpec:
    """All random choices of one clip, from (seed, class, group, clip) alone."""
    if label not in CLASSES:
        raise ValueError(f"unknown class {label!r}; valid: {', '.join(CLASSES)}")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty={difficulty!r} is unknown; valid: {', '.join(DIFFICULTIES)}")
    width, height = size
    level = LEVELS[difficulty]
    look = draw_group_look(group, difficulty, seed)
    rng = _clip_rng(seed, 2, CLASSES.index(label), group, clip)
    behaviour = "sit_down" if label == "stand_up" else label
    num_frames = int(rng.integers(math.ceil(MIN_SECONDS * fps), math.floor(MAX_SECONDS * fps) + 1))
    seconds = num_frames / fps
    scale = float(rng.uniform(0.9, 1.1))
    fig_h = _figure_height(look, scale, height)
    horizon = look.horizon_frac * height
    ground_lo = max(horizon + 0.05 * height, fig_h + 0.04 * height)
    ground_y = float(rng.uniform(min(ground_lo, 0.95 * height), 0.96 * height))
    motion = _draw_motion(rng, behaviour)
    if behaviour == "sit_down":
        motion = _draw_sit_timing(rng, motion, seconds)
    pano_extra = _panorama_extra(size)
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
    elif behaviour == "wave":
        start_x = camera_x0 + rng.uniform(0.35, 0.65) * width
        span = [start_x, start_x]
    else:
        thigh = _body(look, scale, height).thigh
        start_x = camera_x0 + rng.uniform(0.35, 0.65) * width + motion.facing * thigh / 2  # the feet
        span = sorted((start_x, start_x - motion.facing * thigh))  # feet to seat
    chair_x, chair_facing = None, motion.facing
    if behaviour == "sit_down":
        chair_x = start_x - motion.facing * _body(look, scale, height).thigh
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
        label=label, group=group, clip=clip, split=split, container=CONTAINERS[(group + clip) % 2],
        difficulty=difficulty, size=(width, height), fps=fps, num_frames=num_frames, look=look, scale=scale,
        ground_y=ground_y, start_x=float(start_x), pan_px_s=float(pan), camera_x0=float(camera_x0),
        motion=motion, chair_x=None if chair_x is None else float(chair_x), chair_facing=chair_facing,
        distractors=distractors, occluder=occluder, shake_px=shake, noise_std=level.noise_std,
        render_seed=int(rng.integers(2**31)),
    )


def _draw_distractor(rng: np.random.Generator, look: GroupLook, size: tuple[int, int], camera_x0: float,
                     ground_y: float, seconds: float) -> Distractor:
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
    return Distractor(shape, color, float(radius), float(x0), float(y0), float(vx), float(hop), float(hop_hz),
                      bool(rng.uniform() < 0.4))


def _draw_occluder(rng: np.random.Generator, look: GroupLook, span: Sequence[float], moves: bool,
                   ground_y: float, fig_h: float) -> Occluder:
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
        return Occluder("pole", look.occluder, float(x - half), float(x + half), float(ground_y - 1.3 * fig_h),
                        float(ground_y + 2))
    half = rng.uniform(0.25, 0.45) * fig_h
    x = (lo + hi) / 2 + rng.uniform(-0.15, 0.15) * fig_h
    top = ground_y - rng.uniform(0.12, 0.25) * fig_h
    return Occluder("box", look.occluder, float(x - half), float(x + half), float(top), float(ground_y + 2))


def _num_groups(clips_per_class: int) -> int:
    return max(2, math.ceil(clips_per_class / CLIPS_PER_GROUP))


def num_test_groups(num_groups: int) -> int:
    """Groups held out for testing: the first ~28%, at least one, and at least one group left to train."""
    return max(1, min(num_groups - 1, round(num_groups * TEST_GROUP_FRACTION)))


def plan_dataset(clips_per_class: int = 100, difficulty: str = "medium", seed: int = 0,
                 size: tuple[int, int] = (160, 120), fps: int = 15) -> list[ClipSpec]:
    """One spec per video, ordered by class, group and clip. Groups get `CLIPS_PER_GROUP` clips (the last
    ones one fewer when the clips do not divide evenly); every class has at least two groups."""
    _validate(clips_per_class, difficulty, seed, size, fps, workers=1)
    size = (int(size[0]), int(size[1]))
    num_groups = _num_groups(clips_per_class)
    held_out = num_test_groups(num_groups)
    base, extra = divmod(clips_per_class, num_groups)
    specs = []
    for label in CLASSES:
        for group in range(1, num_groups + 1):
            split = "test" if group <= held_out else "train"
            for clip in range(1, base + (1 if group <= extra else 0) + 1):
                specs.append(draw_clip_spec(label, group, clip, difficulty, seed, size, fps, split))
    return specs


def _validate(clips_per_class, difficulty, seed, size, fps, workers) -> None:
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty={difficulty!r} is unknown; valid: {', '.join(DIFFICULTIES)}")
    if not isinstance(clips_per_class, int) or isinstance(clips_per_class, bool) or clips_per_class < 2:
        raise ValueError(f"clips_per_class={clips_per_class!r} is invalid; valid: an integer >= 2 (each class "
                         "needs one test and one train group)")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r} is invalid; valid: an integer >= 0")
    if len(size) != 2 or any(not isinstance(s, int) or s < 32 or s % 2 for s in size):
        raise ValueError(f"size={size!r} is invalid; valid: (width, height), even integers >= 32")
    if not isinstance(fps, int) or not 8 <= fps <= 60:
        raise ValueError(f"fps={fps!r} is invalid; valid: an integer from 8 to 60")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers={workers!r} is invalid; valid: an integer >= 1")


# -------------------------------------------------------------------------------------------------- the body


@dataclass(frozen=True)
class Body:
    """Segment lengths and thicknesses in pixels."""

    height: float
    thigh: float
    shin: float
    torso: float
    upper_arm: float
    forearm: float
    head_r: float
    leg_w: int
    arm_w: int
    torso_w: float  # side view
    shoulder_half: float  # front view: half the shoulder width
    hip_half: float  # front view: half the hip width


def _body(look: GroupLook, scale: float, frame_height: int) -> Body:
    h = _figure_height(look, scale, frame_height)
    leg = 0.49 * h * look.leg_ratio
    head_r = 0.065 * h
    leg_w = max(3, round(0.085 * h * look.limb_scale))
    torso = 0.95 * h - leg - 2.15 * head_r - leg_w / 2
    return Body(height=h, thigh=0.51 * leg, shin=0.49 * leg, torso=torso, upper_arm=0.17 * h, forearm=0.16 * h,
                head_r=head_r, leg_w=leg_w, arm_w=max(3, round(0.07 * h * look.limb_scale)),
                torso_w=0.13 * h * look.build, shoulder_half=0.1 * h * look.build, hip_half=0.07 * h * look.build)


@dataclass
class Pose:
    """Per-frame joint angles in screen terms: radians from hanging straight down, positive towards +x."""

    pelvis: np.ndarray  # float (T, 2) world pixels
    lean: np.ndarray  # (T,) torso angle from upright, positive towards +x
    legs: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]  # (thigh, shin) near/left, far/right
    arms: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]  # (upper, forearm)
    view: str
    facing: int


def _leg_extent(body: Body, thigh: np.ndarray, shin: np.ndarray) -> np.ndarray:
    """Vertical distance from hip to ankle, (T,)."""
    return body.thigh * np.cos(thigh) + body.shin * np.cos(shin)


def _gait_pose(spec: ClipSpec, body: Body, t: np.ndarray) -> Pose:
    """Walk and run: legs and arms swing in opposition, feet on the ground (run: with flight)."""
    m, d = spec.motion, spec.motion.facing
    psi = 2 * np.pi * m.cadence_hz * t + m.phase
    legs, arms = [], []
    for offset in (0.0, np.pi):  # near leg, far leg half a cycle later
        ph = psi + offset
        thigh = np.radians(m.swing_deg) * np.sin(ph)
        knee = np.radians(m.knee_min_deg + m.knee_amp_deg * np.maximum(0.0, np.cos(ph)))  # bends in forward swing
        legs.append((d * thigh, d * (thigh - knee)))
        upper = np.radians(m.arm_offset_deg) - np.radians(m.arm_swing_deg) * np.sin(ph)  # opposite its own leg
        arms.append((d * upper, d * (upper + np.radians(m.elbow_deg))))
    extent = np.maximum(_leg_extent(body, *legs[0]), _leg_extent(body, *legs[1]))
    flight = m.bounce * body.height * np.abs(np.sin(psi))
    x = spec.start_x + d * m.speed * body.height * t
    y = spec.ground_y - body.leg_w / 2 - extent - flight
    lean = d * np.radians(m.lean_deg + 2.0 * np.sin(2 * psi) * (m.bounce > 0))
    return Pose(np.stack([x, y], 1), lean, (legs[0], legs[1]), (arms[0], arms[1]), "side", d)


def _wave_pose(spec: ClipSpec, body: Body, t: np.ndarray) -> Pose:
    """Standing in place with a slight sway; one forearm swings side to side above the shoulder."""
    m, n = spec.motion, len(t)
    sway = m.sway_px * np.sin(2 * np.pi * m.sway_hz * t + m.phase)
    wave = np.radians(m.wave_amp_deg) * np.sin(2 * np.pi * m.wave_hz * t + m.phase)
    lean = np.full(n, np.radians(m.lean_deg)) + 0.3 * sway / max(body.height, 1)
    if m.view == "front":
        spread = np.radians(4.0)
        legs = ((np.full(n, -spread), np.full(n, -spread)), (np.full(n, spread), np.full(n, spread)))
        arms = []
        for side, name in ((-1, "left"), (1, "right")):
            if m.wave_arm == name:
                arms.append((np.full(n, side * np.radians(m.raise_deg)), side * np.radians(165.0) + wave))
            else:
                rest = side * np.radians(8.0)
                arms.append((np.full(n, rest), np.full(n, rest + side * np.radians(m.elbow_deg))))
        facing = 1
    else:
        d = m.facing
        legs = ((np.full(n, d * 0.06), np.full(n, d * 0.03)), (np.full(n, -d * 0.06), np.full(n, -d * 0.08)))
        raised = (np.full(n, d * np.radians(m.raise_deg)), d * np.radians(165.0) + wave)
        rest = (np.full(n, d * np.radians(4.0)), np.full(n, d * np.radians(4.0 + m.elbow_deg)))
        arms = [raised, rest] if m.wave_arm == "near" else [rest, raised]
        facing = d
    extent = np.maximum(_leg_extent(body, *legs[0]), _leg_extent(body, *legs[1]))
    x = spec.start_x + sway
    y = spec.ground_y - body.leg_w / 2 - extent
    return Pose(np.stack([x, y], 1), lean, (legs[0], legs[1]), (arms[0], arms[1]), m.view, facing)


def sit_progress(spec: ClipSpec) -> np.ndarray:
    """Fraction of the way from standing (0) to seated (1) of each frame of a sit_down clip, float (T,)."""
    t = np.arange(spec.num_frames) / spec.fps
    u = np.clip((t - spec.motion.sit_start_s) / spec.motion.sit_duration_s, 0.0, 1.0)
    return u * u * (3 - 2 * u)  # smoothstep: starts and ends at rest


def _sit_pose(spec: ClipSpec, body: Body, t: np.ndarray) -> Pose:
    """Feet stay put; the thigh turns to horizontal, hips go back and down onto the seat, the torso leans
    forward during the motion and is upright again when seated."""
    m, d = spec.motion, spec.motion.facing
    s = sit_progress(spec)
    bump = np.sin(np.pi * s)  # 0 at both ends, 1 halfway
    thigh = np.radians(88.0) * s
    shin = np.radians(12.0) * bump  # knees come forward during the motion
    x = spec.start_x - d * (body.thigh * np.sin(thigh) + body.shin * np.sin(shin))
    y = spec.ground_y - body.leg_w / 2 - _leg_extent(body, thigh, shin)
    lean = d * np.radians(m.sit_lean_deg * bump + 4.0 * s)
    upper = np.radians(m.arm_swing_deg * s + 25.0 * bump)
    forearm = upper + np.radians(m.elbow_deg + 35.0 * s)
    leg = (d * thigh, d * shin)
    far_leg = (d * (thigh - 0.05), d * (shin + 0.04))
    arm = (d * upper, d * forearm)
    far_arm = (d * (upper - 0.1), d * (forearm - 0.1))
    return Pose(np.stack([x, y], 1), lean, (leg, far_leg), (arm, far_arm), "side", d)


def compute_pose(spec: ClipSpec) -> Pose:
    """Joint angles of every frame of the clip (stand_up: those of its sit_down, in sit_down order)."""
    body = _body(spec.look, spec.scale, spec.size[1])
    t = np.arange(spec.num_frames) / spec.fps
    if spec.label in ("walk", "run"):
        return _gait_pose(spec, body, t)
    if spec.label == "wave":
        return _wave_pose(spec, body, t)
    return _sit_pose(spec, body, t)


def _direction(angle: np.ndarray) -> np.ndarray:
    """Unit vectors (T, 2) for screen angles measured from straight down, positive towards +x."""
    return np.stack([np.sin(angle), np.cos(angle)], -1)


def skeleton(pose: Pose, body: Body) -> dict[str, np.ndarray]:
    """Joint positions in world pixels: 'torso' (T, 4, 2) corners, 'head' (T, 2), limbs (T, 3, 2) each:
    'leg0'/'leg1' hip-knee-ankle, 'arm0'/'arm1' shoulder-elbow-wrist (0: near or left side)."""
    axis = np.stack([np.sin(pose.lean), -np.cos(pose.lean)], -1)  # pelvis -> neck, (T, 2)
    across = np.stack([-axis[:, 1], axis[:, 0]], -1)  # perpendicular, pointing to +x when upright
    neck = pose.pelvis + body.torso * axis
    head = neck + 1.15 * body.head_r * axis
    front = pose.view == "front"
    shoulder_half = body.shoulder_half if front else body.torso_w / 2
    hip_half = body.hip_half if front else body.torso_w / 2
    torso = np.stack([neck - shoulder_half * across, neck + shoulder_half * across,
                      pose.pelvis + hip_half * across, pose.pelvis - hip_half * across], 1)
    joints = {"torso": torso, "head": head}
    for i, side in enumerate((-1.0, 1.0)):
        hip_offset = side * 0.6 * body.hip_half * across if front else 0.0
        shoulder_offset = side * 0.85 * body.shoulder_half * across if front else 0.0
        hip = pose.pelvis + hip_offset
        thigh, shin = pose.legs[i]
        knee = hip + body.thigh * _direction(thigh)
        joints[f"leg{i}"] = np.stack([hip, knee, knee + body.shin * _direction(shin)], 1)
        shoulder = neck - 0.12 * body.torso * axis + shoulder_offset
        upper, forearm = pose.arms[i]
        elbow = shoulder + body.upper_arm * _direction(upper)
        joints[f"arm{i}"] = np.stack([shoulder, elbow, elbow + body.forearm * _direction(forearm)], 1)
    return joints


# ---------------------------------------------------------------------------------------------- rendering


def _panorama_extra(size: tuple[int, int]) -> int:
    """Columns of background beyond one frame: room for the longest camera pan of a run."""
    return 7 * size[1]


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Smooth random field float32 (height, width) in about -1..1, features about `cell` pixels wide."""
    grid = rng.uniform(-1, 1, (max(2, int(height / cell) + 2), max(2, int(width / cell) + 2))).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((width, height), Image.BICUBIC))


def _wall_texture(rng: np.random.Generator, look: GroupLook, height: int, width: int, amp: float) -> np.ndarray:
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


def _floor_texture(rng: np.random.Generator, look: GroupLook, height: int, width: int, amp: float) -> np.ndarray:
    """float32 (height, width, 1 or 3) offsets added to the floor colour."""
    if look.floor_texture == "planks":
        plank = rng.uniform(4, 10)
        rows = (np.arange(height) // plank).astype(np.int64)
        shade = rng.uniform(-1, 1, rows.max() + 1).astype(np.float32)[rows]
        return shade[:, None, None] * np.ones((1, width, 1), np.float32) * amp
    if look.floor_texture == "tiles":
        tile = int(rng.uniform(8, 20))
        checker = ((np.arange(height)[:, None] // tile + np.arange(width)[None, :] // tile) % 2).astype(np.float32)
        return (checker[..., None] - 0.5) * amp * 1.2
    return _smooth_noise(rng, height, width, rng.uniform(8, 24))[..., None] * amp


@lru_cache(maxsize=8)
def _panorama(look: GroupLook, size: tuple[int, int], margin: int) -> np.ndarray:
    """The group's scene, uint8 (H + 2 margin, W + 2 margin + extra, 3); row r is world row r - margin."""
    width, height = size
    rows, cols = height + 2 * margin, width + 2 * margin + _panorama_extra(size)
    rng = np.random.default_rng(look.texture_seed)
    horizon = int(look.horizon_frac * height) + margin
    amp = {"plain": 18.0, "textured": 22.0, "busy": 32.0}[look.background]
    image = np.empty((rows, cols, 3), np.float32)
    image[:horizon] = np.asarray(look.wall, np.float32) + _wall_texture(rng, look, horizon, cols, amp)
    if look.background == "plain":
        image[horizon:] = np.asarray(look.floor, np.float32) + _wall_texture(rng, look, rows - horizon, cols, amp)
    else:
        image[horizon:] = np.asarray(look.floor, np.float32) + _floor_texture(rng, look, rows - horizon, cols, amp)
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
        image[y:y + h, x:x + w] = 0.3 * image[y:y + h, x:x + w] + 0.7 * color


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


def _draw_figure(draw: ImageDraw.ImageDraw, joints: dict[str, np.ndarray], t: int, body: Body, look: GroupLook,
                 pose: Pose, offset: np.ndarray) -> None:
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
        draw.line([(back, seat_y), (back - d * 0.03 * body.height, seat_y - 0.32 * body.height)],
                  fill=color, width=leg_w + 1)


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
    return np.clip(np.round(spec.shake_px * (0.65 * wobble + 0.35 * jitter)), -spec.shake_px, spec.shake_px).astype(
        np.int64)


def render_clip(spec: ClipSpec) -> np.ndarray:
    """The clip's frames, uint8 (T, H, W, 3) RGB. stand_up is the sit_down clip of the same spec reversed."""
    if spec.label == "stand_up":
        return np.ascontiguousarray(render_clip(replace(spec, label="sit_down"))[::-1])
    width, height = spec.size
    margin = spec.shake_px
    body = _body(spec.look, spec.scale, height)
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
        canvas = Image.fromarray(np.ascontiguousarray(panorama[:, camera:camera + width + 2 * margin]))
        draw = ImageDraw.Draw(canvas)
        offset = np.array([margin - camera, margin], np.float64)  # world -> canvas pixels
        if spec.chair_x is not None:
            _draw_chair(draw, spec, body, offset)
        for item in spec.distractors:
            if not item.in_front:
                _draw_distractor_at(draw, item, seconds, offset)
        _draw_figure(draw, joints, t, body, spec.look, pose, offset)
        for item in spec.distractors:
            if item.in_front:
                _draw_distractor_at(draw, item, seconds, offset)
        if spec.occluder is not None:
            o = spec.occluder
            draw.rectangle([o.x0 + offset[0], o.y0 + offset[1], o.x1 + offset[0], o.y1 + offset[1]], fill=o.color)
        dx, dy = shake[t]
        frames[t] = np.asarray(canvas)[margin + dy:margin + dy + height, margin + dx:margin + dx + width]
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


# ---------------------------------------------------------------------------------------------- writing


def _write_video(job: tuple[ClipSpec, str]) -> tuple[str, int]:
    """Render and encode one clip; the file appears under its name only once complete. Returns
    (relpath, frames)."""
    spec, root = job
    path = Path(root) / spec.relpath
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")  # hidden: readers skip it
    frames = render_clip(spec)
    try:
        write_video(partial, frames, spec.fps, quality=18)  # H.264 crf 18 (.mp4), MPEG-4 q 2 (.avi)
        if path.exists():
            raise FileExistsError(f"{path} appeared while it was being generated; it was left as it is")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return spec.relpath, len(frames)


def _split_files(specs: Sequence[ClipSpec]) -> dict[str, str]:
    """Contents of classInd.txt, trainlist01.txt and testlist01.txt (UCF101 format, '\\n' line ends)."""
    class_ind = "".join(f"{i} {name}\n" for i, name in enumerate(CLASSES, start=1))
    train = "".join(f"{s.relpath} {CLASSES.index(s.label) + 1}\n" for s in specs if s.split == "train")
    test = "".join(f"{s.relpath}\n" for s in specs if s.split == "test")
    return {"classInd.txt": class_ind, "trainlist01.txt": train, "testlist01.txt": test}


def _existing_targets(root: Path, splits_dir: Path, specs: Sequence[ClipSpec]) -> list[Path]:
    targets = [root / s.relpath for s in specs]
    targets += [splits_dir / name for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt")]
    return [p for p in targets if p.exists()]


def generate_dataset(out: str | os.PathLike, clips_per_class: int = 100, difficulty: str = "medium", seed: int = 0,
                     workers: int = 2, size: tuple[int, int] = (160, 120), fps: int = 15) -> SynthReport:
    """Write OUT/videos/<class>/v_<Class>_gGG_cCC.<mp4|avi> and OUT/splits/{classInd,trainlist01,testlist01}.txt.

    Nothing that exists is overwritten or deleted: when any file it would write is already there, it raises
    FileExistsError before writing anything. The same arguments give the same decoded frames, whatever
    `workers` is. With workers > 1 the clips are rendered in `spawn` processes, so a script that calls this
    needs the usual `if __name__ == "__main__":` guard.
    """
    _validate(clips_per_class, difficulty, seed, size, fps, workers)
    start = time.perf_counter()
    out = Path(out)
    root, splits_dir = out / "videos", out / "splits"
    specs = plan_dataset(clips_per_class, difficulty, seed, size, fps)
    existing = _existing_targets(root, splits_dir, specs)
    if existing:
        what = f"{existing[0]} and {len(existing) - 1} more files exist" if len(existing) > 1 else f"{existing[0]} exists"
        raise FileExistsError(f"{what} already; synthetic data never overwrites files: choose another output "
                              "folder or move them away")
    for label in CLASSES:
        (root / label).mkdir(parents=True, exist_ok=True)
    splits_dir.mkdir(parents=True, exist_ok=True)
    by_group = sorted(specs, key=lambda s: (s.group, CLASSES.index(s.label), s.clip))  # a group's scene is cached
    jobs = [(spec, str(root)) for spec in by_group]
    if workers == 1:
        written = [_write_video(job) for job in jobs]
    else:
        # spawn: no forked copies of the caller's threads or open files. Callers need the usual
        # `if __name__ == "__main__":` guard in scripts.
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            written = list(pool.imap_unordered(_write_video, jobs, chunksize=CLIPS_PER_GROUP))
    for name, text in _split_files(specs).items():
        with open(splits_dir / name, "x", newline="\n") as handle:  # "x": never overwrite
            handle.write(text)
    counts = {label: {"train": 0, "test": 0} for label in CLASSES}
    containers: dict[str, int] = {}
    for spec in specs:
        counts[spec.label][spec.split] += 1
        containers[spec.container] = containers.get(spec.container, 0) + 1
    return SynthReport(root=root, splits_dir=splits_dir, num_videos=len(written), counts=counts,
                       num_frames=sum(n for _, n in written), seconds=time.perf_counter() - start,
                       difficulty=difficulty, seed=seed, size=tuple(size), fps=fps, containers=containers)

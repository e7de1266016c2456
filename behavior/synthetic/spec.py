"""What a synthetic clip is: the constants of the data set, the difficulty levels, and `ClipSpec`, every random
choice of one clip (its group's `GroupLook`, its `Motion`, distractors, occluder, camera). `plan` draws them."""

from __future__ import annotations

from dataclasses import dataclass

CLASSES = ("walk", "run", "wave", "sit_down", "stand_up")
# Behaviours outside the five, written as the "unseen" set that no model trains on, to measure whether a model
# says "none of these": jumping in place, bending down to the floor and up, clapping, standing idle.
UNSEEN = ("jump", "bend", "clap", "idle")
EMPTY = "empty"  # the scene with no one in it: only in long recordings
BEHAVIOURS = (*CLASSES, *UNSEEN, EMPTY)  # every label a clip spec can have; a class keeps its index here
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
    jump_hz: float = 1.0  # jump: jumps per second
    jump_height: float = 0.2  # jump: highest lift of the feet, fraction of the figure height
    crouch_deg: float = 40.0  # jump: knee bend at the bottom of the crouch
    bend_deg: float = 80.0  # bend: largest forward lean of the torso, from upright
    bend_start_s: float = 0.0  # bend: end of the upright hold
    bend_duration_s: float = 1.5  # bend: down and up again
    clap_hz: float = 2.5  # clap: claps per second


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
    split: str  # train | test | unseen (a behaviour outside the five, never in a split file)
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

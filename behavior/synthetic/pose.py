"""The figure's body and pose: limb lengths from the group's look, joint positions over time for each behaviour
(gait for walk and run, the waving arm, sitting down; and for the unseen set: jumping in place, bending down to
the floor, clapping, standing idle), and the skeleton `render` draws."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from behavior.synthetic.spec import ClipSpec, GroupLook


def figure_height(look: GroupLook, scale: float, height: int) -> float:
    return min(look.height_frac * scale, 0.75) * height


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


def body_of(look: GroupLook, scale: float, frame_height: int) -> Body:
    h = figure_height(look, scale, frame_height)
    leg = 0.49 * h * look.leg_ratio
    head_r = 0.065 * h
    leg_w = max(3, round(0.085 * h * look.limb_scale))
    torso = 0.95 * h - leg - 2.15 * head_r - leg_w / 2
    return Body(
        height=h,
        thigh=0.51 * leg,
        shin=0.49 * leg,
        torso=torso,
        upper_arm=0.17 * h,
        forearm=0.16 * h,
        head_r=head_r,
        leg_w=leg_w,
        arm_w=max(3, round(0.07 * h * look.limb_scale)),
        torso_w=0.13 * h * look.build,
        shoulder_half=0.1 * h * look.build,
        hip_half=0.07 * h * look.build,
    )


@dataclass
class Pose:
    """Per-frame joint angles in screen terms: radians from hanging straight down, positive towards +x."""

    pelvis: np.ndarray  # float (T, 2) world pixels
    lean: np.ndarray  # (T,) torso angle from upright, positive towards +x
    legs: tuple[
        tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]
    ]  # (thigh, shin) near/left, far/right
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
        knee = np.radians(
            m.knee_min_deg + m.knee_amp_deg * np.maximum(0.0, np.cos(ph))
        )  # bends in forward swing
        legs.append((d * thigh, d * (thigh - knee)))
        upper = np.radians(m.arm_offset_deg) - np.radians(m.arm_swing_deg) * np.sin(
            ph
        )  # opposite its own leg
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


def _standing_legs(n: int, d: int, view: str) -> tuple:
    """Both legs straight under the hips, feet slightly apart: ((thigh, shin), (thigh, shin)), each (n,)."""
    if view == "front":
        spread = np.radians(4.0)
        return (np.full(n, -spread), np.full(n, -spread)), (np.full(n, spread), np.full(n, spread))
    return (np.full(n, d * 0.06), np.full(n, d * 0.03)), (np.full(n, -d * 0.06), np.full(n, -d * 0.08))


def _resting_arms(n: int, d: int, view: str, elbow_deg: float) -> tuple:
    """Both arms hanging, elbows slightly bent: ((upper, forearm), (upper, forearm)), each (n,)."""
    if view == "front":
        return tuple(
            (np.full(n, side * np.radians(8.0)), np.full(n, side * np.radians(8.0 + elbow_deg)))
            for side in (-1, 1)
        )
    rest = (np.full(n, d * np.radians(4.0)), np.full(n, d * np.radians(4.0 + elbow_deg)))
    return rest, (rest[0] - d * 0.1, rest[1] - d * 0.1)


def _standing(spec: ClipSpec, body: Body, legs, arms, lean: np.ndarray, x: np.ndarray, view: str) -> Pose:
    """A pose standing on the ground with the given legs, arms, lean and pelvis x."""
    extent = np.maximum(_leg_extent(body, *legs[0]), _leg_extent(body, *legs[1]))
    y = spec.ground_y - body.leg_w / 2 - extent
    facing = 1 if view == "front" else spec.motion.facing
    return Pose(np.stack([x, y], 1), lean, (legs[0], legs[1]), (arms[0], arms[1]), view, facing)


def _idle_pose(spec: ClipSpec, body: Body, t: np.ndarray) -> Pose:
    """Standing still, arms hanging, swaying slightly: someone waiting, nothing to recognise."""
    m, n = spec.motion, len(t)
    sway = m.sway_px * np.sin(2 * np.pi * m.sway_hz * t + m.phase)
    lean = np.full(n, np.radians(m.lean_deg)) + 0.3 * sway / max(body.height, 1)
    legs = _standing_legs(n, m.facing, m.view)
    return _standing(
        spec, body, legs, _resting_arms(n, m.facing, m.view, m.elbow_deg), lean, spec.start_x + sway, m.view
    )


def _clap_pose(spec: ClipSpec, body: Body, t: np.ndarray) -> Pose:
    """Facing the camera, both hands meeting in front of the chest and parting again, `clap_hz` times a
    second: the upper arms swing in and out, the forearms point inward and slightly up."""
    m, n = spec.motion, len(t)
    opening = 0.5 + 0.5 * np.cos(2 * np.pi * m.clap_hz * t + m.phase)  # 0: hands together
    sway = m.sway_px * np.sin(2 * np.pi * m.sway_hz * t + m.phase)
    arms = tuple(
        (side * np.radians(12.0 + 23.0 * opening), np.full(n, -side * np.radians(100.0))) for side in (-1, 1)
    )
    lean = np.full(n, np.radians(m.lean_deg))
    return _standing(spec, body, _standing_legs(n, 1, "front"), arms, lean, spec.start_x + sway, "front")


def _jump_pose(spec: ClipSpec, body: Body, t: np.ndarray) -> Pose:
    """Jumping in place, side view: crouch with the arms swung back, take off with the arms thrown up and the
    legs straight, land into the next crouch."""
    m, d = spec.motion, spec.motion.facing
    cycle = np.sin(2 * np.pi * m.jump_hz * t + m.phase)
    lift = np.maximum(cycle, 0.0)  # in the air
    crouch = np.maximum(-cycle, 0.0)  # on the ground, knees bent
    bend = np.radians(m.crouch_deg) * crouch
    legs = ((d * bend, -d * 0.8 * bend), (d * (bend - 0.05), -d * (0.8 * bend - 0.04)))
    upper = d * (np.radians(150.0) * lift - np.radians(40.0) * crouch)
    arms = ((upper, upper + d * np.radians(15.0)), (upper - d * 0.1, upper + d * np.radians(5.0)))
    extent = np.maximum(_leg_extent(body, *legs[0]), _leg_extent(body, *legs[1]))
    x = np.full(len(t), spec.start_x) - d * 0.3 * body.thigh * np.sin(bend)
    y = spec.ground_y - body.leg_w / 2 - extent - m.jump_height * body.height * lift
    lean = d * np.radians(25.0) * crouch
    return Pose(np.stack([x, y], 1), lean, (legs[0], legs[1]), (arms[0], arms[1]), "side", d)


def _bend_pose(spec: ClipSpec, body: Body, t: np.ndarray) -> Pose:
    """Side view: upright, then bending forward at the hips until the hands near the floor, then upright again;
    knees soft, hips going back as the torso goes forward."""
    m, d = spec.motion, spec.motion.facing
    u = np.clip((t - m.bend_start_s) / m.bend_duration_s, 0.0, 1.0)
    down = np.sin(np.pi * u) ** 2  # 0 upright, 1 at the bottom, smooth at both ends
    knee = np.radians(15.0) * down
    legs = ((d * knee, -d * 0.8 * knee), (d * (knee - 0.05), -d * (0.8 * knee - 0.04)))  # knees forward
    arms_angle = d * np.radians(10.0) * down  # arms hang towards the floor
    arms = ((arms_angle, arms_angle + d * np.radians(5.0)), (arms_angle - d * 0.1, arms_angle - d * 0.05))
    lean = d * np.radians(m.bend_deg) * down
    x = spec.start_x - d * 0.12 * body.height * down
    return _standing(spec, body, legs, arms, lean, x, "side")


def compute_pose(spec: ClipSpec) -> Pose:
    """Joint angles of every frame of the clip (stand_up: those of its sit_down, in sit_down order; empty: an
    idle pose that `render` does not draw)."""
    body = body_of(spec.look, spec.scale, spec.size[1])
    t = np.arange(spec.num_frames) / spec.fps
    if spec.label in ("walk", "run"):
        return _gait_pose(spec, body, t)
    if spec.label == "wave":
        return _wave_pose(spec, body, t)
    if spec.label in ("sit_down", "stand_up"):
        return _sit_pose(spec, body, t)
    poses = {
        "jump": _jump_pose,
        "bend": _bend_pose,
        "clap": _clap_pose,
        "idle": _idle_pose,
        "empty": _idle_pose,
    }
    return poses[spec.label](spec, body, t)


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
    torso = np.stack(
        [
            neck - shoulder_half * across,
            neck + shoulder_half * across,
            pose.pelvis + hip_half * across,
            pose.pelvis - hip_half * across,
        ],
        1,
    )
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

"""A pose sampler for anny bodies: anatomical joint ranges and families of everyday poses (the collision
check is :mod:`mould.datasets.collisions`).

A :data:`Pose` is a JSON-ready ``dict`` of joint name -> ``[a, b, c]`` degrees in body terms:

============== ===================================== ========================================
joint          angles                                 positive means
============== ===================================== ========================================
``spine``      flexion, lateral bend, twist          bend forward, bend to the left, turn left
``neck``       flexion, lateral bend, twist          chin down, ear to the left shoulder, look left
``shoulder.S`` flexion, abduction, twist             arm forward/up, arm out/up (0 = hanging), inward
``elbow.S``    flexion                               forearm towards the upper arm (0 = straight)
``wrist.S``    flexion, deviation                    palm side, thumb side
``clavicle.S`` elevation                             shrug
``hip.S``      flexion, abduction, twist             thigh forward/up, leg out, inward
``knee.S``     flexion                               heel towards the buttock
``ankle.S``    plantar flexion                       toes down
============== ===================================== ========================================

``S`` is ``L`` or ``R`` (the person's left and right). Right-side rotations are the mirror images of the
left side's, so the same angles give a symmetric pose.

anny's ``local-ref`` pose parameters are, per bone, a rotation about the bone's head expressed in the rest
pose's world-aligned axes carried along by the parent (like SMPL's axis-angles), in anny's frame: x = the
person's left, y = backwards, z = up. The signs below were measured on the model (e.g. +60 degrees about x on
``upperleg01.L`` swings the foot backwards), and the rest pose (an A-pose: arms ~45 degrees down, elbows
slightly bent) is measured on the default body, so that angles are anatomical, not relative to the A-pose.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

Pose = dict[str, list[float]]

SIDES = ("L", "R")

JOINT_RANGES: dict[str, tuple[tuple[float, float], ...]] = {
    "spine": ((-25, 60), (-30, 30), (-40, 40)),
    "neck": ((-45, 55), (-35, 35), (-70, 70)),
    "shoulder": ((-50, 180), (-30, 180), (-70, 90)),
    "elbow": ((0, 150),),
    "wrist": ((-70, 70), (-20, 30)),
    "clavicle": ((-5, 25),),
    "hip": ((-25, 130), (-25, 50), (-35, 45)),
    "knee": ((0, 150),),
    "ankle": ((-25, 45),),
}
"""Anatomical range of motion per joint and angle, degrees (after the AAOS tables of joint motion,
rounded; the hip's flexion includes the pelvis tilt a sitting person adds)."""

FAMILIES = ("standing", "walking", "running", "arms_raised", "arms_crossed", "sitting", "crouching", "reaching")
"""Pose families the sampler draws from (``"random"`` also exists: every joint uniform over half its
range, for variety)."""

FAMILY_WEIGHTS = {
    "standing": 0.2,
    "walking": 0.16,
    "running": 0.1,
    "arms_raised": 0.1,
    "arms_crossed": 0.08,
    "sitting": 0.1,
    "crouching": 0.08,
    "reaching": 0.1,
    "random": 0.08,
}
"""Probability of each family; standing and walking dominate photos of people."""

UPRIGHT_FAMILIES = ("standing", "walking", "arms_raised", "arms_crossed", "reaching")
"""Families whose hips stay near straight: skirts and dresses are only draped over these."""


def _joint_names() -> list[str]:
    names = []
    for joint in JOINT_RANGES:
        names.extend([joint] if joint in ("spine", "neck") else [f"{joint}.{side}" for side in SIDES])
    return names


JOINTS = tuple(_joint_names())


def _range(joint: str) -> tuple[tuple[float, float], ...]:
    return JOINT_RANGES[joint.split(".")[0]]


def neutral_pose() -> Pose:
    """Every angle 0: standing straight, arms hanging, legs together."""
    return {joint: [0.0] * len(_range(joint)) for joint in JOINTS}


def clip_pose(pose: Pose) -> Pose:
    """The pose with every angle clipped to :data:`JOINT_RANGES`."""
    return {
        joint: [float(min(max(angle, low), high)) for angle, (low, high) in zip(angles, _range(joint))]
        for joint, angles in pose.items()
    }


# -- sampling ---------------------------------------------------------------------------------------------
def sample_pose(rng: np.random.Generator, family: str | None = None) -> tuple[str, Pose]:
    """Draw a pose: a family (by :data:`FAMILY_WEIGHTS` unless given), its angles, small noise, clipped.

    Returns:
        (family, pose).
    """
    names = list(FAMILY_WEIGHTS)
    if family is None:
        weights = np.array([FAMILY_WEIGHTS[name] for name in names])
        family = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    if family not in FAMILY_WEIGHTS:
        raise ValueError(f"family: expected one of {names}, got {family!r}")
    pose = neutral_pose()
    if family == "random":
        for joint in JOINTS:
            pose[joint] = [float(rng.uniform(low, high) * 0.5 + (low + high) / 4) for low, high in _range(joint)]
    else:
        _FAMILY_SAMPLERS[family](pose, rng)
    # Everyone fidgets: a few degrees everywhere, so that no two samples of a family are alike.
    for joint in JOINTS:
        pose[joint] = [angle + float(rng.normal(0, 4)) for angle in pose[joint]]
    for side in SIDES:
        pose[f"elbow.{side}"][0] = abs(pose[f"elbow.{side}"][0])
        pose[f"knee.{side}"][0] = abs(pose[f"knee.{side}"][0])
    return family, clip_pose(pose)


def _u(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _relaxed_arms(pose: Pose, rng: np.random.Generator) -> None:
    for side in SIDES:
        pose[f"shoulder.{side}"] = [_u(rng, -15, 25), _u(rng, 5, 35), _u(rng, -20, 30)]
        pose[f"elbow.{side}"] = [_u(rng, 0, 40)]


def _standing(pose: Pose, rng: np.random.Generator) -> None:
    _relaxed_arms(pose, rng)
    pose["spine"] = [_u(rng, -5, 10), _u(rng, -6, 6), _u(rng, -10, 10)]
    pose["neck"] = [_u(rng, -10, 15), _u(rng, -10, 10), _u(rng, -30, 30)]
    weight_leg = rng.choice(SIDES)
    for side in SIDES:
        relaxed = side != weight_leg
        pose[f"hip.{side}"] = [_u(rng, 0, 12 if relaxed else 4), _u(rng, 0, 12), _u(rng, -10, 20)]
        pose[f"knee.{side}"] = [_u(rng, 5, 20) if relaxed else _u(rng, 0, 5)]


def _gait(pose: Pose, rng: np.random.Generator, *, hip: float, knee: float, elbow: float, arm: float) -> None:
    phase = _u(rng, 0, 2 * np.pi)
    for side, offset in zip(SIDES, (0.0, np.pi)):
        swing = np.sin(phase + offset)
        pose[f"hip.{side}"] = [hip * swing, _u(rng, 0, 8), _u(rng, -5, 10)]
        # The knee bends most while the leg swings through (hip moving forward), little in stance.
        pose[f"knee.{side}"] = [knee * max(0.0, np.sin(phase + offset + 0.8)) + _u(rng, 0, 10)]
        pose[f"ankle.{side}"] = [15 * np.cos(phase + offset)]
        pose[f"shoulder.{side}"] = [-arm * swing, _u(rng, 5, 20), _u(rng, 0, 20)]
        pose[f"elbow.{side}"] = [elbow + _u(rng, -10, 15)]


def _walking(pose: Pose, rng: np.random.Generator) -> None:
    _gait(pose, rng, hip=_u(rng, 15, 30), knee=_u(rng, 25, 60), elbow=_u(rng, 5, 30), arm=_u(rng, 10, 35))
    pose["spine"] = [_u(rng, 0, 8), 0.0, _u(rng, -8, 8)]


def _running(pose: Pose, rng: np.random.Generator) -> None:
    _gait(pose, rng, hip=_u(rng, 35, 65), knee=_u(rng, 60, 110), elbow=_u(rng, 75, 100), arm=_u(rng, 30, 60))
    pose["spine"] = [_u(rng, 5, 20), 0.0, _u(rng, -12, 12)]


def _arms_raised(pose: Pose, rng: np.random.Generator) -> None:
    _standing(pose, rng)
    both = rng.uniform() < 0.6
    first = rng.choice(SIDES)
    for side in SIDES:
        if both or side == first:
            if rng.uniform() < 0.5:
                pose[f"shoulder.{side}"] = [_u(rng, 120, 180), _u(rng, 0, 40), _u(rng, -20, 40)]
            else:
                pose[f"shoulder.{side}"] = [_u(rng, -10, 30), _u(rng, 80, 175), _u(rng, -30, 40)]
            pose[f"elbow.{side}"] = [_u(rng, 0, 60)]
            pose[f"clavicle.{side}"] = [_u(rng, 5, 20)]
    pose["neck"][0] = _u(rng, -30, 5)


def _arms_crossed(pose: Pose, rng: np.random.Generator) -> None:
    _standing(pose, rng)
    for side in SIDES:
        pose[f"shoulder.{side}"] = [_u(rng, 15, 40), _u(rng, 5, 20), _u(rng, 50, 80)]
        pose[f"elbow.{side}"] = [_u(rng, 95, 125)]


def _sitting(pose: Pose, rng: np.random.Generator) -> None:
    _relaxed_arms(pose, rng)
    for side in SIDES:
        pose[f"hip.{side}"] = [_u(rng, 75, 100), _u(rng, 0, 20), _u(rng, -10, 15)]
        pose[f"knee.{side}"] = [_u(rng, 70, 110)]
        pose[f"shoulder.{side}"][0] = _u(rng, 10, 45)
        pose[f"elbow.{side}"] = [_u(rng, 30, 80)]
    pose["spine"] = [_u(rng, -5, 20), _u(rng, -8, 8), _u(rng, -15, 15)]
    if rng.uniform() < 0.3:  # legs crossed at the knees: one thigh over the other
        side = rng.choice(SIDES)
        pose[f"hip.{side}"][1] = _u(rng, -20, -10)
        pose[f"knee.{side}"] = [_u(rng, 60, 80)]


def _crouching(pose: Pose, rng: np.random.Generator) -> None:
    _relaxed_arms(pose, rng)
    for side in SIDES:
        pose[f"hip.{side}"] = [_u(rng, 95, 125), _u(rng, 10, 35), _u(rng, -10, 25)]
        pose[f"knee.{side}"] = [_u(rng, 105, 140)]
        pose[f"ankle.{side}"] = [_u(rng, -25, 10)]
        pose[f"shoulder.{side}"] = [_u(rng, 20, 70), _u(rng, 10, 30), _u(rng, 0, 30)]
        pose[f"elbow.{side}"] = [_u(rng, 20, 90)]
    pose["spine"] = [_u(rng, 15, 40), _u(rng, -5, 5), _u(rng, -10, 10)]
    pose["neck"][0] = _u(rng, -35, 0)


def _reaching(pose: Pose, rng: np.random.Generator) -> None:
    _standing(pose, rng)
    side = rng.choice(SIDES)
    sign = 1 if side == "L" else -1
    pose[f"shoulder.{side}"] = [_u(rng, 50, 150), _u(rng, 0, 90), _u(rng, -20, 30)]
    pose[f"elbow.{side}"] = [_u(rng, 0, 25)]
    pose["spine"] = [_u(rng, 0, 35), sign * _u(rng, 0, 15), sign * _u(rng, 0, 25)]
    if rng.uniform() < 0.5:  # a step towards the target
        step = rng.choice(SIDES)
        pose[f"hip.{step}"][0] = _u(rng, 15, 35)
        pose[f"knee.{step}"] = [_u(rng, 10, 35)]


_FAMILY_SAMPLERS = {
    "standing": _standing,
    "walking": _walking,
    "running": _running,
    "arms_raised": _arms_raised,
    "arms_crossed": _arms_crossed,
    "sitting": _sitting,
    "crouching": _crouching,
    "reaching": _reaching,
}


# -- pose -> anny -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RestFrame:
    """Directions and angles of anny's rest pose (default body), anny frame, left side.

    Attributes:
        arm: (3,) unit direction shoulder -> elbow.
        elbow_axis: (3,) unit hinge axis of the elbow (the person's lateral axis made perpendicular to
            ``arm``); a negative rotation about it bends the elbow.
        thigh: (3,) unit direction hip -> knee.
        arm_abduction: degrees between ``arm`` and straight down, in the frontal plane.
        elbow_flexion: degrees between the upper arm and the forearm.
    """

    arm: np.ndarray
    elbow_axis: np.ndarray
    thigh: np.ndarray
    arm_abduction: float
    elbow_flexion: float


@functools.lru_cache(maxsize=1)
def rest_frame() -> RestFrame:
    """The :class:`RestFrame` of anny's default body (built once per process)."""
    from mould.datasets.bodies import _ANNY_TO_WORLD, body_bank, posed_bodies

    labels = body_bank().bone_labels
    heads = posed_bodies().bone_heads[0] @ _ANNY_TO_WORLD  # world -> anny frame (orthogonal matrix)

    def head(name: str) -> np.ndarray:
        return heads[labels.index(name)]

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.linalg.norm(v)

    arm = unit(head("lowerarm01.L") - head("upperarm01.L"))
    forearm = unit(head("wrist.L") - head("lowerarm01.L"))
    lateral = np.array([1.0, 0.0, 0.0])
    elbow_axis = unit(lateral - (lateral @ arm) * arm)
    return RestFrame(
        arm=arm,
        elbow_axis=elbow_axis,
        thigh=unit(head("lowerleg01.L") - head("upperleg01.L")),
        arm_abduction=float(np.degrees(np.arctan2(arm[0], -arm[2]))),
        elbow_flexion=float(np.degrees(np.arccos(np.clip(arm @ forearm, -1, 1)))),
    )


def _rotation(axis: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations about unit axes ((3,) or (..., 3)) by angles (...) in degrees (Rodrigues)."""
    degrees = np.asarray(degrees, dtype=np.float64)
    axis = np.broadcast_to(np.asarray(axis, dtype=np.float64), degrees.shape + (3,))
    angle = np.radians(degrees)[..., None, None]
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    k = np.zeros(degrees.shape + (3, 3))  # the cross-product matrix of the axis (filled: half stacking's time)
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 0] = -z, y, z
    k[..., 1, 2], k[..., 2, 0], k[..., 2, 1] = -x, -y, x
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


_X, _Y, _Z = np.eye(3)
_MIRROR = np.diag([-1.0, 1.0, 1.0])

# joint -> [(anny bone, share of the rotation)]: spine and neck bend over several vertebrae.
_CHAINS = {
    "spine": [("spine04", 0.2), ("spine03", 0.3), ("spine02", 0.3), ("spine01", 0.2)],
    "neck": [("neck01", 0.3), ("neck02", 0.2), ("neck03", 0.2), ("head", 0.3)],
}
_BONES = {
    "shoulder": "upperarm01",
    "elbow": "lowerarm01",
    "wrist": "wrist",
    "clavicle": "clavicle",
    "hip": "upperleg01",
    "knee": "lowerleg01",
    "ankle": "foot",
}


def joint_rotation(joint: str, angles: np.ndarray, rest: RestFrame | None = None) -> np.ndarray:
    """(..., 3, 3) float64 rotations of one joint's whole movement, anny frame, for the LEFT side or the
    centre, from (..., k) angles in degrees (k = the joint's count in :data:`JOINT_RANGES`).

    (Right-side joints are mirrored by :func:`pose_deltas`.)
    """
    rest = rest_frame() if rest is None else rest
    angles = np.asarray(angles, dtype=np.float64)
    a = [angles[..., i] for i in range(angles.shape[-1])]
    kind = joint.split(".")[0]
    if kind in ("spine", "neck"):
        return _rotation(_X, a[0]) @ _rotation(_Y, a[1]) @ _rotation(_Z, a[2])
    if kind == "shoulder":
        # Twist about the arm's own axis first, then swing it out of the rest A-pose to the abduction,
        # then forward about the lateral axis.
        return _rotation(_X, -a[0]) @ _rotation(_Y, -(a[1] - rest.arm_abduction)) @ _rotation(rest.arm, a[2])
    if kind == "elbow":
        return _rotation(rest.elbow_axis, -(a[0] - rest.elbow_flexion))
    if kind == "wrist":
        return _rotation(_X, -a[0]) @ _rotation(_Y, -a[1])
    if kind == "clavicle":
        return _rotation(_Y, -a[0])
    if kind == "hip":
        return _rotation(_X, -a[0]) @ _rotation(_Y, -a[1]) @ _rotation(rest.thigh, a[2])
    if kind in ("knee", "ankle"):
        return _rotation(_X, a[0])
    raise ValueError(f"joint: unknown joint {joint!r}")


def pose_deltas(poses: list[Pose], labels: tuple[str, ...]) -> np.ndarray:
    """(T, J, 3, 3) float64 anny ``local-ref`` rotations of T poses: one per bone of ``labels`` (the body
    bank's) about the bone's head, identity for the bones a pose does not move; the input of
    :func:`mould.datasets.posing.pose_bodies`. All poses at once (the generator converts several candidate
    poses per sample).

    Raises:
        ValueError: the poses do not name the same joints.
    """
    joints = list(poses[0]) if poses else []
    if any(list(pose) != joints for pose in poses):
        raise ValueError("poses: expected poses of the same joints (as sample_pose and neutral_pose make)")
    rest = rest_frame()
    out = np.tile(np.eye(3), (len(poses), len(labels), 1, 1))
    for joint in joints:
        kind, _, side = joint.partition(".")
        rotation = joint_rotation(joint, np.array([pose[joint] for pose in poses], dtype=np.float64), rest)
        if side == "R":
            rotation = _MIRROR @ rotation @ _MIRROR
        if kind in _CHAINS:
            axis, degrees = _axis_angle(rotation)
            for bone, share in _CHAINS[kind]:
                out[:, labels.index(bone)] = _rotation(axis, degrees * share)
        else:
            out[:, labels.index(f"{_BONES[kind]}.{side}")] = rotation
    return out


def pose_to_anny(pose: Pose):
    """The same rotations as anny's own ``pose_parameters``: a (1, J, 4, 4) float64 torch tensor of delta
    transforms, J bones in anny's order (to cross-check :mod:`mould.datasets.posing` against anny)."""
    import torch
    from mould.datasets.bodies import body_bank

    rotations = pose_deltas([pose], body_bank().bone_labels)
    matrices = np.tile(np.eye(4), (*rotations.shape[:2], 1, 1))
    matrices[..., :3, :3] = rotations
    return torch.from_numpy(matrices)


def _axis_angle(rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unit axes (..., 3), angles (...) in degrees) of (..., 3, 3) rotations below 180 degrees (any axis
    for the identity)."""
    angle = np.arccos(np.clip((np.trace(rotation, axis1=-2, axis2=-1) - 1) / 2, -1, 1))
    axis = np.stack(
        [
            rotation[..., 2, 1] - rotation[..., 1, 2],
            rotation[..., 0, 2] - rotation[..., 2, 0],
            rotation[..., 1, 0] - rotation[..., 0, 1],
        ],
        -1,
    )
    norm = np.linalg.norm(axis, axis=-1, keepdims=True)
    axis = np.where(norm > 1e-12, axis / np.maximum(norm, 1e-300), _X)
    return axis, np.degrees(np.where(angle < 1e-9, 0.0, angle))

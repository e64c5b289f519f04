"""Per-vertex body coordinates of anny's mesh, from its skinning weights: where garments and hair go.

anny's topology is the same for every body, so these coordinates are computed once per process on the
default body in its rest pose, and select the same skin for every phenotype and pose:

- **part weights**: the sum of each vertex's skinning weights over the bones of a part (torso, head,
  upper arms, forearms, hands, thighs, shins, feet), so "the sleeve covers the upper arm" is a threshold;
- **limb coordinates**: the position along the arm (shoulder 0, elbow 1, wrist 2) and along the leg (hip
  0, knee 1, ankle 2), so sleeve and trouser lengths are thresholds;
- **torso height**: 0 at the hip joints, 1 at the base of the neck;
- **head coordinates**: height over the head's centre in head radii, and the angle around it (0 = the
  face), for the scalp;
- **rest positions**: world frame, metres, the body-attached coordinates of garment patterns.
"""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass

import numpy as np
import torch

PARTS = {
    "torso": ("root", "pelvis.*", "spine*", "clavicle.*", "shoulder01.*"),
    "neck": ("neck*",),
    "head": ("head", "eye.*"),
    "upperarm.L": ("upperarm*.L",),
    "upperarm.R": ("upperarm*.R",),
    "forearm.L": ("lowerarm*.L",),
    "forearm.R": ("lowerarm*.R",),
    "hand.L": ("wrist.L", "finger*.L", "metacarpal*.L"),
    "hand.R": ("wrist.R", "finger*.R", "metacarpal*.R"),
    "thigh.L": ("upperleg*.L",),
    "thigh.R": ("upperleg*.R",),
    "shin.L": ("lowerleg*.L",),
    "shin.R": ("lowerleg*.R",),
    "foot.L": ("foot.L", "toe*.L"),
    "foot.R": ("foot.R", "toe*.R"),
}
"""Body part -> patterns of anny bone names."""


@dataclass(frozen=True)
class BodyAtlas:
    """Per-vertex coordinates of anny's mesh (V = 13718); see the module docstring.

    Attributes:
        part_weights: part name -> (V,) float64 in [0, 1].
        arm: (V,) float64 position along the nearer arm (0 shoulder, 1 elbow, 2 wrist; beyond: hand);
            meaningful where the arm weights are high.
        leg: (V,) float64 position along the nearer leg (0 hip, 1 knee, 2 ankle).
        torso_height: (V,) float64, 0 at the hip joints, 1 at the base of the neck.
        head_height: (V,) float64, height over the head's centre in head radii.
        head_angle: (V,) float64 radians about the vertical through the head's centre, 0 at the face,
            +pi/2 at the person's left.
        rest: (V, 3) float64 rest-pose positions, world frame (+Y up, facing +Z), metres.
        faces: (F, 3) int64 triangles.
        eyes: (2, 3) float64 centres of the left and right eyeballs (the bones ``eye.L``, ``eye.R``), the
            same frame: where the face is painted (:func:`mould.datasets.appearance.face_paint`).
    """

    part_weights: dict[str, np.ndarray]
    arm: np.ndarray
    leg: np.ndarray
    torso_height: np.ndarray
    head_height: np.ndarray
    head_angle: np.ndarray
    rest: np.ndarray
    faces: np.ndarray
    eyes: np.ndarray

    def weight(self, *parts: str) -> np.ndarray:
        """(V,) summed weights of several parts (``"arm"``, ``"leg"`` etc. expand to both sides)."""
        total = np.zeros(len(self.rest))
        for part in parts:
            names = [part] if part in self.part_weights else [f"{part}.L", f"{part}.R"]
            for name in names:
                total = total + self.part_weights[name]
        return total


def _chain_coordinate(points: np.ndarray, joints: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Position of points along a polyline of joints (segment i spans [i, i+1]) and distance to it."""
    best_t = np.zeros(len(points))
    best_d = np.full(len(points), np.inf)
    for i, (a, b) in enumerate(zip(joints[:-1], joints[1:])):
        ab = b - a
        t = np.clip((points - a) @ ab / (ab @ ab), 0, 1.5 if i == len(joints) - 2 else 1)
        d = np.linalg.norm(points - (a + t[:, None] * ab), axis=1)
        closer = d < best_d
        best_t[closer], best_d[closer] = i + t[closer], d[closer]
    return best_t, best_d


@functools.lru_cache(maxsize=1)
def body_atlas() -> BodyAtlas:
    """The :class:`BodyAtlas` of anny's mesh (built once per process, ~0.1 s after the model)."""
    from mould.datasets.bodies import anny_faces, body_bank, posed_bodies

    bank = body_bank()
    labels = bank.bone_labels
    indices = bank.skin_bones.numpy()
    weights = bank.skin_weights.numpy().astype(np.float64)
    body = posed_bodies()
    rest, heads = body.vertices[0], body.bone_heads[0]
    count = len(rest)

    part_weights = {}
    for part, patterns in PARTS.items():
        bones = [i for i, label in enumerate(labels) if any(fnmatch.fnmatch(label, p) for p in patterns)]
        part_weights[part] = np.where(np.isin(indices, bones), weights, 0).sum(axis=1)

    def head(name: str) -> np.ndarray:
        return heads[labels.index(name)]

    arm, leg = np.zeros(count), np.zeros(count)
    arm_distance, leg_distance = np.full(count, np.inf), np.full(count, np.inf)
    for side in ("L", "R"):
        t, d = _chain_coordinate(
            rest, [head(f"upperarm01.{side}"), head(f"lowerarm01.{side}"), head(f"wrist.{side}")]
        )
        closer = d < arm_distance
        arm[closer], arm_distance[closer] = t[closer], d[closer]
        t, d = _chain_coordinate(
            rest, [head(f"upperleg01.{side}"), head(f"lowerleg01.{side}"), head(f"foot.{side}")]
        )
        closer = d < leg_distance
        leg[closer], leg_distance[closer] = t[closer], d[closer]

    hip_y = (head("upperleg01.L")[1] + head("upperleg01.R")[1]) / 2
    torso_height = (rest[:, 1] - hip_y) / (head("neck01")[1] - hip_y)

    head_vertices = rest[part_weights["head"] > 0.9]
    centre = head_vertices.mean(axis=0)
    radius = float(np.median(np.linalg.norm(head_vertices - centre, axis=1)))
    relative = rest - centre
    return BodyAtlas(
        part_weights=part_weights,
        arm=arm,
        leg=leg,
        torso_height=torso_height,
        head_height=relative[:, 1] / radius,
        head_angle=np.arctan2(relative[:, 0], relative[:, 2]),
        rest=rest,
        faces=anny_faces(),
        eyes=np.stack([head("eye.L"), head("eye.R")]),
    )


NOISE_VARIANTS = 8
"""How many noise fields :func:`atlas_tensors` keeps per scale (folds and hair bumps need variety across
samples, not a fresh field each time)."""
NOISE_SCALES = (0.09, 0.04, 0.015)
"""Feature sizes of the surface noise fields, metres: garment folds, hair bumps, curls."""


@dataclass(frozen=True, eq=False)
class AtlasTensors:
    """The atlas as float32 torch tensors on one device, and the weight sums garments and hair read.

    Attributes:
        arm, leg, torso_height, head_height, head_angle: (V,) as in :class:`BodyAtlas`.
        rest: (V, 3) rest positions; faces: (F, 3) int64; eyes: (2, 3) as in :class:`BodyAtlas`.
        weights: name -> (V,) summed part weights: ``arm`` (upper arm, forearm, hand), ``leg`` (thigh, shin,
            foot), ``head_neck``, ``head``, ``foot``, ``shin``, ``upperarm``, ``upper_body`` (head, neck,
            torso).
        noise: (len(NOISE_SCALES), NOISE_VARIANTS, V) smooth noise fields in about [-1, 1] over the rest
            surface, features ``NOISE_SCALES`` metres wide.
    """

    arm: torch.Tensor
    leg: torch.Tensor
    torso_height: torch.Tensor
    head_height: torch.Tensor
    head_angle: torch.Tensor
    rest: torch.Tensor
    faces: torch.Tensor
    eyes: torch.Tensor
    weights: dict[str, torch.Tensor]
    noise: torch.Tensor


@functools.lru_cache(maxsize=4)
def atlas_tensors(device: torch.device) -> AtlasTensors:
    """The :class:`AtlasTensors` of anny's mesh on ``device`` (built once per process and device)."""
    from mould.datasets.noise import noise_offsets, value_noise

    atlas = body_atlas()

    def tensor(values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(values, dtype=torch.float32, device=device)

    sums = {
        "arm": ("upperarm", "forearm", "hand"),
        "leg": ("thigh", "shin", "foot"),
        "head_neck": ("head", "neck"),
        "head": ("head",),
        "foot": ("foot",),
        "shin": ("shin",),
        "upperarm": ("upperarm",),
        "upper_body": ("head", "neck", "torso"),
    }
    rest = tensor(atlas.rest)
    fields = [
        [value_noise(rest / scale, noise_offsets(1000 + k)) for k in range(NOISE_VARIANTS)]
        for scale in NOISE_SCALES
    ]
    noise = torch.stack([torch.stack(row) for row in fields])
    return AtlasTensors(
        arm=tensor(atlas.arm),
        leg=tensor(atlas.leg),
        torso_height=tensor(atlas.torso_height),
        head_height=tensor(atlas.head_height),
        head_angle=tensor(atlas.head_angle),
        rest=rest,
        faces=torch.as_tensor(atlas.faces, device=device),
        eyes=tensor(atlas.eyes),
        weights={name: tensor(atlas.weight(*parts)) for name, parts in sums.items()},
        noise=noise,
    )

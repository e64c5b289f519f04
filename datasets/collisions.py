"""Self-collisions of a posed anny body: a capsule test on pairs of body parts that may not interpenetrate.

Used to reject sampled poses (:mod:`mould.datasets.poses`) whose limbs pass through each other or through
the torso; touching (a hand on a hip, crossed arms) is allowed.
"""

from __future__ import annotations

import fnmatch
import functools

import numpy as np
import torch
from mould.datasets.poses import SIDES

_SEGMENTS = {
    # name: (start bone, end bone, bone-name patterns whose vertices give the radius)
    "torso": ("spine04", "neck01", ("spine*", "root", "pelvis*")),
    "head": ("head", None, ("head", "neck03")),
    **{
        f"{part}.{side}": (f"{start}.{side}", f"{end}.{side}", tuple(f"{p}*.{side}" for p in prefixes))
        for side in SIDES
        for part, start, end, prefixes in (
            ("upperarm", "upperarm01", "lowerarm01", ("upperarm",)),
            ("forearm", "lowerarm01", "wrist", ("lowerarm",)),
            ("hand", "wrist", "finger3-2", ("wrist", "finger", "metacarpal")),
            ("thigh", "upperleg01", "lowerleg01", ("upperleg",)),
            ("shin", "lowerleg01", "foot", ("lowerleg",)),
        )
    },
}

_PAIRS = [
    ("forearm.L", "forearm.R"),
    ("hand.L", "hand.R"),
    ("forearm.L", "hand.R"),
    ("forearm.R", "hand.L"),
    ("thigh.L", "thigh.R"),
    ("shin.L", "shin.R"),
    ("thigh.L", "shin.R"),
    ("thigh.R", "shin.L"),
    *[(f"{a}.{s}", b) for s in SIDES for a in ("forearm", "hand") for b in ("torso", "head")],
    *[
        (f"{a}.{s}", f"{b}.{t}")
        for s in SIDES
        for t in SIDES
        for a in ("forearm", "hand")
        for b in ("thigh", "shin")
    ],
    *[(f"shin.{s}", "torso") for s in SIDES],
]
"""Pairs of body parts that may not pass through each other (neighbours along a limb may touch)."""

COLLISION_OVERLAP = 0.6
"""Two parts collide when their capsules' axes come closer than this fraction of the sum of their radii:
touching (a hand on a hip, crossed arms) is allowed, passing through is not."""


@functools.lru_cache(maxsize=4)
def _segments(device: torch.device) -> dict[str, tuple[int, int | None, torch.Tensor]]:
    """Part name -> (start bone, end bone or None, indices of the vertices whose main bone belongs to it)."""
    from mould.datasets.bodies import body_bank

    bank = body_bank()
    labels = bank.bone_labels
    main_bone = bank.skin_bones.gather(1, bank.skin_weights.argmax(1, keepdim=True))[:, 0].numpy()
    out = {}
    for name, (start, end, prefixes) in _SEGMENTS.items():
        bones = [i for i, label in enumerate(labels) if any(fnmatch.fnmatch(label, p) for p in prefixes)]
        members = torch.as_tensor(np.flatnonzero(np.isin(main_bone, bones)), device=device)
        out[name] = (labels.index(start), None if end is None else labels.index(end), members)
    return out


def body_collisions(vertices: torch.Tensor, bone_heads: torch.Tensor) -> list[list[tuple[str, str, float]]]:
    """Pairs of body parts that pass through each other, by a capsule test, for a batch of bodies.

    Each part is a capsule around its bone with the median distance of its vertices as radius (the
    torso: the 20th percentile, its thin front-to-back half-depth; the head: a sphere). Cheap, conservative:
    it misses grazing contacts and catches limbs inside limbs or inside the torso.

    Args:
        vertices: (B, 13718, 3) float, posed bodies, metres (any frame).
        bone_heads: (B, 104, 3) float, their bone heads in the same frame.

    Returns:
        Per body, (part, part, overlap) for each colliding pair, overlap = 1 - distance / (sum of radii).
    """
    samples, radii = {}, {}
    t = torch.linspace(0, 1, 12, dtype=vertices.dtype, device=vertices.device)[None, :, None]
    for name, (start, end, members) in _segments(vertices.device).items():
        points = vertices[:, members]  # (B, n, 3)
        if end is None:
            centre = points.mean(1)
            samples[name] = centre[:, None]
            radii[name] = (points - centre[:, None]).norm(dim=-1).quantile(0.5, dim=1)
            continue
        a, b = bone_heads[:, start], bone_heads[:, end]
        samples[name] = a[:, None] + t * (b - a)[:, None]
        length = (b - a).norm(dim=-1, keepdim=True)
        direction = (b - a) / length.clamp_min(1e-9)
        along = torch.minimum(((points - a[:, None]) * direction[:, None]).sum(-1).clamp_min(0), length)
        distance = (points - (a[:, None] + along[..., None] * direction[:, None])).norm(dim=-1)
        radii[name] = distance.quantile(0.2 if name == "torso" else 0.5, dim=1)
    overlaps = []
    for first, second in _PAIRS:
        gap = torch.cdist(samples[first], samples[second]).flatten(1).amin(1)
        overlaps.append(1 - gap / (radii[first] + radii[second]))
    table = torch.stack(overlaps, 1).cpu().tolist()
    return [
        [(first, second, float(o)) for (first, second), o in zip(_PAIRS, row) if o > COLLISION_OVERLAP]
        for row in table
    ]

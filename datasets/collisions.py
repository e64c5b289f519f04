"""Self-collisions of a posed anny body: a capsule test on pairs of body parts that may not interpenetrate.

Used to reject sampled poses (:mod:`mould.datasets.poses`) whose limbs pass through each other or through
the torso; touching (a hand on a hip, crossed arms) is allowed.
"""

from __future__ import annotations

import fnmatch
import functools

import numpy as np
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


@functools.lru_cache(maxsize=1)
def _segment_vertices() -> dict[str, np.ndarray]:
    """Part name -> indices of the vertices whose main bone belongs to it (the radius estimate)."""
    from mould.datasets.bodies import body_bank

    bank = body_bank()
    labels = bank.bone_labels
    main_bone = bank.skin_bones.numpy()[np.arange(bank.vertex_count), bank.skin_weights.numpy().argmax(axis=1)]
    out = {}
    for name, (_, _, prefixes) in _SEGMENTS.items():
        bones = [i for i, label in enumerate(labels) if any(fnmatch.fnmatch(label, p) for p in prefixes)]
        out[name] = np.flatnonzero(np.isin(main_bone, bones))
    return out


def body_collisions(vertices: np.ndarray, bone_heads: np.ndarray) -> list[tuple[str, str, float]]:
    """Pairs of body parts that pass through each other, by a capsule test.

    Each part is a capsule around its bone with the median distance of its vertices as radius (the
    torso: the 20th percentile, its thin front-to-back half-depth; the head: a sphere). Cheap (~1 ms),
    conservative: it misses grazing contacts and catches limbs inside limbs or inside the torso.

    Args:
        vertices: (13718, 3) float, posed body, metres.
        bone_heads: (104, 3) float, its bone heads, metres.

    Returns:
        (part, part, overlap) for each colliding pair, overlap = 1 - distance / (sum of radii).
    """
    from mould.datasets.bodies import body_bank

    labels = body_bank().bone_labels
    members = _segment_vertices()
    samples, radii = {}, {}
    t = np.linspace(0, 1, 12)[:, None]
    for name, (start, end, _) in _SEGMENTS.items():
        points = vertices[members[name]]
        if end is None:
            centre = points.mean(axis=0)
            samples[name] = centre[None]
            radii[name] = float(np.median(np.linalg.norm(points - centre, axis=1)))
            continue
        a, b = bone_heads[labels.index(start)], bone_heads[labels.index(end)]
        samples[name] = a + t * (b - a)
        direction = (b - a) / max(np.linalg.norm(b - a), 1e-9)
        along = np.clip((points - a) @ direction, 0, np.linalg.norm(b - a))
        distance = np.linalg.norm(points - (a + along[:, None] * direction), axis=1)
        radii[name] = float(np.percentile(distance, 20 if name == "torso" else 50))
    hits = []
    for first, second in _PAIRS:
        gap = np.linalg.norm(samples[first][:, None] - samples[second][None], axis=-1).min()
        overlap = 1 - gap / (radii[first] + radii[second])
        if overlap > COLLISION_OVERLAP:
            hits.append((first, second, float(overlap)))
    return hits

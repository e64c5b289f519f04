"""Self-collisions of a posed anny body: a capsule test on pairs of body parts that may not interpenetrate.

Used to reject sampled poses (:mod:`mould.datasets.poses`) whose limbs pass through each other or through
the torso; touching (a hand on a hip, crossed arms) is allowed.
"""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass

import numpy as np
import torch
from mould.datasets.poses import SIDES
from mould.datasets.shells import linear_quantile

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


@dataclass(frozen=True, eq=False)
class _Parts:
    """The parts of :data:`_SEGMENTS` as flat tensors on one device (P parts, M member vertices).

    Attributes:
        names: the P part names; ends: (P, 2) int64 start and end bones (a sphere part: end = start).
        sphere: (P,) bool, parts tested as spheres (the head); quantile: (P,) the radius' quantile.
        members: (M,) int64 member vertices, grouped by part; part: (M,) int64 each member's part.
        first, count: (P,) int64 where each part's members start in ``members``, and how many.
    """

    names: tuple[str, ...]
    ends: torch.Tensor
    sphere: torch.Tensor
    quantile: torch.Tensor
    members: torch.Tensor
    part: torch.Tensor
    first: torch.Tensor
    count: torch.Tensor


@functools.lru_cache(maxsize=4)
def _parts(device: torch.device) -> _Parts:
    """The parts' bones and member vertices (those whose main bone belongs to the part)."""
    from mould.datasets.bodies import body_bank

    bank = body_bank()
    labels = bank.bone_labels
    main_bone = bank.skin_bones.gather(1, bank.skin_weights.argmax(1, keepdim=True))[:, 0].numpy()
    ends, members, part, counts = [], [], [], []
    for index, (_name, (start, end, prefixes)) in enumerate(_SEGMENTS.items()):
        bones = [i for i, label in enumerate(labels) if any(fnmatch.fnmatch(label, p) for p in prefixes)]
        chosen = np.flatnonzero(np.isin(main_bone, bones))
        ends.append((labels.index(start), labels.index(end if end is not None else start)))
        members.append(chosen)
        part.append(np.full(len(chosen), index))
        counts.append(len(chosen))
    names = tuple(_SEGMENTS)

    def tensor(values, dtype=torch.int64) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values), dtype=dtype, device=device)

    return _Parts(
        names=names,
        ends=tensor(ends),
        sphere=tensor([_SEGMENTS[n][1] is None for n in names], torch.bool),
        quantile=tensor([0.2 if n == "torso" else 0.5 for n in names], torch.float32),
        members=tensor(np.concatenate(members)),
        part=tensor(np.concatenate(part)),
        first=tensor(np.cumsum([0, *counts[:-1]])),
        count=tensor(counts),
    )


def body_collisions(vertices: torch.Tensor, bone_heads: torch.Tensor) -> list[list[tuple[str, str, float]]]:
    """Pairs of body parts that pass through each other, by a capsule test, for a batch of bodies.

    Each part is a capsule around its bone with the median distance of its vertices as radius (the
    torso: the 20th percentile, its thin front-to-back half-depth; the head: a sphere around the mean of
    its vertices). Cheap, conservative: it misses grazing contacts and catches limbs inside limbs or inside
    the torso. All parts of all bodies are measured at once.

    Args:
        vertices: (B, 13718, 3) float, posed bodies, metres (any frame).
        bone_heads: (B, 104, 3) float, their bone heads in the same frame.

    Returns:
        Per body, (part, part, overlap) for each colliding pair, overlap = 1 - distance / (sum of radii).
    """
    parts = _parts(vertices.device)
    batch, count = len(vertices), len(parts.names)
    # index_select, not x[:, index]: the same gathers, 3-5x faster on a CPU
    points = vertices.index_select(1, parts.members)  # (B, M, 3)
    a, b = (bone_heads.index_select(1, parts.ends[:, k]) for k in (0, 1))  # (B, P, 3)
    sums = torch.zeros((count, batch, 3), dtype=points.dtype, device=points.device)  # summed along dim 0: ~8x
    sums.index_add_(0, parts.part, points.transpose(0, 1))  # faster on a CPU than along dim 1, the same sums
    means = sums.transpose(0, 1) / parts.count[None, :, None].to(points.dtype)
    a = torch.where(parts.sphere[None, :, None], means, a)  # a sphere is a capsule of zero length
    b = torch.where(parts.sphere[None, :, None], means, b)
    length = (b - a).norm(dim=-1, keepdim=True)
    direction = (b - a) / length.clamp_min(1e-9)
    start, axis, reach = (t.index_select(1, parts.part) for t in (a, direction, length[..., 0]))
    along = torch.minimum(((points - start) * axis).sum(-1).clamp_min(0), reach)
    distance = (points - (start + along[..., None] * axis)).norm(dim=-1)  # (B, M)
    radius = torch.stack(  # (B, P): each part's quantile of its members' distances
        [
            linear_quantile(distance[:, first : first + size], quantile)
            for first, size, quantile in zip(parts.first.tolist(), parts.count.tolist(), parts.quantile.tolist())
        ],
        1,
    )
    t = torch.linspace(0, 1, 12, dtype=points.dtype, device=points.device)[None, None, :, None]
    samples = a[:, :, None] + t * (b - a)[:, :, None]  # (B, P, 12, 3); a sphere's 12 samples coincide
    gaps = torch.cdist(samples.reshape(batch, -1, 3), samples.reshape(batch, -1, 3)).reshape(
        batch, count, 12, count, 12
    )
    closest = gaps.amin(dim=(2, 4))  # (B, P, P)
    index = {name: i for i, name in enumerate(parts.names)}
    first = torch.tensor([index[p] for p, _ in _PAIRS], device=points.device)
    second = torch.tensor([index[q] for _, q in _PAIRS], device=points.device)
    overlap = 1 - closest[:, first, second] / (radius[:, first] + radius[:, second])
    return [
        [(p, q, float(o)) for (p, q), o in zip(_PAIRS, row) if o > COLLISION_OVERLAP]
        for row in overlap.cpu().tolist()
    ]

"""Hair as geometry: a shell over the scalp, and for longer styles a curtain, a ponytail or a bun.

The scalp is the head's skin above a hairline that runs from the forehead down to the nape
(:class:`mould.datasets.atlas.BodyAtlas` head coordinates). Long hair hangs along world -Y from the head,
over the neck, shoulders and back (:func:`mould.datasets.shells.drape`), so it changes the silhouette and,
above all, the back surface of the mould.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from mould.datasets.appearance import Material, hair_material
from mould.datasets.atlas import NOISE_SCALES, NOISE_VARIANTS, AtlasTensors
from mould.datasets.shells import Surfaces, drape, ellipsoid, masked_quantile, offset_shells, tube

STYLES = ("bald", "short", "curly", "bob", "long", "bun", "ponytail")
STYLE_WEIGHTS = (0.08, 0.3, 0.1, 0.15, 0.17, 0.08, 0.12)


@dataclass(frozen=True)
class Hairstyle:
    """One hairstyle.

    Attributes:
        style: one of :data:`STYLES`.
        thickness: the hair's thickness over the scalp, metres.
        hairline: head height of the front hairline, in head radii over the head's centre.
        nape: head height of the back hairline, head radii.
        length: how far bob, long hair or a ponytail hangs below the head's centre, metres.
        volume: curl amplitude (curly), bun radius, ponytail radius, metres.
        material: its colour.
        asset: a MakeHuman hair mesh of this style worn instead of the procedural hair
            (:mod:`mould.datasets.wardrobe`; the numbers above are then unused), or "".
    """

    style: str
    thickness: float = 0.01
    hairline: float = 1.2
    nape: float = -0.6
    length: float = 0.0
    volume: float = 0.0
    material: Material | None = None
    asset: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def wardrobe_hair(rng: np.random.Generator, hairstyle: Hairstyle, share: float) -> Hairstyle:
    """With probability ``share``, the hairstyle drawn as one of MakeHuman's hair meshes of its style (short,
    curly, bob, long or ponytail; bald and buns stay as they are), in its colour."""
    from mould.datasets.wardrobe import garment_names

    meshes = garment_names("hair", hairstyle.style)
    if rng.uniform() >= share or not meshes:
        return hairstyle
    return dataclasses.replace(hairstyle, asset=str(rng.choice(meshes)))


def sample_hairstyle(rng: np.random.Generator) -> Hairstyle:
    """A hairstyle drawn by :data:`STYLE_WEIGHTS`."""
    weights = np.array(STYLE_WEIGHTS)
    style = STYLES[int(rng.choice(len(STYLES), p=weights / weights.sum()))]
    u = rng.uniform
    # The hairline at the face, in head radii over the head's centre: the eyes are at 0.4, the eyebrows at
    # 0.7, the crown at 2.4 (anny's default body); 0.8-1.0 is a fringe down to the eyebrows, 1.6 a high
    # forehead. (Up to generator version 4 it was 0.3-0.6: the hair covered every face down to the eyes.)
    common = {"hairline": u(0.8, 1.6), "nape": u(-0.9, -0.45), "material": hair_material(rng)}
    if style == "bald":
        return Hairstyle(style, thickness=0.0, **common)
    if style == "short":
        return Hairstyle(style, thickness=u(0.005, 0.02), **common)
    if style == "curly":
        return Hairstyle(style, thickness=u(0.025, 0.06), volume=u(0.005, 0.02), **common)
    if style == "bob":
        return Hairstyle(style, thickness=u(0.01, 0.025), length=u(0.08, 0.16), **common)
    if style == "long":
        return Hairstyle(style, thickness=u(0.01, 0.025), length=u(0.2, 0.5), **common)
    if style == "bun":
        return Hairstyle(style, thickness=u(0.005, 0.012), volume=u(0.035, 0.06), **common)
    return Hairstyle(style, thickness=u(0.005, 0.012), length=u(0.12, 0.35), volume=u(0.015, 0.03), **common)


HAIR_FIELDS = ("thickness", "hairline", "nape", "length", "volume")
"""The numbers of a :class:`Hairstyle` that shape it, in the column order of :func:`hair_table`."""
HAIR_RINGS, HAIR_SECTORS = 16, 40
"""Rings from the crown to the ends, and sectors around the back of the head, of bob and long hair."""


def hair_table(styles: list[Hairstyle]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(style codes (H,) int64 into :data:`STYLES`, numbers (H, 5) float64 (:data:`HAIR_FIELDS`), noise
    variants (H,) int64) of hairstyles, for the batched builders below."""
    codes = np.array([STYLES.index(h.style) for h in styles], dtype=np.int64)
    numbers = np.array([[getattr(h, name) for name in HAIR_FIELDS] for h in styles], dtype=np.float64)
    variants = np.array([h.material.seed if h.material else 0 for h in styles], dtype=np.int64)
    return codes, numbers.reshape(-1, len(HAIR_FIELDS)), variants % NOISE_VARIANTS


def scalp_shells(
    codes: torch.Tensor, numbers: torch.Tensor, variants: torch.Tensor, vertices: torch.Tensor,
    normals: torch.Tensor, atlas: AtlasTensors,
) -> Surfaces:  # fmt: skip
    """The hair over the scalp of H hairstyles (none is bald): the head's skin above a hairline that runs
    from the forehead down to the nape, thin at the hairline and full a few centimetres in.

    Args:
        codes, numbers, variants: from :func:`hair_table`, as tensors on the bodies' device.
        vertices, normals: (H, V, 3) float, each one's posed body and unit vertex normals, world frame.
        atlas: the body atlas on that device.
    """
    thickness, hairline, nape, _, volume = (numbers[:, i, None] for i in range(5))
    threshold = hairline + (nape - hairline) * (1 - torch.cos(atlas.head_angle[None])) / 2
    above = atlas.head_height[None] - threshold
    scalp = (atlas.weights["head"][None] > 0.5) & (above > 0)
    taper = 0.3 + 0.7 * (above / 0.4).clamp(0, 1)
    bumps = atlas.noise[NOISE_SCALES.index(0.04)].index_select(0, variants)
    curls = atlas.noise[NOISE_SCALES.index(0.015)].index_select(0, variants) * volume
    offset = thickness * taper * (1 + 0.25 * bumps) + torch.where(
        codes[:, None] == STYLES.index("curly"), curls, 0.0
    )
    return offset_shells(vertices, normals, atlas.faces, scalp, offset.clamp_min(0.002), atlas.rest)


@dataclass(frozen=True)
class HeadFrame:
    """Where a posed head is and faces, for the hair that hangs from it.

    Attributes:
        centre: (H, 3) float, the head's centre; radius: (H,) float, its median radius, metres.
        facing: (H,) float, radians about +Y the face points to; back, up: (H, 3) unit vectors.
    """

    centre: torch.Tensor
    radius: torch.Tensor
    facing: torch.Tensor
    back: torch.Tensor
    up: torch.Tensor


def head_frames(vertices: torch.Tensor, atlas: AtlasTensors) -> HeadFrame:
    """The :class:`HeadFrame` of (H, V, 3) posed bodies."""
    head = (atlas.weights["head"] > 0.9)[None].expand(len(vertices), -1)
    centre = (vertices * head[..., None]).sum(1) / head.sum(1, keepdim=True)
    radius = masked_quantile((vertices - centre[:, None]).norm(dim=-1), head, 0.5)
    face = head & (atlas.head_angle.abs() < 0.3) & (atlas.head_height.abs() < 0.3)
    forward = (vertices * face[..., None]).sum(1) / face.sum(1, keepdim=True) - centre
    facing = torch.atan2(forward[:, 0], forward[:, 2])
    back = -torch.stack([torch.sin(facing), torch.zeros_like(facing), torch.cos(facing)], 1)
    up = torch.zeros_like(back)
    up[:, 1] = 1.0
    return HeadFrame(centre, radius, facing, back, up)


def hanging_hair(numbers: torch.Tensor, vertices: torch.Tensor, frame: HeadFrame, atlas: AtlasTensors) -> Surfaces:
    """Bob or long hair: a curtain hanging from the crown over the neck, shoulders and back.

    Args:
        numbers: (H, 5) float (:data:`HAIR_FIELDS`); vertices: (H, V, 3) posed bodies; frame: their heads.
    """
    thickness, length = numbers[:, 0], numbers[:, 3]
    steps = torch.linspace(0, 1, HAIR_RINGS, dtype=vertices.dtype, device=vertices.device)
    top = frame.centre[:, 1] + 0.1 * frame.radius
    heights = top[:, None] + ((frame.centre[:, 1] - length) - top)[:, None] * steps[None]
    sweep = torch.deg2rad(torch.linspace(65, 295, HAIR_SECTORS, dtype=vertices.dtype, device=vertices.device))
    angles = frame.facing[:, None] + sweep[None]
    w = atlas.weights
    resting = (w["upper_body"] > 0.5) | ((w["upperarm"] > 0.5) & (atlas.arm < 0.6))
    return drape(
        vertices,
        resting[None].expand(len(vertices), -1),
        frame.centre[:, [0, 2]],
        heights,
        angles,
        offset=thickness,
        min_radius=(frame.radius * 0.8)[:, None].expand(-1, HAIR_RINGS),
        tuck=0.03,
        wrap=False,
    )


def buns(numbers: torch.Tensor, frame: HeadFrame) -> Surfaces:
    """A bun at the back of the head, ``volume`` metres in radius."""
    centre = frame.centre + frame.back * frame.radius[:, None] * 0.85 + frame.up * frame.radius[:, None] * 0.55
    return ellipsoid(centre, numbers[:, 4:5].expand(-1, 3))


def ponytails(numbers: torch.Tensor, frame: HeadFrame) -> Surfaces:
    """A ponytail from the back of the head, ``length`` metres long, ``volume`` metres thick at its root."""
    length, volume = numbers[:, 3:4], numbers[:, 4:5]
    anchor = frame.centre + frame.back * frame.radius[:, None] + frame.up * frame.radius[:, None] * 0.15
    t = torch.linspace(0, 1, 10, dtype=numbers.dtype, device=numbers.device)[None]
    path = (
        anchor[:, None]
        + frame.back[:, None] * (0.03 * torch.sin(t * torch.pi / 2))[..., None]
        - frame.up[:, None] * (length * t)[..., None]
    )
    return tube(path, volume * (1 - 0.6 * t), sides=10)

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
from mould.datasets.appearance import Material, hair_material
from mould.datasets.atlas import BodyAtlas, surface_noise
from mould.datasets.shells import Surface, drape, ellipsoid, offset_shell, tube

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
    """

    style: str
    thickness: float = 0.01
    hairline: float = 0.45
    nape: float = -0.6
    length: float = 0.0
    volume: float = 0.0
    material: Material | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def sample_hairstyle(rng: np.random.Generator) -> Hairstyle:
    """A hairstyle drawn by :data:`STYLE_WEIGHTS`."""
    weights = np.array(STYLE_WEIGHTS)
    style = STYLES[int(rng.choice(len(STYLES), p=weights / weights.sum()))]
    u = rng.uniform
    common = {"hairline": u(0.3, 0.6), "nape": u(-0.9, -0.45), "material": hair_material(rng)}
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


def hair_surfaces(style: Hairstyle, atlas: BodyAtlas, vertices: np.ndarray, normals: np.ndarray) -> list[Surface]:
    """The geometry of a hairstyle on one posed body (world frame); empty when bald.

    Args:
        style: the hairstyle.
        atlas: the body's per-vertex coordinates.
        vertices, normals: (V, 3) float, the posed body and its unit vertex normals.
    """
    if style.style == "bald":
        return []
    head_w = atlas.weight("head")
    threshold = style.hairline + (style.nape - style.hairline) * (1 - np.cos(atlas.head_angle)) / 2
    above = atlas.head_height - threshold
    scalp = (head_w > 0.5) & (above > 0)
    seed = style.material.seed if style.material else 0
    noise = surface_noise(0.04, seed)
    # Thin at the hairline, full thickness a few centimetres in.
    taper = 0.3 + 0.7 * np.clip(above / 0.4, 0, 1)
    offset = style.thickness * taper * (1 + 0.25 * noise)
    if style.style == "curly":
        offset = offset + style.volume * surface_noise(0.015, seed)
    surfaces = [offset_shell(vertices, normals, atlas.faces, scalp, np.maximum(offset, 0.002), atlas.rest)]

    head = vertices[head_w > 0.9]
    centre = head.mean(axis=0)
    radius = float(np.median(np.linalg.norm(head - centre, axis=1)))
    face = vertices[(head_w > 0.9) & (np.abs(atlas.head_angle) < 0.3) & (np.abs(atlas.head_height) < 0.3)]
    forward = face.mean(axis=0) - centre
    facing = float(np.arctan2(forward[0], forward[2]))
    back = -np.array([np.sin(facing), 0.0, np.cos(facing)])
    up = np.array([0.0, 1.0, 0.0])
    if style.style in ("bob", "long"):
        top = centre[1] + 0.1 * radius
        heights = np.linspace(top, centre[1] - style.length, max(6, int(style.length / 0.025)))
        angles = facing + np.radians(np.linspace(65, 295, 40))
        resting = (atlas.weight("head", "neck", "torso") > 0.5) | (
            (atlas.weight("upperarm") > 0.5) & (atlas.arm < 0.6)
        )
        surfaces.append(
            drape(
                vertices[resting],
                centre[[0, 2]],
                heights,
                angles,
                offset=style.thickness,
                min_radius=np.full(len(heights), radius * 0.8),
                tuck=0.03,
                wrap=False,
            )
        )
    elif style.style == "bun":
        surfaces.append(ellipsoid(centre + back * radius * 0.85 + up * radius * 0.55, np.full(3, style.volume)))
    elif style.style == "ponytail":
        anchor = centre + back * radius * 1.0 + up * radius * 0.15
        t = np.linspace(0, 1, 10)
        path = (
            anchor[None]
            + back[None] * (0.03 * np.sin(t * np.pi / 2))[:, None]
            - up[None] * (style.length * t)[:, None]
        )
        surfaces.append(tube(path, style.volume * (1 - 0.6 * t), sides=10))
    return [surface for surface in surfaces if surface is not None]

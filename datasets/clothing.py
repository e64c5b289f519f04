"""Garments as geometry, built procedurally from the posed body.

Tops, jackets, trousers, shorts and shoes are **offset shells**: the skin of a region chosen by the skinning
weights and limb coordinates of :mod:`mould.datasets.atlas` (the sleeve covers the arm up to its length),
pushed out by an ease that grows towards loose hems and ripples with folds. Skirts and the lower half of
dresses are **draped tubes** hanging from the waist around the legs (:func:`mould.datasets.shells.drape`),
so they span the gap between the legs as fabric does. Both change the silhouette and the back surface,
not only the colour.

A :class:`Garment` holds every number that built it (JSON-ready, stored with each sample).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from mould.datasets.appearance import Material, garment_material
from mould.datasets.atlas import BodyAtlas, surface_noise
from mould.datasets.shells import Surface, drape, offset_shell

KINDS = ("top", "jacket", "trousers", "shorts", "skirt", "dress", "shoes")


@dataclass(frozen=True)
class Garment:
    """One garment's shape and material.

    Attributes:
        kind: one of :data:`KINDS`.
        sleeve: arm coordinate the sleeve reaches (0 sleeveless, 0.4 short, 2 the wrist).
        leg: leg coordinate the trouser leg reaches (0.3 short shorts, 2 the ankle).
        hem: torso height of a top's lower hem (0 = hip joints, 1 = neck base; below 0 covers the hips).
        waist: torso height of a waistband.
        collar: torso height of the neckline.
        ease: distance of the fabric from the skin, metres.
        flare: extra ease at the hem (tops, trousers) or growth of a skirt's radius to the hem, metres.
        folds: amplitude of the folds, metres.
        length: skirt or dress length below the waist, as a fraction of the hip-to-ankle length.
        material: its colour and pattern.
    """

    kind: str
    sleeve: float = 0.0
    leg: float = 0.0
    hem: float = 0.0
    waist: float = 0.3
    collar: float = 0.95
    ease: float = 0.005
    flare: float = 0.0
    folds: float = 0.0
    length: float = 0.0
    material: Material | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def sample_outfit(rng: np.random.Generator, *, upright: bool) -> list[Garment]:
    """A plausible outfit, inner layers first: a dress, or a top and a bottom; maybe a jacket; maybe shoes.

    Args:
        upright: the pose keeps the hips near straight, so skirts and dresses may be drawn (a draped tube
            cannot follow a sitting person's thighs).
    """
    outfit: list[Garment] = []
    u = rng.uniform
    if upright and u() < 0.15:
        outfit.append(
            Garment(
                "dress",
                sleeve=float(rng.choice([0.0, 0.35, 0.9, 2.0])),
                waist=u(0.25, 0.45),
                collar=u(0.8, 0.97),
                ease=u(0.004, 0.012),
                flare=u(0.0, 0.25),
                folds=u(0.003, 0.015),
                length=u(0.3, 0.95),
                material=garment_material(rng),
            )
        )
        bottom_ease = 0.0
    else:
        bottom = float(u())
        if upright and bottom < 0.15:
            bottom_garment = Garment(
                "skirt",
                waist=u(0.2, 0.45),
                ease=u(0.004, 0.01),
                flare=u(0.0, 0.3),
                folds=u(0.003, 0.015),
                length=u(0.2, 0.9),
                material=garment_material(rng),
            )
        elif bottom < 0.3:
            bottom_garment = Garment(
                "shorts",
                leg=u(0.25, 0.9),
                waist=u(0.2, 0.4),
                ease=u(0.006, 0.03),
                flare=u(0.0, 0.02),
                folds=u(0.002, 0.008),
                material=garment_material(rng),
            )
        else:
            loose = u() < 0.5
            bottom_garment = Garment(
                "trousers",
                leg=u(1.8, 2.05),
                waist=u(0.2, 0.4),
                ease=u(0.012, 0.03) if loose else u(0.003, 0.008),
                flare=u(0.0, 0.03) if loose else u(0.0, 0.01),
                folds=u(0.004, 0.012) if loose else u(0.0, 0.003),
                material=garment_material(rng),
            )
        outfit.append(bottom_garment)
        bottom_ease = bottom_garment.ease if bottom_garment.kind != "skirt" else 0.0
        loose = u() < 0.45
        ease = u(0.012, 0.035) if loose else u(0.003, 0.009)
        outfit.append(
            Garment(
                "top",
                sleeve=float(rng.choice([0.0, 0.35, 0.45, 1.3, 2.0, 2.05])),
                hem=u(-0.15, 0.3),
                collar=u(0.8, 0.98),
                ease=max(ease, bottom_ease + 0.004),  # over the waistband, not through it
                flare=u(0.0, 0.03) if loose else 0.0,
                folds=u(0.005, 0.015) if loose else u(0.0, 0.003),
                material=garment_material(rng),
            )
        )
    if u() < 0.25:
        inner = max(g.ease for g in outfit if g.kind in ("top", "dress"))
        outfit.append(
            Garment(
                "jacket",
                sleeve=u(1.9, 2.05),
                hem=u(-0.3, 0.05),
                collar=u(0.95, 1.05),
                ease=inner + u(0.008, 0.02),
                flare=u(0.0, 0.02),
                folds=u(0.004, 0.012),
                material=garment_material(rng),
            )
        )
    if u() < 0.85:
        outfit.append(
            Garment(
                "shoes",
                leg=u(1.85, 2.0),
                ease=u(0.005, 0.012),
                flare=u(0.005, 0.02),
                material=garment_material(rng),
            )
        )
    return outfit


def garment_surfaces(
    garment: Garment,
    atlas: BodyAtlas,
    vertices: np.ndarray,
    normals: np.ndarray,
    bone_heads: dict[str, np.ndarray],
) -> list[Surface]:
    """The geometry of one garment on one posed body.

    Args:
        garment: what to build.
        atlas: the body's per-vertex coordinates.
        vertices, normals: (V, 3) float, the posed body and its unit vertex normals, world frame.
        bone_heads: bone name -> (3,) posed joint position, world frame (``upperleg01.L/R``, ``foot.L/R``).

    Returns:
        Zero, one or two surfaces (a dress is a shell and a drape).
    """
    arm_w = atlas.weight("upperarm", "forearm", "hand")
    leg_w = atlas.weight("thigh", "shin", "foot")
    head_w = atlas.weight("head", "neck")
    height = atlas.torso_height
    folds = surface_noise(0.09, garment.material.seed if garment.material else 0)
    kind = garment.kind
    if kind in ("top", "jacket", "dress"):
        hem = garment.waist if kind == "dress" else garment.hem
        body = (arm_w <= 0.5) & (head_w <= 0.5) & (height >= hem) & (height <= garment.collar)
        sleeve = (arm_w > 0.5) & (atlas.arm < garment.sleeve) & (head_w <= 0.5)
        covered = body | sleeve
        # Looser towards the hem and the cuffs, where fabric hangs free of the body.
        ramp = np.where(
            sleeve, atlas.arm / 2.0, np.clip((garment.collar - height) / max(garment.collar - hem, 0.1), 0, 1)
        )
        offset = garment.ease + garment.flare * ramp**2 + garment.folds * folds * ramp
    elif kind in ("trousers", "shorts", "skirt"):
        reach = 0.0 if kind == "skirt" else garment.leg
        legs = (leg_w > 0.5) & (atlas.leg < reach)
        hips = (leg_w <= 0.5) & (height <= garment.waist)
        covered = (legs | hips) & (arm_w <= 0.3) & (head_w <= 0.5)
        ramp = np.where(leg_w > 0.5, atlas.leg / 2.0, 0.0)
        offset = garment.ease + garment.flare * ramp**2 + garment.folds * folds * (0.3 + ramp)
    elif kind == "shoes":
        covered = (atlas.weight("foot") > 0.5) | ((atlas.weight("shin") > 0.5) & (atlas.leg > garment.leg))
        sole = np.clip(-normals[:, 1], 0, 1) * (atlas.rest[:, 1] < 0.04)
        offset = garment.ease + garment.flare * sole
    else:
        raise ValueError(f"garment kind: expected one of {KINDS}, got {kind!r}")
    surfaces = []
    shell = offset_shell(vertices, normals, atlas.faces, covered, np.maximum(offset, 0.002), atlas.rest)
    if shell is not None:
        surfaces.append(shell)
    if kind in ("skirt", "dress"):
        surfaces.append(_skirt(garment, atlas, vertices, arm_w, leg_w, bone_heads))
    return surfaces


def _skirt(
    garment: Garment,
    atlas: BodyAtlas,
    vertices: np.ndarray,
    arm_w: np.ndarray,
    leg_w: np.ndarray,
    bone_heads: dict[str, np.ndarray],
) -> Surface:
    """The draped part of a skirt or dress: from the waist down to its length, around both legs."""
    near_waist = np.abs(atlas.torso_height - garment.waist) < 0.03
    top = float(np.mean(vertices[near_waist & (arm_w < 0.1), 1]))
    hips = (bone_heads["upperleg01.L"] + bone_heads["upperleg01.R"]) / 2
    ankles = (bone_heads["foot.L"][1] + bone_heads["foot.R"][1]) / 2
    length = garment.length * max(hips[1] - ankles, 0.2) + (top - hips[1])
    heights = np.linspace(top, top - length, 14)
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    inside = (arm_w < 0.3) & ((leg_w > 0.3) | (atlas.torso_height < garment.waist + 0.05))
    centre = hips[[0, 2]]
    waist_points = vertices[near_waist & (arm_w < 0.1)]
    waist_radius = float(np.median(np.hypot(waist_points[:, 0] - centre[0], waist_points[:, 2] - centre[1])))
    min_radius = waist_radius + garment.flare * np.linspace(0, 1, len(heights)) ** 1.5
    surface = drape(
        vertices[inside],
        centre,
        heights,
        angles,
        offset=garment.ease + 0.005,
        min_radius=min_radius,
        tuck=0.0,
        wrap=True,
    )
    # Folds: ripple the radius around the ring, more towards the hem.
    ring = np.linspace(0, 1, len(heights))[:, None]
    ripple = (
        np.sin(angles[None] * int(8 + 10 * garment.flare / 0.3) + garment.length * 10) * garment.folds * ring * 2
    )
    relative = surface.vertices.reshape(len(heights), len(angles), 3) - np.array([centre[0], 0, centre[1]])
    radial = relative[..., [0, 2]] / np.maximum(
        np.linalg.norm(relative[..., [0, 2]], axis=-1, keepdims=True), 1e-9
    )
    moved = surface.vertices.reshape(len(heights), len(angles), 3).copy()
    moved[..., 0] += radial[..., 0] * ripple
    moved[..., 2] += radial[..., 1] * ripple
    return Surface(vertices=moved.reshape(-1, 3), faces=surface.faces, texcoords=surface.texcoords)

"""Garments as geometry, built procedurally from the posed body.

Tops, jackets, trousers, shorts and shoes are **offset shells**: the skin of a region chosen by the skinning
weights and limb coordinates of :mod:`mould.datasets.atlas` (the sleeve covers the arm up to its length),
pushed out by an ease that grows towards loose hems and ripples with folds. Skirts and the lower half of
dresses are **draped tubes** hanging from the waist around the legs (:func:`mould.datasets.shells.drape`),
so they span the gap between the legs as fabric does. Both change the silhouette and the back surface,
not only the colour.

A garment may instead be one modelled by people: MakeHuman's suits, shoes and hats, bound to the body's
surface (:mod:`mould.datasets.wardrobe`); :func:`wardrobe_outfit` swaps them in. Such a :class:`Garment`
names its mesh in ``asset`` and keeps only its kind and material.

A :class:`Garment` holds every number that built it (JSON-ready, stored with each sample).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from mould.datasets.appearance import Material, dark_material, garment_material
from mould.datasets.atlas import NOISE_SCALES, NOISE_VARIANTS, AtlasTensors
from mould.datasets.shells import Surfaces, drape, masked_quantile, offset_shells, vertex_normals

KINDS = ("top", "jacket", "trousers", "shorts", "skirt", "dress", "shoes", "hat")


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
        asset: the MakeHuman mesh it is (:mod:`mould.datasets.wardrobe`), or "" for a procedural one; a
            suit's ``top`` is the mesh's upper half, its ``trousers`` the lower half (the numbers above
            are then unused).
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
    asset: str = ""

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


LOW_KEY_DARK = {
    "trousers": 0.9,
    "shorts": 0.9,
    "skirt": 0.9,
    "shoes": 0.9,
    "top": 0.5,
    "jacket": 0.5,
    "dress": 0.6,
    "hat": 0.7,
}
"""Per garment kind, the probability that a low-key scene's person wears it dark (:func:`low_key_outfit`)."""


def low_key_outfit(rng: np.random.Generator, outfit: tuple[Garment, ...]) -> tuple[Garment, ...]:
    """The outfit of a person photographed against a dark backdrop: each garment recoloured dark
    (:func:`~mould.datasets.appearance.dark_material`) with its kind's :data:`LOW_KEY_DARK` probability,
    so that dark trousers meet the dark background nine times in ten while the top is often lit and light
    (where a network that learnt "dark = background" cuts the legs off)."""
    return tuple(
        dataclasses.replace(g, material=dark_material(g.material, rng))
        if rng.uniform() < LOW_KEY_DARK[g.kind]
        else g
        for g in outfit
    )


def wardrobe_outfit(rng: np.random.Generator, outfit: tuple[Garment, ...], share: float) -> tuple[Garment, ...]:
    """The outfit with MakeHuman garments swapped in (:mod:`mould.datasets.wardrobe`).

    With probability ``share`` the clothes become a MakeHuman suit, its top and trousers halves in two
    materials (one in three suits in a single one); independently, with probability ``share`` the shoes
    (or bare feet in four cases of ten) become MakeHuman shoes, and with probability ``share / 8`` a hat is
    added. ``share`` 0 keeps the outfit as it is.
    """
    from mould.datasets.wardrobe import garment_names

    u = rng.uniform
    suit, shoes, hat = (
        u() < share,
        u() < share and (any(g.kind == "shoes" for g in outfit) or u() < 0.4),
        (u() < share / 8),
    )
    dressed = list(outfit)
    if suit:
        name = str(rng.choice(garment_names("suit")))
        top = garment_material(rng)
        bottom = top if u() < 1 / 3 else garment_material(rng)
        dressed = [Garment("top", material=top, asset=name), Garment("trousers", material=bottom, asset=name)]
        dressed += [g for g in outfit if g.kind == "shoes"]
    if shoes:
        name = str(rng.choice(garment_names("shoes")))
        dressed = [g for g in dressed if g.kind != "shoes"]
        dressed.append(Garment("shoes", material=garment_material(rng), asset=name))
    if hat:
        name = str(rng.choice(garment_names("hat")))
        dressed.append(Garment("hat", material=garment_material(rng), asset=name))
    return tuple(dressed)


GARMENT_FIELDS = ("sleeve", "leg", "hem", "waist", "collar", "ease", "flare", "folds", "length")
"""The numbers of a :class:`Garment` that shape it, in the column order of :func:`garment_table`."""


def garment_table(garments: list[Garment]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kind codes (G,) int64 into :data:`KINDS`, shape numbers (G, 9) float64 (:data:`GARMENT_FIELDS`),
    fold-noise variants (G,) int64) of garments, for the batched builders below."""
    kinds = np.array([KINDS.index(g.kind) for g in garments], dtype=np.int64)
    numbers = np.array([[getattr(g, name) for name in GARMENT_FIELDS] for g in garments], dtype=np.float64)
    variants = np.array([g.material.seed if g.material else 0 for g in garments], dtype=np.int64)
    return kinds, numbers.reshape(-1, len(GARMENT_FIELDS)), variants % NOISE_VARIANTS


def garment_shells(
    kinds: torch.Tensor, numbers: torch.Tensor, variants: torch.Tensor, vertices: torch.Tensor,
    normals: torch.Tensor, atlas: AtlasTensors,
) -> Surfaces:  # fmt: skip
    """The offset shells of G garments, each on its posed body.

    Tops, jackets and dresses cover the torso between hem (a dress: waist) and collar, and the arms up to
    the sleeve; trousers, shorts and skirts the hips below the waist and the legs up to the leg length (a
    skirt: none, its drape hangs from the waistband); shoes the feet and the shins below the leg length.
    The ease grows towards loose hems and cuffs and ripples with folds.

    Args:
        kinds, numbers, variants: from :func:`garment_table`, as tensors on the bodies' device.
        vertices, normals: (G, V, 3) float, each garment's posed body and its unit vertex normals, world.
        atlas: the body atlas on that device.
    """
    w = atlas.weights
    arm_w, leg_w, head_w, height = w["arm"][None], w["leg"][None], w["head_neck"][None], atlas.torso_height[None]
    sleeve, leg, hem, waist, collar, ease, flare, folds = (numbers[:, i, None] for i in range(8))
    noise = atlas.noise[NOISE_SCALES.index(0.09)].index_select(0, variants)  # (G, V)
    kind = kinds[:, None]
    # Tops, jackets, dresses.
    hem = torch.where(kind == KINDS.index("dress"), waist, hem)
    torso = (arm_w <= 0.5) & (head_w <= 0.5) & (height >= hem) & (height <= collar)
    arms = (arm_w > 0.5) & (atlas.arm[None] < sleeve) & (head_w <= 0.5)
    ramp = torch.where(
        arms, atlas.arm[None] / 2.0, ((collar - height) / (collar - hem).clamp_min(0.1)).clamp(0, 1)
    )
    upper_cover, upper_offset = torso | arms, ease + flare * ramp**2 + folds * noise * ramp
    # Trousers, shorts, skirts (the skirt's waistband).
    reach = torch.where(kind == KINDS.index("skirt"), torch.zeros_like(leg), leg)
    legs = (leg_w > 0.5) & (atlas.leg[None] < reach)
    hips = (leg_w <= 0.5) & (height <= waist)
    lower_cover = (legs | hips) & (arm_w <= 0.3) & (head_w <= 0.5)
    ramp = torch.where(leg_w > 0.5, atlas.leg[None] / 2.0, torch.zeros_like(height))
    lower_offset = ease + flare * ramp**2 + folds * noise * (0.3 + ramp)
    # Shoes: a thicker sole under the foot.
    feet = (w["foot"][None] > 0.5) | ((w["shin"][None] > 0.5) & (atlas.leg[None] > leg))
    sole = (-normals[..., 1]).clamp(0, 1) * (atlas.rest[None, :, 1] < 0.04)
    feet_offset = ease + flare * sole
    upper = (kind == KINDS.index("top")) | (kind == KINDS.index("jacket")) | (kind == KINDS.index("dress"))
    shoes = kind == KINDS.index("shoes")
    covered = torch.where(upper, upper_cover, torch.where(shoes, feet, lower_cover))
    offset = torch.where(upper, upper_offset, torch.where(shoes, feet_offset, lower_offset))
    return offset_shells(vertices, normals, atlas.faces, covered, offset.clamp_min(0.002), atlas.rest)


SKIRT_RINGS, SKIRT_SECTORS = 14, 48
"""Rings from the waist to the hem, and sectors around, of a skirt's drape."""


def skirt_drapes(
    numbers: torch.Tensor, vertices: torch.Tensor, hips: torch.Tensor, ankles: torch.Tensor, atlas: AtlasTensors
) -> Surfaces:
    """The draped parts of D skirts or dresses: from the waist down to their length, around both legs.

    Args:
        numbers: (D, 9) float shape numbers (:data:`GARMENT_FIELDS`).
        vertices: (D, V, 3) float, each one's posed body, world frame.
        hips: (D, 3) float, the midpoint of the hip joints; ankles: (D,) float, the ankles' mean height.
        atlas: the body atlas on that device.
    """
    waist, ease, flare, folds, length = (
        numbers[:, GARMENT_FIELDS.index(k)] for k in ("waist", "ease", "flare", "folds", "length")
    )
    arm_w, leg_w = atlas.weights["arm"][None], atlas.weights["leg"][None]
    band = ((atlas.torso_height[None] - waist[:, None]).abs() < 0.03) & (arm_w < 0.1)
    top = (vertices[..., 1] * band).sum(1) / band.sum(1).clamp_min(1)
    drop = length * (hips[:, 1] - ankles).clamp_min(0.2) + (top - hips[:, 1])
    steps = torch.linspace(0, 1, SKIRT_RINGS, dtype=vertices.dtype, device=vertices.device)
    heights = top[:, None] - drop[:, None] * steps[None]
    angles = torch.linspace(0, 2 * torch.pi, SKIRT_SECTORS + 1, dtype=vertices.dtype, device=vertices.device)[:-1]
    angles = angles.expand(len(numbers), -1)
    inside = (arm_w < 0.3) & ((leg_w > 0.3) | (atlas.torso_height[None] < waist[:, None] + 0.05))
    centre = hips[:, [0, 2]]
    around = (vertices[..., [0, 2]] - centre[:, None]).norm(dim=-1)
    waist_radius = masked_quantile(around, band, 0.5)
    min_radius = waist_radius[:, None] + flare[:, None] * steps[None] ** 1.5
    surface = drape(vertices, inside, centre, heights, angles, offset=ease + 0.005, min_radius=min_radius,
                    tuck=0.0, wrap=True)  # fmt: skip
    # Folds: ripple the radius around the ring, more towards the hem.
    waves = torch.floor(8 + 10 * flare / 0.3)
    ripple = torch.sin(angles[:, None] * waves[:, None, None] + length[:, None, None] * 10)
    ripple = ripple * folds[:, None, None] * steps[None, :, None] * 2  # (D, K, A)
    grid = surface.vertices.reshape(len(numbers), SKIRT_RINGS, SKIRT_SECTORS, 3)
    radial = grid[..., [0, 2]] - centre[:, None, None]
    radial = radial / radial.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    moved = grid.clone()
    moved[..., 0] += radial[..., 0] * ripple
    moved[..., 2] += radial[..., 1] * ripple
    moved = moved.reshape(len(numbers), -1, 3)
    return Surfaces(moved, surface.faces, moved, vertex_normals(moved, surface.faces), surface.keep)

"""Procedural appearance: skin tones, garment colours and patterns, hair colours (backgrounds:
:mod:`mould.datasets.backdrops`).

Patterns are solid textures: functions of a surface point's body-attached coordinates (metres), so that
stripes and checks follow the body as it moves and need no UV unwrapping. Every random choice is drawn
from the generator passed in, and every material is a JSON-ready dataclass stored with the sample.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

# Skin tone anchors, sRGB 0-255, dark to light: mean colours of MakeHuman's skin thumbnails
# (makehuman/skins/*.thumb, CC0), from the darkest (old African female) to the lightest (young Caucasian
# female 2), plus a lighter and a darker end so that the range is not limited to eight thumbnails.
SKIN_TONES = np.array(
    [
        [62, 32, 20],
        [79, 32, 19],
        [93, 48, 34],
        [138, 88, 69],
        [181, 107, 71],
        [191, 136, 107],
        [196, 150, 123],
        [207, 157, 134],
        [234, 192, 170],
    ]
)

GARMENT_PALETTE = np.array(
    [
        [20, 22, 28],  # black
        [240, 240, 236],  # white
        [128, 128, 130],  # grey
        [30, 45, 90],  # navy
        [70, 100, 160],  # denim
        [150, 30, 35],  # red
        [200, 160, 60],  # mustard
        [40, 90, 50],  # green
        [190, 170, 140],  # beige
        [100, 60, 40],  # brown
        [220, 120, 150],  # pink
        [90, 50, 120],  # purple
        [230, 110, 40],  # orange
        [80, 160, 170],  # teal
    ]
)
"""Common garment colours, sRGB 0-255 (chosen by hand; jittered when drawn)."""

DARK_GARMENTS = np.array([[18, 18, 22], [38, 38, 42], [24, 28, 52], [45, 32, 26], [30, 38, 30]])
"""Black, charcoal, navy, dark brown, dark olive; sRGB 0-255: the clothes of a low-key scene
(:func:`dark_material`)."""

HAIR_COLOURS = np.array(
    [[15, 12, 10], [45, 30, 20], [90, 60, 35], [150, 110, 60], [210, 180, 120], [140, 50, 25], [170, 170, 170]]
)
"""Black, dark brown, brown, light brown, blond, red, grey; sRGB 0-255."""

PATTERNS = ("solid", "stripes", "checks", "plaid", "noise", "dots", "camo", "skin")
"""``skin``: the noise pattern with a face painted at the body's eyes (:func:`face_paint`)."""


@dataclass(frozen=True)
class Material:
    """A Lambertian surface's colour as a solid texture.

    Attributes:
        pattern: one of :data:`PATTERNS`; hair uses ``"noise"``, the body ``"skin"``.
        colour, colour2: (3,) linear-ish RGB in [0, 1]: the base and the pattern's second colour (the
            skin's: its eyebrows').
        period: the pattern's spatial period, metres.
        direction: (3,) unit vector, the stripes' direction of variation.
        contrast: strength of the noise modulation.
        seed: the noise's seed.
    """

    pattern: str
    colour: tuple[float, float, float]
    colour2: tuple[float, float, float]
    period: float
    direction: tuple[float, float, float]
    contrast: float
    seed: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _jitter(rgb: np.ndarray, rng: np.random.Generator, amount: float) -> tuple[float, float, float]:
    value = np.clip(rgb / 255.0 * rng.uniform(1 - amount, 1 + amount, 3), 0, 1)
    return (float(value[0]), float(value[1]), float(value[2]))


def skin_material(rng: np.random.Generator) -> Material:
    """A skin tone interpolated between :data:`SKIN_TONES` anchors, with a faint mottling and a face whose
    eyebrows take a hair colour, darkened."""
    position = rng.uniform(0, len(SKIN_TONES) - 1)
    low = int(position)
    high = min(low + 1, len(SKIN_TONES) - 1)
    rgb = SKIN_TONES[low] + (SKIN_TONES[high] - SKIN_TONES[low]) * (position - low)
    colour = _jitter(rgb, rng, 0.05)
    seed = int(rng.integers(2**31))
    brows = _jitter(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] * 0.6, rng, 0.15)
    return Material("skin", colour, brows, 0.03, (0.0, 1.0, 0.0), 0.06, seed)


def hair_material(rng: np.random.Generator) -> Material:
    """A hair colour with strands: noise stretched along the vertical."""
    colour = _jitter(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))].astype(float), rng, 0.15)
    return Material("noise", colour, colour, 0.008, (0.0, 1.0, 0.0), 0.35, int(rng.integers(2**31)))


def garment_material(rng: np.random.Generator) -> Material:
    """A garment colour (palette or random), and a pattern half of the time."""
    if rng.uniform() < 0.7:
        base = GARMENT_PALETTE[rng.integers(len(GARMENT_PALETTE))].astype(float)
    else:
        base = rng.uniform(10, 245, 3)
    colour = _jitter(base, rng, 0.12)
    second = GARMENT_PALETTE[rng.integers(len(GARMENT_PALETTE))].astype(float)
    pattern = PATTERNS[0] if rng.uniform() < 0.5 else PATTERNS[int(rng.integers(1, len(PATTERNS)))]
    direction = rng.normal(size=3) * [0.3, 1.0, 0.3] if rng.uniform() < 0.7 else rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    return Material(
        pattern=pattern,
        colour=colour,
        colour2=_jitter(second, rng, 0.1),
        period=float(rng.uniform(0.015, 0.12)),
        direction=(float(direction[0]), float(direction[1]), float(direction[2])),
        contrast=float(rng.uniform(0.05, 0.25)),
        seed=int(rng.integers(2**31)),
    )


def dark_material(material: Material, rng: np.random.Generator) -> Material:
    """``material`` recoloured in two of :data:`DARK_GARMENTS` (its base and its pattern's second colour),
    its pattern kept: black trousers against a black studio backdrop."""
    colour, colour2 = (
        _jitter(DARK_GARMENTS[rng.integers(len(DARK_GARMENTS))].astype(float), rng, 0.25) for _ in range(2)
    )
    return dataclasses.replace(material, colour=colour, colour2=colour2)


# -- solid textures ---------------------------------------------------------------------------------------
MATERIAL_FIELDS = ("pattern", "r", "g", "b", "r2", "g2", "b2", "period", "dx", "dy", "dz", "contrast")
"""Columns of :func:`material_table`: the pattern's index in :data:`PATTERNS`, then the material's numbers."""
NOISE_OCTAVES = 3
"""Octaves of noise offsets kept per material: hair strands use three, the skin and fabric grain two."""


def material_table(materials: list[Material]) -> tuple[np.ndarray, np.ndarray]:
    """((M, 12) float64 rows of :data:`MATERIAL_FIELDS`, (M,) int64 noise seeds) of materials, the form
    :func:`albedo` takes."""
    unknown = [m.pattern for m in materials if m.pattern not in PATTERNS]
    if unknown:
        raise ValueError(f"material pattern: expected one of {PATTERNS}, got {unknown[0]!r}")
    rows = [
        [PATTERNS.index(m.pattern), *m.colour, *m.colour2, m.period, *m.direction, m.contrast] for m in materials
    ]
    return np.array(rows, dtype=np.float64).reshape(-1, len(MATERIAL_FIELDS)), np.array(
        [m.seed for m in materials], dtype=np.int64
    )


def albedo(table: torch.Tensor, offsets: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(P, 3) float32 colours in [0, 1] of materials at texture coordinates (solid textures).

    Args:
        table: (P, 12) float material rows (:func:`material_table`), one per point.
        offsets: (P, 3, 3) float32 noise offsets of each point's material seed
            (:func:`mould.datasets.noise.noise_offsets` with :data:`NOISE_OCTAVES`).
        points: (P, 3) float texture coordinates, metres.
    """
    from mould.datasets.noise import value_noise
    from mould.datasets.raster import cross

    points = points.to(torch.float32)
    table = table.to(torch.float32)
    pattern, base, second, period = table[:, 0].long(), table[:, 1:4], table[:, 4:7], table[:, 7:8]
    direction, contrast = table[:, 8:11], table[:, 11]
    p = points / period
    along = (p * direction).sum(1)
    other = cross(direction, direction.new_tensor([0.0, 0.0, 1.0]).expand_as(direction)) + 1e-9
    other = other / other.norm(dim=1, keepdim=True)
    stripes = (torch.remainder(along, 1.0) < 0.5).float()
    checks = torch.remainder(torch.floor(p).sum(1), 2)
    plaid = (
        0.5 * (torch.remainder(along, 1.0) < 0.3).float()
        + 0.5 * (torch.remainder((p * other).sum(1), 1.0) < 0.3).float()
    )
    dots = ((p - torch.round(p)).norm(dim=1) < 0.3).float()
    camo = torch.zeros_like(along)
    blotchy = torch.nonzero(pattern == PATTERNS.index("camo"))[:, 0]
    if len(blotchy):
        camo[blotchy] = (value_noise(p[blotchy] * 0.5, offsets[blotchy, :2]) > 0.1).float()
    zero = torch.zeros_like(along)
    mix = torch.stack([zero, stripes, checks, plaid, zero, dots, camo, zero], 1)  # in PATTERNS order
    mix = mix.gather(1, pattern[:, None])[:, 0]
    colour = base * (1 - mix[:, None]) + second * mix[:, None]
    skin = torch.nonzero(pattern == PATTERNS.index("skin"))[:, 0]
    if len(skin):
        colour[skin] = face_paint(points[skin], base[skin], second[skin])
    strands = (pattern == PATTERNS.index("noise")) & (contrast > 0.2)  # hair: fine across, long along
    grain = value_noise(points / 0.02, offsets[:, :2])
    if bool(strands.any()):
        index = torch.nonzero(strands)[:, 0]
        stretched = points[index] / period[index] * points.new_tensor([1.0, 0.08, 1.0])
        grain[index] = value_noise(stretched, offsets[index])
    return (colour * (1 + contrast * grain)[:, None]).clamp(0, 1)


# -- the face ---------------------------------------------------------------------------------------------
# Where the features sit, in units of the distance between the eyes (d, 5.9 cm on anny's default body) from
# the point between them, measured on that body: x towards the person's left, y up. Each is an ellipse
# (centre x, centre y, half width, half height), mirrored in x for the eyes and the brows.
EYE = (0.5, 0.0, 0.2, 0.09)
BROW = (0.5, 0.3, 0.28, 0.06)
LIPS = (0.0, -1.15, 0.38, 0.14)
MOUTH_LINE = (0.0, -1.15, 0.34, 0.035)
FACE_DEPTH = -0.005
"""Only the front of the head is painted: points at least this far (metres) in front of the eyes' centres
(the face's surface lies 1-4 cm in front of them; the ears and the back of the head 8-17 cm behind)."""
EYE_COLOUR = (0.09, 0.07, 0.06)
"""Iris, pupil and lashes at the scale of a whole-body photo (an eye is 2-3 pixels wide at 256²)."""
LIP_TINT = (0.85, 0.58, 0.58)
"""Lips: the skin times this."""


def face_paint(points: torch.Tensor, skin: torch.Tensor, brows: torch.Tensor) -> torch.Tensor:
    """(P, 3) the skin's colour with eyes, eyebrows and lips painted where the points are on the face.

    A real photo's face has dark eyes, brows and a mouth; a learnt back colour that never saw them would
    copy them onto the back of the head. Painted on the default body's rest surface (the texture
    coordinates of anny's mesh, :attr:`mould.datasets.atlas.AtlasTensors.rest`), so that they follow the
    face for every body shape and pose.

    Args:
        points: (P, 3) float32 texture coordinates of skin points (rest positions, metres).
        skin: (P, 3) the skin's colour; brows: (P, 3) the eyebrows' colour.
    """
    from mould.datasets.atlas import atlas_tensors

    eyes = atlas_tensors(points.device).eyes
    centre = eyes.mean(0)
    spacing = (eyes[0] - eyes[1]).norm()
    relative = points - centre
    x, y = relative[:, 0] / spacing, relative[:, 1] / spacing
    front = relative[:, 2] > FACE_DEPTH

    def inside(ellipse, mirrored: bool) -> torch.Tensor:
        cx, cy, half_width, half_height = ellipse
        u = (x.abs() if mirrored else x) - cx
        return front & ((u / half_width) ** 2 + ((y - cy) / half_height) ** 2 < 1)

    colour = torch.where(inside(LIPS, False)[:, None], skin * skin.new_tensor(LIP_TINT), skin)
    colour = torch.where(inside(MOUTH_LINE, False)[:, None], skin * 0.35, colour)
    colour = torch.where(inside(BROW, True)[:, None], brows, colour)
    return torch.where(inside(EYE, True)[:, None], skin.new_tensor(EYE_COLOUR).expand_as(skin), colour)

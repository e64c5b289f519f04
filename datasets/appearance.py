"""Procedural appearance: skin tones, garment colours and patterns, hair colours, backgrounds.

Patterns are solid textures: functions of a surface point's body-attached coordinates (metres), so that
stripes and checks follow the body as it moves and need no UV unwrapping. Every random choice is drawn
from the generator passed in, and every material is a JSON-ready dataclass stored with the sample.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

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

HAIR_COLOURS = np.array(
    [[15, 12, 10], [45, 30, 20], [90, 60, 35], [150, 110, 60], [210, 180, 120], [140, 50, 25], [170, 170, 170]]
)
"""Black, dark brown, brown, light brown, blond, red, grey; sRGB 0-255."""

PATTERNS = ("solid", "stripes", "checks", "plaid", "noise", "dots", "camo")


@dataclass(frozen=True)
class Material:
    """A Lambertian surface's colour as a solid texture.

    Attributes:
        pattern: one of :data:`PATTERNS`; skin and hair use ``"noise"``.
        colour, colour2: (3,) linear-ish RGB in [0, 1]: the base and the pattern's second colour.
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
    """A skin tone interpolated between :data:`SKIN_TONES` anchors, with a faint mottling."""
    position = rng.uniform(0, len(SKIN_TONES) - 1)
    low = int(position)
    high = min(low + 1, len(SKIN_TONES) - 1)
    rgb = SKIN_TONES[low] + (SKIN_TONES[high] - SKIN_TONES[low]) * (position - low)
    colour = _jitter(rgb, rng, 0.05)
    return Material("noise", colour, colour, 0.03, (0.0, 1.0, 0.0), 0.06, int(rng.integers(2**31)))


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


# -- solid textures ---------------------------------------------------------------------------------------
def value_noise(points: np.ndarray, seed: int, octaves: int = 2) -> np.ndarray:
    """(M,) float64 smooth noise in about [-1, 1] at (M, 3) points (lattice spacing 1), deterministic."""
    total = np.zeros(len(points))
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        total += amplitude * _value_noise_octave(points * (2.0**octave), seed + 7919 * octave)
        norm += amplitude
        amplitude *= 0.5
    return total / norm


def _value_noise_octave(points: np.ndarray, seed: int) -> np.ndarray:
    permutation, values = _noise_table(seed)
    cell = np.floor(points)
    frac = points - cell
    s = frac * frac * (3 - 2 * frac)  # smoothstep: continuous slope across cells
    i = cell.astype(np.int64) & 255
    j = (i + 1) & 255

    def corner(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        return values[permutation[(permutation[(permutation[x] + y) & 255] + z) & 255]]

    x0, y0, z0, x1, y1, z1 = i[:, 0], i[:, 1], i[:, 2], j[:, 0], j[:, 1], j[:, 2]
    sx, sy, sz = s[:, 0], s[:, 1], s[:, 2]

    def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
        return a + (b - a) * t

    bottom = lerp(
        lerp(corner(x0, y0, z0), corner(x1, y0, z0), sx), lerp(corner(x0, y1, z0), corner(x1, y1, z0), sx), sy
    )
    top = lerp(
        lerp(corner(x0, y0, z1), corner(x1, y0, z1), sx), lerp(corner(x0, y1, z1), corner(x1, y1, z1), sx), sy
    )
    return lerp(bottom, top, sz)


@functools.lru_cache(maxsize=64)
def _noise_table(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A permutation of 0..255 and 256 lattice values in [-1, 1] (Perlin's hashing, value noise)."""
    rng = np.random.default_rng(seed & 0xFFFFFFFF)
    return rng.permutation(256), rng.uniform(-1, 1, 256)


def albedo(material: Material, points: np.ndarray) -> np.ndarray:
    """(M, 3) float64 colour in [0, 1] of a material at (M, 3) texture coordinates (metres)."""
    base, second = np.array(material.colour), np.array(material.colour2)
    p = points / material.period
    direction = np.array(material.direction)
    pattern = material.pattern
    if pattern == "solid":
        mix = np.zeros(len(points))
    elif pattern == "stripes":
        mix = (np.mod(p @ direction, 1.0) < 0.5).astype(np.float64)
    elif pattern == "checks":
        mix = (np.floor(p).astype(np.int64).sum(axis=1) % 2).astype(np.float64)
    elif pattern == "plaid":
        other = np.cross(direction, [0.0, 0.0, 1.0]) + 1e-9
        other /= np.linalg.norm(other)
        mix = 0.5 * (np.mod(p @ direction, 1.0) < 0.3) + 0.5 * (np.mod(p @ other, 1.0) < 0.3)
    elif pattern == "dots":
        mix = (np.linalg.norm(p - np.round(p), axis=1) < 0.3).astype(np.float64)
    elif pattern == "camo":
        mix = (value_noise(p * 0.5, material.seed) > 0.1).astype(np.float64)
    elif pattern == "noise":
        mix = np.zeros(len(points))
    else:
        raise ValueError(f"material pattern: expected one of {PATTERNS}, got {pattern!r}")
    colour = base[None] * (1 - mix[:, None]) + second[None] * mix[:, None]
    if pattern == "noise" and material.contrast > 0.2:  # hair: strands, fine across, long along
        stretched = points / material.period * np.array([1.0, 0.08, 1.0])
        grain = value_noise(stretched, material.seed, octaves=3)
    else:
        grain = value_noise(points / 0.02, material.seed, octaves=2)
    return np.clip(colour * (1 + material.contrast * grain)[:, None], 0, 1)


# -- backgrounds ------------------------------------------------------------------------------------------
def background(
    size: int, rng: np.random.Generator, images: list[Path] | None = None, clutter: float = 0.0
) -> tuple[np.ndarray, dict]:
    """An (N, N, 3) float64 background in [0, 1] and its description.

    A random crop of one of ``images`` when some are given (90 % of the time), else a procedural one:
    a wall over a floor with a horizon, gradients, noise and a few blurry shapes; with probability
    ``clutter``, also many hard-edged, finely textured objects (see :func:`add_clutter`).
    """
    if images and rng.uniform() < 0.9:
        path = images[int(rng.integers(len(images)))]
        crop = _image_crop(path, size, rng)
        if crop is not None:
            return crop, {"kind": "image", "path": path.name}
    v, u = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    wall, floor = _muted(rng.uniform(0.1, 0.95, 3), rng), _muted(rng.uniform(0.05, 0.8, 3), rng)
    horizon = rng.uniform(0.55, 1.1)
    tilt = rng.uniform(-0.15, 0.15)
    below = v > horizon + tilt * (u - 0.5)
    image = np.where(below[..., None], floor, wall) * (1 + rng.uniform(-0.3, 0.3) * (v[..., None] - 0.5))
    image *= 1 + 0.15 * _coarse_noise(size, rng)[..., None]
    for _ in range(int(rng.integers(0, 5))):
        cu, cv, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
        shape = (np.abs(u - cu) < r) & (np.abs(v - cv) < r * rng.uniform(0.3, 3))
        image[shape] = image[shape] * 0.4 + 0.6 * rng.uniform(0, 1, 3)
    if rng.uniform() < clutter:
        return np.clip(add_clutter(image, rng), 0, 1), {"kind": "procedural", "clutter": True}
    return np.clip(image, 0, 1), {"kind": "procedural"}


CLUTTER_FILLS = ("flat", "grain", "stripes", "checks", "bricks", "blotches")


def add_clutter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paint 6 to 30 hard-edged objects (boxes, discs, triangles, poles) with fine textures over an image.

    Real photos put detail everywhere: brick walls, foliage, cobbles, cars. A background that is smooth
    where the person is detailed teaches the silhouette head "detailed = person" (the first shipped model
    took a street and a brick wall for the person); clutter makes the body's shape the only cue.

    Args:
        image: (N, N, 3) float64 in [0, 1].

    Returns:
        (N, N, 3) float64, a new array (not clipped).
    """
    size = image.shape[0]
    out = image.copy()
    v, u = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    for _ in range(int(rng.integers(6, 31))):
        cu, cv = rng.uniform(-0.1, 1.1, 2)
        width, height = rng.uniform(0.03, 0.5, 2)
        kind = rng.integers(4)
        if kind == 0:  # box
            region = (np.abs(u - cu) < width / 2) & (np.abs(v - cv) < height / 2)
        elif kind == 1:  # disc
            region = ((u - cu) / (width / 2)) ** 2 + ((v - cv) / (height / 2)) ** 2 < 1
        elif kind == 2:  # triangle: below two edges through a random apex
            apex = rng.uniform(0.3, 1.0) * height
            region = (v - cv > -apex + 2 * apex * np.abs(u - cu) / max(width, 1e-3)) & (v - cv < 0)
        else:  # pole or wire: a long thin bar at any angle
            angle = rng.uniform(0, np.pi)
            along = (u - cu) * np.cos(angle) + (v - cv) * np.sin(angle)
            across = -(u - cu) * np.sin(angle) + (v - cv) * np.cos(angle)
            region = (np.abs(across) < width * 0.05) & (np.abs(along) < height + 0.3)
        if not region.any():
            continue
        out[region] = _clutter_fill(u[region], v[region], rng)
    # Shading and sensor-like grain over everything, so that no region is perfectly flat.
    out *= 1 + rng.uniform(-0.3, 0.3) * (u[..., None] - 0.5) + rng.uniform(-0.3, 0.3) * (v[..., None] - 0.5)
    return out + rng.normal(0, rng.uniform(0.0, 0.04), out.shape)


def _clutter_fill(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(M, 3) colours of one clutter object's pixels at (M,) coordinates in [0, 1]."""
    first, second = _muted(rng.uniform(0, 1, 3), rng), _muted(rng.uniform(0, 1, 3), rng)
    fill = CLUTTER_FILLS[int(rng.integers(len(CLUTTER_FILLS)))]
    if fill == "flat":
        mix = np.zeros_like(u)
    elif fill == "grain":  # foliage, gravel, asphalt: per-pixel noise
        mix = rng.uniform(0, 1, u.shape)
    elif fill == "stripes":
        angle, frequency = rng.uniform(0, np.pi), rng.uniform(10, 60)
        mix = (np.mod((u * np.cos(angle) + v * np.sin(angle)) * frequency, 1) < 0.5).astype(np.float64)
    elif fill == "checks":
        frequency = rng.uniform(8, 40)
        mix = ((np.floor(u * frequency) + np.floor(v * frequency)) % 2).astype(np.float64)
    elif fill == "bricks":
        rows, columns = rng.uniform(15, 50), rng.uniform(6, 20)
        row = np.floor(v * rows)
        along = u * columns + 0.5 * (row % 2)
        shade = rng.uniform(0.6, 1.0, 64)[(row.astype(np.int64) * 31 + np.floor(along).astype(np.int64)) % 64]
        mortar = (np.mod(v * rows, 1) < 0.15) | (np.mod(along, 1) < 0.06)
        return np.where(mortar[:, None], second * 0.8 + 0.2, first * shade[:, None])
    else:  # blotches: leaves, cobbles, camouflage
        frequency = rng.uniform(20, 80)
        mix = (np.sin(u * frequency + 3 * np.sin(v * frequency * 0.7)) * np.sin(v * frequency) > 0).astype(
            np.float64
        )
    return first * (1 - mix[:, None]) + second * mix[:, None]


def _muted(colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A colour pulled towards its grey by a random amount: rooms are rarely fully saturated."""
    grey = colour.mean()
    return grey + (colour - grey) * rng.uniform(0.15, 0.8)


def _coarse_noise(size: int, rng: np.random.Generator) -> np.ndarray:
    """(N, N) smooth noise in about [-1, 1], computed on a 4x coarser grid and resized (a 10x saving)."""
    from PIL import Image

    coarse = max(size // 4, 2)
    v, u = np.mgrid[0:coarse, 0:coarse] / coarse * 8 * rng.uniform(0.2, 2.0)
    points = np.stack([u, v, np.zeros_like(u)], -1).reshape(-1, 3)
    field = value_noise(points, int(rng.integers(2**31)), 3).reshape(coarse, coarse).astype(np.float32)
    return np.asarray(Image.fromarray(field, mode="F").resize((size, size), Image.BILINEAR), dtype=np.float64)


def background_images(folder: Path) -> list[Path]:
    """The PNG and JPEG files of a folder (recursively), sorted for reproducibility."""
    suffixes = {".png", ".jpg", ".jpeg"}
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())


_REFUSED_BACKGROUNDS: set[str] = set()


def _image_crop(path: Path, size: int, rng: np.random.Generator) -> np.ndarray | None:
    """A random square of a background photo resized to ``size``, or None when the file is unusable (a
    decompression bomb, corrupt, too small: refused from its header by :func:`mould.images.load_photo`)."""
    from PIL import Image

    from mould.errors import InputError
    from mould.images import load_photo

    try:
        image = Image.fromarray(load_photo(path).rgb)
    except InputError as error:
        if str(path) not in _REFUSED_BACKGROUNDS:  # once per file and process, not once per sample
            _REFUSED_BACKGROUNDS.add(str(path))
            log.warning("background not used: %s", error)
        return None
    width, height = image.size
    side = int(min(width, height) * rng.uniform(0.3, 1.0))
    if side < 8:
        return None
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    crop = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
    return np.asarray(crop, dtype=np.float64) / 255.0

"""Backgrounds behind the person: drawn on the CPU (every random choice, JSON-ready), painted in torch.

A background is a random crop of one of the ``--backgrounds`` images (90 % of the time when some are given),
else procedural: a wall over a floor with a horizon, gradients, smooth noise and up to four blurry shapes;
with probability ``clutter``, also 6 to 30 hard-edged, finely textured objects (boxes, discs, triangles,
poles filled flat, with grain, stripes, checks, bricks or blotches): real photos put detail everywhere,
and a background smooth where the person is detailed teaches the network "detailed = person" (the first
shipped model took a street and a brick wall for the person).

:func:`draw_backdrop` makes every choice with the sample's numpy generator; :func:`paint_backdrops` paints a
batch on any device. Per-pixel randomness (grain, sensor-like noise) comes from each sample's own torch
generator, so a sample does not depend on the batch it is painted in.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

CLUTTER_FILLS = ("flat", "grain", "stripes", "checks", "bricks", "blotches")
CLUTTER_KINDS = ("box", "disc", "triangle", "pole")
_OBJECT_FIELDS = 19
"""Per clutter object: cu, cv, width, height, kind, apex, angle, fill, first RGB, second RGB, stripe angle,
frequency, brick rows, brick columns, brick shade seed."""


@dataclass(frozen=True)
class BackdropDraw:
    """Every random choice of one background (sizes are fractions of the image side, colours RGB in [0, 1]).

    Attributes:
        info: the JSON description stored with the sample.
        photo: (N, N, 3) uint8 crop of a background image, or None for a procedural background.
        wall, floor: (3,) colours above and below the horizon; horizon, tilt: the horizon's height and slope.
        gradient: vertical brightness gradient; noise_seed, noise_scale: the smooth noise field.
        shapes: (S, 7) float64 blurry rectangles: centre u, v, half width, height ratio, RGB.
        objects: (O, 19) float64 clutter objects (see ``_OBJECT_FIELDS``); empty without clutter.
        shading: (2,) brightness slopes across u and v over the clutter; grain: its noise deviation.
        dim: the factor the whole painted background is multiplied by (< 1: a low-key scene's dark backdrop,
            :func:`dimmed`).
    """

    info: dict
    photo: np.ndarray | None = None
    wall: tuple[float, float, float] = (0.5, 0.5, 0.5)
    floor: tuple[float, float, float] = (0.5, 0.5, 0.5)
    horizon: float = 1.0
    tilt: float = 0.0
    gradient: float = 0.0
    noise_seed: int = 0
    noise_scale: float = 1.0
    shapes: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))
    objects: np.ndarray = field(default_factory=lambda: np.zeros((0, _OBJECT_FIELDS)))
    shading: tuple[float, float] = (0.0, 0.0)
    grain: float = 0.0
    dim: float = 1.0


def dimmed(draw: BackdropDraw, factor: float) -> BackdropDraw:
    """``draw`` painted ``factor`` times as bright (recorded in its info as ``dim``)."""
    return dataclasses.replace(draw, dim=float(factor), info={**draw.info, "dim": float(factor)})


def _muted(colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A colour pulled towards its grey by a random amount: rooms are rarely fully saturated."""
    grey = colour.mean()
    return grey + (colour - grey) * rng.uniform(0.15, 0.8)


def draw_backdrop(
    size: int, rng: np.random.Generator, images: list[Path] | None = None, clutter: float = 0.0
) -> BackdropDraw:
    """Draw one background (see the module docstring); image crops are read here, at ``size`` pixels."""
    if images and rng.uniform() < 0.9:
        path = images[int(rng.integers(len(images)))]
        crop = _image_crop(path, size, rng)
        if crop is not None:
            return BackdropDraw(info={"kind": "image", "path": path.name}, photo=crop)
    wall, floor = _muted(rng.uniform(0.1, 0.95, 3), rng), _muted(rng.uniform(0.05, 0.8, 3), rng)
    horizon, tilt, gradient = rng.uniform(0.55, 1.1), rng.uniform(-0.15, 0.15), rng.uniform(-0.3, 0.3)
    noise_scale, noise_seed = rng.uniform(0.2, 2.0), int(rng.integers(2**31))
    shapes = []
    for _ in range(int(rng.integers(0, 5))):
        cu, cv, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
        shapes.append([cu, cv, r, rng.uniform(0.3, 3), *rng.uniform(0, 1, 3)])
    common = {
        "wall": tuple(wall.tolist()),
        "floor": tuple(floor.tolist()),
        "horizon": float(horizon),
        "tilt": float(tilt),
        "gradient": float(gradient),
        "noise_seed": noise_seed,
        "noise_scale": float(noise_scale),
        "shapes": np.array(shapes, dtype=np.float64).reshape(-1, 7),
    }
    if rng.uniform() >= clutter:
        return BackdropDraw(info={"kind": "procedural"}, **common)
    objects = np.array([_draw_object(rng) for _ in range(int(rng.integers(6, 31)))])
    shading = (float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.3, 0.3)))
    return BackdropDraw(
        info={"kind": "procedural", "clutter": True},
        objects=objects,
        shading=shading,
        grain=float(rng.uniform(0.0, 0.04)),
        **common,
    )


def _draw_object(rng: np.random.Generator) -> list[float]:
    """One clutter object's ``_OBJECT_FIELDS`` numbers."""
    cu, cv = rng.uniform(-0.1, 1.1, 2)
    width, height = rng.uniform(0.03, 0.5, 2)
    kind = int(rng.integers(len(CLUTTER_KINDS)))
    apex = rng.uniform(0.3, 1.0) * height if kind == 2 else 0.0
    angle = rng.uniform(0, np.pi) if kind == 3 else 0.0
    first, second = _muted(rng.uniform(0, 1, 3), rng), _muted(rng.uniform(0, 1, 3), rng)
    fill = int(rng.integers(len(CLUTTER_FILLS)))
    stripe_angle = frequency = rows = columns = shade_seed = 0.0
    if CLUTTER_FILLS[fill] == "stripes":
        stripe_angle, frequency = rng.uniform(0, np.pi), rng.uniform(10, 60)
    elif CLUTTER_FILLS[fill] == "checks":
        frequency = rng.uniform(8, 40)
    elif CLUTTER_FILLS[fill] == "bricks":
        rows, columns, shade_seed = rng.uniform(15, 50), rng.uniform(6, 20), float(rng.integers(2**31))
    elif CLUTTER_FILLS[fill] == "blotches":
        frequency = rng.uniform(20, 80)
    return [cu, cv, width, height, kind, apex, angle, fill, *first, *second, stripe_angle, frequency, rows,
            columns, shade_seed]  # fmt: skip


# -- painting ---------------------------------------------------------------------------------------------
def _window(low: np.ndarray, high: np.ndarray, size: int) -> tuple[slice, slice] | None:
    """The pixel rows and columns covering [low, high] (u, v fractions) over a batch, or None if empty."""
    scale = max(size - 1, 1)
    u0, v0 = (np.floor(np.min(low, axis=0) * scale) - 1).clip(0, size).astype(int)
    u1, v1 = (np.ceil(np.max(high, axis=0) * scale) + 2).clip(0, size).astype(int)
    if u1 <= u0 or v1 <= v0:
        return None
    return slice(v0, v1), slice(u0, u1)


def _object_extent(objects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(O, 2) low and high (u, v) corners of clutter objects' bounding boxes."""
    cu, cv, width, height, kind, apex, angle = (objects[:, i] for i in range(7))
    half = np.stack([width / 2, height / 2], 1)
    half[kind == 2, 1] = apex[kind == 2]
    pole = kind == 3
    length, thickness = height + 0.3, width * 0.05
    c, s = np.abs(np.cos(angle)), np.abs(np.sin(angle))
    half[pole] = np.stack([c * length + s * thickness, s * length + c * thickness], 1)[pole]
    centre = np.stack([cu, cv], 1)
    return centre - half, centre + half


def _region(p: torch.Tensor, u: torch.Tensor, v: torch.Tensor, kinds: set[int]) -> torch.Tensor:
    """(B, h, w) bool pixels inside each sample's clutter object ``p`` ((B, 19) parameters); only the object
    kinds in ``kinds`` (those the batch holds) are evaluated."""
    cu, cv, width, height, kind, apex, angle = (p[:, i, None, None] for i in range(7))
    du, dv = u - cu, v - cv
    shapes = {}
    if 0 in kinds:  # box
        shapes[0] = (du.abs() < width / 2) & (dv.abs() < height / 2)
    if 1 in kinds:  # disc
        shapes[1] = (du / (width / 2)) ** 2 + (dv / (height / 2)) ** 2 < 1
    if 2 in kinds:  # triangle: below two edges through the apex
        shapes[2] = (dv > -apex + 2 * apex * du.abs() / width.clamp_min(1e-3)) & (dv < 0)
    if 3 in kinds:  # pole or wire: a long thin bar at any angle
        along = du * torch.cos(angle) + dv * torch.sin(angle)
        across = -du * torch.sin(angle) + dv * torch.cos(angle)
        shapes[3] = (across.abs() < width * 0.05) & (along.abs() < height + 0.3)
    region = None
    for code, shape in shapes.items():
        region = shape if region is None else torch.where(kind == code, shape, region)
    return region


def _fill(p: torch.Tensor, u: torch.Tensor, v: torch.Tensor, grain: torch.Tensor, fills: set[int]) -> torch.Tensor:
    """(B, h, w, 3) colours of clutter objects ``p`` ((B, 19)) at pixels (u, v); ``grain`` (B, h, w) uniform;
    only the fills in ``fills`` (those the batch holds) are evaluated."""
    fill, first, second = p[:, 7, None, None], p[:, None, None, 8:11], p[:, None, None, 11:14]
    stripe_angle, frequency = p[:, 14, None, None], p[:, 15, None, None]
    rows, columns, shade_seed = p[:, 16, None, None], p[:, 17, None, None], p[:, 18, None, None]
    mix = torch.zeros_like(grain)
    if 1 in fills:  # grain: foliage, gravel, asphalt
        mix = torch.where(fill == 1, grain, mix)
    if 2 in fills:
        along = (u * torch.cos(stripe_angle) + v * torch.sin(stripe_angle)) * frequency
        mix = torch.where(fill == 2, (torch.remainder(along, 1) < 0.5).to(u.dtype), mix)
    if 3 in fills:
        mix = torch.where(
            fill == 3, torch.remainder(torch.floor(u * frequency) + torch.floor(v * frequency), 2), mix
        )
    if 5 in fills:  # blotches: leaves, cobbles, camouflage
        blotch = torch.sin(u * frequency + 3 * torch.sin(v * frequency * 0.7)) * torch.sin(v * frequency) > 0
        mix = torch.where(fill == 5, blotch.to(u.dtype), mix)
    colour = first * (1 - mix[..., None]) + second * mix[..., None]
    if 4 not in fills:
        return colour
    # Bricks: rows of bricks offset by half a brick every other row, each brick its own shade, mortar lines.
    row = torch.floor(v * rows.clamp_min(1))
    brick_along = u * columns + 0.5 * torch.remainder(row, 2)
    brick = (row.long() * 31 + torch.floor(brick_along).long()) % 64
    shade = 0.6 + 0.4 * _hash_uniform(shade_seed.long() * 64 + brick)
    mortar = (torch.remainder(v * rows, 1) < 0.15) | (torch.remainder(brick_along, 1) < 0.06)
    bricks = torch.where(mortar[..., None], second * 0.8 + 0.2, first * shade[..., None])
    return torch.where((fill == 4)[..., None], bricks, colour)


def _hash_uniform(keys: torch.Tensor) -> torch.Tensor:
    """Uniform [0, 1) float32 of int64 keys (a fixed integer hash: the same on every device)."""
    h = keys & 0xFFFFFFFF
    h = ((h ^ (h >> 16)) * 0x7FEB352D) & 0xFFFFFFFF
    h = ((h ^ (h >> 15)) * 0x846CA68B) & 0xFFFFFFFF
    return ((h ^ (h >> 16)) & 0xFFFFFF).to(torch.float32) / float(1 << 24)


def paint_backdrops(
    draws: list[BackdropDraw], size: int, generators: list[torch.Generator], device
) -> torch.Tensor:
    """(B, N, N, 3) float32 backgrounds in [0, 1] of B draws, on ``device``.

    Args:
        draws: the backgrounds.
        size: N.
        generators: one torch generator per draw, on ``device``: its per-pixel noise (grain fields, then
            the clutter's noise), drawn in a fixed order so a sample does not depend on its batch.
    """
    from mould.datasets.noise import noise_offsets, value_noise

    axis = torch.arange(size, device=device, dtype=torch.float32) / max(size - 1, 1)
    v, u = torch.meshgrid(axis, axis, indexing="ij")
    v, u = v[None], u[None]

    def column(values) -> torch.Tensor:
        return torch.tensor(np.asarray(values, dtype=np.float64), dtype=torch.float32, device=device)

    wall, floor = column([d.wall for d in draws])[:, None, None], column([d.floor for d in draws])[:, None, None]
    horizon, tilt, gradient = (
        column([getattr(d, k) for d in draws])[:, None, None] for k in ("horizon", "tilt", "gradient")
    )
    below = v > horizon + tilt * (u - 0.5)
    # The wall or floor colour of each pixel, gathered from a (2 B, 3) table: the values torch.where would
    # pick, without its slow broadcast over the colour channels.
    colours = torch.stack([wall[:, 0, 0], floor[:, 0, 0]], 1).reshape(-1, 3)
    scene = torch.arange(len(draws), device=device)[:, None, None]
    image = colours.index_select(0, (2 * scene + below).reshape(-1)).reshape(len(draws), size, size, 3)
    image = image * (1 + gradient[..., None] * (v[..., None] - 0.5))
    # Smooth noise, computed on a 4x coarser grid and resized (a 10x saving).
    coarse = max(size // 4, 2)
    grid = torch.arange(coarse, device=device, dtype=torch.float32) / coarse * 8
    gv, gu = torch.meshgrid(grid, grid, indexing="ij")
    scale = column([d.noise_scale for d in draws])[:, None, None]
    points = torch.stack([gu[None] * scale, gv[None] * scale, torch.zeros_like(gu[None] * scale)], -1)
    offsets = noise_offsets(torch.tensor([d.noise_seed for d in draws]), octaves=3).to(device)
    smooth = value_noise(points, offsets[:, None, None])
    smooth = torch.nn.functional.interpolate(smooth[:, None], size=(size, size), mode="bilinear")[:, 0]
    image = image * (1 + 0.15 * smooth[..., None])
    for slot in range(max((len(d.shapes) for d in draws), default=0)):
        present = [slot < len(d.shapes) for d in draws]
        shape = np.stack([d.shapes[slot] if p else np.full(7, -10.0) for d, p in zip(draws, present)])
        window = _window(shape[:, :2] - shape[:, 2:3] * [1, 3], shape[:, :2] + shape[:, 2:3] * [1, 3], size)
        if window is None:
            continue
        s = column(shape)[:, None, None]
        uw, vw = u[:, window[0], window[1]], v[:, window[0], window[1]]
        inside = ((uw - s[..., 0]).abs() < s[..., 2]) & ((vw - s[..., 1]).abs() < s[..., 2] * s[..., 3])
        part = image[:, window[0], window[1]]
        image[:, window[0], window[1]] = torch.where(inside[..., None], part * 0.4 + 0.6 * s[..., 4:7], part)
    image = _paint_clutter(image, draws, u, v, generators, column)
    photos = [i for i, d in enumerate(draws) if d.photo is not None]
    if photos:
        crops = torch.as_tensor(np.stack([draws[i].photo for i in photos]), device=device).to(torch.float32) / 255
        image[photos] = crops
    if any(d.dim != 1.0 for d in draws):
        image = image * column([d.dim for d in draws])[:, None, None, None]
    return image.clamp(0, 1)


def backdrop_image(seed: int, size: int, clutter: float = 0.0, images: tuple[Path, ...] = ()) -> np.ndarray:
    """(size, size, 3) uint8: one background on its own, drawn from ``seed`` (a crop of one of ``images``
    90 % of the time when some are given; else procedural, with clutter objects with probability
    ``clutter``) and painted on the CPU: the scenes without anybody that tests and negatives for training
    are made of."""
    draw = draw_backdrop(size, np.random.default_rng(seed), list(images), clutter=clutter)
    image = paint_backdrops([draw], size, [torch.Generator().manual_seed(seed)], "cpu")[0]
    return (image.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


def _paint_clutter(image, draws, u, v, generators, column) -> torch.Tensor:
    """Paint the clutter objects of the draws that have some, then their shading and noise."""
    size = image.shape[1]
    cluttered = [i for i, d in enumerate(draws) if len(d.objects)]
    if not cluttered:
        return image
    for slot in range(max(len(draws[i].objects) for i in cluttered)):
        present = [i for i in cluttered if slot < len(draws[i].objects)]
        params = np.stack([draws[i].objects[slot] for i in present])
        # A grain object draws its whole field (the generator's stream does not depend on the window).
        fields = [
            torch.rand((size, size), generator=generators[i], device=image.device)
            if draws[i].objects[slot, 7] == 1 else None
            for i in present
        ]  # fmt: skip
        window = _window(*_object_extent(params), size)
        if window is None:
            continue
        p = column(params)
        uw, vw = u[:, window[0], window[1]], v[:, window[0], window[1]]
        region = _region(p, uw, vw, set(params[:, 4].astype(int).tolist()))
        grain = torch.stack([
            torch.zeros(region.shape[1:], device=image.device) if f is None else f[window[0], window[1]]
            for f in fields
        ])  # fmt: skip
        fills = set(params[:, 7].astype(int).tolist())
        colours = _fill(p, uw.expand_as(region), vw.expand_as(region), grain, fills)
        rows = slice(None) if len(present) == len(image) else present
        part = image[:, window[0], window[1]][rows]
        image[rows, window[0], window[1]] = torch.where(region[..., None], colours, part)
    shading = column([draws[i].shading for i in cluttered])
    slope_u, slope_v = shading[:, 0, None, None, None], shading[:, 1, None, None, None]
    every = len(cluttered) == len(draws)  # then the whole batch, not a copy of it
    lit = (image if every else image[cluttered]) * (
        1 + slope_u * (u[..., None] - 0.5) + slope_v * (v[..., None] - 0.5)
    )
    noise = torch.stack(
        [torch.randn((size, size, 3), generator=generators[i], device=image.device) for i in cluttered]
    )
    lit += noise * column([draws[i].grain for i in cluttered])[:, None, None, None]
    if every:
        return lit
    image[cluttered] = lit
    return image


def background_images(folder: Path) -> tuple[Path, ...]:
    """The PNG and JPEG files of a ``--backgrounds`` folder (recursively), sorted for reproducibility.

    Raises:
        InputError: the folder holds none.
    """
    from mould.errors import InputError

    suffixes = {".png", ".jpg", ".jpeg"}
    images = tuple(sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file()))
    if not images:
        raise InputError(f"--backgrounds: {folder} holds no PNG or JPEG image")
    return images


_REFUSED_BACKGROUNDS: set[str] = set()
_DECODED: dict[str, np.ndarray] = {}
DECODED_BUDGET = 512 << 20
"""Bytes of decoded background photos a process keeps: decoding a 1280-pixel JPEG took ~24 ms of CPU and
cropping and resizing the decoded photo ~3 ms (measured), while the data workers of a GPU run draw
~600 samples a second; 512 MB hold ~170 such photos."""


def _decoded_photo(path: Path) -> np.ndarray:
    """(H, W, 3) uint8: the photo at ``path``, decoded once per process while :data:`DECODED_BUDGET` lasts.

    Raises:
        InputError: the file is unusable (see :func:`mould.images.load_photo`).
    """
    from mould.images import load_photo

    key = str(path)
    if key not in _DECODED:
        rgb = load_photo(path).rgb
        if sum(photo.nbytes for photo in _DECODED.values()) + rgb.nbytes > DECODED_BUDGET:
            return rgb
        _DECODED[key] = rgb
    return _DECODED[key]


def _image_crop(path: Path, size: int, rng: np.random.Generator) -> np.ndarray | None:
    """(N, N, 3) uint8 random square of a background photo resized to ``size``, or None when the file is
    unusable (a decompression bomb, corrupt, too small: refused from its header by
    :func:`mould.images.load_photo`)."""
    from PIL import Image

    from mould.errors import InputError

    try:
        photo = _decoded_photo(path)
    except InputError as error:
        if str(path) not in _REFUSED_BACKGROUNDS:  # once per file and process, not once per sample
            _REFUSED_BACKGROUNDS.add(str(path))
            log.warning("background not used: %s", error)
        return None
    height, width = photo.shape[:2]
    side = int(min(width, height) * rng.uniform(0.3, 1.0))
    if side < 8:
        return None
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    crop = Image.fromarray(photo[top : top + side, left : left + side]).resize((size, size), Image.BILINEAR)
    return np.asarray(crop, dtype=np.uint8)

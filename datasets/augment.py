"""Training-time augmentation of records, applied consistently to the image, both maps and the camera.

Every augmentation draws from a ``numpy.random.Generator`` the caller seeds, so the same seed gives the
same augmented record (``SampleFolder`` seeds it from ``(seed, epoch, index)``).

What each one does to a record (see :mod:`mould.datasets.records` for the keys):

- **crop jitter** re-frames the crop: the side is multiplied by ``s`` and the centre moved by ``(du, dv)``
  pixels. New pixel ``u'`` shows old pixel ``u = s u' + b`` with ``b = c + du - s c`` (``c = (N-1)/2``),
  so the intrinsics become ``f' = f / s`` and ``cx' = (cx - b) / s``. Depths and normals are camera-frame
  quantities and do not change; the maps are re-sampled with nearest neighbours (never blending a body
  depth with the background's 0), the image bilinearly. Pixels beyond the old crop are background, filled
  with one random colour.
- **horizontal flip** mirrors the image, both maps and the mask (``u -> N-1-u``), which is the camera-frame
  mirror ``x -> -x``: normals get their x negated and ``cx -> N-1-cx``. ``cam_to_world`` is kept: the
  flipped record is the mirrored person seen by the same camera.
- **colour jitter** (brightness, contrast, saturation, per-channel gain) changes the image and, by the same
  transform, the back colours (what the same camera would have recorded of the back).
- **occluders** (random rectangles and discs of flat colour or noise) change the image only: the maps still
  hold the whole person, which is what the network must learn to predict behind an occluder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; 0 turns an augmentation off. :data:`NO_AUGMENT` turns all off."""

    flip: float = 0.5
    """Probability of a horizontal flip."""
    crop_scale: float = 0.08
    """Crop side multiplied by a factor drawn uniformly in [1 - crop_scale, 1 + crop_scale]."""
    crop_shift: float = 0.04
    """Crop centre moved by up to this fraction of the side, in each axis."""
    brightness: float = 0.25
    """Image multiplied by a factor in [1 - brightness, 1 + brightness]."""
    contrast: float = 0.25
    """Contrast about the image mean scaled by a factor in [1 - contrast, 1 + contrast]."""
    saturation: float = 0.3
    """Blend with the grey image by a factor in [1 - saturation, 1 + saturation]."""
    channel_gain: float = 0.06
    """Each channel multiplied by its own factor in [1 - channel_gain, 1 + channel_gain] (a white-balance
    shift)."""
    occluder: float = 0.25
    """Probability that the image gets occluders."""
    max_occluders: int = 2
    """At most this many occluders per image."""
    occluder_size: tuple[float, float] = (0.08, 0.3)
    """Occluder side (or diameter) range, as a fraction of the crop's side."""

    def __post_init__(self) -> None:
        for name in ("flip", "occluder"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}: expected a probability in [0, 1], got {getattr(self, name)}")
        for name in ("crop_scale", "brightness", "contrast", "saturation", "channel_gain"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name}: expected 0 <= {name} < 1, got {getattr(self, name)}")
        if not 0 <= self.crop_shift < 0.5:
            raise ValueError(f"crop_shift: expected 0 <= crop_shift < 0.5, got {self.crop_shift}")
        if self.max_occluders < 0:
            raise ValueError(f"max_occluders: expected >= 0, got {self.max_occluders}")
        low, high = self.occluder_size
        if not 0 < low <= high <= 1:
            raise ValueError(f"occluder_size: expected 0 < low <= high <= 1, got {self.occluder_size}")


NO_AUGMENT = AugmentConfig(
    flip=0, crop_scale=0, crop_shift=0, brightness=0, contrast=0, saturation=0, channel_gain=0, occluder=0
)
"""An :class:`AugmentConfig` that leaves records unchanged."""

_MAP_KEYS = ("visible", "hidden", "mask", "visible_normals", "hidden_normals", "back")
"""Per-pixel targets: re-sampled by nearest neighbour and flipped with the image."""


def augment_record(
    record: dict[str, torch.Tensor], config: AugmentConfig, rng: np.random.Generator
) -> dict[str, torch.Tensor]:
    """An augmented copy of one record (no batch dimension); the input is not modified.

    Args:
        record: a record of :mod:`mould.datasets.records`, image (3, N, N) float in [0, 1].
        config: the strengths.
        rng: the source of randomness; the same generator state gives the same result.
    """
    out = dict(record)
    # Draw every random number in a fixed order whatever is switched off, so that changing one strength
    # does not reshuffle the others.
    scale = 1 + rng.uniform(-1, 1) * config.crop_scale
    shift = rng.uniform(-1, 1, size=2) * config.crop_shift
    fill = rng.uniform(0, 1, size=3)
    flip = rng.uniform() < config.flip
    colour = rng.uniform(-1, 1, size=6)
    occluder_seed = int(rng.integers(2**31))
    if config.crop_scale or config.crop_shift:
        out = jitter_crop(out, float(scale), (float(shift[0]), float(shift[1])), fill)
    if flip:
        out = flip_record(out)
    out["image"], back = jitter_colour(out["image"], config, colour, also=out.get("back"))
    if back is not None:
        out["back"] = back
    if config.occluder and config.max_occluders:
        out["image"] = add_occluders(out["image"], config, np.random.default_rng(occluder_seed))
    return out


def jitter_crop(
    record: dict[str, torch.Tensor], scale: float, shift: tuple[float, float], fill: np.ndarray | None = None
) -> dict[str, torch.Tensor]:
    """Re-frame a record's crop: side x ``scale`` (> 1 zooms out), centre moved by ``shift`` x the side.

    Args:
        record: one record (no batch dimension).
        scale: > 0, the new crop's side over the old one's.
        shift: (right, down) move of the crop centre, as fractions of the old side.
        fill: (3,) RGB in [0, 1] for image pixels beyond the old crop; default black.

    Returns:
        A new record; maps re-sampled by nearest neighbour, the image bilinearly, intrinsics adjusted.
    """
    if scale <= 0:
        raise ValueError(f"scale: expected > 0, got {scale}")
    n = record["image"].shape[-1]
    centre = (n - 1) / 2
    offset = np.array([centre + shift[0] * n - scale * centre, centre + shift[1] * n - scale * centre])
    index = torch.arange(n, dtype=torch.float64)
    source_u = scale * index + offset[0]
    source_v = scale * index + offset[1]
    # grid_sample with align_corners=True maps -1 and +1 to the centres of the first and last pixels.
    gu = (source_u / (n - 1) * 2 - 1).float()
    gv = (source_v / (n - 1) * 2 - 1).float()
    grid = torch.stack(torch.meshgrid(gv, gu, indexing="ij")[::-1], dim=-1)[None]

    def sample(value: torch.Tensor, mode: str) -> torch.Tensor:
        return torch.nn.functional.grid_sample(
            value[None].float(), grid, mode=mode, padding_mode="zeros", align_corners=True
        )[0]

    out = dict(record)
    image = sample(record["image"], "bilinear")
    inside = sample(torch.ones_like(record["image"][:1]), "bilinear")
    fill_colour = (
        torch.zeros(3, 1, 1) if fill is None else torch.as_tensor(fill, dtype=torch.float32)[:, None, None]
    )
    out["image"] = (image + (1 - inside) * fill_colour).clamp(0, 1)
    for key in _MAP_KEYS:
        if key in record:
            out[key] = sample(record[key], "nearest").to(record[key].dtype)
    focal, cx, cy = (float(x) for x in record["intrinsics"])
    out["intrinsics"] = torch.tensor(
        [focal / scale, (cx - offset[0]) / scale, (cy - offset[1]) / scale], dtype=record["intrinsics"].dtype
    )
    return out


def flip_record(record: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mirror a record left-right (see the module docstring); applying it twice gives the record back."""
    out = dict(record)
    for key in ("image", *_MAP_KEYS):
        if key in record:
            out[key] = torch.flip(record[key], dims=[-1])
    for key in ("visible_normals", "hidden_normals"):
        normals = out[key].clone()
        normals[0] = -normals[0]
        out[key] = normals
    n = record["image"].shape[-1]
    intrinsics = record["intrinsics"].clone()
    intrinsics[1] = (n - 1) - intrinsics[1]
    out["intrinsics"] = intrinsics
    return out


def jitter_colour(
    image: torch.Tensor, config: AugmentConfig, draws: np.ndarray, *, also: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Brightness, contrast, saturation and channel gains from six uniform draws in [-1, 1].

    Args:
        image: (3, N, N) float in [0, 1].
        draws: (6,) float in [-1, 1]: brightness, contrast, saturation, then three channel gains.
        also: optional (3, N, N) float in [0, 1] taken through the very same transform (the contrast
            pivots on ``image``'s mean): the back colours, photographed by the same camera.

    Returns:
        The two, jittered, in [0, 1] (the second None when ``also`` is).
    """
    pivot = None

    def transform(values: torch.Tensor) -> torch.Tensor:
        nonlocal pivot
        out = values
        if config.brightness:
            out = out * (1 + draws[0] * config.brightness)
        if config.contrast:
            pivot = out.mean() if pivot is None else pivot
            out = (out - pivot) * (1 + draws[1] * config.contrast) + pivot
        if config.saturation:
            grey = out.mean(dim=0, keepdim=True)
            out = (out - grey) * (1 + draws[2] * config.saturation) + grey
        if config.channel_gain:
            out = out * torch.tensor(1 + draws[3:6] * config.channel_gain, dtype=out.dtype)[:, None, None]
        return out.clamp(0, 1)

    jittered = transform(image)
    return jittered, None if also is None else transform(also)


def add_occluders(image: torch.Tensor, config: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """Paint 1 to ``max_occluders`` rectangles or discs (flat colour or noise) with probability ``occluder``.

    Args:
        image: (3, N, N) float in [0, 1].

    Returns:
        (3, N, N) float in [0, 1], a new tensor.
    """
    n = image.shape[-1]
    out = image.clone()
    if rng.uniform() >= config.occluder:
        return out
    low, high = config.occluder_size
    v, u = np.mgrid[0:n, 0:n]
    for _ in range(int(rng.integers(1, config.max_occluders + 1))):
        width, height = rng.uniform(low, high, size=2) * n
        cu, cv = rng.uniform(0, n, size=2)
        if rng.uniform() < 0.5:
            region = (np.abs(u - cu) <= width / 2) & (np.abs(v - cv) <= height / 2)
        else:
            region = ((u - cu) / (width / 2)) ** 2 + ((v - cv) / (height / 2)) ** 2 <= 1
        colour = rng.uniform(0, 1, size=(3, 1, 1))
        if rng.uniform() < 0.5:
            paint = colour + rng.normal(0, 0.15, size=(3, n, n))
        else:
            paint = np.broadcast_to(colour, (3, n, n))
        region_t = torch.from_numpy(region)
        out[:, region_t] = torch.from_numpy(np.clip(paint, 0, 1)[:, region]).to(out.dtype)
    return out

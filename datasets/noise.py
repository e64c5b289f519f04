"""Smooth value noise in torch, for patterns, folds, hair strands and backgrounds.

Value noise: random values on the integer lattice, blended across each cell with smoothstep weights, so
the field is continuous with a continuous slope. The lattice is one fixed periodic table of 128³ values
(8 MB, the same on every device), and a seed picks an integer offset into it, so that each seed gives
its own field and a batch of points with different seeds costs one ``grid_sample`` call: blending
``floor(p) + smoothstep(p - floor(p))`` trilinearly is exactly the smoothstep blend. Fields repeat every
128 lattice cells (2.6 m for the 2 cm skin grain, far beyond a body for the coarser patterns).
"""

from __future__ import annotations

import functools

import torch

PERIOD = 128
"""Lattice cells before the noise repeats, along each axis."""
_OCTAVE_SEED_STEP = 7919
"""Seed increment from one octave to the next (a prime, so octaves never share an offset)."""


@functools.lru_cache(maxsize=4)
def _lattice(device: torch.device) -> torch.Tensor:
    """(1, 1, P + 1, P + 1, P + 1) float32 lattice values in [-1, 1], wrapped by one layer for blending."""
    generator = torch.Generator().manual_seed(20261129)
    values = torch.rand((PERIOD,) * 3, generator=generator) * 2 - 1
    values = torch.cat([values, values[:1]], 0)
    values = torch.cat([values, values[:, :1]], 1)
    values = torch.cat([values, values[:, :, :1]], 2)
    return values[None, None].to(device)


def noise_offsets(seeds: torch.Tensor | int, octaves: int = 2) -> torch.Tensor:
    """(..., octaves, 3) float32 lattice offsets in [0, P) of (...) int64 seeds, one per octave (a fixed
    integer hash): what :func:`value_noise` takes. Hash the few seeds of a scene once, then gather."""
    seeds = torch.as_tensor(seeds, dtype=torch.int64)
    levels = seeds[..., None] + _OCTAVE_SEED_STEP * torch.arange(octaves, device=seeds.device)
    x = levels & 0xFFFFFFFF
    out = []
    for salt in (0x9E3779B9, 0x85EBCA6B, 0xC2B2AE35):
        h = (x ^ salt) & 0xFFFFFFFF
        h = ((h ^ (h >> 16)) * 0x7FEB352D) & 0xFFFFFFFF
        h = ((h ^ (h >> 15)) * 0x846CA68B) & 0xFFFFFFFF
        out.append((h ^ (h >> 16)) % PERIOD)
    return torch.stack(out, -1).to(torch.float32)


def value_noise(points: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Smooth noise in about [-1, 1] at points (lattice spacing 1), a sum of octaves of halving amplitude.

    Args:
        points: (..., 3) float coordinates (scale them first: spacing 1 = the size of the features).
        offsets: (..., K, 3) or (K, 3) float32 from :func:`noise_offsets` (K octaves): which field.

    Returns:
        (...) float32 noise on the points' device; deterministic, the same on every device up to float32
        round-off.
    """
    points = points.to(torch.float32)
    offsets = offsets.to(points.device).expand(*points.shape[:-1], *offsets.shape[-2:])
    lattice = _lattice(points.device)
    total = torch.zeros(points.shape[:-1], dtype=torch.float32, device=points.device)
    amplitude, norm = 1.0, 0.0
    for octave in range(offsets.shape[-2]):
        scaled = points * 2.0**octave
        cell = torch.floor(scaled)
        frac = scaled - cell
        smooth = torch.remainder(cell + frac * frac * (3 - 2 * frac) + offsets[..., octave, :], PERIOD)
        # grid_sample's (x, y, z) index the lattice's (W, H, D), i.e. our (z, y, x); align_corners: -1 and
        # 1 are cells 0 and P.
        grid = (smooth.flip(-1) * (2.0 / PERIOD) - 1).reshape(1, 1, 1, -1, 3)
        sampled = torch.nn.functional.grid_sample(lattice, grid, mode="bilinear", align_corners=True)
        total = total + amplitude * sampled.reshape(points.shape[:-1])
        norm += amplitude
        amplitude *= 0.5
    return total / norm

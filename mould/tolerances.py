"""Every threshold of the core in one place, each with the reason for its value."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerances:
    """Thresholds used by encoding, decoding and validation (metres unless stated)."""

    min_resolution: int = 8
    """Smallest crop side in pixels: below this a body has no interior pixels to take gradients on."""
    max_resolution: int = 4096
    """Largest crop side: 2 x 4096^2 float32 maps are already 128 MiB."""
    depth_jump: float = 0.05
    """A step in depth between neighbouring pixels above this is a self-occlusion, not a slope.
    At 256^2 on a 2 m figure a pixel is ~8 mm wide, so 5 cm is a surface at ~80 degrees from the ray."""
    order_slack: float = 1e-5
    """How far hidden may fall below visible before a mould is called invalid (float32 round-off)."""
    side_band_spacing: float = 1.0
    """Spacing of the side-band points along a silhouette ray, in pixel footprints."""


DEFAULT_TOLERANCES = Tolerances()

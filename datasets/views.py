"""Where the synthetic camera stands: the view mix of photographs of people, and the view bands.

Yaw is the camera's angle about the vertical, 0 in front of the person (the camera on +Z, the body facing
+Z; see :func:`mould.camera.view_direction`). Scores are reported per **view band** of ``|yaw|``:
front (0-45 degrees), side (45-135) and back (135-180).

**The photo mix** (the generator's default): most photographs of people are taken from the front half —
portraits, fashion and holiday pictures face the camera, sports and candid shots turn a shoulder — and few
from behind. Drawn as 70 % front, 22 % side and 8 % back, uniform in ``|yaw|`` within each band and
either side: 30 % of views lie beyond 45 degrees and 8 % beyond 135, so the network still learns every
side of a person while most of its capacity goes to the views users bring. ``uniform`` draws yaw over the
whole circle (the mix of generator versions 1 and 2).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

ViewMix = Literal["photo", "uniform"]
VIEW_MIXES: tuple[ViewMix, ...] = ("photo", "uniform")

VIEW_BANDS: dict[str, tuple[float, float]] = {"front": (0.0, 45.0), "side": (45.0, 135.0), "back": (135.0, 180.0)}
"""Band name -> range of ``|yaw|`` in degrees (lower bound exclusive but for the front band)."""

PHOTO_MIX: dict[str, float] = {"front": 0.70, "side": 0.22, "back": 0.08}
"""Probability of each band in the photo mix (see the module docstring)."""


def sample_yaw(rng: np.random.Generator, mix: ViewMix = "photo") -> float:
    """A camera yaw in degrees, in (-180, 180], drawn from ``mix``."""
    if mix == "uniform":
        return float(rng.uniform(-180.0, 180.0))
    if mix != "photo":
        raise ValueError(f"mix: expected one of {VIEW_MIXES}, got {mix!r}")
    names = list(PHOTO_MIX)
    band = names[int(rng.choice(len(names), p=[PHOTO_MIX[name] for name in names]))]
    low, high = VIEW_BANDS[band]
    return float(rng.uniform(low, high) * (1.0 if rng.uniform() < 0.5 else -1.0))


def view_band(yaw_deg: float) -> str:
    """The band (``"front"``, ``"side"`` or ``"back"``) of a yaw in degrees (any angle; wrapped)."""
    angle = abs((float(yaw_deg) + 180.0) % 360.0 - 180.0)
    return "front" if angle <= 45.0 else "side" if angle <= 135.0 else "back"

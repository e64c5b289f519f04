"""Pictures of moulds for people to look at: one colour scale for depth, and figures of whole moulds.

Depth is always drawn the same way: viridis from near = bright yellow to far = dark blue, background dark
grey (:func:`depth_colours`, :data:`DEPTH_COLOURMAP`), in contact sheets, prediction grids and figures.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mould.container import Mould
from mould.files import write_atomic

DEPTH_COLOURMAP = "viridis_r"
"""matplotlib colour map of depth, near to far: near is bright."""
VIRIDIS_R = np.array([
    [253, 231, 37], [213, 226, 26], [170, 220, 50], [129, 211, 77], [92, 200, 99], [61, 188, 116],
    [39, 173, 129], [31, 159, 136], [33, 144, 141], [38, 129, 142], [44, 113, 142], [51, 98, 141],
    [59, 81, 139], [66, 63, 133], [71, 44, 122], [72, 23, 105], [68, 1, 84],
], np.float64)  # fmt: skip
"""(17, 3) the same map at 17 even steps, 8-bit RGB, drawn by linear interpolation where matplotlib is not
installed (a GPU machine with a plain copy of the package): at most 6 levels from matplotlib's colours."""
BACKGROUND_GREY = 40
"""Grey level of pixels outside the mask in depth pictures."""


def depth_colours(depth: np.ndarray, mask: np.ndarray, near: float, far: float) -> np.ndarray:
    """Colours of a depth map on the scale [near, far] metres (see the module docstring).

    Args:
        depth: (H, W) float, metres (NaN allowed outside the mask). mask: (H, W) bool.
        near, far: metres at the two ends of the scale.

    Returns:
        (H, W, 3) uint8.
    """
    scaled = np.clip((np.nan_to_num(depth) - near) / max(far - near, 1e-6), 0, 1)
    try:
        from matplotlib import colormaps
    except ImportError:
        steps = np.linspace(0, 1, len(VIRIDIS_R))
        rgb = np.stack([np.interp(scaled, steps, VIRIDIS_R[:, k]) for k in range(3)], -1)
        rgb = (rgb + 0.5).astype(np.uint8)
    else:
        rgb = (colormaps[DEPTH_COLOURMAP](scaled)[..., :3] * 255 + 0.5).astype(np.uint8)
    rgb[~mask] = BACKGROUND_GREY
    return rgb


def mould_figure(mould: Mould, title: str = ""):
    """A matplotlib figure: image (if any), visible depth, hidden depth, mask; depths share one colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ([("image", mould.image)] if mould.image is not None else []) + [
        ("visible depth (m)", mould.visible),
        ("hidden depth (m)", mould.hidden),
        ("mask", mould.mask),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) + 0.8, 3.6), squeeze=False)
    inside = np.concatenate([mould.visible[mould.mask], mould.hidden[mould.mask]])
    low, high = (float(inside.min()), float(inside.max())) if inside.size else (0.0, 1.0)
    depth_image = None
    for axis, (name, data) in zip(axes[0], panels):
        axis.set_title(name, fontsize=10)
        axis.set_axis_off()
        if name == "image":
            axis.imshow(data)
        elif name == "mask":
            axis.imshow(data, cmap="gray", vmin=0, vmax=1)
        else:
            depth_image = axis.imshow(
                np.ma.masked_where(~mould.mask, data), cmap=DEPTH_COLOURMAP, vmin=low, vmax=high
            )
    if depth_image is not None:
        figure.colorbar(depth_image, ax=axes[0].tolist(), fraction=0.025, pad=0.02, label="camera-space z (m)")
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def save_figure(figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        write_atomic(path, lambda handle: figure.savefig(handle, format="png", dpi=dpi, bbox_inches="tight"))
    finally:
        plt.close(figure)
    return path

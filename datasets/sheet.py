"""Contact sheets: what the network learns from, at a glance (``mould data show``).

Each sample is a strip of four panels: the image, the visible depth, the hidden depth and the mask. Both
depths share one colour scale per sample (near = bright yellow, far = dark blue), so the thickness of the
body, its clothes and hair reads as a change of colour between the second and third panels.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from mould.datasets.samples import read_sample, sample_names

from mould.errors import InputError
from mould.preview import depth_colours

log = logging.getLogger(__name__)

PANELS = ("image", "visible", "hidden", "mask")


def sample_strip(mould) -> np.ndarray:
    """(N, 4 N, 3) uint8: image, visible, hidden and mask of a mould that holds its image."""
    mask = mould.mask
    near = float(mould.visible[mask].min()) if mask.any() else 0.0
    far = float(mould.hidden[mask].max()) if mask.any() else 1.0
    panels = [
        mould.image,
        depth_colours(mould.visible, mask, near, far),
        depth_colours(mould.hidden, mask, near, far),
        np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=2),
    ]
    return np.concatenate(panels, axis=1)


def contact_sheet(
    folder: str | os.PathLike, count: int = 8, *, columns: int = 2, panel: int = 128
) -> tuple[np.ndarray, list[str]]:
    """A contact sheet of ``count`` samples spread evenly over a folder.

    Args:
        folder: a folder of samples (:mod:`mould.datasets.samples`).
        count: how many samples to show (fewer if the folder holds fewer readable ones).
        columns: samples per row.
        panel: side of each panel in pixels.

    Returns:
        (sheet (H, W, 3) uint8, the names shown). Corrupt samples are logged and passed over.

    Raises:
        InputError: the folder holds no readable sample.
    """
    from PIL import Image

    if count < 1 or columns < 1 or panel < 8:
        raise ValueError(f"count, columns, panel: expected >= 1, >= 1, >= 8, got {count}, {columns}, {panel}")
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    names = sample_names(folder)
    if not names:
        raise InputError(f"{folder}: no samples found")
    order = [names[int(i)] for i in np.unique(np.linspace(0, len(names) - 1, min(count, len(names))).round())]
    order += [name for name in names if name not in order]
    strips, shown = [], []
    for name in order:
        if len(strips) == count:
            break
        try:
            mould, _ = read_sample(folder, name)
        except InputError as error:
            log.warning("skipping bad sample %s: %s", folder / name, error)
            continue
        strip = Image.fromarray(sample_strip(mould)).resize((4 * panel, panel), Image.BILINEAR)
        strips.append(np.asarray(strip))
        shown.append(name)
    if not strips:
        raise InputError(f"{folder}: no readable sample")
    columns = min(columns, len(strips))
    rows = -(-len(strips) // columns)
    gap = 4
    sheet = np.full((rows * (panel + gap) - gap, columns * (4 * panel + gap) - gap, 3), 255, np.uint8)
    for i, strip in enumerate(strips):
        r, c = divmod(i, columns)
        sheet[
            r * (panel + gap) : r * (panel + gap) + panel,
            c * (4 * panel + gap) : c * (4 * panel + gap) + 4 * panel,
        ] = strip
    return sheet, shown

"""Finding the person in a photo and cutting the square crop the network sees.

The crop follows the toolkit's one framing rule (:func:`mould.framing.square_box`): the square around the
person's silhouette with the same margin as the training crops. Where the silhouette comes from:

1. an alpha channel that is a real mask (see :meth:`mould.images.Photo.alpha_mask`);
2. else a mask file (``--mask``);
3. else the network's own silhouette head: predict on the whole photo padded to a square, crop around the
   predicted silhouette, predict again, until the crop stops moving. The crop returned is then the last
   one the network saw (within ``stable_iou`` of the next), so the caller can reuse that prediction
   rather than pay for another pass.

**Several people:** the crop frames the largest connected region of the silhouette; others are ignored
(they may still show at the crop's edge, and the mask keeps only the framed person's region).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mould.framing import CropWindow, SquareBox, crop_image, square_box, whole_image_box
from mould.models.inference import MASK_THRESHOLD
from mould.reconstruction.config import CropConfig


def largest_region(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: the largest 8-connected region of a mask (all False when it is empty); for meshes, see
    :func:`mould.recon.mesh.largest_component`."""
    from scipy.ndimage import label

    labels, count = label(mask, structure=np.ones((3, 3), bool))
    if count <= 1:
        return mask.astype(bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def mask_box(mask: np.ndarray, margin: float) -> SquareBox | None:
    """The framing square (pixel-centre coordinates) around a mask's largest region, or None if empty."""
    region = largest_region(mask)
    rows, cols = np.nonzero(region)
    if len(rows) == 0:
        return None
    # Pixel (r, c) covers [c - 0.5, c + 0.5]: frame the pixels' extent, not their centres.
    return square_box(cols.min() - 0.5, cols.max() + 0.5, rows.min() - 0.5, rows.max() + 0.5, margin=margin)


def box_iou(a: SquareBox, b: SquareBox) -> float:
    """Area intersection-over-union of two squares."""
    overlap_u = max(0.0, min(a.u + a.side / 2, b.u + b.side / 2) - max(a.u - a.side / 2, b.u - b.side / 2))
    overlap_v = max(0.0, min(a.v + a.side / 2, b.v + b.side / 2) - max(a.v - a.side / 2, b.v - b.side / 2))
    inter = overlap_u * overlap_v
    return inter / (a.side**2 + b.side**2 - inter)


@dataclass(frozen=True)
class PersonCrop:
    """Where the person is and the crop the network sees.

    Attributes:
        box: the framing square in the photo's pixel-centre coordinates.
        image: (size, size, 3) uint8 crop.
        mask: (size, size) bool silhouette in the crop when it came from alpha or a mask file, else None.
        source: "alpha", "mask-file" or "network".
        iterations: network passes spent framing (0 for a given mask).
    """

    box: SquareBox
    image: np.ndarray
    mask: np.ndarray | None
    source: str
    iterations: int


class NoPersonFound(ValueError):
    """The silhouette is empty or tiny: there is nobody to reconstruct."""


def find_person(
    rgb: np.ndarray,
    predict_silhouette: Callable[[np.ndarray], np.ndarray],
    *,
    mask: np.ndarray | None = None,
    mask_source: str = "mask-file",
    config: CropConfig | None = None,
) -> PersonCrop:
    """Frame the person in a photo.

    Args:
        rgb: (H, W, 3) uint8 photo.
        predict_silhouette: crop (size, size, 3) uint8 -> (size, size) float person probability; called
            only when ``mask`` is None.
        mask: optional (H, W) bool person mask (from alpha or a file).
        mask_source: how ``mask`` was obtained, for the record.

    Raises:
        NoPersonFound: the mask or the predicted silhouette is empty.
    """
    config = config or CropConfig()
    height, width = rgb.shape[:2]
    if mask is not None:
        box = mask_box(mask, config.margin)
        if box is None or largest_region(mask).sum() < config.min_pixels:
            raise NoPersonFound("no person in the given mask")
        window = CropWindow.square(box, config.size)
        crop_mask = crop_image(largest_region(mask), window)
        return PersonCrop(box, crop_image(rgb, window), crop_mask, mask_source, 0)

    box = whole_image_box(height, width)
    passes = 0
    while passes < config.max_iterations:
        passes += 1
        window = CropWindow.square(box, config.size)
        crop = crop_image(rgb, window)
        silhouette = predict_silhouette(crop) > MASK_THRESHOLD
        if largest_region(silhouette).sum() < config.min_pixels:
            raise NoPersonFound("no person found (the predicted silhouette is empty)")
        inner = mask_box(silhouette, config.margin)
        # Map the crop-space square back to photo coordinates.
        u, v = window.to_frame(inner.u, inner.v)
        new_box = SquareBox(float(u), float(v), inner.side * box.side / config.size)
        if box_iou(box, new_box) >= config.stable_iou:
            # Stable: the crop just seen frames the person as well as a new one would (the training crops
            # are jittered by more than this), and its prediction can be reused.
            return PersonCrop(box, crop, None, "network", passes)
        box = new_box
        if not math.isfinite(box.side):
            break
    return PersonCrop(box, crop_image(rgb, CropWindow.square(box, config.size)), None, "network", passes)

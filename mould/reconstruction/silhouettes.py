"""What one crop's predicted silhouette says about the crop: where the person is, how sure the network is,
and whether the shape is a person at all.

The framing search (:mod:`mould.reconstruction.person`) predicts several crops of a photo and keeps the one
whose silhouette is the most person-like; the same measures then decide whether there is anybody at all.
Each measure answers a failure seen on real photos (``docs/reconstruction.md``, "Finding the person"):

- **contrast**: mean probability on the region minus around it. A person is a sharp, confident shape; what
  the network half-believes on textured backgrounds (foliage, cobbles, brick) is a mush that fades out.
- **dominance**: the region's share of all the probability above the threshold: one figure, not one blob
  among many.
- **thickness**: the radius of the largest disc inside the region over its extent. A person has a torso; a
  pole, a wire or the gap between two boxes, which the shipped network takes for a person, does not.
- **edge support**: how much stronger the photo's edges are along the region's outline than elsewhere in
  the crop. A silhouette follows the person's outline; a region the network paints on a flat colour, a
  gradient or noise follows nothing in the photo.
- **photo share**: the region's share of the photo's pixels in the crop. A whole-body framing leaves
  background around the person; a region that fills the photo is the network answering "everything".
- **solidity**: the region's area over its convex hull's. A body has hollows (between the legs, under the
  arms); the boxes, discs, triangles and blobs the network takes for people have none.

The thresholds (:class:`~mould.reconstruction.config.CropConfig`) were set on 109 people (real photos,
synthetic people, synthetic people pasted into real scenes) and 118 images without anybody; the figures are
in ``docs/reconstruction.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mould.framing import CropWindow, SquareBox, square_box
from mould.models.maps import MASK_THRESHOLD

EIGHT_CONNECTED = np.ones((3, 3), bool)


def largest_region(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool: the largest 8-connected region of a mask, by pixel count or by the sum of ``weights``
    ((H, W) float, e.g. the probability) over it; all False when the mask is empty. For meshes, see
    :func:`mould.recon.mesh.largest_component`."""
    from scipy.ndimage import label

    labels, count = label(mask, structure=EIGHT_CONNECTED)
    if count <= 1:
        return mask.astype(bool)
    sizes = np.bincount(labels.ravel(), weights=None if weights is None else weights.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def pixels_box(mask: np.ndarray, margin: float) -> SquareBox:
    """The framing square (pixel-centre coordinates) of all the True pixels of a non-empty mask."""
    rows, cols = np.nonzero(mask)
    # Pixel (r, c) covers [c - 0.5, c + 0.5]: frame the pixels' extent, not their centres.
    return square_box(cols.min() - 0.5, cols.max() + 0.5, rows.min() - 0.5, rows.max() + 0.5, margin=margin)


def mask_box(mask: np.ndarray, margin: float) -> SquareBox | None:
    """The framing square (pixel-centre coordinates) around a mask's largest region, or None if empty."""
    region = largest_region(mask)
    return pixels_box(region, margin) if region.any() else None


@dataclass(frozen=True)
class Silhouette:
    """The person's region in one crop and how person-like it is.

    Attributes:
        window: the crop in the photo.
        probability: (N, N) float32 person probability, 0 beyond the photo's edges.
        region: (N, N) bool, the region of ``probability > MASK_THRESHOLD`` with the most probability mass.
        area: the region's pixels / N².
        extent: the longer side of the region's bounding box / N.
        contrast: mean probability on the region minus that on the background around it (a ring 2.5 % of N
            wide, inside the photo, off every region), in [-1, 1].
        dominance: the region's share of the probability mass above the threshold, in (0, 1].
        thickness: radius of the largest disc inside the region / (extent x N).
        edge_support: mean edge strength of the photo along the region's outline / its mean over the crop
            (1: the outline follows nothing; 0 on a flat image).
        photo_share: the region's pixels / the crop's pixels that lie inside the photo.
        solidity: the region's pixels / the area of its convex hull (1 for a box, a disc, a triangle).
        box: the framing square of the region, in the photo's pixel coordinates (margin as configured).
    """

    window: CropWindow
    probability: np.ndarray
    region: np.ndarray
    area: float
    extent: float
    contrast: float
    dominance: float
    thickness: float
    edge_support: float
    photo_share: float
    solidity: float
    box: SquareBox

    @property
    def size(self) -> float:
        """The region's extent in photo pixels."""
        return self.extent * self.window.side_u

    @property
    def score(self) -> float:
        """How well this crop shows a person, to rank crops of one photo: a sharp, single figure first, and of
        two equally sharp ones the larger (the whole person over a part, the largest of several people):
        ``contrast x dominance x size^(1/4)``; the fourth root makes doubling the size worth as much as 19 %
        more contrast (measured while designing it, on 50 synthetic people pasted into real and cluttered
        scenes: choosing among the same crops by this score framed them with a box IoU of 0.77 on average
        against the true framing, by contrast alone 0.59)."""
        return max(self.contrast, 0.0) * self.dominance * max(self.size, 1.0) ** 0.25


def edge_strength(image: np.ndarray) -> np.ndarray:
    """(N, N) float: the grey image's Sobel gradient magnitude (grey levels per pixel), at its largest within
    2 pixels (the predicted outline is blurred over a few pixels), for an (N, N, 3) uint8 crop."""
    from scipy.ndimage import maximum_filter, sobel

    grey = image.astype(np.float32).mean(axis=2)
    magnitude = np.hypot(sobel(grey, axis=0), sobel(grey, axis=1)) / 8  # Sobel's weights sum to 8
    return maximum_filter(magnitude, size=5)


def solidity(region: np.ndarray, outline: np.ndarray) -> float:
    """A region's pixels over the area of the convex hull of its pixels' squares, in (0, 1].

    Args:
        region: (N, N) bool, not empty. outline: (N, N) bool, its pixels on its border (the hull's only
            candidates).
    """
    rows, cols = np.nonzero(outline)
    # Pixel squares' corners: never all on one line, so the hull always has an area.
    corners = np.concatenate([np.stack([cols + du, rows + dv], 1) for du in (-0.5, 0.5) for dv in (-0.5, 0.5)])
    return float(min(1.0, region.sum() / hull_area(corners)))


def hull_area(points: np.ndarray) -> float:
    """The area of the convex hull of (P, 2) points (Andrew's monotone chain; 0 when they are collinear).

    Only each row's leftmost and rightmost points can be hull vertices, so the chain walks at most two
    points a row: a few milliseconds for a crop's outline, without scipy.spatial's import (0.12 s).
    """
    points = np.asarray(points, np.float64)
    order = np.lexsort((points[:, 0], points[:, 1]))
    _, first = np.unique(points[order, 1], return_index=True)
    last = np.r_[first[1:], len(order)] - 1
    extremes = np.unique(np.concatenate([points[order[first]], points[order[last]]]), axis=0).tolist()

    def chain(sequence: list[list[float]]) -> list[list[float]]:
        kept: list[list[float]] = []
        for x, y in sequence:
            while len(kept) >= 2:
                (ax, ay), (bx, by) = kept[-2], kept[-1]
                if (bx - ax) * (y - ay) - (by - ay) * (x - ax) > 0:  # a left turn: b stays
                    break
                kept.pop()
            kept.append([x, y])
        return kept

    hull = np.array(chain(extremes)[:-1] + chain(extremes[::-1])[:-1])
    if len(hull) < 3:
        return 0.0
    x, y = hull[:, 0], hull[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def measure_silhouette(
    probability: np.ndarray, image: np.ndarray, inside: np.ndarray, window: CropWindow, margin: float
) -> Silhouette | None:
    """The measures of one crop's prediction, or None when nothing is above the threshold.

    Args:
        probability: (N, N) float person probability predicted for the crop.
        image: (N, N, 3) uint8, the crop.
        inside: (N, N) bool, the crop's pixels that lie inside the photo (the rest is padding).
        window: the crop in the photo.
        margin: the framing margin of :attr:`Silhouette.box`.
    """
    from scipy.ndimage import binary_dilation, binary_erosion, distance_transform_edt, label

    probability = np.where(inside, probability, 0).astype(np.float32)
    above = probability > MASK_THRESHOLD
    labels, count = label(above, structure=EIGHT_CONNECTED)
    if count == 0:
        return None
    mass = np.bincount(labels.ravel(), weights=probability.ravel())[1:]
    region = labels == int(np.argmax(mass)) + 1
    rows, cols = np.nonzero(region)
    n = probability.shape[0]
    extent = float(max(np.ptp(rows), np.ptp(cols)) + 1)
    # The ring is the background around the region: other regions above the threshold are not background.
    ring = binary_dilation(region, EIGHT_CONNECTED, iterations=max(2, round(0.025 * n))) & ~above & inside
    contrast = float(probability[region].mean() - (probability[ring].mean() if ring.any() else 0.0))
    edges = edge_strength(image)
    outline = region & ~binary_erosion(region, EIGHT_CONNECTED)
    edge_mean = float(edges[inside].mean())
    support = float(edges[outline].mean() / edge_mean) if edge_mean > 0 else 0.0
    return Silhouette(
        window=window,
        probability=probability,
        region=region,
        area=float(region.mean()),
        extent=extent / n,
        contrast=contrast,
        dominance=float(mass.max() / mass.sum()),
        thickness=float(distance_transform_edt(region).max() / extent),
        edge_support=support,
        photo_share=float(region.sum() / max(int(inside.sum()), 1)),
        solidity=solidity(region, outline),
        box=window.square_to_frame(pixels_box(region, margin)),
    )

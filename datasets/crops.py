"""Square crops around a person in a full camera frame, for datasets of real (full-frame) images.

The crop is the toolkit's one framing rule, :func:`mould.framing.square_box`, applied to the person's extent
in the frame, and its geometry is the toolkit's one crop geometry, :class:`mould.framing.CropWindow`, so
that real data is cropped as synthetic data and photos are. A frame whose pixels are not square
(``fx != fy``) is framed in units of fx-pixels, so that the crop's own pixels are square.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mould.camera import Camera
from mould.framing import CropWindow, square_box


@dataclass(frozen=True)
class Crop:
    """A square crop of a frame.

    Attributes:
        camera: the crop's perspective camera (world frame of the dataset).
        window: where the crop lies in the frame (sample the frame's maps with
            :func:`mould.framing.sample_frame`).
    """

    camera: Camera
    window: CropWindow


def crop_around(
    intrinsics: np.ndarray,
    cam_to_world: np.ndarray,
    extent: tuple[float, float, float, float],
    resolution: int,
    *,
    margin: float = 0.1,
) -> Crop:
    """The square crop holding a pixel extent of a frame, with the framing margin.

    Args:
        intrinsics: (3, 3) frame K, pixels, pixel centres at integers.
        cam_to_world: (4, 4) rigid camera-to-world transform (OpenCV axes).
        extent: (u_min, u_max, v_min, v_max) of the person in frame pixels.
        resolution: N, the crop's side.
        margin: see :func:`mould.framing.square_box`.
    """
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    u_min, u_max, v_min, v_max = extent
    # Measure the extent in units of fx-pixels, so that the square is square in angle.
    box = square_box(u_min, u_max, v_min * fx / fy, v_max * fx / fy, margin=margin)
    window = CropWindow(box.u, box.v * fy / fx, box.side, box.side * fy / fx, resolution)
    return Crop(camera=window.camera(fx, fy, cx, cy, cam_to_world), window=window)


def mask_extent(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """(u_min, u_max, v_min, v_max) of a mask's pixels, or None when it is empty."""
    rows, columns = np.nonzero(mask)
    if len(rows) == 0:
        return None
    return float(columns.min()), float(columns.max()), float(rows.min()), float(rows.max())

"""Square crops around a person in a full camera frame, for datasets of real (full-frame) images.

The crop is the toolkit's one framing rule, :func:`mould.camera.square_box`, applied to the person's extent
in the frame, so that real data is cropped as synthetic data and photos are. Pixel centres sit at integer
coordinates (the toolkit's convention). A crop of N pixels whose box has centre ``(bu, bv)`` and side
``(su, sv)`` frame pixels shows frame pixel ``u = bu + (u' - (N - 1) / 2) su / N`` at crop pixel ``u'``;
its intrinsics are ``f' = fx N / su`` and ``cx' = (cx - bu) N / su + (N - 1) / 2`` (likewise in v). With
``sv = su fy / fx`` a frame whose pixels are not square still gives one focal length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mould.camera import Camera, square_box


@dataclass(frozen=True)
class Crop:
    """A square crop of a frame.

    Attributes:
        camera: the crop's perspective camera (world frame of the dataset).
        u, v: (N,) float64, the frame's pixel coordinates (column, row) of the crop's columns and rows.
    """

    camera: Camera
    u: np.ndarray
    v: np.ndarray


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
        margin: see :func:`mould.camera.square_box`.
    """
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    u_min, u_max, v_min, v_max = extent
    # Measure the extent in units of fx-pixels, so that the square is square in angle.
    box = square_box(u_min, u_max, v_min * fx / fy, v_max * fx / fy, margin=margin)
    side_u, side_v = box.side, box.side * fy / fx
    centre_u, centre_v = box.u, box.v * fy / fx
    n = resolution
    focal = fx * n / side_u
    camera = Camera(
        "perspective",
        n,
        focal,
        (cx - centre_u) * n / side_u + (n - 1) / 2,
        (cy - centre_v) * n / side_v + (n - 1) / 2,
        cam_to_world,
    )
    index = np.arange(n, dtype=np.float64) - (n - 1) / 2
    return Crop(camera=camera, u=centre_u + index * side_u / n, v=centre_v + index * side_v / n)


def sample_frame(frame: np.ndarray, crop: Crop, *, order: int, fill: float = 0.0) -> np.ndarray:
    """Re-sample a frame (image or map) on a crop's pixel centres.

    Args:
        frame: (H, W) or (H, W, C) array.
        crop: the crop.
        order: 0 nearest (depth, masks: never blend across a silhouette), 1 bilinear (images).
        fill: value beyond the frame.

    Returns:
        (N, N) or (N, N, C) float64.
    """
    from scipy.ndimage import map_coordinates

    vv, uu = np.meshgrid(crop.v, crop.u, indexing="ij")
    coordinates = np.stack([vv.ravel(), uu.ravel()])
    n = len(crop.u)
    data = frame.astype(np.float64)
    if data.ndim == 2:
        return map_coordinates(data, coordinates, order=order, mode="constant", cval=fill).reshape(n, n)
    channels = [
        map_coordinates(data[..., c], coordinates, order=order, mode="constant", cval=fill).reshape(n, n)
        for c in range(data.shape[2])
    ]
    return np.stack(channels, axis=-1)


def mask_extent(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """(u_min, u_max, v_min, v_max) of a mask's pixels, or None when it is empty."""
    rows, columns = np.nonzero(mask)
    if len(rows) == 0:
        return None
    return float(columns.min()), float(columns.max()), float(rows.min()), float(rows.max())

"""Decoding: a mould becomes an oriented point cloud in its world frame.

Each mask pixel gives one front point (visible depth) and one back point (hidden depth) on its ray.
Normals come from the depth gradients of each map: the cross product of the back-projected surface's
tangents along the image rows and columns. A neighbour across a depth jump larger than
``Tolerances.depth_jump`` (a self-occlusion) or outside the mask is not used: the one-sided difference
on the other side is taken instead. Front normals face the camera, back normals face away.

The optional **side band** fills the gap at the silhouette where the two maps meet: along the rays of the
silhouette's boundary pixels, points are placed between the visible and the hidden depth, with normals
perpendicular to the ray, pointing out of the silhouette. Meshing then closes the sides cleanly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from mould.camera import Camera
from mould.container import Mould
from mould.tolerances import DEFAULT_TOLERANCES, Tolerances

FRONT, BACK, SIDE = 0, 1, 2
"""Values of :attr:`PointCloud.source`."""

NormalSource = Literal["auto", "gradient", "stored"]


@dataclass(frozen=True)
class PointCloud:
    """An oriented point cloud decoded from a mould.

    Attributes:
        points: (P, 3) float32, metres, world frame of the mould's camera.
        normals: (P, 3) float32, unit length, pointing out of the body.
        source: (P,) uint8, FRONT (0), BACK (1) or SIDE (2).
        pixels: (P, 2) int32 (row, column) of the pixel each point came from.
    """

    points: np.ndarray
    normals: np.ndarray
    source: np.ndarray
    pixels: np.ndarray

    def __len__(self) -> int:
        return len(self.points)


def depth_to_camera_points(depth: np.ndarray, camera: Camera) -> np.ndarray:
    """Back-project a whole depth map: (N, N) metres -> (N, N, 3) float64 camera-frame points."""
    u, v = camera.pixel_grid()
    return camera.backproject(u, v, depth)


def gradient_normals(
    depth: np.ndarray,
    mask: np.ndarray,
    camera: Camera,
    *,
    facing: Literal["towards", "away"],
    tolerances: Tolerances = DEFAULT_TOLERANCES,
) -> np.ndarray:
    """Unit normals of a depth map from its gradients, in the camera frame.

    Along each image axis the tangent is the central difference where both neighbours are in the mask
    and on the same surface (their depth steps differ by less than ``tolerances.depth_jump``); otherwise
    the one-sided difference with the smaller depth step; a pixel with no usable neighbour along an axis
    falls back to a normal facing straight along the ray.

    Args:
        depth: (N, N) float, camera-space z, metres.
        mask: (N, N) bool.
        camera: the mould's camera.
        facing: ``"towards"`` the camera (front map) or ``"away"`` (back map).

    Returns:
        (N, N, 3) float32 unit normals, camera frame; zero outside ``mask``.
    """
    points = depth_to_camera_points(depth, camera).astype(np.float32)
    jump = tolerances.depth_jump
    tangents = []
    for axis in (1, 0):  # along columns (u), then along rows (v)
        head = (slice(None), slice(1, None)) if axis == 1 else (slice(1, None), slice(None))
        tail = (slice(None), slice(None, -1)) if axis == 1 else (slice(None, -1), slice(None))
        step = points[head] - points[tail]  # the difference between each pixel and its next neighbour
        usable = mask[head] & mask[tail] & (np.abs(step[..., 2]) < jump)
        forward, backward = np.zeros_like(points), np.zeros_like(points)
        ok_f, ok_b = np.zeros_like(mask), np.zeros_like(mask)
        forward[tail], ok_f[tail] = step, usable
        backward[head], ok_b[head] = step, usable
        smooth = ok_f & ok_b & (np.abs(forward[..., 2] - backward[..., 2]) < jump)
        use_forward = ok_f & ((np.abs(forward[..., 2]) <= np.abs(backward[..., 2])) | ~ok_b)
        tangent = np.where(use_forward[..., None], forward, backward)
        tangent = np.where(smooth[..., None], (forward + backward) * 0.5, tangent)
        tangents.append(tangent)
    normal = np.cross(tangents[0], tangents[1])
    view = camera.view_rays_camera
    length = np.linalg.norm(normal, axis=-1, keepdims=True)
    degenerate = length[..., 0] < 1e-12
    normal = np.where(degenerate[..., None], -view, normal / np.maximum(length, 1e-12))
    # The cross product's sign follows the image axes; orient by the ray instead.
    along = np.sum(normal * view, axis=-1)
    want = -1.0 if facing == "towards" else 1.0
    normal *= np.where(along * want < 0, np.float32(-1), np.float32(1))[..., None]
    normal[~mask] = 0
    return normal


def silhouette_outward(mask: np.ndarray) -> np.ndarray:
    """(N, N, 2) float64 unit directions (du, dv) pointing out of the silhouette, from a smoothed mask."""
    from scipy.ndimage import gaussian_filter

    smooth = gaussian_filter(mask.astype(np.float64), sigma=1.0)
    dv, du = np.gradient(smooth)
    out = -np.stack([du, dv], axis=-1)
    length = np.linalg.norm(out, axis=-1, keepdims=True)
    return np.divide(out, length, out=np.zeros_like(out), where=length > 1e-12)


def boundary_pixels(mask: np.ndarray) -> np.ndarray:
    """(N, N) bool: mask pixels with at least one 4-neighbour outside the mask (or on the crop's edge)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def side_band(mould: Mould, tolerances: Tolerances = DEFAULT_TOLERANCES) -> PointCloud:
    """Points between the visible and hidden depth along the rays of the silhouette's boundary pixels.

    Spacing along each ray is ``tolerances.side_band_spacing`` pixel footprints at that depth, so the
    band is as dense as the maps. Normals are perpendicular to the ray, pointing out of the silhouette.
    Returns world-frame points like :func:`mould_to_points`.
    """
    camera = mould.camera
    edge = boundary_pixels(mould.mask)
    rows, cols = np.nonzero(edge)
    front, back = mould.visible[rows, cols].astype(np.float64), mould.hidden[rows, cols].astype(np.float64)
    footprint = camera.pixel_size * (front if camera.kind == "perspective" else 1.0)
    step = tolerances.side_band_spacing * footprint
    count = np.floor((back - front) / step).astype(np.int64)  # interior samples; the ends are FRONT/BACK
    count = np.maximum(count - 1, 0)
    total = int(count.sum())
    if total == 0:
        empty = np.zeros((0, 3), np.float32)
        return PointCloud(empty, empty, np.zeros(0, np.uint8), np.zeros((0, 2), np.int32))
    owner = np.repeat(np.arange(len(rows)), count)
    rank = np.arange(total) - np.repeat(np.cumsum(count) - count, count) + 1
    fraction = rank / (count[owner] + 1)
    depth = front[owner] + fraction * (back[owner] - front[owner])
    points = camera.backproject(cols[owner].astype(np.float64), rows[owner].astype(np.float64), depth)
    outward2d = silhouette_outward(mould.mask)[rows, cols][owner]
    view = camera.view_rays_camera[rows, cols][owner]
    normal = np.concatenate([outward2d, np.zeros((total, 1))], axis=1)
    normal -= np.sum(normal * view, axis=1, keepdims=True) * view  # perpendicular to the ray
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    rotation = camera.cam_to_world[:3, :3]
    return PointCloud(
        points=camera.to_world(points).astype(np.float32),
        normals=(normal @ rotation.T).astype(np.float32),
        source=np.full(total, SIDE, np.uint8),
        pixels=np.stack([rows[owner], cols[owner]], axis=1).astype(np.int32),
    )


def mould_to_points(
    mould: Mould,
    *,
    normals: NormalSource = "auto",
    side: bool = True,
    tolerances: Tolerances = DEFAULT_TOLERANCES,
) -> PointCloud:
    """Back-project both depth maps to an oriented point cloud in the mould's world frame.

    Args:
        mould: the mould.
        normals: ``"gradient"`` computes them from the depth maps; ``"stored"`` uses the mould's
            ground-truth normals (an error if it has none); ``"auto"`` uses stored ones when present.
        side: add the side band at the silhouette (see :func:`side_band`).

    Returns:
        A :class:`PointCloud`: FRONT points (row-major over the mask), then BACK, then SIDE.
        points: (P, 3) float32, metres, world frame. normals: (P, 3) float32, unit, out of the body.
    """
    if normals not in ("auto", "gradient", "stored"):
        raise ValueError(f"normals: expected 'auto', 'gradient' or 'stored', got {normals!r}")
    if normals == "stored" and not mould.has_normals:
        raise ValueError("normals: 'stored' asked for, but this mould holds no normals")
    use_stored = mould.has_normals and normals != "gradient"
    camera, mask = mould.camera, mould.mask
    rows, cols = np.nonzero(mask)
    rotation = camera.cam_to_world[:3, :3]
    parts = []
    for depth, stored, facing, label in (
        (mould.visible, mould.visible_normals, "towards", FRONT),
        (mould.hidden, mould.hidden_normals, "away", BACK),
    ):
        points = camera.backproject(cols.astype(np.float64), rows.astype(np.float64), depth[rows, cols])
        if use_stored:
            normal = stored[rows, cols].astype(np.float64)
        else:
            normal = gradient_normals(depth, mask, camera, facing=facing, tolerances=tolerances)[rows, cols]
        parts.append(
            PointCloud(
                points=camera.to_world(points).astype(np.float32),
                normals=(normal @ rotation.T).astype(np.float32),
                source=np.full(len(rows), label, np.uint8),
                pixels=np.stack([rows, cols], axis=1).astype(np.int32),
            )
        )
    if side:
        parts.append(side_band(mould, tolerances))
    fields = ("points", "normals", "source", "pixels")
    return PointCloud(*(np.concatenate([getattr(part, name) for part in parts]) for name in fields))

"""Encoding: a triangle mesh seen by a camera becomes its mould (visible and hidden depth maps).

One ray per pixel centre is cast with open3d's ``RaycastingScene``. Rays are scaled so that their
camera-space z is 1, so the hit parameter ``t`` is the depth itself. The first hit is a closest-hit cast;
the last hit is the closest hit of the same ray cast backwards from beyond the mesh. This equals the last
entry of ``list_intersections`` and costs a third of it.

Behaviour on awkward meshes (documented in docs/moulds.md):
- **several layers** (an arm in front of the torso, a torus): the first hit is visible, the last hit is
  hidden; the layers between are dropped, which is what a two-map mould can hold.
- **open meshes** (a ray that hits once, e.g. a single sheet): hidden = visible, a zero-thickness sheet.
- **partly outside the frame**: only the rays of the crop are cast, so the part outside is not encoded;
  :attr:`Encoding.touches_border` reports it and a warning is logged.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np

from mould.camera import Camera
from mould.checks import check_array
from mould.container import Mould

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoding:
    """The result of :func:`encode_mesh`: the mould and what was seen while making it.

    Attributes:
        mould: the mould (with normals when asked for).
        visible_faces, hidden_faces: (H, W) int64 index of the face hit first / last; -1 outside the mask.
        touches_border: True if the silhouette reaches the crop's edge (the mesh may be cut off).
    """

    mould: Mould
    visible_faces: np.ndarray
    hidden_faces: np.ndarray
    touches_border: bool


def check_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a triangle mesh; returns float64 vertices and int32 faces.

    Args:
        vertices: (V, 3) float, metres, finite.
        faces: (F, 3) int, indices into ``vertices``, F >= 1.
    """
    vertices = check_array("vertices", np.asarray(vertices), (None, 3), "float", finite=True)
    faces = check_array("faces", np.asarray(faces), (None, 3), "int")
    if len(faces) == 0:
        raise ValueError("faces: the mesh has no faces")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(f"faces: indices must lie in [0, {len(vertices) - 1}]")
    return vertices.astype(np.float64), faces.astype(np.int32)


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3) float64 unit normals of triangles, following their winding (zero for degenerate ones)."""
    v = vertices.astype(np.float64)
    normal = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    length = np.linalg.norm(normal, axis=1, keepdims=True)
    return np.divide(normal, length, out=np.zeros_like(normal), where=length > 0)


def _pixel_rays(camera: Camera, rows: slice, cols: slice) -> np.ndarray:
    """(H * W, 6) float32 rays (origin, direction) through the centres of a window of pixels, world frame,
    row-major.

    The same rays as :meth:`Camera.rays` (directions with camera-space z = 1, so a hit's parameter is its
    depth), built straight into the layout open3d casts: the float64 arrays and their concatenation cost
    as much as a cast.
    """
    row_index = np.arange(rows.start, rows.stop, dtype=np.float64)
    col_index = np.arange(cols.start, cols.stop, dtype=np.float64)
    rotation, centre = camera.cam_to_world[:3, :3], camera.cam_to_world[:3, 3]
    across = ((col_index - camera.cx) / camera.focal)[:, None] * rotation[:, 0]  # (W, 3) per column, world
    down = ((row_index - camera.cy) / camera.focal)[:, None] * rotation[:, 1]  # (H, 3) per row, world
    rays = np.empty((len(row_index), len(col_index), 6), np.float32)
    if camera.kind == "perspective":
        rays[..., :3] = centre
        rays[..., 3:] = down[:, None] + across[None, :] + rotation[:, 2]
    else:
        rays[..., :3] = centre + down[:, None] + across[None, :]
        rays[..., 3:] = rotation[:, 2]
    return rays.reshape(-1, 6)


def _window(camera: Camera, uv: np.ndarray, depth: np.ndarray) -> tuple[slice, slice]:
    """The rows and columns of the crop whose rays may hit a mesh with vertices projected at ``uv``.

    A triangle in front of a pinhole (or any triangle, orthographic) projects inside the convex hull of
    its corners' projections, so only the pixels in the vertices' projected bounding box (one pixel more
    for round-off) can see the mesh; rays elsewhere are not cast. With a vertex at or behind a pinhole's
    centre, the whole crop.
    """
    n = camera.resolution
    if camera.kind == "perspective" and not np.all(depth > 0):
        return slice(0, n), slice(0, n)
    low = np.clip(np.floor(uv.min(axis=0)) - 1, 0, n).astype(int)
    high = np.clip(np.ceil(uv.max(axis=0)) + 2, 0, n).astype(int)
    return slice(low[1], max(high[1], low[1])), slice(low[0], max(high[0], low[0]))


def encode_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    camera: Camera,
    *,
    normals: bool = False,
    image: np.ndarray | None = None,
) -> Encoding:
    """Cast one ray per pixel through a mesh and keep the first and the last hit.

    Args:
        vertices: (V, 3) float, world frame, metres.
        faces: (F, 3) int triangles.
        camera: the camera; the mould has its resolution.
        normals: also return ground-truth normals of the hit faces, camera frame, oriented out of the
            body (visible towards the camera, hidden away from it, whatever the mesh's winding).
        image: optional (N, N, 3) uint8 RGB crop to store in the mould.

    Returns:
        An :class:`Encoding`.
    """
    import open3d as o3d  # lazy: the core stays light to import

    vertices, faces = check_mesh(vertices, faces)
    n = camera.resolution
    # Rays are cast in the camera frame: float32 world coordinates 1000 km from the origin are 6 cm apart,
    # so the transform to the camera is done in float64 and only camera-frame coordinates are rounded.
    vertices = camera.to_camera(vertices)
    local = dataclasses.replace(camera, cam_to_world=np.eye(4))  # the same camera, in its own frame
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32)))
    # First hit: cast forward. Last hit: cast backward from beyond the mesh; its first hit is the
    # forward ray's last. Two closest-hit casts cost a third of list_intersections, and the backward
    # one is cast for the forward hits only (a ray that misses one way misses the other).
    uv, depth_of_vertices = local.project(vertices)
    beyond = float(depth_of_vertices.max()) + 1.0  # camera-space depth behind every vertex
    rows, cols = _window(local, uv, depth_of_vertices)
    rays = _pixel_rays(local, rows, cols)
    forward = scene.cast_rays(o3d.core.Tensor(rays))
    t_window = forward["t_hit"].numpy()
    in_window = np.flatnonzero(np.isfinite(t_window))
    width = cols.stop - cols.start
    pixels = (rows.start + in_window // width) * n + cols.start + in_window % width  # crop's flat index
    hit = np.zeros(n * n, bool)
    hit[pixels] = True
    visible_faces = np.full(n * n, -1, np.int64)
    visible_faces[pixels] = forward["primitive_ids"].numpy()[in_window]
    rays = rays[in_window]

    start, direction = rays[:, :3].astype(np.float64), rays[:, 3:]
    reverse = np.empty((len(pixels), 6), np.float32)
    reverse[:, :3] = start + beyond * direction  # on the same (float32) line as the forward ray
    reverse[:, 3:] = -direction
    backward = scene.cast_rays(o3d.core.Tensor(reverse))
    t_back = beyond - backward["t_hit"].numpy().astype(np.float64)
    back_faces = backward["primitive_ids"].numpy().astype(np.int64)
    # A backward miss (a grazing ray, by round-off) means the only hit is the first one.
    missed = back_faces == np.int64(o3d.t.geometry.RaycastingScene.INVALID_ID)
    back_faces[missed] = visible_faces[pixels][missed]
    hidden_faces = np.full(n * n, -1, np.int64)
    hidden_faces[pixels] = back_faces
    # A ray crosses a triangle's plane once: the same face hit both ways is one hit (an open sheet), whose
    # two casts differ only by round-off (~1e-7 m); keep its thickness exactly zero.
    t_hit = t_window[in_window]
    visible = np.zeros(n * n, np.float32)
    hidden = np.zeros(n * n, np.float32)
    visible[pixels] = t_hit
    hidden[pixels] = np.where(back_faces == visible_faces[pixels], t_hit, np.maximum(t_back, t_hit))
    mask = hit.reshape(n, n)

    normal_maps: dict[str, np.ndarray] = {}
    if normals:
        view = local.unit_rays(pixels % n, pixels // n)  # only the hit pixels: a fresh camera is cheap
        sides = (("visible_normals", visible_faces, -1.0), ("hidden_normals", hidden_faces, 1.0))
        for name, face_ids, sign in sides:
            normal = np.zeros((n * n, 3), np.float32)
            chosen = face_normals(vertices, faces[face_ids[pixels]])  # camera frame already
            # Orient by the ray, not the winding: visible normals face the camera, hidden ones face away.
            flip = np.sign(np.sum(chosen * view, axis=1)) * sign
            normal[pixels] = chosen * np.where(flip < 0, -1.0, 1.0)[:, None]
            normal_maps[name] = normal.reshape(n, n, 3)

    touches_border = bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
    if touches_border:
        log.warning("the silhouette touches the crop's border: part of the mesh may lie outside the frame")
    mould = Mould(
        visible=visible.reshape(n, n),
        hidden=hidden.reshape(n, n),
        mask=mask,
        camera=camera,
        image=image,
        **normal_maps,
    )
    return Encoding(
        mould=mould,
        visible_faces=visible_faces.reshape(n, n),
        hidden_faces=hidden_faces.reshape(n, n),
        touches_border=touches_border,
    )


def mesh_to_mould(vertices: np.ndarray, faces: np.ndarray, camera: Camera, *, normals: bool = False) -> Mould:
    """The mould of a mesh seen by ``camera``; see :func:`encode_mesh` for the arguments and behaviour."""
    return encode_mesh(vertices, faces, camera, normals=normals).mould

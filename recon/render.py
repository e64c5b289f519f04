"""Headless previews of a mesh: orthographic views by the numpy z-buffer (:mod:`mould.recon.zbuffer`), Lambert
shading.

No display, no OpenGL and no torch: all views are drawn by one :func:`~mould.recon.zbuffer.nearest_hits`
call (one pixel-centre ray each, as a ray caster), the hit triangle's barycentric weights interpolate the
texture coordinates (or vertex colours), and the surface is shaded by a light at the viewer plus a little
ambient light. Views assume the mesh's world frame: +Y up, the person facing +Z (glTF).
"""

from __future__ import annotations

import numpy as np
from mould.recon.mesh import Mesh
from mould.recon.texture import sample_bilinear
from mould.recon.zbuffer import nearest_hits

VIEWS = {
    "front": np.array([0.0, 0.0, 1.0]),
    "back": np.array([0.0, 0.0, -1.0]),
    "side": np.array([1.0, 0.0, 0.0]),
    "left": np.array([-1.0, 0.0, 0.0]),
    "top": np.array([0.0, 1.0, 0.0]),
}
"""Unit vectors from the mesh towards the viewer; ``side`` looks at the person's left side from +X."""

BACKGROUND = (255, 255, 255)
AMBIENT = 0.25
"""Share of light that reaches every surface, so faces turned away from the viewer are not black."""
PLAIN = (200, 200, 200)
"""Colour of an untextured, uncoloured mesh."""


def view_frame(direction: np.ndarray) -> np.ndarray:
    """(3, 3) rows: the camera axes (x right, y down, z forward; OpenCV) of an orthographic view looking
    along ``-direction`` with the world's +Y up in the picture (top views: -Z up)."""
    towards_viewer = np.asarray(direction, np.float64) / np.linalg.norm(direction)
    up = np.array([0.0, 1.0, 0.0]) if abs(towards_viewer[1]) < 0.99 else np.array([0.0, 0.0, -1.0])
    right = np.cross(up, towards_viewer)
    right /= np.linalg.norm(right)
    up = np.cross(towards_viewer, right)
    return np.stack([right, -up, -towards_viewer])


def render_views(
    mesh: Mesh, views: tuple[str, ...] = ("front", "side", "back"), size: int = 256, *, margin: float = 0.05
) -> list[np.ndarray]:
    """Shaded pictures of a mesh from named directions.

    Args:
        mesh: the mesh (+Y up, facing +Z); its texture or vertex colours are used when present.
        views: names among ``front``, ``back``, ``side``, ``left``, ``top``.
        size: side of each square picture in pixels.
        margin: free border as a fraction of the picture's side.

    Returns:
        One (size, size, 3) uint8 RGB picture per view, white background. Every view of a mesh shares one
        scale: the bounding box's longest side, plus the margins, spans the picture, so pictures of the
        same mesh can be put side by side.
    """
    unknown = [name for name in views if name not in VIEWS]
    if unknown:
        raise ValueError(f"views: unknown {unknown}; expected some of {tuple(VIEWS)}")
    if size < 1:
        raise ValueError(f"size: expected >= 1, got {size}")
    vertices = mesh.vertices.astype(np.float64)
    faces = mesh.faces.astype(np.int64)
    if len(faces) == 0:
        return [np.full((size, size, 3), BACKGROUND, np.uint8) for _ in views]
    centre = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    extent = np.ptp(vertices, axis=0).max() * (1 + 2 * margin)
    extent = extent if extent > 0 else 1.0
    # Pixel k's centre lies ((k + 0.5) / size - 0.5) * extent from the centre: u = focal x + cx.
    focal, principal = size / extent, size / 2 - 0.5
    frames = [view_frame(VIEWS[name]) for name in views]
    # The z-buffer orders positive depths: the camera stands a box's diagonal (< 2 extents) in front.
    seen = np.stack([(vertices - centre) @ frame.T for frame in frames])  # (views, V, 3) camera frames
    hits = nearest_hits(
        np.concatenate([seen[..., :2] * focal + principal, seen[..., 2:] + 2 * extent], axis=-1), faces, size
    )
    corners = vertices[faces]
    face_normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    face_normal /= np.maximum(np.linalg.norm(face_normal, axis=1, keepdims=True), 1e-20)
    pictures = []
    for index, name in enumerate(views):
        ids = hits.face[index].ravel()
        hit = ids >= 0
        ids, weights = ids[hit], hits.weights[index].reshape(-1, 3)[hit]
        if mesh.texture is not None and mesh.uv is not None:
            uv = np.einsum("pk,pkd->pd", weights, mesh.uv[faces[ids]].astype(np.float64))
            albedo = sample_bilinear(np.asarray(mesh.texture), uv).astype(np.float64)
        elif mesh.colors is not None:
            albedo = np.einsum("pk,pkd->pd", weights, mesh.colors[faces[ids]].astype(np.float64))
        else:
            albedo = np.broadcast_to(np.asarray(PLAIN, np.float64), (len(ids), 3))
        lambert = np.abs(face_normal[ids] @ VIEWS[name])  # a headlight: two-sided, so a flipped face still shows
        shade = AMBIENT + (1 - AMBIENT) * lambert
        picture = np.empty((size * size, 3))
        picture[:] = BACKGROUND
        picture[hit] = albedo * shade[:, None]
        pictures.append(np.clip(np.rint(picture), 0, 255).astype(np.uint8).reshape(size, size, 3))
    return pictures

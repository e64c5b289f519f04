"""Headless previews of a mesh: orthographic ray casting (open3d's ``RaycastingScene``), Lambert shading.

No display and no OpenGL: one ray per pixel, the hit triangle's barycentric coordinates interpolate the
texture coordinates (or vertex colours), and the surface is shaded by a light at the viewer plus a
little ambient light. Views assume the mesh's world frame: +Y up, the person facing +Z (glTF).
"""

from __future__ import annotations

import numpy as np
from mould.recon.mesh import Mesh
from mould.recon.texture import sample_bilinear

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


def _view_rays(direction: np.ndarray, low: np.ndarray, high: np.ndarray, size: int, margin: float):
    """Orthographic rays (origins, unit directions), (size * size, 3) each, framing the bounding box."""
    towards_viewer = direction / np.linalg.norm(direction)
    up = np.array([0.0, 1.0, 0.0]) if abs(towards_viewer[1]) < 0.99 else np.array([0.0, 0.0, -1.0])
    right = np.cross(up, towards_viewer)
    right /= np.linalg.norm(right)
    up = np.cross(towards_viewer, right)
    centre = (low + high) / 2
    corners = np.array(
        [[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])]
    )
    # The cube's face seen head-on (views along an axis): its side, plus the margin.
    extent = min(np.ptp(corners @ right), np.ptp(corners @ up)) * (1 + 2 * margin)
    extent = extent if extent > 0 else 1.0
    steps = (np.arange(size) + 0.5) / size - 0.5
    across, down = np.meshgrid(steps * extent, -steps * extent)
    reach = np.linalg.norm(high - low) + 1.0
    origins = centre + across[..., None] * right + down[..., None] * up + reach * towards_viewer
    directions = np.broadcast_to(-towards_viewer, origins.shape)
    return origins.reshape(-1, 3), directions.reshape(-1, 3)


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
        scale, so pictures of the same mesh can be put side by side.
    """
    import open3d as o3d

    unknown = [name for name in views if name not in VIEWS]
    if unknown:
        raise ValueError(f"views: unknown {unknown}; expected some of {tuple(VIEWS)}")
    if size < 1:
        raise ValueError(f"size: expected >= 1, got {size}")
    vertices = mesh.vertices.astype(np.float64)
    faces = mesh.faces.astype(np.int64)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32)))
    # One framing for all views: the bounding box turned into a cube, so that each view has the same scale.
    centre = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    half = np.ptp(vertices, axis=0).max() / 2
    low, high = centre - half, centre + half
    corners = vertices[faces]
    face_normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    face_normal /= np.maximum(np.linalg.norm(face_normal, axis=1, keepdims=True), 1e-20)
    pictures = []
    for name in views:
        origins, directions = _view_rays(VIEWS[name], low, high, size, margin)
        rays = o3d.core.Tensor(np.concatenate([origins, directions], axis=1).astype(np.float32))
        hits = scene.cast_rays(rays)
        hit = np.isfinite(hits["t_hit"].numpy())
        ids = hits["primitive_ids"].numpy()[hit].astype(np.int64)
        bary = hits["primitive_uvs"].numpy()[hit].astype(np.float64)
        weights = np.stack([1 - bary[:, 0] - bary[:, 1], bary[:, 0], bary[:, 1]], axis=1)
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

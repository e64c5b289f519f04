"""Surfaces built around a body: offset shells over a region of its skin, draped tubes, generalised tubes.

These are the geometry of garments and hair. They are open surfaces (a sleeve has two openings, a skirt
one at the waist and one at the hem); that is fine for moulds, whose rays keep the first and last hit over
the whole scene, body included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Surface:
    """A triangle mesh with body-attached coordinates for its patterns.

    Attributes:
        vertices: (V, 3) float64, world frame, metres.
        faces: (F, 3) int64.
        texcoords: (V, 3) float64, metres: where a pattern is evaluated (rest-pose positions for shells,
            so that stripes follow the body as it moves).
        normals: optional (V, 3) float64 unit vertex normals for shading (an offset shell reuses the body's;
            None: computed from the faces).
    """

    vertices: np.ndarray
    faces: np.ndarray
    texcoords: np.ndarray
    normals: np.ndarray | None = None


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) float64 area-weighted unit vertex normals (outwards for anny's counter-clockwise winding)."""
    corners = vertices[faces]
    face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        normals[:, k] = sum(np.bincount(faces[:, i], face_normals[:, k], len(vertices)) for i in range(3))
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)


def offset_shell(
    vertices: np.ndarray,
    normals: np.ndarray,
    faces: np.ndarray,
    covered: np.ndarray,
    offset: np.ndarray,
    texcoords: np.ndarray,
) -> Surface | None:
    """The skin's faces whose three vertices are ``covered``, pushed out along the normals by ``offset``.

    Args:
        vertices, normals: (V, 3) float, the posed body and its unit vertex normals.
        faces: (F, 3) int, the body's triangles.
        covered: (V,) bool, the region.
        offset: (V,) float, metres outwards.
        texcoords: (V, 3) float, pattern coordinates of the body's vertices.

    Returns:
        The shell, re-indexed to its own vertices, or None when the region holds no face.
    """
    keep = covered[faces].all(axis=1)
    if not keep.any():
        return None
    used = np.unique(faces[keep])
    remap = np.full(len(vertices), -1, np.int64)
    remap[used] = np.arange(len(used))
    return Surface(
        vertices=vertices[used] + normals[used] * offset[used, None],
        faces=remap[faces[keep]],
        texcoords=texcoords[used],
        normals=normals[used],
    )


def grid_faces(rows: int, columns: int, *, wrap: bool) -> np.ndarray:
    """(F, 3) int64 triangles of a rows x columns vertex grid (row-major), closed around if ``wrap``."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(columns if wrap else columns - 1), indexing="ij")
    a = r * columns + c
    b = r * columns + (c + 1) % columns
    a2, b2 = a + columns, b + columns
    return np.concatenate([np.stack([a, a2, b], -1).reshape(-1, 3), np.stack([b, a2, b2], -1).reshape(-1, 3)])


def drape(
    points: np.ndarray,
    centre: np.ndarray,
    heights: np.ndarray,
    angles: np.ndarray,
    *,
    offset: float,
    min_radius: np.ndarray,
    tuck: float,
    wrap: bool,
) -> Surface:
    """A tube hanging around vertical rings, just outside the ``points`` at each height: a skirt, hair.

    Rings are horizontal (gravity hangs cloth and hair along world -Y). The radius at ring k and angle
    a is the farthest point of that band and sector plus ``offset``, at least ``min_radius[k]``, and at least
    ``(1 - tuck)`` times the ring above's (fabric falls outwards or straight, barely inwards), smoothed
    around the ring.

    Args:
        points: (P, 3) float, world frame, what the tube must enclose.
        centre: (2,) float, the vertical axis' (x, z), metres.
        heights: (K,) float, ring heights (y), from the top down, metres.
        angles: (A,) float, radians about +Y (0 = +Z, pi/2 = +X).
        offset: clearance over the points, metres.
        min_radius: (K,) float, metres.
        tuck: how much a ring may shrink below the previous one, as a fraction.
        wrap: close the tube around (the angles cover the full circle).

    Returns:
        A Surface of K x A vertices; texcoords are its positions.
    """
    k_count, a_count = len(heights), len(angles)
    relative = points[:, [0, 2]] - centre
    radius = np.hypot(relative[:, 0], relative[:, 1])
    theta = np.arctan2(relative[:, 0], relative[:, 1])
    spacing = np.abs(np.diff(heights)).mean() if k_count > 1 else 0.05
    step = (angles[-1] - angles[0]) / max(a_count - 1, 1) if not wrap else 2 * np.pi / a_count
    ring = np.rint((heights[0] - points[:, 1]) / spacing).astype(np.int64)
    sector = np.rint(((theta - angles[0]) % (2 * np.pi)) / step).astype(np.int64)
    if wrap:
        sector %= a_count
    inside = (ring >= 0) & (ring < k_count) & (sector >= 0) & (sector < a_count)
    extent = np.zeros((k_count, a_count))
    np.maximum.at(extent, (ring[inside], sector[inside]), radius[inside] + offset)
    # Let a point reach its neighbouring sectors too: cloth spans the gaps between them.
    extent = np.maximum(extent, np.maximum(_roll(extent, 1, wrap), _roll(extent, -1, wrap)))
    extent = np.maximum(extent, np.asarray(min_radius, dtype=np.float64)[:, None])
    for k in range(1, k_count):
        extent[k] = np.maximum(extent[k], extent[k - 1] * (1 - tuck))
    extent = (_roll(extent, 1, wrap) + 2 * extent + _roll(extent, -1, wrap)) / 4
    x = centre[0] + extent * np.sin(angles)[None]
    z = centre[1] + extent * np.cos(angles)[None]
    y = np.broadcast_to(heights[:, None], extent.shape)
    vertices = np.stack([x, y, z], axis=-1).reshape(-1, 3)
    return Surface(vertices=vertices, faces=grid_faces(k_count, a_count, wrap=wrap), texcoords=vertices.copy())


def _roll(values: np.ndarray, shift: int, wrap: bool) -> np.ndarray:
    rolled = np.roll(values, shift, axis=1)
    if not wrap:  # no neighbour beyond the ends: repeat the edge
        if shift > 0:
            rolled[:, :shift] = values[:, :1]
        else:
            rolled[:, shift:] = values[:, -1:]
    return rolled


def tube(centres: np.ndarray, radii: np.ndarray, sides: int = 12) -> Surface:
    """A generalised cylinder along a polyline, capped at both ends: a ponytail.

    Args:
        centres: (K, 3) float, world frame, metres, K >= 2.
        radii: (K,) float, metres.
        sides: vertices per ring.
    """
    tangents = np.gradient(centres, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    helper = np.where(np.abs(tangents[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    u = np.cross(tangents, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(tangents, u)
    phi = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    rings = centres[:, None] + radii[:, None, None] * (
        np.cos(phi)[None, :, None] * u[:, None] + np.sin(phi)[None, :, None] * v[:, None]
    )
    vertices = np.concatenate([rings.reshape(-1, 3), centres[[0, -1]]])
    faces = [grid_faces(len(centres), sides, wrap=True)]
    first, last = len(vertices) - 2, len(vertices) - 1
    j = np.arange(sides)
    faces.append(np.stack([np.full(sides, first), (j + 1) % sides, j], -1))
    base = (len(centres) - 1) * sides
    faces.append(np.stack([np.full(sides, last), base + j, base + (j + 1) % sides], -1))
    return Surface(vertices=vertices, faces=np.concatenate(faces).astype(np.int64), texcoords=vertices.copy())


def ellipsoid(centre: np.ndarray, radii: np.ndarray, rows: int = 10, columns: int = 16) -> Surface:
    """A closed ellipsoid (a bun of hair), axes along the world axes."""
    theta = np.linspace(0, np.pi, rows)[1:-1]
    phi = np.linspace(0, 2 * np.pi, columns, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    unit = np.stack([np.sin(t) * np.cos(p), np.cos(t), np.sin(t) * np.sin(p)], -1).reshape(-1, 3)
    vertices = np.concatenate([unit, [[0, 1.0, 0], [0, -1.0, 0]]]) * radii + centre
    faces = [grid_faces(len(theta), columns, wrap=True)]
    top, bottom = len(vertices) - 2, len(vertices) - 1
    j = np.arange(columns)
    faces.append(np.stack([np.full(columns, top), j, (j + 1) % columns], -1))
    base = (len(theta) - 1) * columns
    faces.append(np.stack([np.full(columns, bottom), base + (j + 1) % columns, base + j], -1))
    return Surface(vertices=vertices, faces=np.concatenate(faces).astype(np.int64), texcoords=vertices.copy())

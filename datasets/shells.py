"""Surfaces built around bodies, in torch and batched: offset shells, draped tubes, generalised tubes, ellipsoids.

These are the geometry of garments and hair. They are open surfaces (a sleeve has two openings, a skirt one
at the waist and one at the hem); that is fine for moulds, whose rays keep the first and last hit over the
whole scene, body included. Every function works on a batch of surfaces of one topology at once, on any
device; world frame (+Y up), metres.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from mould.datasets.raster import corner_columns, cross


@dataclass(frozen=True)
class Surfaces:
    """A batch of S meshes of one topology.

    Attributes:
        vertices: (S, V, 3) float, world frame, metres.
        faces: (F, 3) int64, shared by the batch.
        texcoords: (S, V, 3) float, metres: where patterns are evaluated (rest-pose positions for shells,
            so that stripes follow the body as it moves; the positions themselves otherwise).
        normals: (S, V, 3) float unit vertex normals for shading.
        keep: (S, F) bool, the faces each surface really has (a shell is a region of the body's faces).
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    texcoords: torch.Tensor
    normals: torch.Tensor
    keep: torch.Tensor


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(S, V, 3) area-weighted unit vertex normals of (S, V, 3) meshes with (F, 3) faces (outwards for
    counter-clockwise winding; zero at unused vertices)."""
    count, size = vertices.shape[:2]
    flat = vertices.reshape(-1, 3)
    shift = size * torch.arange(count, device=faces.device)[:, None]
    corners = [(column[None] + shift).reshape(-1) for column in corner_columns(faces)]
    a, b, c = (flat.index_select(0, corner) for corner in corners)
    face_normals = cross(b - a, c - a)
    normals = torch.zeros_like(flat)
    for corner in corners:
        normals.index_add_(0, corner, face_normals)
    length = normals.norm(dim=-1, keepdim=True)
    normals = torch.where(length > 0, normals / length.clamp_min(1e-30), torch.zeros_like(normals))
    return normals.reshape(count, size, 3)


def offset_shells(
    vertices: torch.Tensor, normals: torch.Tensor, faces: torch.Tensor, covered: torch.Tensor,
    offset: torch.Tensor, texcoords: torch.Tensor,
) -> Surfaces:  # fmt: skip
    """The skin's faces whose three vertices are ``covered``, pushed out along the normals by ``offset``.

    Args:
        vertices, normals: (S, V, 3) float, each shell's posed body and its unit vertex normals.
        faces: (F, 3) int64, the body's triangles.
        covered: (S, V) bool, each shell's region.
        offset: (S, V) float, metres outwards.
        texcoords: (V, 3) float, pattern coordinates of the body's vertices.
    """
    return Surfaces(
        vertices=vertices + normals * offset[..., None],
        faces=faces,
        texcoords=texcoords.expand(len(vertices), -1, -1),
        normals=normals,
        keep=_all_corners(covered, faces),
    )


def _all_corners(covered: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(S, F) bool: the faces whose three corners are ``covered`` ((S, V) bool)."""
    first, second, third = corner_columns(faces)
    return covered.index_select(1, first) & covered.index_select(1, second) & covered.index_select(1, third)


@functools.lru_cache(maxsize=16)
def grid_faces(rows: int, columns: int, wrap: bool, device: torch.device) -> torch.Tensor:
    """(F, 3) int64 triangles of a rows x columns vertex grid (row-major), closed around if ``wrap``."""
    r, c = torch.meshgrid(torch.arange(rows - 1), torch.arange(columns if wrap else columns - 1), indexing="ij")
    a = r * columns + c
    b = r * columns + (c + 1) % columns
    a2, b2 = a + columns, b + columns
    faces = torch.cat([torch.stack([a, a2, b], -1).reshape(-1, 3), torch.stack([b, a2, b2], -1).reshape(-1, 3)])
    return faces.to(device)


def _roll(values: torch.Tensor, shift: int, wrap: bool) -> torch.Tensor:
    """Roll (S, K, A) along A; without ``wrap`` the ends repeat their edge value."""
    rolled = torch.roll(values, shift, dims=-1)
    if not wrap:
        if shift > 0:
            rolled[..., :shift] = values[..., :1]
        else:
            rolled[..., shift:] = values[..., -1:]
    return rolled


def drape(
    points: torch.Tensor,
    inside: torch.Tensor,
    centre: torch.Tensor,
    heights: torch.Tensor,
    angles: torch.Tensor,
    *,
    offset: torch.Tensor,
    min_radius: torch.Tensor,
    tuck: float,
    wrap: bool,
) -> Surfaces:
    """Tubes hanging around vertical rings, just outside the points at each height: skirts, hair.

    Rings are horizontal (gravity hangs cloth and hair along world -Y). The radius at ring k and angle a
    is the farthest point of that band and sector plus ``offset``, at least ``min_radius[k]``, and at least
    ``(1 - tuck)`` times the ring above's (fabric falls outwards or straight, barely inwards), smoothed
    around the ring.

    Args:
        points: (S, P, 3) float, world frame, what each tube must enclose; inside: (S, P) bool, which
            points count.
        centre: (S, 2) float, each vertical axis' (x, z), metres.
        heights: (S, K) float, ring heights (y), from the top down, metres.
        angles: (S, A) float, radians about +Y (0 = +Z, pi/2 = +X), increasing.
        offset: (S,) float, clearance over the points, metres.
        min_radius: (S, K) float, metres.
        tuck: how much a ring may shrink below the previous one, as a fraction.
        wrap: close the tubes around (the angles cover the full circle).

    Returns:
        Surfaces of K x A vertices (row-major by ring); texcoords are the positions.
    """
    count, rings, sectors = len(points), heights.shape[1], angles.shape[1]
    relative = points[..., [0, 2]] - centre[:, None]
    radius = relative.norm(dim=-1)
    theta = torch.atan2(relative[..., 0], relative[..., 1])
    spacing = (
        (heights[:, 1:] - heights[:, :-1]).abs().mean(1, keepdim=True) if rings > 1 else heights[:, :1] * 0 + 0.05
    )
    step = 2 * torch.pi / sectors if wrap else (angles[:, -1:] - angles[:, :1]) / max(sectors - 1, 1)
    ring = torch.round((heights[:, :1] - points[..., 1]) / spacing).to(torch.int64)
    sector = torch.round(torch.remainder(theta - angles[:, :1], 2 * torch.pi) / step).to(torch.int64)
    if wrap:
        sector = sector % sectors
    valid = inside & (ring >= 0) & (ring < rings) & (sector >= 0) & (sector < sectors)
    cell = torch.arange(count, device=points.device)[:, None] * (rings * sectors) + ring * sectors + sector
    extent = torch.zeros(count * rings * sectors, dtype=points.dtype, device=points.device)
    extent.scatter_reduce_(0, cell[valid], (radius + offset[:, None])[valid], reduce="amax")
    extent = extent.reshape(count, rings, sectors)
    # Let a point reach its neighbouring sectors too: cloth spans the gaps between them.
    extent = torch.maximum(extent, torch.maximum(_roll(extent, 1, wrap), _roll(extent, -1, wrap)))
    extent = torch.maximum(extent, min_radius[..., None])
    rows = [extent[:, 0]]
    for k in range(1, rings):
        rows.append(torch.maximum(extent[:, k], rows[-1] * (1 - tuck)))
    extent = torch.stack(rows, 1)
    extent = (_roll(extent, 1, wrap) + 2 * extent + _roll(extent, -1, wrap)) / 4
    x = centre[:, None, None, 0] + extent * torch.sin(angles)[:, None]
    z = centre[:, None, None, 1] + extent * torch.cos(angles)[:, None]
    y = heights[..., None].expand_as(extent)
    vertices = torch.stack([x, y, z], -1).reshape(count, -1, 3)
    faces = grid_faces(rings, sectors, wrap, points.device)
    return Surfaces(vertices, faces, vertices, vertex_normals(vertices, faces), _all_faces(count, faces))


def _all_faces(count: int, faces: torch.Tensor) -> torch.Tensor:
    return torch.ones((count, len(faces)), dtype=torch.bool, device=faces.device)


def tube(centres: torch.Tensor, radii: torch.Tensor, sides: int = 12) -> Surfaces:
    """Generalised cylinders along polylines, capped at both ends: ponytails.

    Args:
        centres: (S, K, 3) float, world frame, metres, K >= 2.
        radii: (S, K) float, metres.
        sides: vertices per ring.
    """
    count, rings = centres.shape[:2]
    tangents = torch.cat(
        [
            centres[:, 1:2] - centres[:, :1],
            (centres[:, 2:] - centres[:, :-2]) / 2,
            centres[:, -1:] - centres[:, -2:-1],
        ],
        1,
    )  # numpy.gradient's differences
    tangents = tangents / tangents.norm(dim=-1, keepdim=True)
    x_axis, y_axis = centres.new_tensor([1.0, 0, 0]), centres.new_tensor([0, 1.0, 0])
    helper = torch.where(tangents[..., :1].abs() < 0.9, x_axis, y_axis)
    u = cross(tangents, helper)
    u = u / u.norm(dim=-1, keepdim=True)
    v = cross(tangents, u)
    phi = torch.linspace(0, 2 * torch.pi, sides + 1, dtype=centres.dtype, device=centres.device)[:-1]
    ring = (
        torch.cos(phi)[None, None, :, None] * u[:, :, None] + torch.sin(phi)[None, None, :, None] * v[:, :, None]
    )
    rings_xyz = centres[:, :, None] + radii[..., None, None] * ring
    vertices = torch.cat([rings_xyz.reshape(count, -1, 3), centres[:, [0, -1]]], 1)
    faces = _capped_faces(rings, sides, centres.device, tube=True)
    return Surfaces(vertices, faces, vertices, vertex_normals(vertices, faces), _all_faces(count, faces))


@functools.lru_cache(maxsize=8)
def _capped_faces(rings: int, sides: int, device: torch.device, tube: bool) -> torch.Tensor:
    """Faces of ``rings`` rings of ``sides`` vertices and two cap vertices after them."""
    first, last = rings * sides, rings * sides + 1
    j = torch.arange(sides)
    base = (rings - 1) * sides
    if tube:  # caps at a path's start and end
        caps = [torch.stack([torch.full((sides,), first), (j + 1) % sides, j], -1),
                torch.stack([torch.full((sides,), last), base + j, base + (j + 1) % sides], -1)]  # fmt: skip
    else:  # ellipsoid: top pole first
        caps = [torch.stack([torch.full((sides,), first), j, (j + 1) % sides], -1),
                torch.stack([torch.full((sides,), last), base + (j + 1) % sides, base + j], -1)]  # fmt: skip
    faces = torch.cat([grid_faces(rings, sides, True, torch.device("cpu")), *caps])
    return faces[:, [0, 2, 1]].to(device)  # wound counter-clockwise seen from outside, as the body is


def ellipsoid(centres: torch.Tensor, radii: torch.Tensor, rows: int = 10, columns: int = 16) -> Surfaces:
    """Closed ellipsoids (buns of hair), axes along the world axes: (S, 3) centres and (S, 3) radii."""
    theta = torch.linspace(0, torch.pi, rows, dtype=centres.dtype, device=centres.device)[1:-1]
    phi = torch.linspace(0, 2 * torch.pi, columns + 1, dtype=centres.dtype, device=centres.device)[:-1]
    t, p = torch.meshgrid(theta, phi, indexing="ij")
    unit = torch.stack([torch.sin(t) * torch.cos(p), torch.cos(t), torch.sin(t) * torch.sin(p)], -1).reshape(-1, 3)
    poles = centres.new_tensor([[0, 1.0, 0], [0, -1.0, 0]])
    vertices = torch.cat([unit, poles])[None] * radii[:, None] + centres[:, None]
    faces = _capped_faces(rows - 2, columns, centres.device, tube=False)
    return Surfaces(vertices, faces, vertices, vertex_normals(vertices, faces), _all_faces(len(centres), faces))


def linear_quantile(values: torch.Tensor, q: float) -> torch.Tensor:
    """(B,) the q-quantile of each row of (B, P) values (P >= 1), interpolated linearly as ``numpy.quantile``
    does, from the two order statistics around it (``kthvalue``, a selection: ~20x faster than a sort on a
    CPU)."""
    position = values.new_tensor(q) * (values.shape[1] - 1)  # in the values' precision
    low = int(position.floor())
    lower = torch.kthvalue(values, low + 1, dim=1).values
    upper = torch.kthvalue(values, min(low + 2, values.shape[1]), dim=1).values
    return lower + (upper - lower) * (position - low)


def masked_quantile(values: torch.Tensor, mask: torch.Tensor, q: float) -> torch.Tensor:
    """(S,) the q-quantile of each row's masked values, interpolated linearly as ``numpy.quantile`` does
    (q = 0.5: the median); NaN for a row without values. The rows' counts differ, so one sort serves them
    all (:func:`linear_quantile` selects instead, for rows of whole values).

    Args:
        values: (S, P) float.
        mask: (S, P) bool, the values that count.
        q: in [0, 1].
    """
    count = mask.sum(1)
    ordered = torch.sort(torch.where(mask, values, torch.full_like(values, float("inf"))), dim=1).values
    position = q * (count - 1).clamp_min(0).to(values.dtype)
    low = torch.floor(position).to(torch.int64)
    high = torch.clamp(low + 1, max=values.shape[1] - 1)
    lower, upper = ordered.gather(1, low[:, None])[:, 0], ordered.gather(1, high[:, None])[:, 0]
    upper = torch.where(high < count, upper, lower)
    result = lower + (upper - lower) * (position - low.to(values.dtype))
    return torch.where(count > 0, result, torch.full_like(result, float("nan")))

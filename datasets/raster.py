"""A z-buffer renderer in torch: the first and last surface hit of every pixel's ray, for a batch of scenes.

It gives what ray casting gives (:func:`mould.encode.encode_mesh` with open3d) on any torch device: for each
pixel centre of each scene, the nearest and the farthest hit (camera-space z), which triangle was hit and
where in it (barycentric weights of its corners, perspective-correct), and the triangle's normal oriented
by the ray. The generator renders everything with it: moulds, the image, the back colour, shadow maps.

How: every triangle is projected, the pixel centres inside its bounding box are enumerated (pairs of
triangle and pixel, in chunks), tested with edge functions and given the depth of the triangle's plane
there; ``scatter_reduce`` keeps, per pixel, the smallest and the largest key ``depth bits << 32 | triangle``,
so the depth test and the winning triangle come out of one reduction. Depths and weights are then computed
once per pixel from the winning triangle. An edge shared by two triangles is evaluated from the same
endpoint in both (the lower vertex index), so its two evaluations are exact negatives: a pixel centre on
it falls in one triangle or both, never in neither (no pinholes in a closed mesh). On a CPU, with numba
installed, the scan and the reduction run as one compiled loop (:mod:`mould.datasets.raster_kernel`) that
gives the same keys bit for bit, several times faster.

Conventions (those of :mod:`mould.camera`): camera frame x right, y down, z forward, metres; pixel (u, v)
= (column, row) has its centre at integers; perspective: ``u = focal x / z + cx``; orthographic:
``u = focal x + cx`` (focal in pixels per metre).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from mould.datasets import raster_kernel

NO_HIT = torch.iinfo(torch.int64).max
"""Key of a pixel no triangle covers (the amin reduction's start)."""

DEFAULT_CHUNK = 1 << 22
"""Triangle-pixel pairs tested at once (~0.3 GB of temporaries in float32; bounds memory on big scenes)."""


@dataclass(frozen=True)
class Hits:
    """What the rays of B square images of N x N pixels hit.

    Attributes:
        mask: (B, N, N) bool, the ray hits a triangle.
        visible, hidden: (B, N, N) camera-space z of the nearest and the farthest hit, metres (vertices'
            dtype); 0 where no hit. hidden >= visible.
        visible_face, hidden_face: (B, N, N) int64 index of the triangle hit (into ``faces``); -1 where no hit.
        visible_weights, hidden_weights: (B, N, N, 3) perspective-correct barycentric weights of the hit
            point in its triangle's corners (sum 1); 0 where no hit.
        visible_normals, hidden_normals: (B, N, N, 3) unit normals of the hit triangles, camera frame,
            oriented by the ray: visible ones face the camera, hidden ones face away; 0 where no hit.
    """

    mask: torch.Tensor
    visible: torch.Tensor
    hidden: torch.Tensor
    visible_face: torch.Tensor
    hidden_face: torch.Tensor
    visible_weights: torch.Tensor
    hidden_weights: torch.Tensor
    visible_normals: torch.Tensor
    hidden_normals: torch.Tensor


def project(vertices: torch.Tensor, intrinsics: torch.Tensor, orthographic: bool) -> torch.Tensor:
    """(M, 2) pixel coordinates (u, v) of (M, 3) camera-frame points under per-point (M, 3) intrinsics
    ``(focal, cx, cy)`` (or one row (1, 3) for all)."""
    xy = vertices[:, :2] if orthographic else vertices[:, :2] / vertices[:, 2:3]
    return xy * intrinsics[:, :1] + intrinsics[:, 1:]


def cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(..., 3) cross products (``torch.linalg.cross`` is several times slower on a CPU for strided inputs)."""
    a0, a1, a2 = a.unbind(-1)
    b0, b1, b2 = b.unbind(-1)
    return torch.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], -1)


def corner_columns(faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The (F,) first, second and third corners of (F, 3) faces, each contiguous: ``index_select`` with a
    strided index such as ``faces[:, k]`` costs ~3x more on a CPU, and copying the columns one by one ~4x
    less than a transposed copy of the faces."""
    first, second, third = (column.contiguous() for column in faces.unbind(1))
    return first, second, third


def _depth_keys(depth: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """int64 keys ordered by depth (as float32, > 0), then by triangle index."""
    bits = depth.to(torch.float32).clamp_min(1e-30).view(torch.int32).to(torch.int64)
    return (bits << 32) | face


@dataclass(frozen=True)
class _Setup:
    """What the pixel tests of L triangles need, each function written relative to a point of its triangle
    so that float32 keeps its precision there.

    Attributes:
        a, b, origin: (L, 3), (L, 3) and (L, 3, 2): the edge functions ``a (u - pu) + b (v - pv)`` of the
            edges b-c, c-a and a-b, positive inside a counter-clockwise triangle, (pu, pv) = ``origin``
            the edge's lower-indexed end (see the module docstring).
        plane: (L, 5) ``(ua, va, w, dw/du, dw/dv)``: the depth plane through corner a, ``w`` being 1/z
            (perspective) or z (orthographic), affine in (u, v).
        area: (L,) twice the signed area on screen (> 0 counter-clockwise; 0 for a degenerate triangle).
    """

    a: torch.Tensor
    b: torch.Tensor
    origin: torch.Tensor
    plane: torch.Tensor
    area: torch.Tensor

    def edges(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """(L, 3) edge functions at one pixel centre (u, v) per triangle ((L,) int64 each)."""
        x, y = u.to(self.a.dtype)[:, None], v.to(self.a.dtype)[:, None]
        return self.a * (x - self.origin[..., 0]) + self.b * (y - self.origin[..., 1])


def _setup(uv: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, orthographic: bool) -> _Setup:
    """The :class:`_Setup` of triangles ``faces`` ((L, 3)) of vertices at pixel coordinates ``uv`` (V, 2)
    with camera-space ``depth`` (V,)."""
    first, second = faces[:, [1, 2, 0]], faces[:, [2, 0, 1]]
    flip = first > second
    start = torch.where(flip, second, first).reshape(-1)
    end = torch.where(flip, first, second).reshape(-1)
    p = uv.index_select(0, start).reshape(-1, 3, 2)
    q = uv.index_select(0, end).reshape(-1, 3, 2)
    sign = 1.0 - 2.0 * flip.to(uv.dtype)  # negating both coefficients negates the value exactly
    a = (p[..., 1] - q[..., 1]) * sign
    b = (q[..., 0] - p[..., 0]) * sign
    corners = uv.index_select(0, faces.reshape(-1)).reshape(-1, 3, 2)
    values = depth.index_select(0, faces.reshape(-1)).reshape(-1, 3)
    if not orthographic:
        values = 1.0 / values
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    dw1, dw2 = values[:, 1] - values[:, 0], values[:, 2] - values[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    safe = torch.where(area == 0, torch.ones_like(area), area)
    gradient = torch.stack([dw1 * e2[:, 1] - dw2 * e1[:, 1], dw2 * e1[:, 0] - dw1 * e2[:, 0]], 1) / safe[:, None]
    plane = torch.cat([corners[:, 0], values[:, :1], gradient], 1)
    return _Setup(a, b, p, plane, area)


def _plane_values(plane: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(P,) depth-plane values (1/z or z) of (P, 5) planes at (P,) pixel centres."""
    x, y = u.to(plane.dtype), v.to(plane.dtype)
    return plane[:, 2] + plane[:, 3] * (x - plane[:, 0]) + plane[:, 4] * (y - plane[:, 1])


TILES = (1, 2, 4, 8)
"""Triangles are scanned in groups by the side of their pixel bounding box, each group over square tiles
of one of these sides (at 256², most of a body's triangles cover a 1 x 1 or 2 x 2 box); bigger ones by
enumerating their pixels."""


def _covered(setup: _Setup, low: torch.Tensor, size: torch.Tensor, chunk: int):
    """Yield ``(triangle, u, v)``: every pixel centre inside each triangle, in chunks.

    Args:
        setup: the L triangles' setup.
        low: (L, 2) int64 first pixel (u, v) of each bounding box; size: (L, 2) its width and height.
        chunk: most (triangle, pixel) tests at once.
    """
    side = size.amax(1)
    smaller = 0
    for tile in (*TILES, None):
        group = torch.nonzero(side > smaller if tile is None else (side > smaller) & (side <= tile))[:, 0]
        if tile is None:
            yield from _scan_boxes(setup, low, size, group, chunk)
            break
        smaller = tile
        step = max(chunk // (tile * tile), 1)
        for first in range(0, len(group), step):
            yield _scan_tiles(setup, low, size, group[first : first + step], tile)


def _scan_tiles(setup: _Setup, low: torch.Tensor, size: torch.Tensor, members: torch.Tensor, tile: int):
    """``(triangle, u, v)`` of the pixel centres inside triangles ``members``, whose boxes fit a tile x tile
    square: the edge functions broadcast over the tile (the arithmetic of :meth:`_Setup.edges`)."""
    steps = torch.arange(tile, device=low.device)
    low, size = low.index_select(0, members), size.index_select(0, members)
    area = setup.area.index_select(0, members)
    a, b = setup.a.index_select(0, members)[..., None, None], setup.b.index_select(0, members)[..., None, None]
    origin = setup.origin.index_select(0, members)[..., None, None, :]
    x = (low[:, 0, None, None, None] + steps).to(a.dtype)  # (L, 1, 1, t)
    y = (low[:, 1, None, None, None] + steps[:, None]).to(a.dtype)  # (L, 1, t, 1)
    edges = a * (x - origin[..., 0]) + b * (y - origin[..., 1])  # (L, 3, t, t)
    inside = ((edges * area[:, None, None, None]) >= 0).all(1)
    inside &= (steps < size[:, :1, None]) & (steps[:, None] < size[:, 1:, None]) & (area != 0)[:, None, None]
    which, i, j = torch.nonzero(inside, as_tuple=True)
    corner = low.index_select(0, which)
    return members.index_select(0, which), corner[:, 0] + j, corner[:, 1] + i


def _scan_boxes(setup: _Setup, low: torch.Tensor, size: torch.Tensor, members: torch.Tensor, chunk: int):
    """Yield ``(triangle, u, v)`` for big triangles ``members``: every pixel of their boxes enumerated."""
    counts = size.index_select(0, members).prod(1)
    ends = torch.cumsum(counts, 0)
    first = 0
    while first < len(members):
        reached = int(ends[first - 1]) if first else 0
        last = max(int(torch.searchsorted(ends, reached + chunk, right=True)), first + 1)
        part, part_counts = members[first:last], counts[first:last]
        triangle = torch.repeat_interleave(part, part_counts)
        offset = torch.arange(len(triangle), device=low.device) - torch.repeat_interleave(
            torch.cumsum(part_counts, 0) - part_counts, part_counts
        )
        width = size.index_select(0, triangle)[:, 0]
        row = torch.div(offset, width, rounding_mode="floor")
        corner = low.index_select(0, triangle)
        u, v = corner[:, 0] + offset - row * width, corner[:, 1] + row
        pick = _Setup(
            *(t.index_select(0, triangle) for t in (setup.a, setup.b, setup.origin, setup.plane, setup.area))
        )
        inside = ((pick.edges(u, v) * pick.area[:, None]) >= 0).all(1) & (pick.area != 0)
        index = torch.nonzero(inside)[:, 0]
        yield triangle.index_select(0, index), u.index_select(0, index), v.index_select(0, index)
        first = last


def _resolve(
    pixel: torch.Tensor,
    face: torch.Tensor,
    towards_camera: torch.Tensor,
    vertices: torch.Tensor,
    uv: torch.Tensor,
    faces: torch.Tensor,
    intrinsics: torch.Tensor,
    resolution: int,
    orthographic: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Depth (M,), perspective-correct weights (M, 3) and oriented unit normals (M, 3) of M hits: flat
    pixels (M,) on triangles (M,); ``towards_camera`` (M,) bool: orient the normal towards the camera
    (visible hits) or away from it (hidden hits)."""
    n = resolution
    scene = torch.div(pixel, n * n, rounding_mode="floor")
    u, v = pixel % n, torch.div(pixel, n, rounding_mode="floor") % n
    corner_ids = faces.index_select(0, face)
    edges = _setup(uv, vertices[:, 2], corner_ids, orthographic).edges(u, v)  # (M, 3)
    screen = edges / edges.sum(1, keepdim=True)  # screen-space barycentrics
    corners = vertices.index_select(0, corner_ids.reshape(-1)).reshape(-1, 3, 3)
    if orthographic:
        depth = (screen * corners[..., 2]).sum(1)
        weights = screen
    else:
        inverse = screen / corners[..., 2]
        depth = 1.0 / inverse.sum(1)
        weights = inverse * depth[:, None]
    normal = cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normal = normal / normal.norm(dim=1, keepdim=True).clamp_min(1e-30)
    if orthographic:
        facing = normal[:, 2]
    else:
        k = intrinsics.index_select(0, scene)
        ray = torch.stack([(u - k[:, 1]) / k[:, 0], (v - k[:, 2]) / k[:, 0], torch.ones_like(depth)], 1)
        facing = (normal * ray).sum(1)
    wrong = torch.where(towards_camera, facing > 0, facing < 0)
    normal = torch.where(wrong[:, None], -normal, normal)
    return depth, weights, normal


def _check(
    vertices: torch.Tensor, faces: torch.Tensor, face_scene: torch.Tensor, intrinsics: torch.Tensor
) -> None:
    if vertices.ndim != 2 or vertices.shape[1] != 3 or not vertices.is_floating_point():
        raise ValueError(f"vertices: expected (V, 3) float, got {tuple(vertices.shape)} {vertices.dtype}")
    if faces.ndim != 2 or faces.shape[1] != 3 or face_scene.shape != faces.shape[:1]:
        raise ValueError(f"faces, face_scene: expected (F, 3) and (F,), got {tuple(faces.shape)}, "
                         f"{tuple(face_scene.shape)}")  # fmt: skip
    if intrinsics.ndim != 2 or intrinsics.shape[1] != 3:
        raise ValueError(f"intrinsics: expected (B, 3), got {tuple(intrinsics.shape)}")
    # The compiled scan writes where the indices say, unchecked: out-of-range ones must stop here.
    for name, index, count in (("faces", faces, len(vertices)), ("face_scene", face_scene, len(intrinsics))):
        low, high = (int(index.min()), int(index.max())) if len(index) else (0, -1)
        if low < 0 or high >= count:
            raise ValueError(f"{name}: expected indices in [0, {count}), got {low} to {high}")


def _reduce(
    vertices: torch.Tensor, faces: torch.Tensor, face_scene: torch.Tensor, intrinsics: torch.Tensor,
    resolution: int, orthographic: bool, hidden: bool, chunk: int,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:  # fmt: skip
    """The z-buffer pass (arguments as :func:`rasterize`'s): the (B N N,) int64 nearest keys (``NO_HIT``
    where none), the farthest keys (-1 where none; None unless ``hidden``) and the (V, 2) pixel coordinates
    of the vertices."""
    n, batch, device = int(resolution), len(intrinsics), vertices.device
    intrinsics = intrinsics.to(vertices.dtype)
    if not orthographic and len(faces) and bool((vertices[:, 2].index_select(0, faces.reshape(-1)) <= 0).any()):
        raise ValueError("vertices: a triangle reaches behind the pinhole (z <= 0); move the camera back")
    if batch == 1:  # one camera for every vertex (broadcast: the same values, no gathers)
        uv = project(vertices, intrinsics, orthographic)
    else:
        vertex_scene = torch.zeros(len(vertices), dtype=torch.int64, device=device)
        vertex_scene[faces.reshape(-1)] = face_scene.repeat_interleave(3)
        uv = project(vertices, intrinsics.index_select(0, vertex_scene), orthographic)
    if device.type == "cpu" and raster_kernel.available():  # the same keys, compiled (raster_kernel)
        visible_keys, hidden_keys = raster_kernel.zbuffer_keys(
            uv, vertices[:, 2], faces, face_scene, batch, n, orthographic, hidden
        )
        return visible_keys, hidden_keys, uv

    corners = uv.index_select(0, faces.reshape(-1)).reshape(-1, 3, 2)
    low = torch.ceil(torch.minimum(torch.minimum(corners[:, 0], corners[:, 1]), corners[:, 2]))
    high = torch.floor(torch.maximum(torch.maximum(corners[:, 0], corners[:, 1]), corners[:, 2]))
    low = low.clamp(0, n).to(torch.int64)
    size = (high.clamp(-1, n - 1).to(torch.int64) - low + 1).clamp_min(0)
    # Only the triangles around a pixel centre (at 256², most of a body's triangles hold none or one).
    live = torch.nonzero((size[:, 0] > 0) & (size[:, 1] > 0))[:, 0]
    setup = _setup(uv, vertices[:, 2], faces.index_select(0, live), orthographic)
    visible_keys = torch.full((batch * n * n,), NO_HIT, dtype=torch.int64, device=device)
    hidden_keys = torch.full((batch * n * n,), -1, dtype=torch.int64, device=device) if hidden else None
    for local, u, v in _covered(setup, low.index_select(0, live), size.index_select(0, live), chunk):
        plane = _plane_values(setup.plane.index_select(0, local), u, v)
        depth = plane if orthographic else 1.0 / plane
        triangle = live.index_select(0, local)
        pixel = face_scene.index_select(0, triangle) * (n * n) + v * n + u
        keys = _depth_keys(depth, triangle)
        visible_keys.scatter_reduce_(0, pixel, keys, reduce="amin")
        if hidden:
            hidden_keys.scatter_reduce_(0, pixel, keys, reduce="amax")

    return visible_keys, hidden_keys if hidden else None, uv


def nearest_depth(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    face_scene: torch.Tensor,
    intrinsics: torch.Tensor,
    resolution: int,
    *,
    orthographic: bool = False,
    chunk: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """(B, N, N) float32 depth of the nearest hit (0 where none), rounded to float32 and nothing else
    computed: a depth map for shadows. Arguments as :func:`rasterize`'s."""
    _check(vertices, faces, face_scene, intrinsics)
    keys, _, _ = _reduce(vertices, faces, face_scene, intrinsics, int(resolution), orthographic, False, chunk)
    depth = (keys >> 32).to(torch.int32).view(torch.float32)
    depth = torch.where(keys == NO_HIT, torch.zeros_like(depth), depth)
    return depth.reshape(len(intrinsics), int(resolution), int(resolution))


def rasterize(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    face_scene: torch.Tensor,
    intrinsics: torch.Tensor,
    resolution: int,
    *,
    orthographic: bool = False,
    hidden: bool = True,
    chunk: int = DEFAULT_CHUNK,
) -> Hits:
    """Render a batch of scenes: the nearest and farthest hit of every pixel's ray.

    Args:
        vertices: (V, 3) float, camera frame of the scene each belongs to, metres (all scenes packed);
            perspective: z > 0 for every vertex a triangle uses. Float64 on CPU matches a float64 ray
            caster; float32 (for GPUs) keeps depths within ~1 µm at a few metres.
        faces: (F, 3) int64 triangles into ``vertices`` (either winding).
        face_scene: (F,) int64 scene of each triangle, in [0, B).
        intrinsics: (B, 3) float ``(focal, cx, cy)`` per scene, pixels (orthographic: focal in px/m).
        resolution: N, the images' side.
        orthographic: orthographic cameras (rays along +z) instead of pinholes at the origin.
        hidden: also find the farthest hit (skip it for shadow maps).
        chunk: triangle-pixel pairs tested at once.

    Returns:
        :class:`Hits` with B = ``len(intrinsics)``; without ``hidden``, the hidden fields repeat the visible.
    """
    _check(vertices, faces, face_scene, intrinsics)
    n, batch, device = int(resolution), len(intrinsics), vertices.device
    intrinsics = intrinsics.to(vertices.dtype)
    visible_keys, hidden_keys, uv = _reduce(
        vertices, faces, face_scene, intrinsics, n, orthographic, hidden, chunk
    )
    # One pass over the hits of both layers.
    front = torch.nonzero(visible_keys != NO_HIT)[:, 0]
    back = front if hidden else front[:0]
    pixel = torch.cat([front, back])
    far = hidden_keys.index_select(0, back) if hidden else front[:0]
    face = torch.cat([visible_keys.index_select(0, front), far]) & 0xFFFFFFFF
    towards = torch.arange(len(pixel), device=device) < len(front)
    depth, weights, normal = _resolve(pixel, face, towards, vertices, uv, faces, intrinsics, n, orthographic)
    shape = (batch, n, n)

    def layer(start: int, stop: int, pixels: torch.Tensor):
        depth_map = torch.zeros(batch * n * n, dtype=vertices.dtype, device=device)
        face_map = torch.full((batch * n * n,), -1, dtype=torch.int64, device=device)
        weight_map = torch.zeros((batch * n * n, 3), dtype=vertices.dtype, device=device)
        normal_map = torch.zeros((batch * n * n, 3), dtype=vertices.dtype, device=device)
        depth_map.index_copy_(0, pixels, depth[start:stop])
        face_map.index_copy_(0, pixels, face[start:stop])
        weight_map.index_copy_(0, pixels, weights[start:stop])
        normal_map.index_copy_(0, pixels, normal[start:stop])
        return (depth_map.reshape(shape), face_map.reshape(shape), weight_map.reshape(*shape, 3),
                normal_map.reshape(*shape, 3))  # fmt: skip

    first = layer(0, len(front), front)
    last = layer(len(front), len(pixel), back) if hidden else first
    mask = first[1] >= 0
    # Two hits whose float32 depths tie are ordered by triangle index, so the back may come out a rounding
    # error in front of the front: a ray's last hit is never nearer than its first.
    hidden_depth = torch.where(mask, torch.maximum(last[0], first[0]), last[0])
    return Hits(mask, first[0], hidden_depth, first[1], last[1], first[2], last[2], first[3], last[3])

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
it falls in one triangle or both, never in neither (no pinholes in a closed mesh).

Conventions (those of :mod:`mould.camera`): camera frame x right, y down, z forward, metres; pixel (u, v)
= (column, row) has its centre at integers; perspective: ``u = focal x / z + cx``; orthographic:
``u = focal x + cx`` (focal in pixels per metre).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

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
    ``(focal, cx, cy)``."""
    xy = vertices[:, :2] if orthographic else vertices[:, :2] / vertices[:, 2:3]
    return xy * intrinsics[:, :1] + intrinsics[:, 1:]


def _depth_keys(depth: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """int64 keys ordered by depth (as float32, > 0), then by triangle index."""
    bits = depth.to(torch.float32).clamp_min(1e-30).view(torch.int32).to(torch.int64)
    return (bits << 32) | face


def _setup(uv: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, orthographic: bool) -> torch.Tensor:
    """(F, 18) what the pixel tests of triangles ``faces`` need, each function written relative to a point
    of the triangle so that float32 keeps its precision near the triangle:

    - columns 0-11, for the edges b-c, c-a, a-b: ``(A, B, pu, pv)`` of the edge function
      ``A (u - pu) + B (v - pv)``, positive inside a counter-clockwise triangle, (pu, pv) the edge's
      lower-indexed end (see the module docstring);
    - columns 12-16: ``(ua, va, w, dw/du, dw/dv)``, the depth plane through corner a, ``w`` being 1/z
      (perspective) or z (orthographic), which is affine in (u, v);
    - column 17: twice the signed area on screen (> 0 counter-clockwise; 0 for a degenerate triangle).
    """
    columns = []
    for start, end in ((1, 2), (2, 0), (0, 1)):
        i, j = faces[:, start], faces[:, end]
        flip = i > j
        p = uv.index_select(0, torch.where(flip, j, i))
        q = uv.index_select(0, torch.where(flip, i, j))
        sign = 1.0 - 2.0 * flip.to(uv.dtype)  # negating both coefficients negates the value exactly
        columns += [(p[:, 1] - q[:, 1]) * sign, (q[:, 0] - p[:, 0]) * sign, p[:, 0], p[:, 1]]
    corners = uv.index_select(0, faces.reshape(-1)).reshape(-1, 3, 2)
    values = depth.index_select(0, faces.reshape(-1)).reshape(-1, 3)
    if not orthographic:
        values = 1.0 / values
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    dw1, dw2 = values[:, 1] - values[:, 0], values[:, 2] - values[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    safe = torch.where(area == 0, torch.ones_like(area), area)
    gradient_u = (dw1 * e2[:, 1] - dw2 * e1[:, 1]) / safe
    gradient_v = (dw2 * e1[:, 0] - dw1 * e2[:, 0]) / safe
    columns += [corners[:, 0, 0], corners[:, 0, 1], values[:, 0], gradient_u, gradient_v, area]
    return torch.stack(columns, 1)


def _edge_values(setup: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(P, 3) edge functions of (P, 18) triangle setups at (P,) pixel centres."""
    edges = setup[:, :12].reshape(-1, 3, 4)
    x, y = u.to(setup.dtype)[:, None], v.to(setup.dtype)[:, None]
    return edges[..., 0] * (x - edges[..., 2]) + edges[..., 1] * (y - edges[..., 3])


def _plane_values(setup: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(P,) depth-plane values (1/z or z) of (P, 18) triangle setups at (P,) pixel centres."""
    x, y = u.to(setup.dtype), v.to(setup.dtype)
    return setup[:, 14] + setup[:, 15] * (x - setup[:, 12]) + setup[:, 16] * (y - setup[:, 13])


def _pairs(low: torch.Tensor, width: torch.Tensor, counts: torch.Tensor):
    """(triangle, u, v) for every pixel centre of the triangles' bounding boxes (``low`` (F, 2) corner,
    ``width`` (F,), ``counts`` (F,) pixels)."""
    triangle = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    starts = torch.cumsum(counts, 0) - counts
    local = torch.arange(len(triangle), device=counts.device) - starts.index_select(0, triangle)
    w = width.index_select(0, triangle)
    row = torch.div(local, w, rounding_mode="floor")
    corner = low.index_select(0, triangle)
    return triangle, corner[:, 0] + local - row * w, corner[:, 1] + row


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(M, 3) cross products of (M, 3) vectors (torch.linalg.cross is slow on the CPU for strided inputs)."""
    return torch.stack(
        [
            a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1],
            a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
            a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0],
        ],
        1,
    )


def _resolve(
    keys: torch.Tensor,
    empty: int,
    vertices: torch.Tensor,
    uv: torch.Tensor,
    faces: torch.Tensor,
    intrinsics: torch.Tensor,
    resolution: int,
    orthographic: bool,
    towards_camera: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(flat pixel, triangle, depth, weights, normal) of the pixels whose reduced key is not ``empty``."""
    n = resolution
    pixel = torch.nonzero(keys != empty)[:, 0]
    face = keys.index_select(0, pixel) & 0xFFFFFFFF
    scene = torch.div(pixel, n * n, rounding_mode="floor")
    u, v = pixel % n, torch.div(pixel, n, rounding_mode="floor") % n
    corner_ids = faces.index_select(0, face)
    edges = _edge_values(_setup(uv, vertices[:, 2], corner_ids, orthographic), u, v)  # (M, 3)
    screen = edges / edges.sum(1, keepdim=True)  # screen-space barycentrics
    corners = vertices.index_select(0, corner_ids.reshape(-1)).reshape(-1, 3, 3)
    if orthographic:
        depth = (screen * corners[..., 2]).sum(1)
        weights = screen
    else:
        inverse = screen / corners[..., 2]
        depth = 1.0 / inverse.sum(1)
        weights = inverse * depth[:, None]
    normal = _cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normal = normal / normal.norm(dim=1, keepdim=True).clamp_min(1e-30)
    if orthographic:
        facing = normal[:, 2]
    else:
        k = intrinsics.index_select(0, scene)
        ray = torch.stack([(u - k[:, 1]) / k[:, 0], (v - k[:, 2]) / k[:, 0], torch.ones_like(depth)], 1)
        facing = (normal * ray).sum(1)
    wrong = facing > 0 if towards_camera else facing < 0
    normal = torch.where(wrong[:, None], -normal, normal)
    return pixel, face, depth, weights, normal


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
    if vertices.ndim != 2 or vertices.shape[1] != 3 or not vertices.is_floating_point():
        raise ValueError(f"vertices: expected (V, 3) float, got {tuple(vertices.shape)} {vertices.dtype}")
    if faces.ndim != 2 or faces.shape[1] != 3 or face_scene.shape != faces.shape[:1]:
        raise ValueError(f"faces, face_scene: expected (F, 3) and (F,), got {tuple(faces.shape)}, "
                         f"{tuple(face_scene.shape)}")  # fmt: skip
    if intrinsics.ndim != 2 or intrinsics.shape[1] != 3:
        raise ValueError(f"intrinsics: expected (B, 3), got {tuple(intrinsics.shape)}")
    n, batch, device = int(resolution), len(intrinsics), vertices.device
    intrinsics = intrinsics.to(vertices.dtype)
    if not orthographic and len(faces) and bool((vertices[:, 2][faces] <= 0).any()):
        raise ValueError("vertices: a triangle reaches behind the pinhole (z <= 0); move the camera back")
    vertex_scene = torch.zeros(len(vertices), dtype=torch.int64, device=device)
    vertex_scene[faces.reshape(-1)] = face_scene.repeat_interleave(3)
    uv = project(vertices, intrinsics.index_select(0, vertex_scene), orthographic)

    corners = uv.index_select(0, faces.reshape(-1)).reshape(-1, 3, 2)
    low = torch.minimum(torch.minimum(corners[:, 0], corners[:, 1]), corners[:, 2])
    high = torch.maximum(torch.maximum(corners[:, 0], corners[:, 1]), corners[:, 2])
    low = torch.ceil(low).clamp(0, n).to(torch.int64)
    size = (torch.floor(high).clamp(-1, n - 1).to(torch.int64) - low + 1).clamp_min(0)
    counts = size[:, 0] * size[:, 1]
    # Only the triangles around a pixel centre (at 256², most of a body's triangles hold none or one).
    live = torch.nonzero(counts > 0)[:, 0]
    counts, low, width = counts.index_select(0, live), low.index_select(0, live), size[:, 0].index_select(0, live)
    setup = _setup(uv, vertices[:, 2], faces.index_select(0, live), orthographic)
    visible_keys = torch.full((batch * n * n,), NO_HIT, dtype=torch.int64, device=device)
    hidden_keys = torch.full((batch * n * n,), -1, dtype=torch.int64, device=device)
    ends = torch.cumsum(counts, 0)
    first = 0
    while first < len(live):
        reached = int(ends[first - 1]) if first else 0
        last = max(int(torch.searchsorted(ends, reached + chunk, right=True)), first + 1)
        local, u, v = _pairs(low[first:last], width[first:last], counts[first:last])
        local = local + first
        rows = setup.index_select(0, local)
        orientation = rows[:, 17]
        inside = ((_edge_values(rows, u, v) * orientation[:, None]) >= 0).all(1) & (orientation != 0)
        index = torch.nonzero(inside)[:, 0]
        local, u, v, rows = local[index], u[index], v[index], rows[index]
        plane = _plane_values(rows, u, v)
        depth = plane if orthographic else 1.0 / plane
        triangle = live.index_select(0, local)
        pixel = face_scene.index_select(0, triangle) * (n * n) + v * n + u
        keys = _depth_keys(depth, triangle)
        visible_keys.scatter_reduce_(0, pixel, keys, reduce="amin")
        if hidden:
            hidden_keys.scatter_reduce_(0, pixel, keys, reduce="amax")
        first = last

    shape = (batch, n, n)
    layers = []
    reductions = ((visible_keys, NO_HIT, True), (hidden_keys, -1, False))
    for keys, empty, towards in reductions if hidden else reductions[:1]:
        pixel, face, depth, weights, normal = _resolve(
            keys, empty, vertices, uv, faces, intrinsics, n, orthographic, towards
        )
        depth_map = torch.zeros(batch * n * n, dtype=vertices.dtype, device=device)
        face_map = torch.full((batch * n * n,), -1, dtype=torch.int64, device=device)
        weight_map = torch.zeros((batch * n * n, 3), dtype=vertices.dtype, device=device)
        normal_map = torch.zeros((batch * n * n, 3), dtype=vertices.dtype, device=device)
        depth_map[pixel], face_map[pixel], weight_map[pixel], normal_map[pixel] = depth, face, weights, normal
        layers.append((depth_map.reshape(shape), face_map.reshape(shape), weight_map.reshape(*shape, 3),
                       normal_map.reshape(*shape, 3)))  # fmt: skip
    front = layers[0]
    back = layers[1] if hidden else front
    mask = front[1] >= 0
    # Two hits whose float32 depths tie are ordered by triangle index, so the back may come out a rounding
    # error in front of the front: a ray's last hit is never nearer than its first.
    hidden_depth = torch.where(mask, torch.maximum(back[0], front[0]), back[0])
    return Hits(mask, front[0], hidden_depth, front[1], back[1], front[2], back[2], front[3], back[3])

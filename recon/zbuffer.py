"""An orthographic z-buffer in numpy: the nearest triangle through every pixel centre of a batch of views.

It gives what one orthographic ray per pixel centre gives a ray caster, for the previews
(:func:`mould.recon.render.render_views`) without torch or open3d. (The synthetic data's renderer,
perspective, batched on any device and with both hits, is torch's :mod:`mould.datasets.raster`.)

How: the pixel centres inside each triangle's bounding box are enumerated as (triangle, pixel) pairs, in
chunks, and tested with the triangle's three edge functions; ``np.minimum.at`` keeps per pixel the smallest
key ``float32 depth bits << 32 | triangle``, so the depth test and the winner come out of one reduction
(a tie in float32 depth goes to the lower triangle). The winner's barycentric weights are then computed
once per pixel. Each edge function is written from the edge's lexicographically smaller end, so two
triangles sharing an edge (by index or only by position) evaluate it to exact negatives: a pixel centre on
it falls in one of them or both, never in neither (no pinholes in a closed mesh). A centre exactly on an
edge counts as inside; zero-area triangles cover nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mould.checks import check_array

DEFAULT_CHUNK = 1 << 19
"""Triangle-pixel pairs tested at once (~100 MB of temporaries): bounds memory when triangles are big."""
NO_HIT = np.iinfo(np.int64).max
"""Key of a pixel that no triangle covers (the start of the minimum)."""


@dataclass(frozen=True)
class NearestHits:
    """What the rays through the pixel centres of B square views of N x N pixels hit first.

    Attributes:
        face: (B, N, N) int64 index of the nearest triangle hit (into ``faces``); -1 where none.
        weights: (B, N, N, 3) float64 barycentric weights of the hit point in that triangle's corners
            (sum 1, each >= 0); 0 where none.
    """

    face: np.ndarray
    weights: np.ndarray


def _edge_functions(u: np.ndarray, v: np.ndarray, area: np.ndarray) -> np.ndarray:
    """(9, T) ``(a, b, c)`` of the edge functions ``a x + b y + c`` of the edges b-c, c-a and a-b of T screen
    triangles with corners at columns ``u`` and rows ``v`` (3, T) and twice signed area ``area`` (T,), != 0:
    >= 0 inside, twice the unsigned area at the edge's opposite corner."""
    rows = []
    for start, end in ((1, 2), (2, 0), (0, 1)):
        su, sv, eu, ev = u[start], v[start], u[end], v[end]
        flip = (su > eu) | ((su == eu) & (sv > ev))
        pu, pv = np.where(flip, eu, su), np.where(flip, ev, sv)
        qu, qv = np.where(flip, su, eu), np.where(flip, sv, ev)
        a, b = pv - qv, qu - pu
        # Negating all three coefficients negates the value exactly: a shared edge's two values stay opposite.
        sign = np.where(flip, -1.0, 1.0) * np.sign(area)
        rows += [a * sign, b * sign, -(a * pu + b * pv) * sign]
    return np.stack(rows)


def _evaluate(functions: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(K, P) values of K affine functions ``a x + b y + c`` given per pixel as (3 K, P) rows ``(a, b, c)``,
    at (P,) float pixel centres (x, y)."""
    return functions[0::3] * x + functions[1::3] * y + functions[2::3]


def _pairs(counts: np.ndarray, ends: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``start`` to ``stop`` of the enumeration in which triangle t owns ``counts[t]`` consecutive
    pairs (``ends``: their cumulative sum): (P,) triangle and (P,) index of the pair's pixel in its box."""
    first, last = np.searchsorted(ends, [start, stop - 1], side="right")
    ids = np.arange(first, last + 1)
    begins = ends[ids] - counts[ids]
    taken = np.minimum(ends[ids], stop) - np.maximum(begins, start)
    return np.repeat(ids, taken), np.arange(start, stop) - np.repeat(begins, taken)


def nearest_hits(points: np.ndarray, faces: np.ndarray, size: int, *, chunk: int = DEFAULT_CHUNK) -> NearestHits:
    """Render B orthographic views of one mesh: the nearest triangle through every pixel centre.

    Args:
        points: (B, V, 3) float, the mesh's vertices as each view sees them: pixel column u and row v (pixel
            centres at integers, the picture spans -0.5 to N - 0.5), then the depth along the view ray, > 0
            (any unit; nearer is smaller).
        faces: (F, 3) int triangles into each view's vertices (either winding).
        size: N, the pictures' side in pixels.
        chunk: most triangle-pixel pairs tested at once.

    Returns:
        :class:`NearestHits` of the B views.
    """
    if size < 1:
        raise ValueError(f"size: expected >= 1, got {size}")
    points = check_array("points", points, (None, None, 3), "float", finite=True)
    faces = check_array("faces", faces, (None, 3), "int")
    views, count = points.shape[:2]
    if len(faces) and (faces.min() < 0 or faces.max() >= count):
        raise ValueError(f"faces: indices must lie in [0, {count - 1}]")
    if views * len(faces) >= 2**31:
        raise ValueError(f"faces: at most 2**31 triangles in all views, got {views} x {len(faces)}")
    if np.any(points[..., 2] <= 0):
        raise ValueError("points: expected depths > 0")
    n, per_view = int(size), max(len(faces), 1)
    # (coordinate, corner, B F): one contiguous row per coordinate and corner, triangles view-major.
    corners = np.ascontiguousarray(points.astype(np.float64).transpose(2, 0, 1))[:, :, faces.T]
    u, v, depth = corners.transpose(0, 2, 1, 3).reshape(3, 3, -1)
    low_u = np.ceil(np.minimum(np.minimum(u[0], u[1]), u[2])).clip(0, n).astype(np.int64)
    low_v = np.ceil(np.minimum(np.minimum(v[0], v[1]), v[2])).clip(0, n).astype(np.int64)
    width = np.floor(np.maximum(np.maximum(u[0], u[1]), u[2])).clip(-1, n - 1).astype(np.int64) - low_u + 1
    height = np.floor(np.maximum(np.maximum(v[0], v[1]), v[2])).clip(-1, n - 1).astype(np.int64) - low_v + 1
    area = (u[1] - u[0]) * (v[2] - v[0]) - (v[1] - v[0]) * (u[2] - u[0])
    # Only triangles around a pixel centre (at 256², a person's triangles hold a pixel centre or two).
    live = np.flatnonzero((width > 0) & (height > 0) & (area != 0))
    u, v, depth, area = u[:, live], v[:, live], depth[:, live], area[live]
    low_u, low_v, width, height = low_u[live], low_v[live], width[live], height[live]
    edges = _edge_functions(u, v, area)
    # Depth is affine on screen: the sum over corners k of (weight k = edge k / their sum) x depth k.
    depth_plane = (edges.reshape(3, 3, -1) * depth[:, None]).sum(0) / np.abs(area)
    origin = live // per_view * (n * n) + low_v * n + low_u
    counts = width * height
    ends = np.cumsum(counts)
    total = int(ends[-1]) if len(ends) else 0
    keys = np.full(views * n * n, NO_HIT, np.int64)
    for start in range(0, total, chunk):
        triangle, offset = _pairs(counts, ends, start, min(start + chunk, total))
        row, column = np.divmod(offset, width[triangle])
        x, y = (low_u[triangle] + column).astype(np.float64), (low_v[triangle] + row).astype(np.float64)
        values = _evaluate(edges[:, triangle], x, y)
        inside = np.flatnonzero((values[0] >= 0) & (values[1] >= 0) & (values[2] >= 0))
        triangle, x, y = triangle[inside], x[inside], y[inside]
        plane = np.maximum(_evaluate(depth_plane[:, triangle], x, y)[0], 0.0)
        key = (plane.astype(np.float32).view(np.int32).astype(np.int64) << 32) | triangle
        # ~8 ns a pair here: numpy >= 1.25 runs ufunc.at in a fast loop (older ones are many times slower).
        np.minimum.at(keys, origin[triangle] + row[inside] * n + column[inside], key)

    hit = np.flatnonzero(keys != NO_HIT)
    winner = keys[hit] & 0xFFFFFFFF
    values = _evaluate(edges[:, winner], (hit % n).astype(np.float64), (hit // n % n).astype(np.float64))
    face = np.full(views * n * n, -1, np.int64)
    face[hit] = live[winner] % per_view
    weights = np.zeros((views * n * n, 3))
    values[:, values.sum(0) == 0] = 1.0  # a sliver whose three edge values all round to 0: its centroid
    weights[hit] = (values / values.sum(0)).T
    return NearestHits(face.reshape(views, n, n), weights.reshape(views, n, n, 3))

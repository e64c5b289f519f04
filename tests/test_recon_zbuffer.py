"""The numpy orthographic z-buffer against a per-pixel loop, open3d's ray caster and exact pixel-centre edges."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from mould.recon.zbuffer import nearest_hits


def naive_nearest_hits(points: np.ndarray, faces: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The slow reference: for every view, pixel centre and triangle, the barycentric coordinates solved
    from the corners; the nearest triangle containing the centre wins. (B, N, N) face, (B, N, N, 3) weights."""
    face = np.full((len(points), size, size), -1)
    weights = np.zeros((len(points), size, size, 3))
    for view, corners in enumerate(points[:, faces]):
        for v in range(size):
            for u in range(size):
                best = np.inf
                for index, (a, b, c) in enumerate(corners):
                    matrix = np.array([[a[0], b[0], c[0]], [a[1], b[1], c[1]], [1.0, 1.0, 1.0]])
                    if abs(np.linalg.det(matrix)) < 1e-12:
                        continue
                    w = np.linalg.solve(matrix, [u, v, 1.0])
                    depth = w @ [a[2], b[2], c[2]]
                    if np.all(w >= 0) and depth < best:
                        best, face[view, v, u], weights[view, v, u] = depth, index, w
    return face, weights


def ray_cast(points: np.ndarray, faces: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """open3d's ray caster on one view (V, 3) with a ray along +depth through every pixel centre: (N, N)
    triangle hit (-1: none) and (N, N, 3) barycentric weights."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(points.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32)))
    v, u = np.mgrid[:size, :size]
    origins = np.stack([u.ravel(), v.ravel(), np.zeros(size * size)], 1)
    rays = np.concatenate([origins, np.broadcast_to([0.0, 0.0, 1.0], (size * size, 3))], 1)
    hits = scene.cast_rays(o3d.core.Tensor(rays.astype(np.float32)))
    face = hits["primitive_ids"].numpy().astype(np.int64)
    face[~np.isfinite(hits["t_hit"].numpy())] = -1
    second, third = hits["primitive_uvs"].numpy().astype(np.float64).T
    weights = np.stack([1 - second - third, second, third], 1)
    return face.reshape(size, size), weights.reshape(size, size, 3)


def test_random_triangles_match_a_per_pixel_loop(rng):
    # Two views of 40 overlapping, interpenetrating triangles, some reaching past the picture's border.
    size, count = 12, 40
    faces = np.arange(3 * count).reshape(count, 3)
    points = np.concatenate([rng.uniform(-3, 15, (2, 3 * count, 2)), rng.uniform(1, 5, (2, 3 * count, 1))], 2)
    hits = nearest_hits(points, faces, size)
    face, weights = naive_nearest_hits(points, faces, size)
    assert (face >= 0).sum() > 150 and (face == -1).sum() > 0  # the test sees both
    np.testing.assert_array_equal(hits.face, face)
    np.testing.assert_allclose(hits.weights, weights, atol=1e-9)  # float64 round-off of two formulas


def test_chunks_split_triangles_without_changing_the_picture(rng):
    # Big triangles whose boxes span many chunks of 7 pairs give the pictures of one pass.
    points = np.concatenate([rng.uniform(-5, 25, (3, 30, 2)), rng.uniform(1, 2, (3, 30, 1))], 2)
    faces = rng.integers(0, 30, (20, 3))
    whole, split = nearest_hits(points, faces, 20), nearest_hits(points, faces, 20, chunk=7)
    np.testing.assert_array_equal(split.face, whole.face)
    np.testing.assert_array_equal(split.weights, whole.weights)


def test_pixel_centres_on_shared_edges_fall_in_a_triangle(rng):
    # A fan of ~1800 thin triangles around a point near the picture's middle, one spoke through each pixel
    # centre within 24 px (one a direction): every such centre lies on an edge shared by two triangles, where
    # the edge functions round to 0 or tiny values of either sign. The triangles are a soup (no shared vertex
    # index) wound one way, each listing its corners from a different one; every spoke's centre must land in
    # a triangle. (Evaluating an edge from whichever end its triangle lists first leaves 8 pinholes in this fan.)
    middle = rng.uniform(31, 33, 2)
    v, u = np.mgrid[:64, :64]
    centres = np.stack([u.ravel(), v.ravel()], 1).astype(np.float64)
    distance = np.linalg.norm(centres - middle, axis=1)
    centres = centres[(distance > 2) & (distance < 24)]
    angle = np.arctan2(centres[:, 1] - middle[1], centres[:, 0] - middle[0])
    centres, angle = centres[np.argsort(angle)], np.sort(angle)
    centres = centres[np.concatenate([[True], np.diff(angle) > 1e-9])]
    rim = middle + rng.uniform(1.05, 1.3, (len(centres), 1)) * (centres - middle)  # the spokes' far ends
    corners = np.stack([rim, np.roll(rim, -1, 0), np.broadcast_to(middle, rim.shape)], 1)
    corners = np.stack([np.roll(triangle, -i, axis=0) for i, triangle in enumerate(corners)])
    points = np.concatenate([corners.reshape(1, -1, 2), np.full((1, corners.size // 2, 1), 3.0)], 2)
    hits = nearest_hits(points, np.arange(corners.size // 2).reshape(-1, 3), 64)
    missed = hits.face[0, centres[:, 1].astype(int), centres[:, 0].astype(int)] < 0
    assert len(centres) > 1000 and not missed.any(), f"{int(missed.sum())} pinholes of {len(centres)}"


def test_a_big_triangle_behind_many_subpixel_ones_matches_a_ray_caster():
    # A 20480-triangle sphere (0.09 px² a triangle, 0.45 px edges) in front of a triangle covering most of
    # the picture.
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=12.0)
    points = np.concatenate([sphere.vertices + [31.3, 30.8, 15.0], [[-5, -3, 40], [70, 0, 42], [10, 70, 41]]])
    faces = np.concatenate([sphere.faces, [[len(sphere.vertices) + k for k in range(3)]]])
    hits = nearest_hits(points[None], faces, 64)
    face, weights = ray_cast(points, faces, 64)
    big = len(faces) - 1
    assert (hits.face[0] == big).sum() > 2000 and ((hits.face[0] >= 0) & (hits.face[0] < big)).sum() > 400
    # open3d casts in float32: a centre within ~1e-6 px of an edge may go to the neighbour; none did here.
    np.testing.assert_array_equal(hits.face[0], face)
    # Its weights carry float32 round-off relative to the small triangles' edges (largest 2e-4 here).
    np.testing.assert_allclose(hits.weights[0], np.where(face[..., None] >= 0, weights, 0), atol=1e-3)


def test_an_empty_scene_and_bad_input():
    empty = nearest_hits(np.ones((2, 0, 3)), np.zeros((0, 3), np.int64), 4)
    assert empty.face.shape == (2, 4, 4) and np.all(empty.face == -1) and not empty.weights.any()
    triangle = np.array([[[0.0, 0.0, 1.0], [3.0, 0.0, 1.0], [0.0, 3.0, 1.0]]])
    with pytest.raises(ValueError, match="points"):
        nearest_hits(triangle[0], np.array([[0, 1, 2]]), 4)
    with pytest.raises(ValueError, match="points: expected depths > 0"):
        nearest_hits(triangle * [1, 1, 0], np.array([[0, 1, 2]]), 4)
    with pytest.raises(ValueError, match="faces"):
        nearest_hits(triangle, np.array([[0, 1, 3]]), 4)
    with pytest.raises(ValueError, match="size"):
        nearest_hits(triangle, np.array([[0, 1, 2]]), 0)

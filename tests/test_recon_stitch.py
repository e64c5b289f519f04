"""Direct stitching: closed, manifold, outward surfaces on analytic shapes, random masks and an anny body."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mould.recon.cells import case_tables, remove_pinches, sector_ring
from mould.recon.mesh import mould_to_mesh, topology
from mould.recon.stitch import StitchConfig, stitch_maps, stitch_mould

from mould import Camera, frame_points, mesh_to_mould
from mould.container import Mould
from mould.errors import InputError


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    corners = vertices[faces].astype(np.float64)
    return float(np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum() / 6)


def ortho_camera(n: int, pixel: float) -> Camera:
    """Orthographic camera looking down +z from z = 0, pixel centre (c, r) at x = (c - cx) * pixel."""
    return Camera("orthographic", n, 1 / pixel, (n - 1) / 2, (n - 1) / 2, np.eye(4))


# -- case tables --------------------------------------------------------------------------------------------
def test_every_case_is_a_disk_bounded_by_its_cycle():
    # Each cell's triangles must form a disk whose boundary is the cell's outline (corners plus the jump
    # midpoints in cycle order): then neighbouring cells glue edge to edge, which watertightness rests on.
    tables = case_tables()
    cases = [c for c in range(48) if tables[c]]
    assert len(cases) == 17 + 16
    for case in cases:
        directed = [
            (a, b) for tri in tables[case] for a, b in ((tri[0], tri[1]), (tri[1], tri[2]), (tri[2], tri[0]))
        ]
        assert len(set(directed)) == len(directed), f"case {case}: an edge is used twice in one direction"
        boundary = [e for e in directed if (e[1], e[0]) not in directed]
        # The boundary is one loop.
        following = dict(boundary)
        assert len(following) == len(boundary)
        start = boundary[0][0]
        loop, vertex = [start], following[start]
        while vertex != start:
            loop.append(vertex)
            vertex = following[vertex]
        assert len(loop) == len(boundary), f"case {case}: the outline is not one loop"
        # Euler characteristic of a disk: V - E + F = 1.
        vertices = {v for tri in tables[case] for v in tri}
        edges = {frozenset(e) for e in directed}
        assert len(vertices) - len(edges) + len(tables[case]) == 1, f"case {case} is not a disk"


# -- pinches ------------------------------------------------------------------------------------------------
def sector_ring_naive(mask: np.ndarray) -> np.ndarray:
    """Per pixel, per 45° sector: is it covered by a triangle of the cells around it? (slow reference)"""
    n = mask.shape[0]
    ring = np.zeros((n, n, 8), bool)
    # Cells around p, with p's role and the sector numbers along its horizontal and vertical edges.
    around = (((0, 0), "TL", 0, 1), ((0, -1), "TR", 3, 2), ((-1, -1), "BR", 4, 5), ((-1, 0), "BL", 7, 6))
    offsets = {"TL": (0, 0), "TR": (0, 1), "BR": (1, 1), "BL": (1, 0)}
    horizontal = {"TL": "TR", "TR": "TL", "BR": "BL", "BL": "BR"}
    vertical = {"TL": "BL", "TR": "BR", "BR": "TR", "BL": "TL"}
    for r in range(n):
        for c in range(n):
            for (dr, dc), role, sector_h, sector_v in around:
                i, j = r + dr, c + dc
                if not (0 <= i < n - 1 and 0 <= j < n - 1):
                    continue
                present = {name: bool(mask[i + o[0], j + o[1]]) for name, o in offsets.items()}
                count = sum(present.values())
                if not present[role] or count < 3:
                    continue
                if count == 4:
                    ring[r, c, sector_h] = ring[r, c, sector_v] = True
                    continue
                missing = next(name for name, here in present.items() if not here)
                # The one triangle: p is its right-angle corner (both sectors) unless the missing corner
                # is p's horizontal or vertical neighbour; then the triangle runs from p along the other
                # edge and the diagonal, covering only the sector along that other edge.
                ring[r, c, sector_h] = missing != horizontal[role]
                ring[r, c, sector_v] = missing != vertical[role]
    return ring


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.3, 0.8))
def test_sector_ring_matches_naive(seed, density):
    mask = np.random.default_rng(seed).random((7, 7)) < density
    np.testing.assert_array_equal(sector_ring(mask), sector_ring_naive(mask))


def test_remove_pinches_removes_a_corner_touch():
    # An S of pixels: the triangle of the cell north-west of (2, 2) and that of the cell south-east of it
    # meet only at (2, 2), whose covered sectors are two separate arcs.
    mask = np.zeros((5, 5), bool)
    mask[1, 1:3] = mask[2, 2] = mask[3, 2:4] = True
    ring = sector_ring(mask)
    arcs = np.sum(ring & ~np.roll(ring, 1, axis=-1), axis=-1)
    assert arcs[2, 2] == 2 and np.all(np.delete(arcs.reshape(-1), 2 * 5 + 2) <= 1)
    cleaned = remove_pinches(mask)
    assert not cleaned[2, 2] and (mask | ~cleaned).all() and cleaned.sum() == mask.sum() - 1


# -- analytic shapes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["perspective", "orthographic"])
def test_sphere_is_closed_and_outward(kind):
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=0.5)
    mould = mesh_to_mould(sphere.vertices, sphere.faces, frame_points(sphere.vertices, 96, kind=kind))
    vertices, faces = stitch_mould(mould)
    report = topology(vertices, faces)
    assert report.watertight and report.components == 1 and report.degenerate_faces == 0
    volume = signed_volume(vertices, faces)
    # Positive: faces wound outwards. Close to the sphere's: the outline is moved a quarter pixel out,
    # towards the silhouette; what is left is the pixel staircase (a 96² crop, ~60 px across).
    assert volume == pytest.approx(sphere.volume, rel=0.015)
    no_offset = signed_volume(*stitch_mould(mould, StitchConfig(outline_offset=0)))
    assert no_offset < volume  # the outline on the boundary pixels' centres lies inside the silhouette


def test_box_volume_is_exact_in_orthographic_view():
    # A box seen face-on by an orthographic camera: the stitched solid covers the box's pixels, nx x ny
    # pixel squares (the outline moved half a pixel out, corners diagonally), times the box's depth, exactly.
    n, pixel = 40, 0.01
    camera = ortho_camera(n, pixel)
    box = trimesh.creation.box(extents=(0.203, 0.151, 0.3))
    box.apply_translation((0.0021, -0.0013, 1.0))
    mould = mesh_to_mould(box.vertices, box.faces, camera)
    vertices, faces = stitch_mould(mould, StitchConfig(outline_offset=0.5))
    assert topology(vertices, faces).watertight
    rows, cols = np.nonzero(mould.mask)
    nx, ny = cols.max() - cols.min() + 1, rows.max() - rows.min() + 1
    assert mould.mask.sum() == nx * ny
    assert signed_volume(vertices, faces) == pytest.approx(nx * ny * pixel**2 * 0.3, rel=1e-5)
    on_centres = stitch_mould(mould, StitchConfig(outline_offset=0))
    assert signed_volume(*on_centres) == pytest.approx((nx - 1) * (ny - 1) * pixel**2 * 0.3, rel=1e-5)


def test_depth_jump_is_closed_by_walls_along_the_rays():
    # A small box before a large one (orthographic): the step in the visible map is a depth jump. The
    # stitched solid is the mould's (visible to hidden, so the gap between the boxes is filled): the large
    # box's slab over its pixels (outline moved half a pixel out), plus the small box's columns in front.
    # Those reach half a pixel beyond the small box's pixel centres (walls through the edge midpoints),
    # except at its four corners, where the marching-squares split cuts a diagonal wall: 1/8 pixel² less each.
    n, pixel = 48, 0.01
    camera = ortho_camera(n, pixel)
    back = trimesh.creation.box(extents=(0.40, 0.40, 0.2))
    back.apply_translation((0.0, 0.0, 1.5))  # z in [1.4, 1.6]
    front = trimesh.creation.box(extents=(0.10, 0.12, 0.1))
    front.apply_translation((0.0023, 0.0017, 1.0))  # z in [0.95, 1.05]
    scene = trimesh.util.concatenate([back, front])
    mould = mesh_to_mould(scene.vertices, scene.faces, camera)
    vertices, faces = stitch_mould(mould, StitchConfig(outline_offset=0.5))
    assert topology(vertices, faces).watertight
    near = mould.mask & (mould.visible < 1.2)
    rows, cols = np.nonzero(mould.mask)
    big = mould.mask.sum() * pixel**2 * 0.2
    near_rows, near_cols = np.nonzero(near)
    assert near.sum() == (np.ptp(near_rows) + 1) * (np.ptp(near_cols) + 1)  # a rectangle of pixels
    small = (near.sum() - 4 / 8) * pixel**2 * (1.4 - 0.95)
    assert signed_volume(vertices, faces) == pytest.approx(big + small, rel=1e-4)
    # Without jump handling the step would be bridged by slanted triangles; with it, every face is either
    # parallel to the image plane or contains the ray direction (a wall), up to round-off.
    normals = trimesh.Trimesh(vertices, faces, process=False).face_normals
    assert np.all((np.abs(normals[:, 2]) > 1 - 1e-6) | (np.abs(normals[:, 2]) < 1e-6))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    density=st.floats(0.4, 0.95),
    size=st.integers(3, 12),
    perspective=st.booleans(),
)
# Found by hypothesis: a front-only jump beside a pixel of zero thickness turned the back sheet inside out.
@example(seed=2**32 - 1, density=0.5, size=3, perspective=False)
def test_random_masks_and_depths_close(seed, density, size, perspective):
    # Any mask, any depths with hidden >= visible, steps large and small: the surface is closed, manifold
    # and outward (positive volume), one component per component of the kept mask.
    rng = np.random.default_rng(seed)
    mask = rng.random((size, size)) < density
    visible = 2 + rng.choice([0.0, 0.01, 0.3], size=(size, size)) * rng.random((size, size))
    hidden = visible + rng.choice([0.0, 0.02, 0.5], size=(size, size)) * rng.random((size, size))
    camera = Camera("perspective" if perspective else "orthographic", size, 50.0, size / 2, size / 2, np.eye(4))
    vertices, faces = stitch_maps(visible, hidden, mask, camera, StitchConfig(keep="all"))
    if len(faces) == 0:
        return
    report = topology(vertices, faces)
    assert report.watertight, report
    assert signed_volume(vertices, faces) >= -1e-12


def test_few_pixels_and_empty_masks_are_refused():
    camera = Camera("orthographic", 16, 100.0, 7.5, 7.5, np.eye(4))
    depth = np.full((16, 16), 2.0, np.float32)
    line = np.zeros((16, 16), bool)
    line[12, 2:14] = True  # a one-pixel line and a diagonal one: no 2 x 2 block with three pixels
    with pytest.raises(InputError, match="no 2 x 2 block"):
        stitch_mould(Mould(depth, depth + 0.1, line | np.eye(16, k=8, dtype=bool), camera))
    with pytest.raises(InputError, match="no person"):
        mould_to_mesh(Mould(depth, depth, np.zeros((16, 16), bool), camera), mesher="stitch")
    speck = np.zeros((16, 16), bool)
    speck[4:6, 4:6] = True
    with pytest.raises(InputError, match="too few"):
        mould_to_mesh(Mould(depth, depth + 0.1, speck, camera), mesher="stitch")


def test_anny_body_is_closed_and_close_to_the_original(anny_body):
    from mould.recon.metrics import MetricConfig, compare_meshes

    vertices, faces = anny_body
    mould = mesh_to_mould(vertices, faces, frame_points(vertices, 256))
    mesh = mould_to_mesh(mould, mesher="stitch")
    report = topology(mesh.vertices, mesh.faces)
    assert report.watertight and report.components == 1
    metrics = compare_meshes(mesh, (vertices, faces), MetricConfig(samples=30_000))
    # Measured 0.83 mm (mesh -> body) and 1.43 mm (body -> mesh) at 256²; the bar is 3 mm.
    assert metrics["p2s_a_to_b_mm"] < 3 and metrics["p2s_b_to_a_mm"] < 3
    assert metrics["iou"] > 0.95

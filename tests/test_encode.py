"""Encoding (mesh -> mould) on shapes with known answers (its symmetries: ``test_encode_symmetries.py``).

Analytic references. The meshes are tessellations, so exact answers hold where a ray meets vertices
(a UV sphere's poles, a torus's vertex rings, a box's flat faces); elsewhere a convex tessellation P with
its vertices on a smooth convex body B is bracketed, B_in ⊆ P ⊆ B (B_in: B shrunk to P's inradius), so
along every ray first_hit(B) <= visible <= first_hit(B_in) and last_hit(B_in) <= hidden <= last_hit(B).
The rays are rebuilt here from the intrinsics alone, independently of ``Camera.rays``.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import trimesh
from conftest import random_rotation
from hypothesis import given, settings
from hypothesis import strategies as st

from mould.camera import Camera, look_at, view_direction
from mould.encode import check_mesh, encode_mesh, face_normals, mesh_to_mould
from mould.framing import frame_points

GEOMETRY_EPS = 1e-6
"""Metres by which bracketing shapes are grown/shrunk: the float32 rounding of vertices (~1e-7 m at 2 m)."""
DEPTH_EPS = 2e-6
"""Metres of slack on depths: float32 ray casting at 2-5 m (~5e-7 m) with a margin."""


def centred_camera(kind: str, resolution: int, distance: float, width: float, yaw: float = 0.0) -> Camera:
    """A camera at ``distance`` from the origin on the horizon, seeing ``width`` metres across at the origin,
    with its principal point at the crop's centre (on a pixel centre when ``resolution`` is odd)."""
    eye = distance * view_direction(yaw)
    focal = resolution / width * (distance if kind == "perspective" else 1.0)
    centre = (resolution - 1) / 2
    return Camera(kind, resolution, focal, centre, centre, look_at(eye, np.zeros(3)))


# -- analytic rays and intervals -------------------------------------------------------------------------
def local_rays(camera: Camera, rotation: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel's ray in a shape's local frame (world = rotation @ local + centre).

    Returns origins, directions: (N, N, 3) float64; a direction's camera-space z is 1, so the ray
    parameter is the depth.
    """
    n = camera.resolution
    v, u = np.mgrid[:n, :n].astype(np.float64)
    x, y = (u - camera.cx) / camera.focal, (v - camera.cy) / camera.focal
    if camera.kind == "perspective":
        origins, directions = np.zeros((n, n, 3)), np.stack([x, y, np.ones_like(x)], axis=-1)
    else:
        origins, directions = np.stack([x, y, np.zeros_like(x)], axis=-1), np.broadcast_to([0.0, 0, 1], (n, n, 3))
    rotation_cam = camera.cam_to_world[:3, :3]
    origins_world = origins @ rotation_cam.T + camera.cam_to_world[:3, 3]
    return (origins_world - centre) @ rotation, directions @ rotation_cam.T @ rotation


def sphere_interval(origins, directions, radius):
    """Entry and exit parameters of rays through a sphere at the origin; (t0, t1, hit)."""
    a = np.sum(directions**2, axis=-1)
    b = 2 * np.sum(origins * directions, axis=-1)
    c = np.sum(origins**2, axis=-1) - radius**2
    disc = b**2 - 4 * a * c
    root = np.sqrt(np.maximum(disc, 0))
    return (-b - root) / (2 * a), (-b + root) / (2 * a), disc > 0


def slab_interval(origin, direction, half):
    """Parameters where a ray is within |coordinate| <= half: (t0, t1); empty when t0 > t1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (-half - origin) / direction, (half - origin) / direction
    parallel = direction == 0
    inside = np.abs(origin) <= half
    low = np.where(parallel, np.where(inside, -np.inf, np.inf), np.minimum(t1, t2))
    high = np.where(parallel, np.where(inside, np.inf, -np.inf), np.maximum(t1, t2))
    return low, high


def box_interval(origins, directions, half_extents):
    low, high = np.full(origins.shape[:-1], -np.inf), np.full(origins.shape[:-1], np.inf)
    for axis in range(3):
        a, b = slab_interval(origins[..., axis], directions[..., axis], half_extents[axis])
        low, high = np.maximum(low, a), np.minimum(high, b)
    return low, high, low < high


def cylinder_interval(origins, directions, radius, half_height):
    """A solid cylinder about the local z axis."""
    a = np.sum(directions[..., :2] ** 2, axis=-1)
    b = 2 * np.sum(origins[..., :2] * directions[..., :2], axis=-1)
    c = np.sum(origins[..., :2] ** 2, axis=-1) - radius**2
    disc = b**2 - 4 * a * c
    root = np.sqrt(np.maximum(disc, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = (-b - root) / (2 * a), (-b + root) / (2 * a)
    along_axis = a == 0
    low = np.where(along_axis, np.where(c < 0, -np.inf, np.inf), np.where(disc > 0, low, np.inf))
    high = np.where(along_axis, np.where(c < 0, np.inf, -np.inf), np.where(disc > 0, high, -np.inf))
    z_low, z_high = slab_interval(origins[..., 2], directions[..., 2], half_height)
    low, high = np.maximum(low, z_low), np.minimum(high, z_high)
    return low, high, low < high


def inradius(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Distance from the origin to the nearest face plane of a convex mesh around the origin."""
    normals = face_normals(vertices, faces)
    proper = np.linalg.norm(normals, axis=1) > 0  # a UV sphere has zero-area triangles at its poles
    return float(np.min(np.abs(np.sum(normals * vertices[faces[:, 0]], axis=1))[proper]))


class ConvexShape:
    """A tessellated convex shape with its analytic outer body and inscribed body, in a local frame."""

    def __init__(self, name: str):
        self.name = name
        if name == "sphere":
            mesh = trimesh.creation.uv_sphere(radius=0.4, count=[24, 24])
            r_in = inradius(mesh.vertices, mesh.faces)
            self.outer = lambda o, d, grow: sphere_interval(o, d, 0.4 + grow)
            self.inner = lambda o, d, grow: sphere_interval(o, d, r_in + grow)
        elif name == "box":
            extents = np.array([0.5, 0.3, 0.8])
            mesh = trimesh.creation.box(extents=extents)
            self.outer = self.inner = lambda o, d, grow: box_interval(o, d, extents / 2 + grow)
        elif name == "cylinder":
            mesh = trimesh.creation.cylinder(radius=0.25, height=0.7, sections=48)
            r_in = 0.25 * np.cos(np.pi / 48)
            self.outer = lambda o, d, grow: cylinder_interval(o, d, 0.25 + grow, 0.35 + grow)
            self.inner = lambda o, d, grow: cylinder_interval(o, d, r_in + grow, 0.35 + grow)
        else:
            raise ValueError(name)
        self.vertices, self.faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)


def check_convex(shape: ConvexShape, rotation: np.ndarray, centre: np.ndarray, camera: Camera) -> int:
    """Encode the posed shape and check the mould against the brackets; returns the pixels checked."""
    world = shape.vertices @ rotation.T + centre
    mould = mesh_to_mould(world, shape.faces, camera)
    origins, directions = local_rays(camera, rotation, centre)
    out_t0, out_t1, out_hit = shape.outer(origins, directions, GEOMETRY_EPS)
    in_t0, in_t1, in_hit = shape.inner(origins, directions, -GEOMETRY_EPS)
    assert not np.any(mould.mask & ~out_hit), "a ray that misses the outer body hit the mesh"
    assert np.all(mould.mask[in_hit]), "a ray through the inscribed body missed the mesh"
    assert in_hit.sum() >= 20, "the shape is too small in the crop for the test to mean anything"
    vis, hid = mould.visible[in_hit], mould.hidden[in_hit]
    assert np.all(vis >= out_t0[in_hit] - DEPTH_EPS) and np.all(vis <= in_t0[in_hit] + DEPTH_EPS)
    assert np.all(hid >= in_t1[in_hit] - DEPTH_EPS) and np.all(hid <= out_t1[in_hit] + DEPTH_EPS)
    return int(in_hit.sum())


# -- spheres, boxes, cylinders -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["perspective", "orthographic"])
def test_sphere_centre_depths(kind):
    # A UV sphere has vertices at its poles; an odd crop puts a pixel centre on the optical axis, which
    # passes through both poles, so the hits are exact up to float32 round-off (~3e-7 m at 3 m).
    radius, distance = 0.5, 2.5
    sphere = trimesh.creation.uv_sphere(radius=radius, count=[64, 64])  # poles on z
    camera = centred_camera(kind, 255, distance, 1.3, yaw=0.0)  # on +Z, looking along -Z
    mould = mesh_to_mould(sphere.vertices, sphere.faces, camera)
    centre = 127
    assert abs(mould.visible[centre, centre] - (distance - radius)) < 1e-5
    assert abs(mould.hidden[centre, centre] - (distance + radius)) < 1e-5
    assert not mould.mask[0, 0] and not mould.mask[-1, -1]


@pytest.mark.parametrize("kind", ["perspective", "orthographic"])
@pytest.mark.parametrize("name", ["sphere", "box", "cylinder"])
def test_convex_shapes_against_analytic_brackets(kind, name):
    shape = ConvexShape(name)
    camera = centred_camera(kind, 65, 3.0, 1.2, yaw=20.0)
    check_convex(shape, random_rotation(np.random.default_rng(1)), np.array([0.05, -0.02, 0.03]), camera)


def test_box_depths_are_exact():
    # Flat faces: the front face of an axis-aligned box is at d - h/2 on every pixel, whatever the camera.
    extents = np.array([0.6, 0.4, 0.5])
    box = trimesh.creation.box(extents=extents)
    for kind in ("perspective", "orthographic"):
        camera = centred_camera(kind, 64, 3.0, 1.0)
        mould = mesh_to_mould(box.vertices, box.faces, camera)
        assert np.all(np.abs(mould.visible[mould.mask] - (3.0 - 0.25)) < DEPTH_EPS)
        if kind == "orthographic":  # parallel rays all leave through the back face
            assert np.all(np.abs(mould.hidden[mould.mask] - (3.0 + 0.25)) < DEPTH_EPS)
            u = (np.arange(64) - camera.cx) / camera.focal
            inside = np.abs(u) < 0.3
            expected = (np.abs(u)[:, None] < 0.2) & inside[None, :]  # rows: y, columns: x
            assert np.array_equal(mould.mask, expected)


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(["sphere", "box", "cylinder"]),
    kind=st.sampled_from(["perspective", "orthographic"]),
    seed=st.integers(0, 2**32 - 1),
    yaw=st.floats(-180, 180),
    elevation=st.floats(-70, 70),
    resolution=st.integers(24, 80),
)
def test_convex_shapes_any_pose(name, kind, seed, yaw, elevation, resolution):
    shape = ConvexShape(name)
    rotation = random_rotation(np.random.default_rng(seed))
    centre = np.random.default_rng(seed).uniform(-2, 2, 3)
    world = shape.vertices @ rotation.T + centre
    camera = frame_points(world, resolution, kind=kind, yaw_deg=yaw, elevation_deg=elevation)
    check_convex(shape, rotation, centre, camera)


# -- the torus: more than two layers -------------------------------------------------------------------------
MAJOR, MINOR = 0.5, 0.15


def edge_on_torus(sections: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A torus in the world plane y = 0 (axis +Y), seen edge-on from +Z.

    Returns:
        vertices, faces, and rings: (2, sections, 2) the (x, z) corners of the outer and the inner equator
        polygons, which are the mesh's exact cross-section by the plane y = 0 (the equator rings' edges
        are mesh edges lying in that plane; trimesh starts both angles at 0).
    """
    torus = trimesh.creation.torus(MAJOR, MINOR, major_sections=sections, minor_sections=32)
    to_world = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # local axis z -> world y
    vertices = np.asarray(torus.vertices) @ to_world.T
    angle = 2 * np.pi * np.arange(sections) / sections
    rings = [
        np.column_stack([rho * np.cos(angle), -rho * np.sin(angle)]) for rho in (MAJOR + MINOR, MAJOR - MINOR)
    ]
    return vertices, np.asarray(torus.faces), np.stack(rings)


def polygon_hits(origin: np.ndarray, direction: np.ndarray, polygon: np.ndarray) -> list[float]:
    """Parameters t where the 2D ray origin + t direction crosses the closed polygon's edges."""
    hits = []
    for a, b in zip(polygon, np.roll(polygon, -1, axis=0)):
        matrix = np.column_stack([direction, a - b])
        if abs(np.linalg.det(matrix)) < 1e-15:
            continue
        t, s = np.linalg.solve(matrix, a - origin)
        if -1e-12 <= s <= 1 + 1e-12:
            hits.append(float(t))
    return sorted(set(np.round(hits, 12)))


@pytest.mark.parametrize("kind", ["perspective", "orthographic"])
def test_torus_keeps_first_and_last_of_four_layers(kind):
    vertices, faces, rings = edge_on_torus()
    distance, n = 3.0, 129
    camera = centred_camera(kind, n, distance, 1.6)
    mould = mesh_to_mould(vertices, faces, camera)
    row = (n - 1) // 2  # the row of rays in the torus's plane y = 0
    # The centre ray passes through four vertices (64 major sections: the rings have vertices at +-Z).
    layers = [
        distance - MAJOR - MINOR,
        distance - MAJOR + MINOR,
        distance + MAJOR - MINOR,
        distance + MAJOR + MINOR,
    ]
    assert abs(mould.visible[row, row] - layers[0]) < 1e-5
    assert abs(mould.hidden[row, row] - layers[-1]) < 1e-5
    # Along the whole row: the mesh's cross-section is the two ring polygons; first and last crossing.
    four_layers = 0
    for u in range(n):
        x = (u - camera.cx) / camera.focal
        if kind == "perspective":  # 2D (x, z) of the plane; camera at z = distance looking towards -z
            origin, direction = np.array([0.0, distance]), np.array([x, -1.0])
        else:
            origin, direction = np.array([x, distance]), np.array([0.0, -1.0])
        hits = sorted(polygon_hits(origin, direction, rings[0]) + polygon_hits(origin, direction, rings[1]))
        if len(hits) == 0:
            assert not mould.mask[row, u]
            continue
        if hits[-1] - hits[0] < 1e-3:  # a grazing ray: a hit or a miss are both right
            continue
        four_layers += len(hits) == 4
        if u == row:
            np.testing.assert_allclose(hits, layers, atol=1e-12)  # the centre ray: four vertices
        assert mould.mask[row, u]
        # Near the silhouette the rings' edges are almost parallel to the rays, so a float32 vertex
        # rounding of ~3e-8 m moves the crossing along the ray by up to ~1e-5 m.
        assert abs(mould.visible[row, u] - hits[0]) < 2e-5, u
        assert abs(mould.hidden[row, u] - hits[-1]) < 2e-5, u
    assert four_layers > 20  # the test saw many rays with four layers


def test_torus_seen_face_on_has_a_hole():
    vertices, faces, _ = edge_on_torus()
    camera = Camera("orthographic", 65, 40.0, 32.0, 32.0, look_at(np.array([0, 3.0, 0]), np.zeros(3), [0, 0, 1]))
    mould = mesh_to_mould(vertices, faces, camera)
    assert not mould.mask[32, 32]  # through the hole
    radius_px = MAJOR * 40.0
    assert mould.mask[32, 32 + round(radius_px)]
    # the tube's top and bottom: 3 - MINOR and 3 + MINOR on its centre circle
    assert abs(mould.visible[32, 32 + 20] - (3 - MINOR)) < 1e-4
    assert abs(mould.hidden[32, 32 + 20] - (3 + MINOR)) < 1e-4


# -- normals, open meshes, awkward framing ---------------------------------------------------------------
@pytest.mark.parametrize("kind", ["perspective", "orthographic"])
def test_ground_truth_normals_are_oriented_by_the_ray(kind):
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    camera = centred_camera(kind, 63, 3.0, 1.3, yaw=30)
    encoding = encode_mesh(sphere.vertices, sphere.faces, camera, normals=True)
    flipped = encode_mesh(sphere.vertices, sphere.faces[:, ::-1], camera, normals=True)
    mould, mask = encoding.mould, encoding.mould.mask
    view = camera.view_rays_camera
    assert np.all(np.sum(mould.visible_normals * view, axis=-1)[mask] < 0)  # towards the camera
    assert np.all(np.sum(mould.hidden_normals * view, axis=-1)[mask] > 0)  # away from it
    np.testing.assert_allclose(np.linalg.norm(mould.visible_normals[mask], axis=-1), 1, atol=1e-6)
    assert np.all(mould.visible_normals[~mask] == 0)
    np.testing.assert_array_equal(flipped.mould.visible_normals, mould.visible_normals)  # winding ignored
    np.testing.assert_array_equal(flipped.mould.hidden_normals, mould.hidden_normals)
    # each is the normal of the face that was hit
    rows, cols = np.nonzero(mask)
    per_face = face_normals(np.asarray(sphere.vertices), np.asarray(sphere.faces)) @ camera.world_to_cam[:3, :3].T
    hit = per_face[encoding.visible_faces[rows, cols]]
    np.testing.assert_allclose(np.abs(np.sum(hit * mould.visible_normals[rows, cols], axis=1)), 1, atol=1e-6)
    assert np.all(encoding.visible_faces[~mask] == -1) and np.all(encoding.hidden_faces[~mask] == -1)


def test_hit_points_lie_on_the_hit_faces():
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    camera = centred_camera("perspective", 48, 2.5, 1.3, yaw=-40)
    encoding = encode_mesh(sphere.vertices, sphere.faces, camera)
    rows, cols = np.nonzero(encoding.mould.mask)
    normals = face_normals(np.asarray(sphere.vertices), np.asarray(sphere.faces))
    for depth, faces in (
        (encoding.mould.visible, encoding.visible_faces),
        (encoding.mould.hidden, encoding.hidden_faces),
    ):
        points = camera.to_world(camera.backproject(cols, rows, depth[rows, cols]))
        ids = faces[rows, cols]
        offset = np.sum((points - sphere.vertices[sphere.faces[ids, 0]]) * normals[ids], axis=1)
        assert np.abs(offset).max() < 1e-5


def test_open_sheet_has_zero_thickness():
    quad = np.array([[-0.3, -0.2, 0], [0.3, -0.2, 0], [0.3, 0.2, 0], [-0.3, 0.2, 0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    camera = centred_camera("orthographic", 32, 2.0, 1.0)
    mould = mesh_to_mould(quad, faces, camera)
    assert mould.mask.sum() > 100
    np.testing.assert_array_equal(mould.hidden[mould.mask], mould.visible[mould.mask])
    assert np.allclose(mould.visible[mould.mask], 2.0, atol=DEPTH_EPS)


def test_mesh_partly_outside_the_frame_is_reported(caplog):
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    inside = encode_mesh(sphere.vertices, sphere.faces, centred_camera("perspective", 32, 3.0, 1.5))
    assert not inside.touches_border
    with caplog.at_level(logging.WARNING, logger="mould.encode"):
        cut = encode_mesh(sphere.vertices, sphere.faces, centred_camera("perspective", 32, 3.0, 0.6))
    assert cut.touches_border and cut.mould.mask[0].any()
    assert "border" in caplog.text


def test_mesh_behind_the_camera_is_not_seen():
    sphere = trimesh.creation.icosphere(subdivisions=1, radius=0.5)
    camera = Camera("perspective", 16, 20.0, 7.5, 7.5, look_at(np.array([0, 0, 3.0]), np.array([0, 0, 6.0])))
    mould = mesh_to_mould(sphere.vertices, sphere.faces, camera)
    assert not mould.mask.any()


def test_image_is_stored():
    sphere = trimesh.creation.icosphere(subdivisions=1, radius=0.5)
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    camera = centred_camera("perspective", 16, 3.0, 1.5)
    assert np.array_equal(encode_mesh(sphere.vertices, sphere.faces, camera, image=image).mould.image, image)
    with pytest.raises(ValueError, match="image"):
        encode_mesh(sphere.vertices, sphere.faces, camera, image=image[:8])


@pytest.mark.parametrize(
    "vertices, faces, match",
    [
        (np.zeros((3, 3)), np.zeros((0, 3), int), "no faces"),
        (np.zeros((3, 3)), np.array([[0, 1, 3]]), "faces: indices"),
        (np.zeros((3, 3)), np.array([[0, 1, -1]]), "faces: indices"),
        (np.array([[0, 0, np.nan], [1, 0, 0], [0, 1, 0]]), np.array([[0, 1, 2]]), "vertices"),
        (np.zeros((3, 2)), np.array([[0, 1, 2]]), "vertices"),
        (np.zeros((3, 3)), np.array([[0, 1]]), "faces"),
        (np.zeros((3, 3)), np.array([[0.0, 1, 2]]), "faces"),
    ],
)
def test_bad_meshes_are_rejected(vertices, faces, match):
    with pytest.raises(ValueError, match=match):
        check_mesh(vertices, faces)
    with pytest.raises(ValueError, match=match):
        encode_mesh(vertices, faces, centred_camera("perspective", 16, 3.0, 1.0))


def test_mesh_outside_the_crop_or_around_the_camera():
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    camera = centred_camera("orthographic", 32, 3.0, 1.5)
    beside = mesh_to_mould(np.asarray(sphere.vertices) + [5.0, 0, 0], sphere.faces, camera)
    assert not beside.mask.any()
    # a pinhole inside a sphere sees it all around: every ray leaves through the sphere, once
    inside = Camera("perspective", 16, 8.0, 7.5, 7.5, look_at(np.zeros(3), np.array([0, 0, -1.0])))
    mould = mesh_to_mould(sphere.vertices, sphere.faces, inside)
    assert mould.mask.all()
    np.testing.assert_array_equal(mould.hidden, mould.visible)
    rays = inside.unit_rays(*inside.pixel_grid())
    np.testing.assert_allclose(mould.visible / rays[..., 2], 0.5, atol=0.02)  # distance to the sphere

"""Cameras: projection round trips, look-at axes, serialisation and bad parameters."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import random_rotation
from hypothesis import given, settings
from hypothesis import strategies as st

from mould.camera import Camera, look_at, view_direction


def random_camera(seed: int, kind: str) -> Camera:
    rng = np.random.default_rng(seed)
    matrix = np.eye(4)
    matrix[:3, :3] = random_rotation(rng)
    matrix[:3, 3] = rng.uniform(-5, 5, 3)
    resolution = int(rng.integers(8, 600))
    focal = float(rng.uniform(50, 2000)) if kind == "perspective" else float(rng.uniform(10, 500))
    cx, cy = rng.uniform(-0.2, 1.2, 2) * resolution
    return Camera(kind, resolution, focal, float(cx), float(cy), matrix)


# -- projection ------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["perspective", "orthographic"]))
def test_project_backproject_round_trip(seed, kind):
    camera = random_camera(seed, kind)
    rng = np.random.default_rng(seed + 1)
    camera_points = np.column_stack([rng.uniform(-2, 2, (50, 2)), rng.uniform(0.1, 10, 50)])
    world = camera.to_world(camera_points)
    uv, depth = camera.project(world)
    np.testing.assert_allclose(depth, camera_points[:, 2], rtol=0, atol=1e-12)
    back = camera.to_world(camera.backproject(uv[:, 0], uv[:, 1], depth))
    # float64 throughout: the error is a few ulps of the coordinates (|x| <= ~15 m).
    np.testing.assert_allclose(back, world, rtol=0, atol=1e-11)
    # and the other way: pixel -> point -> the same pixel
    u, v = rng.uniform(0, camera.resolution, (2, 30))
    z = rng.uniform(0.2, 8, 30)
    uv2, z2 = camera.project(camera.to_world(camera.backproject(u, v, z)))
    np.testing.assert_allclose(uv2, np.column_stack([u, v]), rtol=0, atol=1e-8)
    np.testing.assert_allclose(z2, z, rtol=0, atol=1e-12)


def test_pinhole_projection_formula():
    camera = Camera("perspective", 100, 200.0, 40.0, 60.0, np.eye(4))
    uv, depth = camera.project(np.array([[0.5, -0.25, 2.0]]))
    np.testing.assert_allclose(uv, [[40 + 200 * 0.25, 60 - 200 * 0.125]])
    np.testing.assert_allclose(depth, [2.0])
    ortho = Camera("orthographic", 100, 200.0, 40.0, 60.0, np.eye(4))
    uv, depth = ortho.project(np.array([[0.5, -0.25, 2.0]]))
    np.testing.assert_allclose(uv, [[40 + 100, 60 - 50]])
    np.testing.assert_allclose(ortho.intrinsics, [[200, 0, 40], [0, 200, 60], [0, 0, 1]])


@pytest.mark.parametrize("kind", ["perspective", "orthographic"])
def test_rays_pass_through_pixel_centres_with_depth_as_parameter(kind):
    camera = random_camera(7, kind)
    origins, directions = camera.rays()
    n = camera.resolution
    assert origins.shape == directions.shape == (n, n, 3)
    rng = np.random.default_rng(3)
    t = rng.uniform(0.5, 5, (n, n, 1))
    uv, depth = camera.project((origins + t * directions).reshape(-1, 3))
    u, v = camera.pixel_grid()
    np.testing.assert_allclose(depth, t.ravel(), rtol=1e-12)
    np.testing.assert_allclose(uv, np.column_stack([u.ravel(), v.ravel()]), atol=1e-8)
    view = camera.view_rays_camera
    np.testing.assert_allclose(np.linalg.norm(view, axis=-1), 1, atol=1e-6)
    direction_cam = directions @ camera.cam_to_world[:3, :3]  # back to the camera frame
    unit = direction_cam / np.linalg.norm(direction_cam, axis=-1, keepdims=True)
    np.testing.assert_allclose(view, unit, atol=1e-6)
    assert not view.flags.writeable


def test_world_to_cam_inverts_cam_to_world():
    camera = random_camera(11, "perspective")
    np.testing.assert_allclose(camera.world_to_cam @ camera.cam_to_world, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(camera.centre, camera.cam_to_world[:3, 3])
    with pytest.raises(ValueError):
        camera.cam_to_world[0, 0] = 2.0  # frozen: the matrix is read-only


# -- look_at and view_direction ----------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    eye=st.lists(st.floats(-10, 10), min_size=3, max_size=3),
    target=st.lists(st.floats(-10, 10), min_size=3, max_size=3),
)
def test_look_at_axes(eye, target):
    eye, target = np.array(eye), np.array(target)
    forward = target - eye
    norm = np.linalg.norm(forward)
    if norm < 1e-3 or np.linalg.norm(np.cross(forward / norm, [0, 1, 0])) < 1e-3:
        return  # look_at rejects these; tested below
    matrix = look_at(eye, target)
    rotation = matrix[:3, :3]
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    x, y, z = rotation.T
    np.testing.assert_allclose(z, forward / norm, atol=1e-12)  # z forward, at the target
    assert abs(x[1]) < 1e-12  # x right: horizontal
    assert y[1] < 0  # y down: against world up
    np.testing.assert_allclose(matrix[:3, 3], eye)
    camera = Camera("perspective", 64, 100.0, 31.5, 31.5, matrix)
    uv, _ = camera.project(target[None])
    np.testing.assert_allclose(uv, [[31.5, 31.5]], atol=1e-9)  # the target is on the optical axis
    uv, _ = camera.project(np.array([target + [0, 0.01 * norm, 0], target + 0.01 * norm * x]))
    assert uv[0, 1] < 31.5  # a point above the target is higher in the image (smaller row)
    assert uv[1, 0] > 31.5  # a point to the camera's right is further right (larger column)


def test_look_at_from_front_matches_gltf_convention():
    # From +Z towards -Z with +Y up: camera x = world +X, camera y (down) = world -Y, camera z = world -Z.
    matrix = look_at(np.array([0, 0, 3.0]), np.zeros(3))
    np.testing.assert_allclose(matrix[:3, :3], [[1, 0, 0], [0, -1, 0], [0, 0, -1]], atol=1e-15)


def test_look_at_rejects_degenerate_input():
    with pytest.raises(ValueError, match="coincide"):
        look_at(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="parallel"):
        look_at(np.array([0, 5.0, 0]), np.zeros(3))


def test_view_direction():
    np.testing.assert_allclose(view_direction(0, 0), [0, 0, 1], atol=1e-15)
    np.testing.assert_allclose(view_direction(90, 0), [1, 0, 0], atol=1e-15)
    np.testing.assert_allclose(view_direction(180, 0), [0, 0, -1], atol=1e-15)
    np.testing.assert_allclose(view_direction(0, 90), [0, 1, 0], atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(view_direction(33, -21)), 1)


# -- serialisation and validation -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["perspective", "orthographic"])
def test_to_dict_from_dict_round_trip_exact(kind):
    camera = random_camera(21, kind)
    again = Camera.from_dict(json.loads(json.dumps(camera.to_dict())))
    assert again == camera
    assert np.array_equal(again.cam_to_world, camera.cam_to_world)
    assert again != Camera(kind, camera.resolution, camera.focal * 2, camera.cx, camera.cy, camera.cam_to_world)


def _rigid(**changes) -> np.ndarray:
    matrix = look_at(np.array([1.0, 2, 3]), np.zeros(3))
    for index, value in changes.items():
        matrix[tuple(int(c) for c in index[1:])] = value
    return matrix


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "fisheye"}, "kind"),
        ({"resolution": 0}, "resolution"),
        ({"resolution": -5}, "resolution"),
        ({"resolution": 2.5}, "resolution"),
        ({"resolution": True}, "resolution"),
        ({"focal": 0.0}, "focal"),
        ({"focal": -10.0}, "focal"),
        ({"focal": math.nan}, "focal"),
        ({"focal": math.inf}, "focal"),
        ({"cx": math.nan}, "cx"),
        ({"cy": -math.inf}, "cy"),
        ({"cam_to_world": np.eye(3)}, "cam_to_world"),
        ({"cam_to_world": np.eye(4) * 2}, "cam_to_world"),
        ({"cam_to_world": np.diag([1.0, 1, -1, 1])}, "cam_to_world"),  # a reflection
        ({"cam_to_world": _rigid(m01=0.3)}, "cam_to_world"),  # a shear
        ({"cam_to_world": _rigid(m30=1.0)}, "cam_to_world"),  # not an affine bottom row
        ({"cam_to_world": _rigid(m03=np.nan)}, "cam_to_world"),
        ({"cam_to_world": np.eye(4, dtype=int)}, "cam_to_world"),
    ],
)
def test_bad_camera_parameters_rejected(kwargs, match):
    args = {"kind": "perspective", "resolution": 64, "focal": 100.0, "cx": 31.5, "cy": 31.5}
    args["cam_to_world"] = np.eye(4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Camera(**args)


def test_camera_accepts_numpy_scalars():
    matrix = np.eye(4, dtype=np.float32)
    camera = Camera("orthographic", np.int64(32), np.float32(10), np.float64(15.5), 15, matrix)
    assert type(camera.resolution) is int and type(camera.focal) is float and type(camera.cy) is float
    assert camera.cam_to_world.dtype == np.float64

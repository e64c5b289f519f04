"""Symmetries of encoding (mesh -> mould): scaling the scene, moving mesh and camera together, and the half
turn that swaps the visible and hidden maps, on tori (four layers along some rays) and an anny body."""

from __future__ import annotations

import numpy as np
import trimesh
from conftest import random_rotation
from hypothesis import given, settings
from hypothesis import strategies as st

from mould.camera import Camera, look_at, view_direction
from mould.container import Mould
from mould.decode import boundary_pixels
from mould.encode import mesh_to_mould
from mould.framing import frame_points

MAJOR, MINOR = 0.5, 0.15
"""The torus's radii, metres."""


# -- symmetries -----------------------------------------------------------------------------------------
def posed_torus(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A torus (four layers along some rays) in a random orientation and place."""
    torus = trimesh.creation.torus(MAJOR, MINOR, major_sections=48, minor_sections=24)
    rng = np.random.default_rng(seed)
    return np.asarray(torus.vertices) @ random_rotation(np.random.default_rng(seed)).T + rng.uniform(
        -1, 1, 3
    ), np.asarray(torus.faces)


def fragile_pixels(mould: Mould) -> np.ndarray:
    """(N, N) bool: pixels whose hits float32 round-off may move far. A ray that grazes the surface
    (|cos| < 0.1 between its ray and the hit's normal; needs the mould's normals) moves its hit by
    round-off / |cos|, and one that grazes a silhouette (the mask's boundary, or a rim in front of a
    farther surface: a depth jump to a neighbour) may hit or miss, or hit another layer."""
    fragile = boundary_pixels(mould.mask)
    view = mould.camera.view_rays_camera
    for depth, normals in ((mould.visible, mould.visible_normals), (mould.hidden, mould.hidden_normals)):
        for axis in (0, 1):
            jump = np.abs(np.diff(depth, axis=axis)) > 0.02
            fragile |= np.pad(jump, [(0, 1), (0, 0)] if axis == 0 else [(0, 0), (0, 1)])
            fragile |= np.pad(jump, [(1, 0), (0, 0)] if axis == 0 else [(0, 0), (1, 0)])
        fragile |= np.abs(np.sum(normals * view, axis=-1)) < 0.1
    return fragile & mould.mask


def assert_moulds_agree(a_mask, b_mask, pairs, fragile: np.ndarray, atol: float) -> None:
    """Masks equal but for a few silhouette-grazing pixels; each (expected, actual) depth map pair
    within ``atol`` but for a few fragile pixels (see :func:`fragile_pixels`)."""
    differ = a_mask != b_mask
    assert np.all(differ <= (boundary_pixels(a_mask) | boundary_pixels(b_mask))), "masks differ inside"
    assert differ.sum() <= max(2, 0.01 * a_mask.sum()), f"{differ.sum()} of {a_mask.sum()} mask pixels differ"
    both = a_mask & b_mask
    off = np.zeros_like(both)
    for expected, actual in pairs:
        off |= both & (np.abs(expected - actual) > atol)
    assert np.all(off <= fragile), f"depths differ by > {atol} m on {np.sum(off & ~fragile)} steady pixels"
    assert off.sum() <= max(2, 0.01 * both.sum()), f"{off.sum()} of {both.sum()} pixels differ"
    assert both.sum() >= 10  # the figure is seen


@settings(max_examples=20, deadline=None)
@given(
    kind=st.sampled_from(["perspective", "orthographic"]),
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(0.2, 5.0),
    yaw=st.floats(-180, 180),
)
def test_scaling_the_scene_scales_the_depths(kind, seed, scale, yaw):
    # Scaling mesh and camera position together (the mesh about the camera centre, for a pinhole; an
    # orthographic camera also sees 1/scale as many pixels per metre) leaves the rays' pixels unchanged.
    vertices, faces = posed_torus(seed)
    camera = frame_points(vertices, 64, kind=kind, yaw_deg=yaw)
    matrix = camera.cam_to_world.copy()
    matrix[:3, 3] *= scale
    focal = camera.focal if kind == "perspective" else camera.focal / scale
    scaled = Camera(kind, 64, focal, camera.cx, camera.cy, matrix)
    a = mesh_to_mould(vertices, faces, camera, normals=True)
    b = mesh_to_mould(vertices * scale, faces, scaled, normals=True)
    # float32 hits: ~1e-7 relative per cast, so 1e-5 of the depth away from fragile pixels
    pairs = [(scale * a.visible, b.visible), (scale * a.hidden, b.hidden)]
    atol = 1e-5 * scale * float(a.hidden.max())
    assert_moulds_agree(a.mask, b.mask, pairs, fragile_pixels(a) | fragile_pixels(b), atol)


@settings(max_examples=15, deadline=None)
@given(
    kind=st.sampled_from(["perspective", "orthographic"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_moving_mesh_and_camera_together_changes_nothing(kind, seed):
    vertices, faces = posed_torus(seed)
    camera = frame_points(vertices, 48, kind=kind, yaw_deg=30)
    motion = np.eye(4)
    motion[:3, :3] = random_rotation(np.random.default_rng(seed + 1))
    motion[:3, 3] = np.random.default_rng(seed).uniform(-3, 3, 3)
    moved = Camera(kind, 48, camera.focal, camera.cx, camera.cy, motion @ camera.cam_to_world)
    a = mesh_to_mould(vertices, faces, camera, normals=True)
    b = mesh_to_mould(vertices @ motion[:3, :3].T + motion[:3, 3], faces, moved, normals=True)
    pairs = [(a.visible, b.visible), (a.hidden, b.hidden)]
    assert_moulds_agree(a.mask, b.mask, pairs, fragile_pixels(a) | fragile_pixels(b), 1e-5 * float(a.hidden.max()))


def turned_half_way(camera: Camera, pivot: np.ndarray) -> Camera:
    """The camera turned by 180 degrees about the vertical axis (world +Y) through ``pivot``."""
    turn = np.diag([-1.0, 1.0, -1.0, 1.0])
    turn[:3, 3] = pivot - turn[:3, :3] @ pivot
    return Camera(camera.kind, camera.resolution, camera.focal, camera.cx, camera.cy, turn @ camera.cam_to_world)


def check_half_turn_swaps_maps(vertices: np.ndarray, faces: np.ndarray, yaw: float, resolution: int) -> None:
    """Orthographic camera C on the horizon looking at the box centre b from distance D, principal point
    at the crop's centre; C' is C turned by 180 degrees about the vertical axis through b (equivalently:
    the mesh turned, C kept). In C's frame the turn maps (x, y, z) -> (-x, y, 2D - z): pixel column u goes
    to N - 1 - u, and depth z to 2D - z, which reverses the order of the hits along every (parallel) ray:
        visible'[:, ::-1] = 2D - hidden,  hidden'[:, ::-1] = 2D - visible,  mask'[:, ::-1] = mask.
    """
    pivot = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    extent = float(np.max(np.ptp(vertices, axis=0)))
    distance = extent + 1.0
    centre = (resolution - 1) / 2
    camera = Camera(
        "orthographic",
        resolution,
        0.8 * resolution / (1.5 * extent),
        centre,
        centre,
        look_at(pivot + distance * view_direction(yaw), pivot),
    )
    a = mesh_to_mould(vertices, faces, camera, normals=True)
    b = mesh_to_mould(vertices, faces, turned_half_way(camera, pivot), normals=True)
    flip = (slice(None), slice(None, None, -1))
    pairs = [(2 * distance - a.hidden, b.visible[flip]), (2 * distance - a.visible, b.hidden[flip])]
    # float32 depths of 2-5 m: ~3e-7 m each, so 2e-5 m away from fragile pixels
    assert_moulds_agree(a.mask, b.mask[flip], pairs, fragile_pixels(a) | fragile_pixels(b)[flip], 2e-5)
    assert np.any(a.hidden - a.visible > 0.05)  # the swap is not trivially symmetric


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), yaw=st.floats(-180, 180), resolution=st.integers(16, 96))
def test_half_turn_swaps_visible_and_hidden(seed, yaw, resolution):
    check_half_turn_swaps_maps(*posed_torus(seed), yaw, resolution)


def test_half_turn_swaps_visible_and_hidden_on_a_body(anny_body):
    for yaw in (0.0, 90.0, 33.0):
        check_half_turn_swaps_maps(*anny_body, yaw, 128)

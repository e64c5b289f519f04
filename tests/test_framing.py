"""Framing and the crop geometry: the framing rule, and crops whose pixels show what their camera projects."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mould.camera import Camera, view_direction
from mould.framing import (
    CropWindow,
    SquareBox,
    crop_image,
    frame_points,
    sample_frame,
    square_box,
    whole_image_box,
)


# -- the framing rule ------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["perspective", "orthographic"]),
    yaw=st.floats(-180, 180),
    elevation=st.floats(-60, 60),
    margin=st.floats(0, 0.45),
    resolution=st.integers(8, 1024),
)
def test_frame_points_fits_the_points_with_the_margin(seed, kind, yaw, elevation, margin, resolution):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(200, 3)) * rng.uniform(0.05, 2, 3) + rng.uniform(-3, 3, 3)
    camera = frame_points(points, resolution, kind=kind, yaw_deg=yaw, elevation_deg=elevation, margin=margin)
    uv, depth = camera.project(points)
    assert np.all(depth > 0)
    low, high = margin * resolution - 0.5, resolution - 0.5 - margin * resolution
    slack = 1e-6 * resolution
    assert uv.min() >= low - slack and uv.max() <= high + slack
    # tight along the longer axis, and centred on both
    extent = uv.max(axis=0) - uv.min(axis=0)
    longer = int(np.argmax(extent))
    assert uv[:, longer].min() == pytest.approx(low, abs=slack)
    assert uv[:, longer].max() == pytest.approx(high, abs=slack)
    np.testing.assert_allclose((uv.max(axis=0) + uv.min(axis=0)) / 2, (resolution - 1) / 2, atol=slack)
    # the camera looks at the bounding-box centre from the asked direction
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    towards = camera.centre - centre
    np.testing.assert_allclose(towards / np.linalg.norm(towards), view_direction(yaw, elevation), atol=1e-9)


def test_frame_points_box_scale_and_shift():
    rng = np.random.default_rng(5)
    points = rng.normal(size=(100, 3))
    n = 200
    plain = frame_points(points, n, kind="orthographic")
    zoomed = frame_points(points, n, kind="orthographic", box_scale=2.0, box_shift=(0.1, -0.05))
    uv_plain, _ = plain.project(points)
    uv, _ = zoomed.project(points)
    np.testing.assert_allclose(np.ptp(uv, axis=0), np.ptp(uv_plain, axis=0) / 2, rtol=1e-9)
    # the square moves right/up by the shift, so the figure moves left/down in the crop
    centre = (uv.max(axis=0) + uv.min(axis=0)) / 2
    np.testing.assert_allclose(centre, [(n - 1) / 2 - 0.1 * n, (n - 1) / 2 + 0.05 * n], atol=1e-9)


def test_frame_points_perspective_distance():
    points = np.array([[-0.3, 0, -0.1], [0.3, 1.7, 0.1]])
    camera = frame_points(points, 64, distance=5.0)
    np.testing.assert_allclose(camera.centre, [0, 0.85, 5.0], atol=1e-12)
    default = frame_points(points, 64)
    assert np.linalg.norm(default.centre - [0, 0.85, 0]) == pytest.approx(2.5 * 1.7)


def test_frame_points_rejects_bad_input():
    with pytest.raises(ValueError, match="points"):
        frame_points(np.zeros((0, 3)), 64)
    with pytest.raises(ValueError, match="coincide"):
        frame_points(np.ones((5, 3)), 64)
    with pytest.raises(ValueError, match="points"):
        frame_points(np.array([[0, 0, np.nan], [1, 1, 1]]), 64)
    with pytest.raises(ValueError, match="points"):
        frame_points(np.zeros((4, 2)), 64)
    with pytest.raises(ValueError, match="distance"):
        frame_points(np.array([[0, 0, -2.0], [0, 1, 2.0]]), 64, distance=1.0)
    with pytest.raises(ValueError, match="margin"):
        frame_points(np.eye(3), 64, margin=0.5)


def test_square_box():
    box = square_box(0, 4, 1, 2, margin=0.25)
    assert (box.u, box.v, box.side) == (2, 1.5, 8)
    with pytest.raises(ValueError, match="margin"):
        square_box(0, 1, 0, 1, margin=-0.1)
    with pytest.raises(ValueError, match="empty"):
        square_box(1, 1, 2, 2)


# -- the crop geometry -----------------------------------------------------------------------------------
def _gradient_photo(height: int, width: int, slope: float) -> np.ndarray:
    """(H, W, 3) uint8: red = slope x column, green = slope x row, so a bilinear sample reads its position."""
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[..., 0] = np.round(slope * np.arange(width))[None, :]
    rgb[..., 1] = np.round(slope * np.arange(height))[:, None]
    return rgb


WINDOWS = [
    SquareBox(30.0, 25.0, 32.0),  # 2 photo pixels per crop pixel
    SquareBox(29.3, 24.8, 12.5),  # zoomed in, off the pixel grid
    SquareBox(31.0, 26.0, 47.0),  # an odd side
]


@pytest.mark.parametrize("box", WINDOWS)
def test_a_projected_point_lands_on_the_pixel_that_shows_it(box):
    # A photo camera, a crop window and its camera. A 3D point seen by crop pixel (j, i) (back-projected
    # through the crop camera) projects into the photo at (x, y); the crop must have sampled the photo
    # there. The photo is a gradient, so each sampled pixel says where it was read.
    height, width, focal, slope = 50, 60, 80.0, 4.0
    photo = Camera("perspective", 1, focal, (width - 1) / 2, (height - 1) / 2, np.eye(4))
    window = CropWindow.square(box, 16)
    camera = window.camera(focal, focal, photo.cx, photo.cy)
    rgb = _gradient_photo(height, width, slope)
    by_pillow = crop_image(rgb, window).astype(np.float64)
    by_scipy = sample_frame(rgb, window, order=1)
    for j, i in [(0, 0), (15, 15), (3, 11), (8, 7)]:
        point = camera.backproject(np.array([j]), np.array([i]), np.array([2.5]))
        uv, _ = photo.project(point)
        x, y = uv[0]
        np.testing.assert_allclose(by_scipy[i, j, :2], [slope * x, slope * y], atol=1e-9)
        # Pillow truncates its bilinear result to 8 bits (reads 0 to 1 low); half a photo pixel off would
        # read 2 away.
        shortfall = np.array([slope * x, slope * y]) - by_pillow[i, j, :2]
        assert np.all((shortfall >= -1e-9) & (shortfall < 1)), shortfall


@settings(max_examples=50, deadline=None)
@given(
    u=st.floats(-100, 100),
    v=st.floats(-100, 100),
    side=st.floats(1, 500),
    aspect=st.floats(0.5, 2),
    n=st.integers(1, 512),
)
def test_to_frame_and_from_frame_are_inverses(u, v, side, aspect, n):
    window = CropWindow(u, v, side, side * aspect, n)
    j, i = np.array([0.0, (n - 1) / 2, n - 1.0]), np.array([n - 1.0, 0.0, 3.5])
    back = window.from_frame(*window.to_frame(j, i))
    np.testing.assert_allclose(back, [j, i], atol=1e-9 * max(n, 1))
    # the crop's centre sits on the window's centre
    np.testing.assert_allclose(window.to_frame((n - 1) / 2, (n - 1) / 2), [u, v], atol=1e-9)


def test_a_window_of_non_square_frame_pixels_has_one_focal_length():
    window = CropWindow(100.0, 50.0, 40.0, 48.0, 20)  # fy / fx = 1.2
    camera = window.camera(500.0, 600.0, 99.0, 51.0)
    assert camera.focal == pytest.approx(500.0 * 20 / 40)
    with pytest.raises(ValueError, match="not square"):
        window.camera(500.0, 500.0, 99.0, 51.0)


def test_crop_of_the_whole_square_image_is_the_image():
    rgb = _gradient_photo(64, 64, 3.0)
    window = CropWindow.square(whole_image_box(64, 64), 64)
    assert np.array_equal(crop_image(rgb, window), rgb)
    np.testing.assert_array_equal(sample_frame(rgb, window, order=0), rgb)


def test_masks_are_sampled_nearest_and_outside_is_the_fill():
    mask = np.zeros((10, 10), bool)
    mask[2:5, 3:7] = True
    window = CropWindow.square(SquareBox(4.5, 4.5, 20.0), 20)  # one crop pixel per photo pixel, 5 px border
    crop = crop_image(mask, window)
    assert crop.dtype == bool and crop.sum() == mask.sum()
    assert crop[7:10, 8:12].all()
    assert not crop_image(np.full((10, 10, 3), 200, np.uint8), window, fill=0)[:5].any()

"""Texture: the crop is the front texture, the back follows its strategy, the seam never crosses the atlas."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from mould.recon.mesh import mould_to_mesh, topology
from mould.recon.poisson import PoissonConfig
from mould.recon.stitch import StitchConfig
from mould.recon.texture import UNSEEN_GREY, texture_mesh
from scipy.ndimage import distance_transform_edt
from scipy.spatial import cKDTree

from mould import frame_points, mesh_to_mould
from mould.decode import depth_to_camera_points

N = 48


@pytest.fixture(scope="module")
def sphere_case():
    """A sphere's mould, an image whose colour names its pixel (red = column, green = row), and the stitched
    mesh, its outline left on the pixel centres so that every vertex sits on a pixel's ray."""
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    mould = mesh_to_mould(sphere.vertices, sphere.faces, frame_points(sphere.vertices, N))
    rows, cols = np.mgrid[0:N, 0:N]
    image = np.stack([cols * 5, rows * 5, np.full((N, N), 100)], axis=-1).astype(np.uint8)
    mesh = mould_to_mesh(mould, mesher="stitch", stitch=StitchConfig(outline_offset=0))
    return mould, image, mesh


def vertex_pixels(mould, vertices):
    """Pixel (row, col) of each vertex and whether it lies on a pixel centre of the front or back map."""
    uv, depth = mould.camera.project(vertices.astype(np.float64))
    col, row = np.rint(uv[:, 0]).astype(int), np.rint(uv[:, 1]).astype(int)
    centred = np.all(np.abs(uv - np.rint(uv)) < 1e-3, axis=1)
    front = centred & np.isclose(depth, mould.visible[row, col], atol=1e-5)
    back = centred & np.isclose(depth, mould.hidden[row, col], atol=1e-5) & ~front
    return row, col, front, back


def test_front_vertices_take_their_pixel(sphere_case):
    mould, image, mesh = sphere_case
    textured = texture_mesh(mesh, mould, image, back="mirror")
    row, col, front, _ = vertex_pixels(mould, textured.vertices)
    on_front_tile = textured.uv[:, 0] < 0.5
    chosen = front & on_front_tile
    assert chosen.sum() > 0.9 * mould.mask.sum()
    np.testing.assert_allclose(textured.uv[chosen, 0], (col[chosen] + 0.5) / (2 * N), atol=1e-6)
    np.testing.assert_allclose(textured.uv[chosen, 1], 1 - (row[chosen] + 0.5) / N, atol=1e-6)
    np.testing.assert_array_equal(textured.colors[chosen], image[row[chosen], col[chosen]])
    # The left tile is the crop itself inside the silhouette.
    np.testing.assert_array_equal(textured.texture[:, :N][mould.mask], image[mould.mask])


def test_mirror_carries_the_front_colour_through(sphere_case):
    mould, image, mesh = sphere_case
    textured = texture_mesh(mesh, mould, image, back="mirror")
    row, col, _, back = vertex_pixels(mould, textured.vertices)
    chosen = back & (textured.uv[:, 0] >= 0.5)
    assert chosen.sum() > 0.5 * mould.mask.sum()
    np.testing.assert_array_equal(textured.colors[chosen], image[row[chosen], col[chosen]])


def test_none_is_grey_inside_and_blends_at_the_seam(sphere_case):
    mould, image, mesh = sphere_case
    textured = texture_mesh(mesh, mould, image, back="none", seam_width=4)
    row, col, _, back = vertex_pixels(mould, textured.vertices)
    inside = distance_transform_edt(mould.mask)[row, col]
    deep = back & (textured.uv[:, 0] >= 0.5) & (inside >= 5)
    rim = back & (inside == 1)
    assert deep.any() and rim.any()
    np.testing.assert_array_equal(textured.colors[deep], np.broadcast_to(UNSEEN_GREY, (deep.sum(), 3)))
    # On the silhouette's edge the back has the front's colour: no step across the seam.
    np.testing.assert_array_equal(textured.colors[rim], image[row[rim], col[rim]])
    assert textured.metadata["back_texture"] == "none" and textured.metadata["seam_width_px"] == 4


def test_nearest_takes_the_nearest_visible_point(sphere_case):
    mould, image, mesh = sphere_case
    textured = texture_mesh(mesh, mould, image, back="nearest", seam_width=0)
    row, col, _, back = vertex_pixels(mould, textured.vertices)
    chosen = back & (textured.uv[:, 0] >= 0.5)
    rows, cols = np.nonzero(mould.mask)
    visible = depth_to_camera_points(mould.visible, mould.camera)[rows, cols]
    hidden = depth_to_camera_points(mould.hidden, mould.camera)[row[chosen], col[chosen]]
    _, nearest = cKDTree(visible).query(hidden)
    np.testing.assert_array_equal(textured.colors[chosen], image[rows[nearest], cols[nearest]])


@pytest.mark.parametrize("mesher", ["stitch", "poisson"])
@pytest.mark.parametrize("back", ["smooth", "mirror", "nearest", "none"])
def test_seam_stays_inside_one_tile_and_shape_stays_closed(sphere_case, mesher, back):
    mould, image, mesh = sphere_case
    if mesher == "poisson":
        mesh = mould_to_mesh(mould, mesher="poisson", poisson=PoissonConfig(depth=6, backend="open3d"))
    textured = texture_mesh(mesh, mould, image, back=back)
    tiles = textured.uv[textured.faces, 0] >= 0.5
    assert np.all(tiles.all(axis=1) | ~tiles.any(axis=1)), "a face spans both tiles of the atlas"
    assert topology(*textured.geometry()).watertight
    assert len(textured.geometry()[0]) == len(mesh.vertices)  # only seam twins were added
    assert textured.texture.shape == (N, 2 * N, 3)
    assert textured.metadata["back_texture"] == back and textured.metadata["mesher"] == mesher


def test_bad_images_are_refused(sphere_case):
    mould, image, mesh = sphere_case
    with pytest.raises(ValueError, match=f"the texture is 40x48 but the mould is {N}x{N}"):
        texture_mesh(mesh, mould, image[:, :40])
    with pytest.raises(ValueError, match="no texture image"):
        texture_mesh(mesh, mould, None)
    with pytest.raises(ValueError, match="back"):
        texture_mesh(mesh, mould, image, back="front")
    with pytest.raises(ValueError, match="image"):
        texture_mesh(mesh, mould, image.astype(np.float32))


def test_smoothing_inside_a_mask_never_pulls_in_the_background():
    from mould.recon.texture import smooth_inside

    mask = np.zeros((64, 64), bool)
    mask[10:50, 20:40] = True
    colour = np.zeros((64, 64, 3))
    colour[mask] = (200, 100, 50)  # a uniform body on black: every body pixel keeps its colour exactly
    np.testing.assert_allclose(smooth_inside(colour, mask, 4.0)[mask], colour[mask], rtol=0, atol=1e-9)
    stripes = colour.copy()
    stripes[10:50:2, 20:40] = (0, 100, 250)  # one-pixel stripes: smoothed to their mean inside the body
    smoothed = smooth_inside(stripes, mask, 4.0)
    np.testing.assert_allclose(smoothed[20:40, 25:35], np.full((20, 10, 3), (100, 100, 150)), rtol=0, atol=2.0)
    np.testing.assert_array_equal(smoothed[~mask], stripes[~mask])  # outside: untouched
    np.testing.assert_array_equal(smooth_inside(stripes, mask, 0.0), stripes)


@pytest.mark.parametrize("back", ["predicted", "smooth"])
def test_smoothed_backs_lose_the_fronts_detail(sphere_case, back):
    # A face-like detail (dark dots) on the front or in the predicted back colour does not reach the back
    # tile: the back is the smoothed colour (BACK_SMOOTHING, SMOOTH_MIRROR), within the silhouette.
    from mould.recon.texture import BACK_SMOOTHING, SMOOTH_MIRROR, back_tile, pad_background, smooth_inside

    mould, image, _ = sphere_case
    dotted = image.copy()
    dotted[::6, ::6] = 0
    mould = mould.replace(back_image=dotted if back == "predicted" else None)
    front = pad_background(dotted if back == "smooth" else image, mould.mask)
    tile = back_tile(mould, front, back, seam_width=0).astype(float)
    sigma = (BACK_SMOOTHING if back == "predicted" else SMOOTH_MIRROR) * N / 256
    expected = smooth_inside(dotted if back == "predicted" else front, mould.mask, sigma)
    np.testing.assert_allclose(tile[mould.mask], expected[mould.mask], rtol=0, atol=0.5)  # 8-bit rounding
    dots = np.zeros(mould.mask.shape, bool)
    dots[::6, ::6] = True
    inner = dots & mould.mask
    assert dotted[inner].mean() == 0 and tile[inner].mean() > 0.5 * image[inner].mean()

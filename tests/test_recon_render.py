"""Headless previews: silhouettes where the mesh is, its colours where a face looks at the viewer."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from mould.recon.mesh import Mesh, mould_to_mesh
from mould.recon.render import BACKGROUND, PLAIN, render_views
from mould.recon.texture import texture_mesh

from mould import frame_points, mesh_to_mould


def test_box_views_show_its_faces_and_colours():
    box = trimesh.creation.box(extents=(1.0, 2.0, 0.5))
    colours = np.tile(np.array([[30, 120, 220]], np.uint8), (len(box.vertices), 1))
    front, side, back = render_views(Mesh(box.vertices, box.faces, colors=colours), size=64)
    for picture in (front, side, back):
        assert picture.shape == (64, 64, 3) and picture.dtype == np.uint8
        # The middle looks at a face square-on: full light, the exact colour.
        np.testing.assert_array_equal(picture[32, 32], colours[0])
        np.testing.assert_array_equal(picture[0, 0], BACKGROUND)
    # Seen from the front the box is half as wide as tall; from the side, a quarter.
    width_front = np.sum(np.any(front[32] != BACKGROUND, axis=-1))
    width_side = np.sum(np.any(side[32] != BACKGROUND, axis=-1))
    height = np.sum(np.any(front[:, 32] != BACKGROUND, axis=-1))
    assert width_front == pytest.approx(height / 2, abs=2) and width_side == pytest.approx(height / 4, abs=2)


def test_plain_mesh_is_grey_and_textured_mesh_shows_its_texture():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    (picture,) = render_views(Mesh(sphere.vertices, sphere.faces), views=("front",), size=33)
    assert np.all(np.abs(picture[16, 16].astype(int) - PLAIN) <= 1)
    mould = mesh_to_mould(sphere.vertices, sphere.faces, frame_points(sphere.vertices, 33))
    image = np.zeros((33, 33, 3), np.uint8)
    image[..., 0] = 250  # red front
    textured = texture_mesh(mould_to_mesh(mould, mesher="stitch"), mould, image, back="none", seam_width=0)
    front, back = render_views(textured, views=("front", "back"), size=33)
    assert front[16, 16, 0] > 240 and front[16, 16, 1] == 0
    assert abs(int(back[16, 16, 0]) - 160) <= 2 and abs(int(back[16, 16, 1]) - 160) <= 2  # unseen grey


def test_unknown_view_is_refused():
    box = trimesh.creation.box()
    with pytest.raises(ValueError, match="views"):
        render_views(Mesh(box.vertices, box.faces), views=("under",))

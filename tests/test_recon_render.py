"""Headless previews: silhouettes where the mesh is, its colours where a face looks at the viewer."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import trimesh
from mould.recon.mesh import Mesh, mould_to_mesh
from mould.recon.render import AMBIENT, BACKGROUND, PLAIN, VIEWS, render_views, view_frame
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


def ray_cast_faces(mesh: Mesh, name: str, size: int, margin: float = 0.05) -> np.ndarray:
    """(size, size) int: the triangle open3d's ray caster hits through each pixel centre of a view (-1: none),
    framed as :func:`render_views` frames it; an independent reference."""
    import open3d as o3d

    vertices = mesh.vertices.astype(np.float64)
    centre = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    extent = np.ptp(vertices, axis=0).max() * (1 + 2 * margin)
    right, down, forward = view_frame(VIEWS[name])
    steps = ((np.arange(size) + 0.5) / size - 0.5) * extent
    across, below = np.meshgrid(steps, steps)
    origins = centre + across[..., None] * right + below[..., None] * down - 2 * extent * forward
    rays = np.concatenate([origins.reshape(-1, 3), np.broadcast_to(forward, (size * size, 3))], axis=1)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(mesh.vertices.astype(np.float32)), o3d.core.Tensor(mesh.faces.astype(np.uint32))
    )
    hits = scene.cast_rays(o3d.core.Tensor(rays.astype(np.float32)))
    faces = hits["primitive_ids"].numpy().astype(np.int64)
    faces[~np.isfinite(hits["t_hit"].numpy())] = -1
    return faces.reshape(size, size)


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_views_agree_with_a_ray_caster(name):
    """Each face colour is its own: the picture shows, pixel by pixel, the triangle a ray caster hits."""
    body = trimesh.creation.capsule(height=1.2, radius=0.3, count=(24, 24))
    body.apply_transform(trimesh.transformations.rotation_matrix(0.4, (1.0, 0.2, 0.3)))
    rng = np.random.default_rng(0)
    vertices, faces = body.vertices[body.faces].reshape(-1, 3), np.arange(3 * len(body.faces)).reshape(-1, 3)
    colours = np.repeat(rng.integers(0, 256, (len(faces), 3), dtype=np.uint8), 3, axis=0)  # flat per face
    mesh = Mesh(vertices.astype(np.float32), faces.astype(np.int32), colors=colours)
    (picture,) = render_views(mesh, views=(name,), size=48)
    expected = ray_cast_faces(mesh, name, 48)
    hit = expected >= 0
    shown = np.any(picture != BACKGROUND, axis=-1)
    assert hit.sum() > 200
    # Rays through a pixel centre on an edge can go either way; the outline may differ by a pixel or two.
    assert np.sum(shown != hit) <= 2
    # Where both hit, the picture has the hit triangle's colour, lit by a headlight: exactly, to rounding.
    both = shown & hit
    corners = vertices[faces[expected[both]]]
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    shade = AMBIENT + (1 - AMBIENT) * np.abs(normal @ VIEWS[name])
    wanted = colours[3 * expected[both]] * shade[:, None]
    close = np.all(np.abs(picture[both] - wanted) <= 1, axis=1)
    assert close.mean() > 0.99


def test_an_empty_mesh_is_a_blank_picture():
    mesh = Mesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32))
    (picture,) = render_views(mesh, views=("front",), size=8)
    assert np.all(picture == BACKGROUND)


def test_previews_import_no_heavy_library():
    # `mould reconstruct` draws its preview on machines without torch (the network may run on onnxruntime),
    # and open3d, trimesh and scipy each cost up to seconds to import: numpy and Pillow only.
    code = """
import sys, numpy as np
from mould.recon.mesh import Mesh
from mould.recon.render import render_views
vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
mesh = Mesh(vertices, faces, uv=vertices[:, :2], texture=np.full((4, 4, 3), 90, np.uint8))
front, side = render_views(mesh, views=("front", "side"), size=16)
assert (front != 255).any() and (side != 255).any()
print(sorted(name for name in ("torch", "open3d", "trimesh", "scipy") if name in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"imported: {done.stdout.strip()}"

"""Export: OBJ/PLY/GLB reload with trimesh and open3d with texture or colours; writes are all or nothing."""

from __future__ import annotations

import json
import os

import numpy as np
import open3d as o3d
import pytest
import trimesh
from mould.recon import export
from mould.recon.export import write_mesh
from mould.recon.mesh import Mesh, mould_to_mesh, topology
from mould.recon.texture import texture_mesh

from mould import frame_points, mesh_to_mould
from mould.errors import InputError


@pytest.fixture(scope="module")
def textured():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    mould = mesh_to_mould(sphere.vertices, sphere.faces, frame_points(sphere.vertices, 32))
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return texture_mesh(mould_to_mesh(mould, mesher="stitch"), mould, image, back="none")


def same_shape(vertices: np.ndarray, mesh: Mesh) -> None:
    """The reloaded positions are the mesh's own positions, as sets, to the 1 µm OBJ writes them with."""
    from scipy.spatial import cKDTree

    expected = mesh.geometry()[0]
    loaded = np.unique(np.asarray(vertices, np.float64), axis=0)
    assert len(loaded) == len(np.unique(expected, axis=0))
    assert cKDTree(expected).query(loaded)[0].max() < 1e-6


def test_obj_round_trip(tmp_path, textured):
    written = write_mesh(tmp_path / "person.obj", textured)
    assert sorted(p.name for p in written) == ["person.mtl", "person.obj", "person_texture.png"]
    loaded = trimesh.load(tmp_path / "person.obj", process=False)
    same_shape(loaded.vertices, textured)
    assert loaded.visual.kind == "texture" and loaded.visual.uv.shape == (len(loaded.vertices), 2)
    image = np.asarray(loaded.visual.material.image.convert("RGB"))
    np.testing.assert_array_equal(image, textured.texture)
    loaded.merge_vertices(merge_tex=True, merge_norm=True)
    assert loaded.is_watertight and len(loaded.faces) == len(textured.faces)
    # open3d reads the texture when post-processing is on.
    mesh = o3d.io.read_triangle_mesh(str(tmp_path / "person.obj"), enable_post_processing=True)
    assert len(mesh.triangles) == len(textured.faces) and mesh.has_triangle_uvs() and mesh.has_textures()
    assert np.asarray(mesh.textures[0]).shape == textured.texture.shape
    # The geometry is written watertight: one position per point, seams only in the vt indices.
    header = (tmp_path / "person.obj").read_text().splitlines()[:2]
    assert json.loads(header[1].split("mould metadata: ", 1)[1])["back_texture"] == "none"


def test_ply_round_trip(tmp_path, textured):
    write_mesh(tmp_path / "person.ply", textured)
    loaded = trimesh.load(tmp_path / "person.ply", process=False)
    same_shape(loaded.vertices, textured)
    assert loaded.is_watertight and loaded.visual.kind == "vertex"
    # Colours travel with their positions.
    first = {tuple(v): tuple(c) for v, c in zip(textured.vertices, textured.colors)}
    colours = np.array([first[tuple(v)] for v in np.asarray(loaded.vertices, np.float32)])
    np.testing.assert_array_equal(loaded.visual.vertex_colors[:, :3], colours)
    mesh = o3d.io.read_triangle_mesh(str(tmp_path / "person.ply"))
    assert mesh.has_vertex_colors() and len(mesh.triangles) == len(textured.faces)
    assert mesh.is_watertight()
    text = (tmp_path / "person.ply").read_bytes().split(b"end_header")[0].decode("ascii")
    assert '"mesher": "stitch"' in text


def test_glb_round_trip(tmp_path, textured):
    write_mesh(tmp_path / "person.glb", textured)
    loaded = trimesh.load(tmp_path / "person.glb", force="mesh", process=False)
    same_shape(loaded.vertices, textured)
    assert loaded.visual.kind == "texture"
    image = np.asarray(loaded.visual.material.baseColorTexture.convert("RGB"))
    np.testing.assert_array_equal(image, textured.texture)
    np.testing.assert_allclose(loaded.visual.uv, textured.uv, atol=1e-6)
    loaded.merge_vertices(merge_tex=True, merge_norm=True)
    assert loaded.is_watertight
    scene = trimesh.load(tmp_path / "person.glb")
    assert next(iter(scene.geometry.values())).metadata["back_texture"] == "none"
    mesh = o3d.io.read_triangle_mesh(str(tmp_path / "person.glb"), enable_post_processing=True)
    assert mesh.has_triangle_uvs() and mesh.has_textures() and len(mesh.triangles) == len(textured.faces)


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".glb"])
def test_untextured_and_coloured_meshes(tmp_path, suffix):
    box = trimesh.creation.box()
    bare = Mesh(box.vertices, box.faces, metadata={"mesher": "test"})
    write_mesh(tmp_path / f"bare{suffix}", bare)
    loaded = trimesh.load(tmp_path / f"bare{suffix}", force="mesh")
    assert loaded.is_watertight and len(loaded.faces) == 12
    colours = np.tile(np.array([[200, 10, 30]], np.uint8), (len(box.vertices), 1))
    write_mesh(tmp_path / f"coloured{suffix}", bare.replace(colors=colours))
    loaded = trimesh.load(tmp_path / f"coloured{suffix}", force="mesh", process=False)
    np.testing.assert_array_equal(loaded.visual.vertex_colors[:, :3], colours)
    assert not (tmp_path / "bare.mtl").exists()


def test_unknown_extension_writes_nothing(tmp_path, textured):
    with pytest.raises(InputError, match="unknown mesh format .stl"):
        write_mesh(tmp_path / "person.stl", textured)
    assert list(tmp_path.iterdir()) == []


def test_obj_files_are_all_or_nothing(tmp_path, textured, monkeypatch):
    renames = []
    real_replace = os.replace

    def failing_replace(source, target):
        renames.append(target)
        if len(renames) == 2:  # the PNG is in place, the MTL fails
            raise OSError("disk full")
        real_replace(source, target)

    monkeypatch.setattr(export.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_mesh(tmp_path / "person.obj", textured)
    assert list(tmp_path.iterdir()) == []  # neither the renamed PNG nor any temporary file is left


def test_transform_keeps_outward_winding(textured):
    mirrored = textured.transformed(np.diag([-1.0, 1.0, 1.0]))
    corners = mirrored.vertices[mirrored.faces].astype(np.float64)
    volume = np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum() / 6
    assert volume > 0 and topology(*mirrored.geometry()).watertight
    upright = textured.transformed(np.diag([1.0, -1.0, -1.0]))
    np.testing.assert_allclose(upright.vertices[:, 1], -textured.vertices[:, 1])

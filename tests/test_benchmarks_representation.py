"""The representation experiment (:mod:`mould.benchmarks.representation`): voxel parity against a slow
reference, sizes, marching cubes; and ``mould bench representation``'s files. Marching cubes needs the optional
PyMCubes (``mould[bench]``, in ``dev``): those tests skip without it."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import trimesh

from mould.benchmarks.representation import (
    compare_representations,
    marching_cubes_module,
    mould_side,
    occupancy_to_mesh,
    voxel_occupancy,
    voxel_side,
)
from mould.cli import main
from mould.errors import MouldError


def test_sides_match_the_dimensionalities():
    assert [mould_side(d) for d in (64, 4_096, 131_072, 8_388_608)] == [6, 45, 256, 2048]
    assert [voxel_side(d) for d in (64, 4_096, 131_072, 8_388_608)] == [4, 16, 51, 203]


def winding_number_naive(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Generalised winding number of a closed mesh at each point (1 inside, 0 outside): the sum of the solid
    angles of its triangles (Van Oosterom & Strackee), no rays, so no grazing cases. Slow reference."""
    out = np.zeros(len(points))
    for start in range(0, len(points), 256):
        d = vertices[faces][None] - points[start : start + 256, None, None]  # (P, F, 3, 3)
        length = np.linalg.norm(d, axis=-1)
        a, b, c = d[..., 0, :], d[..., 1, :], d[..., 2, :]
        la, lb, lc = length[..., 0], length[..., 1], length[..., 2]
        numerator = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
        denominator = la * lb * lc + np.einsum("pfi,pfi->pf", a, b) * lc
        denominator += np.einsum("pfi,pfi->pf", b, c) * la + np.einsum("pfi,pfi->pf", c, a) * lb
        out[start : start + 256] = (2 * np.arctan2(numerator, denominator)).sum(axis=1) / (4 * np.pi)
    return out


def test_occupancy_matches_a_slow_inside_test():
    # A torus (genus 1: two or four crossings per row of cells) turned into a general position.
    torus = trimesh.creation.torus(major_radius=0.4, minor_radius=0.15, major_sections=32, minor_sections=12)
    torus.apply_transform(trimesh.transformations.rotation_matrix(0.4, [1, 0.3, 0]))
    occupancy, origin, cell = voxel_occupancy(torus.vertices, torus.faces, 13)
    index = np.stack(np.meshgrid(*[np.arange(13)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    winding = winding_number_naive(torus.vertices, torus.faces, origin + cell * index).reshape(13, 13, 13)
    assert occupancy.sum() > 50
    np.testing.assert_array_equal(occupancy, np.abs(winding) > 0.5)


def test_symmetric_mesh_on_grid_centres_is_counted_once():
    # An odd grid puts a column of centres on the box's mid-plane, where rays graze edges: the three-axis
    # vote keeps the parity right (the single-axis count flipped whole columns on an anny body at 203³).
    box = trimesh.creation.box(extents=(1.0, 0.6, 0.4))
    occupancy, origin, cell = voxel_occupancy(box.vertices, box.faces, 21)
    assert occupancy.sum() * cell**3 == pytest.approx(box.volume, rel=0.15)
    centres = origin[:, None] + cell * np.arange(21)
    expected = np.ix_(*(np.abs(c) < e / 2 for c, e in zip(centres, (1.0, 0.6, 0.4))))
    want = np.zeros((21, 21, 21), bool)
    want[expected] = True
    np.testing.assert_array_equal(occupancy, want)


def test_marching_cubes_is_closed_and_outward():
    pytest.importorskip("mcubes")
    from mould.recon.mesh import topology

    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    vertices, faces = occupancy_to_mesh(*voxel_occupancy(sphere.vertices, sphere.faces, 24))
    assert topology(vertices, faces).watertight
    corners = vertices[faces]
    volume = np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum() / 6
    assert volume == pytest.approx(sphere.volume, rel=0.05)
    empty = occupancy_to_mesh(np.zeros((4, 4, 4), bool), np.zeros(3), 1.0)
    assert len(empty[1]) == 0


def test_both_errors_shrink_with_size_on_a_sphere():
    pytest.importorskip("mcubes")
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=0.5)
    results = compare_representations(sphere.vertices, sphere.faces, (4_096, 131_072), samples=5_000)
    small, large = results
    assert large.mould_error_mm < small.mould_error_mm and large.voxel_error_mm < small.voxel_error_mm
    # A sphere is the voxel grid's best case and the mould's too (nothing hidden): at 131k numbers the
    # mould (256², 3.6 mm pixels) lands well under a millimetre, the voxels (51³, 20 mm cells) a few mm.
    assert large.mould_error_mm < 1 and 1 < large.voxel_error_mm < 10


def test_bench_writes_table_json_and_plot(tmp_path, capsys):
    pytest.importorskip("mcubes")
    folder = tmp_path / "meshes"
    folder.mkdir()
    trimesh.creation.capsule(height=1.0, radius=0.2).export(folder / "capsule.ply")
    out = tmp_path / "out"
    args = ["bench", "representation", "--meshes", str(folder), "-o", str(out), "--samples", "2000"]
    assert main([*args, "--dimensionalities", "64", "4096"]) == 0
    report = json.loads((out / "representation.json").read_text())
    assert report["dimensionalities"] == [64, 4096]
    assert report["voxel_error_mm"][0] is None  # no 4³ cell centre lies inside: NaN, written as null
    assert report["mould_error_mm"][1] < report["voxel_error_mm"][1]
    assert (out / "representation.png").stat().st_size > 1000
    assert "| 4,096 |" in (out / "representation.md").read_text()
    assert "wrote" in capsys.readouterr().out


def test_without_pymcubes_the_bench_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mcubes", None)  # import mcubes now raises ImportError
    with pytest.raises(MouldError, match=r"pip install 'mould\[bench\]'"):
        marching_cubes_module()
    folder = tmp_path / "meshes"
    folder.mkdir()
    trimesh.creation.icosphere(subdivisions=1).export(folder / "sphere.ply")
    out = tmp_path / "out"
    assert main(["bench", "representation", "--meshes", str(folder), "-o", str(out), "--samples", "1000"]) == 2
    captured = capsys.readouterr()
    assert "pip install 'mould[bench]'" in captured.err and captured.err.count("\n") == 1
    assert not out.exists()  # failed before measuring anything

"""``mould decode`` and ``mould compare`` end to end, and every bad input the issue lists."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from mould.recon.metrics import MetricConfig, compare_meshes
from PIL import Image

from mould import Camera, Mould
from mould.cli import main


@pytest.fixture(scope="module")
def body_files(tmp_path_factory, anny_body):
    """An anny body as PLY, its mould from ``mould encode`` and a 256² texture image."""
    folder = tmp_path_factory.mktemp("body")
    vertices, faces = anny_body
    trimesh.Trimesh(vertices, faces, process=False).export(folder / "body.ply")
    assert main(["encode", str(folder / "body.ply"), "-o", str(folder / "body.npz")]) == 0
    rows, cols = np.mgrid[0:256, 0:256]
    image = np.stack([cols, rows, 255 - cols], axis=-1).astype(np.uint8)
    Image.fromarray(image).save(folder / "crop.png")
    return folder, vertices, faces


def check_output(path, vertices, faces, textured: bool) -> None:
    loaded = trimesh.load(path, force="mesh", process=False)
    if textured:
        assert loaded.visual.kind == ("vertex" if path.suffix == ".ply" else "texture")
    loaded.merge_vertices(merge_tex=True, merge_norm=True)
    assert loaded.is_watertight and loaded.is_winding_consistent
    metrics = compare_meshes((loaded.vertices, loaded.faces), (vertices, faces), MetricConfig(samples=20_000))
    # The bar: P2S <= 3 mm both ways (measured ~0.9 and ~1.5 mm).
    assert metrics["p2s_a_to_b_mm"] < 3 and metrics["p2s_b_to_a_mm"] < 3


def test_encode_then_decode_gives_watertight_textured_meshes(body_files, capsys):
    folder, vertices, faces = body_files
    texture = ["--texture", str(folder / "crop.png")]
    assert main(["decode", str(folder / "body.npz"), "-o", str(folder / "out" / "body.obj"), *texture]) == 0
    assert "watertight" in capsys.readouterr().out
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["body.mtl", "body.obj", "body_texture.png"]
    check_output(folder / "out" / "body.obj", vertices, faces, textured=True)
    for suffix in (".ply", ".glb"):
        target = folder / "out" / f"body{suffix}"
        args = ["decode", str(folder / "body.npz"), "-o", str(target), "--mesher", "stitch", *texture]
        assert main([*args, "--back-texture", "nearest"]) == 0
        check_output(target, vertices, faces, textured=True)


def test_points_still_written(body_files, capsys):
    folder, _, _ = body_files
    target = folder / "points.ply"
    assert main(["decode", str(folder / "body.npz"), "--points", "-o", str(target)]) == 0
    cloud = trimesh.load(target)
    assert len(cloud.vertices) > 10_000 and "oriented points" in capsys.readouterr().out


def test_compare_prints_a_table_and_json(body_files, capsys):
    folder, _, _ = body_files
    assert main(["compare", str(folder / "body.ply"), str(folder / "body.ply"), "--samples", "2000"]) == 0
    assert "| Chamfer-L1 (mean symmetric surface error) |" in capsys.readouterr().out
    assert (
        main(["compare", str(folder / "body.ply"), str(folder / "body.ply"), "--json", "--samples", "2000"]) == 0
    )
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["chamfer_l1_mm"] < 1e-3 and metrics["iou"] == pytest.approx(1.0)


# -- bad input: one line, exit 2, no file -------------------------------------------------------------------
def small_mould(mask: np.ndarray) -> Mould:
    n = mask.shape[0]
    camera = Camera("perspective", n, 100.0, n / 2, n / 2, np.eye(4))
    depth = np.where(mask, 2.0, 0.0).astype(np.float32)
    return Mould(depth, np.where(mask, 2.2, 0.0).astype(np.float32), mask, camera)


def refused(args: list[str], capsys, *, contains: str) -> None:
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("mould ") and contains in error, error


@pytest.mark.parametrize("mesher", ["poisson", "stitch"])
def test_empty_and_tiny_silhouettes_are_refused(tmp_path, capsys, mesher):
    empty = small_mould(np.zeros((32, 32), bool)).save(tmp_path / "empty.npz")
    refused(
        ["decode", str(empty), "-o", str(tmp_path / "a.obj"), "--mesher", mesher],
        capsys,
        contains="no person in this mould",
    )
    mask = np.zeros((32, 32), bool)
    mask[10, 10:13] = True
    tiny = small_mould(mask).save(tmp_path / "tiny.npz")
    refused(["decode", str(tiny), "-o", str(tmp_path / "b.ply"), "--mesher", mesher], capsys, contains="too few")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.npz", "tiny.npz"]


def test_nan_depths_are_refused(tmp_path, capsys):
    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True
    mould = small_mould(mask)
    path = mould.save(tmp_path / "nan.npz")
    with np.load(path) as data:
        arrays = dict(data)
    arrays["visible"][12, 12] = np.nan
    np.savez(path, **arrays)
    refused(["decode", str(path), "-o", str(tmp_path / "a.glb")], capsys, contains="NaN")
    assert not (tmp_path / "a.glb").exists()


def test_texture_of_the_wrong_size_is_refused(tmp_path, capsys):
    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True
    path = small_mould(mask).save(tmp_path / "m.npz")
    Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(tmp_path / "crop.png")
    refused(
        ["decode", str(path), "-o", str(tmp_path / "a.obj"), "--texture", str(tmp_path / "crop.png")],
        capsys,
        contains="the texture is 30x40 but the mould is 32x32",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crop.png", "m.npz"]


def test_unknown_extension_is_refused(tmp_path, capsys):
    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True
    path = small_mould(mask).save(tmp_path / "m.npz")
    refused(["decode", str(path), "-o", str(tmp_path / "a.stl")], capsys, contains="unknown mesh format .stl")
    refused(["decode", str(path), "--points", "-o", str(tmp_path / "a.obj")], capsys, contains="writes a .ply")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


@pytest.mark.slow
def test_default_poisson_gives_all_three_formats_within_3_mm(body_files):
    # The "done when", in full: default mesher (screened Poisson, pymeshlab), all three formats.
    folder, vertices, faces = body_files
    for suffix in (".obj", ".ply", ".glb"):
        target = folder / "poisson" / f"body{suffix}"
        assert (
            main(["decode", str(folder / "body.npz"), "-o", str(target), "--texture", str(folder / "crop.png")])
            == 0
        )
        check_output(target, vertices, faces, textured=True)

"""Hostile and careless files (issue #15): every reader checks declared sizes before allocating, every
writer refuses a folder; one line naming the file, never a traceback. The files are made here, small."""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mould.container import Mould
from mould.errors import InputError
from mould.files import write_atomic, write_atomic_group
from mould.limits import SizeLimits
from mould.npz import NpzArchive


def _npy_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    """A version-1.0 ``.npy`` header declaring ``shape`` (no data)."""
    text = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape!r}, }}"
    text += " " * ((64 - (10 + len(text) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def _good_arrays() -> dict[str, np.ndarray]:
    from test_container import make_mould, mould_arrays

    return mould_arrays(make_mould())


def _zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return path


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def header_bomb(path: Path, shape: tuple[int, ...] = (200_000, 200_000)) -> Path:
    """A mould file of a few kB whose ``visible`` header claims ``shape`` float32 (149 GiB for 200000²)."""
    members = {name: _npy(value) for name, value in _good_arrays().items()}
    members["visible"] = _npy_header(shape) + bytes(64)
    return _zip(path, members)


def test_npz_header_claiming_149_gib_is_refused_before_allocating(tmp_path):
    path = header_bomb(tmp_path / "bomb.npz")
    assert path.stat().st_size < 10_000
    with pytest.raises(InputError, match="visible") as error:
        Mould.load(path)
    assert str(error.value).startswith(f"{path}: ") and "\n" not in str(error.value)


def test_npz_arrays_over_the_byte_bound_are_refused_from_headers(tmp_path):
    path = _zip(tmp_path / "m.npz", {name: _npy(value) for name, value in _good_arrays().items()})
    assert len(NpzArchive(path).headers) == 11
    with pytest.raises(InputError, match="the arrays would take .* GiB, more than"):
        NpzArchive(path, SizeLimits(npz_bytes=2000))
    with pytest.raises(InputError, match="11 arrays, more than 10"):
        NpzArchive(path, SizeLimits(npz_members=10))


def test_zip_bomb_over_the_crop_bound_is_refused_before_decompressing(tmp_path):
    """A 4100² mask of zeros: 16 MiB that deflate to 16 kB (the issue's was 2 GiB in 2.3 MB)."""
    members = {name: _npy(value) for name, value in _good_arrays().items()}
    members["visible"] = _npy(np.zeros((4100, 4100), np.float32))
    path = _zip(tmp_path / "zipbomb.npz", members)
    assert path.stat().st_size < 200_000
    with pytest.raises(InputError, match="largest crop side 4096"):
        Mould.load(path)


def test_zip_directory_claiming_more_than_the_header_is_refused(tmp_path):
    members = {name: _npy(value) for name, value in _good_arrays().items()}
    members["mask"] += bytes(1 << 20)  # a megabyte of padding after the declared array
    path = _zip(tmp_path / "padded.npz", members)
    with pytest.raises(InputError, match="zip directory states"):
        Mould.load(path)


def test_object_arrays_are_refused_from_the_header(tmp_path):
    members = {name: _npy(value) for name, value in _good_arrays().items()}
    members["image"] = _npy_header((1,), "|O") + b"\x80\x04."  # a pickle, never unpickled
    with pytest.raises(InputError, match="pickles are never loaded"):
        Mould.load(_zip(tmp_path / "pickle.npz", members))


def test_a_mould_of_another_resolution_is_refused_from_its_header(tmp_path):
    from test_container import make_mould

    path = make_mould().save(tmp_path / "m.npz")
    assert Mould.load(path, resolution=16).resolution == 16
    with pytest.raises(InputError, match="a 16x16 mould where 32x32 is expected"):
        Mould.load(path, resolution=32)


def test_nan_normals_are_refused_when_the_mould_is_read(tmp_path):
    """Issue #15: NaN stored normals passed Mould.load and failed in the mesher with a traceback."""
    arrays = _good_arrays()
    arrays["visible_normals"] = np.full_like(arrays["visible_normals"], np.nan)
    path = tmp_path / "nan.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputError, match="visible_normals: expected finite values") as error:
        Mould.load(path)
    assert str(error.value).startswith(f"{path}: ")


# -- writers ----------------------------------------------------------------------------------------------
def test_writers_refuse_a_folder_and_leave_nothing(tmp_path):
    (tmp_path / "x.obj").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        write_atomic(tmp_path / "x.obj", lambda handle: handle.write(b"abc"))
    with pytest.raises(InputError, match="is a folder"):
        write_atomic_group({tmp_path / "a.png": b"1", tmp_path / "x.obj": b"2"})
    with pytest.raises(InputError, match="not a folder"):
        write_atomic(tmp_path / "missing" / "x.bin", lambda handle: handle.write(b"abc"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.obj"] and not any((tmp_path / "x.obj").iterdir())


def test_output_folders_are_checked_before_the_work(tmp_path):
    from mould.files import check_output_folder, output_folder

    check_output_folder(tmp_path / "a" / "b")  # can be made: nothing is created yet
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("a file")
    for check in (check_output_folder, output_folder):
        with pytest.raises(InputError, match="x.png: cannot write there: .*file is a file, not a folder"):
            check(tmp_path / "file" / "sub", tmp_path / "file" / "sub" / "x.png")
    assert output_folder(tmp_path / "a" / "b") == (tmp_path / "a" / "b").resolve() and (tmp_path / "a/b").is_dir()


def test_every_mesh_format_is_written_with_the_usual_permissions(tmp_path):
    """Issue #15: OBJ, MTL and texture were written 0600, PLY and GLB 0644."""
    from mould.recon.export import write_mesh

    mesh = _small_textured_mesh()
    old = os.umask(0o022)
    try:
        written = [p for suffix in (".obj", ".ply", ".glb") for p in write_mesh(tmp_path / f"m{suffix}", mesh)]
    finally:
        os.umask(old)
    assert len(written) == 5
    assert {stat.S_IMODE(p.stat().st_mode) for p in written} == {0o644}


def _small_textured_mesh():
    from mould.recon.mesh import mould_to_mesh
    from mould.recon.texture import texture_mesh
    from test_container import make_mould

    mould = make_mould()
    return texture_mesh(mould_to_mesh(mould, mesher="stitch"), mould, mould.image)


# -- encoding far from the origin ---------------------------------------------------------------------------
def test_encoding_1000_km_from_the_origin_loses_nothing():
    """Issue #15: vertices were cast to float32 in world coordinates (2.6 cm median error at 1000 km)."""
    import trimesh

    from mould.encode import encode_mesh
    from mould.framing import frame_points

    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    offset = np.array([1e6, 2e5, -7e5])
    near = encode_mesh(sphere.vertices, sphere.faces, frame_points(sphere.vertices, 64)).mould
    far_camera = frame_points(sphere.vertices + offset, 64)
    far = encode_mesh(sphere.vertices + offset, sphere.faces, far_camera).mould
    assert np.array_equal(near.mask, far.mask)
    # float64 camera frames at 1000 km agree to ~1e-10 m; a float32 cast there moves vertices by 6 cm.
    assert np.abs(near.visible - far.visible).max() < 1e-5
    assert np.abs(near.hidden - far.hidden).max() < 1e-5


# -- checkpoints --------------------------------------------------------------------------------------------
def _safetensors(path: Path, header: dict, data: bytes) -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def test_a_safetensors_header_claiming_a_huge_tensor_is_refused(tmp_path):
    from mould.models.checkpoint import load_checkpoint
    from mould.models.configs import CONFIGS

    metadata = {"format": "mould-checkpoint", "format_version": "2", "model_config": CONFIGS["tiny"].to_json()}
    tensor = {"dtype": "F32", "shape": [100_000, 100_000], "data_offsets": [0, 4]}  # 37 GiB in 4 bytes
    path = _safetensors(tmp_path / "lie.safetensors", {"__metadata__": metadata, "x": tensor}, bytes(4))
    with pytest.raises(InputError, match="unreadable safetensors file") as error:
        load_checkpoint(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_a_safetensors_header_over_100_mb_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from mould.models import checkpoint

    monkeypatch.setattr(checkpoint, "LIMITS", SizeLimits(checkpoint_header_bytes=1000))
    path = _safetensors(tmp_path / "big.safetensors", {"__metadata__": {"pad": "x" * 2000}}, b"")
    with pytest.raises(InputError, match="refused: a 2,0.*-byte safetensors header, more than 1,000"):
        checkpoint.read_checkpoint_metadata(path)

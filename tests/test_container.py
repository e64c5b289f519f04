"""The Mould container: validation, the .npz round trip, and every way a file can be bad."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from mould.camera import Camera, look_at
from mould.container import SCHEMA_VERSION, Mould
from mould.errors import InputError
from mould.files import path_inside, write_atomic

N = 16


def make_mould(with_optional: bool = True, seed: int = 0) -> Mould:
    """A valid random mould: a disc of depths between 2 and 3 m, thickness up to 0.5 m."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[:N, :N]
    mask = (u - 7.5) ** 2 + (v - 7.5) ** 2 < 36
    visible = np.where(mask, rng.uniform(2, 3, (N, N)), 0).astype(np.float32)
    hidden = np.where(mask, visible + rng.uniform(0, 0.5, (N, N)), 0).astype(np.float32)
    camera = Camera("perspective", N, 20.0, 7.5, 7.5, look_at(np.array([0, 1.0, 2.5]), np.array([0, 1.0, 0])))
    optional = {}
    if with_optional:
        normals = rng.normal(size=(2, N, N, 3)).astype(np.float32)
        normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
        optional = {
            "image": rng.integers(0, 256, (N, N, 3), dtype=np.uint8),
            "visible_normals": np.where(mask[..., None], normals[0], 0),
            "hidden_normals": np.where(mask[..., None], normals[1], 0),
            "back_image": np.where(mask[..., None], rng.integers(0, 256, (N, N, 3)), 0).astype(np.uint8),
        }
    return Mould(visible=visible, hidden=hidden, mask=mask, camera=camera, **optional)


def mould_arrays(mould: Mould) -> dict[str, np.ndarray]:
    """The arrays of the mould's file, read back from a real save."""
    with tempfile.TemporaryDirectory() as folder:
        with np.load(mould.save(Path(folder) / "m.npz")) as data:
            return {key: data[key] for key in data.files}


def assert_moulds_equal(a: Mould, b: Mould) -> None:
    for name in ("visible", "hidden", "mask", "image", "visible_normals", "hidden_normals", "back_image"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.camera == b.camera


# -- round trip ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("with_optional", [True, False])
def test_save_load_round_trip_is_exact(tmp_path, with_optional):
    mould = make_mould(with_optional)
    path = mould.save(tmp_path / "a.npz")
    assert path == tmp_path / "a.npz"
    assert_moulds_equal(Mould.load(path), mould)
    assert sorted(os.listdir(tmp_path)) == ["a.npz"]  # no temporary file left beside it


def test_saved_schema(tmp_path):
    arrays = dict(np.load(make_mould().save(tmp_path / "a.npz"), allow_pickle=False))
    expected = {
        "schema_version": ((), np.int64),
        "visible": ((N, N), np.float32),
        "hidden": ((N, N), np.float32),
        "mask": ((N, N), np.bool_),
        "camera_kind": ((), np.str_),
        "camera_intrinsics": ((3,), np.float64),
        "camera_cam_to_world": ((4, 4), np.float64),
        "image": ((N, N, 3), np.uint8),
        "visible_normals": ((N, N, 3), np.float32),
        "hidden_normals": ((N, N, 3), np.float32),
        "back_image": ((N, N, 3), np.uint8),
    }
    assert set(arrays) == set(expected)
    for key, (shape, dtype) in expected.items():
        assert arrays[key].shape == shape and arrays[key].dtype.type is dtype, key
    assert int(arrays["schema_version"]) == SCHEMA_VERSION == 1


def test_save_zeroes_depths_outside_the_mask(tmp_path):
    mould = make_mould(False)
    noisy = mould.replace(visible=np.where(mould.mask, mould.visible, 7.0).astype(np.float32))
    loaded = Mould.load(noisy.save(tmp_path / "a.npz"))
    assert np.all(loaded.visible[~loaded.mask] == 0)
    assert np.array_equal(loaded.visible[loaded.mask], mould.visible[mould.mask])


def test_failed_save_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = make_mould().save(tmp_path / "a.npz")
    before = path.read_bytes()

    def broken(handle, arrays, compression):
        handle.write(b"partial")
        raise OSError("disk full")

    import mould.container

    monkeypatch.setattr(mould.container, "write_npz", broken)
    with pytest.raises(OSError, match="disk full"):
        make_mould(seed=1).save(path)
    with pytest.raises(OSError):
        make_mould(seed=1).save(tmp_path / "b.npz")
    assert sorted(os.listdir(tmp_path)) == ["a.npz"]
    assert path.read_bytes() == before


def test_write_atomic_and_path_inside(tmp_path):
    write_atomic(tmp_path / "x.bin", lambda handle: handle.write(b"abc"))
    assert (tmp_path / "x.bin").read_bytes() == b"abc"
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "y.bin", lambda handle: (_ for _ in ()).throw(KeyboardInterrupt))
    assert sorted(os.listdir(tmp_path)) == ["x.bin"]
    assert path_inside(tmp_path, "a/b.png") == (tmp_path / "a/b.png").resolve()
    for name in ("../evil.png", "/etc/passwd", "a/../../evil"):
        with pytest.raises(InputError, match="outside"):
            path_inside(tmp_path, name)


# -- validation of the dataclass -----------------------------------------------------------------------------
def test_constructor_validates_and_names_the_field():
    good = make_mould()
    cases = {
        "visible": {"visible": good.visible[:-1]},
        "hidden": {"hidden": good.hidden.astype(np.int32)},
        "mask": {"mask": good.mask.astype(np.uint8)},
        "image": {"image": good.image.astype(np.float32)},
        "visible_normals": {"visible_normals": good.visible_normals[..., :2]},
        "back_image": {"back_image": good.back_image[:-1]},
        "camera": {"camera": "perspective"},
    }
    for name, change in cases.items():
        with pytest.raises(ValueError, match=name):
            good.replace(**change)
    nan = good.visible.copy()
    nan[good.mask.nonzero()[0][0], good.mask.nonzero()[1][0]] = np.nan
    with pytest.raises(ValueError, match="visible: NaN"):
        good.replace(visible=nan)
    with pytest.raises(ValueError, match="hidden: must be >= visible"):
        good.replace(hidden=good.visible - 0.01)
    with pytest.raises(ValueError, match="> 0"):
        good.replace(visible=np.where(good.mask, -1.0, 0).astype(np.float32), hidden=good.hidden)
    # float64 input is stored as float32; hidden = visible (an open sheet) is valid
    sheet = good.replace(visible=good.visible.astype(np.float64), hidden=good.visible.astype(np.float64))
    assert sheet.visible.dtype == sheet.hidden.dtype == np.float32
    assert good.resolution == N and good.has_normals and not make_mould(False).has_normals


# -- bad files --------------------------------------------------------------------------------------------
def write_npz(path: Path, arrays: dict) -> Path:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def changed(**changes) -> dict:
    """The arrays of a valid mould file with some entries replaced (None deletes the key)."""
    arrays = mould_arrays(make_mould())
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    return arrays


def _with_nan_inside() -> np.ndarray:
    visible = mould_arrays(make_mould())["visible"].copy()
    visible[8, 8] = np.nan
    return visible


def _hidden_in_front() -> np.ndarray:
    arrays = mould_arrays(make_mould())
    return np.where(arrays["mask"], arrays["visible"] - 0.1, 0).astype(np.float32)


BAD_CONTENTS = {  # case -> (the file's arrays, made when the test runs; what the error says)
    "missing visible": (lambda: changed(visible=None), "missing key 'visible'"),
    "missing hidden": (lambda: changed(hidden=None), "missing key 'hidden'"),
    "missing mask": (lambda: changed(mask=None), "missing key 'mask'"),
    "missing camera": (lambda: changed(camera_cam_to_world=None), "missing key 'camera_cam_to_world'"),
    "missing version": (lambda: changed(schema_version=None), "missing key 'schema_version'"),
    "hidden shape": (lambda: changed(hidden=np.ones((N, N + 1), np.float32)), "hidden: expected"),
    "mask shape": (lambda: changed(mask=np.ones((N - 1, N - 1), bool)), "mask: expected"),
    "image shape": (lambda: changed(image=np.zeros((N, N, 4), np.uint8)), "image: expected"),
    "back dtype": (lambda: changed(back_image=np.zeros((N, N, 3), np.float32)), "back_image: expected"),
    "normals shape": (lambda: changed(hidden_normals=np.zeros((N, N), np.float32)), "hidden_normals: expected"),
    "non-square": (lambda: changed(visible=np.ones((N, N + 2), np.float32)), "square"),
    "mask dtype": (lambda: changed(mask=np.ones((N, N), np.uint8)), "mask: expected"),
    "NaN inside": (lambda: changed(visible=_with_nan_inside()), "NaN"),
    "hidden < visible": (lambda: changed(hidden=_hidden_in_front()), "hidden: must be >= visible"),
    "negative focal": (lambda: changed(camera_intrinsics=np.array([-20.0, 7.5, 7.5])), "focal"),
    "NaN principal point": (lambda: changed(camera_intrinsics=np.array([20.0, np.nan, 7.5])), "cx"),
    "intrinsics shape": (lambda: changed(camera_intrinsics=np.array([20.0, 7.5])), "camera_intrinsics"),
    "non-rigid camera": (lambda: changed(camera_cam_to_world=np.eye(4) * 3), "rigid"),
    "camera kind": (lambda: changed(camera_kind=np.array("fisheye")), "kind"),
    "schema version": (lambda: changed(schema_version=np.array(2)), "schema_version 2 is not supported"),
    "schema garbage": (lambda: changed(schema_version=np.array("one")), "invalid mould"),
    "pickled array": (lambda: changed(image=np.array([{"a": 1}], dtype=object)), "pickle"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONTENTS))
def test_load_rejects_bad_contents(tmp_path, case):
    arrays, match = BAD_CONTENTS[case]
    path = write_npz(tmp_path / "bad.npz", arrays())
    with pytest.raises(InputError, match=match) as error:
        Mould.load(path)
    assert str(error.value).startswith(f"{path}: ")
    assert "\n" not in str(error.value)


def _damaged(tmp_path: Path, start: int | None) -> bytes:
    """A good mould file with 64 bytes zeroed at ``start`` (None: the middle), inside compressed data."""
    data = bytearray(make_mould().save(tmp_path / "good.npz").read_bytes())
    start = len(data) // 2 if start is None else start
    data[start : start + 64] = bytes(64)
    return bytes(data)


def _npy_bytes() -> bytes:
    handle = io.BytesIO()
    np.save(handle, np.zeros((N, N), np.float32))
    return handle.getvalue()


UNREADABLE = {  # case -> (the file's bytes, from a tmp folder; what the error says)
    "empty": (lambda tmp: b"", "the file is empty"),
    "text": (lambda tmp: b"this is not a mould\n", "not a readable .npz"),
    "truncated zip": (lambda tmp: make_mould().save(tmp / "good.npz").read_bytes()[:200], "not a readable .npz"),
    "plain .npy": (lambda tmp: _npy_bytes(), "a single .npy array"),
    "bad CRC": (lambda tmp: _damaged(tmp, None), "not a readable .npz"),
    "bad deflate stream": (lambda tmp: _damaged(tmp, 200), "not a readable .npz"),  # zlib.error
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_load_rejects_unreadable_files(tmp_path, case):
    content, match = UNREADABLE[case]
    path = tmp_path / "bad.npz"
    path.write_bytes(content(tmp_path))
    with pytest.raises(InputError, match=match) as error:
        Mould.load(path)
    assert str(error.value).startswith(f"{path}: ")


def test_load_rejects_missing_file_and_folder(tmp_path):
    for path in (tmp_path / "nothing.npz", tmp_path):
        with pytest.raises(InputError, match="no such file") as error:
            Mould.load(path)
        assert str(error.value).startswith(str(path))

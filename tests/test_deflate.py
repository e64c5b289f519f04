"""mould.deflate (ISA-L or zlib) and mould.npz.write_npz: streams and archives every standard reader reads."""

from __future__ import annotations

import io
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mould import deflate
from mould.npz import NpzArchive, write_npz

BOTH = pytest.mark.parametrize("isal", [True, False], ids=["isal", "zlib"])


def use(monkeypatch, isal: bool) -> None:
    if isal and not deflate.available():
        pytest.skip("isal is not installed")
    if not isal:
        monkeypatch.setattr(deflate, "_isal", None)


@BOTH
@pytest.mark.parametrize("level", [0, 1, 3, 6, 9])
def test_streams_decode_with_zlib(monkeypatch, isal, level):
    use(monkeypatch, isal)
    data = np.random.default_rng(level).integers(0, 4, 50_000, dtype=np.uint8).tobytes() + bytes(30_000)
    assert zlib.decompress(deflate.compress(data, level, raw=True), -15) == data
    assert zlib.decompress(deflate.compress(data, level, raw=False)) == data
    with pytest.raises(ValueError, match="level"):
        deflate.compress(data, 10, raw=True)


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=5000), start=st.integers(0, 2**32 - 1))
def test_crc32_is_zlibs(data, start):
    assert deflate.crc32(data, start) == zlib.crc32(data, start)


def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    depth = np.where(rng.uniform(size=(64, 64)) > 0.5, rng.normal(2.8, 0.2, (64, 64)), 0).astype(np.float32)
    return {
        "schema_version": np.array(3, dtype=np.int64),
        "visible": depth,
        "mask": depth > 0,
        "camera_kind": np.array("perspective"),
        "normals": rng.normal(size=(64, 64, 3)).astype(np.float32),
        "empty": np.zeros((0, 3), np.float64),
    }


@BOTH
@pytest.mark.parametrize("level", [0, 1, 6])
def test_archives_read_back_with_numpy_zipfile_and_ours(monkeypatch, isal, level):
    use(monkeypatch, isal)
    buffer = io.BytesIO()
    write_npz(buffer, arrays(), level)
    assert zipfile.ZipFile(io.BytesIO(buffer.getvalue())).testzip() is None  # every member's CRC checks
    with np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False) as loaded:
        assert sorted(loaded.files) == sorted(arrays())
        for name, value in arrays().items():
            assert loaded[name].dtype == value.dtype and np.array_equal(loaded[name], value)
    with NpzArchive(io.BytesIO(buffer.getvalue())) as archive:
        assert all(np.array_equal(archive.read(n), v) for n, v in arrays().items())
    again = io.BytesIO()
    write_npz(again, arrays(), level)
    assert again.getvalue() == buffer.getvalue()  # the same arrays give the same bytes


def test_compression_shrinks_what_repeats():
    stored, packed = io.BytesIO(), io.BytesIO()
    write_npz(stored, arrays(), 0)
    write_npz(packed, arrays(), 1)
    assert len(packed.getvalue()) < 0.8 * len(stored.getvalue())

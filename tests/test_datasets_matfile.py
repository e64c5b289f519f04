"""mould.datasets.matfile: .mat variables read as loadmat reads them, their sizes checked before they are
decompressed (issue #15: a small compressed variable could expand to gigabytes)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from mould.datasets import matfile
from scipy.io import loadmat, savemat

from mould.errors import InputError
from mould.limits import SizeLimits

VARIABLES = {
    "depth_1": np.arange(12, dtype=np.float32).reshape(3, 4),
    "pose": np.linspace(0, 1, 72 * 2).reshape(72, 2),
    "gender": np.zeros((2, 1), np.uint8),
    "sequence": "01_01_c0001",
    "cells": np.array([np.zeros(3), "text"], dtype=object),
}


@pytest.mark.parametrize("compressed", [False, True])
def test_numeric_variables_read_as_loadmat_reads_them(tmp_path, compressed):
    path = tmp_path / "info.mat"
    savemat(path, VARIABLES, do_compression=compressed)
    reference = loadmat(path)
    everything = matfile.load_numeric(path)
    assert set(everything) - {"__header__", "__version__", "__globals__"} == {
        "depth_1",
        "pose",
        "gender",
        "sequence",
    }
    for name in ("depth_1", "pose", "gender", "sequence"):
        np.testing.assert_array_equal(everything[name], reference[name])
    assert set(matfile.load_numeric(path, ["pose"])) >= {"pose"} and "depth_1" not in matfile.load_numeric(
        path, ["pose"]
    )


def test_a_variable_over_the_bound_is_refused_before_it_is_decompressed(tmp_path, monkeypatch):
    monkeypatch.setattr(matfile, "LIMITS", SizeLimits(mat_variable_bytes=10_000))
    path = tmp_path / "depth.mat"
    savemat(path, {"depth_1": np.zeros((100, 100))}, do_compression=True)  # 80 kB in ~100 bytes
    with pytest.raises(InputError, match="refused: variable 'depth_1' of 80,000 bytes"):
        matfile.load_numeric(path)


def test_a_variable_whose_dimensions_lie_is_refused_while_decompressing(tmp_path, monkeypatch):
    monkeypatch.setattr(matfile, "LIMITS", SizeLimits(mat_variable_bytes=10_000))
    path = tmp_path / "depth.mat"
    savemat(path, {"depth_1": np.zeros((100, 100))}, do_compression=True)
    data = path.read_bytes()
    element = bytearray(zlib.decompress(data[136:]))
    element[32:40] = struct.pack("<ii", 1, 1)  # declares 1 x 1, holds 100 x 100
    packed = zlib.compress(bytes(element))
    path.write_bytes(data[:128] + struct.pack("<II", 15, len(packed)) + packed)
    with pytest.raises(InputError, match="decompresses to over 10,000 bytes"):
        matfile.load_numeric(path)


def test_foreign_and_truncated_files_are_one_line(tmp_path):
    (tmp_path / "text.mat").write_text("not a mat file")
    savemat(tmp_path / "good.mat", VARIABLES, do_compression=True)
    (tmp_path / "cut.mat").write_bytes((tmp_path / "good.mat").read_bytes()[:200])
    for name in ("text.mat", "cut.mat"):
        with pytest.raises(InputError, match="unreadable .mat file") as error:
            matfile.load_numeric(tmp_path / name)
        assert str(error.value).startswith(str(tmp_path / name)) and "\n" not in str(error.value)

"""Every kind of bad training sample (issue #15), written beside good ones by :func:`add_bad_samples`.

Not a test module: the training and dataset tests import it. Each bad sample is a copy of a good one with
one file broken; the names say how.
"""

from __future__ import annotations

import io
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np


def npy_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    """A version-1.0 ``.npy`` header declaring ``shape`` (no data)."""
    text = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape!r}, }}"
    text += " " * ((64 - (10 + len(text) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz_members(path: Path) -> dict[str, bytes]:
    """The ``.npy`` members of an ``.npz`` file, by array name."""
    with zipfile.ZipFile(path) as archive:
        return {info.filename[:-4]: archive.read(info) for info in archive.infolist()}


def write_members(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)


def png_header_bomb(path: Path, width: int = 100_000, height: int = 100_000) -> None:
    """A valid-looking PNG of a few bytes whose header claims ``width`` x ``height`` pixels."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def add_bad_samples(folder: Path, good: str, other_resolution: Path) -> list[str]:
    """Write one bad sample of each kind into ``folder``, each a copy of sample ``good`` with one file
    broken; ``other_resolution`` is a sample (path without suffix) of another crop side. Returns their names."""
    source = folder / good

    def copy(name: str) -> Path:
        for suffix in (".png", ".npz", ".json"):
            shutil.copy(source.with_suffix(suffix), folder / f"{name}{suffix}")
        return folder / name

    made: dict[str, Path] = {}
    made["bad_resolution"] = copy("bad_resolution")
    for suffix in (".png", ".npz", ".json"):
        shutil.copy(other_resolution.with_suffix(suffix), made["bad_resolution"].with_suffix(suffix))

    made["bad_header_bomb"] = copy("bad_header_bomb")  # visible claims 200000² float32: 149 GiB
    members = npz_members(source.with_suffix(".npz"))
    write_members(
        made["bad_header_bomb"].with_suffix(".npz"),
        {**members, "visible": npy_header((200_000, 200_000)) + bytes(64)},
    )

    made["bad_zip_padding"] = copy("bad_zip_padding")  # the zip directory claims 1 MiB more than the array
    write_members(
        made["bad_zip_padding"].with_suffix(".npz"), {**members, "mask": members["mask"] + bytes(1 << 20)}
    )

    made["bad_truncated_png"] = copy("bad_truncated_png")
    data = source.with_suffix(".png").read_bytes()
    made["bad_truncated_png"].with_suffix(".png").write_bytes(data[: len(data) // 2])

    made["bad_png_bomb"] = copy("bad_png_bomb")
    png_header_bomb(made["bad_png_bomb"].with_suffix(".png"))

    made["bad_missing_png"] = copy("bad_missing_png")
    made["bad_missing_png"].with_suffix(".png").unlink()

    made["bad_json"] = copy("bad_json")
    made["bad_json"].with_suffix(".json").write_text("{not json")

    made["bad_missing_key"] = copy("bad_missing_key")
    arrays = _arrays(source.with_suffix(".npz"))
    np.savez(made["bad_missing_key"].with_suffix(".npz"), **{k: v for k, v in arrays.items() if k != "hidden"})

    made["bad_dtype"] = copy("bad_dtype")  # depths stored as int64
    np.savez(made["bad_dtype"].with_suffix(".npz"), **{**arrays, "visible": arrays["visible"].astype(np.int64)})

    made["bad_nan_normals"] = copy("bad_nan_normals")
    if "visible_normals" in arrays:
        nan = np.full_like(arrays["visible_normals"], np.nan)
        np.savez(made["bad_nan_normals"].with_suffix(".npz"), **{**arrays, "visible_normals": nan})

    made["bad_png_size"] = copy("bad_png_size")  # the PNG is not the mould's size
    from PIL import Image

    Image.new("RGB", (17, 17)).save(made["bad_png_size"].with_suffix(".png"))
    return sorted(made)

"""The on-disk sample format shared by every dataset writer and the training loader.

A sample named ``NAME`` in a folder is three files:

- ``NAME.png``: the RGB crop, N x N, 8-bit;
- ``NAME.npz``: its mould (schema of :mod:`mould.container`, normally with ground-truth normals and
  without the ``image`` key, which the PNG holds);
- ``NAME.json``: the parameters that generated it (for synthetic data: phenotype, pose, clothing, camera,
  seed) with at least ``{"name": NAME, "source": "..."}``.

Each file is written atomically; the JSON is written last, so a sample whose JSON exists is complete.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from mould import deflate
from mould.container import Mould
from mould.errors import InputError
from mould.files import write_atomic
from mould.images import load_photo
from mould.limits import LIMITS

SAMPLE_SUFFIXES = (".png", ".npz", ".json")


NPZ_COMPRESSION = 1
"""zlib level of the NPZ: level 6 took twice the time for ~10 % fewer bytes, and writing was a third of the
generator's time per sample."""


def png_bytes(image: np.ndarray) -> bytes:
    """A PNG file of an (H, W, 3) uint8 image: every row with PNG's "up" filter, deflated by
    :mod:`mould.deflate` (ISA-L's level 1; without it, zlib's Huffman coding alone).

    The generator's crops are noisy, so string matching finds little: on 40 generated crops Pillow's encoder
    (which tries the five filters on every row) took 9.5 ms at zlib level 1 with Huffman coding alone and
    12.5 with matching, where one fixed filter and Huffman coding take 3.2 ms for 2 % more bytes (113 kB),
    and ISA-L 1.2 ms (117 kB).
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image: expected (H, W, 3) uint8, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    rows = np.ascontiguousarray(image).reshape(height, width * 3)
    filtered = np.empty((height, width * 3 + 1), dtype=np.uint8)
    filtered[:, 0] = 2  # "up": each byte minus the one above it, modulo 256
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    data = deflate.compress(filtered.data, 1, raw=False, strategy=zlib.Z_HUFFMAN_ONLY)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", deflate.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB, deflate, no interlacing
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def write_sample(folder: str | os.PathLike, name: str, mould: Mould, image: np.ndarray, params: dict) -> Path:
    """Write ``name``'s PNG, NPZ and JSON into ``folder`` (JSON last). Returns the JSON path."""
    folder = Path(folder)
    if "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"name: a sample name is a plain file stem, got {name!r}")
    if image.shape != (mould.resolution, mould.resolution, 3) or image.dtype != np.uint8:
        raise ValueError(f"image: expected ({mould.resolution}, {mould.resolution}, 3) uint8, got {image.shape}")
    png = png_bytes(image)
    write_atomic(folder / f"{name}.png", lambda handle: handle.write(png))
    mould.replace(image=None).save(folder / f"{name}.npz", compression=NPZ_COMPRESSION)
    text = json.dumps({"name": name, **params}, indent=1, sort_keys=True, default=_jsonable)
    write_atomic(folder / f"{name}.json", lambda handle: handle.write(text.encode()))
    return folder / f"{name}.json"


def read_sample(folder: str | os.PathLike, name: str, resolution: int | None = None) -> tuple[Mould, dict]:
    """Read a sample; the returned mould carries the PNG as its ``image``.

    Every file's declared size is checked before it is decoded (:mod:`mould.limits`).

    Args:
        resolution: the crop side N the caller needs, or None for the sample's own; a sample of another
            side is refused from its headers.

    Raises:
        InputError: a file is missing, corrupt, oversized or of another resolution; the message names it.
    """
    folder = Path(folder)
    png, npz, meta = (folder / f"{name}{suffix}" for suffix in SAMPLE_SUFFIXES)
    for path in (png, npz, meta):
        if not path.is_file():
            raise InputError(f"{path}: missing file of sample {name}")
    if meta.stat().st_size > LIMITS.sample_json_bytes:
        raise InputError(f"{meta}: refused: {meta.stat().st_size:,} bytes, more than {LIMITS.sample_json_bytes:,}")
    try:
        params = json.loads(meta.read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"{meta}: not valid JSON ({error})") from None
    mould = Mould.load(npz, resolution=resolution)
    image = load_photo(png, size=(mould.resolution, mould.resolution)).rgb
    try:
        return mould.replace(image=image), params
    except ValueError as error:
        raise InputError(f"{npz}: {error}") from None


def sample_names(folder: str | os.PathLike) -> list[str]:
    """Sorted names of the samples in ``folder`` (those with a JSON file; completeness is checked on read)."""
    return sorted(path.stem for path in Path(folder).glob("*.json") if not path.name.startswith("."))


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")

"""Reading MATLAB v5 ``.mat`` files (SURREAL's depth, segmentation and info files) without believing them.

scipy's ``loadmat``, and even ``whosmat``, decompress a variable whole before anyone sees its size: a
variable of a few kB can expand to gigabytes. :func:`load_numeric` walks the file's top-level elements
itself: it reads each variable's header (for a compressed one, the first few hundred bytes of its zlib
stream), keeps the numeric and character variables asked for, decompresses each at most to
``LIMITS.mat_variable_bytes``, checks its declared dimensions against the same bound, and only then hands
the kept variables, as an uncompressed in-memory file, to ``loadmat``.

Format (MathWorks, "MAT-File Format", v5): a 128-byte header, then data elements, each an 8-byte tag (type,
byte count) and its data; a variable is a ``miMATRIX`` element, stored whole or inside a ``miCOMPRESSED``
(zlib) element. Its first sub-elements are the array flags (class in the low byte), the dimensions and
the name (an 8-byte tag, or a 4-byte "small element" when it holds at most 4 bytes).
"""

from __future__ import annotations

import io
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from mould.errors import InputError
from mould.limits import LIMITS

MI_INT32, MI_MATRIX, MI_COMPRESSED = 5, 14, 15
NUMERIC_CLASSES = {4: 2, 6: 8, 7: 4, 8: 1, 9: 1, 10: 2, 11: 2, 12: 4, 13: 4, 14: 8, 15: 8}
"""mxClass -> bytes an element: char (4, UTF-16), double, single, int8 ... uint64. Cells, structs,
objects and sparse arrays hold nested elements and are never loaded."""
_HEAD = 512
"""Bytes of a variable's decompressed start that hold its flags, dimensions and name."""


def _header(element: bytes, order: str) -> tuple[int, tuple[int, ...], str]:
    """(class, dims, name) of a ``miMATRIX`` element's start (its tag included)."""
    kind, _ = struct.unpack_from(order + "II", element, 0)
    if kind != MI_MATRIX:
        raise ValueError(f"element type {kind}, not a matrix")
    mx_class = struct.unpack_from(order + "I", element, 16)[0] & 0xFF
    dims_type, dims_bytes = struct.unpack_from(order + "II", element, 24)
    if dims_type != MI_INT32 or dims_bytes % 4 or dims_bytes > 4 * 32:
        raise ValueError("malformed dimensions")
    dims = struct.unpack_from(order + f"{dims_bytes // 4}i", element, 32)
    at = 32 + dims_bytes + (-dims_bytes % 8)
    first, second = struct.unpack_from(order + "II", element, at)
    if first >> 16:  # a small element: 16-bit size, 16-bit type, then 4 bytes of data
        name = element[at + 4 : at + 4 + (first >> 16)]
    else:
        name = element[at + 8 : at + 8 + second]
    return mx_class, tuple(dims), name.decode("ascii", "replace")


def load_numeric(path: str | os.PathLike, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """The numeric and character variables ``names`` (None: all) of a v5 ``.mat`` file, as ``loadmat``
    reads them, each checked against ``LIMITS.mat_variable_bytes`` before it is decompressed whole.

    Raises:
        InputError: naming the file: not a v5 ``.mat`` file, a variable over the bound, a malformed or
            truncated element. (A variable asked for but absent is simply not in the result.)
    """
    from scipy.io import loadmat

    path = Path(path)
    most = LIMITS.mat_variable_bytes
    try:
        with open(path, "rb") as file:
            header = file.read(128)
            if len(header) < 128 or header[126:128] not in (b"IM", b"MI"):
                raise ValueError("not a MATLAB v5 .mat file")
            order = "<" if header[126:128] == b"IM" else ">"
            kept = [header]
            while len(tag := file.read(8)) == 8:
                kind, count = struct.unpack(order + "II", tag)
                end = file.tell() + count
                if kind == MI_COMPRESSED:
                    data = file.read(count)  # compressed bytes are real bytes: bounded by the file's size
                    element = zlib.decompressobj().decompress(data, _HEAD)
                elif kind == MI_MATRIX:
                    element = tag + file.read(min(count, _HEAD - 8))
                else:
                    file.seek(end)
                    continue
                mx_class, dims, name = _header(element, order)
                if (names is not None and name not in names) or mx_class not in NUMERIC_CLASSES:
                    file.seek(end)
                    continue
                declared = math.prod(dims) * NUMERIC_CLASSES[mx_class]
                if declared > most or (kind == MI_MATRIX and count > most + _HEAD):
                    raise InputError(f"{path}: refused: variable {name!r} of {declared:,} bytes, over {most:,}")
                if kind == MI_COMPRESSED:
                    inflater = zlib.decompressobj()
                    element = inflater.decompress(data, most + _HEAD)
                    if inflater.unconsumed_tail:
                        raise InputError(f"{path}: refused: variable {name!r} decompresses to over {most:,} bytes")
                else:
                    element += file.read(count - (len(element) - 8))
                kept.append(element)
                file.seek(end)
        return loadmat(io.BytesIO(b"".join(kept)))
    except InputError:
        raise
    except Exception as error:  # struct, zlib and scipy raise many types for truncated or foreign files
        raise InputError(f"{path}: unreadable .mat file ({type(error).__name__}: {error})") from None

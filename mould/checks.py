"""One shape-and-dtype check for array arguments, shared by every public entry point.

Check at the door, trust inside: public functions call :func:`check_array` once and raise a
``ValueError`` that names the argument and what was expected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _shape_text(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"


def check_array(
    name: str,
    value: object,
    shape: Sequence[int | None],
    dtype: str | type | None = None,
    *,
    finite: bool = False,
) -> np.ndarray:
    """Return ``value`` as an ndarray after checking its shape (``None`` = any size) and dtype kind.

    Args:
        name: the argument's name, used in the error message.
        value: the array to check; it is not converted or reshaped.
        shape: the expected shape; ``None`` entries match any size.
        dtype: ``"float"``, ``"int"``, ``"bool"``, ``"uint8"`` or a numpy dtype; ``None`` accepts any.
        finite: also require every value to be finite.

    Raises:
        ValueError: ``"<name>: expected (H, W) float, got (2, 256, 256) float64"``.
    """
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array {_shape_text(shape)}, got {type(value).__name__}")
    ok = value.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, value.shape))
    kind_ok = True
    if dtype == "float":
        kind_ok = np.issubdtype(value.dtype, np.floating)
    elif dtype == "int":
        kind_ok = np.issubdtype(value.dtype, np.integer)
    elif dtype == "bool":
        kind_ok = value.dtype == np.bool_
    elif dtype is not None:
        kind_ok = value.dtype == np.dtype(dtype)
    if not (ok and kind_ok):
        want = _shape_text(shape) + (f" {dtype if isinstance(dtype, str) else np.dtype(dtype)}" if dtype else "")
        raise ValueError(f"{name}: expected {want}, got {tuple(value.shape)} {value.dtype}")
    if finite and not np.all(np.isfinite(value)):
        raise ValueError(f"{name}: expected finite values, found {int(np.sum(~np.isfinite(value)))} NaN or inf")
    return value


def check_option(option: str, value: float | None, low: float | None = None, high: float | None = None) -> None:
    """Range-check a numeric command-line option (None passes: "use the default"); NaN and infinities fail.

    Args:
        option: its name as typed, e.g. ``"--samples"``.
        low, high: inclusive bounds; None leaves that side open.

    Raises:
        InputError: ``"--samples: expected 100 to 2,000,000, got 1000000000"``.
    """
    from mould.errors import InputError

    if value is None:
        return
    finite = isinstance(value, int) or math.isfinite(value)  # Python ints never overflow; floats may be NaN
    inside = finite and (low is None or value >= low) and (high is None or value <= high)
    if not inside:
        if low is not None and high is not None:
            want = f"{low:,} to {high:,}"
        elif low is None and high is None:
            want = "a finite number"
        else:
            want = f">= {low:,}" if low is not None else f"<= {high:,}"
        raise InputError(f"{option}: expected {want}, got {value}")

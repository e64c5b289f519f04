"""Writing files safely: atomically, and only inside the folder the user named."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from mould.errors import InputError


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file_handle)`` on a temporary file beside ``path``, then rename it to ``path``.

    Nothing partial is ever left at ``path``: on any error the temporary file is removed.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def path_inside(folder: str | os.PathLike, name: str) -> Path:
    """``folder / name`` after checking that it cannot escape ``folder`` (no ``..``, no absolute name).

    Raises:
        InputError: the name would write outside ``folder``.
    """
    folder = Path(folder).resolve()
    target = (folder / name).resolve()
    if target != folder and folder not in target.parents:
        raise InputError(f"{name}: refusing to write outside the output folder {folder}")
    return target

"""Writing files safely: atomically, with the usual permissions, and only inside the folder the user named."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from mould.errors import InputError


def check_output_file(path: str | os.PathLike) -> Path:
    """Refuse an output path that is a folder (commands call it before their work; writers again).

    Raises:
        InputError: ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give the output a file name")
    return path


def _temporary_beside(path: Path) -> tuple[int, Path]:
    """An open temporary file in ``path``'s folder, after checking that ``path`` can be a file there.

    Raises:
        InputError: ``path`` is a folder, its folder is missing or not a folder, or cannot be written.
    """
    check_output_file(path)
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"{path}: cannot write there: {path.parent} is not a folder") from None
    except PermissionError:
        raise InputError(f"{path}: cannot write there: permission denied in {path.parent}") from None
    try:  # mkstemp makes 0600 files: give the usual umask-respecting permissions, as open() would
        os.chmod(temporary, 0o666 & ~_umask())
    except BaseException:
        os.close(handle)
        os.unlink(temporary)
        raise
    return handle, Path(temporary)


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file_handle)`` on a temporary file beside ``path``, then rename it to ``path``.

    Nothing partial is ever left at ``path``: on any error the temporary file is removed.

    Raises:
        InputError: ``path`` is a folder or its folder cannot be written (nothing is written).
    """
    write_atomic_group({Path(path): write})


def write_atomic_group(files: dict[Path, Callable[[BinaryIO], object] | bytes]) -> None:
    """Write several files all or nothing: every temporary file first, then the renames in ``files``' order.

    Args:
        files: path -> the bytes, or a function writing them to a file handle.

    If anything fails, the temporary files and the files already renamed into place are removed.

    Raises:
        InputError: a path is a folder or its folder cannot be written (nothing is written).
    """
    temporaries: dict[Path, Path] = {}
    renamed: list[Path] = []
    try:
        for path, content in files.items():
            handle, temporaries[path] = _temporary_beside(Path(path))
            with os.fdopen(handle, "wb") as file:
                if isinstance(content, bytes):
                    file.write(content)
                else:
                    content(file)
        for path, temporary in temporaries.items():
            os.replace(temporary, path)
            renamed.append(path)
    except BaseException:
        for temporary in temporaries.values():
            temporary.unlink(missing_ok=True)
        for path in renamed:
            Path(path).unlink(missing_ok=True)
        raise


def check_output_folder(folder: str | os.PathLike, file: str | os.PathLike | None = None) -> None:
    """Check, before any work and without creating anything, that ``folder`` is or can be made a folder
    that files can be written in: a run that then fails early leaves nothing behind.

    Args:
        file: the output file the folder is for, which the error then names; default the folder.

    Raises:
        InputError: it, or the nearest existing folder above it, is a file or cannot be written.
    """
    folder = Path(folder).absolute()
    subject = folder if file is None else file
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{subject}: cannot write there: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{subject}: cannot write there: permission denied in {existing}")


def output_folder(folder: str | os.PathLike, file: str | os.PathLike | None = None) -> Path:
    """Create ``folder`` (and its parents) and check that files can be written in it, before any work.

    Args:
        file: the output file the folder is for, which the error then names; default the folder.

    Returns:
        The folder, resolved.

    Raises:
        InputError: it is a file, or cannot be created or written.
    """
    folder = Path(folder)
    subject = folder if file is None else file
    check_output_folder(folder, file)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".mould-write-test.")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise InputError(f"{subject}: cannot write there ({error.strerror or error})") from None
    return folder.resolve()


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

"""Reading triangle meshes from files (PLY, OBJ, STL, OFF, GLB/GLTF) with clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mould.errors import InputError
from mould.limits import LIMITS

MESH_SUFFIXES = (".ply", ".obj", ".stl", ".off", ".glb", ".gltf")


def load_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load a triangle mesh, merging every geometry of a scene into one.

    Returns:
        vertices: (V, 3) float64, in the file's units (metres expected).
        faces: (F, 3) int64.

    The file's size is checked before it is read, and the counts after (``LIMITS.mesh_file_bytes``,
    ``LIMITS.mesh_faces``): the readers allocate from the data actually present, never from the counts a
    header declares (tested on PLY, OFF, STL, OBJ and GLB headers that lie).

    Raises:
        InputError: missing, empty, oversized, unsupported or unreadable file; no faces, faces indexing
            missing vertices, or no area at all; NaN vertices.
    """
    import trimesh  # lazy: trimesh pulls in a lot

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    size, most = path.stat().st_size, LIMITS.mesh_file_bytes
    if size > most:
        raise InputError(f"{path}: refused: {size / 2**30:.3g} GiB, more than {most / 2**30:.3g} GiB")
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        known = ", ".join(MESH_SUFFIXES)
        raise InputError(f"{path}: unsupported mesh format {suffix or '(none)'}; use one of {known}")
    try:
        loaded = trimesh.load(path, force="mesh", process=False)
    except Exception as error:  # trimesh raises many types for corrupt files
        raise InputError(f"{path}: cannot read the mesh ({type(error).__name__}: {error})") from None
    vertices = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))), dtype=np.float64)
    faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))), dtype=np.int64)
    if len(faces) == 0:
        raise InputError(f"{path}: the mesh has no faces")
    if len(faces) > LIMITS.mesh_faces:
        raise InputError(f"{path}: refused: {len(faces):,} triangles, more than {LIMITS.mesh_faces:,}")
    if faces.ndim != 2 or faces.shape[1] != 3 or vertices.ndim != 2 or vertices.shape[1] != 3:
        raise InputError(f"{path}: not a triangle mesh (faces {faces.shape}, vertices {vertices.shape})")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise InputError(f"{path}: faces index vertices that do not exist")
    if not np.all(np.isfinite(vertices)):
        raise InputError(f"{path}: the mesh has NaN or infinite vertices")
    if not _has_area(vertices, faces):
        raise InputError(f"{path}: the mesh has zero area (every triangle is degenerate)")
    return vertices, faces


def _has_area(vertices: np.ndarray, faces: np.ndarray, chunk: int = 1 << 20) -> bool:
    """Whether any triangle has a non-zero area (checked a chunk at a time: it is nearly always the first)."""
    for start in range(0, len(faces), chunk):
        corners = vertices[faces[start : start + chunk]]
        if np.any(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])):
            return True
    return False

"""Reading triangle meshes from files (PLY, OBJ, STL, OFF, GLB/GLTF) with clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mould.errors import InputError

MESH_SUFFIXES = (".ply", ".obj", ".stl", ".off", ".glb", ".gltf")


def load_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load a triangle mesh, merging every geometry of a scene into one.

    Returns:
        vertices: (V, 3) float64, in the file's units (metres expected).
        faces: (F, 3) int64.

    Raises:
        InputError: missing, empty, unsupported or unreadable file; no faces; NaN vertices.
    """
    import trimesh  # lazy: trimesh pulls in a lot

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
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
    if not np.all(np.isfinite(vertices)):
        raise InputError(f"{path}: the mesh has NaN or infinite vertices")
    return vertices, faces

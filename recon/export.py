"""Writing reconstructions to standard files, atomically (a temporary file renamed into place)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mould.checks import check_array
from mould.files import write_atomic


def write_points_ply(
    path: str | os.PathLike, points: np.ndarray, normals: np.ndarray, colors: np.ndarray | None = None
) -> Path:
    """Write an oriented point cloud as binary little-endian PLY.

    Args:
        points: (P, 3) float, metres.
        normals: (P, 3) float, unit.
        colors: optional (P, 3) uint8 RGB.
    """
    points = check_array("points", np.asarray(points), (None, 3), "float")
    normals = check_array("normals", np.asarray(normals), (len(points), 3), "float")
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    if colors is not None:
        check_array("colors", np.asarray(colors), (len(points), 3), np.uint8)
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    record = np.empty(len(points), dtype=fields)
    for i, axis in enumerate("xyz"):
        record[axis] = points[:, i]
        record["n" + axis] = normals[:, i]
    if colors is not None:
        for i, channel in enumerate(("red", "green", "blue")):
            record[channel] = colors[:, i]
    ply_types = {"<f4": "float", "u1": "uchar"}
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(points)}"]
    header += [f"property {ply_types[t]} {name}" for name, t in fields] + ["end_header"]

    def write(file) -> None:
        file.write(("\n".join(header) + "\n").encode("ascii"))
        file.write(record.tobytes())

    path = Path(path)
    write_atomic(path, write)
    return path

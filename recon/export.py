"""Writing reconstructions to standard files, atomically (temporary files renamed into place).

Formats, chosen by the path's extension in :func:`write_mesh`:

- ``.obj``: OBJ + MTL + PNG texture (``NAME.obj``, ``NAME.mtl``, ``NAME_texture.png``: never ``NAME.png``,
  which would replace a photo of that name beside it), UV-mapped; seam twins are
  written as one position with two UVs (``f v/vt``), so the geometry stays watertight. The three
  files are written all or nothing. Without a texture, vertex colours follow the positions (``v x y z r g b``).
- ``.ply``: binary PLY with per-vertex RGB colours (the texture sampled at each vertex), seam twins merged.
- ``.glb``: binary glTF with the texture embedded (:mod:`mould.recon.gltf`); glTF stores attributes per
  vertex, so seam vertices stay duplicated there.

Meshes are written in metres, in the frame they are in (see :mod:`mould.recon.mesh`). The mesh's metadata
(mesher, back texture strategy, ...) goes into comment lines of OBJ and PLY headers and into the glTF
mesh's ``extras``.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from mould.checks import check_array
from mould.errors import InputError
from mould.files import write_atomic, write_atomic_group

MESH_EXTENSIONS = (".obj", ".ply", ".glb")


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


# -- meshes ---------------------------------------------------------------------------------------------------
def _metadata_line(mesh) -> str:
    """The metadata as one line of ASCII JSON (non-ASCII escaped), for header comments."""
    return json.dumps(mesh.metadata, sort_keys=True, ensure_ascii=True, default=str).replace("\n", " ")


def png_bytes(image: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 image as PNG file bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def texture_path(obj: Path) -> Path:
    """The texture file an OBJ's material names: ``NAME_texture.png`` beside ``NAME.obj``."""
    return obj.with_name(f"{obj.stem}_texture.png")


def output_paths(path: str | os.PathLike, textured: bool = True) -> list[Path]:
    """Every file :func:`write_mesh` writes for ``path`` (an OBJ's material and texture too)."""
    path = Path(path)
    if path.suffix.lower() == ".obj" and textured:
        return [texture_path(path), path.with_suffix(".mtl"), path]
    return [path]


def obj_files(path: Path, mesh) -> dict[Path, bytes]:
    """The contents of ``NAME_texture.png``, ``NAME.mtl`` (if textured) and ``NAME.obj``, in writing order."""
    first, position_of = mesh.seams()
    positions = mesh.vertices[first]
    lines = [
        "# mould reconstruction: metres",
        f"# mould metadata: {_metadata_line(mesh)}",
    ]
    out: dict[Path, bytes] = {}
    textured = mesh.texture is not None
    if textured:
        png, mtl = texture_path(path), path.with_suffix(".mtl")
        out[png] = png_bytes(np.asarray(mesh.texture))
        out[mtl] = (
            "# mould reconstruction material\nnewmtl person\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\n"
            f"map_Kd {png.name}\n"
        ).encode("ascii")
        lines += [f"mtllib {mtl.name}", "usemtl person"]
    text = ["\n".join(lines) + "\n"]
    if mesh.colors is not None and not textured:
        colors = mesh.colors[first].astype(np.float64) / 255
        text.append(_rows("v %.6f %.6f %.6f %.4f %.4f %.4f\n", np.hstack([positions, colors])))
    else:
        text.append(_rows("v %.6f %.6f %.6f\n", positions))
    faces = mesh.faces.astype(np.int64)
    if textured:
        text.append(_rows("vt %.6f %.6f\n", mesh.uv))
        corners = np.stack([position_of[faces] + 1, faces + 1], axis=-1).reshape(len(faces), 6)
        text.append(_rows("f %d/%d %d/%d %d/%d\n", corners))
    else:
        text.append(_rows("f %d %d %d\n", position_of[faces] + 1))
    out[path] = "".join(text).encode("ascii")
    return out


def _rows(line: str, values: np.ndarray) -> str:
    """``line`` (a %-format of one row, newline included) applied to every row of a (R, C) array: one string
    formatting call for the whole array, ~6x faster than ``numpy.savetxt``'s loop, and the same text."""
    return (line * len(values)) % tuple(np.asarray(values).ravel().tolist())


def ply_bytes(mesh) -> bytes:
    """Binary little-endian PLY: float32 positions, uchar RGB when the mesh has colours, int32 faces."""
    first, position_of = mesh.seams()
    positions = mesh.vertices[first]
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if mesh.colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vertex = np.empty(len(positions), dtype=fields)
    for i, axis in enumerate("xyz"):
        vertex[axis] = positions[:, i]
    if mesh.colors is not None:
        for i, channel in enumerate(("red", "green", "blue")):
            vertex[channel] = mesh.colors[first, i]
    face = np.empty(len(mesh.faces), dtype=[("count", "u1"), ("index", "<i4", (3,))])
    face["count"] = 3
    face["index"] = position_of[mesh.faces]
    header = [
        "ply",
        "format binary_little_endian 1.0",
        "comment mould reconstruction: metres",
        f"comment mould metadata: {_metadata_line(mesh)}",
        f"element vertex {len(positions)}",
        *(f"property {'float' if t == '<f4' else 'uchar'} {name}" for name, t in fields),
        f"element face {len(mesh.faces)}",
        "property list uchar int vertex_indices",
        "end_header",
    ]
    return ("\n".join(header) + "\n").encode("ascii") + vertex.tobytes() + face.tobytes()


def glb_bytes(mesh) -> bytes:
    """Binary glTF: positions, UVs and the texture embedded as PNG (or vertex colours), metadata in extras
    (:mod:`mould.recon.gltf`)."""
    from mould.recon.gltf import glb_bytes as gltf_file

    return gltf_file(mesh)


def write_mesh(path: str | os.PathLike, mesh) -> list[Path]:
    """Write ``mesh`` (a :class:`mould.recon.mesh.Mesh`) in the format of ``path``'s extension, atomically.

    Args:
        path: ``.obj`` (+ ``.mtl`` and ``_texture.png`` beside it when textured), ``.ply`` or ``.glb``.
        mesh: the mesh; metres.

    Returns:
        The paths written.

    Raises:
        InputError: unknown extension (nothing is written).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MESH_EXTENSIONS:
        raise InputError(
            f"{path}: unknown mesh format {suffix or '(no extension)'}; use one of {', '.join(MESH_EXTENSIONS)}"
        )
    if len(mesh.faces) == 0:
        raise InputError(f"{path}: the mesh has no faces")
    if suffix == ".obj":
        files = obj_files(path, mesh)
        write_atomic_group(files)
        return list(files)
    data = ply_bytes(mesh) if suffix == ".ply" else glb_bytes(mesh)
    write_atomic(path, lambda handle: handle.write(data))
    return [path]

"""``mould decode``'s pipeline: a mould file -> a watertight, textured mesh file (or oriented points).

The mesh stays in the mould's world frame (metres), so the decoding of an encoded mesh overlays that mesh.
The texture is the mould's own crop, or an N x N image given instead; the back is coloured as
:data:`mould.recon.texture.BACK_TEXTURES` say.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mould.recon.export import MESH_EXTENSIONS
from mould.recon.mesh import MESHERS, Mesher
from mould.recon.texture import BACK_TEXTURES, BackTexture

from mould.errors import InputError
from mould.files import check_output_file, output_folder

POISSON_BACKENDS = ("pymeshlab", "open3d")
NORMAL_SOURCES = ("auto", "gradient", "stored")


@dataclass(frozen=True)
class DecodeConfig:
    """Options of ``mould decode``."""

    mould: Path
    """Input ``.npz`` mould file."""
    output: Path
    """Output file: a mesh ``.obj`` (+ ``.mtl`` and ``_texture.png``), ``.ply`` or ``.glb``; with ``points``,
    a ``.ply`` oriented point cloud."""
    points: bool = False
    """Write the oriented point cloud instead of a mesh."""
    mesher: Mesher = "poisson"
    """Screened Poisson on the oriented points (smooth, ~0.7 s at 256²) or direct stitching of the two maps
    (~30 ms)."""
    poisson_backend: Literal["pymeshlab", "open3d"] = "pymeshlab"
    """The screened Poisson implementation."""
    depth: int = 7
    """Poisson octree depth, 4 to 12 (see :class:`mould.recon.poisson.PoissonConfig`)."""
    normals: Literal["auto", "gradient", "stored"] = "auto"
    """Where normals come from: the depth gradients, the mould's stored normals, or stored when present."""
    side_band: bool = True
    """Add points along the silhouette's side band between the two maps (points and Poisson)."""
    texture: Path | None = None
    """An N x N image to texture the mesh with; default: the mould's own crop, if it holds one."""
    back_texture: BackTexture = "mirror"
    """How the unseen back is coloured."""
    untextured: bool = False
    """Write the bare mesh, even if the mould holds an image."""

    def __post_init__(self) -> None:
        suffix = self.output.suffix.lower()
        if self.points and suffix != ".ply":
            raise InputError(f"{self.output}: --points writes a .ply file")
        if not self.points and suffix not in MESH_EXTENSIONS:
            raise InputError(
                f"{self.output}: unknown mesh format {suffix or '(no extension)'}; "
                f"use one of {', '.join(MESH_EXTENSIONS)}"
            )
        for option, value, allowed in (
            ("--mesher", self.mesher, MESHERS),
            ("--poisson-backend", self.poisson_backend, POISSON_BACKENDS),
            ("--normals", self.normals, NORMAL_SOURCES),
            ("--back-texture", self.back_texture, BACK_TEXTURES),
        ):
            if value not in allowed:
                raise InputError(f"{option}: expected one of {', '.join(allowed)}, got {value}")
        if not 4 <= self.depth <= 12:
            raise InputError(f"--depth: expected 4 to 12, got {self.depth}")
        if self.texture is not None and self.untextured:
            raise InputError("--texture and --untextured contradict each other")
        check_output_file(self.output)


@dataclass(frozen=True)
class Decoded:
    """What :func:`decode_file` wrote.

    Attributes:
        written: the files written (an OBJ brings its ``.mtl`` and texture).
        points: oriented points written (``--points``), else 0.
        triangles: triangles of the mesh, else 0.
        watertight: the mesh is closed and manifold; open_edges: its boundary edges otherwise.
        textured: the mesh carries a texture.
        seconds: time spent meshing.
    """

    written: list[Path]
    points: int = 0
    triangles: int = 0
    watertight: bool = False
    open_edges: int = 0
    textured: bool = False
    seconds: float = 0.0


def decode_file(config: DecodeConfig) -> Decoded:
    """Run ``mould decode``: read the mould, mesh (or sample) it, texture it, write the output atomically.

    Raises:
        InputError: a bad mould file or texture, an empty mask, stored normals asked of a mould without
            them, or a mould the mesher cannot mesh; each names the file.
    """
    from mould.container import Mould

    mould = Mould.load(config.mould)
    if not mould.mask.any():
        raise InputError(f"{config.mould}: no person in this mould (the mask is empty)")
    if config.normals == "stored" and not mould.has_normals:
        raise InputError(f"{config.mould}: --normals stored, but this mould holds no normals")
    output_folder(config.output.parent, config.output)
    if config.points:
        from mould.recon.export import write_points_ply

        from mould.decode import mould_to_points

        cloud = mould_to_points(mould, normals=config.normals, side=config.side_band)
        return Decoded(written=[write_points_ply(config.output, cloud.points, cloud.normals)], points=len(cloud))

    from mould.recon.export import write_mesh
    from mould.recon.mesh import mould_to_mesh, topology
    from mould.recon.poisson import PoissonConfig

    image = None
    if not config.untextured:
        given = _texture_image(config.texture, mould.resolution)
        image = mould.image if given is None else given
    start = time.perf_counter()
    try:
        mesh = mould_to_mesh(
            mould,
            mesher=config.mesher,
            normals=config.normals,
            side_band=config.side_band,
            poisson=PoissonConfig(backend=config.poisson_backend, depth=config.depth),
        )
    except InputError as error:
        raise InputError(f"{config.mould}: {error}") from None
    seconds = time.perf_counter() - start
    if image is not None:
        from mould.recon.texture import texture_mesh

        mesh = texture_mesh(mesh, mould, image, back=config.back_texture)
    written = write_mesh(config.output, mesh)
    report = topology(*mesh.geometry())
    return Decoded(
        written=[Path(path) for path in written],
        triangles=len(mesh.faces),
        watertight=report.watertight,
        open_edges=report.boundary_edges,
        textured=image is not None,
        seconds=seconds,
    )


def _texture_image(path: Path | None, resolution: int):
    """The (N, N, 3) uint8 image at ``path``, or None when no path is given.

    Raises:
        InputError: unreadable, or not N x N.
    """
    if path is None:
        return None
    from mould.images import load_photo

    image = load_photo(path).rgb
    if image.shape[:2] != (resolution, resolution):
        raise InputError(
            f"{path}: the texture is {image.shape[1]}x{image.shape[0]} but the mould is {resolution}x{resolution}"
        )
    return image

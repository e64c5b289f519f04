"""``mould decode MOULD.npz -o MESH.{obj,ply,glb}``: a mould to a watertight, textured mesh (or ``--points``)."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mould.errors import InputError
from mould.files import check_output_file, output_folder

log = logging.getLogger(__name__)

MESH_SUFFIXES = (".obj", ".ply", ".glb")


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
    mesher: Literal["poisson", "stitch"] = "poisson"
    """Screened Poisson on the oriented points (smooth) or direct stitching of the two maps (fast)."""
    poisson_backend: Literal["pymeshlab", "open3d"] = "pymeshlab"
    """The screened Poisson implementation."""
    depth: int = 7
    """Poisson octree depth (see :class:`mould.recon.poisson.PoissonConfig`)."""
    normals: Literal["auto", "gradient", "stored"] = "auto"
    """Where normals come from: the depth gradients, the mould's stored normals, or stored when present."""
    side_band: bool = True
    """Add points along the silhouette's side band between the two maps (points and Poisson)."""
    texture: Path | None = None
    """An N x N image to texture the mesh with; default: the mould's own crop, if it holds one."""
    back_texture: Literal["mirror", "nearest", "none"] = "mirror"
    """How the unseen back is coloured."""
    untextured: bool = False
    """Write the bare mesh, even if the mould holds an image."""

    def __post_init__(self) -> None:
        suffix = self.output.suffix.lower()
        if self.points and suffix != ".ply":
            raise InputError(f"{self.output}: --points writes a .ply file")
        if not self.points and suffix not in MESH_SUFFIXES:
            raise InputError(
                f"{self.output}: unknown mesh format {suffix or '(no extension)'}; use .obj, .ply or .glb"
            )
        if self.mesher not in ("poisson", "stitch"):
            raise InputError(f"--mesher: expected poisson or stitch, got {self.mesher}")
        if self.poisson_backend not in ("pymeshlab", "open3d"):
            raise InputError(f"--poisson-backend: expected pymeshlab or open3d, got {self.poisson_backend}")
        if not 4 <= self.depth <= 12:
            raise InputError(f"--depth: expected 4 to 12, got {self.depth}")
        if self.back_texture not in ("mirror", "nearest", "none"):
            raise InputError(f"--back-texture: expected mirror, nearest or none, got {self.back_texture}")
        if self.texture is not None and self.untextured:
            raise InputError("--texture and --untextured contradict each other")
        check_output_file(self.output)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "decode",
        help="mould (.npz) -> watertight textured mesh (.obj/.ply/.glb), or oriented points (--points)",
        description="Decode a mould into one watertight mesh in the mould's world frame (metres), so the "
        "decoding of an encoded mesh overlays that mesh. The format follows the output's extension: .obj "
        "(+ .mtl + _texture.png), .ply (vertex colours) or .glb (embedded texture). The texture is the "
        "mould's crop (or --texture); the back is coloured by --back-texture.",
    )
    p.add_argument("mould", type=Path, help="input mould file (.npz)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output file: .obj, .ply or .glb")
    p.add_argument("--points", action="store_true", help="write the oriented point cloud as PLY with normals")
    p.add_argument(
        "--mesher",
        choices=("poisson", "stitch"),
        default="poisson",
        help="screened Poisson (default, smooth, ~0.7 s at 256²) or direct stitching of the two maps (~30 ms)",
    )
    p.add_argument(
        "--poisson-backend",
        choices=("pymeshlab", "open3d"),
        default="pymeshlab",
        help="screened Poisson implementation (default pymeshlab)",
    )
    p.add_argument("--depth", type=int, default=7, help="Poisson octree depth, 4 to 12 (default 7)")
    p.add_argument(
        "--normals",
        choices=("auto", "gradient", "stored"),
        default="auto",
        help="normals from depth gradients, from the mould's stored normals, or stored when present (default)",
    )
    p.add_argument("--no-side-band", dest="side_band", action="store_false", help="omit the silhouette side band")
    p.add_argument(
        "--texture", type=Path, default=None, help="N x N image to texture with (default: the mould's own crop)"
    )
    p.add_argument(
        "--back-texture",
        choices=("mirror", "nearest", "none"),
        default="mirror",
        help="colour the back with the front colour through the body (mirror, default), the nearest visible "
        "colour (nearest), or grey (none)",
    )
    p.add_argument("--untextured", action="store_true", help="write the bare mesh even if the mould has an image")
    p.set_defaults(run=run)


def _texture_image(config: DecodeConfig, resolution: int):
    """The (N, N, 3) uint8 texture image to use, or None."""
    if config.untextured or config.texture is None:
        return None
    from mould.images import load_photo

    image = load_photo(config.texture).rgb
    if image.shape[:2] != (resolution, resolution):
        raise InputError(
            f"{config.texture}: the texture is {image.shape[1]}x{image.shape[0]} but the mould is "
            f"{resolution}x{resolution}"
        )
    return image


def run(args: argparse.Namespace) -> int:
    config = DecodeConfig(
        mould=args.mould,
        output=args.output,
        points=args.points,
        mesher=args.mesher,
        poisson_backend=args.poisson_backend,
        depth=args.depth,
        normals=args.normals,
        side_band=args.side_band,
        texture=args.texture,
        back_texture=args.back_texture,
        untextured=args.untextured,
    )
    from mould.container import Mould

    mould = Mould.load(config.mould)
    if not mould.mask.any():
        raise InputError(f"{config.mould}: no person in this mould (the mask is empty)")
    if config.normals == "stored" and not mould.has_normals:
        raise InputError(f"{config.mould}: --normals stored, but this mould holds no normals")
    output_folder(config.output.parent, config.output)
    if config.points:
        from mould.decode import mould_to_points
        from mould.recon.export import write_points_ply

        cloud = mould_to_points(mould, normals=config.normals, side=config.side_band)
        write_points_ply(config.output, cloud.points, cloud.normals)
        print(f"wrote {config.output}: {len(cloud)} oriented points")
        return 0

    import time

    from mould.recon.export import write_mesh
    from mould.recon.mesh import mould_to_mesh, topology
    from mould.recon.poisson import PoissonConfig

    image = _texture_image(config, mould.resolution)
    if image is None and not config.untextured:
        image = mould.image
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
    state = "watertight" if report.watertight else f"NOT watertight ({report.boundary_edges} open edges)"
    texture = f", textured (back: {config.back_texture})" if image is not None else ", untextured"
    print(
        f"wrote {', '.join(str(path) for path in written)}: {len(mesh.faces)} triangles, {state}{texture}; "
        f"{config.mesher} took {seconds:.2f} s"
    )
    return 0

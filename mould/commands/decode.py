"""``mould decode MOULD.npz -o MESH.{obj,ply,glb}``: a mould to a watertight, textured mesh (or ``--points``).

The options map onto :class:`mould.recon.decoding.DecodeConfig` (defaults live there); the work is
:func:`mould.recon.decoding.decode_file`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from mould.recon.decoding import NORMAL_SOURCES, POISSON_BACKENDS, DecodeConfig
    from mould.recon.mesh import MESHERS
    from mould.recon.texture import BACK_TEXTURES

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
        choices=MESHERS,
        default=DecodeConfig.mesher,
        help="screened Poisson (smooth, ~0.7 s at 256²) or direct stitching of the two maps (~30 ms); "
        "default %(default)s",
    )
    p.add_argument(
        "--poisson-backend",
        choices=POISSON_BACKENDS,
        default=DecodeConfig.poisson_backend,
        help="screened Poisson implementation (default %(default)s)",
    )
    p.add_argument(
        "--depth", type=int, default=DecodeConfig.depth, help="Poisson octree depth, 4 to 12 (default %(default)s)"
    )
    p.add_argument(
        "--normals",
        choices=NORMAL_SOURCES,
        default=DecodeConfig.normals,
        help="normals from depth gradients, from the mould's stored normals, or stored when present "
        "(auto); default %(default)s",
    )
    p.add_argument("--no-side-band", dest="side_band", action="store_false", help="omit the silhouette side band")
    p.add_argument("--texture", type=Path, help="N x N image to texture with (default: the mould's own crop)")
    p.add_argument(
        "--back-texture",
        choices=BACK_TEXTURES,
        default=DecodeConfig.back_texture,
        help="colour the back with the front colour through the body (mirror) or smoothed (smooth), the "
        "nearest visible colour (nearest), grey (none), or the mould's back colour (predicted); "
        "default %(default)s",
    )
    p.add_argument("--untextured", action="store_true", help="write the bare mesh even if the mould has an image")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mould.recon.decoding import DecodeConfig, decode_file

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
    result = decode_file(config)
    if config.points:
        print(f"wrote {config.output}: {result.points} oriented points")
        return 0
    state = "watertight" if result.watertight else f"NOT watertight ({result.open_edges} open edges)"
    texture = f", textured (back: {config.back_texture})" if result.textured else ", untextured"
    files = ", ".join(str(path) for path in result.written)
    took = f"{config.mesher} took {result.seconds:.2f} s"
    print(f"wrote {files}: {result.triangles} triangles, {state}{texture}; {took}")
    return 0

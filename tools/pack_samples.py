"""Pack a folder of training samples into one small file, and unpack it again.

Moves a synthetic training set to a machine that cannot run ``mould synth`` (a rented GPU with no anny or
open3d) within a small transfer budget: about 27 KB a sample instead of 250 KB. Lossy, on purpose:

- the crop becomes a JPEG (quality 90: a mean error of 2-3 grey levels);
- depths are stored relative to the sample's median visible depth in steps of 0.5 mm, delta-coded along
  rows and LZMA-compressed (the maps are smooth, so the deltas are small);
- stored normals, back colours and the generator's parameters other than the source are dropped (training
  derives normals from depth).

Usage::

    python tools/pack_samples.py pack DIR OUT_PREFIX [--start I] [--count N] [--parts K]
    python tools/pack_samples.py unpack DIR ARCHIVE.mpk... [--workers W]
"""

from __future__ import annotations

import argparse
import io
import logging
import lzma
import sys
from pathlib import Path

import numpy as np

STEP = 0.0005
"""Metres per stored depth unit."""
MAX_UNPACKED_BYTES = 4 << 30
"""A packed file decompresses to at most this (4 GiB, ~14,000 samples at 256²; unpacking holds one file in
memory): an LZMA stream of a few kB can claim terabytes. Pack more ``--parts`` for more samples."""


def _encode_depth(depth: np.ndarray, mask: np.ndarray, reference: float) -> np.ndarray:
    """(N, N) metres -> (N, N) int16 row deltas of the depth in ``STEP`` units relative to ``reference``."""
    steps = np.where(mask, np.round((depth - reference) / STEP), 0).astype(np.int32)
    deltas = np.diff(steps, axis=1, prepend=0)
    if np.abs(deltas).max(initial=0) > np.iinfo(np.int16).max:
        raise ValueError("a depth step too large to store")
    return deltas.astype(np.int16)


def _decode_depth(deltas: np.ndarray, mask: np.ndarray, reference: float) -> np.ndarray:
    steps = np.cumsum(deltas.astype(np.int32), axis=1)
    return np.where(mask, reference + steps * STEP, 0).astype(np.float32)


_FIELDS = ("visible", "hidden", "mask", "reference", "intrinsics", "cam_to_world", "kind", "jpeg_size", "name")
"""The arrays of a packed file, one entry per sample (plus ``jpeg``, the crops' bytes end to end)."""


def pack(folder: Path, names: list[str], output: Path) -> int:
    """Pack the samples ``names`` of ``folder`` into the file ``output``; returns their count."""
    import imageio.v3 as iio
    from mould.datasets.samples import read_sample

    from mould.files import write_atomic

    arrays: dict[str, list] = {key: [] for key in _FIELDS}
    jpegs = []
    for name in names:
        mould, _ = read_sample(folder, name)
        reference = float(np.median(mould.visible[mould.mask]))
        arrays["visible"].append(_encode_depth(mould.visible, mould.mask, reference))
        arrays["hidden"].append(_encode_depth(mould.hidden, mould.mask, reference))
        arrays["mask"].append(np.packbits(mould.mask))
        arrays["reference"].append(reference)
        arrays["intrinsics"].append([mould.camera.focal, mould.camera.cx, mould.camera.cy])
        arrays["cam_to_world"].append(mould.camera.cam_to_world)
        arrays["kind"].append(mould.camera.kind)
        arrays["name"].append(name)
        buffer = io.BytesIO()
        iio.imwrite(buffer, mould.image, extension=".jpg", quality=90)
        jpegs.append(np.frombuffer(buffer.getvalue(), np.uint8))
        arrays["jpeg_size"].append(len(jpegs[-1]))
    stacked = {key: np.asarray(value) for key, value in arrays.items()}
    buffer = io.BytesIO()
    np.savez(buffer, jpeg=np.concatenate(jpegs), **stacked)
    packed = lzma.compress(buffer.getvalue(), preset=6)
    write_atomic(output, lambda handle: handle.write(packed))
    return len(names)


def _crop(jpeg: bytes, resolution: int) -> np.ndarray:
    """A packed crop: (N, N, 3) uint8, its size checked from the JPEG header before it is decoded."""
    from PIL import Image

    with Image.open(io.BytesIO(jpeg)) as image:
        if image.size != (resolution, resolution):
            raise ValueError(f"a {image.size[0]}x{image.size[1]} crop where {resolution}x{resolution} is expected")
        return np.asarray(image.convert("RGB"))


def unpack(archive: Path, folder: Path) -> int:
    """Write the samples packed in ``archive`` into ``folder``; returns their count."""
    from mould.datasets.samples import write_sample

    from mould.camera import Camera
    from mould.container import Mould
    from mould.limits import SizeLimits
    from mould.npz import NpzArchive

    decompressor = lzma.LZMADecompressor()
    unpacked = decompressor.decompress(archive.read_bytes(), max_length=MAX_UNPACKED_BYTES)
    if not decompressor.eof:
        raise ValueError(f"{archive}: decompresses to more than {MAX_UNPACKED_BYTES / 2**30:.0f} GiB")
    limits = SizeLimits(npz_bytes=MAX_UNPACKED_BYTES)
    with NpzArchive(io.BytesIO(unpacked), limits, name=str(archive)) as packed:  # headers checked first
        arrays = packed.read_all()
    folder.mkdir(parents=True, exist_ok=True)
    ends = np.cumsum(arrays["jpeg_size"])
    for index, name in enumerate(arrays["name"]):
        resolution = arrays["visible"][index].shape[0]
        mask = np.unpackbits(arrays["mask"][index])[: resolution * resolution].reshape(resolution, -1).astype(bool)
        reference = float(arrays["reference"][index])
        focal, cx, cy = arrays["intrinsics"][index]
        camera = Camera(
            kind=str(arrays["kind"][index]),
            resolution=resolution,
            focal=float(focal),
            cx=float(cx),
            cy=float(cy),
            cam_to_world=arrays["cam_to_world"][index],
        )
        mould = Mould(
            visible=_decode_depth(arrays["visible"][index], mask, reference),
            hidden=_decode_depth(arrays["hidden"][index], mask, reference),
            mask=mask,
            camera=camera,
        )
        image = _crop(arrays["jpeg"][ends[index] - arrays["jpeg_size"][index] : ends[index]].tobytes(), resolution)
        write_sample(folder, str(name), mould, image, {"source": f"packed {archive.name}"})
    return len(arrays["name"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("pack", help="a sample folder -> one packed file")
    p.add_argument("folder", type=Path, help="folder of samples (mould synth output)")
    p.add_argument("prefix", type=Path, help="output files: PREFIX.000.mpk, PREFIX.001.mpk, ...")
    p.add_argument("--start", type=int, default=0, help="first sample, in name order (default 0)")
    p.add_argument("--count", type=int, default=None, help="samples to pack (default: all)")
    p.add_argument("--parts", type=int, default=1, help="files to spread them over, unpacked in parallel")
    u = commands.add_parser("unpack", help="packed files -> a sample folder")
    u.add_argument("folder", type=Path, help="folder to write the samples into")
    u.add_argument("archives", type=Path, nargs="+", help="packed files")
    u.add_argument("--workers", type=int, default=4, help="processes (default 4)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from concurrent.futures import ProcessPoolExecutor

    from mould.errors import MouldError

    if args.command == "pack":
        from mould.datasets.samples import sample_names

        names = sample_names(args.folder)[args.start :]
        names = names[: args.count] if args.count is not None else names
        outputs = [args.prefix.with_name(f"{args.prefix.name}.{part:03d}.mpk") for part in range(args.parts)]
        parts = [names[part :: args.parts] for part in range(args.parts)]
        with ProcessPoolExecutor(max_workers=min(args.parts, 4)) as pool:
            count = sum(pool.map(pack, [args.folder] * args.parts, parts, outputs))
        size = sum(output.stat().st_size for output in outputs) / 2**20
        print(f"packed {count} samples into {args.parts} files {args.prefix}.*.mpk ({size:.1f} MiB)")
    else:
        try:
            with ProcessPoolExecutor(max_workers=args.workers) as pool:
                count = sum(pool.map(unpack, args.archives, [args.folder] * len(args.archives)))
        except (OSError, lzma.LZMAError, KeyError, ValueError, MouldError) as error:
            print(f"pack_samples unpack: error: not a packed sample file ({error})", file=sys.stderr)
            return 2
        print(f"unpacked {count} samples into {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Paste generated people onto person-free photos: real clutter around people whose true masks are known.

For each of the first COUNT samples of a sample folder (``mould synth``: the PNG and its mould's mask), a
square of SIDE pixels is cut at random from a background image (the folder's images in turn, magnified
when smaller than SIDE), and the person's pixels are pasted at a random place inside it. Each composite is
written as ``pNNNNNN.png`` with its true silhouette beside it as ``pNNNNNN_mask.png``, the convention of
``mould bench photos`` and ``tools/outline_scores.py``, which then score the framing and the outline on real
backgrounds. The same arguments give the same photos.

Usage::

    python tools/pasted_people.py OUTDIR --people FOLDER --backgrounds FOLDER [--count 60] [--side 384] [--seed 7]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np


def pasted_people(
    people: list[Path], backgrounds: list[np.ndarray], side: int, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(photo (side, side, 3) uint8, true mask (side, side) bool) for each sample PNG of ``people``.

    Args:
        people: sample PNGs whose NPZ beside them holds the mould (its mask is the person).
        backgrounds: (H, W, 3) uint8 person-free images, used in turn.
        side: the photos' side in pixels, at least the samples'.
    """
    from PIL import Image

    from mould.container import Mould
    from mould.images import load_photo

    rng = np.random.default_rng(seed)
    for index, png in enumerate(people):
        person = load_photo(png).rgb
        mask = Mould.load(png.with_suffix(".npz")).mask
        size = person.shape[0]
        if size > side or mask.shape != person.shape[:2]:
            raise ValueError(f"{png}: a {size}-pixel sample does not fit a {side}-pixel photo")
        background = backgrounds[index % len(backgrounds)]
        scale = max(1.0, side / min(background.shape[:2]))
        width, height = (max(side, round(n * scale)) for n in background.shape[1::-1])
        if scale > 1:
            background = np.asarray(Image.fromarray(background).resize((width, height), Image.BICUBIC))
        top, left = (int(rng.integers(0, n - side + 1)) for n in (height, width))
        photo = background[top : top + side, left : left + side].copy()
        row, column = (int(rng.integers(0, side - size + 1)) for _ in range(2))
        truth = np.zeros((side, side), bool)
        photo[row : row + size, column : column + size][mask] = person[mask]
        truth[row : row + size, column : column + size] = mask
        yield photo, truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="the folder to write the photos and masks into")
    parser.add_argument("--people", type=Path, required=True, help="a sample folder (mould synth)")
    parser.add_argument("--backgrounds", type=Path, required=True, help="a folder of person-free images")
    parser.add_argument("--count", type=int, default=60, help="people to paste at most (default 60)")
    parser.add_argument("--side", type=int, default=384, help="the photos' side in pixels (default 384)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the crops and places (default 7)")
    args = parser.parse_args(argv)
    from mould.recon.export import png_bytes

    from mould.errors import InputError
    from mould.files import write_atomic
    from mould.images import IMAGE_SUFFIXES, load_photo

    if not 1 <= args.count <= 100_000 or not 16 <= args.side <= 4096:
        print("pasted_people: --count 1 to 100,000 and --side 16 to 4096 expected", file=sys.stderr)
        return 2
    try:
        people = sorted(p for p in args.people.glob("*.png") if p.with_suffix(".npz").is_file())[: args.count]
        images = sorted(p for p in args.backgrounds.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not people or not images:
            raise InputError(f"no samples in {args.people} or no images in {args.backgrounds}")
        backgrounds = [load_photo(p).rgb for p in images]
        args.outdir.mkdir(parents=True, exist_ok=True)
        for index, (photo, truth) in enumerate(pasted_people(people, backgrounds, args.side, args.seed)):
            mask = np.repeat(truth[..., None].astype(np.uint8) * 255, 3, axis=2)
            for name, image in ((f"p{index:06d}.png", photo), (f"p{index:06d}_mask.png", mask)):
                write_atomic(args.outdir / name, lambda handle, image=image: handle.write(png_bytes(image)))
    except (InputError, ValueError) as error:
        print(f"pasted_people: {error}", file=sys.stderr)
        return 2
    print(f"{args.outdir}: {len(people)} people pasted onto {len(images)} backgrounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write crops of nobody as training samples (an empty mask, no depth): the negatives of the model card's
stage 4, so that a network can learn that a scene without a person holds nobody.

For each of COUNT backgrounds of the generator (:mod:`mould.datasets.backdrops`, half of them cluttered;
with ``--backgrounds DIR``, 90 % of them crops of DIR's person-free photos instead),
the whole background at 256², then every crop the framing search predicts on another, 512² background
with the given network: the zoomed-in, magnified places where a network trained on people only paints
one. Samples are named ``nNNNNNN`` and written as they are made, in the usual sample format, with the
camera of an empty framing; at 256² (the framing search's crops), or shrunk to ``--resolution`` for a
network trained at another size.

Usage::

    python tools/nobody_samples.py OUTDIR --count 300 --seed 11 [--checkpoint CKPT] [--backgrounds DIR]
        [--resolution 256]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

SIDE = 256
"""Crop side of the samples: the framing search's crops are this size."""


def nobody_crops(predictor, count: int, seed: int, images: tuple[Path, ...] = ()) -> Iterator[np.ndarray]:
    """The crops (see the module docstring), each (256, 256, 3) uint8, one background's at a time.

    Args:
        predictor: the network (a :class:`~mould.models.maps.Predictor`) whose framing search picks them.
        images: person-free photos to crop most backgrounds from (none: procedural backgrounds only).
    """
    from mould.datasets.backdrops import backdrop_image

    from mould.reconstruction.person import NoPersonFound, find_person

    seen: list[np.ndarray] = []

    def silhouettes(images: np.ndarray) -> np.ndarray:
        seen.extend(images)
        return predictor.predict_crops(images).mask_prob

    for index in range(count):
        key = seed * 10**6 + index
        yield backdrop_image(key, SIDE, 0.5, images)
        try:
            find_person(backdrop_image(key + 500_000, 2 * SIDE, 1.0 if index % 2 else 0.5, images), silhouettes)
        except NoPersonFound:
            pass
        yield from seen
        seen.clear()


def write_nobody(outdir: Path, crops: Iterable[np.ndarray], seed: int, side: int = SIDE) -> int:
    """Write ``crops`` as samples of nobody into ``outdir``, each as it comes, shrunk to ``side`` pixels
    (area averaging) when it is not :data:`SIDE`; returns how many."""
    from mould.datasets.samples import write_sample
    from PIL import Image

    from mould.camera import Camera
    from mould.container import Mould

    zeros = np.zeros((side, side), np.float32)
    camera = Camera("perspective", side, 2.0 * side, (side - 1) / 2, (side - 1) / 2, np.eye(4))
    black = np.zeros((side, side, 3), np.uint8)
    empty = Mould(zeros, zeros, np.zeros((side, side), bool), camera, back_image=black)
    outdir.mkdir(parents=True, exist_ok=True)
    written = 0
    for crop in crops:
        if side != SIDE:
            crop = np.asarray(Image.fromarray(crop).resize((side, side), Image.BOX))
        params = {"source": "nobody", "seed": seed}
        write_sample(outdir, f"n{written:06d}", empty, np.ascontiguousarray(crop), params)
        written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="the folder to write the samples into")
    parser.add_argument("--count", type=int, default=300, help="backgrounds of each kind (default 300)")
    parser.add_argument("--seed", type=int, default=11, help="seed of the backgrounds (default 11)")
    parser.add_argument(
        "--checkpoint", type=Path, help="the network whose framing search picks the crops (default: shipped)"
    )
    parser.add_argument("--backgrounds", type=Path, help="a folder of person-free photos to crop from")
    parser.add_argument(
        "--resolution", type=int, default=SIDE, help=f"side of the samples written, 16 to {SIDE} (default {SIDE})"
    )
    args = parser.parse_args(argv)
    from mould.errors import InputError

    if not 1 <= args.count <= 10**6 or not 0 <= args.seed < 2**31 or not 16 <= args.resolution <= SIDE:
        print(
            f"nobody_samples: --count 1 to 1,000,000, --seed 0 to 2^31 - 1 and --resolution 16 to {SIDE} expected",
            file=sys.stderr,
        )
        return 2
    from mould.datasets.backdrops import background_images
    from mould.models.checkpoint import load_checkpoint, resolve_checkpoint
    from mould.models.inference import TorchPredictor

    try:  # the network and the photos first: a bad checkpoint or folder leaves no folder behind
        predictor = TorchPredictor(load_checkpoint(resolve_checkpoint(args.checkpoint))[0])
        images = background_images(args.backgrounds) if args.backgrounds is not None else ()
        crops = nobody_crops(predictor, args.count, args.seed, images)
        written = write_nobody(args.outdir, crops, args.seed, args.resolution)
    except InputError as error:
        print(f"nobody_samples: {error}", file=sys.stderr)
        return 2
    print(f"{args.outdir}: {written} samples of nobody from {2 * args.count} backgrounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Score the outline of ``mould reconstruct`` (guided filter snapping, GrabCut) against true masks.

For every image of the given folders that has a true mask, the framing search runs once with the network;
the final crop's silhouette is scored against the true mask mapped into the crop (IoU), as the network gives
it (radius 0) and snapped with each radius (:func:`mould.reconstruction.guided_filter.snap_silhouette`), and
with ``--grabcut N`` each radius followed by N rounds of GrabCut (:mod:`mould.reconstruction.grabcut`).
A folder is either a sample folder (``mould synth``: each PNG's mould in its NPZ holds the true mask) or a
folder of photos with masks beside them (``NAME_mask.png`` or ``NAME_segmentation.png``, as ``mould bench
photos`` reads them); photos without a mask are skipped. This is how ``ReconstructConfig.snap_radius`` and
``grabcut_iterations`` were chosen (``docs/reconstruction.md``, "The outline").

Usage::

    python tools/outline_scores.py FOLDER... [--radii 0,4,8,12] [--eps 1e-4] [--grabcut 3] [--count 120]
        [--checkpoint CKPT]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np


def images_with_masks(folder: Path, count: int) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, (H, W, 3) uint8 image, (H, W) bool true mask) of a folder's first ``count`` masked images."""
    from mould.benchmarks.photos import is_mask_file, mask_beside, read_person_mask
    from mould.container import Mould
    from mould.images import load_photo

    found = 0
    for path in sorted(folder.iterdir()):
        if found >= count or path.suffix.lower() not in (".png", ".jpg", ".jpeg") or is_mask_file(path):
            continue
        rgb = load_photo(path).rgb
        if path.with_suffix(".npz").is_file():
            truth = Mould.load(path.with_suffix(".npz")).mask
        elif (mask := mask_beside(path)) is not None:
            truth = read_person_mask(mask, rgb.shape[:2])
        else:
            continue
        found += 1
        yield path.name, rgb, truth


Variant = tuple[int, int]
"""(snap radius, GrabCut iterations): one way of turning the network's silhouette into the mould's mask."""


def outline_scores(
    predictor, folder: Path, variants: list[Variant], eps: float, count: int
) -> dict[Variant, list[float]]:
    """Per variant, the IoU of each masked image's final silhouette ((0, 0): the network's own outline)."""

    from mould.benchmarks.photos import mask_scores
    from mould.framing import CropWindow
    from mould.reconstruction.person import NoPersonFound, crop_silhouette, find_person

    scores: dict[Variant, list[float]] = {variant: [] for variant in variants}
    for _, rgb, truth in images_with_masks(folder, count):
        try:
            crop = find_person(rgb, lambda crops: predictor.predict_crops(crops).mask_prob)
        except NoPersonFound:
            continue
        window = CropWindow.square(crop.box, len(crop.image))
        for radius, iterations in variants:
            silhouette = crop_silhouette(crop, *rgb.shape[:2], radius, eps, iterations)
            scores[radius, iterations].append(mask_scores(truth, silhouette, window)[0])
    return scores


def label(variant: Variant) -> str:
    radius, iterations = variant
    return f"radius {radius}" + (f", grabcut {iterations}" if iterations else "")


def table(rows: dict[str, dict[Variant, list[float]]], variants: list[Variant]) -> str:
    """Markdown: per folder, the mean IoU of each variant and how many images each made worse than (0, 0)."""
    head = "| folder | images | " + " | ".join(label(v) for v in variants) + " |"
    lines = [head, "| --- " * (len(variants) + 2) + "|"]
    for name, scores in rows.items():
        plain = np.array(scores.get((0, 0), []))
        cells = []
        for variant in variants:
            values = np.array(scores[variant])
            worse = f" ({int((values < plain - 1e-9).sum())} worse)" if any(variant) and len(plain) else ""
            cells.append(f"{values.mean():.3f}{worse}" if len(values) else "—")
        lines.append(f"| {name} | {len(scores[variants[0]])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="sample folders or folders of photos with masks")
    parser.add_argument("--radii", default="0,4,8,12", help="radii in crop pixels (default %(default)s)")
    parser.add_argument("--eps", type=float, default=1e-4, help="the filter's regularisation (default 1e-4)")
    parser.add_argument(
        "--grabcut",
        type=int,
        default=0,
        help="also score each radius followed by this many rounds of GrabCut (default 0: snapping only)",
    )
    parser.add_argument("--count", type=int, default=120, help="masked images per folder at most (default 120)")
    parser.add_argument("--checkpoint", type=Path, help="the network (default: the shipped model)")
    args = parser.parse_args(argv)
    from mould.errors import InputError

    try:
        radii = sorted({int(r) for r in args.radii.split(",")})
    except ValueError:
        radii = []
    if not radii or min(radii) < 0 or max(radii) > 64 or not args.eps > 0 or args.count < 1 or args.grabcut < 0:
        print("outline_scores: --radii 0 to 64, --eps > 0, --count >= 1, --grabcut >= 0 expected", file=sys.stderr)
        return 2
    radii = sorted({0, *radii})  # the network's own outline is the reference
    variants = [(radius, 0) for radius in radii] + [(radius, args.grabcut) for radius in radii if args.grabcut]
    missing = [str(f) for f in args.folders if not f.is_dir()]
    if missing:
        print(f"outline_scores: not a folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    from mould.models.checkpoint import load_checkpoint, resolve_checkpoint
    from mould.models.inference import TorchPredictor

    try:
        predictor = TorchPredictor(load_checkpoint(resolve_checkpoint(args.checkpoint))[0])
        rows = {str(f): outline_scores(predictor, f, variants, args.eps, args.count) for f in args.folders}
    except InputError as error:
        print(f"outline_scores: {error}", file=sys.stderr)
        return 2
    print(table(rows, variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The framing search with the shipped model on real and generated images: people are framed whole and
reconstructed, images without anybody are refused (slow: every image costs several network passes).

The real photos are the project's test photos (``../shared/data/photos`` beside the repository, or the folder
named by ``MOULD_PHOTOS``); their tests are skipped where the folder is absent. Their empty regions were picked
by eye to hold nobody. What the shipped network still takes for a person is marked ``xfail(strict=True)``, so
that a better model shows up as an unexpected pass (issue #13: it needs negatives in its training data).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = Path(os.environ.get("MOULD_PHOTOS", ROOT.parent / "shared" / "data" / "photos"))
needs_photos = pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"the test photos are not in {PHOTOS}")
TAKEN_FOR_A_PERSON = pytest.mark.xfail(strict=True, reason="the shipped network takes this for a person")

EMPTY_REGIONS = {
    # name: (photo, x0, y0, x1, y1) in pixels, checked by eye to hold nobody (no limb, no hair, no shadow)
    "beach sky and sea, left of the fingertips": ("tfjs_pose.jpg", 0, 0, 240, 600),
    "beach sky above the head": ("tfjs_pose.jpg", 0, 0, 1000, 230),
    "sea and sand, right of the hand and foot": ("tfjs_pose.jpg", 760, 330, 1000, 667),
    "sand and mat, left of the knee": ("tfjs_pose.jpg", 0, 400, 290, 667),
    "brick wall above the barbell": ("pexels-anete-lusina-4793258.jpg", 210, 0, 684, 450),
    "studio black, left of the body": ("ryota.png", 0, 0, 150, 512),
    "houses, hedge and lamp post": ("pexels-anete-lusina-4793258.jpg", 0, 0, 200, 480),
    "street and shadows, left of the knee": ("pexels-anete-lusina-4793258.jpg", 0, 650, 280, 1024),
    "trees, houses and cars, right of the arm": ("mediapipe_pose_test_image.jpg", 590, 0, 960, 240),
    "cobbles below the feet": ("mediapipe_pose_test_image.jpg", 260, 510, 960, 640),
    "street, cars and trees, left of the foot": ("mediapipe_pose_test_image.jpg", 0, 0, 140, 640),
}
STILL_TAKEN: set[str] = set()
"""Regions the shipped network still frames as a person. None since 2026-12-01 (stage 10 and
``CropConfig.min_extent``): stage 10 alone took the houses, hedge and lamp post; the model before it took
three more, the street and shadows left of the knee, the trees, houses and cars right of the arm, and the
cobbles below the feet."""

PERSON_EXTENTS = {
    # photos without a mask: the person's extent (x0, y0, x1, y1), head to feet, read by eye on a 50-pixel grid
    "pexels-anete-lusina-4793258.jpg": (250, 465, 595, 950),
    "mediapipe_pose_test_image.jpg": (155, 15, 848, 610),
}


@pytest.fixture(scope="module")
def silhouettes():
    """The shipped model's silhouette head: (B, N, N, 3) uint8 -> (B, N, N) probability."""
    from mould.models.checkpoint import load_checkpoint, resolve_checkpoint
    from mould.models.inference import predict

    model, _, _ = load_checkpoint(resolve_checkpoint(None), device="cpu")
    model.eval()
    return lambda crops: predict(model, crops).mask_prob[:, 0].numpy()


def _refused(rgb: np.ndarray, silhouettes) -> bool:
    """Whether the framing search, confirmed by the packaged person detector as ``mould reconstruct`` does,
    refuses the photo."""
    from functools import partial

    from mould.reconstruction.config import CropConfig
    from mould.reconstruction.person import NoPersonFound, find_person
    from mould.reconstruction.person_detector import detect_people

    try:
        find_person(rgb, silhouettes, detect_people=partial(detect_people, min_score=CropConfig.min_person_score))
    except NoPersonFound:
        return True
    return False


def _flat(colour, width, height):
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, 3)).copy()


def _gradient(width, height, vertical):
    rng = np.random.default_rng(width * height)
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = np.linspace(0, 1, height if vertical else width)
    ramp = a + (b - a) * t[:, None]
    return np.broadcast_to(ramp[:, None] if vertical else ramp[None], (height, width, 3)).astype(np.uint8)


def _noise(width, height, kind):
    rng = np.random.default_rng(width + height)
    if kind == "uniform":
        return rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    grey = np.clip(rng.normal(128, 40, (height, width, 1)), 0, 255).astype(np.uint8)
    return np.repeat(grey, 3, axis=2)


def _procedural(seed, clutter):
    """A 512² background of the generator (:mod:`mould.datasets.backdrops`), with or without its clutter."""
    from mould.datasets.backdrops import backdrop_image

    return backdrop_image(seed, 512, clutter)


GENERATED = {
    **{
        f"flat {name} {w}x{h}": (lambda c=colour, w=w, h=h: _flat(c, w, h))
        for name, colour in {"black": 0, "white": 255, "grey": 128, "dark": 40, "skin": (200, 150, 120)}.items()
        for w, h in ((16, 16), (40, 30), (640, 480), (300, 1000))
    },
    **{
        f"gradient {axis} {w}x{h}": (lambda w=w, h=h, v=axis == "vertical": _gradient(w, h, v))
        for axis in ("vertical", "horizontal")
        for w, h in ((640, 480), (480, 640))
    },
    **{
        f"noise {kind} {w}x{h}": (lambda w=w, h=h, k=kind: _noise(w, h, k))
        for kind in ("uniform", "grey")
        for w, h in ((256, 256), (1000, 300))
    },
    **{f"procedural background {seed}": (lambda s=seed: _procedural(s, 0.0)) for seed in range(10)},
}


@pytest.mark.parametrize("name", list(GENERATED))
def test_generated_images_hold_nobody(name, silhouettes):
    assert _refused(GENERATED[name](), silhouettes)


def test_procedural_clutter_holds_nobody(silhouettes):
    # The training backgrounds' clutter (boxes, discs, triangles, poles): the network alone still frames 1 of
    # these 20 (5 before stage 10, 12 before the smallest person size, CropConfig.min_size); the person detector
    # sees nobody on it (0.06 on its crop).
    accepted = [seed for seed in range(20) if not _refused(_procedural(1000 + seed, 1.0), silhouettes)]
    assert not accepted


@needs_photos
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=TAKEN_FOR_A_PERSON) if n in STILL_TAKEN else n for n in EMPTY_REGIONS]
)
def test_empty_regions_of_real_photos_hold_nobody(name, silhouettes):
    photo, x0, y0, x1, y1 = EMPTY_REGIONS[name]
    rgb = np.asarray(Image.open(PHOTOS / photo).convert("RGB"))[y0:y1, x0:x1]
    assert _refused(np.ascontiguousarray(rgb), silhouettes)


@needs_photos
def test_the_person_detector_sees_each_test_photos_person_and_nobody_in_their_empty_regions():
    # MediaPipe's detector on its own (measured: 0.96-0.99 on the four people; at most 0.30 on the regions)
    from mould.benchmarks.photos import mask_beside, read_person_mask
    from mould.reconstruction.config import CropConfig
    from mould.reconstruction.person_detector import detect_people

    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix in (".jpg", ".png") and mask_beside(p) is not None)
    photos += [PHOTOS / name for name in PERSON_EXTENTS]
    assert len(photos) == 4
    for path in photos:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        people = detect_people(rgb, CropConfig.min_person_score)
        assert len(people) == 1, (path.name, people)
        if path.name in PERSON_EXTENTS:
            x0, y0, x1, y1 = PERSON_EXTENTS[path.name]
        else:
            rows, cols = np.nonzero(read_person_mask(mask_beside(path), rgb.shape[:2]))
            x0, y0, x1, y1 = cols.min(), rows.min(), cols.max(), rows.max()
        (x, y), radius = people[0].hips, people[0].radius
        assert x0 <= x <= x1 and y0 <= y <= y1, (path.name, people[0])
        assert radius > 0.4 * max(x1 - x0, y1 - y0), (path.name, people[0])  # the circle holds the body
    for photo, x0, y0, x1, y1 in EMPTY_REGIONS.values():
        rgb = np.asarray(Image.open(PHOTOS / photo).convert("RGB"))[y0:y1, x0:x1]
        assert detect_people(np.ascontiguousarray(rgb), CropConfig.min_person_score) == [], (photo, x0, y0)


def test_a_7000_pixel_grey_photo_is_refused_and_writes_nothing(tmp_path, capsys):
    from mould.cli import main

    Image.new("RGB", (7000, 7000), (128, 128, 128)).save(tmp_path / "grey.png")  # 49 MP, under the 50 MP limit
    assert main(["reconstruct", str(tmp_path / "grey.png"), "-o", str(tmp_path / "out")]) == 1
    assert "no person found" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.json"]


@needs_photos
def test_every_test_photo_is_framed_head_to_feet(tmp_path):
    from mould.benchmarks.photos import BenchPhotosConfig, bench_photos

    rows = {r.name: r for r in bench_photos(BenchPhotosConfig(PHOTOS, tmp_path), lambda line: None)}
    assert all(row.status == "ok" for row in rows.values()), rows
    for row in rows.values():
        if row.mask is not None:
            assert row.framed > 0.98, row  # the whole mask inside the final crop
            # issue #13's target. Measured: 0.952 on the beach, 0.974 on black (the segmenter's outline, the
            # default since 2026-12-02; the network's, snapped and re-cut: 0.899 and 0.955)
            assert row.iou >= 0.85, row
    for name, (x0, y0, x1, y1) in PERSON_EXTENTS.items():
        u, v, side = rows[name].crop
        slack = 0.03 * side  # the extents were read by eye
        assert u - side / 2 - slack <= x0 and x1 <= u + side / 2 + slack, (name, rows[name].crop)
        assert v - side / 2 - slack <= y0 and y1 <= v + side / 2 + slack, (name, rows[name].crop)


def test_synthetic_people_are_framed_whole(tmp_path):
    # 50 samples of the generator (seed 123, as `mould bench reconstruct`), each beside its true silhouette:
    # the figures below were measured on version 5's samples, which --wardrobe 0 --low-key 0 still make byte
    # for byte (on version 7's, with modelled clothes and hair, the shipped model misses one of the 50: a person
    # zoomed out 1.74x on dense clutter).
    from mould.datasets.synth_folder import synthesize
    from mould.datasets.synthetic import SynthConfig

    from mould.benchmarks.photos import BenchPhotosConfig, bench_photos
    from mould.container import Mould

    folder = tmp_path / "people"
    synthesize(folder, 50, seed=123, config=SynthConfig(wardrobe=0.0, low_key=0.0), progress=False)
    for npz in folder.glob("*.npz"):
        Image.fromarray(Mould.load(npz).mask.astype(np.uint8) * 255).save(folder / f"{npz.stem}_mask.png")
        for other in (npz, npz.with_suffix(".json")):
            other.unlink()
    rows = bench_photos(BenchPhotosConfig(folder, tmp_path / "out"), lambda line: None)
    assert len(rows) == 50 and all(row.status == "ok" for row in rows)
    assert min(row.framed for row in rows) > 0.98  # measured: 0.997 at worst (the chain of crops: 0.61)
    # measured: 0.955 with the segmenter's outline (the default since 2026-12-02), 0.937 with the network's
    # snapped and re-cut, 0.914 as predicted; the chain of crops: 0.900
    assert np.mean([row.iou for row in rows]) > 0.88

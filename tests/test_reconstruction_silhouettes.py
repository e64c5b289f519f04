"""The measures of a predicted silhouette, on shapes whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from mould.framing import CropWindow, SquareBox
from mould.reconstruction.person import inside_photo
from mould.reconstruction.silhouettes import edge_strength, hull_area, measure_silhouette

N = 128


def _disc(radius: float, centre=(N / 2, N / 2)) -> np.ndarray:
    rows, cols = np.mgrid[0:N, 0:N]
    return (cols - centre[0]) ** 2 + (rows - centre[1]) ** 2 <= radius**2


def _measure(probability, image=None, inside=None, window=None):
    image = np.full((N, N, 3), 100, np.uint8) if image is None else image
    inside = np.ones((N, N), bool) if inside is None else inside
    window = CropWindow(N / 2 - 0.5, N / 2 - 0.5, N, N, N) if window is None else window  # the identity crop
    return measure_silhouette(probability.astype(np.float32), image, inside, window, margin=0.1)


def _painted(mask: np.ndarray) -> np.ndarray:
    image = np.full((N, N, 3), 60, np.uint8)
    image[mask] = 200
    return image


def test_a_sure_disc_on_its_own_outline():
    disc = _disc(30)
    s = _measure(disc, _painted(disc))
    assert s.contrast == pytest.approx(1.0) and s.dominance == pytest.approx(1.0)
    assert s.area == pytest.approx(disc.mean())
    assert s.extent == pytest.approx(61 / N)
    # The largest disc inside a disc is itself: radius 30 (to the first pixel outside) over a 61-pixel extent.
    assert s.thickness == pytest.approx(31 / 61, abs=0.02)
    # Its outline is the only edge of the photo: edge support far above 1 (1 = follows nothing).
    assert s.edge_support > 5
    assert s.photo_share == pytest.approx(disc.mean())


def test_nothing_above_the_threshold_is_no_silhouette():
    assert _measure(np.full((N, N), 0.4)) is None


def test_a_pole_is_thin():
    bar = np.zeros((N, N), bool)
    bar[10:118, 62:66] = True  # 4 pixels wide, 108 long
    s = _measure(bar, _painted(bar))
    assert s.thickness == pytest.approx(2 / 108, abs=0.005)


def test_a_silhouette_on_a_flat_photo_follows_no_edge():
    s = _measure(_disc(30))  # the default image is flat grey
    assert s.edge_support == 0.0
    noise = np.random.default_rng(0).integers(0, 256, (N, N, 3)).astype(np.uint8)
    s = _measure(_disc(30), noise)  # on noise, the outline is as edgy as anywhere else
    assert 0.8 < s.edge_support < 1.2


def test_an_unsure_region_has_low_contrast():
    probability = np.where(_disc(30), 0.6, 0.0) + np.where(_disc(40) & ~_disc(30), 0.45, 0.0)
    s = _measure(probability)
    assert s.contrast == pytest.approx(0.6 - 0.45, abs=0.01)


def test_the_most_probable_region_wins_and_dominance_counts_the_rest():
    big_unsure = _disc(14, (35, 64)) * 0.55  # more pixels (613) but less mass (337) than the sure one (441)
    small_sure = _disc(12, (100, 64)) * 1.0
    s = _measure(big_unsure + small_sure)
    assert s.region.sum() == _disc(12).sum()
    mass_small, mass_big = _disc(12).sum(), 0.55 * _disc(14).sum()
    assert s.dominance == pytest.approx(mass_small / (mass_small + mass_big), rel=1e-4)


def test_padding_beyond_the_photo_is_nobody():
    # A crop twice the photo's size: the photo fills the middle; the network's answer on the padding is dropped.
    window = CropWindow.square(SquareBox(31.5, 31.5, 128), N)
    inside = inside_photo(window, 64, 64)
    assert inside.sum() == 64 * 64 and inside[32:96, 32:96].all()
    s = _measure(np.ones((N, N)), inside=inside, window=window)
    assert s.photo_share == pytest.approx(1.0)
    assert s.region.sum() == 64 * 64


def test_the_framing_box_is_in_photo_coordinates():
    # A window of side 2N on a photo: a disc framed in the crop is framed at twice the size in the photo.
    window = CropWindow.square(SquareBox(200.0, 150.0, 2 * N), N)
    disc = _disc(20)
    s = _measure(disc, _painted(disc), window=window)
    j, i = (N - 1) / 2 + 0.5, (N - 1) / 2 + 0.5  # the disc's centre in crop pixels
    u, v = window.to_frame(j, i)
    assert (s.box.u, s.box.v) == pytest.approx((u, v), abs=1e-6)
    assert s.box.side == pytest.approx(2 * 41 / 0.8)


def test_edge_strength_of_a_step():
    image = np.zeros((N, N, 3), np.uint8)
    image[:, N // 2 :] = 80
    edges = edge_strength(image)
    assert edges[:, N // 2 - 3 : N // 2 + 3].min() == pytest.approx(40.0)  # Sobel / 8 of an 80-level step
    assert edges[:, : N // 2 - 4].max() == 0


def test_hull_area_agrees_with_scipy_and_knows_squares():
    from scipy.spatial import ConvexHull, QhullError

    assert hull_area(np.array([[0, 0], [2, 0], [2, 3], [0, 3], [1, 1]])) == 6.0  # a 2 x 3 box and a point inside
    assert hull_area(np.array([[0, 0], [1, 1], [3, 3]])) == 0.0  # collinear
    rng = np.random.default_rng(4)
    for _ in range(200):  # pixel-corner-like points: ties on rows and columns, duplicates
        points = rng.integers(0, 40, (int(rng.integers(3, 300)), 2)) + rng.choice([0.0, 0.5], (1, 2))
        try:
            expected = ConvexHull(points).volume  # in 2D, the hull's volume is its area
        except QhullError:  # all on one line
            expected = 0.0
        assert hull_area(points) == pytest.approx(expected, abs=1e-9)

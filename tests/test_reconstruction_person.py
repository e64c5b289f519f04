"""Framing the person in a photo: the silhouette-guided crop loop."""

from __future__ import annotations

import numpy as np
import pytest

from mould.reconstruction.config import CropConfig
from mould.reconstruction.person import NoPersonFound, find_person, largest_region, mask_box


def _photo_with_person(height=300, width=500, centre=(340, 160), radii=(40, 110)):
    rows, cols = np.mgrid[0:height, 0:width]
    person = ((cols - centre[0]) / radii[0]) ** 2 + ((rows - centre[1]) / radii[1]) ** 2 <= 1
    rgb = np.full((height, width, 3), 30, np.uint8)
    rgb[person] = 220
    return rgb, person


def _brightness_predictor(crop: np.ndarray) -> np.ndarray:
    return (crop.mean(axis=2) > 128).astype(np.float32)


def test_network_loop_converges_on_the_person_box():
    rgb, person = _photo_with_person()
    result = find_person(rgb, _brightness_predictor)
    expected = mask_box(person, CropConfig().margin)
    # The first pass sees the person at 256/500 scale; each pass refines; a crop pixel at the last scale
    # is expected.side / 256 photo pixels, so the box must agree to a couple of those pixels.
    pixel = expected.side / 256
    assert abs(result.box.u - expected.u) < 2 * pixel and abs(result.box.v - expected.v) < 2 * pixel
    assert abs(result.box.side - expected.side) < 4 * pixel
    assert 2 <= result.iterations <= CropConfig().max_iterations
    assert result.source == "network" and result.image.shape == (256, 256, 3)


def test_given_mask_frames_the_largest_person_only():
    rgb, _ = _photo_with_person()
    person = np.zeros(rgb.shape[:2], bool)
    person[50:271, 300:381] = True  # a rectangle: its extent survives nearest-neighbour resampling exactly
    second = np.zeros_like(person)
    second[10:40, 10:30] = True  # a smaller second figure
    calls = []
    result = find_person(rgb, lambda crop: calls.append(1), mask=person | second)
    assert not calls  # no network pass when a mask is given
    assert result.mask is not None and result.mask.shape == (256, 256)
    expected = mask_box(person, 0.1)
    assert (result.box.u, result.box.v, result.box.side) == pytest.approx((expected.u, expected.v, expected.side))
    # The person fills the crop's height minus the margins: 80 % of 256 pixels.
    rows = np.nonzero(result.mask.any(axis=1))[0]
    assert abs((rows.max() - rows.min() + 1) - 0.8 * 256) <= 1


def test_empty_silhouette_is_no_person():
    rgb = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(NoPersonFound):
        find_person(rgb, _brightness_predictor)
    with pytest.raises(NoPersonFound):
        find_person(rgb, _brightness_predictor, mask=np.zeros((100, 100), bool))


def test_largest_region_of_a_mask():
    mask = np.zeros((10, 10), bool)
    mask[0:2, 0:2] = True
    mask[5:9, 5:9] = True
    assert largest_region(mask).sum() == 16


def test_stable_framing_ends_on_the_crop_last_predicted():
    # The caller reuses the last prediction for the final crop, so the loop must return that very crop.
    rgb, _ = _photo_with_person()
    seen = []

    def predictor(crop: np.ndarray) -> np.ndarray:
        seen.append(crop.copy())
        return _brightness_predictor(crop)

    result = find_person(rgb, predictor)
    assert len(seen) == result.iterations < CropConfig().max_iterations  # it converged
    np.testing.assert_array_equal(result.image, seen[-1])

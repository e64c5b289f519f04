"""The packaged person detector (MediaPipe's BlazePose detector run in numpy; its graph against MediaPipe's
runtime in ``test_reconstruction_graph.py``): anchors and decoding as MediaPipe's, photo coordinates that
follow the photo, and people found on the generator's bodies but not on empty images."""

from __future__ import annotations

import numpy as np
import pytest

from mould.reconstruction.person_detector import (
    INPUT_SIZE,
    anchor_centres,
    decode,
    detect_people,
)


def test_anchors_follow_mediapipes_layout():
    centres = anchor_centres()
    assert centres.shape == (2254, 2)
    # stride 8: a 28 x 28 grid, row by row, two anchors a cell
    np.testing.assert_allclose(centres[:4], [[0.5 / 28, 0.5 / 28]] * 2 + [[1.5 / 28, 0.5 / 28]] * 2)
    np.testing.assert_allclose(centres[2 * 28 * 28], [0.5 / 14, 0.5 / 14])
    # stride 32: the last 7 x 7 cells, six anchors each, ending at the bottom-right cell
    np.testing.assert_allclose(centres[-6:], [[6.5 / 7, 6.5 / 7]] * 6)
    assert len(centres) == 28 * 28 * 2 + 14 * 14 * 2 + 7 * 7 * 6


def _raw(anchor: int, box: tuple[float, float, float, float], keypoints: np.ndarray) -> np.ndarray:
    """(12,) regressions that decode to a head box (cx, cy, w, h) and keypoints (4, 2), in input pixels."""
    centre = anchor_centres()[anchor] * INPUT_SIZE
    values = np.zeros(12, np.float32)
    values[:2] = np.array(box[:2]) - centre
    values[2:4] = box[2:]
    values[4:] = (keypoints - centre).ravel()
    return values


def test_decode_merges_overlapping_anchors_and_keeps_apart_ones():
    regressions, logits = np.zeros((2254, 12), np.float32), np.full(2254, -20.0, np.float32)
    keypoints = np.array([[100, 150], [100, 60], [100, 110], [100, 70]], np.float32)
    regressions[10] = _raw(10, (100, 50, 40, 40), keypoints)
    regressions[11] = _raw(11, (104, 50, 40, 40), keypoints + 4)  # overlaps the first: merged with it
    regressions[2000] = _raw(2000, (30, 30, 20, 20), keypoints / 4)  # elsewhere: a second person
    logits[[10, 11, 2000]] = [np.log(3.0), np.log(1.0), np.log(9.0)]  # scores 0.75, 0.5, 0.9
    people = decode(regressions, logits, min_score=0.4)
    assert [round(score, 6) for score, _ in people] == [0.9, 0.75]
    np.testing.assert_allclose(people[0][1][:4] * INPUT_SIZE, [20, 20, 40, 40], atol=1e-4)
    # the merged person: the scores' weighted mean of its two anchors (0.6 and 0.4)
    np.testing.assert_allclose(people[1][1][:4] * INPUT_SIZE, [81.6, 30, 121.6, 70], atol=1e-4)
    np.testing.assert_allclose(people[1][1][4:6] * INPUT_SIZE, [101.6, 151.6], atol=1e-4)
    assert [score for score, _ in decode(regressions, logits, min_score=0.8)] == [pytest.approx(0.9)]
    assert decode(regressions, logits, min_score=0.95) == []


def _shift(people, dx, dy):
    return [(round(p.score, 4), np.round(p.hips + [dx, dy], 2), round(p.radius, 2)) for p in people]


def test_photo_coordinates_follow_the_letterbox():
    # A 224 x 112 photo is letterboxed unscaled into rows 56-167 of the detector's input: the same input as a
    # 224 x 224 photo holding it there on black, so the same people, 56 pixels lower.
    rng = np.random.default_rng(0)
    wide = _figure_photo(rng, 224, 112)
    square = np.zeros((224, 224, 3), np.uint8)
    square[56:168] = wide
    people_wide, people_square = detect_people(wide, 0.01), detect_people(square, 0.01)
    assert people_wide and len(people_wide) == len(people_square)
    for (score_a, hips_a, radius_a), (score_b, hips_b, radius_b) in zip(
        _shift(people_wide, 0, 56), _shift(people_square, 0, 0)
    ):
        assert score_a == score_b and radius_a == pytest.approx(radius_b, abs=0.01)
        np.testing.assert_allclose(hips_a, hips_b, atol=0.01)


def _figure_photo(rng, width, height):
    """A textured photo with a bright person-like figure, for coordinates (not a detection test)."""
    from conftest import person_figure

    photo = rng.integers(0, 80, (height, width, 3)).astype(np.uint8)
    size = min(width, height) - 8
    figure = person_figure(size)
    top, left = (height - size) // 2, (width - size) // 3
    photo[top : top + size, left : left + size][figure] = (220, 180, 150)
    return photo


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((64, 64, 3), np.uint8),
        np.full((480, 640, 3), 128, np.uint8),
        np.full((1000, 300, 3), (200, 150, 120), np.uint8),
    ],
    ids=["black", "grey", "skin"],
)
def test_flat_images_hold_nobody(image):
    assert detect_people(image) == []


def test_generated_people_are_found_around_their_bodies(generated_people):
    for rgb, mask in generated_people:
        people = detect_people(rgb)
        assert people, "nobody found"
        best = people[0]
        rows, cols = np.nonzero(mask)
        # the hips' middle lies on the body's box, and the body's circle is about half its height or more
        assert cols.min() <= best.hips[0] <= cols.max() and rows.min() <= best.hips[1] <= rows.max()
        assert best.radius > 0.4 * (rows.max() - rows.min())
        x0, y0, x1, y1 = best.head_box
        assert x0 < x1 and y0 < y1 and rows.min() - 10 <= (y0 + y1) / 2 < best.hips[1]

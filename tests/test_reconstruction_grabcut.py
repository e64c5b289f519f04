"""GrabCut re-cutting the snapped silhouette from the crop's colours: analytic figures with known answers,
determinism, the padding, and inputs it cannot learn from."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, shift

from mould.reconstruction.grabcut import grabcut_silhouette

N = 128


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(image, truth): a figure (a disc with an arm) in one noisy colour on a noisy background of another."""
    rows, cols = np.mgrid[0:N, 0:N]
    truth = (rows - 64) ** 2 + (cols - 56) ** 2 < 30**2
    truth |= (abs(rows - 64) < 6) & (cols >= 56) & (cols < 126)  # the arm, 11 pixels thick
    rng = np.random.default_rng(seed)
    image = np.where(truth[..., None], [200, 90, 60], [60, 110, 170]) + rng.normal(0, 12, (N, N, 3))
    return np.clip(image, 0, 255).astype(np.uint8), truth


def test_an_outline_off_by_pixels_is_cut_on_the_edge():
    image, truth = scene()
    probability = gaussian_filter(shift(truth.astype(float), (2, -2), order=0), 3)  # drifted and blurred
    allowed = np.ones((N, N), bool)
    before = iou(probability > 0.5, truth)
    after = iou(grabcut_silhouette(probability, image, 3, allowed), truth)
    assert before < 0.9 and after > 0.97, (before, after)


def test_an_arm_the_network_was_unsure_of_is_given_back():
    """Unsure pixels (probability between 0.1 and 0.5) go to the side whose colours they have."""
    image, truth = scene(1)
    arm = truth & (np.mgrid[0:N, 0:N][1] >= 86)
    probability = np.where(arm, 0.3, truth.astype(float))
    result = grabcut_silhouette(probability, image, 3, np.ones((N, N), bool))
    assert iou(probability > 0.5, truth) < 0.9  # the arm sticks out of the disc by 40 pixels
    assert (result & arm).sum() > 0.95 * arm.sum() and iou(result, truth) > 0.97


def test_the_same_input_gives_the_same_cut_whatever_came_before():
    import cv2

    image, truth = scene(2)
    probability = gaussian_filter(truth.astype(float), 4)
    allowed = np.ones((N, N), bool)
    first = grabcut_silhouette(probability, image, 2, allowed)
    cv2.randu(np.zeros((50, 50), np.float32), 0, 1)  # moves OpenCV's random generator on
    assert np.array_equal(first, grabcut_silhouette(probability, image, 2, allowed))


def test_nothing_is_cut_outside_the_allowed_pixels():
    image, truth = scene(3)
    allowed = np.ones((N, N), bool)
    allowed[:, :40] = False  # padding beyond the photo's left edge
    result = grabcut_silhouette(truth.astype(float), image, 3, allowed)
    assert not result[:, :40].any() and iou(result, truth & allowed) > 0.97


@pytest.mark.parametrize("value", [0.0, 1.0, 0.3])
def test_without_seeds_on_both_sides_the_outline_is_thresholded(value):
    """All background, all person, or all unsure: no colours to learn, so the probability's own threshold."""
    image, _ = scene(4)
    probability = np.full((N, N), value)
    allowed = np.ones((N, N), bool)
    allowed[0] = False
    result = grabcut_silhouette(probability, image, 3, allowed)
    assert np.array_equal(result, (probability > 0.5) & allowed)


def test_bad_arguments_are_refused():
    image, truth = scene()
    with pytest.raises(ValueError, match="iterations"):
        grabcut_silhouette(truth.astype(float), image, 0, truth)
    with pytest.raises(ValueError, match="expected"):
        grabcut_silhouette(truth[:64].astype(float), image, 3, truth)


def test_a_hole_is_opened_only_where_the_network_saw_background(monkeypatch):
    """A patch of a background colour inside the figure (an open mouth on black) is cut out by the colours,
    but filled again, since the network called it person; a hole the network saw too is kept."""
    import scipy.ndimage

    image, truth = scene(5)
    rows, cols = np.mgrid[0:N, 0:N]
    mouth = (abs(rows - 60) < 4) & (abs(cols - 50) < 6)
    loop = (abs(rows - 75) < 4) & (abs(cols - 66) < 5)  # seen as background by the network too
    image[mouth | loop] = 20  # dark, as is a strip of the background: its mixture knows the colour
    image[:, :12] = 20
    probability = np.where(loop, 0.0, truth.astype(float))
    probability[mouth] = 0.7  # probably person: GrabCut may take it out
    allowed = np.ones((N, N), bool)
    result = grabcut_silhouette(probability, image, 1, allowed)
    assert result[mouth].all() and not result[loop].any()
    assert iou(result, truth & ~loop) > 0.99
    with monkeypatch.context() as patch:  # without the filling, the cut leaves the mouth a hole
        patch.setattr(scipy.ndimage, "binary_fill_holes", lambda mask: mask)
        assert not grabcut_silhouette(probability, image, 1, allowed)[mouth].any()

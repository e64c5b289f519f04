"""The guided filter that snaps the predicted silhouette to the photo's edges: against a slow per-window
reference, on analytic edges with known answers, and in the reconstruction."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mould.reconstruction.guided_filter import guided_filter, snap_silhouette


def guided_filter_naive(guide: np.ndarray, values: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s definition, window by window: each (2r + 1)² window (the image's edges repeated) fits
    ``values ≈ a · guide + b`` by ridge regression; each pixel averages the fits of the windows over it."""
    h, w = values.shape

    def pad(x: np.ndarray) -> np.ndarray:
        return np.pad(x, [(radius, radius), (radius, radius)] + [(0, 0)] * (x.ndim - 2), mode="edge")

    guide_p, values_p = pad(guide), pad(values)
    a, b = np.zeros((h, w, 3)), np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            colours = guide_p[y : y + 2 * radius + 1, x : x + 2 * radius + 1].reshape(-1, 3)
            targets = values_p[y : y + 2 * radius + 1, x : x + 2 * radius + 1].reshape(-1)
            mean_c, mean_t = colours.mean(0), targets.mean()
            covariance = (colours - mean_c).T @ (colours - mean_c) / len(colours)
            cross = (colours - mean_c).T @ (targets - mean_t) / len(colours)
            a[y, x] = np.linalg.solve(covariance + eps * np.eye(3), cross)
            b[y, x] = mean_t - a[y, x] @ mean_c
    a_p, b_p = pad(a), pad(b)
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            window_a = a_p[y : y + 2 * radius + 1, x : x + 2 * radius + 1].reshape(-1, 3).mean(0)
            out[y, x] = window_a @ guide[y, x] + b_p[y : y + 2 * radius + 1, x : x + 2 * radius + 1].mean()
    return out


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), radius=st.integers(1, 3), eps=st.sampled_from([1e-4, 1e-2, 1.0]))
def test_the_filter_is_he_et_al_window_by_window(seed, radius, eps):
    rng = np.random.default_rng(seed)
    guide, values = rng.random((11, 13, 3)), rng.random((11, 13))
    expected = guided_filter_naive(guide, values, radius, eps)
    assert np.abs(guided_filter(guide, values, radius, eps) - expected).max() < 1e-9


def test_a_constant_stays_and_a_flat_guide_only_averages():
    rng = np.random.default_rng(0)
    guide = rng.random((20, 20, 3))
    assert np.allclose(guided_filter(guide, np.full((20, 20), 0.7), 3, 1e-3), 0.7, atol=1e-9)
    # A flat guide explains nothing: every a is 0, and the output is the box mean of the box mean.
    values = rng.random((20, 20))
    flat = guided_filter(np.full((20, 20, 3), 0.5), values, 1, 1e-3)
    from scipy.ndimage import uniform_filter

    assert np.allclose(flat, uniform_filter(uniform_filter(values, 3, mode="nearest"), 3, mode="nearest"))


def test_a_blurred_outline_snaps_to_a_colour_edge_of_equal_brightness():
    """A figure whose colour differs from the background's only in hue (equal grey level: a grey guide
    would see no edge), and a network-like probability: blurred and 3 pixels too wide. Thresholded as it is,
    the outline is off by those pixels; snapped, it lies on the colour edge."""
    n = 64
    rows, cols = np.mgrid[0:n, 0:n]
    figure = (np.abs(cols - 32) < 10) & (np.abs(rows - 32) < 20)
    image = np.where(figure[..., None], [200, 60, 100], [60, 160, 140]).astype(np.uint8)  # both grey 120
    assert np.ptp(image.mean(-1)) == 0
    from scipy.ndimage import binary_dilation, gaussian_filter

    probability = gaussian_filter(binary_dilation(figure, iterations=3).astype(float), 1.5)
    raw = probability > 0.5
    snapped = snap_silhouette(probability, image, 8, 1e-4) > 0.5

    def iou(mask):
        return (mask & figure).sum() / (mask | figure).sum()

    assert iou(raw) < 0.8  # the network's outline, 3 pixels out
    assert iou(snapped) > 0.97  # on the edge
    assert np.array_equal(snap_silhouette(probability, image, 0, 1e-4), probability.astype(np.float32))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="guide, values"):
        guided_filter(np.zeros((4, 4)), np.zeros((4, 4)), 1, 1e-3)
    with pytest.raises(ValueError, match="radius, eps"):
        guided_filter(np.zeros((4, 4, 3)), np.zeros((4, 4)), 0, 1e-3)

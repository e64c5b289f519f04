"""The guided filter (He, Sun and Tang, ECCV 2010): the predicted silhouette snapped to the photo's edges.

The network's silhouette is a 256² probability whose outline is blurred over a few pixels and drifts where the
person's colours meet the background's; the photo itself knows where the outline is. The guided filter fits,
in every window of the crop, the probability as an affine function of the pixel's colour, ``q = a·I + b``,
and averages the fits of the windows over each pixel: the output follows the probability's coarse shape and
the photo's colour edges, so that thresholding it at 0.5 puts the outline on the edge. With the colour image
as the guide (a 3 x 3 covariance per window), an edge between two colours of equal brightness still counts.

Measured (``docs/reconstruction.md``, "The outline"; ``tools/outline_scores.py``): radius 8 and eps 1e-4
were chosen on 50 synthetic people (IoU of the final crop's silhouette against the true mask 0.908 ->
0.931); on 120 held-out synthetic people 0.911 -> 0.932, worse on 3; on the two test photos with a mask
0.708 -> 0.774 (studio) and 0.825 -> 0.838 (beach).
"""

from __future__ import annotations

import numpy as np


def _box_mean(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r + 1)² window around each pixel, the image's edges repeated."""
    from scipy.ndimage import uniform_filter

    return uniform_filter(values, size=2 * radius + 1, mode="nearest")


def guided_filter(guide: np.ndarray, values: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """(H, W) float64 ``values`` filtered under a colour ``guide`` (He et al.'s Algorithm 1, colour guide).

    Args:
        guide: (H, W, 3) float colours, about [0, 1].
        values: (H, W) float, what is filtered (here the person probability).
        radius: window radius r in pixels (windows of (2r + 1)², the image's edges repeated); >= 1.
        eps: regularisation of each window's fit, in squared guide units: colour variations well below
            sqrt(eps) within a window are smoothed over, edges well above it are kept.
    """
    if guide.ndim != 3 or guide.shape[2] != 3 or values.shape != guide.shape[:2]:
        raise ValueError(f"guide, values: expected (H, W, 3) and (H, W), got {guide.shape} and {values.shape}")
    if radius < 1 or not eps > 0:
        raise ValueError(f"radius, eps: expected >= 1 and > 0, got {radius}, {eps}")
    image = np.asarray(guide, np.float64)
    p = np.asarray(values, np.float64)
    channels = [image[..., c] for c in range(3)]
    mean_i = [_box_mean(c, radius) for c in channels]
    mean_p = _box_mean(p, radius)
    cov_ip = [_box_mean(c * p, radius) - m * mean_p for c, m in zip(channels, mean_i)]
    # The window's colour covariance plus eps on the diagonal, symmetric: six entries.
    var = {
        (i, j): _box_mean(channels[i] * channels[j], radius) - mean_i[i] * mean_i[j] + (eps if i == j else 0.0)
        for i in range(3)
        for j in range(i, 3)
    }
    rr, rg, rb, gg, gb, bb = var[0, 0], var[0, 1], var[0, 2], var[1, 1], var[1, 2], var[2, 2]
    # Its inverse by cofactors (positive definite: eps > 0), applied to the covariance of colour and value.
    c_rr, c_rg, c_rb = gg * bb - gb * gb, gb * rb - rg * bb, rg * gb - gg * rb
    c_gg, c_gb, c_bb = rr * bb - rb * rb, rg * rb - rr * gb, rr * gg - rg * rg
    det = rr * c_rr + rg * c_rg + rb * c_rb
    a = [
        (c_rr * cov_ip[0] + c_rg * cov_ip[1] + c_rb * cov_ip[2]) / det,
        (c_rg * cov_ip[0] + c_gg * cov_ip[1] + c_gb * cov_ip[2]) / det,
        (c_rb * cov_ip[0] + c_gb * cov_ip[1] + c_bb * cov_ip[2]) / det,
    ]
    b = mean_p - sum(ac * m for ac, m in zip(a, mean_i))
    return sum(_box_mean(ac, radius) * c for ac, c in zip(a, channels)) + _box_mean(b, radius)


def snap_silhouette(probability: np.ndarray, image: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """(N, N) float32 person probability snapped to the crop's colour edges (:func:`guided_filter`); the
    probability itself when ``radius`` is 0.

    Args:
        probability: (N, N) float predicted person probability of a crop.
        image: (N, N, 3) uint8, the crop.
    """
    if radius == 0:
        return np.asarray(probability, np.float32)
    snapped = guided_filter(image.astype(np.float64) / 255.0, probability, radius, eps)
    return np.clip(snapped, 0.0, 1.0).astype(np.float32)

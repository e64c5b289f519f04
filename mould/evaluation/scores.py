"""Scores of predicted moulds against the ground truth: depth errors, silhouette IoU, mesh distances.

Depth conventions: the network predicts depth relative to a per-person reference
(:mod:`mould.models.depth`). One photo fixes shape but not distance, so scores place the prediction at the
ground truth's reference (:func:`mould.models.depth.reference_depth` of the true visible map) before
comparing metric depths (:mod:`mould.evaluation.predictions`). Depth errors are means over the ground-truth
mask, in millimetres.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from mould.container import Mould

if TYPE_CHECKING:
    from mould.evaluation.predictions import MetricDepths


def depth_scores(predicted: MetricDepths, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-sample scores of a batch, each (B,) float, depths over the ground-truth mask (NaN when empty).

    Returns:
        ``visible_l1_mm``, ``hidden_l1_mm``: mean absolute depth error, mm;
        ``flat_visible_l1_mm``, ``flat_hidden_l1_mm``: the same for the **flat guess** (every pixel at the
        true median visible, resp. hidden, depth): the baseline a prediction must beat;
        ``relief_mm``, ``true_relief_mm``: mean absolute deviation of the predicted, resp. true, visible
        depth from its own median: how much relief there is (a flattened prediction has little; the true
        relief equals ``flat_visible_l1_mm``);
        ``silhouette_iou``: intersection over union of the predicted and true masks (1 when both are empty).
    """
    truth = batch["mask"] > 0.5
    pixels = truth.flatten(1).sum(1).float()

    def mean_mm(error: torch.Tensor) -> torch.Tensor:
        return (error * truth).flatten(1).sum(1) / pixels * 1000.0

    scores = {}
    for name in ("visible", "hidden"):
        true_depth = batch[name].float()
        scores[f"{name}_l1_mm"] = mean_mm((getattr(predicted, name) - true_depth).abs())
        scores[f"flat_{name}_l1_mm"] = mean_mm((true_depth - _masked_median(true_depth, truth)).abs())
    scores["relief_mm"] = mean_mm((predicted.visible - _masked_median(predicted.visible, truth)).abs())
    scores["true_relief_mm"] = scores["flat_visible_l1_mm"]
    inter = (predicted.mask & truth).flatten(1).sum(1).float()
    union = (predicted.mask | truth).flatten(1).sum(1).float()
    scores["silhouette_iou"] = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    return scores


def _masked_median(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, 1, 1, 1) lower median of each map over its mask (0 when empty): the flat guess's depth."""
    from mould.models.depth import reference_depth

    return reference_depth(values, mask).reshape(-1, 1, 1, 1)


def back_colour_errors(predicted: Mould, true_back: np.ndarray, true_mask: np.ndarray) -> dict[str, float]:
    """How far the back each texturing mode paints is from the true back colour.

    Every mode of :data:`mould.recon.texture.BACK_TEXTURES` colours the predicted mould's back as a
    reconstruction would (``predicted`` only when the mould holds a predicted back colour), and is compared
    with the truth over the pixels both silhouettes hold.

    Args:
        predicted: the predicted mould, with the crop as its image.
        true_back: (N, N, 3) uint8 true colour of the hidden surface. true_mask: (N, N) bool.

    Returns:
        ``back_<mode>_l1``: mean absolute error in 8-bit levels (0-255), per mode; empty when no pixel is
        shared.
    """
    from mould.recon.texture import BACK_TEXTURES, DEFAULT_SEAM_WIDTH, back_tile, pad_background

    region = predicted.mask & np.asarray(true_mask, bool)
    if not region.any() or predicted.image is None:
        return {}
    front = pad_background(predicted.image, predicted.mask)
    errors = {}
    for mode in BACK_TEXTURES:
        if mode == "predicted" and predicted.back_image is None:
            continue
        tile = back_tile(predicted, front, mode, DEFAULT_SEAM_WIDTH).astype(np.float64)
        errors[f"back_{mode}_l1"] = float(np.abs(tile - true_back)[region].mean())
    return errors


MESH_SCORES = {
    "chamfer_mm": "chamfer_l1_mm",
    "p2s_mm": "p2s_a_to_b_mm",
    "s2p_mm": "p2s_b_to_a_mm",
    "normal_consistency": "normal_consistency",
    "fscore": "fscore",
    "volume_iou": "iou",
}
"""Report name -> name in :func:`mould.recon.metrics.compare_meshes`, called with the prediction as mesh
A and the truth as B. ``p2s_mm`` is the usual P2S (points of the reconstruction to the true surface)."""


def mesh_scores(predicted, truth, samples: int | None = None) -> dict[str, float]:
    """Distances between a predicted and a true mesh (:func:`mould.recon.metrics.compare_meshes`).

    Args:
        predicted, truth: ``mould.recon.mesh.Mesh`` or ``(vertices, faces)``, same frame, metres.
        samples: surface points per mesh (None: compare_meshes' default, 100,000); fewer is faster and
            noisier.

    Returns:
        The keys of :data:`MESH_SCORES`: ``chamfer_mm`` (mean of both directions), ``p2s_mm``, ``s2p_mm``
        (mm), ``normal_consistency``, ``fscore`` (at compare_meshes' ``tau_mm``), ``volume_iou`` (in [0, 1]).
    """
    from mould.recon.metrics import MetricConfig, compare_meshes

    config = None if samples is None else MetricConfig(samples=samples, volume_samples=2 * samples)
    raw = compare_meshes(predicted, truth, config)
    return {name: float(raw[key]) for name, key in MESH_SCORES.items()}

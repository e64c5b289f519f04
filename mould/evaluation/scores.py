"""Scores of predicted moulds against the ground truth: depth errors, silhouette IoU, mesh distances.

Depth conventions: the network predicts depth relative to a per-person reference
(:mod:`mould.models.depth`). One photo fixes shape but not distance, so scores place the prediction at the
ground truth's reference (:func:`mould.models.depth.reference_depth` of the true visible map) before
comparing metric depths (:mod:`mould.evaluation.predictions`). Depth errors are means over the ground-truth
mask, in millimetres.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from mould.evaluation.predictions import MetricDepths


def depth_scores(predicted: MetricDepths, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-sample scores of a batch.

    Returns:
        ``visible_l1_mm``, ``hidden_l1_mm``: (B,) mean absolute depth error over the ground-truth mask, mm
        (NaN for an empty mask); ``silhouette_iou``: (B,) intersection over union of the predicted and true
        masks (1 when both are empty).
    """
    truth = batch["mask"] > 0.5
    pixels = truth.flatten(1).sum(1).float()
    scores = {}
    for name in ("visible", "hidden"):
        error = (getattr(predicted, name) - batch[name].float()).abs() * truth
        scores[f"{name}_l1_mm"] = error.flatten(1).sum(1) / pixels * 1000.0
    inter = (predicted.mask & truth).flatten(1).sum(1).float()
    union = (predicted.mask | truth).flatten(1).sum(1).float()
    scores["silhouette_iou"] = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    return scores


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

"""Scores of predicted moulds against the ground truth: depth errors, silhouette IoU, mesh distances.

Depth conventions: the network predicts depth relative to a per-person reference
(:mod:`mould.models.depth`). One photo fixes shape but not distance, so scores place the prediction at the
ground truth's reference (:func:`mould.models.depth.reference_depth` of the true visible map) before
comparing metric depths. Depth errors are means over the ground-truth mask, in millimetres.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from mould.container import Mould

log = logging.getLogger(__name__)

MASK_THRESHOLD = 0.5
"""A pixel is on the person when the predicted mask probability exceeds this (the inference rule)."""


@dataclass(frozen=True)
class MetricDepths:
    """A batch of predictions in metric units.

    Attributes:
        visible, hidden: (B, 1, N, N) float32, camera-space z, metres, defined at every pixel.
        mask: (B, 1, N, N) bool, the predicted silhouette.
        reference: (B,) float32, the reference depth used, metres.
    """

    visible: torch.Tensor
    hidden: torch.Tensor
    mask: torch.Tensor
    reference: torch.Tensor


def metric_depths(
    final: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], depth_scale: float
) -> MetricDepths:
    """The last stack's prediction in metres, placed at the ground truth's reference depth.

    Args:
        final: a prediction dict (keys ``visible``, ``hidden``, ``mask_logits``, each (B, 1, N, N)).
        batch: the collated records (``visible``, ``mask`` used for the reference).
        depth_scale: the model config's metres per relative unit.
    """
    from mould.models.depth import reference_depth, relative_to_depth

    reference = reference_depth(batch["visible"].float(), batch["mask"].float())
    return MetricDepths(
        visible=relative_to_depth(final["visible"].float(), reference, depth_scale),
        hidden=relative_to_depth(final["hidden"].float(), reference, depth_scale),
        mask=torch.sigmoid(final["mask_logits"].float()) > MASK_THRESHOLD,
        reference=reference,
    )


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


def predicted_mould(visible: np.ndarray, hidden: np.ndarray, mask: np.ndarray, truth: Mould) -> Mould | None:
    """A valid :class:`Mould` from metric predictions seen by the ground truth's camera.

    Pixels with a non-positive or non-finite depth leave the mask; the hidden depth is raised to the
    visible one where the network put it in front (a mould's order constraint). Returns None when no
    pixel is left.

    Args:
        visible, hidden: (N, N) float, metres. mask: (N, N) bool.
        truth: the ground-truth mould (its camera and image are used).
    """
    visible = np.asarray(visible, np.float32)
    hidden = np.maximum(np.asarray(hidden, np.float32), visible)
    mask = np.asarray(mask, bool) & np.isfinite(visible) & np.isfinite(hidden) & (visible > 0)
    if not mask.any():
        return None
    return Mould(
        visible=np.where(mask, visible, 0),
        hidden=np.where(mask, hidden, 0),
        mask=mask,
        camera=truth.camera,
        image=truth.image,
    )


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

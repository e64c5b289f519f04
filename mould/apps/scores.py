"""Scores of predicted moulds against the ground truth: depth errors, silhouette IoU, mesh distances.

Depth conventions: the network predicts depth relative to a per-person reference
(:mod:`mould.models.depth`). One photo fixes shape but not distance, so scores place the prediction at the
ground truth's reference (:func:`mould.models.depth.reference_depth` of the true visible map) before
comparing metric depths. Depth errors are means over the ground-truth mask, in millimetres.
"""

from __future__ import annotations

import logging
import math
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


MESH_SCORE_NAMES = ("chamfer_mm", "p2s_mm", "s2p_mm", "normal_consistency", "fscore")
"""The mesh figures a report lists (the keys :func:`mould.recon.metrics.compare_meshes` returns that we
keep, with its own names mapped onto these where they differ)."""


def mesh_scores(predicted, truth) -> dict[str, float]:
    """Distances between a predicted and a true mesh (``mould.recon.metrics.compare_meshes``), in mm.

    Returns:
        ``chamfer_mm`` (mean of both directions), ``p2s_mm`` (predicted points to the true surface, the
        usual P2S), ``s2p_mm`` (the reverse), ``normal_consistency`` (0 to 1), ``fscore`` (0 to 1, at the
        threshold of compare_meshes), plus any other figure compare_meshes returns, unchanged.
    """
    from mould.recon.metrics import compare_meshes

    raw = {k: float(v) for k, v in compare_meshes(predicted, truth).items() if _is_number(v)}
    return {**raw, **{k: v for k, v in _standard_names(raw).items() if k not in raw}}


def _standard_names(raw: dict[str, float]) -> dict[str, float]:
    """Map compare_meshes' names onto :data:`MESH_SCORE_NAMES` by recognising common spellings."""
    found: dict[str, float] = {}
    lower = {k.lower(): v for k, v in raw.items()}
    for target, candidates in {
        "chamfer_mm": ("chamfer_mm", "chamfer"),
        "p2s_mm": ("p2s_mm", "p2s_a_to_b_mm", "p2s_ab_mm", "p2s"),
        "s2p_mm": ("s2p_mm", "p2s_b_to_a_mm", "p2s_ba_mm", "s2p"),
        "normal_consistency": ("normal_consistency", "normals"),
        "fscore": ("fscore", "f_score", "f-score"),
    }.items():
        for name in candidates:
            if name in lower:
                found[target] = lower[name]
                break
        else:
            matches = [k for k in lower if k.startswith(target.split("_")[0])]
            if matches:
                found[target] = lower[sorted(matches)[0]]
    return found


def _is_number(value) -> bool:
    try:
        return math.isfinite(float(value)) or math.isnan(float(value))
    except (TypeError, ValueError):
        return False

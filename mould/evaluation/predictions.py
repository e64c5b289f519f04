"""A network's predictions on a batch of records, in metres, placed as the scores need them.

One photo fixes shape but not distance, so predictions are placed at the ground truth's reference depth
(:func:`mould.models.depth.reference_depth` of the true visible map) before they are compared: see
:mod:`mould.evaluation.scores`. Training's validation and ``mould eval`` both predict through here.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from mould.container import Mould


@dataclass(frozen=True)
class MetricDepths:
    """A batch of predictions in metric units.

    Attributes:
        visible, hidden: (B, 1, N, N) float32, camera-space z, metres, defined at every pixel.
        mask: (B, 1, N, N) bool, the predicted silhouette.
        reference: (B,) float32, the reference depth used, metres.
        back: (B, 3, N, N) float32 predicted colour of the hidden surface, RGB in [0, 1], or None for a
            model without a back-colour head.
    """

    visible: torch.Tensor
    hidden: torch.Tensor
    mask: torch.Tensor
    reference: torch.Tensor
    back: torch.Tensor | None = None

    def mould(self, index: int, truth: Mould) -> Mould:
        """Item ``index`` as a valid :class:`Mould` seen by the true mould's camera (with its image and the
        predicted back colour); its mask is empty when nothing valid was predicted
        (:func:`mould.models.maps.maps_to_mould`)."""
        from mould.models.maps import maps_to_mould

        def plane(value: torch.Tensor) -> np.ndarray:
            return value[index, 0].detach().float().cpu().numpy()

        back = None
        if self.back is not None:
            colour = self.back[index].detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
            back = (colour * 255 + 0.5).astype(np.uint8)
        return maps_to_mould(
            plane(self.visible), plane(self.hidden), plane(self.mask), truth.camera, image=truth.image,
            back_image=back,
        )  # fmt: skip


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
    from mould.models.maps import MASK_THRESHOLD

    reference = reference_depth(batch["visible"].float(), batch["mask"].float())
    return MetricDepths(
        visible=relative_to_depth(final["visible"].float(), reference, depth_scale),
        hidden=relative_to_depth(final["hidden"].float(), reference, depth_scale),
        mask=torch.sigmoid(final["mask_logits"].float()) > MASK_THRESHOLD,
        reference=reference,
        back=final["back"].float() if "back" in final else None,
    )


def predict_batch(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    autocast: contextlib.AbstractContextManager | None = None,
) -> tuple[MetricDepths, dict[str, torch.Tensor]]:
    """Run a :class:`~mould.models.hourglass.MouldNet` (no gradients) on a collated batch already on its
    device.

    Returns:
        The last stack's metric prediction (:func:`metric_depths`, at the model's own ``depth_scale``) and
        its per-sample :func:`~mould.evaluation.scores.depth_scores`.
    """
    from mould.evaluation.scores import depth_scores

    with torch.no_grad(), autocast or contextlib.nullcontext():
        image = batch["image"].contiguous(memory_format=torch.channels_last)
        final = model(image)[-1]
    predicted = metric_depths({k: v.float() for k, v in final.items()}, batch, model.config.depth_scale)
    return predicted, depth_scores(predicted, batch)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """The batch's tensors on ``device`` (asynchronously to a GPU)."""
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) for k, v in batch.items()}

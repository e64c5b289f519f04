"""What reconstruction needs of a network, without torch: its maps for a batch of crops, and the one rule
that turns predicted maps into a metric :class:`~mould.container.Mould`.

A :class:`Predictor` is anything with a model config and :meth:`~Predictor.predict_crops`: the torch
network (:class:`mould.models.inference.TorchPredictor`) or its ONNX export run by onnxruntime
(:class:`mould.models.runtime.OnnxPredictor`); :func:`mould.models.runtime.load_predictor` chooses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from mould.models.configs import ModelConfig

from mould.camera import Camera
from mould.container import Mould

MASK_THRESHOLD = 0.5
"""A pixel is on the person when the predicted mask probability exceeds this (logit > 0)."""


@dataclass(frozen=True)
class CropMaps:
    """The final stack's maps for B crops of N x N pixels, numpy on the CPU.

    Attributes:
        visible, hidden: (B, N, N) float32 relative depth (:mod:`mould.models.depth`).
        mask_prob: (B, N, N) float32 probability that a pixel is the person.
        back: (B, N, N, 3) uint8 colour of the hidden surface, or None for a model without a back-colour head.
    """

    visible: np.ndarray
    hidden: np.ndarray
    mask_prob: np.ndarray
    back: np.ndarray | None = None

    def item(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Crop ``index``'s ``(visible, hidden, mask_prob, back)``."""
        back = None if self.back is None else self.back[index]
        return self.visible[index], self.hidden[index], self.mask_prob[index], back


def probability(logits: np.ndarray) -> np.ndarray:
    """The sigmoid of mask logits, float32, without overflow warnings for large negative logits."""
    logits = np.asarray(logits, np.float32)
    return (0.5 * (1.0 + np.tanh(0.5 * logits))).astype(np.float32)


def back_pixels(back: np.ndarray) -> np.ndarray:
    """(B, N, N, 3) uint8 colours from the back head's (B, 3, N, N) RGB in [0, 1]."""
    return (np.clip(back, 0, 1).transpose(0, 2, 3, 1) * 255 + 0.5).astype(np.uint8)


class Predictor(Protocol):
    """A network that reconstruction can run."""

    config: ModelConfig
    """The network's config (``depth_scale``, ``back_colour``, ...)."""

    def predict_crops(self, crops: np.ndarray) -> CropMaps:
        """The maps of (B, N, N, 3) uint8 RGB crops, in one forward pass (eval mode, no gradients)."""
        ...


def maps_to_mould(
    visible: np.ndarray,
    hidden: np.ndarray,
    mask: np.ndarray,
    camera: Camera,
    *,
    reference: float = 0.0,
    depth_scale: float = 1.0,
    image: np.ndarray | None = None,
    back_image: np.ndarray | None = None,
) -> Mould:
    """Predicted maps -> a valid metric :class:`Mould`: the one rule every caller uses.

    Depth is ``reference + depth_scale * map``: the network's relative maps with the person's reference and
    the model's ``depth_scale`` (:mod:`mould.models.depth`), or metric maps with the defaults. A mould's
    order holds by construction: the hidden depth is raised to the visible one where the network put it in
    front, and pixels whose depth is not finite and positive leave the mask.

    Args:
        visible, hidden: (N, N) float maps. mask: (N, N) bool predicted silhouette.
        camera: the crop's camera (resolution N).
        reference: metres. depth_scale: metres per unit of the maps.
        image: optional (N, N, 3) uint8 crop, kept in the mould.
        back_image: optional (N, N, 3) uint8 predicted colour of the hidden surface, kept in the mould.

    Returns:
        The mould; its mask may be empty (nobody found).
    """
    front = reference + depth_scale * np.asarray(visible, np.float64)
    back = np.maximum(reference + depth_scale * np.asarray(hidden, np.float64), front)
    mask = np.asarray(mask, bool) & np.isfinite(front) & np.isfinite(back) & (front > 0)
    return Mould(
        visible=np.where(mask, front, 0).astype(np.float32),
        hidden=np.where(mask, back, 0).astype(np.float32),
        mask=mask,
        camera=camera,
        image=image,
        back_image=back_image,
    )

"""Running a trained network: crops in, relative maps or metric :class:`~mould.container.Mould` s out.

The network predicts depth relative to the person (see :mod:`mould.models.depth`); metric depth needs a
``reference``: the assumed distance from the camera to the person's front surface (the median visible
depth), in metres. :func:`reference_from_height` estimates it for a perspective camera from the predicted
silhouette and an assumed body height.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from mould.models.hourglass import MouldNet
from mould.models.maps import MASK_THRESHOLD, CropMaps, back_pixels, maps_to_mould

from mould.camera import Camera
from mould.container import Mould
from mould.errors import InputError


def resolve_device(choice: str) -> torch.device:
    """Where a network runs: ``"auto"`` is CUDA when available, else the CPU; ``"cuda"`` without one is an error.

    Raises:
        InputError: ``"cuda"`` asked for on a machine without a CUDA device.
    """
    if choice == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    return torch.device("cuda" if choice != "cpu" and torch.cuda.is_available() else "cpu")


DEFAULT_PERSON_HEIGHT = 1.7
"""Metres: an adult's typical standing height, for :func:`reference_from_height`."""


def images_to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Crops as the network's input: (B, 3, N, N) float32 in [0, 1].

    Args:
        images: (B, 3, N, N) float tensor in [0, 1] (returned as float32), or uint8 RGB as a numpy array
            or tensor, (B, N, N, 3) or one (N, N, 3) crop.
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images: expected a numpy array or a tensor, got {type(images).__name__}")
    if images.dtype == torch.uint8:
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images: expected uint8 (B, N, N, 3) or (N, N, 3), got {tuple(images.shape)}")
        return images.permute(0, 3, 1, 2).float() / 255.0
    if not images.is_floating_point() or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"images: expected float (B, 3, N, N) in [0, 1] or uint8 (B, N, N, 3), "
            f"got {images.dtype} {tuple(images.shape)}"
        )
    return images.float()


@dataclass(frozen=True)
class Prediction:
    """The final stack's maps for a batch of crops, float32 on the CPU (the network's layout).

    Attributes:
        visible, hidden: (B, 1, N, N) relative depth (:mod:`mould.models.depth`).
        mask_prob: (B, 1, N, N) probability that a pixel is the person; the mask is ``> MASK_THRESHOLD``.
        back: (B, 3, N, N) RGB in [0, 1], the colour of the hidden surface, or None for a model without a
            back-colour head.
    """

    visible: torch.Tensor
    hidden: torch.Tensor
    mask_prob: torch.Tensor
    back: torch.Tensor | None = None

    def back_pixels(self, index: int) -> np.ndarray | None:
        """Item ``index``'s back colour as (N, N, 3) uint8, or None."""
        if self.back is None:
            return None
        return back_pixels(self.back[index : index + 1].numpy())[0]


def predict(model: MouldNet, images: np.ndarray | torch.Tensor) -> Prediction:
    """The final stack's maps for a batch of crops (eval mode, no gradients; the model's mode is restored).

    Args:
        model: the network.
        images: see :func:`images_to_tensor`.
    """
    tensor = images_to_tensor(images).to(next(model.parameters()).device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            final = model(tensor)[-1]
    finally:
        model.train(was_training)
    return Prediction(
        visible=final["visible"].float().cpu(),
        hidden=final["hidden"].float().cpu(),
        mask_prob=torch.sigmoid(final["mask_logits"]).float().cpu(),
        back=final["back"].float().cpu() if "back" in final else None,
    )


class TorchPredictor:
    """A torch network as a :class:`~mould.models.maps.Predictor`.

    Args:
        model: the network, on ``device``.
        device: where crops are sent.
    """

    def __init__(self, model: MouldNet, device: str | torch.device = "cpu") -> None:
        self.model = model
        self.config = model.config
        self.device = torch.device(device)

    def predict_crops(self, crops: np.ndarray) -> CropMaps:
        """The maps of (B, N, N, 3) uint8 crops (:meth:`mould.models.maps.Predictor.predict_crops`)."""
        prediction = predict(self.model, images_to_tensor(crops).to(self.device))
        back = None if prediction.back is None else back_pixels(prediction.back.numpy())
        return CropMaps(
            prediction.visible[:, 0].numpy(),
            prediction.hidden[:, 0].numpy(),
            prediction.mask_prob[:, 0].numpy(),
            back,
        )


def predict_moulds(
    model: MouldNet,
    images: np.ndarray | torch.Tensor,
    cameras: Sequence[Camera],
    reference: float | Sequence[float],
) -> list[Mould]:
    """Metric moulds for a batch of crops.

    Args:
        model: the network.
        images: B crops, see :func:`images_to_tensor`.
        cameras: B cameras of the crops (their resolution must be N).
        reference: metres, the assumed median depth of each person's visible surface (about the camera
            distance); one number for all, or one per crop.

    Returns:
        B moulds with metric depth (``reference + depth_scale * relative``), mask ``mask_prob > MASK_THRESHOLD``,
        and the crop as their image.

    Raises:
        ValueError: mismatched counts or resolutions, or a reference so small that predicted depth
            would lie behind the camera.
    """
    tensor = images_to_tensor(images)
    count, side = tensor.shape[0], tensor.shape[-1]
    if len(cameras) != count:
        raise ValueError(f"cameras: expected {count} (one per image), got {len(cameras)}")
    references = [float(reference)] * count if np.isscalar(reference) else [float(r) for r in reference]
    if len(references) != count:
        raise ValueError(f"reference: expected one number or {count}, got {len(references)}")
    for camera in cameras:
        if camera.resolution != side:
            raise ValueError(f"cameras: expected resolution {side} (the crops'), got {camera.resolution}")
    prediction = predict(model, tensor)
    visible, hidden, mask_prob = prediction.visible, prediction.hidden, prediction.mask_prob
    crops = (tensor.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
    moulds = []
    for index, (camera, distance) in enumerate(zip(cameras, references)):
        mask = (mask_prob[index, 0] > MASK_THRESHOLD).numpy()
        front = distance + model.config.depth_scale * visible[index, 0].numpy()
        if mask.any() and front[mask].min() <= 0:
            raise ValueError(
                f"reference: {distance} m puts part of person {index} behind the camera "
                f"(nearest predicted depth {front[mask].min():.3f} m)"
            )
        moulds.append(
            maps_to_mould(
                visible[index, 0].numpy(),
                hidden[index, 0].numpy(),
                mask,
                camera,
                reference=distance,
                depth_scale=model.config.depth_scale,
                image=crops[index],
                back_image=prediction.back_pixels(index),
            )
        )
    return moulds


def reference_from_height(mask: np.ndarray, camera: Camera, person_height: float = DEFAULT_PERSON_HEIGHT) -> float:
    """Estimate the camera distance of a standing person from the height of their silhouette.

    A pinhole images a person of height H at distance z over ``focal * H / z`` rows, so
    ``z = focal * H / rows``. The estimate assumes an upright, fully visible person and inherits the
    error of ``person_height`` (a child, a seated person) proportionally.

    Args:
        mask: (N, N) bool silhouette (e.g. ``mask_prob > MASK_THRESHOLD``).
        camera: the crop's perspective camera.
        person_height: metres.

    Returns:
        The reference (metres) for :func:`predict_moulds`.

    Raises:
        ValueError: an empty mask or an orthographic camera (whose depth offset no photo can tell: pass
            any reference that keeps the person in front of the image plane).
    """
    if camera.kind != "perspective":
        raise ValueError("camera: an orthographic camera has no distance to estimate; pass a reference directly")
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        raise ValueError("mask: empty silhouette")
    if not person_height > 0:
        raise ValueError(f"person_height: expected > 0 metres, got {person_height}")
    return float(camera.focal * person_height / (rows[-1] - rows[0] + 1))

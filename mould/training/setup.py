"""The parts a training run is assembled from: data, learning-rate schedule, precision, seeding."""

from __future__ import annotations

import contextlib
import math
import random
from dataclasses import dataclass

import numpy as np
import torch

from mould.errors import InputError
from mould.training.config import TrainConfig


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Learning rate of step ``step`` over the peak: linear warm-up over ``warmup`` steps, then a cosine
    from 1 down to ``min_ratio`` at step ``total`` (constant after it)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(max((step - warmup) / max(total - warmup, 1), 0.0), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int, min_ratio: float):
    """A ``LambdaLR`` following :func:`lr_factor` (its state dict holds only numbers)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, min(warmup, max(total, 1)), total, min_ratio)
    )


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for ``--precision`` on ``device``.

    Raises:
        InputError: fp16 on CPU (autocast there supports bf16 only).
    """
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"  # CPU autocast is slower than fp32 for these convolutions
    if precision == "fp16" and device.type != "cuda":
        raise InputError("--precision fp16: needs a CUDA device; use bf16 or fp32 on CPU")
    return precision


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context of a precision (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's global and torch's generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class TrainingData:
    """The training set: one dataset (mixed from the folders) and what the run card says of it.

    Attributes:
        dataset: a map-style dataset of records (:mod:`mould.datasets.records`).
        folders: per folder: ``{"path", "weight", "samples"}``.
        resolution: the crop side N of every record.
    """

    dataset: torch.utils.data.Dataset
    folders: list[dict]
    resolution: int


def open_training_data(config: TrainConfig, input_multiple: int) -> TrainingData:
    """Open ``config.data`` (folders and weights), with augmentation when ``config.augment``.

    Args:
        input_multiple: the model's required multiple of the crop side.

    Raises:
        InputError: a folder is missing or empty, the folders' resolutions differ, or the resolution does
            not suit the model.
    """
    from mould.datasets.augment import AugmentConfig
    from mould.datasets.mixing import mix_datasets, open_dataset

    augment = AugmentConfig() if config.augment else None
    parts, folders, sizes = [], [], set()
    for path, weight in config.data:
        dataset = open_dataset(path, augment=augment, seed=config.seed)
        size = int(dataset[0]["image"].shape[-1])
        sizes.add(size)
        parts.append((dataset, weight))
        folders.append({"path": str(path), "weight": weight, "samples": len(dataset), "resolution": size})
    if len(sizes) != 1:
        raise InputError(f"--data: the folders hold crops of different sizes {sorted(sizes)}; use one size")
    resolution = sizes.pop()
    if resolution % input_multiple:
        raise InputError(
            f"--data: {resolution}x{resolution} crops; this model needs a multiple of {input_multiple}"
        )
    return TrainingData(mix_datasets(parts, seed=config.seed), folders, resolution)


def model_config_named(name: str):
    """``mould.models.CONFIGS[name]``.

    Raises:
        InputError: an unknown name (the message lists the known ones).
    """
    from mould.models.configs import CONFIGS

    if name not in CONFIGS:
        raise InputError(f"--config: unknown config {name!r}; known: {', '.join(CONFIGS)}")
    return CONFIGS[name]

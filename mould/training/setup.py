"""The parts a training run is assembled from: data, learning-rate schedule, precision, seeding."""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mould.errors import InputError
from mould.training.config import TrainConfig


def lr_factor(step: int, warmup: int, total: int, min_ratio: float, time_fraction: float = 0.0) -> float:
    """Learning rate of step ``step`` over the peak: linear warm-up over ``warmup`` steps, then a cosine
    from 1 down to ``min_ratio`` at step ``total`` (constant after it), or sooner: the cosine's progress is
    the larger of the steps' and ``time_fraction``, the share of a time limit spent (0 without one)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = max((step - warmup) / max(total - warmup, 1), time_fraction)
    progress = min(max(progress, 0.0), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def schedule(
    optimizer: torch.optim.Optimizer,
    warmup: int,
    total: int,
    min_ratio: float,
    time_fraction: Callable[[], float] = lambda: 0.0,
):
    """A ``LambdaLR`` following :func:`lr_factor`, asking ``time_fraction()`` at each step (its state dict
    holds only numbers: the callables are not saved)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, min(warmup, max(total, 1)), total, min_ratio, time_fraction())
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
    """The training set: one dataset (mixed from the folders and the synthetic stream) and what the run card
    says of it.

    Attributes:
        dataset: a map-style dataset of records (:mod:`mould.datasets.records`).
        folders: per folder (or the stream): ``{"path", "weight", "samples", "resolution"}``.
        resolution: the crop side N of every record.
        stream: the synthetic stream (``--data synth``), or None.
    """

    dataset: torch.utils.data.Dataset
    folders: list[dict]
    resolution: int
    stream: object | None = None

    @property
    def collate(self):
        """The loader's collate function (:func:`mould.datasets.stream.collate` keeps draws aside)."""
        from mould.datasets.stream import collate

        return collate

    def batches(self, fetcher, device: torch.device):
        """The run's batches from a :class:`~mould.training.fetch.BatchFetcher` (itself, unless the stream's
        draws must be rendered on ``device``: then ahead of the steps, :class:`~mould.datasets.stream.
        DeviceBatches`). Either has ``close``."""
        if self.stream is None or self.stream.mode != "draws":
            return fetcher
        from mould.datasets.stream import DeviceBatches

        return DeviceBatches(fetcher, self.stream.config, device)


def open_training_data(
    config: TrainConfig, input_multiple: int, device: torch.device | None = None
) -> TrainingData:
    """Open ``config.data`` (folders, ``synth[@RES]`` streams, weights), with augmentation of the folders
    when ``config.augment``.

    Args:
        input_multiple: the model's required multiple of the crop side.
        device: the training device (a stream's samples are rendered there when it is a GPU, unless
            ``config.stream_render`` is ``workers``).

    Raises:
        InputError: a folder is missing or empty, the resolutions differ, or the resolution does not suit
            the model.
    """
    from mould.datasets.augment import AugmentConfig
    from mould.datasets.mixing import mix_datasets, open_dataset
    from mould.datasets.stream import open_stream, parse_stream_spec

    augment = AugmentConfig() if config.augment else None
    parts, folders, sizes, streams = [], [], set(), []
    for path, weight in config.data:
        stream_size = parse_stream_spec(path)
        if stream_size is not None:
            streams.append((stream_size, weight))
            sizes.update({stream_size} if stream_size else set())
            continue
        dataset = open_dataset(path, augment=augment, seed=config.seed)
        size = int(dataset[0]["image"].shape[-1])
        sizes.add(size)
        parts.append((dataset, weight))
        folders.append({"path": str(path), "weight": weight, "samples": len(dataset), "resolution": size})
    if len(sizes) > 1:
        raise InputError(f"--data: the folders hold crops of different sizes {sorted(sizes)}; use one size")
    resolution = sizes.pop() if sizes else 256
    if resolution % input_multiple:
        raise InputError(
            f"--data: {resolution}x{resolution} crops; this model needs a multiple of {input_multiple}"
        )
    if len(streams) > 1:
        raise InputError("--data: name synth once (its weight sets its share)")
    if config.backgrounds is not None and not streams:
        raise InputError("--backgrounds: only a synth stream draws backgrounds; add synth to --data")
    stream = None
    if streams:
        render_on = device if device is not None and config.stream_render == "device" else torch.device("cpu")
        stream = open_stream(resolution, config.seed, render_on, config.backgrounds)
        parts.append((stream, streams[0][1]))
        folders.append({"path": "synth", "weight": streams[0][1], "samples": "stream", "resolution": resolution,
                        "seed": stream.seed})  # fmt: skip
    return TrainingData(mix_datasets(parts, seed=config.seed), folders, resolution, stream)


def model_config_named(name: str):
    """``mould.models.CONFIGS[name]``.

    Raises:
        InputError: an unknown name (the message lists the known ones).
    """
    from mould.models.configs import CONFIGS

    if name not in CONFIGS:
        raise InputError(f"--config: unknown config {name!r}; known: {', '.join(CONFIGS)}")
    return CONFIGS[name]

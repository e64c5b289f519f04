"""Mixing several datasets with weights, and the ``DIR[:WEIGHT][,DIR...]`` data specification.

``MixedDataset`` is an ordinary map-style ``Dataset``: item ``i`` of epoch ``e`` picks a source with
probability proportional to its weight and an item of that source uniformly, both from a generator seeded
by ``(seed, e, i)``; from an endless source (:class:`mould.datasets.stream.SynthStream`) it takes that
source's sample ``e * len + i`` instead, which no other position takes. So a ``DataLoader`` may shuffle it
or split it over workers freely, and the same seed gives the same stream.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from mould.errors import InputError


class MixedDataset(torch.utils.data.Dataset):
    """Several datasets drawn from with weights.

    Args:
        specs: (dataset, weight) pairs, weights > 0 (they need not sum to 1).
        length: items per epoch; default the sum of the datasets' lengths.
        seed: seeds the draws with the epoch and the index.
    """

    def __init__(
        self, specs: list[tuple[torch.utils.data.Dataset, float]], length: int | None = None, seed: int = 0
    ) -> None:
        if not specs:
            raise ValueError("specs: expected at least one (dataset, weight) pair")
        weights = np.array([float(weight) for _, weight in specs])
        if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
            raise ValueError(f"specs: weights must be finite and > 0, got {weights.tolist()}")
        self.datasets = [dataset for dataset, _ in specs]
        for dataset in self.datasets:
            if len(dataset) == 0:
                raise ValueError("specs: a dataset is empty")
        self.probabilities = weights / weights.sum()
        self.length = sum(len(dataset) for dataset in self.datasets) if length is None else int(length)
        if self.length < 1:
            raise ValueError(f"length: expected >= 1, got {self.length}")
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """New draws for a new epoch; passed on to the datasets that have ``set_epoch``."""
        self.epoch = int(epoch)
        for dataset in self.datasets:
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)

    def source_of(self, index: int) -> tuple[int, int]:
        """(which dataset, which of its items) item ``index`` draws in the current epoch."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} items")
        rng = np.random.default_rng([self.seed, self.epoch, index])
        which = int(rng.choice(len(self.datasets), p=self.probabilities))
        return which, int(rng.integers(len(self.datasets[which])))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        which, item = self.source_of(index)
        dataset = self.datasets[which]
        if getattr(dataset, "endless", False):  # a stream: one fresh sample per position of the mix
            return dataset.draw(self.epoch * self.length + index)
        return dataset[item]


def mix_datasets(
    specs: list[tuple[torch.utils.data.Dataset, float]], length: int | None = None, seed: int = 0
) -> torch.utils.data.Dataset:
    """One dataset drawing from several with weights; a single spec is returned as it is."""
    if len(specs) == 1 and length is None:
        if not float(specs[0][1]) > 0:
            raise ValueError(f"specs: weights must be > 0, got {specs[0][1]}")
        return specs[0][0]
    return MixedDataset(specs, length=length, seed=seed)


def parse_data_spec(text: str) -> list[tuple[Path, float]]:
    """Parse ``"DIR[:WEIGHT][,DIR[:WEIGHT]...]"`` into (folder, weight) pairs; the weight defaults to 1.

    A trailing ``:NUMBER`` is a weight; anything else after a colon stays part of the path (so Windows
    drive letters and odd folder names survive).

    Raises:
        InputError: an empty item or a weight that is not a positive number.
    """
    specs = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise InputError(f"data spec {text!r}: empty item")
        path, weight = item, 1.0
        head, sep, tail = item.rpartition(":")
        if sep and head:
            try:
                weight = float(tail)
                path = head
            except ValueError:
                pass
        if not (np.isfinite(weight) and weight > 0):
            raise InputError(f"data spec {text!r}: weight of {path} must be > 0, got {tail}")
        specs.append((Path(path), weight))
    return specs


def open_dataset(path: str | os.PathLike, **kwargs) -> torch.utils.data.Dataset:
    """A folder as a dataset, by what it holds: a folder of samples (``SampleFolder``), a SURREAL tree
    (``cmu/`` inside, :mod:`mould.datasets.surreal`) or a 3D HUMANS-style tree (``humans3d.json`` inside,
    :mod:`mould.datasets.humans3d`). Keyword arguments go to the dataset's constructor."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: not a folder")
    if (path / "cmu").is_dir() or path.name == "cmu":
        from mould.datasets.surreal import SurrealDataset

        return SurrealDataset(path, **kwargs)
    if (path / "humans3d.json").is_file():
        from mould.datasets.humans3d import Humans3DDataset

        return Humans3DDataset(path, **kwargs)
    from mould.datasets.folder import SampleFolder

    return SampleFolder(path, **kwargs)

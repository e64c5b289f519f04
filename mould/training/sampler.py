"""A deterministic, resumable and shardable order of training items.

The whole run's data order is a pure function of ``(seed, dataset length)``: the items form an endless
sequence of epochs, epoch ``e`` being the permutation drawn by ``numpy.random.default_rng([seed, e])``.
Global position ``k`` (the k-th item the run consumes, over all processes) is item
``permutation_e[k mod n]`` of epoch ``e = k div n``. A step consumes ``batch_size x world_size`` positions;
process ``rank`` takes the ``rank``-th slice of ``batch_size``. So the only state to save is the number of
positions consumed, and a resumed run (even with another number of processes) continues the same stream.

Items are ``(epoch, index)`` pairs; :class:`EpochItems` turns them into records and tells the dataset its
epoch, so augmentation draws (seeded by ``(seed, epoch, index)`` in :class:`~mould.datasets.folder.
SampleFolder`) are the same whether items are loaded in the training process or in any DataLoader worker.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


class StepBatchSampler(torch.utils.data.Sampler):
    """Batches of ``(epoch, index)`` items for one process, from global position ``start`` on.

    Args:
        length: n, the dataset's length (>= 1).
        batch_size: items per batch for this process.
        batches: how many batches to yield.
        seed: seeds every epoch's permutation.
        start: global positions already consumed (saved in checkpoints).
        rank, world_size: this process's slice of each global batch.
    """

    def __init__(
        self,
        length: int,
        batch_size: int,
        batches: int,
        *,
        seed: int = 0,
        start: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if length < 1:
            raise ValueError(f"length: expected >= 1, got {length}")
        if batch_size < 1 or batches < 0 or start < 0:
            raise ValueError(
                f"batch_size, batches, start: expected >= 1, >= 0, >= 0; got {batch_size}, {batches}, {start}"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank: expected 0 <= rank < world_size = {world_size}, got {rank}")
        self.length, self.batch_size, self.batches = int(length), int(batch_size), int(batches)
        self.seed, self.start, self.rank, self.world_size = int(seed), int(start), int(rank), int(world_size)
        self._cached_epoch = -1
        self._permutation = np.zeros(0, np.int64)

    @property
    def global_batch(self) -> int:
        """Positions consumed per step, over all processes."""
        return self.batch_size * self.world_size

    def permutation(self, epoch: int) -> np.ndarray:
        """(n,) int64, the order of epoch ``epoch``."""
        if epoch != self._cached_epoch:
            self._permutation = np.random.default_rng([self.seed, epoch]).permutation(self.length)
            self._cached_epoch = epoch
        return self._permutation

    def item(self, position: int) -> tuple[int, int]:
        """``(epoch, index)`` at a global position."""
        epoch, offset = divmod(position, self.length)
        return epoch, int(self.permutation(epoch)[offset])

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for batch in range(self.batches):
            first = self.start + batch * self.global_batch + self.rank * self.batch_size
            yield [self.item(first + j) for j in range(self.batch_size)]


class EpochItems(torch.utils.data.Dataset):
    """A dataset indexed by ``(epoch, index)``: sets the wrapped dataset's epoch (when it has
    ``set_epoch``), then returns its item ``index``."""

    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset
        self._epoch: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key
        if epoch != self._epoch and hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        self._epoch = epoch
        return self.dataset[index]

"""``RecordSource``: the behaviour every dataset shares: records, augmentation, and surviving bad data.

A dataset subclasses it and says how to read item ``i`` as a :class:`~mould.container.Mould` holding its
image (:meth:`RecordSource.load_mould`). An item that cannot be read (truncated PNG, unreadable ``.npz``
or ``.mat``, missing file, bad JSON, empty mask, a file declaring sizes over :mod:`mould.limits`) or that
does not match the run (another crop side, keys, shapes or dtypes:
:func:`~mould.datasets.records.check_record`) is logged once with its path, remembered, counted, and
replaced by the next readable item, so an epoch never crashes on bad data and a batch never mixes sizes.
Counts live in the process that read the items: with ``DataLoader(num_workers > 0)`` each worker keeps its
own, so every record also carries ``skipped`` (how many bad items were stepped over to produce it) for
the training loop to sum.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from mould.datasets.augment import AugmentConfig, augment_record
from mould.datasets.records import check_record, mould_to_record

from mould.container import Mould
from mould.errors import InputError

log = logging.getLogger(__name__)


class RecordSource(torch.utils.data.Dataset):
    """Base class of the datasets; subclasses set ``self.size`` and implement ``load_mould``/``describe``.

    Args:
        augment: augmentation applied to each record; None leaves records as read.
        seed: with the epoch (:meth:`set_epoch`) and the index, seeds each record's augmentation, so the
            same (seed, epoch, index) always gives the same record.
    """

    size: int = 0
    resolution: int | None = None
    """The crop side N of every record (set by subclasses); an item of another side is skipped as bad, so
    that it never reaches a batch (collating records of two sizes fails)."""

    def __init__(self, augment: AugmentConfig | None = None, seed: int = 0) -> None:
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self.bad: dict[str, str] = {}
        """Item description -> reason, for every unreadable item met so far in this process."""
        self.skipped = 0
        """How many times an unreadable item was stepped over in this process."""

    def load_mould(self, index: int) -> Mould:
        """Item ``index`` as a mould holding its image; raise ``InputError`` (or ``OSError``,
        ``ValueError``) naming the file when it cannot be read."""
        raise NotImplementedError

    def describe(self, index: int) -> str:
        """Item ``index`` in words (its path), for logs and :attr:`bad`."""
        return str(index)

    def __len__(self) -> int:
        return self.size

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draws for a new epoch (call it in every worker, or before forking)."""
        self.epoch = int(epoch)

    def summary(self) -> str:
        """One line: how many items, how many found bad, how many skips."""
        return f"{self.size} items, {len(self.bad)} bad, {self.skipped} skipped reads"

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for {self.size} items")
        steps = 0
        for step in range(self.size):
            item = (index + step) % self.size
            name = self.describe(item)
            if name in self.bad:
                steps += 1
                continue
            try:
                record = mould_to_record(self.load_mould(item))
                if self.resolution is not None:
                    check_record(record, self.resolution)
            except (InputError, OSError, ValueError, KeyError) as error:
                self.bad[name] = str(error)
                log.warning("skipping bad item %s: %s", name, error)
                steps += 1
                continue
            self.skipped += steps
            if self.augment is not None:
                rng = np.random.default_rng([self.seed, self.epoch, index])
                record = augment_record(record, self.augment, rng)
            record["skipped"] = torch.tensor(steps)
            return record
        raise InputError(f"{self}: no readable item among {self.size}")

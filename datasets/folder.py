"""``SampleFolder``: a torch ``Dataset`` over one folder of samples (:mod:`mould.datasets.samples`).

A corrupt or incomplete sample (truncated PNG, unreadable ``.npz``, missing file, bad JSON) is logged once
with its path, remembered, counted, and replaced by the next valid sample, so an epoch never crashes on bad
data. Counts live in the process that read the samples: with ``DataLoader(num_workers > 0)`` each worker
keeps its own, and every record carries ``skipped`` (how many bad samples were stepped over to produce it)
so the training loop can sum them from its batches.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from mould.datasets.augment import AugmentConfig, augment_record
from mould.datasets.records import mould_to_record
from mould.datasets.samples import read_sample, sample_names

from mould.errors import InputError

log = logging.getLogger(__name__)


class SampleFolder(torch.utils.data.Dataset):
    """The samples of one folder as training records.

    Args:
        root: the folder (written by ``mould synth`` or any :func:`~mould.datasets.samples.write_sample`
            caller).
        augment: augmentation applied to each record; None leaves records as stored.
        seed: with the epoch (:meth:`set_epoch`) and the index, seeds each record's augmentation, so the
            same (seed, epoch, index) always gives the same record.

    Raises:
        InputError: ``root`` is not a folder or holds no samples.
    """

    def __init__(self, root: str | os.PathLike, augment: AugmentConfig | None = None, seed: int = 0) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"{self.root}: not a folder")
        self.names = sample_names(self.root)
        if not self.names:
            raise InputError(f"{self.root}: no samples found")
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self.bad: dict[str, str] = {}
        """name -> reason, for every corrupt sample met so far in this process."""
        self.skipped = 0
        """How many times a bad sample was stepped over in this process."""

    def __len__(self) -> int:
        return len(self.names)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draws for a new epoch (call it in every worker, or before forking)."""
        self.epoch = int(epoch)

    def summary(self) -> str:
        """One line: how many samples, how many found bad, how many skips."""
        return f"{self.root}: {len(self.names)} samples, {len(self.bad)} bad, {self.skipped} skipped reads"

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self.names):
            raise IndexError(f"index {index} out of range for {len(self.names)} samples")
        steps = 0
        for step in range(len(self.names)):
            name = self.names[(index + step) % len(self.names)]
            if name in self.bad:
                steps += 1
                continue
            try:
                record = self.load(name)
            except InputError as error:
                self.bad[name] = str(error)
                log.warning("skipping bad sample %s: %s", self.root / name, error)
                steps += 1
                continue
            self.skipped += steps
            if self.augment is not None:
                rng = np.random.default_rng([self.seed, self.epoch, index])
                record = augment_record(record, self.augment, rng)
            record["skipped"] = torch.tensor(steps)
            return record
        raise InputError(f"{self.root}: no readable sample among {len(self.names)}")

    def load(self, name: str) -> dict[str, torch.Tensor]:
        """The record of one sample, not augmented.

        Raises:
            InputError: the sample is missing a file or a file is corrupt; the message names the file.
        """
        mould, _ = read_sample(self.root, name)
        try:
            return mould_to_record(mould)
        except ValueError as error:
            raise InputError(f"{self.root / name}: {error}") from None

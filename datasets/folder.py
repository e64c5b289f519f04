"""``SampleFolder``: a torch ``Dataset`` over one folder of samples (:mod:`mould.datasets.samples`).

A corrupt or incomplete sample (truncated PNG, unreadable ``.npz``, missing file, bad JSON, oversized
headers) or one whose crop side is not the folder's (the side most samples have,
:func:`folder_resolution`) is logged once with its path, remembered, counted (``.bad``, ``.skipped``,
``.summary()``) and replaced by the next valid sample, so an epoch never crashes on bad data; every record
carries ``skipped`` (see :mod:`mould.datasets.source`).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from mould.datasets.augment import AugmentConfig
from mould.datasets.samples import read_sample, sample_names
from mould.datasets.source import RecordSource

from mould.container import Mould
from mould.errors import InputError
from mould.npz import NpzArchive


class SampleFolder(RecordSource):
    """The samples of one folder as training records (bad samples skipped and counted, see
    :mod:`mould.datasets.source`).

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
        super().__init__(augment, seed)
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"{self.root}: not a folder")
        self.names = sample_names(self.root)
        if not self.names:
            raise InputError(f"{self.root}: no samples found")
        self.size = len(self.names)
        self.resolution = folder_resolution(self.root, self.names)

    def __repr__(self) -> str:
        return f"SampleFolder({self.root})"

    def describe(self, index: int) -> str:
        return self.names[index]

    def summary(self) -> str:
        return f"{self.root}: {super().summary()}"

    def load_mould(self, index: int) -> Mould:
        """Sample ``index``'s mould with its image.

        Raises:
            InputError: the sample is missing a file or a file is corrupt; the message names the file.
        """
        mould, _ = read_sample(self.root, self.names[index], resolution=self.resolution)
        return mould


def folder_resolution(root: Path, names: list[str], probes: int = 16) -> int | None:
    """The crop side most of a folder's samples have, from the ``.npz`` headers of up to ``probes``
    samples spread over the folder (a few kB read each); None when none is readable.

    A vote, not the first sample: one odd sample (a 128² crop among 256² ones) must be the one skipped.
    """
    sides: list[int] = []
    for name in names[:: max(len(names) // probes, 1)][:probes]:
        try:
            with NpzArchive(root / f"{name}.npz") as archive:
                shape = archive.headers["visible"].shape
        except (InputError, KeyError, OSError):
            continue
        if len(shape) == 2 and shape[0] == shape[1]:
            sides.append(shape[0])
    return Counter(sides).most_common(1)[0][0] if sides else None

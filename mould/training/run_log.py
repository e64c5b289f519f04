"""What a training run records: ``metrics.csv``, TensorBoard events, prediction pictures, ``train.log``.

``metrics.csv`` is long-format, one figure per line, with the same tags as TensorBoard::

    step,elapsed_s,tag,value
    10,4.21,train/total,0.8731

Tags: ``train/<loss term>`` (averaged over ``log_every`` steps), ``train/lr``, ``train/steps_per_s``,
``train/d_<term>`` (discriminator), ``val/<metric>``. A resumed run first drops the lines logged after its
checkpoint, so the file reads as if the run had never stopped; TensorBoard is told the same
(``purge_step``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mould.files import write_atomic

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.csv"
HEADER = ("step", "elapsed_s", "tag", "value")


class RunLog:
    """Appends figures to ``metrics.csv`` and, when the ``tensorboard`` package is present, TensorBoard.

    Args:
        run_dir: the run folder.
        resume_step: lines logged after this step by an earlier process are dropped (a resumed run's
            checkpoint step, 0 for a new run); None keeps everything.
        tensorboard: write TensorBoard events under ``run_dir/tensorboard``.
    """

    def __init__(self, run_dir: str | os.PathLike, resume_step: int | None = None, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / METRICS_FILE
        if resume_step is not None and self.path.is_file():
            truncate_metrics(self.path, resume_step)
        new = not self.path.is_file()
        self._file = self.path.open("a", newline="")
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(HEADER)
            self._file.flush()
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning(
                    "tensorboard is not installed: figures go to %s only (pip install tensorboard)", self.path
                )
            else:
                self.writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=resume_step)

    def scalars(self, step: int, elapsed_s: float, values: dict[str, float]) -> None:
        """Record figures of one step; non-finite values are written as they are (``nan``, ``inf``)."""
        for tag, value in values.items():
            self._csv.writerow((step, f"{elapsed_s:.2f}", tag, f"{float(value):.6g}"))
            if self.writer is not None:
                self.writer.add_scalar(tag, float(value), step)
        self._file.flush()

    def image(self, step: int, tag: str, picture: np.ndarray) -> None:
        """Record a picture, (H, W, 3) uint8, in TensorBoard and as ``images/<tag>_<step>.png``."""
        from PIL import Image

        if self.writer is not None:
            self.writer.add_image(tag, picture, step, dataformats="HWC")
        folder = self.run_dir / "images"
        folder.mkdir(exist_ok=True)
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(picture, np.uint8)).save(buffer, format="PNG")
        name = f"{tag.replace('/', '_')}_{step:06d}.png"
        write_atomic(folder / name, lambda handle: handle.write(buffer.getvalue()))

    def text(self, tag: str, text: str) -> None:
        """Record a text (the run's options) in TensorBoard."""
        if self.writer is not None:
            self.writer.add_text(tag, text, 0)

    def close(self) -> None:
        self._file.close()
        if self.writer is not None:
            self.writer.close()


def truncate_metrics(path: Path, last_step: int) -> None:
    """Rewrite ``metrics.csv`` keeping the header and the lines with step <= ``last_step``; a line cut short
    by a killed process is dropped."""
    kept = []
    with path.open(newline="") as file:
        for row in csv.reader(file):
            if row and tuple(row) == HEADER:
                continue
            if len(row) != len(HEADER):
                continue
            try:
                step = int(row[0])
                float(row[3])
            except ValueError:
                continue
            if step <= last_step:
                kept.append(row)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(kept)
    write_atomic(path, lambda handle: handle.write(buffer.getvalue().encode()))


def read_metrics(path: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """``metrics.csv`` as ``{tag: [(step, value), ...]}`` in file order."""
    series: dict[str, list[tuple[int, float]]] = {}
    with Path(path).open(newline="") as file:
        for row in csv.DictReader(file):
            series.setdefault(row["tag"], []).append((int(row["step"]), float(row["value"])))
    return series


class RunningMeans:
    """Means of named figures over the steps since the last :meth:`pop`."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def add(self, values: dict[str, float]) -> None:
        for name, value in values.items():
            self._sums[name] = self._sums.get(name, 0.0) + float(value)
            self._counts[name] = self._counts.get(name, 0) + 1

    def pop(self) -> dict[str, float]:
        means = {name: self._sums[name] / self._counts[name] for name in self._sums}
        self._sums.clear()
        self._counts.clear()
        return means


def all_finite(values: dict[str, float]) -> bool:
    return all(math.isfinite(v) for v in values.values())


@contextlib.contextmanager
def file_log(run_dir: Path | None) -> Iterator[None]:
    """While the block runs, the log (INFO and above) also goes to ``run_dir/train.log``; None: nowhere else."""
    if run_dir is None:
        yield
        return
    handler = logging.FileHandler(Path(run_dir) / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()

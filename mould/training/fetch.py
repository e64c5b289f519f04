"""Fetching training batches so that a failing data worker stops the run in one line, never hangs it.

Three ways a ``DataLoader`` with workers could hang or crash a run, and what :class:`BatchFetcher` does:

- **A worker raises** (a bug, or data no dataset check caught): torch re-raises it in the training process
  with the worker's traceback in its message. The fetcher turns it into :class:`DataFailure`, one line:
  the original exception's last line (the whole traceback is logged at debug level, ``-vv``).
- **A worker dies** (SIGKILL, the out-of-memory killer): torch's SIGCHLD handler raises a ``RuntimeError``
  in the training process at whatever line it is on, possibly half-way through an optimiser step, which
  would leave weights that no checkpoint should hold. Between fetches the fetcher sets SIGCHLD to its
  default; on the next fetch it puts torch's handler back and calls it once, so a death since the last
  fetch raises there, cleanly between two steps.
- **Exiting with the workers alive**: workers ignore SIGTERM (:func:`~mould.training.stop_signals.
  ignore_stop_signals`), so the ``terminate()`` that ``multiprocessing`` sends daemonic children at
  interpreter exit does nothing, and its ``join()`` then waits forever. This is what hung runs on one bad
  sample: the worker's exception kept the iterator alive in its traceback. :meth:`BatchFetcher.close`
  shuts the workers down when the loop ends, however it ends, and kills any that do not exit.
"""

from __future__ import annotations

import logging
import signal
import threading

import torch

from mould.errors import MouldError
from mould.training.stop_signals import ignore_stop_signals

log = logging.getLogger(__name__)

_JOIN_SECONDS = 5.0
"""How long a worker asked to stop may take before it is killed (torch waits as long for its own)."""


class DataFailure(MouldError):
    """The training data could not be fetched: a worker raised or died. The message is one line."""

    def stopped_at(self, step: int, saved: bool) -> DataFailure:
        """This failure, saying where the run stopped and whether a checkpoint holds that step."""
        kept = "with a checkpoint" if saved else "(the last checkpoint is kept)"
        return DataFailure(f"{self}; stopped at step {step} {kept}; --resume continues")


def failure_line(error: BaseException) -> str:
    """One line for a ``DataLoader`` error: the worker's original exception (the last line of the traceback
    torch quotes), or the error's first line."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    line = lines[-1] if "Original Traceback" in str(error) else lines[0]
    return line.rstrip(". ")


class BatchFetcher:
    """The batches of a training run, from a ``DataLoader`` with ``workers`` processes (0: this one);
    any loader failure is a :class:`DataFailure`.

    Args:
        dataset: a map-style dataset of records (:mod:`mould.datasets.records`).
        sampler: the run's :class:`~mould.training.sampler.StepBatchSampler`, whose ``(epoch, index)``
            items :class:`~mould.training.sampler.EpochItems` turns into records.
        workers: loader processes; each ignores SIGINT and SIGTERM (the training process stops them).
        pin_memory: pin batches for a CUDA device.
        seed: seeds the loader's own generator.
        collate: the loader's collate function (None: torch's default).

    Call :meth:`close` when done (a ``finally``), or use it as a context manager.
    """

    def __init__(
        self, dataset: torch.utils.data.Dataset, sampler, workers: int, pin_memory: bool, seed: int, collate=None
    ) -> None:
        from mould.training.sampler import EpochItems

        loader = torch.utils.data.DataLoader(
            EpochItems(dataset),
            batch_sampler=sampler,
            num_workers=workers,
            pin_memory=pin_memory,
            worker_init_fn=ignore_stop_signals,
            collate_fn=collate,
            # Its own generator: creating the iterator must not draw from torch's global RNG, or a resumed
            # run would draw differently from an uninterrupted one.
            generator=torch.Generator().manual_seed(seed),
        )
        self._iterator = iter(loader)  # with workers, torch installs its SIGCHLD handler here (once per process)
        self._watch = None
        if threading.current_thread() is threading.main_thread():
            handler = signal.getsignal(signal.SIGCHLD)
            if callable(handler) and workers > 0:
                self._watch = handler
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)

    def __iter__(self) -> BatchFetcher:
        return self

    def __next__(self):
        try:
            if self._watch is not None:
                signal.signal(signal.SIGCHLD, self._watch)
                self._watch(signal.SIGCHLD, None)  # raises if a worker died since the last fetch
            return next(self._iterator)
        except StopIteration:
            raise
        except Exception as error:  # torch re-raises a worker's exception with the worker's own type
            log.debug("the data loader failed", exc_info=True)  # the worker's traceback, with -vv
            raise DataFailure(f"the training data failed: {failure_line(error)}") from None
        finally:
            if self._watch is not None:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)

    def close(self) -> None:
        """Stop the workers now (asked, then killed after a few seconds) and give SIGCHLD back to torch."""
        if self._watch is not None:
            signal.signal(signal.SIGCHLD, self._watch)
            self._watch = None
        # Private torch API, pinned by constraints/ci.txt: the public way (dropping the last reference)
        # does nothing while an exception's traceback still holds the iterator.
        shutdown = getattr(self._iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
        for worker in getattr(self._iterator, "_workers", ()):
            if worker.is_alive():
                worker.kill()
                worker.join(_JOIN_SECONDS)

    def __enter__(self) -> BatchFetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

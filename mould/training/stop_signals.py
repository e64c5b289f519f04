"""Stopping a training run cleanly on SIGINT or SIGTERM (what Ctrl-C, ``kill`` and torchrun send)."""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger(__name__)


class StopSignals:
    """While active, the first SIGINT or SIGTERM sets :attr:`count` (the loop then stops after its current
    step, with a checkpoint); a second one raises ``KeyboardInterrupt`` at once.

    Use as a context manager; the previous handlers come back on exit. Outside the main thread (where
    Python cannot install handlers) it does nothing.

    Args:
        announce: log a warning when a signal arrives (rank 0 only, to say it once).
    """

    def __init__(self, announce: bool = True) -> None:
        self.count = 0
        self.announce = announce
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt
        if self.announce:
            log.warning(
                "%s: stopping after this step with a checkpoint (send it again to stop at once)",
                signal.Signals(signum).name,
            )

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def ignore_stop_signals(worker_id: int = 0) -> None:
    """A DataLoader ``worker_init_fn``: the worker ignores SIGINT and SIGTERM.

    Ctrl-C, ``timeout``, Slurm and ``kill -- -PGID`` signal the whole process group. A worker that died of
    the signal would make torch raise in the training process at an arbitrary point, before it could save
    the step it was on; ignoring it leaves the stop to the training process, which shuts its workers down
    itself (and they still exit if it dies, through torch's parent watchdog).
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)

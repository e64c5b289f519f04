"""The machine a figure was measured on: one description for every bench's printed line and for training's
``run.json`` (:mod:`mould.training.run_info`)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name where Linux tells it (/proc/cpuinfo), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    """The 1-minute load average (runnable processes competing for the cores), None where the system does not
    report one (Windows)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def describe_machine() -> str:
    """``"<CPU model>, <N> cores, load <L>"``: printed beside every benchmark's figures, since on a shared
    machine the load (not only the CPU) sets the times."""
    load = load_average()
    return f"{cpu_model()}, {os.cpu_count()} cores, load " + ("unknown" if load is None else f"{load:.1f}")

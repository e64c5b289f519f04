"""``RUN_DIR/run.json``: what a model card needs to say about a run (command, data, hardware, time, scores).

Rank 0 rewrites it atomically at the start, at every checkpoint and at the end. Keys:
``command`` (argv), ``train_config`` and ``model_config`` (JSON objects), ``parameters`` (generator),
``data`` (per folder: path, weight, samples), ``val`` (folder, samples), ``environment`` (see
:func:`environment`), ``status`` (``running``, ``finished``, ``interrupted``), ``step``, ``samples_seen``,
``elapsed_s`` (training wall time over all sessions), ``sessions`` (one entry per start or resume:
id, start time, command, processes, first step, last step, steps/s), ``last_validation`` (``val/...``
scores), ``replica_difference`` (under torchrun: the largest parameter difference between processes at
the end; 0 means in sync).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
from pathlib import Path

from mould.files import write_atomic
from mould.machine import cpu_model

log = logging.getLogger(__name__)

RUN_FILE = "run.json"


def environment(device, world_size: int, threads: int, precision: str) -> dict:
    """Hardware and software of this run: CPU model and cores, GPU, torch, python, git commit."""
    import torch

    info = {
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if getattr(device, "type", "") == "cuda" else None,
        "processes": world_size,
        "threads_per_process": threads,
        "precision": precision,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "mould_commit": _git_commit(),
    }
    return info


def _git_commit(root: Path | None = None) -> str | None:
    """The commit of the mould source tree (or of ``root``), when it is a git checkout (editable installs),
    with `` (modified)`` when tracked files differ from it.

    Read-only: ``git status`` refreshes the index and rewrites it under ``.git/index.lock`` when files'
    timestamps changed, which races with the user's own git commands in that checkout;
    ``--no-optional-locks`` (and ``GIT_OPTIONAL_LOCKS=0`` for older gits) makes it write nothing.
    """
    root = Path(__file__).resolve().parents[2] if root is None else root
    environment = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def git(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", "--no-optional-locks", "-C", str(root), *arguments],
            capture_output=True, text=True, timeout=5, check=False, env=environment,
        )  # fmt: skip

    try:
        result = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() + (" (modified)" if dirty.stdout.strip() else "")


def read_run_info(run_dir: str | os.PathLike) -> dict:
    """The run's ``run.json`` (an empty dict when missing or unreadable)."""
    path = Path(run_dir) / RUN_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_run_info(run_dir: str | os.PathLike, info: dict) -> None:
    text = json.dumps(info, indent=1, sort_keys=True, default=str)
    write_atomic(Path(run_dir) / RUN_FILE, lambda handle: handle.write(text.encode()))


def command_line() -> list[str]:
    """This process's command as ``mould ...`` (also when started as ``python -m mould.cli`` or by torchrun,
    whose own options are not visible here)."""
    program = Path(sys.argv[0]).name
    return ["mould" if program in ("cli.py", "__main__.py") else program, *sys.argv[1:]]


def update_run_info(run_dir: str | os.PathLike, session: dict, **fields) -> dict:
    """Merge ``fields`` into ``run.json`` and record ``session`` (replacing the entry with the same ``id``,
    so a session is one entry however often it is written). Returns the new content."""
    info = read_run_info(run_dir)
    sessions = info.get("sessions", [])
    # An id, not the start time: a quick run and its resume can start within the same second.
    if sessions and sessions[-1].get("id") == session["id"]:
        sessions[-1] = session
    else:
        sessions.append(session)
    info.update(fields, sessions=sessions, command=command_line())
    write_run_info(run_dir, info)
    return info

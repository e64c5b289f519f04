"""Training checkpoints in a run folder: weights, optimiser state, RNG states, data position; resuming.

Layout of ``RUN_DIR/checkpoints/``:

- ``step_XXXXXX.safetensors``: the generator (:func:`mould.models.checkpoint.save_checkpoint`; its model
  config in the metadata), loadable alone for inference and ``mould eval``;
- ``step_XXXXXX_state.pt``: everything else a resumed run needs (see :func:`training_state_keys`), made
  of plain tensors, numbers, strings, lists and dicts only, so ``torch.load(weights_only=True)`` reads it
  and nothing is ever unpickled;
- ``latest``: one line, the stem of the newest complete checkpoint.

Each file is written atomically, the state first, the weights second and ``latest`` last, so ``latest``
always names a complete pair, whenever the process is killed.
"""

from __future__ import annotations

import logging
import math
import os
import random
from pathlib import Path

import numpy as np
import torch

from mould.errors import InputError
from mould.files import path_inside, write_atomic
from mould.limits import LIMITS
from mould.models.checkpoint import CHECKPOINT_STEM, LATEST, checkpoint_folder, run_checkpoint
from mould.training.config import MAX_BATCH_SIZE, MAX_PROCESSES

log = logging.getLogger(__name__)

STATE_FORMAT = 1
"""Version of the ``_state.pt`` layout; a resumed run refuses another."""


def checkpoint_stem(step: int) -> str:
    """``step_000123``; a step must be >= 0 (a negative one would make names that :func:`prune_checkpoints`
    never matches)."""
    if int(step) < 0:
        raise ValueError(f"step: expected >= 0, got {step}")
    return f"step_{int(step):06d}"


def training_state_keys() -> tuple[str, ...]:
    """The keys of a ``_state.pt`` dict.

    ``format`` (int), ``step`` (int, optimisation steps done), ``consumed`` (int, global data positions
    consumed, :mod:`mould.training.sampler`), ``elapsed_s`` (float, training wall time so far),
    ``world_size`` (int), ``model_config`` and ``train_config`` (JSON str), ``optimizer``,
    ``scheduler``, ``scaler`` (state dicts; ``scaler`` may be empty), ``discriminator``,
    ``d_optimizer``, ``d_scheduler`` (state dicts, or None without a discriminator), ``rng`` (one
    :func:`capture_rng` dict per process, by rank).
    """
    return (
        "format", "step", "consumed", "elapsed_s", "world_size", "model_config", "train_config",
        "optimizer", "scheduler", "scaler", "discriminator", "d_optimizer", "d_scheduler", "rng",
    )  # fmt: skip


# -- RNG states ---------------------------------------------------------------------------------------------
def capture_rng() -> dict:
    """The RNG states of python, numpy's global generator, torch (CPU and every CUDA device), as plain data."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state = {
        "python": _to_lists(random.getstate()),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
    }
    return state


def restore_rng(state: dict) -> None:
    """Set every RNG back to a :func:`capture_rng` state."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = state["numpy"]
    np.random.set_state(
        (numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["position"], numpy["has_gauss"],
         numpy["gauss"])
    )  # fmt: skip
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        if len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
        else:
            log.warning(
                "the checkpoint saw %d CUDA devices, this machine has %d: CUDA RNG states not restored",
                len(state["cuda"]),
                torch.cuda.device_count(),
            )


def _to_lists(value):
    if isinstance(value, tuple):
        return [_to_lists(v) for v in value]
    return value


# -- files --------------------------------------------------------------------------------------------------
def save_training_checkpoint(
    run_dir: str | os.PathLike,
    step: int,
    model: torch.nn.Module,
    model_config,
    state: dict,
    metadata: dict[str, str] | None = None,
    keep: int = 3,
) -> Path:
    """Write checkpoint ``step`` atomically and point ``latest`` at it; delete all but the ``keep`` newest.

    Args:
        run_dir: the run folder.
        step: optimisation steps done.
        model: the generator (unwrapped from DistributedDataParallel).
        model_config: its ``mould.models.ModelConfig``.
        state: the ``_state.pt`` dict (:func:`training_state_keys`).
        metadata: strings stored in the safetensors header beside the model config.

    Returns:
        The ``.safetensors`` path.
    """
    from mould.models.checkpoint import save_checkpoint

    folder = checkpoint_folder(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = checkpoint_stem(step)
    missing = set(training_state_keys()) - set(state)
    if missing:
        raise ValueError(f"state: missing keys {sorted(missing)}")
    write_atomic(path_inside(folder, f"{stem}_state.pt"), lambda handle: torch.save(state, handle))
    weights = path_inside(folder, f"{stem}.safetensors")
    save_checkpoint(weights, model, model_config, metadata={"step": str(step), **(metadata or {})})
    write_atomic(folder / LATEST, lambda handle: handle.write(f"{stem}\n".encode()))
    prune_checkpoints(run_dir, keep)
    return weights


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The ``.safetensors`` named by ``RUN_DIR/checkpoints/latest`` (with its ``_state.pt``), or None when
    there is none.

    Raises:
        InputError: ``latest`` exists but is malformed or names missing files.
    """
    weights = run_checkpoint(run_dir)
    if weights is not None and not state_path(weights).is_file():
        pointer = checkpoint_folder(run_dir) / LATEST
        raise InputError(f"{pointer}: names {weights.stem}, but {state_path(weights)} is missing")
    return weights


def state_path(weights: str | os.PathLike) -> Path:
    """The ``_state.pt`` beside a checkpoint's ``.safetensors``."""
    weights = Path(weights)
    return weights.with_name(f"{weights.stem}_state.pt")


def load_training_state(path: str | os.PathLike) -> dict:
    """Read a ``_state.pt`` without unpickling anything (``weights_only=True``).

    Raises:
        InputError: unreadable, not a training state, or of another format version; names the file.
    """
    path = Path(path)
    _check_state_size(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or disallowed content
        raise InputError(f"{path}: not a readable training state ({type(error).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise InputError(f"{path}: training state format {found!r}, this toolkit reads {STATE_FORMAT}")
    missing = set(training_state_keys()) - set(state)
    if missing:
        raise InputError(f"{path}: training state lacks {sorted(missing)}")
    problem = _state_counters_problem(state)
    if problem:
        raise InputError(f"{path}: invalid training state: {problem}")
    return state


def _check_state_size(path: Path) -> None:
    """Refuse a state file over ``LIMITS.training_state_bytes``, on disk or as its zip directory declares
    (torch's format is a zip archive whose tensors are members), before ``torch.load`` reads it."""
    import zipfile

    most = LIMITS.training_state_bytes
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    declared = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            declared = max(declared, sum(info.file_size for info in archive.infolist()))
    except (zipfile.BadZipFile, OSError):
        pass  # not a zip archive: torch.load refuses it, in one line
    if declared > most:
        raise InputError(f"{path}: refused: {declared / 2**30:.3g} GiB, over {most / 2**30:.3g} GiB")


def _state_counters_problem(state: dict) -> str | None:
    """What is wrong with a state's step, sample count, time and process count, or None.

    A step below 0 named checkpoints ``step_-00002`` that were never pruned; the sample count of a run is
    at most its steps times the largest global batch."""

    def whole(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    step, consumed, elapsed, world = (state[k] for k in ("step", "consumed", "elapsed_s", "world_size"))
    if not (whole(step) and 0 <= step <= LIMITS.training_steps):
        return f"step {step!r}: expected a whole number from 0 to {LIMITS.training_steps:,}"
    if not (whole(world) and 1 <= world <= MAX_PROCESSES):
        return f"world_size {world!r}: expected 1 to {MAX_PROCESSES}"
    if not (whole(consumed) and 0 <= consumed <= step * MAX_BATCH_SIZE * MAX_PROCESSES):
        return f"consumed {consumed!r}: expected a sample count from 0 to step x batch x processes"
    if not (isinstance(elapsed, (int, float)) and math.isfinite(elapsed) and elapsed >= 0):
        return f"elapsed_s {elapsed!r}: expected a time in seconds >= 0"
    return None


def prune_checkpoints(run_dir: str | os.PathLike, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints (never the one ``latest`` names) and stale temporaries."""
    folder = checkpoint_folder(run_dir)
    pointer = folder / LATEST
    current = pointer.read_text().strip() if pointer.is_file() else None
    stems = sorted(
        (int(match.group(1)), path.stem)
        for path in folder.glob("step_*.safetensors")
        if (match := CHECKPOINT_STEM.match(path.stem))
    )
    for _, stem in stems[: max(len(stems) - keep, 0)]:
        if stem != current:
            for path in (folder / f"{stem}.safetensors", folder / f"{stem}_state.pt"):
                path.unlink(missing_ok=True)


def remove_stale_temporaries(run_dir: str | os.PathLike) -> None:
    """Remove temporary files a killed process left behind (``write_atomic`` names them ``.NAME.*.tmp``)."""
    for folder in (Path(run_dir), checkpoint_folder(run_dir)):
        if folder.is_dir():
            for path in folder.glob(".*.tmp"):
                path.unlink(missing_ok=True)

"""Network checkpoints as safetensors: the weights, and the config in the metadata, so that a checkpoint
alone rebuilds its network. Loading never unpickles anything.

Metadata keys (all strings): ``format`` = ``"mould-checkpoint"``, ``format_version`` = ``"2"``,
``model_config`` = the :class:`ModelConfig` as JSON, plus any the caller adds (training step, data, ...).
Optimiser states are the trainer's business and live in a separate file.

Format 1 (networks with redundant convolution biases) is still read: :mod:`mould.models.legacy` folds it
into today's network exactly.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mould.models.configs import ModelConfig

from mould.errors import InputError
from mould.files import write_atomic
from mould.limits import LIMITS

if TYPE_CHECKING:  # torch loads inside the functions that need it: resolving weights needs none
    import torch
    from mould.models.hourglass import MouldNet

log = logging.getLogger(__name__)

FORMAT = "mould-checkpoint"
FORMAT_VERSION = "2"
_READABLE_VERSIONS = ("1", "2")
_RESERVED = ("format", "format_version", "model_config")

CHECKPOINT_FOLDER = "checkpoints"
"""A training run folder keeps its checkpoints in this subfolder (:mod:`mould.training.state`)."""
LATEST = "latest"
"""The file of that subfolder naming the newest complete checkpoint, one line: its stem."""
CHECKPOINT_STEM = re.compile(r"^step_(\d{6,})$")
"""Stems of a run's checkpoints: ``step_000123``."""


WeightPrecision = Literal["fp32", "fp16"]

FP16_MAX = 65504.0
"""The largest finite float16: a weight beyond it cannot be stored in half precision."""


def save_checkpoint(
    path: str | os.PathLike,
    model: MouldNet,
    config: ModelConfig,
    metadata: dict[str, str] | None = None,
    *,
    precision: WeightPrecision = "fp32",
) -> Path:
    """Write ``model``'s weights and buffers with ``config`` to ``path`` (.safetensors), atomically.

    Args:
        metadata: extra string pairs to store; the keys ``format``, ``format_version`` and
            ``model_config`` are reserved.
        precision: ``"fp32"`` stores every tensor as it is; ``"fp16"`` stores the floating-point
            parameters as float16 (half the file; what ships), and keeps the buffers (BatchNorm running
            statistics: few numbers, and a running variance may lie below float16's normal range) and
            integer tensors as they are. :func:`load_checkpoint` reads both into a float32 network.

    Returns:
        The path written.

    Raises:
        ValueError: reserved or non-string metadata; an unknown ``precision``; with ``"fp16"``, a
            parameter beyond float16's range (named).
    """
    from safetensors.torch import save

    metadata = dict(metadata or {})
    clashes = sorted(set(metadata) & set(_RESERVED))
    if clashes:
        raise ValueError(f"metadata: the keys {clashes} are reserved")
    bad = [key for key, value in metadata.items() if not (isinstance(key, str) and isinstance(value, str))]
    if bad:
        raise ValueError(f"metadata: keys and values must be strings, not so for {bad}")
    if precision not in ("fp32", "fp16"):
        raise ValueError(f"precision: expected 'fp32' or 'fp16', got {precision!r}")
    metadata.update(format=FORMAT, format_version=FORMAT_VERSION, model_config=config.to_json())
    # Plain contiguous copies: safetensors refuses shared or strided storage (channels_last weights).
    tensors = {name: value.detach().cpu().contiguous().clone() for name, value in model.state_dict().items()}
    if precision == "fp16":
        for name, _ in model.named_parameters():
            value = tensors[name]
            if value.is_floating_point():
                if value.abs().max() > FP16_MAX:
                    raise ValueError(f"precision fp16: parameter {name} exceeds float16's range ({FP16_MAX})")
                tensors[name] = value.half()
    payload = save(tensors, metadata=metadata)
    path = Path(path)
    write_atomic(path, lambda handle: handle.write(payload))
    return path


def _describe_non_safetensors(head: bytes) -> str:
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (torch.save's format), which holds pickles"
    if head[:1] == b"\x80" or head[:1] in (b"(", b"c", b"]", b"}"):
        return "a Python pickle"
    return "not a safetensors file"


def read_checkpoint_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a safetensors checkpoint, read from its JSON header only.

    Raises:
        InputError: the file is missing, is not safetensors (a pickle is refused, never unpickled), or
            is not a mould checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    size = path.stat().st_size
    with open(path, "rb") as file:
        head = file.read(8)
        # safetensors: an 8-byte little-endian header length, then a JSON header starting with '{'.
        length = int.from_bytes(head, "little") if len(head) == 8 else 0
        if LIMITS.checkpoint_header_bytes < length <= size - 8:
            most = LIMITS.checkpoint_header_bytes
            raise InputError(f"{path}: refused: a {length:,}-byte safetensors header, more than {most:,}")
        header = file.read(min(length, size)) if 0 < length <= size - 8 else b""
    if not header.startswith(b"{"):
        raise InputError(
            f"{path}: refusing to load: {_describe_non_safetensors(head)}; "
            "weights must be a .safetensors file written by mould (pickles are never unpickled)"
        )
    try:
        metadata = json.loads(header).get("__metadata__") or {}
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
        raise InputError(f"{path}: corrupt safetensors header ({error})") from None
    if metadata.get("format") != FORMAT or "model_config" not in metadata:
        raise InputError(f"{path}: a safetensors file but not a mould checkpoint (no model config in metadata)")
    if metadata.get("format_version") not in _READABLE_VERSIONS:
        raise InputError(
            f"{path}: checkpoint format version {metadata.get('format_version')!r} is not supported "
            f"(this toolkit reads {' and '.join(_READABLE_VERSIONS)})"
        )
    return dict(metadata)


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[MouldNet, ModelConfig, dict[str, str]]:
    """Rebuild a network from a checkpoint written by :func:`save_checkpoint`.

    Returns:
        ``(model, config, metadata)``: the network in eval mode on ``device``, its config, and the
        metadata the caller stored (reserved keys removed).

    Raises:
        InputError: naming the file, for a missing file, a pickle or other non-safetensors file (never
            unpickled), a bad config, or weights that do not fit the config.
    """
    import torch
    from mould.models.hourglass import build_model, count_parameters
    from mould.models.legacy import LEGACY_FORMAT_VERSION, fold_legacy
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    metadata = read_checkpoint_metadata(path)
    try:
        config = ModelConfig.from_json(metadata["model_config"])
    except (ValueError, TypeError) as error:
        raise InputError(f"{path}: invalid model config in the metadata ({error})") from None
    with torch.device("meta"):  # built without memory or random initialisation; the weights are assigned
        model = build_model(config)
    parameters = count_parameters(model)
    if parameters > LIMITS.model_parameters:
        raise InputError(
            f"{path}: refused: its config {config.name!r} asks for {parameters:,} parameters "
            f"({parameters * 4 / 2**30:.3g} GiB), more than {LIMITS.model_parameters:,}"
        )
    try:
        tensors = load_file(path, device=str(device))
    except (SafetensorError, OSError, ValueError) as error:
        raise InputError(f"{path}: unreadable safetensors file ({error})") from None
    if metadata["format_version"] == LEGACY_FORMAT_VERSION:
        try:
            tensors = fold_legacy(config, tensors)
        except (ValueError, RuntimeError) as error:
            raise InputError(f"{path}: the weights do not fit the config {config.name!r} ({error})") from None
        log.info("%s: format-1 checkpoint, its redundant biases folded into today's network", path)
    # Each tensor in its own fresh, contiguous float32 storage (fp16 checkpoints: the network computes in
    # float32), as a newly built network's would be: the kernels, and so the round-off, stay the same.
    tensors = {
        key: (value.float() if value.is_floating_point() else value).clone(memory_format=torch.contiguous_format)
        for key, value in tensors.items()
    }
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(key for key in set(expected) & set(tensors) if expected[key].shape != tensors[key].shape)
    if missing or unexpected or wrong:
        problems = [
            f"{label} {keys[:3]}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        ]
        raise InputError(f"{path}: the weights do not fit the config {config.name!r}: {'; '.join(problems)}")
    model.load_state_dict(tensors, strict=True, assign=True)
    model.to(device).eval()
    return model, config, {key: value for key, value in metadata.items() if key not in _RESERVED}


def convert_checkpoint(
    source: str | os.PathLike, target: str | os.PathLike, *, precision: WeightPrecision = "fp16"
) -> Path:
    """Rewrite the checkpoint ``source`` at ``target`` with its parameters in ``precision`` (see
    :func:`save_checkpoint`), keeping its config and metadata: how a trained checkpoint becomes shipped
    weights.

    Raises:
        InputError: ``source`` is not a readable mould checkpoint. ValueError: see :func:`save_checkpoint`.
    """
    model, config, metadata = load_checkpoint(source)
    return save_checkpoint(target, model, config, metadata, precision=precision)


def average_checkpoints(sources: list[str | os.PathLike], target: str | os.PathLike) -> Path:
    """Write at ``target`` the uniform average of checkpoints of one network (a "model soup", Wortsman et
    al. 2022): each floating-point tensor, BatchNorm running statistics included, averaged in float64 and
    stored as float32; integer tensors (BatchNorm's batch counters) taken from the first source. Meaningful
    for checkpoints fine-tuned from the same weights, which lie in one basin of the loss.

    The metadata records the sources' file names as ``averaged_from`` (JSON); their own metadata (steps,
    training configs) describes none of the average and is dropped.

    Raises:
        InputError: fewer than two sources, one that is not a readable checkpoint, or one holding another
            network than the first (both named).
    """
    import torch

    if len(sources) < 2:
        raise InputError(f"averaging needs two checkpoints or more, got {len(sources)}")
    model, config, _ = load_checkpoint(sources[0])
    total = {key: value.double() for key, value in model.state_dict().items() if value.is_floating_point()}
    for source in sources[1:]:
        other, other_config, _ = load_checkpoint(source)
        if other_config != config:
            raise InputError(
                f"{source}: holds model config {other_config.name!r}, {sources[0]} holds {config.name!r}: "
                "only checkpoints of one network can be averaged"
            )
        for key, value in other.state_dict().items():
            if key in total:
                total[key] += value.double()
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if key in total:
                value.copy_(total[key] / len(sources))
    names = json.dumps([Path(source).name for source in sources])
    return save_checkpoint(target, model, config, {"averaged_from": names})


def load_weights_for(
    path: str | os.PathLike, config: ModelConfig, purpose: str = "", *, widen: bool = False
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The weights of the checkpoint ``path`` for a network of ``config`` (``state_dict``, on the CPU) and its
    metadata: how training starts from, or resumes, given weights.

    A checkpoint of the same network without the back-colour head (a model trained before the head existed,
    such as the first shipped ``small``) is completed with the head as zeros (:func:`add_back_colour`): it
    predicts what it did, and until trained the front's colour (or grey) as the back's. With ``widen``, a
    checkpoint of a config with fewer hourglass features and nothing else different (``small`` for
    ``medium``) is grown into ``config`` computing the same function (:func:`widen_features`).

    Raises:
        InputError: ``path`` is no readable checkpoint, or holds another network (the message ends with
            ``purpose``, e.g. " for --init").
    """
    from mould.models.hourglass import add_back_colour, widen_features

    loaded, loaded_config, metadata = load_checkpoint(path, device="cpu")
    state = loaded.state_dict()
    completed = dataclasses.replace(
        loaded_config, back_colour=True, back_from_front=config.back_from_front, back_branch=config.back_branch
    )
    if not loaded_config.back_colour and completed == config:
        state, loaded_config = add_back_colour(
            state, loaded_config, from_front=config.back_from_front, branch=config.back_branch
        )
        log.info("%s has no back-colour head: added, starting from %s", path,
                 "the front's colour" if config.back_from_front else "a grey back")  # fmt: skip
    narrower = dataclasses.replace(loaded_config, name=config.name, features=config.features) == config
    if widen and narrower and loaded_config.features < config.features:
        state = widen_features(state, loaded_config, config)
        log.info("%s: %r widened from %d to %d features (the same function to start with)", path,
                 loaded_config.name, loaded_config.features, config.features)  # fmt: skip
        loaded_config = config
    if loaded_config != config:
        raise InputError(
            f"{path}: incompatible checkpoint{purpose}: it holds model config {loaded_config.name!r}, "
            f"--config asks for {config.name!r}"
        )
    return state, metadata


def checkpoint_folder(run_dir: str | os.PathLike) -> Path:
    """The checkpoints subfolder of a training run folder."""
    return Path(run_dir) / CHECKPOINT_FOLDER


def run_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The ``.safetensors`` that ``RUN_DIR/checkpoints/latest`` names, or None when the run has none.

    Raises:
        InputError: ``latest`` exists but is malformed or names a missing file.
    """
    pointer = checkpoint_folder(run_dir) / LATEST
    if not pointer.is_file():
        return None
    stem = pointer.read_text(errors="replace").strip()
    if not CHECKPOINT_STEM.match(stem):
        raise InputError(f"{pointer}: expected a checkpoint name like step_000100, got {stem[:40]!r}")
    weights = pointer.parent / f"{stem}.safetensors"
    if not weights.is_file():
        raise InputError(f"{pointer}: names {stem}, but {weights} is missing")
    return weights


WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
"""The folder of shipped weights (package data)."""
SHIPPED_WEIGHTS = "small.safetensors"
"""The file name of the default model in :data:`WEIGHTS_DIR`."""


def shipped_checkpoint() -> Path | None:
    """The default model shipped in the package, or None if absent."""
    path = WEIGHTS_DIR / SHIPPED_WEIGHTS
    return path if path.is_file() else None


def resolve_checkpoint(path: str | os.PathLike | None) -> Path:
    """Which weights a command uses: the one rule of every command that takes ``--checkpoint``.

    Args:
        path: a ``.safetensors`` file (as given), a training run folder (its latest checkpoint), or None
            (the model shipped in the package).

    Raises:
        InputError: nothing usable at ``path``, or None and no model shipped.
    """
    if path is None:
        shipped = shipped_checkpoint()
        if shipped is None:
            raise InputError("--checkpoint: none given and no model is shipped in this installation")
        return shipped
    path = Path(path)
    if path.is_dir():
        latest = run_checkpoint(path)
        if latest is None:
            raise InputError(
                f"{path}: a folder without checkpoints/latest; give a .safetensors file or a run folder"
            )
        return latest
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint")
    return path

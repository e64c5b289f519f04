"""Which runtime runs a network for reconstruction: torch, or its ONNX export under onnxruntime.

A photo through ``mould reconstruct`` spends more time importing torch (0.8-3.4 s, by machine) than
framing, predicting, meshing and texturing it (~0.4 s). onnxruntime imports in ~0.3 s and runs the same
graph on the CPU, so one photo from the command line costs a fraction of what it did.

**The rule** (:func:`choose_runtime`): ``--runtime onnx`` runs onnxruntime on the CPU; ``torch`` runs torch on
``--device``; ``auto`` (the default) runs onnxruntime when it is installed and the network is to run on the
CPU (``--device cpu``, or ``auto`` on a machine without an NVIDIA driver), else torch.

**The ONNX file** is the checkpoint's final stack (:func:`mould.models.onnx.export_onnx`), exported with
torch on first use and cached in ``$XDG_CACHE_HOME/mould/onnx/`` (default ``~/.cache``) under a name that
hashes the checkpoint's bytes, the network's code and the crop size: any change to either is a new
export. Each export is checked against torch on a random batch before it is cached (outputs within
:data:`EXPORT_TOLERANCE`). With a cached export, reconstruction never imports torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from pathlib import Path
from typing import Literal

import numpy as np
from mould.models.configs import ModelConfig
from mould.models.maps import CropMaps, Predictor, back_pixels, probability

from mould.errors import InputError

log = logging.getLogger(__name__)

Runtime = Literal["auto", "torch", "onnx"]
RUNTIMES: tuple[Runtime, ...] = ("auto", "torch", "onnx")

EXPORT_TOLERANCE = 1e-3
"""Largest difference between torch's and onnxruntime's outputs (relative depth units, logits, RGB in
[0, 1]) accepted for an export; float32 round-off in the two runtimes' kernels is ~1e-5."""

_SOURCES = ("hourglass.py", "configs.py", "onnx.py")
"""The modules whose code the exported graph depends on (their text is part of the cache key)."""


class OnnxUnavailable(InputError):
    """onnxruntime cannot serve this checkpoint here (no ``onnx`` package to export it, a cache that cannot
    be written, an export that disagrees with torch, a corrupt cached file): ``auto`` falls back to torch."""


def onnxruntime_installed() -> bool:
    """Whether onnxruntime can be imported (checked without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def nvidia_driver_present() -> bool:
    """Whether this machine has an NVIDIA driver loaded (Linux: ``/proc/driver/nvidia``), without torch."""
    return Path("/proc/driver/nvidia").exists()


def choose_runtime(runtime: Runtime, device: str) -> Literal["torch", "onnx"]:
    """The runtime that serves ``--runtime runtime --device device`` (the rule in the module doc).

    Raises:
        InputError: ``onnx`` with ``--device cuda``, or ``onnx`` when onnxruntime is not installed.
    """
    if runtime == "torch":
        return "torch"
    if runtime == "onnx":
        if device == "cuda":
            raise InputError("--runtime onnx runs on the CPU: use --device cpu or auto, or --runtime torch")
        if not onnxruntime_installed():
            raise InputError("--runtime onnx needs onnxruntime: pip install 'mould[onnx]'")
        return "onnx"
    on_cpu = device == "cpu" or (device == "auto" and not nvidia_driver_present())
    return "onnx" if on_cpu and onnxruntime_installed() else "torch"


def cache_folder() -> Path:
    """Where exports are cached: ``$XDG_CACHE_HOME/mould/onnx`` (default ``~/.cache/mould/onnx``)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "mould" / "onnx"


def export_key(checkpoint: Path, resolution: int) -> str:
    """A name for the export of ``checkpoint`` at ``resolution``: the hash of the checkpoint's bytes, of the
    network's code (:data:`_SOURCES`) and of the resolution."""
    digest = hashlib.sha256()
    digest.update(checkpoint.read_bytes())
    here = Path(__file__).parent
    for name in _SOURCES:
        digest.update((here / name).read_bytes())
    digest.update(str(resolution).encode())
    return digest.hexdigest()[:32]


class OnnxPredictor:
    """A network's ONNX export run by onnxruntime on the CPU, as a :class:`~mould.models.maps.Predictor`.

    Args:
        path: the ``.onnx`` file (written by :func:`mould.models.onnx.export_onnx`).
        threads: intra-op threads (default: onnxruntime's, one per physical core).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own exception types for unreadable models
            raise InputError(f"{path}: not a readable ONNX model ({str(error).splitlines()[0]})") from None
        metadata = self.session.get_modelmeta().custom_metadata_map
        if "model_config" not in metadata:
            raise InputError(f"{path}: an ONNX model without a mould model config in its metadata")
        self.config = ModelConfig.from_json(metadata["model_config"])
        self.outputs = [output.name for output in self.session.get_outputs()]
        self.resolution = self.session.get_inputs()[0].shape[-1]

    def predict_crops(self, crops: np.ndarray) -> CropMaps:
        """The maps of (B, N, N, 3) uint8 crops (:meth:`mould.models.maps.Predictor.predict_crops`).

        Raises:
            ValueError: crops of another size than the export's.
        """
        crops = np.asarray(crops)
        side = self.resolution
        if crops.ndim != 4 or crops.shape[1:] != (side, side, 3) or crops.dtype != np.uint8:
            raise ValueError(f"crops: expected uint8 (B, {side}, {side}, 3), got {crops.dtype} {crops.shape}")
        image = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), np.float32) / np.float32(255)
        maps = dict(zip(self.outputs, self.session.run(None, {"image": image})))
        back = back_pixels(maps["back"]) if "back" in maps else None
        return CropMaps(maps["visible"][:, 0], maps["hidden"][:, 0], probability(maps["mask_logits"][:, 0]), back)


def cached_export(checkpoint: Path, resolution: int = 256) -> Path:
    """The ONNX export of ``checkpoint`` at ``resolution``, from the cache, or exported (with torch), checked
    against torch and cached first.

    Raises:
        InputError: the checkpoint cannot be read. OnnxUnavailable: the ``onnx`` package is missing (export
            needs it), the cache cannot be written, or the export disagrees with torch.
    """
    target = cache_folder() / f"{export_key(checkpoint, resolution)}.onnx"
    if target.is_file():
        return target
    from mould.models.checkpoint import load_checkpoint
    from mould.models.inference import TorchPredictor
    from mould.models.onnx import export_onnx

    from mould.errors import MouldError

    model, _, _ = load_checkpoint(checkpoint, device="cpu")
    staged = target.with_suffix(f".{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(model, staged, resolution=resolution)
    except MouldError as error:
        raise OnnxUnavailable(str(error)) from None
    except OSError as error:
        raise OnnxUnavailable(
            f"{target.parent}: cannot write the ONNX cache ({error.strerror or error})"
        ) from None
    crops = np.random.default_rng(0).integers(0, 256, (2, resolution, resolution, 3), dtype=np.uint8)
    expected, got = TorchPredictor(model).predict_crops(crops), OnnxPredictor(staged).predict_crops(crops)
    worst = max(
        float(np.abs(a - b).max())
        for a, b in (
            (got.visible, expected.visible),
            (got.hidden, expected.hidden),
            (got.mask_prob, expected.mask_prob),
        )
    )
    # The back colour in 8 bits: a value on a rounding boundary may land one level apart.
    back_levels = 0 if expected.back is None else int(np.abs(got.back.astype(int) - expected.back).max())
    if worst > EXPORT_TOLERANCE or back_levels > 1:
        staged.unlink(missing_ok=True)
        raise OnnxUnavailable(
            f"{checkpoint}: its ONNX export differs from torch by {worst:.2g} (> {EXPORT_TOLERANCE}) "
            f"or {back_levels} colour levels"
        )
    os.replace(staged, target)
    log.info(
        "%s: exported to ONNX for onnxruntime (%s), largest difference from torch %.1g", checkpoint, target, worst
    )
    return target


def load_predictor(
    checkpoint: str | os.PathLike | None, device: str = "auto", runtime: Runtime = "auto", resolution: int = 256
) -> tuple[Predictor, Path, str]:
    """The network that reconstruction runs: ``(predictor, checkpoint file, "torch" or "onnx")``.

    Args:
        checkpoint: a ``.safetensors`` file or a training run folder; None: the shipped model.
        device, runtime: ``--device`` and ``--runtime`` (:func:`choose_runtime`).
        resolution: the crop side (the ONNX graph's input is fixed at export).

    Raises:
        InputError: no usable checkpoint, or a runtime that cannot serve (see :func:`choose_runtime`). Under
            ``auto``, an export that cannot be made, checked or cached (no ``onnx`` package, a read-only
            cache, a corrupt cached file) falls back to torch, with a warning that says why.
    """
    from mould.models.checkpoint import resolve_checkpoint

    path = resolve_checkpoint(checkpoint)
    chosen = choose_runtime(runtime, device)
    if chosen == "onnx":
        try:
            export = cached_export(path, resolution)
            try:
                return OnnxPredictor(export), path, "onnx"
            except InputError as error:
                raise OnnxUnavailable(f"{error}: a corrupt cached export; delete it to export again") from None
        except OnnxUnavailable as error:
            if runtime == "onnx":
                raise
            log.warning("%s; running the network with torch instead", error)
    from mould.models.checkpoint import load_checkpoint
    from mould.models.inference import TorchPredictor, resolve_device

    where = resolve_device(device)
    model, _, _ = load_checkpoint(path, device=where)
    return TorchPredictor(model.eval(), where), path, "torch"

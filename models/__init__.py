"""Neural networks: the stacked hourglass, the discriminator, the losses, checkpoints, shipped weights.

Public API, each name loaded from its module on first use (PEP 562), so that importing a torch-free module
of this package (``configs``, ``maps``, ``runtime``) does not import torch::

    CONFIGS, ModelConfig, LossConfig, build_model, MouldNet       configs and the network
    build_discriminator                                           PatchGAN discriminator
    generator_losses, discriminator_losses                        losses (mould.models.losses)
    reference_depth, depth_to_relative, relative_to_depth         depth parametrisation (mould.models.depth)
    save_checkpoint, load_checkpoint                              safetensors checkpoints
    resolve_checkpoint                                            which weights a command uses
    predict, predict_moulds                                       inference with torch (mould.models.inference)
    load_predictor                                                crops -> maps, with torch or onnxruntime
    export_onnx                                                   in mould.models.onnx
    shipped_checkpoint                                            the packaged small model, if any
"""

from __future__ import annotations

import importlib

_HOMES = {
    "CONFIGS": "configs",
    "LossConfig": "configs",
    "ModelConfig": "configs",
    "MouldNet": "hourglass",
    "WEIGHTS_DIR": "checkpoint",
    "build_discriminator": "discriminator",
    "build_model": "hourglass",
    "count_flops": "hourglass",
    "count_parameters": "hourglass",
    "depth_to_relative": "depth",
    "discriminator_losses": "losses",
    "generator_losses": "losses",
    "load_checkpoint": "checkpoint",
    "load_predictor": "runtime",
    "predict": "inference",
    "predict_moulds": "inference",
    "reference_depth": "depth",
    "relative_to_depth": "depth",
    "resolve_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "shipped_checkpoint": "checkpoint",
}
"""Public name -> the module of this package that defines it."""

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))

"""Neural networks: the stacked hourglass, the discriminator, the losses, checkpoints, shipped weights.

Public API (torch is imported with this package; keep it out of the CLI's ``--help`` path)::

    CONFIGS, ModelConfig, LossConfig, build_model, MouldNet       configs and the network
    build_discriminator                                           PatchGAN discriminator
    generator_losses, discriminator_losses                        losses (mould.models.losses)
    reference_depth, depth_to_relative, relative_to_depth         depth parametrisation (mould.models.depth)
    save_checkpoint, load_checkpoint                              safetensors checkpoints
    resolve_checkpoint                                            which weights a command uses
    predict, predict_moulds                                       inference (mould.models.inference)
    export_onnx                                                   in mould.models.onnx
    shipped_checkpoint                                            the packaged small model, if any
"""

from __future__ import annotations

from mould.models.checkpoint import (
    WEIGHTS_DIR,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
    shipped_checkpoint,
)
from mould.models.configs import CONFIGS, LossConfig, ModelConfig
from mould.models.depth import depth_to_relative, reference_depth, relative_to_depth
from mould.models.discriminator import build_discriminator
from mould.models.hourglass import MouldNet, build_model, count_flops, count_parameters
from mould.models.inference import predict, predict_moulds
from mould.models.losses import discriminator_losses, generator_losses

__all__ = [
    "CONFIGS",
    "LossConfig",
    "ModelConfig",
    "MouldNet",
    "WEIGHTS_DIR",
    "build_discriminator",
    "build_model",
    "count_flops",
    "count_parameters",
    "depth_to_relative",
    "discriminator_losses",
    "generator_losses",
    "load_checkpoint",
    "predict",
    "predict_moulds",
    "reference_depth",
    "relative_to_depth",
    "resolve_checkpoint",
    "save_checkpoint",
    "shipped_checkpoint",
]

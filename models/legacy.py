"""Checkpoints of format 1, from before the network lost its redundant biases, folded into today's network.

Format-1 networks carried a bias on every convolution and a BatchNorm after the full-resolution stem
convolution. Each of those biases only ever reached the losses through a BatchNorm, which cancels a
per-channel constant in training mode (so they never learnt: their gradient is exactly zero), while in
evaluation mode they shift that BatchNorm's input by a per-channel constant. The stem's BatchNorm, being
followed by another one, is a per-channel scale and shift. So a format-1 network equals today's network
with:

- the stem's BatchNorm scale multiplied into the stem convolution's weights;
- every BatchNorm's running mean moved by the constant the old biases (and the stem's shift) added to its
  input.

Those constants are measured, not derived by hand: both networks run once on random crops, each BatchNorm
of the new one corrects its running mean just before it runs (forward order is topological), and the
correction is checked to be constant over pixels and crops, as it must be.
"""

from __future__ import annotations

import logging

import torch
from mould.models.configs import ModelConfig
from mould.models.hourglass import MouldNet, build_model
from torch import nn

log = logging.getLogger(__name__)

LEGACY_FORMAT_VERSION = "1"
"""The checkpoint format this module reads."""

_CONSTANT_TOLERANCE = 1e-6
"""Largest spread (relative units of the BatchNorm's input, float64) of an offset that should be a
per-channel constant: round-off is ~1e-12, a wrong fold is O(1)."""


def legacy_network(config: ModelConfig, tensors: dict[str, torch.Tensor] | None = None) -> MouldNet:
    """The format-1 network of ``config`` in eval mode: today's network with the old biases and the stem's
    BatchNorm put back, holding ``tensors`` (or freshly initialised, biases zero, when None).

    Raises:
        ValueError: the tensors do not fit a format-1 network of ``config``.
    """
    model = build_model(config)
    model.stem_full = nn.Sequential(model.stem_full, nn.BatchNorm2d(config.full_features))
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and module.bias is None:
            module.bias = nn.Parameter(torch.zeros(module.out_channels))
    if tensors is not None:
        try:
            model.load_state_dict(tensors, strict=True)
        except RuntimeError as error:
            raise ValueError(str(error).splitlines()[0]) from None
    return model.eval()


def fold_legacy(config: ModelConfig, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Today's state dict equivalent to a format-1 one (equal outputs in eval mode, up to float32 round-off).

    Args:
        config: the network's config.
        tensors: the format-1 state dict.

    Returns:
        The state dict of :func:`~mould.models.hourglass.build_model` ``(config)``, float32, on the CPU.

    Raises:
        ValueError: the tensors do not fit, or an offset is not a per-channel constant (never for a real
            format-1 checkpoint).
    """
    tensors = {name: value.detach().cpu() for name, value in tensors.items()}
    legacy = legacy_network(config, tensors).double()
    model = build_model(config).double().eval()
    state = {name: value for name, value in legacy.state_dict().items() if name in model.state_dict()}
    stem_conv, stem_norm = legacy.stem_full[0], legacy.stem_full[1]
    scale = stem_norm.weight / torch.sqrt(stem_norm.running_var + stem_norm.eps)
    state["stem_full.weight"] = stem_conv.weight * scale[:, None, None, None]
    model.load_state_dict(state, strict=True)

    seen: dict[str, torch.Tensor] = {}
    norms = {name: module for name, module in model.named_modules() if isinstance(module, nn.BatchNorm2d)}

    def record(name: str):
        def hook(_module, inputs):
            seen[name] = inputs[0].detach()

        return hook

    def correct(name: str):
        def hook(module, inputs):
            offset = seen[name] - inputs[0]
            mean = offset.mean(dim=(0, 2, 3))
            spread = (offset - mean[None, :, None, None]).abs().max()
            if spread > _CONSTANT_TOLERANCE:
                raise ValueError(
                    f"{name}: the folded offset varies by {float(spread):.3g}; not a format-1 network"
                )
            module.running_mean -= mean

        return hook

    handles = [legacy.get_submodule(name).register_forward_pre_hook(record(name)) for name in norms]
    handles += [module.register_forward_pre_hook(correct(name)) for name, module in norms.items()]
    side = config.input_multiple
    crops = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    try:
        with torch.no_grad():
            legacy(crops)
            model(crops)
    finally:
        for handle in handles:
            handle.remove()
    return {name: value.float() for name, value in model.state_dict().items()}

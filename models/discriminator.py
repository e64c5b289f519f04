"""The PatchGAN discriminator that judges whether a mould looks like a real person's.

It sees, stacked as channels (12 in all), inside the **true** silhouette (both real and predicted moulds
are masked by the ground-truth mask, so it judges the shape of the depth maps, not the silhouette):

- the visible and hidden relative depths (2),
- their normals from depth gradients (6), computed with the batch's cameras by the same operator for
  real and predicted moulds (never the dataset's normals: a different operator would give fakes away),
- the true mask (1) and the RGB crop as a condition (3).

It outputs a map of logits, one per overlapping patch (70x70 pixels with 3 stride-2 layers, pix2pix).
Spectral normalisation keeps it Lipschitz and stable without batch statistics, which would mix the
real and fake batches.
"""

from __future__ import annotations

import torch
from mould.models.configs import ModelConfig, model_config
from mould.models.depth import (
    depth_normals,
    depth_to_relative,
    extend_outside,
    reference_depth,
    relative_to_depth,
)
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

INPUT_CHANNELS = 12
"""visible, hidden, 3 + 3 normals, mask, RGB."""


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017): stride-2 4x4 convolutions doubling the width, then two stride-1 ones.

    ``forward(x)``: ``(B, 12, N, N)`` (see :func:`discriminator_input`) -> ``(B, 1, n, n)`` patch logits.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        width = config.discriminator_features
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(INPUT_CHANNELS, width, 4, 2, 1)), nn.LeakyReLU(0.2)]
        for _ in range(config.discriminator_layers - 1):
            layers += [spectral_norm(nn.Conv2d(width, 2 * width, 4, 2, 1)), nn.LeakyReLU(0.2)]
            width *= 2
        layers += [
            spectral_norm(nn.Conv2d(width, 2 * width, 4, 1, 1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(2 * width, 1, 4, 1, 1)),
        ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != INPUT_CHANNELS:
            raise ValueError(f"x: expected (B, {INPUT_CHANNELS}, N, N), got {tuple(x.shape)}")
        return self.layers(x)


def build_discriminator(config: str | ModelConfig) -> PatchDiscriminator:
    """A freshly initialised discriminator sized by ``config`` (a config or a name of one)."""
    return PatchDiscriminator(model_config(config))


def discriminator_input(
    visible: torch.Tensor,
    hidden: torch.Tensor,
    batch: dict[str, torch.Tensor],
    scale: float,
    reference: torch.Tensor | None = None,
) -> torch.Tensor:
    """Stack a mould (real or predicted) with its normals, the true mask and the image.

    Args:
        visible, hidden: (B, 1, N, N) relative depths (see :mod:`mould.models.depth`); values outside the
            true mask are ignored.
        batch: a collated batch of training records (``mask``, ``visible``, ``image``, ``intrinsics``,
            ``perspective``; see :mod:`mould.datasets.records`).
        scale: metres per relative unit.
        reference: (B,) metres; defaults to the batch's :func:`reference_depth`.

    Returns:
        (B, 12, N, N) float.
    """
    mask = batch["mask"].to(visible.dtype)
    if reference is None:
        reference = reference_depth(batch["visible"], batch["mask"])
    channels = [visible * mask, hidden * mask]
    for relative, facing in ((visible, "towards"), (hidden, "away")):
        metric = relative_to_depth(relative, reference, scale)
        normals = depth_normals(metric, batch["intrinsics"], batch["perspective"], facing=facing)
        channels.append(normals * mask)
    channels += [mask, batch["image"].to(visible.dtype)]
    return torch.cat(channels, dim=1)


def real_discriminator_input(batch: dict[str, torch.Tensor], scale: float) -> torch.Tensor:
    """:func:`discriminator_input` of the ground truth (continued smoothly beyond the silhouette, as a
    network's prediction is, so that border normals do not tell real from fake)."""
    mask = batch["mask"]
    reference = reference_depth(batch["visible"], mask)
    visible = depth_to_relative(extend_outside(batch["visible"], mask), reference, scale)
    hidden = depth_to_relative(extend_outside(batch["hidden"], mask), reference, scale)
    return discriminator_input(visible, hidden, batch, scale, reference)


def fake_discriminator_input(
    prediction: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], scale: float
) -> torch.Tensor:
    """:func:`discriminator_input` of one stack's prediction dict (``"visible"``, ``"hidden"``)."""
    return discriminator_input(prediction["visible"], prediction["hidden"], batch, scale)

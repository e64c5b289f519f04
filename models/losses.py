"""Training losses: pure functions of predictions and a collated batch of records.

Units and regions (the choices, once):

- **Depth L1** is measured in relative units (metres / ``depth_scale``; 1 unit = 0.5 m by default), the
  unit the network predicts in, inside the **union** of the true silhouette and the predicted one
  (``sigmoid(mask_logits) > 0.5``, no gradient through that choice). Outside the true silhouette there is
  no true depth: the target there is the true depth continued smoothly (pull-push,
  :func:`~mould.models.depth.extend_outside`), so a pixel wrongly taken for the person is pulled onto the
  nearby surface, where it does least harm to a reconstructed mesh.
- **Silhouette**: binary cross-entropy of the logits against the true mask, over all pixels.
- **Normals**: 1 - cos between the normals of the predicted and the true depth, both from
  :func:`~mould.models.depth.depth_normals` with the batch's cameras (perspective-correct back-projection),
  on true-silhouette pixels whose 4-neighbours are in the silhouette and on the same surface (no depth
  step above ``LossConfig.normal_jump``). Predicted depth is made metric with the true reference.
  Last stack only by default (``LossConfig.normal_stacks``): they are the costliest term.
- **Adversarial**: LSGAN or hinge on the discriminator's patch logits, last stack only; its weight is
  fixed, or adapts so that its gradient at the depth maps is a set share of the depth terms'
  (``LossConfig.adversarial_share``). Either way the share is measured and returned.
- **Hidden**: what the hidden L1 compares is ``LossConfig.hidden_term`` (the hidden maps, the thickness,
  or the hidden map with the visible part detached).
- **Coarse**: the depth maps average-pooled inside the same region to a few small sides
  (``LossConfig.coarse_scales``), the person's overall relief and orientation.
- **Back colour**: L1 of the predicted RGB of the hidden surface inside the true silhouette, on samples
  that hold back colours (``has_back``).
- Depth terms (visible, hidden, coarse, normals) skip crops where the person spans less than
  ``LossConfig.depth_min_extent`` of the side (zoomed-out framing crops).

:func:`generator_losses` returns every term by name (each summed over the stacks, the non-final ones
weighted by ``LossConfig.intermediate``) and ``"total"``, the weighted sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from mould.models.configs import LossConfig
from mould.models.depth import depth_normals, depth_to_relative, extend_outside, reference_depth, relative_to_depth
from mould.models.discriminator import fake_discriminator_input, real_discriminator_input
from torch import nn


# -- pure terms -------------------------------------------------------------------------------------------
def masked_l1(prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference over the pixels where ``weight`` > 0 (weighted mean; 0 if none).

    Args:
        prediction, target: (B, C, H, W) float.
        weight: (B, 1, H, W) float or bool, broadcast over C.

    Returns:
        () float, in the units of the inputs.
    """
    weight = weight.to(prediction.dtype).expand_as(prediction)
    return ((prediction - target).abs() * weight).sum() / weight.sum().clamp(min=1)


def silhouette_bce(mask_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of silhouette logits against the true mask, mean over pixels.

    Args:
        mask_logits: (B, 1, H, W) float logits.
        mask: (B, 1, H, W) float in {0, 1} (or bool).
    """
    return F.binary_cross_entropy_with_logits(mask_logits, mask.to(mask_logits.dtype))


def normal_cosine_loss(predicted: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos(angle) between unit normals over the ``valid`` pixels (0 if none).

    Args:
        predicted, target: (B, 3, H, W) unit normals.
        valid: (B, 1, H, W) bool or float.
    """
    weight = valid.to(predicted.dtype)
    cosine = (predicted * target).sum(dim=1, keepdim=True)
    return ((1 - cosine) * weight).sum() / weight.sum().clamp(min=1)


def normal_loss(
    depth: torch.Tensor,
    target_depth: torch.Tensor,
    valid: torch.Tensor,
    intrinsics: torch.Tensor,
    perspective: torch.Tensor,
    *,
    facing: str,
) -> torch.Tensor:
    """:func:`normal_cosine_loss` between the gradient normals of two metric depth maps.

    Args:
        depth, target_depth: (B, 1, H, W) float, camera-space z, metres.
        valid: (B, 1, H, W) pixels to compare (see :func:`normal_valid`).
        intrinsics, perspective: the batch's cameras, see :func:`~mould.models.depth.depth_to_points`.
        facing: ``"towards"`` (visible map) or ``"away"`` (hidden map).
    """
    predicted = depth_normals(depth, intrinsics, perspective, facing=facing)
    with torch.no_grad():
        target = depth_normals(target_depth, intrinsics, perspective, facing=facing)
    return normal_cosine_loss(predicted, target, valid)


def normal_valid(depth: torch.Tensor, mask: torch.Tensor, jump: float) -> torch.Tensor:
    """Pixels whose gradient normals mean something: in the mask with their 4-neighbours, and no depth
    step larger than ``jump`` metres to any of them.

    Args:
        depth: (B, 1, H, W) float, metres. mask: (B, 1, H, W) bool or float. jump: metres.

    Returns:
        (B, 1, H, W) bool.
    """
    inside = mask > 0.5
    ok = inside.clone()
    # The crop's edge counts as outside: its pixels lack a neighbour. Slices, not F.pad (slow on CPU).
    ok[..., 0, :] = ok[..., -1, :] = ok[..., :, 0] = ok[..., :, -1] = False
    for dim in (-1, -2):
        # A pair of neighbours is usable when both are inside and on the same surface.
        both_inside = inside.narrow(dim, 1, inside.shape[dim] - 1) & inside.narrow(dim, 0, inside.shape[dim] - 1)
        pair = both_inside & (depth.diff(dim=dim).abs() < jump)
        fill = torch.zeros_like(pair.narrow(dim, 0, 1))
        ok &= torch.cat([pair, fill], dim=dim) & torch.cat([fill, pair], dim=dim)
    return ok


def coarse_l1(prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, side: int) -> torch.Tensor:
    """L1 of two maps average-pooled to ``side`` x ``side`` over the pixels where ``weight`` > 0.

    Each cell compares the mean of its weighted pixels; cells count by the weight they hold, so a cell half
    covered by the person counts half.

    Args:
        prediction, target: (B, C, H, W) float. weight: (B, 1, H, W) float or bool. side: pooled side.

    Returns:
        () float, in the units of the inputs (0 when no pixel has weight).
    """
    weight = weight.to(prediction.dtype)
    cover = F.adaptive_avg_pool2d(weight, side)
    inside = cover.clamp(min=1e-6)
    pooled = F.adaptive_avg_pool2d(prediction * weight, side) / inside
    pooled_target = F.adaptive_avg_pool2d(target * weight, side) / inside
    cover = cover.expand_as(pooled)
    return ((pooled - pooled_target).abs() * cover).sum() / cover.sum().clamp(min=1e-6)


def person_extent(mask: torch.Tensor) -> torch.Tensor:
    """(B,) the person's longer extent as a fraction of the crop's side (0 for an empty mask).

    Args:
        mask: (B, 1, H, W) bool or float (> 0.5 is the person).
    """
    inside = mask[:, 0] > 0.5
    extents = []
    for dim in (-1, -2):  # columns, then rows, holding any person pixel
        index = torch.arange(inside.shape[dim], device=mask.device)
        present = inside.any(dim=-2 if dim == -1 else -1)
        first = torch.where(present, index, inside.shape[dim]).amin(dim=-1)
        last = torch.where(present, index, -1).amax(dim=-1)
        extents.append(((last - first + 1).clamp(min=0)).float() / inside.shape[dim])
    return torch.maximum(*extents)


def adversarial_generator_loss(fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """The generator's adversarial term on the discriminator's logits of its predictions.

    ``"lsgan"``: mean (D(fake) - 1)^2; ``"hinge"``: mean -D(fake).
    """
    if kind == "lsgan":
        return ((fake_logits - 1) ** 2).mean()
    if kind == "hinge":
        return -fake_logits.mean()
    raise ValueError(f"kind: expected 'lsgan' or 'hinge', got {kind!r}")


def adversarial_discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The discriminator's terms on real and fake logits, returned as ``(real, fake)``.

    ``"lsgan"``: 0.5 mean (D(real) - 1)^2 and 0.5 mean D(fake)^2; ``"hinge"``: mean relu(1 - D(real)) and
    mean relu(1 + D(fake)).
    """
    if kind == "lsgan":
        return 0.5 * ((real_logits - 1) ** 2).mean(), 0.5 * (fake_logits**2).mean()
    if kind == "hinge":
        return F.relu(1 - real_logits).mean(), F.relu(1 + fake_logits).mean()
    raise ValueError(f"kind: expected 'lsgan' or 'hinge', got {kind!r}")


# -- targets ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Targets:
    """What the losses compare predictions with, derived once per batch.

    Attributes:
        reference: (B,) metres, median true visible depth (see :func:`reference_depth`).
        visible, hidden: (B, 1, H, W) true relative depth, continued smoothly outside the silhouette.
        visible_metric, hidden_metric: the same in metres.
        mask: (B, 1, H, W) float true silhouette.
        visible_valid, hidden_valid: (B, 1, H, W) bool pixels for the normal loss.
        depth_weight: (B, 1, 1, 1) float, 1 for crops whose depth terms count, else 0
            (``LossConfig.depth_min_extent``).
    """

    reference: torch.Tensor
    visible: torch.Tensor
    hidden: torch.Tensor
    visible_metric: torch.Tensor
    hidden_metric: torch.Tensor
    mask: torch.Tensor
    visible_valid: torch.Tensor
    hidden_valid: torch.Tensor
    depth_weight: torch.Tensor


def loss_targets(batch: dict[str, torch.Tensor], config: LossConfig) -> Targets:
    """The :class:`Targets` of a collated batch of records (no gradient)."""
    with torch.no_grad():
        mask = batch["mask"].float()
        reference = reference_depth(batch["visible"], mask)
        visible_metric = extend_outside(batch["visible"], mask)
        hidden_metric = extend_outside(batch["hidden"], mask)
        depth_weight = (person_extent(mask) >= config.depth_min_extent).to(mask.dtype).reshape(-1, 1, 1, 1)
        return Targets(
            reference=reference,
            visible=depth_to_relative(visible_metric, reference, config.depth_scale),
            hidden=depth_to_relative(hidden_metric, reference, config.depth_scale),
            visible_metric=visible_metric,
            hidden_metric=hidden_metric,
            mask=mask,
            visible_valid=normal_valid(batch["visible"], mask, config.normal_jump) & (depth_weight > 0),
            hidden_valid=normal_valid(batch["hidden"], mask, config.normal_jump) & (depth_weight > 0),
            depth_weight=depth_weight,
        )


# -- combined ---------------------------------------------------------------------------------------------
def stack_losses(
    prediction: dict[str, torch.Tensor],
    batch: dict[str, torch.Tensor],
    targets: Targets,
    config: LossConfig,
    *,
    normals: bool = True,
) -> dict[str, torch.Tensor]:
    """The unweighted terms of one stack's prediction: ``visible``, ``hidden`` (relative units), ``mask``,
    ``coarse`` (when its weight > 0), ``back`` (when predicted), and when ``normals`` (and their weight
    > 0) ``visible_normals``, ``hidden_normals``."""
    union = (targets.mask > 0.5) | (prediction["mask_logits"].detach() > 0)  # sigmoid > 0.5 <=> logit > 0
    region = union.to(targets.mask.dtype) * targets.depth_weight
    hidden, hidden_target = _hidden_pair(prediction, targets, config.hidden_term)
    terms = {
        "visible": masked_l1(prediction["visible"], targets.visible, region),
        "hidden": masked_l1(hidden, hidden_target, region),
        "mask": silhouette_bce(prediction["mask_logits"], targets.mask),
    }
    if config.coarse > 0:
        pairs = ((prediction["visible"], targets.visible), (hidden, hidden_target))
        terms["coarse"] = sum(
            coarse_l1(value, target, region, side) for side in config.coarse_scales for value, target in pairs
        ) / len(config.coarse_scales)
    if "back" in prediction and "back" in batch:
        known = (targets.mask > 0.5) & batch["has_back"].reshape(-1, 1, 1, 1)
        terms["back"] = masked_l1(prediction["back"], batch["back"].to(prediction["back"].dtype), known)
    if normals and config.normals > 0:
        cameras = (batch["intrinsics"], batch["perspective"])
        for name, facing in (("visible", "towards"), ("hidden", "away")):
            metric = relative_to_depth(prediction[name], targets.reference, config.depth_scale)
            target = getattr(targets, f"{name}_metric")
            valid = getattr(targets, f"{name}_valid")
            terms[f"{name}_normals"] = normal_loss(metric, target, valid, *cameras, facing=facing)
    return terms


def _hidden_pair(
    prediction: dict[str, torch.Tensor], targets: Targets, term: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """What the hidden terms compare (:attr:`LossConfig.hidden_term`): (prediction, target), relative units."""
    if term == "hidden":
        return prediction["hidden"], targets.hidden
    thickness = prediction["hidden"] - prediction["visible"]
    if term == "thickness":
        return thickness, targets.hidden - targets.visible
    return prediction["visible"].detach() + thickness, targets.hidden  # "detached"


_WEIGHTS = {
    "visible": "visible",
    "hidden": "hidden",
    "mask": "mask",
    "coarse": "coarse",
    "back": "back",
    "visible_normals": "normals",
    "hidden_normals": "normals",
    "adversarial": "adversarial",
}


DEPTH_TERMS = ("visible", "hidden", "coarse", "visible_normals", "hidden_normals")
"""The terms that shape the depth maps: what the adversarial term's share is measured against."""


def generator_losses(
    predictions: list[dict[str, torch.Tensor]],
    batch: dict[str, torch.Tensor],
    config: LossConfig,
    discriminator: nn.Module | None = None,
) -> dict[str, torch.Tensor]:
    """All the network's loss terms, by name, and their weighted ``"total"``.

    Args:
        predictions: :class:`~mould.models.hourglass.MouldNet` output, one dict per stack.
        batch: a collated batch of training records (:mod:`mould.datasets.records`).
        config: the weights; ``config.depth_scale`` must be the model's.
        discriminator: when given and ``config.adversarial`` > 0, adds ``"adversarial"`` (last stack).

    Returns:
        The terms of :func:`stack_losses`, each a () tensor summed over the stacks it applies to
        (unweighted, for logging); with a discriminator ``"adversarial"``, ``"adversarial_weight"`` (the
        weight used) and ``"adversarial_share"`` (the norm of its weighted gradient at the last stack's
        depth maps over the weighted depth terms'); ``"total"``: the weighted sum to minimise.
    """
    if not predictions:
        raise ValueError("predictions: expected at least one stack")
    targets = loss_targets(batch, config)
    terms: dict[str, torch.Tensor] = {}
    total = predictions[0]["visible"].new_zeros(())
    final_depth = total
    for index, prediction in enumerate(predictions):
        last = index == len(predictions) - 1
        stack_weight = 1.0 if last else config.intermediate
        with_normals = last or config.normal_stacks == "all"
        for name, value in stack_losses(prediction, batch, targets, config, normals=with_normals).items():
            terms[name] = terms[name] + value if name in terms else value
            weighted = stack_weight * getattr(config, _WEIGHTS[name]) * value
            total = total + weighted
            if last and name in DEPTH_TERMS:
                final_depth = final_depth + weighted
    if discriminator is not None and config.adversarial > 0:
        final = predictions[-1]
        logits = discriminator(fake_discriminator_input(final, batch, config.depth_scale))
        terms["adversarial"] = adversarial_generator_loss(logits, config.adversarial_kind)
        weight, share = _adversarial_weight(terms["adversarial"], final_depth, final, config)
        terms["adversarial_weight"], terms["adversarial_share"] = weight, share
        total = total + weight * terms["adversarial"]
    terms["total"] = total
    return terms


def _adversarial_weight(
    adversarial: torch.Tensor, depth: torch.Tensor, final: dict[str, torch.Tensor], config: LossConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, share): the adversarial weight to use (fixed, or adapted to ``config.adversarial_share``)
    and the share of the depth terms' gradient its weighted gradient then has, both detached ().

    Gradients are taken at the last stack's depth maps, where both terms meet the network (as VQGAN takes
    them at the decoder's last layer): cheap, since nothing flows back into the network.
    """
    maps = [final["visible"], final["hidden"]]
    if not depth.requires_grad or not adversarial.requires_grad:  # evaluation, or nothing to balance
        return torch.tensor(config.adversarial), torch.tensor(float("nan"))
    depth_grads = torch.autograd.grad(depth, maps, retain_graph=True, allow_unused=True)
    adversarial_grads = torch.autograd.grad(adversarial, maps, retain_graph=True, allow_unused=True)

    def norm(grads) -> torch.Tensor:
        return torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None) + 1e-24)

    depth_norm, adversarial_norm = norm(depth_grads), norm(adversarial_grads)
    weight = torch.tensor(config.adversarial, device=depth.device)
    if config.adversarial_share > 0:
        # Clamped: early on, an untrained discriminator's gradient can be ~0.
        weight = (config.adversarial_share * depth_norm / adversarial_norm).clamp(max=1e3).detach()
    return weight.detach(), (weight * adversarial_norm / depth_norm).detach()


def discriminator_losses(
    discriminator: nn.Module,
    predictions: list[dict[str, torch.Tensor]],
    batch: dict[str, torch.Tensor],
    config: LossConfig,
) -> dict[str, torch.Tensor]:
    """The discriminator's loss on the true moulds against the last stack's (detached) predictions.

    Returns:
        ``"real"``, ``"fake"`` and their sum ``"total"``, each a () tensor.
    """
    final = {key: value.detach() for key, value in predictions[-1].items()}
    real_logits = discriminator(real_discriminator_input(batch, config.depth_scale))
    fake_logits = discriminator(fake_discriminator_input(final, batch, config.depth_scale))
    real, fake = adversarial_discriminator_loss(real_logits, fake_logits, config.adversarial_kind)
    return {"real": real, "fake": fake, "total": real + fake}

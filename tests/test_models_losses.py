"""The losses: zero for a perfect prediction, positive otherwise, gradients checked in float64 (the depth
parametrisation and normals they build on: ``test_models_depth.py``)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from conftest import sphere_maps
from mould.models import LossConfig, build_discriminator
from mould.models.depth import (
    extend_outside,
    relative_to_depth,
)
from mould.models.discriminator import INPUT_CHANNELS, fake_discriminator_input, real_discriminator_input
from mould.models.losses import (
    adversarial_discriminator_loss,
    adversarial_generator_loss,
    coarse_l1,
    discriminator_losses,
    generator_losses,
    loss_targets,
    masked_l1,
    normal_cosine_loss,
    normal_loss,
    normal_valid,
    person_extent,
    silhouette_bce,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def sphere_batch(side: int = 64) -> dict[str, torch.Tensor]:
    """Two records: a perspective and an orthographic sphere; float32 like collated dataset records."""
    maps = [
        sphere_maps(side, radius=0.3, distance=3.0, focal=side * 4.0, perspective=True),
        sphere_maps(side, radius=0.25, distance=2.0, focal=side / 0.7, perspective=False),
    ]
    generator = torch.Generator().manual_seed(0)
    return {
        "image": torch.rand(2, 3, side, side, generator=generator),
        "visible": torch.stack([m[0] for m in maps])[:, None].float(),
        "hidden": torch.stack([m[1] for m in maps])[:, None].float(),
        "mask": torch.stack([m[2] for m in maps])[:, None].float(),
        "intrinsics": torch.tensor([m[3] for m in maps], dtype=torch.float32),
        "perspective": torch.tensor([True, False]),
    }


def perfect_prediction(batch: dict[str, torch.Tensor], config: LossConfig) -> dict[str, torch.Tensor]:
    targets = loss_targets(batch, config)
    # Logits of +-40 give a BCE of log1p(exp(-40)) = 4e-18 per pixel: zero to float32's eye.
    return {"visible": targets.visible, "hidden": targets.hidden, "mask_logits": (batch["mask"] * 2 - 1) * 40}


# -- the terms -----------------------------------------------------------------------------------------
def test_masked_l1_is_a_mean_over_the_weighted_pixels():
    prediction, target = torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    weight = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    assert masked_l1(prediction, target, weight) == 2.0
    assert masked_l1(prediction, target, torch.zeros_like(weight)) == 0


def test_silhouette_bce_is_zero_when_confidently_right_and_log2_when_unsure():
    mask = torch.tensor([[[[1.0, 0.0]]]])
    assert silhouette_bce((mask * 2 - 1) * 40, mask) < 1e-16
    assert silhouette_bce(torch.zeros_like(mask), mask).item() == pytest.approx(math.log(2))
    assert silhouette_bce((1 - mask * 2) * 40, mask) > 39


def test_normal_cosine_loss_values():
    up = torch.tensor([0.0, 0.0, 1.0])[None, :, None, None].expand(1, 3, 2, 2)
    side = torch.tensor([1.0, 0.0, 0.0])[None, :, None, None].expand(1, 3, 2, 2)
    valid = torch.ones(1, 1, 2, 2, dtype=torch.bool)
    assert normal_cosine_loss(up, up, valid) == 0
    assert normal_cosine_loss(side, up, valid) == 1
    assert normal_cosine_loss(-up, up, valid) == 2


def test_normal_valid_excludes_the_rim_and_depth_steps():
    depth = torch.full((1, 1, 6, 6), 3.0)
    depth[..., :, 3:] = 3.2  # a 20 cm step between columns 2 and 3
    mask = torch.ones(1, 1, 6, 6, dtype=torch.bool)
    valid = normal_valid(depth, mask, 0.05)[0, 0]
    expected = torch.zeros(6, 6, dtype=torch.bool)
    expected[1:-1, [1, 4]] = True  # not the step's sides, not the crop's edge (no neighbour beyond it)
    assert torch.equal(valid, expected)
    mask[..., 2, 1] = False
    valid = normal_valid(depth, mask, 0.05)[0, 0]
    assert not valid[1:4, 1].any() and valid[4, 1] and valid[1:-1, 4].all()


def test_normal_loss_gradcheck_float64():
    side = 8
    visible, _, mask, camera = sphere_maps(side, radius=0.3, distance=2.0, focal=side * 2.0, perspective=True)
    target = visible[None, None]
    valid = normal_valid(target, mask[None, None], 0.05)
    assert valid.sum() >= 4
    intrinsics = torch.tensor([camera], dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    depth = (
        extend_outside(target, mask[None, None])
        + 0.01 * torch.rand(target.shape, generator=generator, dtype=torch.float64)
    ).requires_grad_()
    for perspective, facing in ((True, "towards"), (False, "towards"), (True, "away")):
        flag = torch.tensor([perspective])
        assert torch.autograd.gradcheck(
            lambda d, flag=flag, facing=facing: normal_loss(d, target, valid, intrinsics, flag, facing=facing),
            (depth,),
        )


def test_adversarial_terms():
    ones, zeros = torch.ones(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)
    assert adversarial_generator_loss(ones, "lsgan") == 0
    assert adversarial_generator_loss(zeros, "lsgan") == 1
    assert adversarial_generator_loss(ones, "hinge") == -1
    assert adversarial_discriminator_loss(ones, zeros, "lsgan") == (0, 0)
    real, fake = adversarial_discriminator_loss(zeros, ones, "lsgan")
    assert real == fake == 0.5
    assert adversarial_discriminator_loss(2 * ones, -2 * ones, "hinge") == (0, 0)
    real, fake = adversarial_discriminator_loss(zeros, zeros, "hinge")
    assert real == fake == 1
    with pytest.raises(ValueError, match="kind"):
        adversarial_generator_loss(ones, "wgan")


# -- combined losses -------------------------------------------------------------------------------------
RECONSTRUCTION_TERMS = ("visible", "hidden", "mask", "visible_normals", "hidden_normals")


def test_each_loss_is_zero_for_a_perfect_prediction():
    batch, config = sphere_batch(), LossConfig()
    losses = generator_losses([perfect_prediction(batch, config)] * 2, batch, config)
    assert set(losses) == {*RECONSTRUCTION_TERMS, "total"}
    for name in ("visible", "hidden"):
        assert losses[name] == 0, name
    assert losses["mask"] < 1e-16
    # Normals of the relative map made metric again: float32 round-off of (d - ref) / s * s + ref.
    assert losses["visible_normals"] < 1e-5 and losses["hidden_normals"] < 1e-5
    assert losses["total"] < 1e-5


@pytest.mark.parametrize(
    ("key", "change", "positive"),
    [
        # A shift changes depth; normals only through perspective (back-projected x, y scale with depth).
        ("visible", lambda p: p + 0.1, {"visible"}),
        ("hidden", lambda p: p + 0.1, {"hidden"}),
        # The union grows, but the perfect maps equal the continued targets there too: only the mask term.
        ("mask_logits", lambda p: -p, {"mask"}),
        ("visible", lambda p: p * 1.3, {"visible", "visible_normals"}),
        ("hidden", lambda p: p.flip(-1).flip(-2) * 0.7, {"hidden", "hidden_normals"}),
    ],
)
def test_each_loss_is_positive_for_a_wrong_prediction(key, change, positive):
    batch, config = sphere_batch(), LossConfig()
    prediction = perfect_prediction(batch, config)
    prediction[key] = change(prediction[key])
    losses = generator_losses([prediction], batch, config)
    for name in RECONSTRUCTION_TERMS:
        if name in positive:
            assert losses[name] > 1e-3, name
        else:  # perspective shift: 1.4e-5 on the normals
            assert losses[name] < 1e-4, name


def test_union_uses_the_extended_target_outside_the_true_mask():
    batch, config = sphere_batch(), LossConfig()
    prediction = perfect_prediction(batch, config)
    targets = loss_targets(batch, config)
    # Claim every pixel for the person, with the continued depth: no depth error, only the silhouette's.
    prediction["mask_logits"] = torch.full_like(prediction["mask_logits"], 40.0)
    prediction["visible"], prediction["hidden"] = targets.visible, targets.hidden
    losses = generator_losses([prediction], batch, config)
    assert losses["visible"] == 0 and losses["hidden"] == 0 and losses["mask"] > 1
    # Outside the true mask the target is the continued surface, not the 0 of the record.
    outside = batch["mask"] == 0
    assert torch.all(relative_to_depth(targets.visible, targets.reference, 0.5)[outside] > 1.5)


def test_total_is_the_weighted_sum_over_stacks():
    batch = sphere_batch()
    config = LossConfig(visible=2.0, hidden=0.5, mask=3.0, normals=0.7, intermediate=0.25, adversarial=0.0)
    good = perfect_prediction(batch, config)
    bad = {key: value * 1.5 for key, value in good.items()}
    weights = {"visible": 2.0, "hidden": 0.5, "mask": 3.0, "visible_normals": 0.7, "hidden_normals": 0.7}
    for normal_stacks in ("all", "last"):
        config = dataclasses.replace(config, normal_stacks=normal_stacks)
        single = [generator_losses([p], batch, config) for p in (bad, good)]
        losses = generator_losses([bad, good], batch, config)
        # The first (intermediate) stack's normal terms count only with normal_stacks="all".
        first = 1.0 if normal_stacks == "all" else 0.0
        factor = {n: first if "normals" in n else 1.0 for n in RECONSTRUCTION_TERMS}
        for name in RECONSTRUCTION_TERMS:
            torch.testing.assert_close(losses[name], factor[name] * single[0][name] + single[1][name])
        expected = sum(weights[n] * (0.25 * factor[n] * single[0][n] + single[1][n]) for n in RECONSTRUCTION_TERMS)
        torch.testing.assert_close(losses["total"], expected)
        assert single[0]["visible_normals"] > 1e-3  # the bad stack's normals are wrong: the test can fail


def test_adversarial_term_and_discriminator_losses():
    torch.manual_seed(0)
    batch, config = sphere_batch(), LossConfig(adversarial=0.5)
    discriminator = build_discriminator("tiny")
    prediction = perfect_prediction(batch, config)
    losses = generator_losses([prediction], batch, config, discriminator)
    without = generator_losses([prediction], batch, config)
    torch.testing.assert_close(losses["total"], without["total"] + 0.5 * losses["adversarial"])
    assert "adversarial" not in generator_losses([prediction], batch, LossConfig(adversarial=0.0), discriminator)
    d_losses = discriminator_losses(discriminator, [prediction], batch, config)
    assert set(d_losses) == {"real", "fake", "total"}
    torch.testing.assert_close(d_losses["total"], d_losses["real"] + d_losses["fake"])


def test_discriminator_sees_a_perfect_prediction_as_the_truth():
    batch = sphere_batch()
    config = LossConfig()
    real = real_discriminator_input(batch, config.depth_scale)
    fake = fake_discriminator_input(perfect_prediction(batch, config), batch, config.depth_scale)
    assert real.shape == (2, INPUT_CHANNELS, 64, 64)
    torch.testing.assert_close(fake, real, rtol=0, atol=1e-4)
    # Outside the true mask only the image is left.
    # Channels: visible, hidden, 3 + 3 normals, then mask and image. Outside the true mask only the image.
    outside = (batch["mask"] == 0).expand(-1, 8, -1, -1)
    assert torch.all(real[:, :8][outside] == 0)
    np.testing.assert_array_equal(real[:, 8:].numpy(), torch.cat([batch["mask"], batch["image"]], 1).numpy())


# -- the terms against the coarse error (issue #11) ------------------------------------------------------
def test_coarse_l1_compares_cell_means_weighted_by_cover():
    # 4x4 maps pooled to 2x2: the top-left cell is half covered; the error there is its mean difference.
    prediction = torch.zeros(1, 1, 4, 4)
    target = torch.zeros(1, 1, 4, 4)
    target[..., :2, :2] = torch.tensor([[1.0, 3.0], [9.0, 9.0]])  # the 9s lie outside the weight
    weight = torch.ones(1, 1, 4, 4)
    weight[..., 1, :2] = 0
    # Cells: top-left mean |0 - 2| = 2 with cover 0.5; the three others 0 with cover 1.
    torch.testing.assert_close(coarse_l1(prediction, target, weight, 2), torch.tensor(2 * 0.5 / 3.5))
    # A shift of the whole map by c costs c at any scale; a zero-mean ripple vanishes at coarse scales.
    ripple = torch.tensor([[1.0, -1.0] * 8] * 16)[None, None]
    assert coarse_l1(ripple, torch.zeros_like(ripple), torch.ones_like(ripple), 4) == 0
    torch.testing.assert_close(coarse_l1(ripple + 0.3, ripple, torch.ones_like(ripple), 4), torch.tensor(0.3))


def test_person_extent():
    mask = torch.zeros(2, 1, 10, 20)
    mask[0, 0, 2:8, 5:9] = 1  # 6 rows of 10, 4 columns of 20
    assert person_extent(mask).tolist() == pytest.approx([0.6, 0.0])


def test_depth_terms_skip_crops_where_the_person_is_small():
    batch = sphere_batch()
    prediction = perfect_prediction(batch, LossConfig())
    prediction["visible"] = prediction["visible"] + 0.2
    extents = person_extent(batch["mask"])
    everything = generator_losses([prediction], batch, LossConfig(normals=0))
    config = LossConfig(normals=0, depth_min_extent=float(extents.max()) + 0.01)
    skipped = generator_losses([prediction], batch, config)
    assert everything["visible"] > 0.1 and skipped["visible"] == 0 and skipped["mask"] == everything["mask"]


@pytest.mark.parametrize("term", ["thickness", "detached"])
def test_the_hidden_term_can_leave_the_visible_map_alone(term):
    # hidden = visible + thickness, as the network builds it: with "hidden" the hidden term's gradient
    # reaches the visible map; with "thickness" or "detached" it does not.
    batch = sphere_batch()
    targets = loss_targets(batch, LossConfig())
    visible = (targets.visible + 0.1).requires_grad_(True)
    thickness = (targets.hidden - targets.visible + 0.05).requires_grad_(True)
    prediction = {"visible": visible, "hidden": visible + thickness, "mask_logits": (batch["mask"] * 2 - 1) * 40}
    gradients = {}
    for name in ("hidden", term):
        config = LossConfig(visible=0.0, normals=0.0, hidden_term=name)
        gradients[name] = torch.autograd.grad(generator_losses([prediction], batch, config)["total"], visible)[0]
    assert gradients["hidden"].abs().sum() > 0 and gradients[term].abs().sum() == 0
    # ...while the thickness is still pulled towards the truth.
    config = LossConfig(visible=0.0, normals=0.0, hidden_term=term)
    assert torch.autograd.grad(generator_losses([prediction], batch, config)["total"], thickness)[0].sum() > 0


def test_back_colour_term_only_where_known():
    batch = sphere_batch()
    prediction = perfect_prediction(batch, LossConfig())
    batch["back"] = torch.full((2, 3, 64, 64), 0.5)
    batch["has_back"] = torch.tensor([True, False])
    prediction["back"] = torch.full((2, 3, 64, 64), 0.5)
    prediction["back"][1] = 0.9  # wrong, but on a sample without back colours
    assert generator_losses([prediction], batch, LossConfig())["back"] == 0
    prediction["back"][0, :, 32, 32] = 0.8  # wrong inside the first sphere's silhouette
    losses = generator_losses([prediction], batch, LossConfig(back=2.0))
    pixels = float(batch["mask"][0].sum())
    torch.testing.assert_close(losses["back"], torch.tensor(0.3 / pixels))
    torch.testing.assert_close(losses["total"], 2.0 * losses["back"], atol=1e-5, rtol=0)


def test_adaptive_adversarial_weight_holds_its_share():
    torch.manual_seed(0)
    batch = sphere_batch()
    discriminator = build_discriminator("tiny")
    prediction = {key: value.clone().requires_grad_(key != "mask_logits")
                  for key, value in perfect_prediction(batch, LossConfig()).items()}  # fmt: skip
    prediction["visible"] = prediction["visible"] * 1.2  # a depth error, so the depth terms pull
    fixed = generator_losses([prediction], batch, LossConfig(adversarial=0.01), discriminator)
    assert fixed["adversarial_weight"] == pytest.approx(0.01) and 0 < fixed["adversarial_share"]
    adaptive = generator_losses([prediction], batch, LossConfig(adversarial_share=0.25), discriminator)
    assert adaptive["adversarial_share"] == pytest.approx(0.25, rel=1e-4)
    # The measured share is what it says: the ratio of the weighted gradients at the depth maps.
    maps = [prediction["visible"], prediction["hidden"]]
    weight = float(adaptive["adversarial_weight"])
    depth_only = generator_losses([prediction], batch, LossConfig(adversarial=0.0, mask=0.0))["total"]
    g_depth = torch.autograd.grad(depth_only, maps, retain_graph=True)
    g_adv = torch.autograd.grad(adaptive["adversarial"], maps)
    ratio = (
        weight * torch.cat([g.flatten() for g in g_adv]).norm() / torch.cat([g.flatten() for g in g_depth]).norm()
    )
    assert float(ratio) == pytest.approx(0.25, rel=1e-3)


def test_loss_overrides_parse_and_name_their_errors():
    values = LossConfig.parse_overrides(["coarse=0.5", "coarse_scales=16,64", "hidden-term=thickness"])
    assert values == {"coarse": 0.5, "coarse_scales": (16, 64), "hidden_term": "thickness"}
    assert LossConfig(**values).hidden_term == "thickness"
    for bad, message in (("colour=1", "NAME one of"), ("coarse", "NAME=VALUE"), ("coarse=lots", "coarse")):
        with pytest.raises(ValueError, match=message):
            LossConfig.parse_overrides([bad])
    with pytest.raises(ValueError, match="hidden_term"):
        LossConfig(hidden_term="back")

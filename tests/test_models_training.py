"""The network learns: a tiny config overfits four analytic shapes (sphere, box, capsule, torus)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from mould.models import LossConfig, build_discriminator, build_model
from mould.models.losses import discriminator_losses, generator_losses, loss_targets

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def shape_batch(side: int) -> dict[str, torch.Tensor]:
    """Four analytic shapes ray-cast by ``encode_mesh``, each lit by one light (the image is the shading of
    the true normals inside the mask over a flat background), collated like dataset records."""
    import trimesh
    from mould.datasets.records import mould_to_record

    from mould.encode import encode_mesh
    from mould.framing import frame_points

    shapes = [
        trimesh.creation.icosphere(subdivisions=4, radius=0.3),
        trimesh.creation.box((0.5, 0.7, 0.3)),
        trimesh.creation.capsule(height=0.6, radius=0.2),
        trimesh.creation.torus(0.3, 0.1),
    ]
    light = np.array([0.3, -0.5, -0.8]) / np.linalg.norm([0.3, -0.5, -0.8])
    records = []
    logging.getLogger("mould.encode").setLevel(logging.ERROR)
    for index, shape in enumerate(shapes):
        rotation = trimesh.transformations.rotation_matrix(0.4 * index + 0.3, [1, 1, 0])[:3, :3]
        vertices = shape.vertices @ rotation.T
        camera = frame_points(vertices, side, kind="perspective")
        mould = encode_mesh(vertices, shape.faces, camera, normals=True).mould
        shade = np.clip(-(mould.visible_normals @ light), 0, 1)[..., None]
        image = np.where(mould.mask[..., None], (40 + 200 * shade) * [1.0, 0.9, 0.8], [30, 60, 90])
        records.append(mould_to_record(mould, image.astype(np.uint8)))
    return {key: torch.stack([record[key] for record in records]) for key in records[0]}


def depth_error_m(prediction: dict[str, torch.Tensor], batch, config: LossConfig) -> float:
    """Mean absolute error of both depth maps inside the true masks, metres."""
    targets = loss_targets(batch, config)
    inside = batch["mask"] > 0.5
    errors = [(prediction[name] - getattr(targets, name)).abs()[inside].mean() for name in ("visible", "hidden")]
    return float(sum(errors) / 2 * config.depth_scale)


def overfit(side: int, steps: int, *, adversarial: float = 0.0, seed: int = 0):
    torch.manual_seed(seed)
    batch = shape_batch(side)
    model = build_model("tiny").to(memory_format=torch.channels_last)
    config = LossConfig.for_model(model.config, adversarial=adversarial)
    discriminator = build_discriminator("tiny") if adversarial else None
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    d_optimiser = torch.optim.Adam(discriminator.parameters(), lr=1e-3) if discriminator else None
    errors = []
    for _ in range(steps):
        predictions = model(batch["image"])
        errors.append(depth_error_m({k: v.detach() for k, v in predictions[-1].items()}, batch, config))
        losses = generator_losses(predictions, batch, config, discriminator)
        optimiser.zero_grad()
        losses["total"].backward()
        optimiser.step()
        if discriminator is not None:
            d_optimiser.zero_grad()
            discriminator_losses(discriminator, predictions, batch, config)["total"].backward()
            d_optimiser.step()
    return model, batch, config, errors


def test_overfits_four_shapes_quickly():
    # 64² crops (the net takes multiples of 64) and 60 steps: ~15 s. The error starts at ~0.27 m (an
    # untrained thickness of softplus(0) x 0.5 m) and is ~0.03 m at step 60, a ~8x drop.
    _, _, _, errors = overfit(64, 60)
    assert errors[0] > 0.1
    assert min(errors[-5:]) * 5 <= errors[0], errors[::10]


@pytest.mark.slow
@pytest.mark.parametrize("adversarial", [0.0, 0.01])
def test_overfits_four_shapes_at_256_in_eval_mode(adversarial):
    model, batch, config, errors = overfit(256, 300, adversarial=adversarial)
    model.eval()  # the inference path: batch-norm running statistics instead of the batch's
    with torch.no_grad():
        final = depth_error_m(model(batch["image"])[-1], batch, config)
    assert min(errors[-10:]) * 5 <= errors[0], errors[::30]
    assert final * 5 <= errors[0], (final, errors[0])

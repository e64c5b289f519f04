"""Procedural appearance: solid-texture patterns, value noise, and the face painted on the skin."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from mould.datasets.appearance import Material


def test_albedo_patterns_and_noise():
    import torch
    from mould.datasets.appearance import NOISE_OCTAVES, albedo, material_table
    from mould.datasets.noise import noise_offsets, value_noise

    points = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (500, 3)), dtype=torch.float32)
    noise = value_noise(points * 5, noise_offsets(3))
    assert torch.equal(noise, value_noise(points * 5, noise_offsets(3)))
    assert noise.min() >= -1 and noise.max() <= 1 and noise.std() > 0.1
    # Continuity: a step of 1 % of the lattice spacing changes the noise by little.
    assert (value_noise(points * 5 + 0.01, noise_offsets(3)) - noise).abs().max() < 0.1
    assert (value_noise(points * 5, noise_offsets(4)) - noise).abs().mean() > 0.1  # another seed, another field
    stripes = Material("stripes", (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), 0.1, (0.0, 1.0, 0.0), 0.0, 1)
    table, seeds = material_table([stripes])
    line = np.stack([np.zeros(8), np.array([0.01, 0.03, 0.06, 0.09, 0.11, 0.13, 0.16, 0.19]), np.zeros(8)], 1)
    offsets = noise_offsets(torch.as_tensor(seeds), NOISE_OCTAVES).expand(8, -1, -1)
    colours = albedo(torch.as_tensor(table).expand(8, -1), offsets, torch.as_tensor(line))
    # The first half of each 0.1 m period takes the second colour (blue), the other half the first (red).
    assert np.array_equal(colours[:, 2].numpy() > 0.5, np.array([1, 1, 0, 0, 1, 1, 0, 0], bool))
    with pytest.raises(ValueError, match="zigzag"):
        material_table([dataclasses.replace(stripes, pattern="zigzag")])


def test_the_skin_has_a_face_on_the_front_of_the_head_only():
    # Eyes, brows and lips at their places on the default body's face, and nothing on the back of the head
    # or on a garment at the same coordinates: a learnt back colour has a face to leave out.
    import torch
    from mould.datasets.appearance import EYE_COLOUR, LIP_TINT, NOISE_OCTAVES, albedo, material_table
    from mould.datasets.atlas import atlas_tensors
    from mould.datasets.noise import noise_offsets

    eyes = atlas_tensors(torch.device("cpu")).eyes.double()
    centre, spacing = eyes.mean(0), float((eyes[0] - eyes[1]).norm())
    forward = torch.tensor([0.0, 0.0, 0.015], dtype=torch.float64)  # on the face, in front of the eyeballs
    up = torch.tensor([0.0, spacing, 0.0], dtype=torch.float64)
    places = {
        "left eye": eyes[0] + forward, "right eye": eyes[1] + forward, "left brow": eyes[0] + forward + 0.3 * up,
        "lips": centre + forward - 1.08 * up, "cheek": eyes[0] + forward - 0.5 * up,
        "back of the head": centre - torch.tensor([0.0, 0.0, 0.15], dtype=torch.float64),
        "forehead": centre + forward + 0.7 * up,
    }  # fmt: skip
    points = torch.stack(list(places.values()))
    skin = Material("skin", (0.8, 0.6, 0.5), (0.2, 0.1, 0.05), 0.03, (0.0, 1.0, 0.0), 0.0, 1)
    shirt = dataclasses.replace(skin, pattern="solid")
    table, seeds = material_table([skin, shirt])
    offsets = noise_offsets(torch.as_tensor(seeds), NOISE_OCTAVES)
    count = len(points)
    painted = albedo(torch.as_tensor(table[:1]).expand(count, -1), offsets[:1].expand(count, -1, -1), points)
    plain = albedo(torch.as_tensor(table[1:]).expand(count, -1), offsets[1:].expand(count, -1, -1), points)
    colour = dict(zip(places, painted.numpy()))
    np.testing.assert_allclose(colour["left eye"], EYE_COLOUR, atol=1e-6)
    np.testing.assert_allclose(colour["right eye"], EYE_COLOUR, atol=1e-6)
    np.testing.assert_allclose(colour["left brow"], skin.colour2, atol=1e-6)
    np.testing.assert_allclose(colour["lips"], np.multiply(skin.colour, LIP_TINT), atol=1e-6)
    for name in ("cheek", "back of the head", "forehead"):
        np.testing.assert_allclose(colour[name], skin.colour, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(plain.numpy(), np.broadcast_to(skin.colour, (count, 3)), atol=1e-6)

"""Low-key scenes (``SynthConfig.low_key``): a dimmed backdrop and mostly dark clothes, drawn from a random
stream of their own, so that everything else about a scene is what it would have been without them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from mould.datasets.appearance import DARK_GARMENTS
from mould.datasets.backdrops import dimmed, draw_backdrop, paint_backdrops
from mould.datasets.scenes import LOW_KEY_DIM, draw_scene
from mould.datasets.synthetic import SynthConfig, generate_batch

from mould.errors import InputError

DARKEST_LIGHT = DARK_GARMENTS.max() / 255 * 1.25
"""The lightest channel a dark garment can have: the palette's lightest, jittered by at most 25 %."""


def _paint(draws: list, size: int) -> np.ndarray:
    generators = [torch.Generator().manual_seed(7) for _ in draws]
    return paint_backdrops(draws, size, generators, torch.device("cpu")).numpy()


@pytest.mark.parametrize("clutter", [0.0, 1.0])
def test_a_dimmed_backdrop_is_the_same_picture_times_its_factor(tmp_path, clutter):
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(
        tmp_path / "a.png"
    )
    for seed, images in ((1, []), (2, [tmp_path / "a.png"])):
        draw = draw_backdrop(48, np.random.default_rng(seed), images, clutter=clutter)
        plain, dark = _paint([draw], 48)[0], _paint([dimmed(draw, 0.1)], 48)[0]
        assert dimmed(draw, 0.1).info == {**draw.info, "dim": 0.1}
        assert np.allclose(dark, 0.1 * plain, atol=1e-6) and plain.max() > 0.2


def test_low_key_draws_change_only_the_clothes_colours_and_the_backdrop_brightness():
    keyed = [draw_scene(31, i, SynthConfig(low_key=1.0)) for i in range(10)]
    plain = [draw_scene(31, i, SynthConfig(low_key=0.0)) for i in range(10)]
    darkened = {"trousers": [], "top": []}
    for a, b in zip(keyed, plain):
        assert (a.phenotype, a.yaw, a.skin, a.hairstyle, a.lighting) == (
            b.phenotype,
            b.yaw,
            b.skin,
            b.hairstyle,
            b.lighting,
        )
        assert a.poses == b.poses and a.box_scale == b.box_scale
        assert b.backdrop.dim == 1.0 and "dim" not in b.backdrop.info
        assert LOW_KEY_DIM[0] <= a.backdrop.dim <= LOW_KEY_DIM[1]
        for name in (f.name for f in dataclasses.fields(b.backdrop) if f.name not in ("dim", "info")):
            x, y = getattr(a.backdrop, name), getattr(b.backdrop, name)
            assert (x is None and y is None) or np.array_equal(x, y), name
        for worn, drawn in zip(a.outfits, b.outfits):
            assert [dataclasses.replace(g, material=None) for g in worn] == [
                dataclasses.replace(g, material=None) for g in drawn
            ]
            for g, h in zip(worn, drawn):
                dark = g.material != h.material
                if dark:
                    assert max(g.material.colour + g.material.colour2) <= DARKEST_LIGHT
                    assert g.material.pattern == h.material.pattern
                if g.kind in darkened:
                    darkened[g.kind].append(dark)
    # Lower garments go dark nine times in ten, tops half the time: trousers on black, a lit shirt above.
    assert np.mean(darkened["trousers"]) > 0.75 and 0.2 < np.mean(darkened["top"]) < 0.8


def test_a_low_key_share_of_zero_or_a_scene_not_drawn_low_key_is_the_same_sample():
    shared = SynthConfig(resolution=48, low_key=0.3)
    indices = list(range(8))
    keyed = generate_batch(indices, 12, shared)
    plain = generate_batch(indices, 12, dataclasses.replace(shared, low_key=0.0))
    low = [params["background"].get("dim") is not None for _, _, params in keyed]
    assert 0 < sum(low) < len(low)
    for (mould, image, params), (other, other_image, _), is_low in zip(keyed, plain, low):
        assert np.array_equal(mould.mask, other.mask) and np.array_equal(mould.visible, other.visible)
        if not is_low:
            assert np.array_equal(image, other_image)
            continue
        # The same person, framed the same, on a background dimmed by its factor (up to the sensor noise).
        outside = ~mould.mask
        dim = params["background"]["dim"]
        mean, other_mean = image[outside].mean() / 255, other_image[outside].mean() / 255
        assert abs(mean - dim * other_mean) < 0.03 and mean < other_mean


def test_a_folder_records_and_counts_its_low_key_scenes(tmp_path):
    from mould.datasets.stats import folder_stats
    from mould.datasets.synth_folder import synthesize

    synthesize(tmp_path / "dark", 3, 5, SynthConfig(resolution=32, low_key=1.0), progress=False)
    synthesize(tmp_path / "plain", 3, 5, SynthConfig(resolution=32, low_key=0.0), progress=False)
    assert folder_stats(tmp_path / "dark")["low-key scene (dark backdrop)"] == 1.0
    assert folder_stats(tmp_path / "plain")["low-key scene (dark backdrop)"] == 0.0
    with pytest.raises(InputError, match="low_key = 0.0, not 0.1"):
        synthesize(tmp_path / "plain", 4, 5, SynthConfig(resolution=32), progress=False)
    assert len(list((tmp_path / "plain").glob("*.npz"))) == 3  # nothing written


def test_a_share_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="low_key: expected 0 to 1, got 1.5"):
        SynthConfig(low_key=1.5)

"""The synthetic clothed-human generator behind ``mould synth`` and ``mould train --data synth``.

One sample is a pure function of ``(seed, index)`` (whatever the batch, the device's batching or the number
of workers; on CUDA up to float round-off, see ``docs/synthetic-data.md``):

1. **draw** (:mod:`mould.datasets.scenes`, numpy, CPU): every random choice: anny phenotype, candidate poses
   (:mod:`mould.datasets.poses`), outfits and hair, skin, camera view (:mod:`mould.datasets.views`) and crop
   jitter, lights, background (:mod:`mould.datasets.backdrops`), sensor noise;
2. **dress** (:mod:`mould.datasets.dressing`, torch, any device, batched): bodies shaped and posed from the
   body bank (:mod:`mould.datasets.bank`, :mod:`mould.datasets.posing`; no anny needed), the first candidate
   pose without self-collision kept, garments and hair built as geometry;
3. **render** (:mod:`mould.datasets.render`, :mod:`mould.datasets.shading`): framing by the reconstruction's
   rule, one z-buffer pass (:mod:`mould.datasets.raster`) for the mould, the image and the back colour,
   a shadow map for the key light.

:func:`generate_batch` makes samples in memory; :func:`mould.datasets.synth_folder.synthesize` writes them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from mould.datasets.views import VIEW_MIXES, ViewMix

from mould.camera import Camera
from mould.container import Mould

log = logging.getLogger(__name__)

GENERATOR_VERSION = 8
"""Bumped whenever the same (seed, index) would give a different sample; stored in every sample."""


@dataclass(frozen=True)
class SynthConfig:
    """How samples are generated (everything but the seed and the index)."""

    resolution: int = 256
    """Side of the square crop in pixels."""
    backgrounds: tuple[Path, ...] = ()
    """Images whose random crops serve as backgrounds (procedural backgrounds when empty)."""
    max_pose_tries: int = 8
    """Poses drawn before accepting one that fails the collision test (rare; recorded in the sample)."""
    views: ViewMix = "photo"
    """Camera yaw distribution: ``"photo"`` (mostly the front half, as photographs of people are) or
    ``"uniform"`` over 360 degrees; see :mod:`mould.datasets.views`."""
    distance_factor: tuple[float, float] = (2.0, 4.5)
    """Camera distance range, in multiples of the figure's largest extent (2.5 frames a standing adult
    from ~4 m)."""
    elevation: tuple[float, float] = (-15.0, 35.0)
    """Camera elevation range, degrees (drawn from a normal around 5 degrees, clipped to it)."""
    box_scale: tuple[float, float] = (0.95, 1.12)
    """Crop zoom jitter range (> 1 zooms out): the network must accept imperfect crops."""
    zoom_out: float = 0.2
    """Probability that the crop is zoomed out by a factor from ``zoom_out_scale`` instead: the framing loop
    of ``mould reconstruct`` first shows the network a whole photo, where the person is small."""
    zoom_out_scale: tuple[float, float] = (1.3, 2.6)
    """Zoom-out range of those crops."""
    clutter: float = 0.5
    """Probability that a procedural background gets clutter (:func:`~mould.datasets.appearance.add_clutter`)."""
    wardrobe: float = 0.4
    """Share of people dressed in MakeHuman's modelled suits, of shoes swapped for its modelled shoes
    (:func:`~mould.datasets.clothing.wardrobe_outfit`) and of hair drawn as its modelled haircuts
    (:func:`~mould.datasets.hair.wardrobe_hair`); 0: procedural garments and hair only."""
    low_key: float = 0.1
    """Share of low-key scenes: the background dimmed to 4-30 % of its brightness and the person's clothes
    mostly dark (trousers, skirts and shoes nine times in ten, tops half the time;
    :func:`~mould.datasets.clothing.low_key_outfit`), as in studio portraits on black, where a network that
    learnt "dark = background" cuts off black trousers; 0: none."""
    box_shift: float = 0.03
    """Crop shift jitter, fraction of the side, each axis."""
    max_noise: float = 0.02
    """Largest sensor-noise standard deviation (image in [0, 1])."""
    shadow_map: int | None = None
    """Side of the key light's shadow map in texels (over the scene's bounding sphere); None: the crop's side,
    so that a texel is about a pixel's footprint (~8 mm for a standing adult at 256²); see
    :mod:`mould.datasets.render`."""

    def __post_init__(self) -> None:
        if not 16 <= self.resolution <= 2048:
            raise ValueError(f"resolution: expected 16 to 2048, got {self.resolution}")
        if self.max_pose_tries < 1:
            raise ValueError(f"max_pose_tries: expected >= 1, got {self.max_pose_tries}")
        if self.shadow_map is not None and not 16 <= self.shadow_map <= 4096:
            raise ValueError(f"shadow_map: expected 16 to 4096 texels, got {self.shadow_map}")
        for name in ("wardrobe", "low_key"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}: expected 0 to 1, got {getattr(self, name)}")
        if self.views not in VIEW_MIXES:
            raise ValueError(f"views: expected one of {', '.join(VIEW_MIXES)}, got {self.views!r}")


def generate_batch(
    indices: list[int], seed: int, config: SynthConfig | None = None, *, device: str | torch.device = "cpu"
) -> list[tuple[Mould, np.ndarray, dict]]:
    """Generate samples ``indices`` of the dataset seeded ``seed``, as one batch on ``device``.

    Returns:
        Per index: (mould with ground-truth normals, the image and the back colour, image (N, N, 3) uint8,
        JSON-ready parameters).
    """
    from mould.datasets.scenes import draw_scene

    config = config or SynthConfig()
    return render_draws([draw_scene(seed, i, config) for i in indices], config, device=device)


def generate_sample(index: int, seed: int, config: SynthConfig | None = None) -> tuple[Mould, np.ndarray, dict]:
    """Generate one sample on the CPU (see :func:`generate_batch`); ``(seed, index)`` determines it."""
    return generate_batch([index], seed, config)[0]


def dress_and_render(draws: list, config: SynthConfig, device: torch.device):
    """(dressed, rendered): the geometry and the rendering of a batch of draws on ``device`` (tensors there;
    :func:`render_draws` packages them as samples, :func:`mould.datasets.stream.render_records` as records)."""
    from mould.datasets.dressing import dress
    from mould.datasets.shading import render_batch

    with torch.no_grad():
        dressed = dress(draws, device)
        generators = [torch.Generator(device).manual_seed(d.pixel_seed) for d in draws]
        shadow = config.shadow_map or config.resolution
        return dressed, render_batch(dressed, draws, config.resolution, shadow_size=shadow, generators=generators)


def render_draws(
    draws: list, config: SynthConfig, *, device: str | torch.device = "cpu"
) -> list[tuple[Mould, np.ndarray, dict]]:
    """Build, render and package a batch of :class:`~mould.datasets.scenes.SceneDraw` s on ``device``."""
    dressed, rendered = dress_and_render(draws, config, torch.device(device))
    maps = {
        "visible": rendered.hits.visible,
        "hidden": rendered.hits.hidden,
        "mask": rendered.hits.mask,
        "visible_normals": rendered.hits.visible_normals,
        "hidden_normals": rendered.hits.hidden_normals,
        "image": rendered.image,
        "back_image": rendered.back_image,
        "cam_to_world": rendered.cam_to_world,
        "intrinsics": rendered.intrinsics,
        "distance": rendered.distance,
    }
    arrays = {k: v.cpu().numpy() for k, v in maps.items()}
    samples = []
    for i, draw in enumerate(draws):
        focal, cx, cy = (float(x) for x in arrays["intrinsics"][i])
        camera = Camera("perspective", config.resolution, focal, cx, cy, arrays["cam_to_world"][i])
        mask = arrays["mask"][i]
        mould = Mould(
            visible=arrays["visible"][i].astype(np.float32),
            hidden=arrays["hidden"][i].astype(np.float32),
            mask=mask,
            camera=camera,
            image=arrays["image"][i],
            visible_normals=arrays["visible_normals"][i].astype(np.float32),
            hidden_normals=arrays["hidden_normals"][i].astype(np.float32),
            back_image=arrays["back_image"][i],
        )
        params = _parameters(draw, dressed, i, camera, float(arrays["distance"][i]))
        samples.append((mould, arrays["image"][i], params))
    return samples


def _parameters(draw, dressed, i: int, camera: Camera, distance: float) -> dict:
    """The JSON record of sample ``i`` of a batch: every choice that made it."""
    lighting = draw.lighting
    return {
        "source": "synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": draw.seed,
        "index": draw.index,
        "phenotype": draw.phenotype,
        "pose": {
            "family": dressed.families[i],
            "angles": dressed.poses[i],
            "tries": dressed.tries[i],
            "collisions": dressed.collisions[i],
        },
        "outfit": [garment.to_dict() for garment in dressed.outfits[i]],
        "hair": draw.hairstyle.to_dict(),
        "skin": draw.skin.to_dict(),
        "camera": {
            "yaw_deg": draw.yaw,
            "elevation_deg": draw.elevation,
            "distance": distance,
            "box_scale": draw.box_scale,
            "box_shift": list(draw.box_shift),
            **camera.to_dict(),
        },
        "lighting": {"ambient": list(lighting.ambient), "lights": [vars(light) for light in lighting.lights]},
        "background": draw.backdrop.info,
        "noise": draw.noise,
    }

"""Every random choice of a synthetic sample, drawn on the CPU from ``(seed, index)`` before any geometry.

A :class:`SceneDraw` holds the body's phenotype, up to ``max_pose_tries`` candidate poses (the first that
passes the collision test is used, :mod:`mould.datasets.collisions`), two outfits (one for upright poses,
which may have skirts and dresses, one for the others: which one is worn depends on the pose kept), the
hairstyle, the skin, the camera's direction, distance and crop jitter, the lights, the background and the
sensor noise. Nothing here depends on geometry, so draws are cheap (data workers make them), and the
geometry and rendering of a whole batch can run on a GPU (:mod:`mould.datasets.synthetic`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mould.datasets.appearance import Material, skin_material
from mould.datasets.backdrops import BackdropDraw, dimmed, draw_backdrop
from mould.datasets.clothing import Garment, low_key_outfit, sample_outfit, wardrobe_outfit
from mould.datasets.hair import Hairstyle, sample_hairstyle, wardrobe_hair
from mould.datasets.poses import UPRIGHT_FAMILIES, Pose, pose_deltas, sample_pose
from mould.datasets.render import Lighting, sample_lighting
from mould.datasets.views import sample_yaw

from mould.camera import view_direction


@dataclass(frozen=True, eq=False)
class SceneDraw:
    """The random choices of one sample (see the module docstring).

    Attributes:
        seed, index: what the draw was made from.
        phenotype: anny phenotype name -> value in [0, 1].
        tries: how many candidate poses may be tried (the last is kept even if it collides).
        poses: the candidate (family, pose) pairs drawn so far (:meth:`candidate` draws more); candidate t
            comes from its own generator, ``(seed, index, 1, t)``, so it is the same whenever it is drawn.
        rotations: their (J, 3, 3) float32 local-ref bone rotations (:func:`mould.datasets.poses.pose_deltas`).
        outfits: (for upright poses, for the others), inner layers first.
        hairstyle, skin: the hair and the skin.
        yaw, elevation: camera direction, degrees (:func:`mould.camera.view_direction`).
        distance_factor: camera distance in multiples of the scene's largest extent.
        box_scale, box_shift: crop zoom and shift (:func:`mould.framing.frame_points`).
        lighting: the lights, world frame.
        backdrop: the background.
        noise: sensor-noise standard deviation (image in [0, 1]).
        pixel_seed: seeds the sample's torch generator (per-pixel noise).
    """

    seed: int
    index: int
    phenotype: dict[str, float]
    tries: int
    poses: list[tuple[str, Pose]]
    rotations: list[np.ndarray]
    outfits: tuple[tuple[Garment, ...], tuple[Garment, ...]]
    hairstyle: Hairstyle
    skin: Material
    yaw: float
    elevation: float
    distance_factor: float
    box_scale: float
    box_shift: tuple[float, float]
    lighting: Lighting
    backdrop: BackdropDraw
    noise: float
    pixel_seed: int

    def outfit(self, family: str) -> tuple[Garment, ...]:
        """The outfit worn with a pose of ``family``."""
        return self.outfits[0] if family in UPRIGHT_FAMILIES else self.outfits[1]

    def candidate(self, t: int) -> tuple[str, Pose, np.ndarray]:
        """(family, pose, (J, 3, 3) rotations) of candidate pose ``t``, drawn now if not yet."""
        if not 0 <= t < self.tries:
            raise IndexError(f"candidate {t}: expected 0 to {self.tries - 1}")
        draw_candidates(self, t + 1)
        return (*self.poses[t], self.rotations[t])


def draw_candidates(draw: SceneDraw, count: int) -> None:
    """Draw the first ``count`` candidate poses of ``draw`` (those missing), together."""
    from mould.datasets.bodies import body_bank

    first = len(draw.poses)
    if count <= first:
        return
    new = [sample_pose(np.random.default_rng([draw.seed, draw.index, 1, t])) for t in range(first, count)]
    rotations = pose_deltas([pose for _, pose in new], body_bank().bone_labels).astype(np.float32)
    draw.poses.extend(new)
    draw.rotations.extend(rotations)


def sample_phenotype(rng: np.random.Generator) -> dict[str, float]:
    """anny phenotypes across their range; four in five are adults (anny's age 0.5-1: ~18-90 years)."""
    age = rng.uniform(0.5, 1.0) if rng.uniform() < 0.8 else rng.uniform(0.05, 0.5)
    return {
        "gender": float(rng.uniform()),
        "age": float(age),
        "muscle": float(rng.uniform()),
        "weight": float(rng.uniform()),
        "height": float(rng.uniform()),
        "proportions": float(rng.uniform()),
    }


LOW_KEY_DIM = (0.04, 0.3)
"""Range of the factor a low-key scene's background is dimmed by (a photo crop's mean of ~0.4 becomes
0.016-0.12: a black studio backdrop to a dim room)."""

CANDIDATES_DRAWN = 2
"""Candidate poses drawn with the rest of a sample (by the data workers); about one sample in five needs a
second, a few in a hundred a third, which :meth:`SceneDraw.candidate` draws when asked."""


def draw_scene(seed: int, index: int, config) -> SceneDraw:
    """All random choices of sample ``index`` of a dataset seeded ``seed``.

    Args:
        config: a :class:`mould.datasets.synthetic.SynthConfig`.
    """
    rng = np.random.default_rng([int(seed), int(index)])
    phenotype = sample_phenotype(rng)
    skin = skin_material(rng)
    outfits = (tuple(sample_outfit(rng, upright=True)), tuple(sample_outfit(rng, upright=False)))
    hairstyle = sample_hairstyle(rng)
    if config.wardrobe:  # from a stream of its own, so that the other choices stay those of wardrobe 0
        wardrobe_rng = np.random.default_rng([int(seed), int(index), 2])
        outfits = tuple(wardrobe_outfit(wardrobe_rng, outfit, config.wardrobe) for outfit in outfits)
        hairstyle = wardrobe_hair(wardrobe_rng, hairstyle, config.wardrobe)
    yaw = sample_yaw(rng, config.views)
    elevation = float(np.clip(rng.normal(5, 10), *config.elevation))
    distance_factor = float(rng.uniform(*config.distance_factor))
    zoomed_out = rng.uniform() < config.zoom_out
    box_scale = float(rng.uniform(*(config.zoom_out_scale if zoomed_out else config.box_scale)))
    box_shift = (float(rng.uniform(-1, 1) * config.box_shift), float(rng.uniform(-1, 1) * config.box_shift))
    lighting = sample_lighting(rng, view_direction(yaw, elevation))
    backdrop = draw_backdrop(config.resolution, rng, list(config.backgrounds), clutter=config.clutter)
    if config.low_key:  # a stream of its own again: low_key 0 leaves every choice above as it was
        key_rng = np.random.default_rng([int(seed), int(index), 3])
        if key_rng.uniform() < config.low_key:
            outfits = tuple(low_key_outfit(key_rng, outfit) for outfit in outfits)
            backdrop = dimmed(backdrop, key_rng.uniform(*LOW_KEY_DIM))
    draw = SceneDraw(
        seed=int(seed),
        index=int(index),
        phenotype=phenotype,
        tries=config.max_pose_tries,
        poses=[],
        rotations=[],
        outfits=outfits,
        hairstyle=hairstyle,
        skin=skin,
        yaw=yaw,
        elevation=elevation,
        distance_factor=distance_factor,
        box_scale=box_scale,
        box_shift=box_shift,
        lighting=lighting,
        backdrop=backdrop,
        noise=float(rng.uniform(0, config.max_noise)),
        pixel_seed=int(rng.integers(2**62)),
    )
    draw_candidates(draw, min(CANDIDATES_DRAWN, draw.tries))
    return draw

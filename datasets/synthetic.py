"""The synthetic clothed-human generator behind ``mould synth``.

One sample, from a generator seeded by ``(seed, index)`` alone (so the same seed gives the same data,
whatever the number of workers or the order they run in):

1. **shape**: anny phenotypes drawn across their range (age from toddler to elderly, gender, muscle,
   weight, height, proportions);
2. **pose**: :mod:`mould.datasets.poses` (families, anatomical ranges), redrawn when the capsule test
   finds limbs passing through each other;
3. **clothing and hair** as geometry (:mod:`mould.datasets.clothing`, :mod:`mould.datasets.hair`);
4. **appearance**: skin tone, garment colours and patterns, hair colour (:mod:`mould.datasets.appearance`);
5. **camera**: perspective, yaw from the view mix of photographs (:mod:`mould.datasets.views`), random
   elevation and distance, framed by :func:`mould.framing.frame_points`
   (the reconstruction's framing rule) with a small random zoom and shift;
6. **render**: one ray cast gives the image and the mould (:mod:`mould.datasets.render`).

:func:`synthesize` writes samples ``0000000``, ``0000001``... with :func:`mould.datasets.samples.write_sample`
in parallel worker processes (each builds anny once), skipping samples already there.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import multiprocessing
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mould.datasets.views import VIEW_MIXES, ViewMix, sample_yaw

from mould.container import Mould
from mould.errors import InputError
from mould.files import write_atomic
from mould.framing import frame_points

log = logging.getLogger(__name__)

GENERATOR_VERSION = 3
"""Bumped whenever the same (seed, index) would give a different sample; stored in every sample."""

MANIFEST = ".synth.json"
"""The run's settings (hidden, so that sample listings, which read every *.json, never take it for a sample)."""
_SAMPLE_FILE = re.compile(r"^\d{7}\.(png|npz|json)$")
_TEMPORARY_FILE = re.compile(r"^\..+\.tmp$")


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
    box_shift: float = 0.03
    """Crop shift jitter, fraction of the side, each axis."""
    max_noise: float = 0.02
    """Largest sensor-noise standard deviation (image in [0, 1])."""

    def __post_init__(self) -> None:
        if not 16 <= self.resolution <= 2048:
            raise ValueError(f"resolution: expected 16 to 2048, got {self.resolution}")
        if self.max_pose_tries < 1:
            raise ValueError(f"max_pose_tries: expected >= 1, got {self.max_pose_tries}")
        if self.views not in VIEW_MIXES:
            raise ValueError(f"views: expected one of {', '.join(VIEW_MIXES)}, got {self.views!r}")


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


def generate_sample(index: int, seed: int, config: SynthConfig | None = None) -> tuple[Mould, np.ndarray, dict]:
    """Generate one sample.

    Args:
        index: the sample's number.
        seed: the dataset's seed; ``(seed, index)`` determines the sample.
        config: generation settings.

    Returns:
        (mould with ground-truth normals and the image, image (N, N, 3) uint8, JSON-ready parameters).
    """
    from mould.datasets.appearance import background, skin_material
    from mould.datasets.atlas import body_atlas
    from mould.datasets.bodies import body_bank, posed_bodies
    from mould.datasets.clothing import garment_surfaces, sample_outfit
    from mould.datasets.collisions import body_collisions
    from mould.datasets.hair import hair_surfaces, sample_hairstyle
    from mould.datasets.poses import UPRIGHT_FAMILIES, pose_deltas, sample_pose
    from mould.datasets.render import render_scene, sample_lighting
    from mould.datasets.shells import Surface, vertex_normals

    config = config or SynthConfig()
    rng = np.random.default_rng([int(seed), int(index)])
    phenotype = sample_phenotype(rng)
    arrays = {k: np.array([v]) for k, v in phenotype.items()}
    tries = 0
    while True:  # redraw poses whose limbs pass through each other, up to max_pose_tries
        tries += 1
        family, pose = sample_pose(rng)
        body = posed_bodies(arrays, pose_deltas(pose, body_bank().bone_labels)[None])
        collisions = body_collisions(body.vertices[0], body.bone_heads[0])
        if not collisions or tries == config.max_pose_tries:
            break
    vertices = body.vertices[0]
    labels = body_bank().bone_labels
    heads = {
        name: body.bone_heads[0][labels.index(name)]
        for name in ("upperleg01.L", "upperleg01.R", "foot.L", "foot.R")
    }
    atlas = body_atlas()
    normals = vertex_normals(vertices, atlas.faces)

    skin = skin_material(rng)
    outfit = sample_outfit(rng, upright=family in UPRIGHT_FAMILIES)
    hairstyle = sample_hairstyle(rng)
    surfaces = [(Surface(vertices, atlas.faces, atlas.rest, normals), skin)]
    for garment in outfit:
        surfaces += [(s, garment.material) for s in garment_surfaces(garment, atlas, vertices, normals, heads)]
    surfaces += [(s, hairstyle.material) for s in hair_surfaces(hairstyle, atlas, vertices, normals)]

    everything = np.concatenate([s.vertices for s, _ in surfaces])
    extent = float(np.max(everything.max(axis=0) - everything.min(axis=0)))
    yaw = sample_yaw(rng, config.views)
    elevation = float(np.clip(rng.normal(5, 10), *config.elevation))
    distance = float(rng.uniform(*config.distance_factor) * extent)
    zoomed_out = rng.uniform() < config.zoom_out
    box_scale = float(rng.uniform(*(config.zoom_out_scale if zoomed_out else config.box_scale)))
    box_shift = (float(rng.uniform(-1, 1) * config.box_shift), float(rng.uniform(-1, 1) * config.box_shift))
    camera = frame_points(
        everything,
        config.resolution,
        yaw_deg=yaw,
        elevation_deg=elevation,
        distance=distance,
        box_scale=box_scale,
        box_shift=box_shift,
    )
    lighting = sample_lighting(rng, camera)
    images = list(config.backgrounds)
    backdrop, backdrop_info = background(config.resolution, rng, images, clutter=config.clutter)
    noise = float(rng.uniform(0, config.max_noise))
    mould, image = render_scene(surfaces, camera, lighting, backdrop, noise=noise, rng=rng)
    params = {
        "source": "synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "index": int(index),
        "phenotype": phenotype,
        "pose": {"family": family, "angles": pose, "tries": tries, "collisions": collisions},
        "outfit": [garment.to_dict() for garment in outfit],
        "hair": hairstyle.to_dict(),
        "skin": skin.to_dict(),
        "camera": {
            "yaw_deg": yaw,
            "elevation_deg": elevation,
            "distance": distance,
            "box_scale": box_scale,
            "box_shift": list(box_shift),
            **camera.to_dict(),
        },
        "lighting": {"ambient": list(lighting.ambient), "lights": [vars(light) for light in lighting.lights]},
        "background": backdrop_info,
        "noise": noise,
    }
    return mould, image, params


# -- many samples -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SynthSummary:
    """What :func:`synthesize` did."""

    requested: int
    written: int
    skipped: int
    seconds: float
    """Wall-clock time, worker start-up included."""
    cpu_seconds: float = 0.0
    """CPU time of this process and its workers (user + system), start-up included."""
    failed: list[str] = field(default_factory=list)

    @property
    def samples_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    @property
    def samples_per_cpu_second(self) -> float:
        """Samples per second of one core's time: the throughput per core, even on a shared machine."""
        return self.written / self.cpu_seconds if self.cpu_seconds > 0 else 0.0


def sample_name(index: int) -> str:
    return f"{index:07d}"


def _manifest(seed: int, config: SynthConfig) -> dict:
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "resolution": config.resolution,
        "views": config.views,
        "backgrounds": [str(p) for p in config.backgrounds],
    }


def check_output_folder(outdir: Path, seed: int, config: SynthConfig, *, force: bool) -> None:
    """Refuse a folder holding foreign files or another run's samples, unless ``force``.

    Raises:
        InputError: naming the first foreign file, or the setting that differs.
    """
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir}: exists and is not a folder")
    if not outdir.is_dir() or force:
        return
    for path in sorted(outdir.iterdir()):
        if path.name == MANIFEST or _SAMPLE_FILE.match(path.name) or _TEMPORARY_FILE.match(path.name):
            continue
        raise InputError(f"{outdir}: holds a file that mould synth did not write ({path.name}); use --force")
    manifest_path = outdir / MANIFEST
    if manifest_path.is_file():
        try:
            previous = json.loads(manifest_path.read_text())
        except ValueError:
            raise InputError(f"{manifest_path}: unreadable; use --force to overwrite") from None
        current = _manifest(seed, config)
        for key in ("generator_version", "seed", "resolution", "views"):
            if previous.get(key) != current[key]:
                raise InputError(
                    f"{outdir}: holds samples made with {key} = {previous.get(key)}, not {current[key]}; "
                    "use another folder or --force"
                )


def is_complete(outdir: Path, index: int, seed: int, resolution: int) -> bool:
    """Whether sample ``index`` of this run is already there: its three files exist and its JSON names this
    seed, index, resolution and generator version.

    The JSON is written last and atomically, so a readable JSON means the PNG and NPZ were written whole;
    damage done afterwards is the loader's business (it skips and counts corrupt samples).
    """
    name = sample_name(index)
    if not all((outdir / f"{name}{suffix}").is_file() for suffix in (".png", ".npz")):
        return False
    try:
        params = json.loads((outdir / f"{name}.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        params.get("seed") == seed
        and params.get("index") == index
        and params.get("generator_version") == GENERATOR_VERSION
        and params.get("camera", {}).get("resolution") == resolution
    )


_WORKER: dict = {}


def _init_worker(outdir: str, seed: int, config: SynthConfig) -> None:
    import torch

    torch.set_num_threads(1)  # one core per worker; also keeps float results independent of thread count
    from mould.datasets.atlas import body_atlas
    from mould.datasets.bodies import body_bank

    # The bank may be made from anny on first use, and NVIDIA Warp (under anny) prints banners: keep the
    # terminal for the progress bar. body_atlas() runs the first forward pass.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        body_bank()
        body_atlas()
    _WORKER.update(outdir=Path(outdir), seed=seed, config=config)


def _make_one(index: int) -> tuple[int, str | None]:
    from mould.datasets.samples import write_sample

    try:
        mould, image, params = generate_sample(index, _WORKER["seed"], _WORKER["config"])
        write_sample(_WORKER["outdir"], sample_name(index), mould, image, params)
    except Exception as error:  # a failed sample must not stop the run; it is reported in the summary
        log.exception("sample %d failed", index)
        return index, f"{type(error).__name__}: {error}"
    return index, None


def synthesize(
    outdir: str | os.PathLike,
    count: int,
    seed: int = 0,
    config: SynthConfig | None = None,
    *,
    workers: int = 1,
    force: bool = False,
    progress: bool = True,
) -> SynthSummary:
    """Generate samples ``0 .. count-1`` into ``outdir``, skipping those already complete.

    Args:
        outdir: the output folder (created).
        count: how many samples the folder should hold.
        seed: the dataset's seed.
        config: generation settings.
        workers: worker processes (1 runs in this process).
        force: accept a folder holding other files or another run's samples (samples of another seed,
            resolution or generator version are regenerated where the names collide; foreign files are
            left alone).
        progress: show a tqdm progress bar on stderr.

    Raises:
        InputError: bad count or workers, or a refused folder (see :func:`check_output_folder`).
    """
    from tqdm import tqdm

    config = config or SynthConfig()
    if count < 1:
        raise InputError(f"--count: expected >= 1, got {count}")
    if workers < 1:
        raise InputError(f"--workers: expected >= 1, got {workers}")
    outdir = Path(outdir)
    check_output_folder(outdir, seed, config, force=force)
    outdir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_manifest(seed, config), indent=1).encode()
    write_atomic(outdir / MANIFEST, lambda handle: handle.write(text))
    todo = [i for i in range(count) if not is_complete(outdir, i, seed, config.resolution)]
    skipped = count - len(todo)
    failed: list[str] = []
    start = time.perf_counter()
    cpu_start = _cpu_seconds()
    bar = tqdm(total=len(todo), unit="sample", disable=not progress, desc="synth")
    if workers == 1 or len(todo) <= 1:
        import torch

        threads = torch.get_num_threads()
        try:
            _init_worker(str(outdir), seed, config)
            for index in todo:
                _, error = _make_one(index)
                if error:
                    failed.append(f"{sample_name(index)}: {error}")
                bar.update(1)
        finally:
            torch.set_num_threads(threads)
    else:
        context = multiprocessing.get_context("spawn")  # fork after torch threads start can deadlock
        with context.Pool(workers, initializer=_init_worker, initargs=(str(outdir), seed, config)) as pool:
            for index, error in pool.imap_unordered(_make_one, todo, chunksize=4):
                if error:
                    failed.append(f"{sample_name(index)}: {error}")
                bar.update(1)
    bar.close()
    seconds = time.perf_counter() - start
    return SynthSummary(
        requested=count,
        written=len(todo) - len(failed),
        skipped=skipped,
        seconds=seconds,
        cpu_seconds=_cpu_seconds() - cpu_start,
        failed=failed,
    )


def _cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children (pool workers)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

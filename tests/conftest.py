"""Shared fixtures. The anny model is built once per test session (its first build takes ~35-60 s)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("WARP_QUIET", "1")


@pytest.fixture(autouse=True, scope="session")
def onnx_cache(tmp_path_factory) -> Path:
    """The ONNX exports of the session's reconstructions go to a folder of the session, not the user's cache."""
    from mould.models import runtime

    folder = tmp_path_factory.mktemp("onnx-cache")
    patch = pytest.MonkeyPatch()
    patch.setattr(runtime, "cache_folder", lambda: folder)
    yield folder
    patch.undo()


@pytest.fixture(scope="session")
def anny_body() -> tuple[np.ndarray, np.ndarray]:
    """One anny body in its rest pose, world frame (+Y up, facing +Z): (vertices (V, 3), faces (F, 3))."""
    from mould.datasets.bodies import anny_body as make_body

    return make_body()


@pytest.fixture(scope="session")
def generated_people(tmp_path_factory) -> list[tuple[np.ndarray, np.ndarray]]:
    """Three of the generator's people (anny bodies, clothed, on its backgrounds): (photo (256, 256, 3) uint8,
    true mask (256, 256) bool) each."""
    from mould.datasets.synth_folder import synthesize
    from mould.datasets.synthetic import SynthConfig

    from mould.container import Mould
    from mould.images import load_photo

    folder = tmp_path_factory.mktemp("people")
    synthesize(folder, 3, seed=123, config=SynthConfig(), progress=False)
    pngs = sorted(folder.glob("*.png"))
    return [(load_photo(png).rgb, Mould.load(png.with_suffix(".npz")).mask) for png in pngs]


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """(3, 3) uniformly random proper rotation (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test: small tensors, where per-op overhead dominates and a second thread
    only adds contention on shared machines. Modules opt in with ``pytestmark``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def randomised_legacy_state(config, generator):
    """A format-1 state dict (:mod:`mould.models.legacy`) of ``config`` with random weights, biases and
    BatchNorm statistics, so that every fold matters: name -> float32 tensor."""
    from mould.models.legacy import legacy_network

    state = {}
    for name, value in legacy_network(config).state_dict().items():
        if not value.is_floating_point():
            state[name] = value
        elif name.endswith("running_var"):
            state[name] = 0.5 + torch.rand(value.shape, generator=generator)
        else:
            state[name] = torch.randn(value.shape, generator=generator) * 0.3
    return state


# -- training data and runs (training, evaluation, resume, GPU and packing tests) -----------------------
RESOLUTION = 64


def make_samples(
    folder: Path,
    count: int,
    seed: int = 0,
    resolution: int = RESOLUTION,
    source_meshes: bool = False,
    back_colour: bool = False,
) -> Path:
    """Write ``count`` capsule samples into ``folder`` (the on-disk sample format); returns ``folder``.

    With ``source_meshes``, each capsule is also written as ``NAME.ply`` and named in the JSON (``"mesh"``).
    With ``back_colour``, each holds a back colour: the front's shading in the complementary colour.
    """
    import trimesh
    from mould.datasets.samples import write_sample

    from mould.encode import encode_mesh
    from mould.framing import frame_points

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        mesh = trimesh.creation.capsule(
            height=rng.uniform(0.8, 1.4), radius=rng.uniform(0.15, 0.3), count=[16, 16]
        )
        mesh.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))  # stand up (+Y)
        mesh.apply_scale([rng.uniform(0.7, 1.3), 1, rng.uniform(0.6, 1.0)])
        yaw = float(rng.uniform(-40, 40))
        camera = frame_points(mesh.vertices, resolution, yaw_deg=yaw)
        mould = encode_mesh(mesh.vertices, mesh.faces, camera, normals=True).mould
        shade = np.clip(-mould.visible_normals[..., 2], 0, 1)[..., None] * rng.uniform(0.3, 1.0, 3)
        image = np.where(mould.mask[..., None], shade, rng.uniform(0, 0.3, 3))
        if back_colour:
            back = np.where(mould.mask[..., None], 1 - shade, 0)
            mould = mould.replace(back_image=(back * 255).astype(np.uint8))
        params = {"source": "test-capsule", "camera": {"yaw_deg": yaw}}
        if source_meshes:
            mesh.export(folder / f"s{i:04d}.ply")
            params["mesh"] = f"s{i:04d}.ply"
        write_sample(folder, f"s{i:04d}", mould, (image * 255).astype(np.uint8), params)
    return folder


# One thread: these machines are shared, and two OpenMP threads on two busy cores run many times slower.
TINY = ["--config", "tiny", "--workers", "0", "--batch-size", "2", "--log-every", "1", "--threads", "1"]


def metrics(run: Path) -> list[dict]:
    with (run / "metrics.csv").open() as file:
        return list(csv.DictReader(file))


# -- analytic depth maps (depth, losses) -------------------------------------------------------------
def pixel_grid(side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows v and columns u of a side x side crop, float64."""
    index = torch.arange(side, dtype=torch.float64)
    return torch.meshgrid(index, index, indexing="ij")


def sphere_maps(side: int, *, radius: float, distance: float, focal: float, perspective: bool):
    """Analytic visible/hidden depth (float64, metres) and mask of a sphere centred on the optical axis."""
    centre = (side - 1) / 2
    v, u = torch.meshgrid(
        torch.arange(side, dtype=torch.float64), torch.arange(side, dtype=torch.float64), indexing="ij"
    )
    x, y = (u - centre) / focal, (v - centre) / focal
    if perspective:  # |t (x, y, 1) - (0, 0, d)| = r, depth = t
        norm2 = x**2 + y**2 + 1
        disc = distance**2 - norm2 * (distance**2 - radius**2)
        root = disc.clamp(min=0).sqrt()
        near, far = (distance - root) / norm2, (distance + root) / norm2
    else:
        disc = radius**2 - x**2 - y**2
        root = disc.clamp(min=0).sqrt()
        near, far = distance - root, distance + root
    mask = disc > 0
    return torch.where(mask, near, 0.0), torch.where(mask, far, 0.0), mask, (focal, centre, centre)


# -- photos of a person-like figure (framing) ----------------------------------------------------------------
def person_figure(n: int) -> np.ndarray:
    """(n, n) bool: a person-like silhouette (head, torso, arms and legs apart, so with the hollows of a body)
    filling the height of an n x n square; the framing search refuses convex blobs (no hollows)."""
    rows, cols = np.mgrid[0:n, 0:n] / n
    parts = [((0.5, 0.2), (0.06, 0.07)), ((0.5, 0.42), (0.1, 0.17)), ((0.38, 0.42), (0.035, 0.16))]
    parts += [((0.62, 0.42), (0.035, 0.16)), ((0.44, 0.72), (0.04, 0.18)), ((0.56, 0.72), (0.04, 0.18))]
    return np.any([((cols - cx) / rx) ** 2 + ((rows - cy) / ry) ** 2 <= 1 for (cx, cy), (rx, ry) in parts], axis=0)

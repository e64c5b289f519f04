"""The representation experiment: how much surface error a mould and a voxel grid of equal size leave.

For a dimensionality D (the count of numbers stored):

- a **mould** of N x N pixels stores 2N² depths (the mask is implied by them), so N = round(sqrt(D / 2)); the
  mesh is encoded by ray casting with the default perspective camera framing it tightly (2 % margin), and
  reconstructed with a mesher (stitching by default, keeping every component);
- a **voxel grid** of V³ cells stores V³ occupancies, so V = round(D ** (1/3)); the grid is the mesh's
  bounding box made a cube (tight, the fairest framing for voxels), a cell is occupied when its centre is
  inside the mesh, and the surface is extracted by marching cubes at level 0.5 (PyMCubes, the optional extra
  ``mould[bench]``).

The error is the mean symmetric surface error (:func:`mould.recon.metrics.surface_error_mm`: Chamfer-L1 with
point-to-surface distances, both directions averaged), in mm. ``mould bench representation`` runs it over
anny bodies and writes its table, JSON and figure (:mod:`mould.benchmarks.representation_report`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mould.checks import check_option
from mould.errors import InputError, MouldError
from mould.limits import LIMITS
from mould.recon.mesh import MESHERS, Mesher

log = logging.getLogger(__name__)


TALK_DIMENSIONALITIES = (64, 256, 1_024, 4_096, 16_384, 131_072, 1_048_576, 8_388_608)
"""The dimensionalities of the table in the Moulding Humans talk (DEVIEW 2019)."""

TALK_ERRORS_MM = {
    64: (105, 250),
    256: (50, 150),
    1_024: (25, 80),
    4_096: (15, 45),
    16_384: (8, 25),
    131_072: (6, 15),
    1_048_576: (5, 10),
    8_388_608: (4.5, 7),
}
"""Dimensionality -> (mould error, voxel error) in mm, as read from the talk's table."""

POISSON_MAX_SIDE = 512
"""Largest mould side meshed with Poisson in this experiment."""

FRAME_MARGIN = 0.02
"""Free border of the mould's crop, as a fraction of its side: tight, like the voxel grid's cube."""


@dataclass(frozen=True)
class BenchRepresentationConfig:
    """Options of ``mould bench representation``."""

    outdir: Path = Path("out/bench_representation")
    """Folder for representation.md, .json and .png."""
    meshes: Path | None = None
    """A folder of closed meshes (metres, +Y up) to use instead of anny bodies."""
    count: int = 4
    """Anny bodies to generate (or the first meshes of the folder)."""
    seed: int = 0
    """Seed of the bodies' phenotypes and poses."""
    mesher: Mesher = "stitch"
    """How moulds are meshed back: ``stitch`` (fast at every size) or ``poisson`` (moulds over 512² skipped)."""
    dimensionalities: tuple[int, ...] = TALK_DIMENSIONALITIES
    """Numbers stored per representation (mould: 2N², voxels: V³), the talk's by default."""
    samples: int = 50_000
    """Surface samples per mesh for the error (std. error of a mean ~0.5 %)."""
    plot: bool = True
    """Draw the log-log PNG."""

    def __post_init__(self) -> None:
        check_option("--count", self.count, 1, 1000)
        check_option("--seed", self.seed, 0, 2**63 - 1)
        if self.mesher not in MESHERS:
            raise InputError(f"--mesher: expected stitch or poisson, got {self.mesher}")
        if not self.dimensionalities or min(self.dimensionalities) < 8 or max(self.dimensionalities) > 2**25:
            raise InputError("--dimensionalities: expected values from 8 to 33,554,432")
        check_option("--samples", self.samples, 1000, LIMITS.metric_samples)
        if self.meshes is not None and not self.meshes.is_dir():
            raise InputError(f"--meshes: {self.meshes} is not a folder")


def mould_side(dimensionality: int) -> int:
    """N with 2N² closest to ``dimensionality`` (at least 2)."""
    return max(2, round(math.sqrt(dimensionality / 2)))


def voxel_side(dimensionality: int) -> int:
    """V with V³ closest to ``dimensionality`` (at least 2)."""
    return max(2, round(dimensionality ** (1 / 3)))


def _parity_along(scene, centres: np.ndarray, axis: int, start: float) -> np.ndarray:
    """(side, side, side) bool, indexed [x, y, z]: cell centres with an odd number of mesh crossings before
    them on a ray along ``axis`` through their row of cells."""
    import open3d as o3d

    side = centres.shape[1]
    across = [a for a in range(3) if a != axis]
    first, second = np.meshgrid(centres[across[0]], centres[across[1]], indexing="ij")
    rays = np.zeros((side * side, 6), np.float32)
    rays[:, across[0]], rays[:, across[1]] = first.reshape(-1), second.reshape(-1)
    rays[:, axis], rays[:, 3 + axis] = start, 1.0
    hits = scene.list_intersections(o3d.core.Tensor(rays))
    splits = hits["ray_splits"].numpy().astype(np.int64)  # unsigned in open3d: cast before arithmetic
    ray_of_hit = np.repeat(np.arange(side * side), np.diff(splits))
    position = start + hits["t_hit"].numpy().astype(np.float64)
    # A ray through an edge hits both triangles sharing it at the same t: count that crossing once.
    order = np.lexsort((position, ray_of_hit))
    ray_of_hit, position = ray_of_hit[order], position[order]
    repeat = np.zeros(len(order), bool)
    repeat[1:] = (ray_of_hit[1:] == ray_of_hit[:-1]) & (np.diff(position) < 1e-7)
    ray_of_hit, position = ray_of_hit[~repeat], position[~repeat]
    # Crossings before each cell centre: a +1 at the first centre past each crossing, summed along the ray.
    first_past = np.searchsorted(centres[axis], position, side="right")
    counts = np.zeros((side * side, side + 1), np.int32)
    np.add.at(counts, (ray_of_hit, first_past), 1)
    inside = ((np.cumsum(counts[:, :side], axis=1) % 2) == 1).reshape(side, side, side)
    return np.moveaxis(inside, 2, axis)  # the ray's axis was last: put it back in place


def voxel_occupancy(vertices: np.ndarray, faces: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Which cells of a cube grid around a closed mesh have their centre inside it.

    Rays along each axis through every row of cell centres count the mesh's crossings; a centre is inside
    when an odd number lies before it (parity, exact for a watertight mesh). The three axes vote: a ray
    grazing the mesh along an edge (a body's symmetry plane through a row of centres, seen at 203³) can
    miscount and flip the rest of its row; two other directions outvote it.

    Args:
        vertices: (V, 3) float, metres; faces: (F, 3) int; a closed mesh.
        side: cells along each axis.

    Returns:
        occupancy: (side, side, side) bool indexed [x, y, z];
        origin: (3,) float64, the centre of cell [0, 0, 0], metres;
        cell: the cells' width, metres.
    """
    import open3d as o3d

    vertices = np.asarray(vertices, dtype=np.float64)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    cell = float(np.max(high - low)) / side
    origin = (low + high) / 2 - cell * (side - 1) / 2
    centres = origin[:, None] + cell * np.arange(side)[None, :]  # (3, side)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32)))
    start = float(low.min()) - 1.0
    votes = sum(_parity_along(scene, centres, axis, start).astype(np.int8) for axis in range(3))
    return votes >= 2, origin, cell


def marching_cubes_module():
    """PyMCubes' ``mcubes``, an optional dependency that only this experiment needs.

    Raises:
        MouldError: PyMCubes is not installed; the message says how to install it.
    """
    try:
        import mcubes
    except ImportError:
        raise MouldError("the representation benchmark needs PyMCubes: pip install 'mould[bench]'") from None
    return mcubes


def occupancy_to_mesh(occupancy: np.ndarray, origin: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes (level 0.5) of a binary grid padded with empty cells; faces wound outwards.

    Args:
        occupancy: (X, Y, Z) bool, indexed [x, y, z], as :func:`voxel_occupancy` gives it.
        origin: (3,) float, the centre of cell [0, 0, 0], metres; cell: the cells' width, metres.

    Returns:
        vertices: (M, 3) float64, metres (cell [i, j, k]'s centre is ``origin + cell * (i, j, k)``);
        faces: (K, 3) int64; both empty when no cell is occupied.
    """
    padded = np.pad(occupancy.astype(np.float32), 1)
    vertices, faces = marching_cubes_module().marching_cubes(padded, 0.5)
    if len(faces) == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    vertices = origin + cell * (vertices - 1)
    faces = faces.astype(np.int64)
    corners = vertices[faces]
    volume = np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum()
    if volume < 0:  # PyMCubes winds faces inwards for a solid whose inside is above the level
        faces = faces[:, ::-1]
    return vertices, faces


@dataclass(frozen=True)
class RepresentationResult:
    """One mesh at one dimensionality.

    Attributes:
        dimensionality: the requested D.
        mould_side, voxel_side: N and V.
        mould_error_mm, voxel_error_mm: mean symmetric surface error; NaN when nothing was reconstructed
            (too few pixels or cells inside the body).
        mould_seconds, voxel_seconds: time to encode, reconstruct and measure.
    """

    dimensionality: int
    mould_side: int
    voxel_side: int
    mould_error_mm: float
    voxel_error_mm: float
    mould_seconds: float
    voxel_seconds: float


def mould_error(
    vertices: np.ndarray, faces: np.ndarray, side: int, *, mesher: Mesher = "stitch", samples: int = 50_000
) -> float:
    """Surface error (mm) of a mesh encoded as an N x N mould and meshed back; NaN if nothing is left, or
    for Poisson beyond :data:`POISSON_MAX_SIDE` (millions of points: minutes per mesh, and the octree, not
    the mould, would set the error).

    Args:
        vertices: (V, 3) float64, metres, world frame (+Y up, facing +Z); faces: (F, 3) int64; a closed mesh.
        side: N, the mould's side in pixels.
        mesher: ``stitch`` (every component kept) or ``poisson``.
        samples: surface samples per mesh for the error.
    """
    # Imported here, like every meshing module, so that `mould bench --help` (which reads the config above)
    # loads numpy only.
    from mould.encode import encode_mesh
    from mould.framing import frame_points
    from mould.recon.mesh import mould_to_mesh
    from mould.recon.metrics import surface_error_mm
    from mould.recon.stitch import StitchConfig, stitch_mould

    if mesher == "poisson" and side > POISSON_MAX_SIDE:
        log.warning("mould %dx%d: skipped with Poisson (over %d²)", side, side, POISSON_MAX_SIDE)
        return math.nan
    camera = frame_points(vertices, side, margin=FRAME_MARGIN)
    mould = encode_mesh(vertices, faces, camera, normals=mesher == "poisson").mould
    try:
        if mesher == "stitch":
            # Straight to the stitcher, every component kept: at 23² or 45² a silhouette falls apart into
            # pieces (a hand, a foot) that are still the body (keeping only the largest doubles the error
            # of a walking body at 45²); a 6 x 6 mould also has fewer pixels than a photo's check asks for.
            recon_vertices, recon_faces = stitch_mould(mould, StitchConfig(keep="all"))
        else:
            mesh = mould_to_mesh(mould, mesher=mesher)
            recon_vertices, recon_faces = mesh.vertices, mesh.faces
    except MouldError as error:  # too few pixels at tiny N
        log.info("mould %dx%d: %s", side, side, error)
        return math.nan
    return surface_error_mm((recon_vertices, recon_faces), (vertices, faces), samples=samples)


def voxel_error(vertices: np.ndarray, faces: np.ndarray, side: int, *, samples: int = 50_000) -> float:
    """Surface error (mm) of a mesh voxelised on a V³ grid and marched back; NaN if no cell is inside.

    Args:
        vertices: (V, 3) float64, metres; faces: (F, 3) int64; a closed mesh.
        side: V, cells along each axis of the grid.
        samples: surface samples per mesh for the error.
    """
    from mould.recon.metrics import surface_error_mm

    occupancy, origin, cell = voxel_occupancy(vertices, faces, side)
    marched, marched_faces = occupancy_to_mesh(occupancy, origin, cell)
    if len(marched_faces) == 0:
        log.info("voxels %d³: no cell centre lies inside the mesh", side)
        return math.nan
    return surface_error_mm((marched, marched_faces), (vertices, faces), samples=samples)


def compare_representations(
    vertices: np.ndarray,
    faces: np.ndarray,
    dimensionalities: tuple[int, ...] = TALK_DIMENSIONALITIES,
    *,
    mesher: Mesher = "stitch",
    samples: int = 50_000,
) -> list[RepresentationResult]:
    """Mould and voxel errors of one closed mesh per dimensionality.

    Args:
        vertices: (V, 3) float, metres, world frame (+Y up, facing +Z); faces: (F, 3) int; a closed mesh.
        dimensionalities: numbers stored per representation (see :func:`mould_side`, :func:`voxel_side`).
        mesher: ``stitch`` or ``poisson``, how moulds are meshed back.
        samples: surface samples per mesh for each error.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    results = []
    for dimensionality in dimensionalities:
        n, v = mould_side(dimensionality), voxel_side(dimensionality)
        start = time.perf_counter()
        m_error = mould_error(vertices, faces, n, mesher=mesher, samples=samples)
        middle = time.perf_counter()
        v_error = voxel_error(vertices, faces, v, samples=samples)
        end = time.perf_counter()
        results.append(RepresentationResult(dimensionality, n, v, m_error, v_error, middle - start, end - middle))
    return results

"""Screened Poisson surface reconstruction (Kazhdan & Hoppe 2013) of an oriented point cloud, made watertight.

Two backends behind one call, :func:`points_to_mesh`: pymeshlab's
``generate_surface_reconstruction_screened_poisson`` (the default) and open3d's
``TriangleMesh.create_from_point_cloud_poisson``. Both solve for an indicator function on an octree of
``depth`` levels and extract its level set, which is closed wherever the octree reaches.

**Cleanup without holes.** The usual trim (deleting faces of low sample density) opens holes. Instead:

1. keep the largest connected component (Poisson leaves small floating blobs away from the data);
2. find *spurious* surface: faces all of whose vertices lie farther than ``trim_distance`` from every input
   point (Poisson's guesses where there are no samples), grouped into connected patches;
3. cut each patch out and close the hole it leaves with pymeshlab's hole filler, a minimal patch spanning
   the cut's rim; keep the result only if it is watertight and manifold, else keep the untrimmed mesh;
4. merge vertices closer than ``weld_distance`` (the level set makes a few micrometre-short edges, which
   files and their readers would collapse into pinches), again only if the result stays watertight.

Holes the level set leaves where it meets the octree's box (samples with a gap) are closed like trimmed ones.

The mesh returned is one watertight, edge-manifold, consistently oriented surface, or a
:class:`mould.errors.MouldError` says why not.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
from mould.recon.mesh import compact, largest_component, topology

from mould.checks import check_array
from mould.errors import MouldError

log = logging.getLogger(__name__)

Backend = Literal["pymeshlab", "open3d"]
BACKENDS: tuple[Backend, ...] = ("pymeshlab", "open3d")


@dataclass(frozen=True)
class PoissonConfig:
    """Options of screened Poisson meshing."""

    backend: Backend = "pymeshlab"
    """``pymeshlab`` (the default, Kazhdan's reference code) or ``open3d``."""
    depth: int = 7
    """Octree depth, by measurement (``mould bench mesh``, 3 anny bodies at 256², docs/meshing.md):
    depth 7 (128 cells across the bounding cube, ~15 mm) meshes in 0.65 s with P2S 1.2 / 1.9 mm; depth 8
    matches the samples' ~7 mm spacing and gains 0.3-0.4 mm for 2.2 s, past the 1 s budget; depths
    9-10 give depth 8's mesh, since ``samples_per_node`` stops the octree there. A predicted mould is
    centimetres off, so the finer octree buys nothing a user could see."""
    full_depth: int = 4
    """pymeshlab ``fulldepth``: the octree is complete down to this depth and adaptive below. 4 rather than
    Kazhdan's 5 saves 0.3 s of the 1.0 s solve at depth 7 for the same mesh (P2S within 0.01 mm)."""
    iterations: int = 4
    """pymeshlab ``iters``: Gauss-Seidel relaxations per octree level. 4 rather than Kazhdan's 8 saves 0.07 s
    of the solve at depth 7 and moves the surface by 0.03-0.04 mm (measured on 6 predicted moulds)."""
    point_weight: float = 4.0
    """Screening weight (pymeshlab ``pointweight``, open3d has none): how strongly the surface is pulled to
    pass through the points; 4 is Kazhdan & Hoppe's default."""
    samples_per_node: float = 1.5
    """pymeshlab: minimum number of samples per octree node (noise-free moulds need no more averaging)."""
    threads: int = 1
    """Worker threads of the backend. One, measured on the shared 2-core machine (anny body, 256², depth 8):
    pymeshlab with 1 thread took 3.1 s of CPU (6 s wall under load 7); with 2 threads its OpenMP workers
    spin while other processes hold the cores, 12-51 s of CPU (25-100 s wall), unless ``OMP_WAIT_POLICY``
    was ``PASSIVE`` before the first OpenMP library loaded (torch loads one). open3d: 1.5 s either way."""
    trim_distance: float = 0.03
    """Metres: a face whose vertices all lie farther than this from every input point is spurious surface
    (3 cm is ~4 pixel footprints at 256², well beyond the ~1 mm the surface keeps from real samples)."""
    trim: bool = True
    """Cut spurious surface out and close the holes it leaves (see the module doc)."""
    weld_distance: float = 1e-5
    """Metres: vertices closer than this are merged. The level set puts two vertices a few micrometres apart
    where it passes near an octree corner (~100 edges under 10 µm on a body at depth 8); files round
    positions to 1 µm and readers merge equal ones, which would pinch the surface there."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {BACKENDS}, got {self.backend!r}")
        if not 4 <= self.depth <= 12:
            raise ValueError(f"depth: expected 4 to 12, got {self.depth}")
        if not 1 <= self.full_depth <= self.depth:
            raise ValueError(f"full_depth: expected 1 to depth ({self.depth}), got {self.full_depth}")
        if self.iterations < 1:
            raise ValueError(f"iterations: expected >= 1, got {self.iterations}")
        if not self.point_weight >= 0:
            raise ValueError(f"point_weight: expected >= 0, got {self.point_weight}")
        if not self.weld_distance >= 0:
            raise ValueError(f"weld_distance: expected >= 0, got {self.weld_distance}")
        if not self.trim_distance > 0:
            raise ValueError(f"trim_distance: expected > 0, got {self.trim_distance}")
        if self.threads < 1:
            raise ValueError(f"threads: expected >= 1, got {self.threads}")


def _quiet_openmp() -> None:
    # Measured on a shared 2-core machine: with the default (active) OpenMP wait policy, pymeshlab's Poisson
    # spins while other processes hold the cores and burns 5-8x the CPU time (24 s instead of 3 s at depth
    # 8). A passive wait costs nothing on an idle machine. It must be set before the runtime loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _restores_cwd(function):
    """Run ``function`` and put the process back in its working folder, whatever happens.

    Measured with pymeshlab 2025.7: when a filter fails, pymeshlab leaves the process in a Qt temporary
    folder that it has deleted, which breaks every later relative path (and multiprocessing's spawn) in a
    batch that goes on past the failure.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        cwd = os.getcwd()
        try:
            return function(*args, **kwargs)
        finally:
            os.chdir(cwd)

    return wrapper


@_restores_cwd
def _pymeshlab_poisson(points: np.ndarray, normals: np.ndarray, config: PoissonConfig):
    _quiet_openmp()
    import pymeshlab

    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(pymeshlab.Mesh(vertex_matrix=points, v_normals_matrix=normals))
    meshes.generate_surface_reconstruction_screened_poisson(
        depth=config.depth,
        pointweight=config.point_weight,
        samplespernode=config.samples_per_node,
        fulldepth=config.full_depth,
        iters=config.iterations,
        threads=config.threads,
        preclean=False,
    )
    mesh = meshes.current_mesh()
    return mesh.vertex_matrix(), mesh.face_matrix()


def _open3d_poisson(points: np.ndarray, normals: np.ndarray, config: PoissonConfig):
    _quiet_openmp()
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    cloud.normals = o3d.utility.Vector3dVector(normals)
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        mesh, _ = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(
            cloud, depth=config.depth, n_threads=config.threads
        )
    return np.asarray(mesh.vertices), np.asarray(mesh.triangles)


def _first_line(error: Exception) -> str:
    """A backend's error as one line of plain text (pymeshlab's span several lines of HTML)."""
    import re

    text = re.sub(r"<[^>]+>", " ", str(error))
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    return "; ".join(lines[:2]) if lines else type(error).__name__


@_restores_cwd
def _close_holes(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import pymeshlab

    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(pymeshlab.Mesh(vertex_matrix=vertices, face_matrix=faces))
    meshes.meshing_close_holes(maxholesize=len(faces), selfintersection=False)
    mesh = meshes.current_mesh()
    return mesh.vertex_matrix(), mesh.face_matrix()


@_restores_cwd
def weld_close_vertices(vertices: np.ndarray, faces: np.ndarray, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices closer than ``distance`` and drop the faces that collapse; the input is returned
    unchanged if that would not leave a watertight surface (or no vertices are that close)."""
    from scipy.spatial import cKDTree

    if not len(cKDTree(vertices).query_pairs(distance)):
        return vertices, faces
    import pymeshlab

    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(pymeshlab.Mesh(vertex_matrix=vertices, face_matrix=faces))
    try:
        meshes.meshing_merge_close_vertices(threshold=pymeshlab.PureValue(distance))
        meshes.meshing_remove_null_faces()
        meshes.meshing_remove_unreferenced_vertices()
    except Exception as error:  # pymeshlab raises its own exception types
        log.info("merging close vertices failed (%s): keeping them", error)
        return vertices, faces
    mesh = meshes.current_mesh()
    merged_vertices, merged_faces = mesh.vertex_matrix(), mesh.face_matrix()
    if not topology(merged_vertices, merged_faces).watertight:
        log.info("merging close vertices would open the surface: keeping them")
        return vertices, faces
    return merged_vertices, merged_faces


def trim_spurious(
    vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, distance: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Cut out faces far from every point and close the holes; returns (vertices, faces, faces cut).

    The cut is undone (0 faces cut) if the closed result is not watertight.
    """
    from scipy.spatial import cKDTree

    far_vertex = cKDTree(points).query(vertices, distance_upper_bound=distance)[0] > distance
    far = far_vertex[faces].all(axis=1)
    if not far.any():
        return vertices, faces, 0
    kept_vertices, kept_faces = compact(vertices, faces[~far])
    try:
        closed_vertices, closed_faces = _close_holes(kept_vertices, kept_faces)
    except Exception as error:  # pymeshlab raises its own exception types
        log.info("closing the trimmed holes failed (%s): keeping the untrimmed surface", error)
        return vertices, faces, 0
    closed_vertices, closed_faces = largest_component(closed_vertices, closed_faces)
    if not topology(closed_vertices, closed_faces).watertight:
        log.info("the trimmed surface did not close: keeping the untrimmed surface")
        return vertices, faces, 0
    return closed_vertices, closed_faces, int(far.sum())


def points_to_mesh(
    points: np.ndarray, normals: np.ndarray, config: PoissonConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Screened Poisson reconstruction of an oriented point cloud, cleaned to one watertight surface.

    Args:
        points: (P, 3) float, metres, any frame.
        normals: (P, 3) float, unit, pointing out of the surface.
        config: options; defaults when None.

    Returns:
        vertices: (V, 3) float32, same frame; faces: (F, 3) int32, wound outwards.

    Raises:
        MouldError: the backend failed, or produced no closed surface.
    """
    config = config or PoissonConfig()
    points = check_array("points", np.asarray(points), (None, 3), "float", finite=True).astype(np.float64)
    normals = check_array("normals", np.asarray(normals), (len(points), 3), "float", finite=True)
    normals = normals.astype(np.float64)
    if len(points) < 4:
        raise MouldError(f"Poisson needs at least 4 oriented points, got {len(points)}")
    run = _pymeshlab_poisson if config.backend == "pymeshlab" else _open3d_poisson
    try:
        vertices, faces = run(points, normals, config)
    except ImportError:
        raise
    except Exception as error:  # backends raise their own exception types; report them as a user error
        raise MouldError(f"Poisson reconstruction failed in {config.backend}: {_first_line(error)}") from None
    if len(faces) == 0:
        raise MouldError(f"Poisson reconstruction ({config.backend}) returned an empty surface")
    vertices, faces = largest_component(np.asarray(vertices, np.float64), np.asarray(faces, np.int64))
    if topology(vertices, faces).boundary_edges:
        # Where samples leave a gap, the level set can run into the octree's bounding box and stop there
        # open (seen with pymeshlab on a sphere missing a cap): close those holes like trimmed ones.
        try:
            vertices, faces = largest_component(*_close_holes(vertices, faces))
        except Exception as error:  # pymeshlab raises its own exception types
            raise MouldError(
                f"Poisson reconstruction ({config.backend}) left holes that could not be closed: {error}"
            ) from None
    if config.trim:
        vertices, faces, cut = trim_spurious(vertices, faces, points, config.trim_distance)
        if cut:
            log.debug("trimmed %d spurious faces and closed the holes", cut)
    if config.weld_distance > 0:
        vertices, faces = weld_close_vertices(vertices, faces, config.weld_distance)
    report = topology(vertices, faces)
    if not report.watertight:
        raise MouldError(
            f"Poisson reconstruction ({config.backend}) did not give a closed surface: {report.boundary_edges} "
            f"boundary and {report.nonmanifold_edges} non-manifold edges"
        )
    return vertices.astype(np.float32), faces.astype(np.int32)

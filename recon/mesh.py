"""The reconstructed :class:`Mesh`, its topology checks, and :func:`mould_to_mesh`, the one entry point.

Frames: a mesh made from a mould lies in the mould's world frame (``camera.cam_to_world``), so the mesh
decoded from an encoded mesh overlays the original. A mould predicted from a photo has a camera whose
world frame is the camera frame itself; turn it +Y up with :func:`camera_to_upright`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from mould.checks import check_array
from mould.container import Mould
from mould.errors import InputError

log = logging.getLogger(__name__)

Mesher = Literal["poisson", "stitch"]
MESHERS: tuple[Mesher, ...] = ("poisson", "stitch")

MIN_PERSON_PIXELS = 16
"""Fewest silhouette pixels worth meshing: below this (a 4 x 4 blob) no surface of a person survives."""

CAMERA_TO_UPRIGHT = np.diag([1.0, -1.0, -1.0])
"""(3, 3) rotation from the OpenCV camera frame (x right, y down, z forward) to the upright frame
(x right, +Y up, +Z towards the viewer): a person facing the camera then faces +Z, as in glTF."""


@dataclass(frozen=True, eq=False)
class Mesh:
    """A triangle mesh with optional texture, as the reconstruction produces it.

    Attributes:
        vertices: (V, 3) float32, metres, in the frame stated by whoever made it (see the module doc).
        faces: (F, 3) int32 indices into ``vertices``, wound counter-clockwise seen from outside.
        uv: optional (V, 2) float32 texture coordinates in [0, 1], OBJ convention (origin at the bottom
            left of ``texture``).
        colors: optional (V, 3) uint8 RGB per vertex (the texture sampled at ``uv`` when both exist).
        texture: optional (H, W, 3) uint8 RGB image that ``uv`` points into.
        metadata: JSON-ready facts about how the mesh was made (mesher, back texture strategy, ...).
        seam_source: optional (V,) int32: for a vertex that repeats another one's position at a texture seam
            (the same point with a second ``uv``), that vertex's index; every other vertex, its own index.
            :meth:`geometry` merges the twins. Equal positions are never merged otherwise: a mould's zero
            thickness puts a front and a back vertex at one point, and they must stay apart.
    """

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray | None = None
    colors: np.ndarray | None = None
    texture: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)
    seam_source: np.ndarray | None = None

    def __post_init__(self) -> None:
        vertices = check_array("vertices", np.asarray(self.vertices), (None, 3), "float", finite=True)
        faces = check_array("faces", np.asarray(self.faces), (None, 3), "int")
        if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
            raise ValueError(f"faces: indices must lie in [0, {len(vertices) - 1}]")
        object.__setattr__(self, "vertices", vertices.astype(np.float32, copy=False))
        object.__setattr__(self, "faces", faces.astype(np.int32, copy=False))
        if self.uv is not None:
            uv = check_array("uv", np.asarray(self.uv), (len(vertices), 2), "float", finite=True)
            object.__setattr__(self, "uv", uv.astype(np.float32, copy=False))
        if self.colors is not None:
            check_array("colors", np.asarray(self.colors), (len(vertices), 3), np.uint8)
        if self.texture is not None:
            check_array("texture", np.asarray(self.texture), (None, None, 3), np.uint8)
            if self.uv is None:
                raise ValueError("texture: a texture needs uv coordinates")
        if self.seam_source is not None:
            source = check_array("seam_source", np.asarray(self.seam_source), (len(vertices),), "int")
            if len(source) and (source.min() < 0 or source.max() >= len(vertices)):
                raise ValueError(f"seam_source: indices must lie in [0, {len(vertices) - 1}]")
            object.__setattr__(self, "seam_source", source.astype(np.int32, copy=False))

    def seams(self) -> tuple[np.ndarray, np.ndarray]:
        """How seam twins merge: (kept (U,) int64, the vertex each merged position comes from; position_of
        (V,) int64, the merged position of each vertex). Without ``seam_source``, both are the identity."""
        if self.seam_source is None:
            every = np.arange(len(self.vertices))
            return every, every
        first = self.seam_source == np.arange(len(self.vertices))
        return np.nonzero(first)[0], (np.cumsum(first) - 1)[self.seam_source]

    def geometry(self) -> tuple[np.ndarray, np.ndarray]:
        """The shape without texture seams: (vertices (U, 3) float32, faces (F, 3) int64 into them).

        Seam twins (``seam_source``) are merged into the vertex they repeat; nothing else is merged.
        """
        if self.seam_source is None:
            return self.vertices, self.faces.astype(np.int64)
        kept, position_of = self.seams()
        return self.vertices[kept], position_of[self.faces].astype(np.int64)

    def replace(self, **changes) -> Mesh:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def transformed(self, matrix: np.ndarray) -> Mesh:
        """The mesh moved by a (3, 3) linear or (4, 4) affine ``matrix`` applied to column vectors.

        A reflection (negative determinant) also reverses the winding, so faces keep facing outwards.
        """
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.shape not in ((3, 3), (4, 4)):
            raise ValueError(f"matrix: expected (3, 3) or (4, 4), got {matrix.shape}")
        linear = matrix[:3, :3]
        offset = matrix[:3, 3] if matrix.shape == (4, 4) else np.zeros(3)
        vertices = self.vertices.astype(np.float64) @ linear.T + offset
        faces = self.faces[:, ::-1] if np.linalg.det(linear) < 0 else self.faces
        return self.replace(vertices=vertices.astype(np.float32), faces=np.ascontiguousarray(faces))


def camera_to_upright(mesh: Mesh) -> Mesh:
    """A camera-frame mesh (OpenCV: y down, z forward) turned +Y up, facing +Z: (x, y, z) -> (x, -y, -z).

    Use it for meshes reconstructed from a photo, whose mould's world frame is the camera frame.
    """
    return mesh.transformed(CAMERA_TO_UPRIGHT)


# -- topology -------------------------------------------------------------------------------------------------
def welded(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices with bit-identical positions (texture seams of a mesh read from a file); returns
    (vertices, faces) with faces re-indexed into the unique positions."""
    unique, inverse = np.unique(np.ascontiguousarray(vertices), axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)[faces]


@dataclass(frozen=True)
class Topology:
    """Edge-level facts about a triangle mesh.

    Attributes:
        boundary_edges: undirected edges used by one face (holes).
        nonmanifold_edges: undirected edges used by three faces or more.
        misoriented_edges: edges used by two faces that traverse them in the same direction.
        components: connected components (faces sharing a vertex).
        degenerate_faces: faces that repeat a vertex index.
    """

    boundary_edges: int
    nonmanifold_edges: int
    misoriented_edges: int
    components: int
    degenerate_faces: int

    @property
    def watertight(self) -> bool:
        """Closed, edge-manifold and consistently oriented: every edge is used by exactly two faces, once in
        each direction."""
        return self.boundary_edges == 0 and self.nonmanifold_edges == 0 and self.misoriented_edges == 0


def topology(vertices: np.ndarray, faces: np.ndarray, *, weld: bool = False) -> Topology:
    """Count holes, non-manifold and misoriented edges and components of a mesh.

    Args:
        vertices: (V, 3) float.
        faces: (F, 3) int.
        weld: merge equal positions first (for meshes read from files, whose texture seams repeat
            positions); for a :class:`Mesh`, pass ``*mesh.geometry()`` instead.
    """
    if weld:
        vertices, faces = welded(vertices, faces)
    faces = np.asarray(faces, dtype=np.int64)
    degenerate = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 2] == faces[:, 0])
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    low, high = directed.min(axis=1), directed.max(axis=1)
    forward = (directed[:, 0] == low).astype(np.int64)
    key = low * len(vertices) + high
    order = np.argsort(key, kind="stable")
    unique_key, start, count = np.unique(key[order], return_index=True, return_counts=True)
    forward_count = np.add.reduceat(forward[order], start) if len(order) else np.zeros(0, np.int64)
    boundary = int(np.sum(count == 1))
    nonmanifold = int(np.sum(count > 2))
    misoriented = int(np.sum((count == 2) & (forward_count != 1)))
    components = len(np.unique(component_labels(faces, len(vertices)))) if len(faces) else 0
    return Topology(boundary, nonmanifold, misoriented, components, int(degenerate.sum()))


def component_labels(faces: np.ndarray, vertex_count: int) -> np.ndarray:
    """(F,) int64 label of each face's connected component (faces sharing a vertex are connected): the
    smallest vertex index of the component.

    Union by hooking, in numpy: every edge whose ends have different roots hooks the larger root under the
    smaller one, then every vertex jumps to its root; a few rounds for a mesh (2 for a reconstructed
    person), without scipy.sparse's import (0.1-0.2 s of a photo).
    """
    faces = np.asarray(faces, dtype=np.int64)
    start, end = faces.ravel(), faces[:, [1, 2, 0]].ravel()
    parent = np.arange(vertex_count, dtype=np.int64)
    while True:
        a, b = parent[start], parent[end]
        apart = a != b
        if not apart.any():
            return parent[faces[:, 0]]
        a, b = a[apart], b[apart]
        np.minimum.at(parent, np.maximum(a, b), np.minimum(a, b))
        while not np.array_equal(jumped := parent[parent], parent):
            parent = jumped


def largest_component(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the connected component with the most faces (vertex-connected) and drop unused vertices."""
    if len(faces) == 0:
        return vertices, faces
    labels = component_labels(faces, len(vertices))
    keep = labels == np.argmax(np.bincount(labels))
    return compact(vertices, faces[keep])


def compact(vertices: np.ndarray, faces: np.ndarray, *extra: np.ndarray) -> tuple[np.ndarray, ...]:
    """Drop vertices no face uses; per-vertex arrays in ``extra`` are filtered alike.

    Returns:
        (vertices, faces re-indexed, *extra filtered).
    """
    used = np.zeros(len(vertices), bool)
    used[faces.reshape(-1)] = True
    remap = np.cumsum(used) - 1
    return (vertices[used], remap[faces].astype(faces.dtype), *(array[used] for array in extra))


# -- the entry point ------------------------------------------------------------------------------------------
def check_person(mould: Mould) -> None:
    """Raise :class:`InputError` if the mould holds no person, or too few pixels of one to mesh."""
    pixels = int(mould.mask.sum())
    if pixels == 0:
        raise InputError("no person in this mould (the mask is empty)")
    if pixels < MIN_PERSON_PIXELS:
        raise InputError(
            f"the silhouette has {pixels} pixel(s), too few to mesh (at least {MIN_PERSON_PIXELS} are needed)"
        )


def mould_to_mesh(
    mould: Mould,
    *,
    mesher: Mesher = "poisson",
    normals: Literal["auto", "gradient", "stored"] = "auto",
    side_band: bool = True,
    poisson=None,
    stitch=None,
) -> Mesh:
    """Mesh a mould into one watertight surface in the mould's world frame.

    Args:
        mould: the mould; its mask must hold at least :data:`MIN_PERSON_PIXELS` pixels.
        mesher: ``"poisson"`` (screened Poisson on the oriented points, smooth, ~1 s at 256²) or
            ``"stitch"`` (the two depth maps triangulated and stitched at the silhouette, ~tens of ms).
        normals: Poisson only: point normals from depth gradients, the mould's stored normals, or stored
            when present.
        side_band: Poisson only: add the points along the silhouette rays (see :mod:`mould.decode`).
        poisson: a :class:`mould.recon.poisson.PoissonConfig` (default settings when None).
        stitch: a :class:`mould.recon.stitch.StitchConfig` (default settings when None).

    Returns:
        A :class:`Mesh` without texture; ``metadata`` records the mesher and its settings.

    Raises:
        InputError: no person, or too few pixels; ValueError: unknown ``mesher``.
        MouldError: the meshing backend failed.
    """
    if mesher not in MESHERS:
        raise ValueError(f"mesher: expected one of {MESHERS}, got {mesher!r}")
    check_person(mould)
    if mesher == "stitch":
        from mould.recon.stitch import StitchConfig, stitch_mould

        config = stitch or StitchConfig()
        vertices, faces = stitch_mould(mould, config)
        settings = dataclasses.asdict(config)
    else:
        from mould.recon.poisson import PoissonConfig, points_to_mesh

        from mould.decode import mould_to_points

        config = poisson or PoissonConfig()
        cloud = mould_to_points(mould, normals=normals, side=side_band)
        vertices, faces = points_to_mesh(cloud.points, cloud.normals, config)
        settings = dataclasses.asdict(config) | {
            "normals": "stored" if mould.has_normals and normals != "gradient" else "gradient",
            "side_band": side_band,
        }
    metadata = {"mesher": mesher, "mesher_settings": settings, "frame": "mould world frame, metres"}
    return Mesh(vertices=vertices, faces=faces, metadata=metadata)

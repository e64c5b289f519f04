"""MakeHuman's garments, shoes, hats and hair (CC0), rebuilt on any posed body: clothes modelled by people.

The procedural garments of :mod:`mould.datasets.clothing` are offset shells of the skin; real clothes have
collars, lapels, pockets, cuffs, hoods and soles. MakeHuman's assets are such meshes, modelled for the base
mesh anny shares. ``tools/makehuman_garments.py`` fits each one to that base mesh once and binds every
vertex to the body's surface; the binding ships as ``assets/makehuman-garments.safetensors`` (MakeHuman's
CC0 licence beside it). Here each garment is rebuilt on a batch of posed bodies from its binding:

    vertex = sum_k b_k (v_k + lift * n_k) + R @ residual

with ``v_k, n_k`` the posed corners and vertex normals of the bound body triangle, ``b`` the barycentric
weights, and ``R`` that triangle's frame (first edge, normal x edge, normal). The garment so follows the
skin as it is posed and shaped, at the distance it was modelled at (it does not grow with the body).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

import torch
from mould.datasets.raster import corner_columns, cross
from mould.datasets.shells import Surfaces, vertex_normals

WARDROBE_FILE = "makehuman-garments.safetensors"
"""The bound garments, in ``mould/datasets/assets/``."""

WARDROBE_FORMAT, WARDROBE_VERSION = "mould-wardrobe", "2"


@dataclass(frozen=True, eq=False)
class BoundGarment:
    """One MakeHuman garment bound to the body's surface (see the module docstring).

    Attributes:
        name: the MakeHuman asset's name (``male_casualsuit06``); kind: ``suit``, ``shoes``, ``hat`` or
            ``hair``; style: for hair, the procedural style it stands in for (:data:`mould.datasets.hair.STYLES`).
        faces: (F, 3) int64 triangles, counter-clockwise seen from outside.
        triangle: (G,) int64 body triangles the G vertices are bound to (rows of the body's faces).
        barycentric: (G, 3) float32 weights of their corners; lift: (G,) float32 metres along the
            interpolated vertex normal; residual: (G, 3) float32 metres in the triangle's frame.
        hidden: (H,) int64 body vertices under the garment (its ``delete_verts``).
        lower: (F,) bool, the faces of its lower half (trousers, skirt, shoes), by the body part they cover.
    """

    name: str
    kind: str
    style: str
    faces: torch.Tensor
    triangle: torch.Tensor
    barycentric: torch.Tensor
    lift: torch.Tensor
    residual: torch.Tensor
    hidden: torch.Tensor
    lower: torch.Tensor


def wardrobe(device: torch.device | str | None = None) -> dict[str, BoundGarment]:
    """The shipped garments by name, on ``device`` (default the CPU; read once per process and device)."""
    return _wardrobe(torch.device(device or "cpu"))


@functools.lru_cache(maxsize=4)
def _wardrobe(device: torch.device) -> dict[str, BoundGarment]:
    from safetensors import safe_open

    path = resources.files("mould.datasets") / "assets" / WARDROBE_FILE
    with resources.as_file(path) as local, safe_open(str(local), framework="pt") as handle:
        metadata = handle.metadata()
        if metadata.get("format") != WARDROBE_FORMAT or metadata.get("version") != WARDROBE_VERSION:
            raise ValueError(f"{local}: not a version-{WARDROBE_VERSION} {WARDROBE_FORMAT} file")
        garments = {}
        for entry in json.loads(metadata["garments"]):
            name = entry["name"]

            def tensor(key: str, dtype: torch.dtype | None = None) -> torch.Tensor:
                value = handle.get_tensor(f"{name}.{key}")  # noqa: B023 (used at once)
                return value.to(device=device, dtype=dtype or value.dtype)

            garments[name] = BoundGarment(
                name=name,
                kind=entry["kind"],
                style=entry["style"],
                faces=tensor("faces", torch.int64),
                triangle=tensor("triangle", torch.int64),
                barycentric=tensor("barycentric"),
                lift=tensor("lift"),
                residual=tensor("residual"),
                hidden=tensor("hidden", torch.int64),
                lower=tensor("lower"),
            )
    return garments


def garment_names(kind: str, style: str | None = None) -> tuple[str, ...]:
    """The shipped garments of one kind (hair: of one style, if given), in the asset's order."""
    return tuple(name for name, g in wardrobe().items() if g.kind == kind and (style is None or g.style == style))


def wrap(
    garment: BoundGarment, vertices: torch.Tensor, normals: torch.Tensor, faces: torch.Tensor
) -> torch.Tensor:
    """(S, G, 3) the garment rebuilt on S bodies.

    Args:
        vertices, normals: (S, V, 3) float posed bodies and their unit vertex normals.
        faces: (F, 3) int64 the body's triangles (those the binding refers to).
    """
    corners = faces.index_select(0, garment.triangle)  # (G, 3)
    v = vertices[:, corners]  # (S, G, 3, 3): sample, garment vertex, corner, xyz
    n = normals[:, corners]
    weights = garment.barycentric.to(vertices.dtype)[None, :, :, None]
    surface = (weights * v).sum(2)
    direction = (weights * n).sum(2)
    edge = v[:, :, 1] - v[:, :, 0]
    normal = cross(edge, v[:, :, 2] - v[:, :, 0])
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    edge = edge / edge.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    r = garment.residual.to(vertices.dtype)
    lift = garment.lift.to(vertices.dtype)[None, :, None]
    return (
        surface
        + lift * direction
        + r[None, :, 0:1] * edge
        + r[None, :, 1:2] * cross(normal, edge)
        + r[None, :, 2:3] * normal
    )


@functools.lru_cache(maxsize=128)
def rest_texcoords(name: str, device: torch.device) -> torch.Tensor:
    """(G, 3) float32 the garment ``name`` on the atlas's rest body, where its patterns are evaluated (as
    the body's are at its rest positions); built once per process, garment and device."""
    from mould.datasets.atlas import atlas_tensors

    atlas = atlas_tensors(device)
    body = atlas.rest[None]
    return wrap(wardrobe(device)[name], body, vertex_normals(body, atlas.faces), atlas.faces)[0]


def garment_surfaces(
    garment: BoundGarment, vertices: torch.Tensor, normals: torch.Tensor, faces: torch.Tensor, part: str = "whole"
) -> Surfaces:
    """S copies of a garment as :class:`~mould.datasets.shells.Surfaces`, each on its posed body.

    Args:
        vertices, normals, faces: as for :func:`wrap` (the body's faces: the atlas's).
        part: ``"upper"`` or ``"lower"`` half of the garment's faces, or the ``"whole"`` of it.
    """
    if part not in ("upper", "lower", "whole"):
        raise ValueError(f"part: expected upper, lower or whole, got {part!r}")
    posed = wrap(garment, vertices, normals, faces)
    texcoords = rest_texcoords(garment.name, vertices.device).to(posed.dtype)
    keep = torch.ones_like(garment.lower) if part == "whole" else garment.lower == (part == "lower")
    return Surfaces(
        vertices=posed,
        faces=garment.faces,
        texcoords=texcoords.expand(len(posed), -1, -1),
        normals=vertex_normals(posed, garment.faces),
        keep=keep.expand(len(posed), -1),
    )


def hidden_faces(garments: list[BoundGarment], faces: torch.Tensor) -> torch.Tensor:
    """(F,) bool: the body's faces whose three corners the garments hide together."""
    hidden = torch.zeros(int(faces.max()) + 1, dtype=torch.bool, device=faces.device)
    for garment in garments:
        hidden[garment.hidden] = True
    first, second, third = corner_columns(faces)
    return hidden[first] & hidden[second] & hidden[third]

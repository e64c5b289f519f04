"""Bind MakeHuman's CC0 garments to anny's body surface: the wardrobe asset the generator dresses people in.

MakeHuman ships garments, shoes, hats and hair modelled for its base mesh ``hm08``, which anny shares (anny's
``data/mpfb2/3dobjs/base.obj`` is that mesh, helper geometry included). Each garment's ``.mhclo`` file places
every garment vertex on the base mesh: a weighted sum of three reference vertices (often of the "tights"
helper, a skin-tight layer around the body) plus an offset scaled by the body's size along each axis.

This tool does that fitting once, on the base mesh itself, then **binds** every fitted vertex to the body's
own surface (the body bank's template mesh, :mod:`mould.datasets.bank`): the closest point on the body,
as a triangle and barycentric weights, the distance along the interpolated vertex normal there, and what is
left as a vector in the triangle's frame. :mod:`mould.datasets.wardrobe` rebuilds each garment on any posed
body of any phenotype from that binding alone, so neither anny's helper geometry nor the ``.mhclo`` files
are needed at run time. It also records the body vertices each garment's ``delete_verts`` hides (the skin
under a shoe or a trouser leg that would poke through it once posed) and which faces are the upper and
lower halves of a suit, so that shirt and trousers take different materials.

The output (``datasets/assets/makehuman-garments.safetensors``, ~1 MB) is what the package ships, with
MakeHuman's CC0 licence beside it. Run where ``anny`` is installed::

    python tools/makehuman_garments.py ../shared/data/makehuman datasets/assets/makehuman-garments.safetensors
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("makehuman_garments")

GARMENTS = {
    "suit": (
        "female_casualsuit01", "female_casualsuit02", "female_elegantsuit01", "female_sportsuit01",
        "male_casualsuit01", "male_casualsuit02", "male_casualsuit03", "male_casualsuit04", "male_casualsuit05",
        "male_casualsuit06", "male_elegantsuit01", "male_worksuit01",
    ),
    "shoes": ("shoes01", "shoes02", "shoes03"),
    "hat": ("fedora01",),
    "hair": ("short01", "short02", "short03", "short04", "afro01", "bob01", "bob02", "long01", "braid01",
             "ponytail01"),
}  # fmt: skip
"""The garments bound, by kind: every clothes folder of the MakeHuman assets (shoes04-06 are the meshes of
shoes01 and 02 with other textures) and every hair folder. The hair meshes are layers of cards made to be
drawn with alpha textures, which the assets do not include; drawn opaque, their outer layer is the hair's
surface (checked by eye on people rendered with each)."""

HAIR_STYLES = {
    "short01": "short", "short02": "short", "short03": "short", "short04": "short", "afro01": "curly",
    "bob01": "bob", "bob02": "bob", "long01": "long", "braid01": "long", "ponytail01": "ponytail",
}  # fmt: skip
"""The procedural hairstyle (:data:`mould.datasets.hair.STYLES`) each hair mesh can stand in for."""

HM08_BODY_VERTICES = 13380
"""Vertices 0-13379 of ``hm08`` are the body; the rest are helpers (eyes, tongue, tights, skirt, hair)."""

MIN_LIFT = 0.002
"""Metres: no garment vertex is bound closer to the skin (or under it). Fitted to the neutral base mesh,
tight garments modelled for other figures sit up to 14 mm inside it (a fifth of ``female_casualsuit01``'s
vertices, most within 3 mm); MakeHuman hides the skin there, which hides it on the base body only."""

BASE_TO_ANNY = np.array([[0.1, 0.0, 0.0], [0.0, 0.0, -0.1], [0.0, 0.1, 0.0]])
"""MakeHuman's base mesh (decimetres, y up) -> anny's frame (metres, z up): anny's ``world_transformation``,
0.1 times a rotation of 90 degrees about x."""


@dataclass(frozen=True)
class Proxy:
    """A parsed ``.mhclo`` with its mesh.

    Attributes:
        references: (G, 3) int64 base-mesh vertices each garment vertex hangs from.
        weights: (G, 3) float64 their weights.
        offsets: (G, 3) float64 offsets, base-mesh units (decimetres), before scaling.
        scales: axis -> (vertex a, vertex b, reference distance): the offset along that axis is scaled by
            ``|v[a] - v[b]|`` on that axis over the reference distance.
        deleted: base-mesh vertices the garment hides.
        faces: (F, 3) int64 triangles of the garment mesh (its polygons fanned).
    """

    references: np.ndarray
    weights: np.ndarray
    offsets: np.ndarray
    scales: dict[int, tuple[int, int, float]]
    deleted: np.ndarray
    faces: np.ndarray


def read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (V, 3) float64, triangles (F, 3) int64) of an OBJ file, polygons fanned."""
    vertices, faces = [], []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("v "):
            vertices.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("f "):
            corners = [int(token.split("/")[0]) - 1 for token in line.split()[1:]]
            faces.extend([corners[0], corners[k], corners[k + 1]] for k in range(1, len(corners) - 1))
    return np.array(vertices, dtype=np.float64), np.array(faces, dtype=np.int64).reshape(-1, 3)


def read_proxy(path: Path) -> Proxy:
    """Parse a MakeHuman ``.mhclo`` file and the OBJ it names."""
    references, weights, offsets, deleted, scales = [], [], [], [], {}
    obj_name, section = None, None
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] in ("verts", "delete_verts", "weights"):
            section = words[0]
            continue
        if section == "verts" and re.fullmatch(r"[-0-9.e ]+", line):
            numbers = line.split()
            if len(numbers) == 1:  # a vertex pinned to one base-mesh vertex
                references.append([int(numbers[0])] * 3)
                weights.append([1.0, 0.0, 0.0])
                offsets.append([0.0, 0.0, 0.0])
            else:
                references.append([int(x) for x in numbers[:3]])
                weights.append([float(x) for x in numbers[3:6]])
                offsets.append([float(x) for x in numbers[6:9]])
            continue
        if section == "delete_verts" and re.fullmatch(r"[0-9\- ]+", line):
            tokens = line.replace(" - ", "-").split()
            for token in tokens:
                low, _, high = token.partition("-")
                deleted.extend(range(int(low), int(high or low) + 1))
            continue
        if words[0] == "obj_file":  # other keywords may come between a section's name and its numbers
            obj_name = words[1]
        elif words[0] in ("x_scale", "y_scale", "z_scale"):
            scales["xyz".index(words[0][0])] = (int(words[1]), int(words[2]), float(words[3]))
    if obj_name is None:
        raise ValueError(f"{path}: no obj_file line")
    vertices, faces = read_obj(path.parent / obj_name)
    if len(vertices) != len(references):
        raise ValueError(f"{path}: {len(references)} fitted vertices for {len(vertices)} in {obj_name}")
    return Proxy(
        np.array(references), np.array(weights), np.array(offsets), scales, np.array(deleted, dtype=np.int64),
        faces,
    )  # fmt: skip


def fit(proxy: Proxy, base: np.ndarray) -> np.ndarray:
    """(G, 3) the garment's vertices fitted to base-mesh vertices ``base`` (N, 3), in the base mesh's units."""
    scale = np.ones(3)
    for axis, (a, b, reference) in proxy.scales.items():
        scale[axis] = abs(base[a, axis] - base[b, axis]) / reference
    return np.einsum("gk,gkc->gc", proxy.weights, base[proxy.references]) + proxy.offsets * scale


def triangle_frames(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3, 3) orthonormal frames of triangles, rows (first edge, normal x first edge, normal)."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    edge = (b - a) / np.linalg.norm(b - a, axis=1, keepdims=True)
    normal = np.cross(b - a, c - a)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    return np.stack([edge, np.cross(normal, edge), normal], axis=1)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) area-weighted unit vertex normals (the generator's :func:`mould.datasets.shells.vertex_normals`)."""
    import torch
    from mould.datasets.shells import vertex_normals as batched

    normals = batched(torch.as_tensor(vertices[None]), torch.as_tensor(faces))[0]
    return normals.numpy()


def bind(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> dict[str, np.ndarray]:
    """Bind points (G, 3) to the closest points of a mesh (see the module docstring).

    Returns ``triangle`` (G,) int32, ``barycentric`` (G, 3) float32, ``lift`` (G,) float32 (metres along the
    interpolated vertex normal, at least :data:`MIN_LIFT`) and ``residual`` (G, 3) float32 (the rest, in
    the triangle's frame).
    """
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(vertices.astype(np.float32), faces.astype(np.uint32))
    closest = scene.compute_closest_points(o3d.core.Tensor(points.astype(np.float32)))
    triangle = closest["primitive_ids"].numpy().astype(np.int64)
    u, v = closest["primitive_uvs"].numpy().astype(np.float64).T
    barycentric = np.stack([1 - u - v, u, v], axis=1)
    corners = faces[triangle]
    normals = vertex_normals(vertices, faces)
    surface = np.einsum("gk,gkc->gc", barycentric, vertices[corners])
    direction = np.einsum("gk,gkc->gc", barycentric, normals[corners])
    lift = np.einsum("gc,gc->g", points - surface, direction) / np.einsum("gc,gc->g", direction, direction)
    rest = points - surface - lift[:, None] * direction
    lift = np.maximum(lift, MIN_LIFT)
    residual = np.einsum("gij,gj->gi", triangle_frames(vertices, faces)[triangle], rest)
    return {
        "direction": direction,
        "triangle": triangle.astype(np.int32),
        "barycentric": barycentric.astype(np.float32),
        "lift": lift.astype(np.float32),
        "residual": residual.astype(np.float32),
    }


def body_index(base: np.ndarray, template: np.ndarray) -> np.ndarray:
    """(13380,) int64: the bank vertex at each ``hm08`` body vertex (-1 where the bank dropped it), found by
    position: the bank's template is the base mesh moved into anny's frame."""
    from scipy.spatial import cKDTree

    distance, index = cKDTree(template).query(base[:HM08_BODY_VERTICES] @ BASE_TO_ANNY.T)
    if np.median(distance) > 1e-6:
        raise ValueError(f"the bank's template is not anny's base mesh (median gap {np.median(distance):.2e} m)")
    return np.where(distance < 1e-6, index, -1)


def build(assets: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The wardrobe's tensors and metadata from the MakeHuman asset folder ``assets``."""
    import anny
    import torch
    from mould.datasets.atlas import body_atlas
    from mould.datasets.bodies import body_bank

    base, _ = read_obj(Path(anny.__file__).parent / "data" / "mpfb2" / "3dobjs" / "base.obj")
    bank = body_bank()
    template = bank.template_vertices.numpy().astype(np.float64)
    faces = bank.faces.numpy()
    to_bank = body_index(base, template)
    atlas = body_atlas()
    tensors, entries = {}, []
    for kind, names in GARMENTS.items():
        for name in names:
            folder = assets / ("hair" if kind == "hair" else "clothes") / name
            proxy = read_proxy(next(folder.glob("*.mhclo")))
            fitted = fit(proxy, base) @ BASE_TO_ANNY.T
            binding = bind(fitted, template, faces)
            # Wind every garment outwards (counter-clockwise seen from outside, as the body is).
            outward = np.einsum("gc,gc->g", vertex_normals(fitted, proxy.faces), binding.pop("direction"))
            garment_faces = proxy.faces if np.median(outward) > 0 else proxy.faces[:, ::-1]
            gap = np.abs(binding["lift"])
            hidden = to_bank[proxy.deleted[proxy.deleted < HM08_BODY_VERTICES]]
            hidden = np.unique(hidden[hidden >= 0])
            # Upper and lower halves (shirt and trousers) by the body part each face is bound to.
            bound = faces[binding["triangle"]][:, 0]
            legs = atlas.weight("thigh", "shin", "foot")[bound] > 0.5
            lower_vertex = legs | (atlas.torso_height[bound] < 0.12)
            lower = lower_vertex[garment_faces].sum(axis=1) >= 2
            tensors.update({
                f"{name}.faces": garment_faces.astype(np.int32),
                **{f"{name}.{key}": value for key, value in binding.items()},
                f"{name}.hidden": hidden.astype(np.int32),
                f"{name}.lower": lower,
            })  # fmt: skip
            entries.append({"name": name, "kind": kind, "style": HAIR_STYLES.get(name, "")})
            log.info(
                "%s: %d vertices, %d triangles, lift %.1f-%.1f mm (median %.1f), %d body vertices hidden, "
                "%.0f%% lower, %.0f%% of vertex normals outwards",
                name, len(fitted), len(garment_faces), gap.min() * 1e3, gap.max() * 1e3, np.median(gap) * 1e3,
                len(hidden), 100 * lower.mean(), 100 * max(np.mean(outward > 0), np.mean(outward < 0)),
            )  # fmt: skip
    tensors = {key: torch.as_tensor(np.ascontiguousarray(value)) for key, value in tensors.items()}
    metadata = {
        "format": "mould-wardrobe",
        "version": "2",
        "garments": json.dumps(entries),
        "source": "MakeHuman assets (CC0), bound to anny " + bank.anny_version,
        "body_vertices": str(bank.vertex_count),
    }
    return tensors, metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assets", type=Path, help="the MakeHuman asset folder (holding clothes/ and hair/)")
    parser.add_argument("out", type=Path, help="the .safetensors file to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from safetensors.torch import save

    from mould.files import write_atomic

    try:
        tensors, metadata = build(args.assets)
    except (OSError, ValueError, StopIteration) as error:
        print(f"error: {args.assets}: {error or 'no .mhclo file'}", file=sys.stderr)
        return 1
    data = save(tensors, metadata=metadata)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, lambda handle: handle.write(data))
    log.info("wrote %s (%.2f MB)", args.out, len(data) / 1e6)
    return 0


if __name__ == "__main__":
    sys.exit(main())

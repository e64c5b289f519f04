"""A batch of scenes as geometry: bodies shaped and posed from the body bank, dressed, with hair, packed.

From B :class:`~mould.datasets.scenes.SceneDraw` s, on any torch device: shape each body (one blend per
sample), pose the candidate poses in rounds (round t poses candidate t of the samples whose earlier
candidates collided, so most samples pose once), then build every garment shell, skirt drape, MakeHuman
garment (:mod:`mould.datasets.wardrobe`; the skin it hides is left out), scalp, curtain of hair, bun and
ponytail of the batch with one batched call per kind, and pack all surfaces into one triangle soup
with per-triangle scene and material, ready for :func:`mould.datasets.raster.rasterize`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from mould.datasets.appearance import NOISE_OCTAVES, material_table
from mould.datasets.atlas import atlas_tensors
from mould.datasets.clothing import KINDS, Garment, garment_shells, garment_table, skirt_drapes
from mould.datasets.collisions import body_collisions
from mould.datasets.hair import (
    STYLES,
    Hairstyle,
    buns,
    hair_table,
    hanging_hair,
    head_frames,
    ponytails,
    scalp_shells,
)
from mould.datasets.noise import noise_offsets
from mould.datasets.posing import posed_from_rest, rest_bodies
from mould.datasets.scenes import SceneDraw
from mould.datasets.shells import Surfaces, vertex_normals
from mould.datasets.wardrobe import garment_surfaces, hidden_faces, wardrobe


@dataclass(frozen=True)
class Dressed:
    """B dressed scenes packed into one triangle soup, world frame (+Y up, the person facing +Z), metres.

    Attributes:
        vertices: (V, 3) float32.
        faces: (F, 3) int64 into ``vertices``; face_scene: (F,) int64 in [0, B); face_material: (F,) int64
            rows of ``materials``.
        texcoords: (V, 3) float32 pattern coordinates; normals: (V, 3) float32 unit shading normals.
        used: (V,) bool, vertices some face uses (shells keep the whole body's vertices).
        materials: (M, 12) float32 rows of :data:`mould.datasets.appearance.MATERIAL_FIELDS`;
            material_offsets: (M, 3, 3) float32 noise offsets of their seeds.
        families: per scene, the pose family kept; tries: candidates posed; collisions: the kept pose's
            colliding pairs (empty unless every candidate collided); outfits: the garments worn.
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    face_scene: torch.Tensor
    face_material: torch.Tensor
    texcoords: torch.Tensor
    normals: torch.Tensor
    used: torch.Tensor
    materials: torch.Tensor
    material_offsets: torch.Tensor
    families: list[str]
    poses: list[dict]
    tries: list[int]
    collisions: list[list[tuple[str, str, float]]]
    outfits: list[tuple]


def pose_draws(draws: list[SceneDraw], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, list]:
    """Shape and pose the bodies of ``draws``, keeping each one's first candidate pose that passes the
    collision test (or its last).

    Returns:
        vertices: (B, V, 3) float32, world frame, feet on y = 0, centred on x = z = 0.
        heads: (B, J, 3) float32 bone heads in the same frame.
        kept: per draw, (candidate index, colliding pairs of the kept pose).
    """
    from mould.datasets.bodies import PHENOTYPES, anny_to_world, body_bank

    bank = body_bank()
    phenotypes = torch.tensor([[d.phenotype[k] for k in PHENOTYPES] for d in draws], dtype=torch.float32)
    rest = rest_bodies(bank, phenotypes.to(device))
    vertices = torch.empty((len(draws), bank.vertex_count, 3), device=device)
    heads = torch.empty((len(draws), len(bank.bone_labels), 3), device=device)
    kept: list = [None] * len(draws)
    pending = list(range(len(draws)))
    for attempt in range(max(d.tries for d in draws)):
        chosen = [i for i in pending if attempt < draws[i].tries]
        index = torch.tensor(chosen, device=device)
        rotations = torch.as_tensor(np.stack([draws[i].candidate(attempt)[2] for i in chosen]), device=device)
        subset = type(rest)(*(t.index_select(0, index) for t in (rest.vertices, rest.heads, rest.orientations)))
        posed = posed_from_rest(bank, subset, rotations)
        hits = body_collisions(posed.vertices, posed.heads)
        accept = [not hit or attempt == draws[i].tries - 1 for i, hit in zip(chosen, hits)]
        taken = torch.tensor([j for j, a in enumerate(accept) if a], device=device, dtype=torch.int64)
        world, world_heads = anny_to_world(
            posed.vertices.index_select(0, taken), posed.heads.index_select(0, taken)
        )
        target = index.index_select(0, taken)
        vertices.index_copy_(0, target, world)
        heads.index_copy_(0, target, world_heads)
        for j, (i, a) in enumerate(zip(chosen, accept)):
            if a:
                kept[i] = (attempt, hits[j])
        pending = [i for i, a in zip(chosen, accept) if not a]
        if not pending:
            break
    return vertices, heads, kept


def dress(draws: list[SceneDraw], device: torch.device | str = "cpu") -> Dressed:
    """Build and pack the geometry of ``draws`` on ``device`` (see the module docstring)."""
    from mould.datasets.bodies import body_bank

    device = torch.device(device)
    bank, atlas = body_bank(), atlas_tensors(device)
    vertices, heads, kept = pose_draws(draws, device)
    normals = vertex_normals(vertices, atlas.faces)
    families = [d.poses[attempt][0] for d, (attempt, _) in zip(draws, kept)]
    outfits = [d.outfit(family) for d, family in zip(draws, families)]

    materials, surfaces = [], []  # surfaces: (Surfaces, owner scenes (S,), material rows (S,))

    def add_materials(items) -> torch.Tensor:
        first = len(materials)
        materials.extend(items)
        return torch.arange(first, len(materials), device=device)

    everyone = torch.arange(len(draws), device=device)
    modelled = wardrobe(device)
    skin = torch.stack([
        ~hidden_faces([modelled[g.asset] for g in outfit if g.asset], atlas.faces) for outfit in outfits
    ])  # fmt: skip
    body = Surfaces(vertices, atlas.faces, atlas.rest.expand(len(draws), -1, -1), normals, skin)
    surfaces.append((body, everyone, add_materials([d.skin for d in draws])))

    worn = [(i, g) for i, outfit in enumerate(outfits) for g in outfit if not g.asset]
    if worn:
        owners = torch.tensor([i for i, _ in worn], device=device)
        kinds, numbers, variants = (torch.as_tensor(a, device=device) for a in garment_table([g for _, g in worn]))
        numbers = numbers.to(torch.float32)
        rows = add_materials([g.material for _, g in worn])
        shells = garment_shells(kinds, numbers, variants, vertices.index_select(0, owners),
                                normals.index_select(0, owners), atlas)  # fmt: skip
        surfaces.append((shells, owners, rows))
        draped = torch.nonzero((kinds == KINDS.index("skirt")) | (kinds == KINDS.index("dress")))[:, 0]
        if len(draped):
            who = owners[draped]
            hips = (heads[who, bank.bone("upperleg01.L")] + heads[who, bank.bone("upperleg01.R")]) / 2
            ankles = (heads[who, bank.bone("foot.L"), 1] + heads[who, bank.bone("foot.R"), 1]) / 2
            skirts = skirt_drapes(numbers[draped], vertices.index_select(0, who), hips, ankles, atlas)
            surfaces.append((skirts, who, rows[draped]))

    # MakeHuman's garments and hair: one batched build per mesh and half.
    pieces: dict[tuple[str, str], list[tuple[int, Garment | Hairstyle]]] = {}
    for i, outfit in enumerate(outfits):
        for g in outfit:
            if g.asset:
                part = {"top": "upper", "trousers": "lower"}.get(g.kind, "whole")
                pieces.setdefault((g.asset, part), []).append((i, g))
        if draws[i].hairstyle.asset:
            pieces.setdefault((draws[i].hairstyle.asset, "whole"), []).append((i, draws[i].hairstyle))
    for (name, part), items in pieces.items():
        owners = torch.tensor([i for i, _ in items], device=device)
        built = garment_surfaces(modelled[name], vertices.index_select(0, owners), normals.index_select(0, owners),
                                 atlas.faces, part)  # fmt: skip
        surfaces.append((built, owners, add_materials([g.material for _, g in items])))

    haired = [i for i, d in enumerate(draws) if d.hairstyle.style != "bald" and not d.hairstyle.asset]
    if haired:
        owners = torch.tensor(haired, device=device)
        codes, numbers, variants = (
            torch.as_tensor(a, device=device) for a in hair_table([draws[i].hairstyle for i in haired])
        )
        numbers = numbers.to(torch.float32)
        rows = add_materials([draws[i].hairstyle.material for i in haired])
        surfaces.append(
            (
                scalp_shells(
                    codes,
                    numbers,
                    variants,
                    vertices.index_select(0, owners),
                    normals.index_select(0, owners),
                    atlas,
                ),
                owners,
                rows,
            )  # fmt: skip
        )
        frames = head_frames(vertices.index_select(0, owners), atlas)
        for styles, build in (
            (
                ("bob", "long"),
                lambda pick, f: hanging_hair(numbers[pick], vertices.index_select(0, owners[pick]), f, atlas),
            ),
            (("bun",), lambda pick, f: buns(numbers[pick], f)),
            (("ponytail",), lambda pick, f: ponytails(numbers[pick], f)),
        ):
            pick = torch.nonzero(
                torch.isin(codes, torch.tensor([STYLES.index(s) for s in styles], device=device))
            )[:, 0]
            if len(pick):
                frame = type(frames)(
                    *(t[pick] for t in (frames.centre, frames.radius, frames.facing, frames.back, frames.up))
                )
                surfaces.append((build(pick, frame), owners[pick], rows[pick]))

    table, seeds = material_table(materials)
    packed = _pack(surfaces)
    return Dressed(
        **packed,
        materials=torch.as_tensor(table, dtype=torch.float32, device=device),
        material_offsets=noise_offsets(torch.as_tensor(seeds), NOISE_OCTAVES).to(device),
        families=families,
        poses=[d.poses[attempt][1] for d, (attempt, _) in zip(draws, kept)],
        tries=[attempt + 1 for attempt, _ in kept],
        collisions=[hits for _, hits in kept],
        outfits=outfits,
    )


def _pack(surfaces: list[tuple[Surfaces, torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One triangle soup of every surface's kept faces."""
    vertices, texcoords, normals, faces, face_scene, face_material = [], [], [], [], [], []
    base = 0
    for surface, owners, rows in surfaces:
        count, size = surface.vertices.shape[:2]
        which, face = torch.nonzero(surface.keep, as_tuple=True)
        faces.append(surface.faces.index_select(0, face) + (which * size + base)[:, None])
        face_scene.append(owners.index_select(0, which))
        face_material.append(rows.index_select(0, which))
        vertices.append(surface.vertices.reshape(-1, 3))
        texcoords.append(surface.texcoords.reshape(-1, 3))
        normals.append(surface.normals.reshape(-1, 3))
        base += count * size
    faces_all = torch.cat(faces)
    used = torch.zeros(base, dtype=torch.bool, device=faces_all.device)
    used[faces_all.reshape(-1)] = True
    return {
        "vertices": torch.cat(vertices).to(torch.float32),
        "faces": faces_all,
        "face_scene": torch.cat(face_scene),
        "face_material": torch.cat(face_material),
        "texcoords": torch.cat(texcoords).to(torch.float32),
        "normals": torch.cat(normals).to(torch.float32),
        "used": used,
    }

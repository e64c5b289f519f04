"""Shaping and posing anny bodies in torch, from the body bank: blend shapes, forward kinematics, skinning.

The same arithmetic as anny's full-body model (compact phenotype blend shapes, ``cached`` bone orientations,
``local-ref`` pose parameters, linear blend skinning), batched over bodies and on any device, so the generator
needs neither anny nor NVIDIA Warp. Everything is in anny's frame (metres, z up, the body facing -y);
:mod:`mould.datasets.bodies` turns it into the toolkit's world frame.

Pose parameters are per-bone rotations ``(B, J, 3, 3)``: bone c's rotation about its head, in world-aligned
axes carried along by its parent (anny's ``local-ref``; :func:`mould.datasets.poses.pose_deltas` makes them).
With ``W_c = [V_c | w_c]`` the posed pose of bone c, ``P_c = [R_c | h_c]`` its rest pose and ``U_c`` its
reference orientation (all 3 x 4 rigid transforms):

- ``W_0 = [U_0^T D_0 U_0 | 0]`` for the root;
- ``W_c = W_p K_c`` with ``K_c = [U_p^T D_c U_c | U_p^T A_p (h_c - h_p)]`` and ``A_p = U_p R_p^T`` (the
  root's ``A`` is the identity);
- the skinning transform of bone c is ``T_c = W_c P_c^-1``, and a vertex moves to ``sum_k w_k T_k v``.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import torch
from mould.datasets.bank import BodyBank


@dataclass(frozen=True)
class PosedSkeleton:
    """Posed bodies in anny's frame.

    Attributes:
        vertices: (B, V, 3), metres.
        heads: (B, J, 3), metres, each bone's head (joint) as posed.
    """

    vertices: torch.Tensor
    heads: torch.Tensor


@functools.lru_cache(maxsize=64)
def _on(bank: BodyBank, device: torch.device, name: str) -> torch.Tensor:
    """A tensor of the bank, copied to ``device`` once (the blend basis is 22 MB: not once a batch)."""
    value = bank.anchors[name[len("anchors.") :]] if name.startswith("anchors.") else getattr(bank, name)
    return value.to(device)


def phenotype_weights(bank: BodyBank, phenotypes: torch.Tensor) -> torch.Tensor:
    """Blend coefficients ``(B, K)`` of phenotype values.

    Args:
        bank: the body bank.
        phenotypes: (B, len(bank.phenotypes)) values in [0, 1] (clamped), in the order of ``bank.phenotypes``;
            the other groups (cup size, firmness, race) take 0.5.

    Returns:
        (B, K) coefficients of ``bank.blendshapes``, phenotypes' dtype and device.
    """
    if phenotypes.ndim != 2 or phenotypes.shape[1] != len(bank.phenotypes):
        raise ValueError(f"phenotypes: expected (B, {len(bank.phenotypes)}), got {tuple(phenotypes.shape)}")
    dtype, device = phenotypes.dtype, phenotypes.device
    columns = []
    for group, count in bank.groups:
        if group not in bank.anchors:  # race: equal shares of the normalised values (all 0.5 here)
            columns.append(torch.full((len(phenotypes), count), 1.0 / count, dtype=dtype, device=device))
            continue
        anchors = _on(bank, device, f"anchors.{group}").to(dtype)
        if group in bank.phenotypes:
            value = phenotypes[:, bank.phenotypes.index(group)]
        else:
            value = torch.full((len(phenotypes),), 0.5, dtype=dtype, device=device)
        value = value.clamp(anchors[0], anchors[-1])
        upper = torch.searchsorted(anchors, value.contiguous()).clamp(1, count - 1)
        alpha = (value - anchors[upper - 1]) / (anchors[upper] - anchors[upper - 1])
        weights = torch.zeros((len(phenotypes), count), dtype=dtype, device=device)
        weights.scatter_(1, (upper - 1)[:, None], (1 - alpha)[:, None])
        weights.scatter_(1, upper[:, None], alpha[:, None])
        columns.append(weights)
    variations = torch.cat(columns, dim=1)  # (B, W)
    mask = _on(bank, device, "variation_mask").to(dtype)
    products = torch.prod(variations[:, None, :] * mask[None] + (1 - mask[None]), dim=-1)  # (B, P)
    return products @ _on(bank, device, "projection").to(dtype)


def nearest_rotation(matrices: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) the rotations nearest to (..., 3, 3) matrices in the Frobenius norm (special Procrustes,
    by SVD in float64), in the input's dtype."""
    u, _, vh = torch.linalg.svd(matrices.double())
    sign = torch.sign(torch.linalg.det(u @ vh))
    u = torch.cat([u[..., :2], u[..., 2:] * sign[..., None, None]], dim=-1)
    return (u @ vh).to(matrices.dtype)


@dataclass(frozen=True)
class RestBodies:
    """Bodies of given phenotypes before posing, anny's frame.

    Attributes:
        vertices: (B, V, 3), metres.
        heads: (B, J, 3), metres.
        orientations: (B, J, 3, 3) rest orientations of the bones.
    """

    vertices: torch.Tensor
    heads: torch.Tensor
    orientations: torch.Tensor


def rest_bodies(bank: BodyBank, phenotypes: torch.Tensor) -> RestBodies:
    """Shape bodies: the blend shapes of ``phenotypes`` ((B, P) as in :func:`phenotype_weights`).

    Computed in float32 (the blend basis' precision) on the phenotypes' device; returned in their dtype.
    """
    dtype, device = phenotypes.dtype, phenotypes.device
    weights = phenotype_weights(bank, phenotypes).to(torch.float32)

    def blend(template: str, shapes: str) -> torch.Tensor:
        basis, start = _on(bank, device, shapes), _on(bank, device, template)
        flat = weights @ basis.reshape(len(basis), -1)
        return (start[None] + flat.reshape(len(weights), *start.shape)).to(dtype)

    orientations = nearest_rotation(blend("template_orientations", "orientation_blendshapes"))
    return RestBodies(
        vertices=blend("template_vertices", "blendshapes"),
        heads=blend("template_heads", "head_blendshapes"),
        orientations=orientations,
    )


@functools.lru_cache(maxsize=4)
def _rig(bank: BodyBank, device: torch.device) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """(parent of each bone (J,) with the root its own parent, [(bones, their parents)] per depth level
    below the root), on ``device``."""
    parents = [int(p) for p in bank.bone_parents]
    depth = [0] * len(parents)
    for bone in range(1, len(parents)):  # anny orders bones so that parents come first
        if not 0 <= parents[bone] < bone:
            raise ValueError(f"bone_parents: bone {bone} has parent {parents[bone]}, expected an earlier bone")
        depth[bone] = depth[parents[bone]] + 1
    parent = torch.tensor([0] + parents[1:], device=device)
    levels = []
    for level in range(1, max(depth) + 1):
        bones = torch.tensor([b for b, d in enumerate(depth) if d == level], device=device)
        levels.append((bones, parent[bones]))
    return parent, levels


def forward_kinematics(
    bank: BodyBank, rest: RestBodies, rotations: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posed bone poses and skinning transforms (see the module docstring).

    Args:
        bank: the body bank (its parents and reference orientations).
        rest: the bodies' rest heads and orientations (B bodies).
        rotations: (B, J, 3, 3) local-ref rotations per bone; identity leaves a bone at rest.

    Returns:
        poses: (B, J, 3, 4) posed rigid poses W_c (rotation | head).
        transforms: (B, J, 3, 4) skinning transforms T_c = W_c P_c^-1.
    """
    dtype, device = rest.heads.dtype, rest.heads.device
    parent, levels = _rig(bank, device)
    reference = _on(bank, device, "reference_orientations").to(dtype)  # U, (J, 3, 3)
    rest_rotations, heads = rest.orientations, rest.heads  # R (B, J, 3, 3), h (B, J, 3)
    towards_reference = reference[None] @ rest_rotations.transpose(-1, -2)  # A = U R^T
    towards_reference[:, 0] = torch.eye(3, dtype=dtype, device=device)
    offsets = heads - heads[:, parent]
    reference_offsets = (towards_reference[:, parent] @ offsets[..., None])[..., 0]
    parent_t = reference[parent].transpose(-1, -2)  # U_p^T (J, 3, 3)
    local_rotations = parent_t[None] @ rotations @ reference[None]
    local_translations = (parent_t[None] @ reference_offsets[..., None])[..., 0]
    root = reference[0].T @ rotations[:, 0] @ reference[0]

    pose_rotations = torch.empty_like(rotations)
    pose_translations = torch.empty_like(heads)
    pose_rotations[:, 0], pose_translations[:, 0] = root, 0.0
    for level, up in levels:  # index_select / index_copy_: the same values as x[:, index], faster on a CPU
        parent_rotations = pose_rotations.index_select(1, up)
        rotation = parent_rotations @ local_rotations.index_select(1, level)
        shift = (parent_rotations @ local_translations.index_select(1, level)[..., None])[..., 0]
        pose_rotations.index_copy_(1, level, rotation)
        pose_translations.index_copy_(1, level, shift + pose_translations.index_select(1, up))
    skin_rotations = pose_rotations @ rest_rotations.transpose(-1, -2)
    skin_translations = pose_translations - (skin_rotations @ heads[..., None])[..., 0]
    poses = torch.cat([pose_rotations, pose_translations[..., None]], dim=-1)
    transforms = torch.cat([skin_rotations, skin_translations[..., None]], dim=-1)
    return poses, transforms


def skin(bank: BodyBank, vertices: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """Linear blend skinning: (B, V, 3) rest vertices moved by (B, J, 3, 4) bone transforms.

    The (V, J) weights are sparse (2.5 bones a vertex on average, 9 at most): blending the transforms with
    them as a sparse matrix takes 0.3 ms a body on one CPU thread, where the dense product took 2.0.
    """
    weights = sparse_skin_weights(bank, vertices.device, vertices.dtype)  # (V, J)
    batch, bones = transforms.shape[:2]
    stacked = transforms.reshape(batch, bones, 12).transpose(0, 1).reshape(bones, batch * 12)
    blended = (weights @ stacked).reshape(-1, batch, 3, 4).transpose(0, 1)  # (B, V, 3, 4)
    x, y, z = vertices[..., 0, None], vertices[..., 1, None], vertices[..., 2, None]
    return blended[..., 0] * x + blended[..., 1] * y + blended[..., 2] * z + blended[..., 3]


@functools.lru_cache(maxsize=4)
def sparse_skin_weights(bank: BodyBank, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(V, J) skinning weights as a sparse CSR matrix, zero for the bones a vertex does not follow (cached
    per device and dtype)."""
    weights = torch.zeros(bank.vertex_count, len(bank.bone_labels))
    weights = weights.scatter_add_(1, bank.skin_bones, bank.skin_weights).to(device=device, dtype=dtype)
    with warnings.catch_warnings():  # "sparse CSR tensor support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return weights.to_sparse_csr()


def pose_bodies(bank: BodyBank, phenotypes: torch.Tensor, rotations: torch.Tensor) -> PosedSkeleton:
    """Shape and pose bodies.

    Args:
        bank: the body bank.
        phenotypes: (B, P) phenotype values in the order of ``bank.phenotypes``.
        rotations: (B, J, 3, 3) local-ref rotations (see :func:`forward_kinematics`).

    Returns:
        The posed vertices and bone heads, anny's frame, in the phenotypes' dtype and device.
    """
    rest = rest_bodies(bank, phenotypes)
    return posed_from_rest(bank, rest, rotations.to(dtype=phenotypes.dtype, device=phenotypes.device))


def posed_from_rest(bank: BodyBank, rest: RestBodies, rotations: torch.Tensor) -> PosedSkeleton:
    """Pose already shaped bodies (several poses of one shape: expand ``rest`` to the batch first)."""
    poses, transforms = forward_kinematics(bank, rest, rotations)
    return PosedSkeleton(vertices=skin(bank, rest.vertices, transforms), heads=poses[..., 3])

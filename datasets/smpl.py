"""A minimal SMPL body model (linear blend skinning) for datasets annotated with SMPL parameters.

SMPL is licence-restricted: it is never bundled or downloaded. Users pass the path of a model file they
obtained themselves. Only ``.npz`` files are read (``numpy.load(allow_pickle=False)``): the official
``.pkl`` files are Python pickles, and unpickling a file runs code, so they must first be converted once,
by the user, with their own trusted tools, e.g.::

    python -c "import pickle, numpy as np, scipy.sparse as sp; m = pickle.load(open('SMPL_FEMALE.pkl', 'rb'),
    encoding='latin1'); np.savez('smpl_female.npz', **{k: (m[k].toarray() if sp.issparse(m[k]) else
    np.asarray(m[k])) for k in ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights',
    'kintree_table', 'f')})"

Keys read: ``v_template`` (V, 3), ``shapedirs`` (V, 3, B), ``posedirs`` (V, 3, 9 (J - 1)), ``J_regressor``
(J, V), ``weights`` (V, J), ``kintree_table`` (2, J) (row 0: parents), ``f`` (F, 3). Units are metres; SMPL's
own frame is +Y up, the body facing +Z.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mould.errors import InputError
from mould.npz import NpzArchive

SMPL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")


@dataclass(frozen=True)
class SmplModel:
    """The arrays of an SMPL model (see the module docstring for shapes)."""

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    faces: np.ndarray

    @property
    def joint_count(self) -> int:
        return len(self.parents)


def load_smpl(path: str | os.PathLike) -> SmplModel:
    """Read an SMPL model from a user-supplied ``.npz`` file (never a pickle).

    Raises:
        InputError: not a ``.npz`` file, missing keys or inconsistent shapes; the message names the file.
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise InputError(
            f"{path}: SMPL models are read from .npz files only (a .pkl is a pickle, which can run code when "
            "loaded); convert it once with your own trusted tools, see mould.datasets.smpl"
        )
    if not path.is_file():
        raise InputError(f"{path}: no such SMPL model file")
    with NpzArchive(path) as archive:  # declared sizes checked before anything is read (mould.npz)
        missing = [key for key in SMPL_KEYS if key not in archive.headers]
        if missing:
            raise InputError(f"{path}: not an SMPL model, missing {missing}")
        arrays = {key: archive.read(key) for key in SMPL_KEYS}
    vertices = arrays["v_template"].astype(np.float64)
    count = len(vertices)
    parents = arrays["kintree_table"][0].astype(np.int64)
    joints = len(parents)
    shapedirs = arrays["shapedirs"].astype(np.float64)
    posedirs = arrays["posedirs"].astype(np.float64)
    expected = {
        "v_template": (vertices.shape, (count, 3)),
        "shapedirs": (shapedirs.shape[:2], (count, 3)),
        "posedirs": (posedirs.shape, (count, 3, 9 * (joints - 1))),
        "J_regressor": (arrays["J_regressor"].shape, (joints, count)),
        "weights": (arrays["weights"].shape, (count, joints)),
    }
    for key, (got, want) in expected.items():
        if tuple(got) != tuple(want):
            raise InputError(f"{path}: SMPL {key} has shape {tuple(got)}, expected {want}")
    parents[0] = -1  # the root's parent is stored as 2**32 - 1
    if np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, joints)):
        raise InputError(f"{path}: SMPL kintree_table must list each joint after its parent")
    return SmplModel(
        v_template=vertices,
        shapedirs=shapedirs,
        posedirs=posedirs,
        J_regressor=arrays["J_regressor"].astype(np.float64),
        weights=arrays["weights"].astype(np.float64),
        parents=parents,
        faces=arrays["f"].astype(np.int64),
    )


def axis_angle_to_matrix(rotvecs: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle vectors (radians) -> (..., 3, 3) rotation matrices (Rodrigues)."""
    angle = np.linalg.norm(rotvecs, axis=-1, keepdims=True)
    axis = rotvecs / np.where(angle > 1e-12, angle, 1.0)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*rotvecs.shape[:-1], 3, 3)
    sin, cos = np.sin(angle)[..., None], np.cos(angle)[..., None]
    return np.eye(3) + sin * k + (1 - cos) * (k @ k)


def smpl_joints(model: SmplModel, betas: np.ndarray) -> np.ndarray:
    """(J, 3) rest joint positions of a body shape, SMPL frame, metres."""
    shaped = model.v_template + model.shapedirs[:, :, : len(betas)] @ betas
    return model.J_regressor @ shaped


def smpl_vertices(
    model: SmplModel,
    pose: np.ndarray,
    betas: np.ndarray,
    *,
    root_rotation: np.ndarray | None = None,
    translation: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Posed SMPL vertices and joints by linear blend skinning.

    Args:
        pose: (3 J,) axis-angle per joint, radians (J = 24 for SMPL); entry 0 is the global orientation.
        betas: (B,) shape coefficients (at most the model's).
        root_rotation: optional (3, 3) matrix replacing the global orientation ``pose[:3]``.
        translation: (3,) added to every vertex, metres.

    Returns:
        (vertices (V, 3) float64, joints (J, 3) float64), metres, the model's frame moved by ``translation``.
    """
    betas = np.asarray(betas, dtype=np.float64).ravel()
    if len(betas) > model.shapedirs.shape[2]:
        raise ValueError(f"betas: the model has {model.shapedirs.shape[2]} shape coefficients, got {len(betas)}")
    pose = np.asarray(pose, dtype=np.float64).ravel()
    if pose.shape != (3 * model.joint_count,):
        raise ValueError(f"pose: expected ({3 * model.joint_count},) axis-angles, got {pose.shape}")
    shaped = model.v_template + model.shapedirs[:, :, : len(betas)] @ betas
    joints = model.J_regressor @ shaped
    rotations = axis_angle_to_matrix(pose.reshape(-1, 3))
    # Pose blend shapes use the local rotations, the root's excluded.
    posed = shaped + model.posedirs @ (rotations[1:] - np.eye(3)).ravel()
    if root_rotation is not None:
        rotations[0] = root_rotation
    transforms = np.zeros((model.joint_count, 4, 4))
    for j in range(model.joint_count):
        local = np.eye(4)
        local[:3, :3] = rotations[j]
        parent = model.parents[j]
        local[:3, 3] = joints[j] - (joints[parent] if parent >= 0 else 0)
        transforms[j] = local if parent < 0 else transforms[parent] @ local
    posed_joints = transforms[:, :3, 3].copy()
    # Skinning transforms move rest-pose points: subtract each joint's rest position first.
    transforms[:, :3, 3] -= np.einsum("jab,jb->ja", transforms[:, :3, :3], joints)
    blended = np.einsum("vj,jab->vab", model.weights, transforms)
    vertices = np.einsum("vab,vb->va", blended[:, :3, :3], posed) + blended[:, :3, 3]
    if translation is not None:
        vertices = vertices + translation
        posed_joints = posed_joints + translation
    return vertices, posed_joints

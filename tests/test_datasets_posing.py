"""The body bank and torch posing reproduce anny's own posed bodies (the generator runs without anny)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mould.datasets.bank import BANK_ENV, MAX_BANK_BYTES, BodyBank, bank_path, cache_path, export_bank
from mould.datasets.bodies import PHENOTYPES, body_bank, phenotype_tensor
from mould.datasets.poses import FAMILY_WEIGHTS, pose_deltas, pose_to_anny, sample_pose
from mould.datasets.posing import nearest_rotation, pose_bodies

from mould.errors import InputError

POSE_TOLERANCE = 1e-4
"""0.1 mm: the issue's bound on the torch posing's largest vertex (and bone head) error against anny."""


def _test_set(count_per_family: int = 2, seed: int = 5):
    """Poses of every family and phenotypes across their whole range (toddlers to the elderly)."""
    rng = np.random.default_rng(seed)
    poses, phenotypes = [], []
    for family in FAMILY_WEIGHTS:
        for _ in range(count_per_family):
            poses.append(sample_pose(rng, family)[1])
            phenotypes.append({name: float(rng.uniform()) for name in PHENOTYPES})
    phenotypes[0] = {name: 0.0 for name in PHENOTYPES}  # the ends of every range
    phenotypes[1] = {name: 1.0 for name in PHENOTYPES}
    return poses, phenotypes


def test_torch_posing_matches_anny_on_every_pose_family():
    from mould.datasets.bodies import anny_model

    bank, model = body_bank(), anny_model()
    poses, phenotypes = _test_set(count_per_family=1)
    worst_vertex = worst_head = 0.0
    for pose, phenotype in zip(poses, phenotypes):
        with torch.no_grad():
            truth = model(
                pose_parameters=pose_to_anny(pose),
                phenotype_kwargs={k: torch.tensor([v], dtype=torch.float64) for k, v in phenotype.items()},
            )
        rotations = torch.as_tensor(pose_deltas([pose], bank.bone_labels), dtype=torch.float32)
        values = phenotype_tensor({k: np.array([v]) for k, v in phenotype.items()})
        posed = pose_bodies(bank, values, rotations)
        worst_vertex = max(worst_vertex, (posed.vertices.double() - truth["vertices"]).norm(dim=-1).max().item())
        heads = truth["bone_poses"][..., :3, 3]
        worst_head = max(worst_head, (posed.heads.double() - heads).norm(dim=-1).max().item())
    assert worst_vertex < POSE_TOLERANCE, f"largest vertex error {worst_vertex * 1e3:.4f} mm"
    assert worst_head < POSE_TOLERANCE, f"largest bone-head error {worst_head * 1e3:.4f} mm"


def test_a_batch_poses_each_body_as_alone():
    bank = body_bank()
    poses, phenotypes = _test_set(count_per_family=1, seed=9)
    rotations = torch.as_tensor(pose_deltas(poses, bank.bone_labels), dtype=torch.float32)
    values = torch.cat([phenotype_tensor({k: np.array([v]) for k, v in p.items()}) for p in phenotypes])
    batch = pose_bodies(bank, values, rotations)
    for i in (0, 4, len(poses) - 1):
        alone = pose_bodies(bank, values[i : i + 1], rotations[i : i + 1])
        assert torch.allclose(batch.vertices[i], alone.vertices[0], atol=1e-6)  # float32 round-off only
        assert torch.allclose(batch.heads[i], alone.heads[0], atol=1e-6)


def test_nearest_rotation_is_a_rotation_and_keeps_rotations():
    generator = torch.Generator().manual_seed(0)
    matrices = torch.randn(64, 3, 3, generator=generator, dtype=torch.float64)
    rotations = nearest_rotation(matrices)
    eye = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(rotations @ rotations.transpose(-1, -2), eye.expand(64, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(rotations), torch.ones(64, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(nearest_rotation(rotations), rotations, atol=1e-12)  # idempotent
    # Among the rotations, it is the nearest: no random rotation comes closer to its matrix.
    others = nearest_rotation(torch.randn(64, 3, 3, generator=generator, dtype=torch.float64))
    assert torch.all((matrices - rotations).norm(dim=(1, 2)) <= (matrices - others).norm(dim=(1, 2)) + 1e-12)


def test_bank_round_trip_size_and_refusals(tmp_path):
    bank = body_bank()
    path = bank.save(tmp_path / "bank.safetensors")
    assert path.stat().st_size <= MAX_BANK_BYTES
    again = BodyBank.load(path)
    assert again.bone_labels == bank.bone_labels and again.groups == bank.groups
    assert torch.equal(again.blendshapes, bank.blendshapes) and torch.equal(again.faces, bank.faces)
    assert again.anchors.keys() == bank.anchors.keys()
    with pytest.raises(InputError, match="no such body bank"):
        BodyBank.load(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a bank at all")
    with pytest.raises(InputError, match="junk.safetensors"):
        BodyBank.load(tmp_path / "junk.safetensors")
    from safetensors.torch import save_file

    save_file({"weights": torch.zeros(2)}, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(InputError, match="not a body bank"):
        BodyBank.load(tmp_path / "model.safetensors")


def test_bank_location_environment_cache_and_missing_anny(tmp_path, monkeypatch):
    monkeypatch.setenv(BANK_ENV, str(tmp_path / "nowhere.safetensors"))
    with pytest.raises(InputError, match=BANK_ENV):
        bank_path()
    monkeypatch.delenv(BANK_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cache_path().parent == tmp_path / "cache" / "mould"
    # Neither a bank nor anny: one line saying what to install or carry.
    monkeypatch.setitem(__import__("sys").modules, "anny", None)
    with pytest.raises(InputError, match="install anny") as error:
        bank_path()
    assert "\n" not in str(error.value)
    with pytest.raises(InputError, match="pip install anny"):
        export_bank(tmp_path / "bank.safetensors")


@pytest.mark.slow  # ~10 s: builds a bank from anny into an empty cache
def test_first_use_makes_and_caches_the_bank(tmp_path, monkeypatch):
    monkeypatch.delenv(BANK_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = bank_path()
    assert path == cache_path() and path.is_file()
    assert BodyBank.load(path).bone_labels == body_bank().bone_labels

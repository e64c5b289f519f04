"""The pose sampler: ranges, sign conventions measured on the body, symmetry, the collision test."""

from __future__ import annotations

import numpy as np
import pytest
from mould.datasets.collisions import body_collisions as batch_collisions
from mould.datasets.poses import (
    FAMILY_WEIGHTS,
    JOINT_RANGES,
    JOINTS,
    clip_pose,
    neutral_pose,
    pose_deltas,
    sample_pose,
)


def test_sampled_poses_stay_in_the_anatomical_ranges():
    rng = np.random.default_rng(0)
    for family in FAMILY_WEIGHTS:
        for _ in range(25):
            name, pose = sample_pose(rng, family)
            assert name == family
            assert set(pose) == set(JOINTS)
            for joint, angles in pose.items():
                for angle, (low, high) in zip(angles, JOINT_RANGES[joint.split(".")[0]]):
                    assert low <= angle <= high, (family, joint, angle)


def test_sampling_is_deterministic_and_rejects_unknown_families():
    assert sample_pose(np.random.default_rng(4)) == sample_pose(np.random.default_rng(4))
    with pytest.raises(ValueError, match="family"):
        sample_pose(np.random.default_rng(0), "dancing")


def test_clip_pose():
    pose = neutral_pose()
    pose["knee.L"] = [400.0]
    assert clip_pose(pose)["knee.L"] == [150.0]


def body(pose):
    from mould.datasets.bodies import body_bank, posed_bodies

    labels = body_bank().bone_labels
    out = posed_bodies(None, pose_deltas([pose], labels))
    return out.vertices[0], {name: out.bone_heads[0][i] for i, name in enumerate(labels)}


def body_collisions(vertices, heads):
    """The collisions of one body."""
    import torch

    return batch_collisions(torch.as_tensor(vertices)[None], torch.as_tensor(heads)[None])[0]


def angle_between(a, b) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def test_neutral_pose_hangs_the_arms_and_straightens_the_legs(anny_body):
    _, heads = body(neutral_pose())
    for side in "LR":
        arm = heads[f"lowerarm01.{side}"] - heads[f"upperarm01.{side}"]
        assert angle_between(arm, np.array([0, -1.0, 0])) < 12  # hanging (the pose's zero), not the A-pose
        forearm = heads[f"wrist.{side}"] - heads[f"lowerarm01.{side}"]
        assert angle_between(arm, forearm) < 12  # the elbow straightened
        thigh = heads[f"lowerleg01.{side}"] - heads[f"upperleg01.{side}"]
        assert angle_between(thigh, np.array([0, -1.0, 0])) < 8


@pytest.mark.parametrize("side", ["L", "R"])
def test_joint_signs_match_their_anatomical_meaning(anny_body, side):
    # World frame: +Y up, the person faces +Z, their left is +X.
    lateral = 1.0 if side == "L" else -1.0
    pose = neutral_pose()
    pose[f"hip.{side}"] = [90.0, 0.0, 0.0]
    pose[f"knee.{side}"] = [90.0]
    pose[f"shoulder.{side}"] = [0.0, 90.0, 0.0]
    pose[f"elbow.{side}"] = [90.0]
    _, heads = body(pose)
    thigh = heads[f"lowerleg01.{side}"] - heads[f"upperleg01.{side}"]
    shin = heads[f"foot.{side}"] - heads[f"lowerleg01.{side}"]
    assert angle_between(thigh, np.array([0, 0, 1.0])) < 12  # hip flexion: thigh forward
    assert angle_between(shin, np.array([0, -1.0, 0])) < 15  # knee flexion: shin back down (sitting)
    arm = heads[f"lowerarm01.{side}"] - heads[f"upperarm01.{side}"]
    forearm = heads[f"wrist.{side}"] - heads[f"lowerarm01.{side}"]
    assert angle_between(arm, np.array([lateral, 0, 0])) < 12  # abduction 90: arm out sideways
    assert 75 < angle_between(arm, forearm) < 105  # elbow flexion 90


def test_a_symmetric_pose_gives_a_mirror_symmetric_body(anny_body):
    rng = np.random.default_rng(3)
    _, pose = sample_pose(rng, "arms_raised")
    for joint in list(pose):
        if joint.endswith(".R"):
            pose[joint] = list(pose[joint[:-1] + "L"])
    pose["spine"] = [pose["spine"][0], 0.0, 0.0]
    pose["neck"] = [pose["neck"][0], 0.0, 0.0]
    vertices, heads = body(pose)
    for name in ("wrist", "foot", "lowerarm01", "lowerleg01"):
        left, right = heads[f"{name}.L"], heads[f"{name}.R"]
        # anny's default body is symmetric to ~1 mm; posing must keep it so
        assert np.allclose(left * [-1, 1, 1], right, atol=3e-3), name


def test_collision_test_passes_neutral_and_catches_limbs_through_each_other(anny_body):
    vertices, heads_dict = body(neutral_pose())
    from mould.datasets.bodies import body_bank

    labels = body_bank().bone_labels
    heads = np.array([heads_dict[name] for name in labels])
    assert body_collisions(vertices, heads) == []
    crossed = neutral_pose()
    crossed["hip.L"] = [0.0, -25.0, 0.0]
    crossed["hip.R"] = [0.0, -25.0, 0.0]  # both legs swung inwards: the thighs pass through each other
    vertices, heads_dict = body(crossed)
    heads = np.array([heads_dict[name] for name in labels])
    pairs = {(a, b) for a, b, _ in body_collisions(vertices, heads)}
    assert ("thigh.L", "thigh.R") in pairs or ("shin.L", "shin.R") in pairs
    inside = neutral_pose()
    inside["shoulder.L"] = [40.0, -30.0, 90.0]
    inside["elbow.L"] = [150.0]  # forearm folded into the chest
    vertices, heads_dict = body(inside)
    heads = np.array([heads_dict[name] for name in labels])
    assert any("forearm.L" in (a, b) or "hand.L" in (a, b) for a, b, _ in body_collisions(vertices, heads))

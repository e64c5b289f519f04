"""The anny bodies that the mesh and representation benches measure: the same bodies for a given seed."""

from __future__ import annotations

import numpy as np


def benchmark_bodies(count: int, seed: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Anny bodies for benchmarks: the average body in its rest pose (an A-pose), then bodies of random
    phenotypes (each in [0.1, 0.9]) standing or walking, without self-collisions.

    Args:
        count: bodies, >= 1.
        seed: seed of the phenotypes and poses.

    Returns:
        (name, vertices (13718, 3) float64, faces (27420, 3) int64) per body, world frame (+Y up, facing +Z),
        metres.
    """
    import torch

    from mould.datasets.bodies import PHENOTYPES, anny_faces, body_bank, posed_bodies
    from mould.datasets.collisions import body_collisions
    from mould.datasets.poses import pose_deltas, sample_pose

    rng = np.random.default_rng(seed)
    faces = anny_faces()
    bodies = [("rest pose, average", posed_bodies().vertices[0], faces)]
    while len(bodies) < count:
        phenotypes = {name: np.array([rng.uniform(0.1, 0.9)]) for name in PHENOTYPES}
        family, pose = sample_pose(rng, family=("standing", "walking")[len(bodies) % 2])
        posed = posed_bodies(phenotypes, pose_deltas([pose], body_bank().bone_labels))
        if body_collisions(torch.as_tensor(posed.vertices), torch.as_tensor(posed.bone_heads))[0]:
            continue
        described = ", ".join(f"{name} {value[0]:.2f}" for name, value in phenotypes.items())
        bodies.append((f"{family}, {described}", posed.vertices[0], faces))
    return bodies[:count]

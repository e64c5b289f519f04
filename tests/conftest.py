"""Shared fixtures. The anny model is built once per test session (its first build takes ~35-60 s)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("WARP_QUIET", "1")


@pytest.fixture(scope="session")
def anny_body() -> tuple[np.ndarray, np.ndarray]:
    """One anny body in its rest pose, world frame (+Y up, facing +Z): (vertices (V, 3), faces (F, 3))."""
    from mould.datasets.bodies import anny_body as make_body

    return make_body()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def randomised_legacy_state(config, generator):
    """A format-1 state dict (:mod:`mould.models.legacy`) of ``config`` with random weights, biases and
    BatchNorm statistics, so that every fold matters: name -> float32 tensor."""
    import torch
    from mould.models.legacy import legacy_network

    state = {}
    for name, value in legacy_network(config).state_dict().items():
        if not value.is_floating_point():
            state[name] = value
        elif name.endswith("running_var"):
            state[name] = 0.5 + torch.rand(value.shape, generator=generator)
        else:
            state[name] = torch.randn(value.shape, generator=generator) * 0.3
    return state

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

"""Mesh components: our union by hooking against scipy's graph search, and the largest one kept."""

from __future__ import annotations

import numpy as np
import trimesh
from hypothesis import given, settings
from hypothesis import strategies as st
from mould.recon.mesh import component_labels, largest_component


def scipy_components(faces: np.ndarray, vertex_count: int) -> np.ndarray:
    """(F,) component of each face by scipy's connected_components over the vertex graph: the reference."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(vertex_count, vertex_count))
    return connected_components(graph, directed=False)[1][faces[:, 0]]


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two labellings group the same items together (labels themselves may differ)."""
    pairs = np.unique(np.stack([a, b], axis=1), axis=0)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(3, 60).flatmap(
        lambda count: st.tuples(
            st.just(count), st.lists(st.lists(st.integers(0, count - 1), min_size=3, max_size=3), min_size=1)
        )
    )
)
def test_components_agree_with_scipy(case):
    count, faces = case
    faces = np.array(faces, np.int64)
    assert same_partition(component_labels(faces, count), scipy_components(faces, count))


def test_a_long_chain_and_scattered_pieces():
    # A strip of 2,000 triangles, numbered backwards (the hooking must walk it), beside 50 lone triangles.
    strip = np.array([[i, i + 1, i + 2] for i in range(2000)])[::-1]
    lone = 3000 + np.arange(150).reshape(50, 3)
    faces = np.concatenate([strip, lone])
    labels = component_labels(faces, 3150)
    assert len(np.unique(labels)) == 51 and len(np.unique(labels[:2000])) == 1


def test_largest_component_keeps_the_big_sphere():
    big = trimesh.creation.icosphere(subdivisions=3)
    small = trimesh.creation.icosphere(subdivisions=1, radius=0.1)
    vertices = np.concatenate([small.vertices + 5, big.vertices])
    faces = np.concatenate([small.faces, big.faces + len(small.vertices)])
    kept_vertices, kept_faces = largest_component(vertices, faces)
    assert len(kept_faces) == len(big.faces) and np.allclose(
        np.sort(kept_vertices, axis=0), np.sort(big.vertices, axis=0)
    )

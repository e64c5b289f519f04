"""mould.datasets.shells' quantiles: both agree with numpy.quantile (linear interpolation)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mould.datasets.shells import linear_quantile, masked_quantile

rows = st.lists(st.lists(st.floats(-100, 100, width=32), min_size=1, max_size=40), min_size=1, max_size=4).map(
    lambda lists: [row + [0.0] * (max(map(len, lists)) - len(row)) for row in lists]
)


@settings(max_examples=60, deadline=None)
@given(values=rows, q=st.sampled_from([0.0, 0.2, 0.5, 0.75, 1.0]))
def test_linear_quantile_is_numpys(values, q):
    array = np.asarray(values, dtype=np.float32)
    got = linear_quantile(torch.from_numpy(array), q).numpy()
    np.testing.assert_allclose(got, np.quantile(array.astype(np.float64), q, axis=1), rtol=1e-5, atol=1e-4)


@settings(max_examples=60, deadline=None)
@given(values=rows, q=st.sampled_from([0.2, 0.5]), seed=st.integers(0, 2**16))
def test_masked_quantile_is_numpys_on_each_rows_values(values, q, seed):
    array = np.asarray(values, dtype=np.float32)
    mask = np.random.default_rng(seed).uniform(size=array.shape) < 0.7
    got = masked_quantile(torch.from_numpy(array), torch.from_numpy(mask), q).numpy()
    for row, keep, value in zip(array, mask, got):
        if keep.any():
            assert np.isclose(value, np.quantile(row[keep].astype(np.float64), q), rtol=1e-5, atol=1e-4)
        else:
            assert np.isnan(value)

"""The sample format's own PNG encoder: lossless and readable by other decoders."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mould.datasets.samples import png_bytes
from PIL import Image


@settings(max_examples=40, deadline=None)
@given(height=st.integers(1, 40), width=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_png_bytes_round_trips_through_pillow(height, width, seed):
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    decoded = Image.open(io.BytesIO(png_bytes(image)))
    assert decoded.mode == "RGB" and decoded.size == (width, height)
    np.testing.assert_array_equal(np.asarray(decoded), image)


def test_png_bytes_keeps_wrapping_differences_and_strided_views():
    """Row differences wrap modulo 256 (0 under 255, 255 under 0), and a non-contiguous view is encoded as
    the image it shows."""
    rows = np.array([[[0, 255, 7]] * 5, [[255, 0, 7]] * 5, [[0, 255, 8]] * 5], dtype=np.uint8)
    view = np.repeat(rows, 2, axis=1)[:, ::2]
    assert not view.flags.c_contiguous
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(view))))
    np.testing.assert_array_equal(decoded, rows)


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4), np.uint8)]
)
def test_png_bytes_refuses_what_it_cannot_encode(bad):
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(bad)


def test_png_bytes_without_isal_is_the_same_image(monkeypatch):
    from mould import deflate

    image = np.random.default_rng(7).integers(0, 256, (33, 21, 3), dtype=np.uint8)
    monkeypatch.setattr(deflate, "_isal", None)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(image)))), image)

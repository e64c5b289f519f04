"""The depth colour scale and progress bars without their optional libraries (a GPU machine with a plain copy of
the package has neither matplotlib nor tqdm)."""

from __future__ import annotations

import sys

import numpy as np

from mould.preview import BACKGROUND_GREY, depth_colours
from mould.progress import SilentBar, progress_bar


def test_depth_colours_without_matplotlib_stay_within_six_levels_of_its_viridis(monkeypatch):
    depth = np.linspace(2.0, 3.0, 4096).reshape(64, 64)
    mask = np.ones((64, 64), bool)
    mask[0, :5] = False
    with_matplotlib = depth_colours(depth, mask, 2.0, 3.0)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    without = depth_colours(depth, mask, 2.0, 3.0)
    assert without.dtype == np.uint8 and without.shape == (64, 64, 3)
    assert int(np.abs(without.astype(int) - with_matplotlib).max()) <= 6
    assert (without[0, :5] == BACKGROUND_GREY).all()
    assert without[-1, -1].tolist() == [68, 1, 84] and without[0, 5, 0] > 240  # far: dark blue; near: yellow


def test_progress_bars_without_tqdm_draw_nothing_and_pass_items_through(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    bar = progress_bar(range(3), desc="items")
    assert isinstance(bar, SilentBar) and list(bar) == [0, 1, 2]
    counter = progress_bar(total=5, unit="step")
    counter.update(1)
    counter.set_postfix(loss="1.0", refresh=False)
    counter.close()
    assert capsys.readouterr() == ("", "")

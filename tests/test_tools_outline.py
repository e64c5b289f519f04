"""The outline tools: tools/outline_scores.py (the snapping scored radius by radius against true masks) and
tools/pasted_people.py (generated people pasted onto person-free photos, with their masks)."""

from __future__ import annotations

import numpy as np
from tool_modules import load_tool


def test_the_outline_scores_tool_scores_each_radius(tmp_path, capsys, anny_body):
    """tools/outline_scores.py on generated people (their moulds hold the true masks): one row, a column per
    radius, with and without GrabCut, the network's own outline (radius 0) among them; a missing folder is one
    line and exit 2."""
    from mould.datasets.synth_folder import synthesize
    from mould.datasets.synthetic import SynthConfig

    tool = load_tool("outline_scores")
    synthesize(tmp_path / "people", 2, seed=5, config=SynthConfig(resolution=128), progress=False)
    assert tool.main([str(tmp_path / "people"), "--radii", "8", "--count", "2", "--grabcut", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "| folder | images | radius 0 | radius 8 | radius 0, grabcut 1 | radius 8, grabcut 1 |"
    cells = [cell.strip() for cell in lines[2].split("|")[1:-1]]
    assert cells[1] == "2" and all(0.5 < float(cell.split()[0]) <= 1 for cell in cells[2:])
    assert "(" in cells[3] and "worse)" in cells[5]  # each variant counted against the network's outline
    assert tool.main([str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_the_pasted_people_tool_writes_photos_with_their_masks(tmp_path, anny_body):
    """tools/pasted_people.py: each person's pixels and only them are the mask, on the background's pixels
    elsewhere; the same arguments give the same photos."""
    from mould.datasets.backdrops import backdrop_image
    from mould.datasets.synth_folder import synthesize
    from mould.datasets.synthetic import SynthConfig
    from PIL import Image

    from mould.container import Mould

    tool = load_tool("pasted_people")
    synthesize(tmp_path / "people", 2, seed=5, config=SynthConfig(resolution=64), progress=False)
    (tmp_path / "scenes").mkdir()
    background = backdrop_image(3, 40, clutter=1.0)  # smaller than the photos: magnified to fit
    Image.fromarray(background).save(tmp_path / "scenes" / "scene.png")
    arguments = ["--people", str(tmp_path / "people"), "--backgrounds", str(tmp_path / "scenes"), "--side", "96"]
    for out in ("a", "b"):
        assert tool.main([str(tmp_path / out), *arguments]) == 0
    for index in range(2):
        photo = np.asarray(Image.open(tmp_path / "a" / f"p{index:06d}.png"))
        mask = np.asarray(Image.open(tmp_path / "a" / f"p{index:06d}_mask.png"))[..., 0] > 127
        assert photo.shape == (96, 96, 3)
        assert np.array_equal(photo, np.asarray(Image.open(tmp_path / "b" / f"p{index:06d}.png")))
        person = np.asarray(Image.open(tmp_path / "people" / f"{index:07d}.png"))
        own = Mould.load(tmp_path / "people" / f"{index:07d}.npz").mask
        shift = np.argwhere(mask).min(0) - np.argwhere(own).min(0)  # where the 64-pixel sample was pasted
        placed = np.zeros_like(mask)
        placed[shift[0] : shift[0] + 64, shift[1] : shift[1] + 64] = own
        assert np.array_equal(mask, placed) and np.array_equal(photo[mask], person[own])
    assert tool.main([str(tmp_path / "c"), "--people", str(tmp_path / "scenes"), "--backgrounds", "x"]) == 2

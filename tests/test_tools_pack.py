"""tools/pack_samples.py: a packed and unpacked sample folder keeps every sample within the stated loss."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import make_samples
from mould.datasets.samples import read_sample, sample_names
from tool_modules import load_tool

TOOL = Path(__file__).resolve().parents[1] / "tools" / "pack_samples.py"


def test_pack_then_unpack_keeps_every_sample(tmp_path):
    source = make_samples(tmp_path / "source", 5, seed=4)
    run = [sys.executable, str(TOOL)]
    subprocess.run([*run, "pack", str(source), str(tmp_path / "packed"), "--parts", "2"], check=True)
    archives = sorted(tmp_path.glob("packed.*.mpk"))
    assert len(archives) == 2
    subprocess.run([*run, "unpack", str(tmp_path / "copy"), *map(str, archives), "--workers", "1"], check=True)
    assert sample_names(tmp_path / "copy") == sample_names(source)
    for name in sample_names(source):
        original, _ = read_sample(source, name)
        copy, _ = read_sample(tmp_path / "copy", name)
        np.testing.assert_array_equal(copy.mask, original.mask)
        inside = original.mask
        # Depths in 0.5 mm steps: within 0.25 mm (and float32 rounding) of the original.
        assert np.abs(copy.visible - original.visible)[inside].max() <= 0.00026
        assert np.abs(copy.hidden - original.hidden)[inside].max() <= 0.00026
        assert copy.camera.kind == original.camera.kind
        np.testing.assert_allclose(copy.camera.cam_to_world, original.camera.cam_to_world)
        intrinsics = [(c.camera.focal, c.camera.cx, c.camera.cy) for c in (copy, original)]
        np.testing.assert_allclose(*intrinsics)
        # JPEG at quality 90: a few grey levels on average.
        assert np.abs(copy.image.astype(float) - original.image).mean() < 4


def test_unpack_refuses_a_file_that_is_not_packed_in_one_line(tmp_path):
    junk = tmp_path / "junk.mpk"
    junk.write_bytes(b"not a packed file")
    done = subprocess.run(
        [sys.executable, str(TOOL), "unpack", str(tmp_path / "out"), str(junk)], capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "not a packed sample file" in done.stderr
    assert not (tmp_path / "out").exists()


def test_unpack_refuses_a_decompression_bomb_and_a_lying_header(tmp_path, monkeypatch):
    """Issue #15: the whole LZMA stream was decompressed, then numpy believed the arrays' headers."""
    import lzma
    import zipfile

    import pytest
    from bad_samples import npy_header

    from mould.errors import InputError

    tool = load_tool("pack_samples")
    monkeypatch.setattr(tool, "MAX_UNPACKED_BYTES", 1 << 20)
    (tmp_path / "bomb.mpk").write_bytes(lzma.compress(bytes(2 << 20)))  # 2 MiB of zeros in 400 bytes
    with pytest.raises(ValueError, match="decompresses to more than"):
        tool.unpack(tmp_path / "bomb.mpk", tmp_path / "out")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("visible.npy", npy_header((100_000, 100_000, 100)) + bytes(8))
    (tmp_path / "lying.mpk").write_bytes(lzma.compress(buffer.getvalue()))
    with pytest.raises(InputError, match="lying.mpk: refused: array 'visible'"):
        tool.unpack(tmp_path / "lying.mpk", tmp_path / "out")
    assert not (tmp_path / "out").exists()

"""The benches of :mod:`mould.benchmarks` run through ``mould bench`` on small settings: their tables, files
and errors (the representation experiment has its own module, ``test_benchmarks_representation``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import trimesh

from mould.benchmarks.encode import BenchEncodeConfig, bench_encode
from mould.benchmarks.mesh import MeshRow
from mould.benchmarks.timings import timings
from mould.cli import main
from mould.errors import InputError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # bench model sets torch's threads for the whole process


def test_timings_warm_up_then_time_each_repeat():
    calls = []
    timing = timings(lambda: calls.append(1), repeats=5, warmup=2)
    assert len(calls) == 7
    assert 0 <= timing.best <= timing.median


def test_bench_encode_times_each_resolution(tmp_path, capsys):
    path = tmp_path / "sphere.ply"
    trimesh.creation.icosphere(subdivisions=3, radius=0.4).export(path)
    assert main(["bench", "encode", "--mesh", str(path), "--repeats", "1", "--resolutions", "32", "64"]) == 0
    out = capsys.readouterr().out
    assert "| resolution | encode (ms) |" in out and "| 32² |" in out and "| 64² |" in out
    rows = bench_encode(BenchEncodeConfig(mesh=path, resolutions=(32, 64), repeats=1), lambda line: None)
    assert [row.resolution for row in rows] == [32, 64]
    # Front and back pixels grow with the crop's area (x4), the side band with its perimeter (x2).
    assert 3 * rows[0].points < rows[1].points
    assert all(row.encode_ms > 0 and row.decode_ms > 0 for row in rows)
    with pytest.raises(InputError, match="--resolutions"):
        BenchEncodeConfig(resolutions=(4,))


def test_bench_model_prints_a_table(capsys, restore_threads):
    assert (
        main(
            [
                "bench",
                "model",
                "--configs",
                "tiny",
                "--resolution",
                "64",
                "--repeats",
                "1",
                "--threads",
                "1",
                "--train-batch",
                "2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| tiny | 0.03 M |" in out
    assert main(["bench", "model", "--configs", "huge"]) == 2


def test_bench_reconstruct_times_each_stage(capsys):
    # The bundled example photo, one mesher: the whole pipeline on the shipped model in a few seconds.
    assert main(["bench", "reconstruct", "--images", str(EXAMPLES), "--count", "1", "--meshers", "stitch"]) == 0
    out = capsys.readouterr().out
    assert "| mesher | load (ms) | crop (ms) | predict (ms) | mesh (ms) | texture (ms) |" in out
    row = next(line for line in out.splitlines() if line.startswith("| stitch |"))
    assert row.endswith("| 0 |")  # none failed
    assert f"photos: 1 from {EXAMPLES}" in out
    assert main(["bench", "reconstruct", "--meshers", "marching"]) == 2


@pytest.mark.slow
def test_bench_mesh_runs(capsys, tmp_path):
    figures = tmp_path / "mesh.json"
    args = ["bench", "mesh", "--count", "1", "--depths", "7", "--repeats", "1", "--samples", "5000"]
    assert main([*args, "--json", str(figures)]) == 0
    from mould.recon.poisson import PoissonConfig

    out = capsys.readouterr().out
    # open3d runs at the default depth, the one a user gets
    assert "| stitch | - |" in out and f"| poisson open3d d{PoissonConfig().depth} | gradient |" in out
    report = json.loads(figures.read_text())
    assert report["bodies"] == ["rest pose, average"]
    assert [set(row) for row in report["rows"]] == [{f.name for f in dataclasses.fields(MeshRow)}] * 5

"""``mould bench``'s parsers (:mod:`mould.commands.bench`): the defaults are the configs' own, options map onto
the config's fields, and parsing imports nothing heavy."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from mould.benchmarks.mesh import BenchMeshConfig
from mould.cli import build_parser
from mould.commands.bench import BENCHES, config_from_args


@pytest.mark.parametrize("bench", list(BENCHES))
def test_cli_defaults_are_the_configs_defaults(bench):
    args = build_parser().parse_args(["bench", bench])
    expected = args.config_class()
    for field in dataclasses.fields(args.config_class):
        value = getattr(args, field.name)  # every field has an option of the same name
        value = tuple(value) if isinstance(value, list) else value
        assert value == getattr(expected, field.name), f"mould bench {bench}: --{field.name} drifted"
    assert config_from_args(args) == expected


def test_options_map_onto_the_config():
    args = build_parser().parse_args(["bench", "mesh", "--depths", "6", "7", "--count", "2", "--json", "x.json"])
    config = config_from_args(args)
    assert config == BenchMeshConfig(count=2, depths=(6, 7), json=Path("x.json"))


def test_help_shows_the_configs_defaults(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "mesh", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    default = BenchMeshConfig()
    assert f"(default {' '.join(map(str, default.depths))})" in help_text
    assert f"anny bodies (default {default.count})" in help_text


def test_parsing_imports_nothing_heavy():
    # `mould bench --help` must stay instant: the configs' modules import numpy at most.
    code = (
        "import sys; from mould.cli import build_parser; build_parser().parse_args(['bench', 'encode']); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'torch', 'open3d', 'trimesh', 'anny', 'matplotlib', 'mcubes', 'pymeshlab', 'scipy'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

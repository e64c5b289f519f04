"""The machine description (:mod:`mould.machine`) printed by the benches and recorded in ``run.json``."""

from __future__ import annotations

import os
import re

from mould import machine


def test_description_names_cpu_cores_and_load(monkeypatch):
    monkeypatch.setattr(machine, "cpu_model", lambda: "Test CPU")
    monkeypatch.setattr(machine, "load_average", lambda: 2.04)
    assert machine.describe_machine() == f"Test CPU, {os.cpu_count()} cores, load 2.0"
    monkeypatch.setattr(machine, "load_average", lambda: None)  # Windows has no load average
    assert machine.describe_machine().endswith("cores, load unknown")


def test_cpu_model_and_load_of_this_machine():
    assert machine.cpu_model().strip() == machine.cpu_model() != ""
    load = machine.load_average()
    assert load is None or load >= 0
    assert re.fullmatch(r".+, \d+ cores, load (\d+\.\d|unknown)", machine.describe_machine())

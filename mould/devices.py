"""Where the network runs: the choices of every command's ``--device``.

``auto`` is CUDA when a CUDA device is available, else the CPU; ``cuda`` without one is an error
(:func:`mould.models.inference.resolve_device` decides, with torch; this module stays free of it).
"""

from __future__ import annotations

from typing import Literal

Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[Device, ...] = ("auto", "cpu", "cuda")

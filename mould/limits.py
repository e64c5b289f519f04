"""Sane sizes: the bounds every reader checks a file's declared sizes against before allocating anything.

A file can claim anything in a few bytes: an ``.npz`` header a 200000² array, a safetensors config a
network of 360 GB, a PLY header a billion faces. Readers compare such claims with these bounds first and
refuse the file in one line naming it; they never allocate what a header claims beyond them. Each bound
is far above what the toolkit's own data needs (so no real file is refused) and far below what would
exhaust a machine (so no hostile file gets that far).

Image bounds (pixels, smallest side, alpha as a mask) live in :class:`mould.images.ImageLimits`; the
largest crop side in :attr:`mould.tolerances.Tolerances.max_resolution`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SizeLimits:
    """Upper bounds on what a file or an option may ask the toolkit to allocate."""

    npz_members: int = 64
    """Arrays in one ``.npz``: a mould has at most 11, an SMPL model about 20."""
    npz_bytes: int = 1 << 30
    """Declared bytes of all arrays of one ``.npz``, uncompressed (1 GiB): the largest mould, 4096² with
    every optional map, is 654 MB (39 bytes a pixel); an SMPL model with 300 shape components ~60 MB."""
    npy_header_bytes: int = 10_000
    """Bytes of one ``.npy`` header (numpy's own default limit); real ones are under 200."""
    mesh_faces: int = 20_000_000
    """Triangles in a mesh file: ~0.5 GB as int64, with the vertices ~0.8 GB. Body scans have 0.1 to 1 M
    triangles, raw photogrammetry up to ~10 M."""
    mesh_file_bytes: int = 2 << 30
    """Bytes of a mesh file (2 GiB): a 20 M-triangle text OBJ is about 1.5 GB. Readers load files whole."""
    sample_json_bytes: int = 1 << 20
    """Bytes of a sample's JSON parameters (1 MiB); ``mould synth`` writes ~5 kB."""
    model_parameters: int = 100_000_000
    """Parameters of a network rebuilt from a checkpoint's config: 15x the ``paper`` config's 6.5 M, and
    0.4 GB of float32; a config asking for more is refused before any layer is built."""
    checkpoint_header_bytes: int = 100_000_000
    """Bytes of a safetensors JSON header (the safetensors library's own limit)."""
    training_state_bytes: int = 4 << 30
    """Bytes of a training state (``_state.pt``, 4 GiB): the ``paper`` config's optimiser and
    discriminator states are ~0.1 GB."""
    training_steps: int = 1_000_000_000
    """Steps of a run and a saved ``step``: 10^9 steps is centuries at today's speeds, and checkpoint names
    (``step_NNNNNN``) stay short."""
    mat_variable_bytes: int = 64 << 20
    """Bytes of one variable of a ``.mat`` file (SURREAL's): a 240 x 320 float64 depth map is 0.6 MB, a
    clip's poses 0.6 MB."""
    metric_samples: int = 2_000_000
    """Surface or volume samples of ``compare_meshes``: measured 410 bytes a sample at peak (surface and
    volume samples together), so 0.8 GB; at 2 M samples the error of a mean distance is 0.07 % of its
    spread (the default, 100 k, gives 0.3 %)."""


LIMITS = SizeLimits()
"""The bounds every reader uses."""

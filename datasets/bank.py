"""The body bank: everything the generator needs of anny, in one ``.safetensors`` file.

The generator poses, dresses and renders bodies with torch alone (:mod:`mould.datasets.posing`), so it runs
where ``anny`` (and NVIDIA Warp under it) cannot be installed, e.g. a GPU machine reached through a small
transfer. The bank holds anny's full-body model in the configuration the toolkit uses (compact phenotype
blend shapes, the ``anny`` rig with cached bone orientations, ``local-ref`` pose parameters):

- the topology: triangles, UVs, per-vertex skinning weights (9 bones a vertex);
- the rig: bone names, parents, reference orientations;
- the phenotype blend basis: template and blend shapes of the vertices, the bone heads and the bone
  orientation matrices, and the map from phenotype values to blend coefficients (interpolation anchors,
  the variation mask and the compact projection).

About 25 MB in float32 (the blend shapes are 22 MB of it); no pickles. Where it comes from
(:func:`body_bank`): ``$MOULD_BODY_BANK`` if set; else the cache ``$XDG_CACHE_HOME/mould/`` (default
``~/.cache/mould/``), built there from anny on first use when anny is installed.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from mould.errors import InputError
from mould.files import write_atomic

log = logging.getLogger(__name__)

BANK_FORMAT = "mould-body-bank"
BANK_VERSION = 1
"""Bumped whenever the bank's content or layout changes; a bank of another version is rebuilt or refused."""
BANK_ENV = "MOULD_BODY_BANK"
"""Environment variable naming a bank file to use instead of the cache."""
MAX_BANK_BYTES = 30 * 1000**2
"""The bank must fit a small transfer next to the package (the GPU recipe carries both in 64 MiB)."""

_TENSORS = (
    "template_vertices",
    "blendshapes",
    "template_heads",
    "head_blendshapes",
    "template_orientations",
    "orientation_blendshapes",
    "reference_orientations",
    "variation_mask",
    "projection",
    "faces",
    "uv",
    "face_uv",
    "skin_weights",
    "skin_bones",
    "bone_parents",
)


@dataclass(frozen=True, eq=False)
class BodyBank:
    """anny's full-body model as plain tensors (CPU); anny's frame: metres, z up, the body facing -y.

    Attributes:
        template_vertices: (V, 3) float32, the template mesh (V = 13,718).
        blendshapes: (K, V, 3) float32, vertex offsets per blend coefficient (K = 136, compact basis).
        template_heads, head_blendshapes: (J, 3) and (K, J, 3) float32, the bones' heads (J = 104).
        template_orientations, orientation_blendshapes: (J, 3, 3) and (K, J, 3, 3) float32: the rest
            orientation of a bone is the rotation nearest to their blend (anny's ``cached`` orientations).
        reference_orientations: (J, 3, 3) float32, the axes ``local-ref`` pose parameters are expressed in.
        variation_mask: (P, W) float32 in {0, 1}: blend shape p of the original basis is the product of the
            weights of the variations it marks (W = 26 variations).
        projection: (P, K) float32, original blend weights -> compact coefficients.
        anchors: group name -> (n,) float32 interpolation anchors of that group's n variations; groups
            without anchors (``race``) take normalised equal weights.
        faces: (F, 3) int64 triangles (F = 27,420), counter-clockwise seen from outside.
        uv: (T, 2) float32 texture coordinates; face_uv: (F, 3) int64, their indices per face corner.
        skin_weights: (V, S) float32 (rows sum to 1); skin_bones: (V, S) int64 bone indices (S = 9).
        bone_parents: (J,) int64, -1 for the root (bone 0).
        bone_labels: J bone names.
        groups: (group name, number of variations) in the order of ``variation_mask``'s columns.
        phenotypes: the phenotype names callers set (the others are 0.5).
        anny_version: the anny release the bank was made from.
    """

    template_vertices: torch.Tensor
    blendshapes: torch.Tensor
    template_heads: torch.Tensor
    head_blendshapes: torch.Tensor
    template_orientations: torch.Tensor
    orientation_blendshapes: torch.Tensor
    reference_orientations: torch.Tensor
    variation_mask: torch.Tensor
    projection: torch.Tensor
    anchors: dict[str, torch.Tensor]
    faces: torch.Tensor
    uv: torch.Tensor
    face_uv: torch.Tensor
    skin_weights: torch.Tensor
    skin_bones: torch.Tensor
    bone_parents: torch.Tensor
    bone_labels: tuple[str, ...]
    groups: tuple[tuple[str, int], ...]
    phenotypes: tuple[str, ...]
    anny_version: str

    @property
    def vertex_count(self) -> int:
        return int(self.template_vertices.shape[0])

    def bone(self, name: str) -> int:
        """The index of a bone by name."""
        return self.bone_labels.index(name)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the bank atomically as ``.safetensors`` (metadata: format, version, names)."""
        from safetensors.torch import save

        tensors = {name: getattr(self, name).contiguous() for name in _TENSORS}
        tensors.update({f"anchors.{k}": v.contiguous() for k, v in self.anchors.items()})
        metadata = {
            "format": BANK_FORMAT,
            "version": str(BANK_VERSION),
            "bone_labels": json.dumps(list(self.bone_labels)),
            "groups": json.dumps([list(g) for g in self.groups]),
            "phenotypes": json.dumps(list(self.phenotypes)),
            "anny_version": self.anny_version,
        }
        data = save(tensors, metadata=metadata)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda handle: handle.write(data))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> BodyBank:
        """Read a bank; a missing, foreign or outdated file raises :class:`InputError` naming it."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such body bank file")
        try:
            with open(path, "rb") as handle:
                header = _safetensors_metadata(handle)
            tensors = load_file(str(path))
        except (OSError, ValueError, SafetensorError) as error:
            raise InputError(f"{path}: not a readable body bank ({error})") from None
        if header.get("format") != BANK_FORMAT:
            raise InputError(f"{path}: not a body bank (no '{BANK_FORMAT}' format in its metadata)")
        if header.get("version") != str(BANK_VERSION):
            raise InputError(
                f"{path}: body bank version {header.get('version')}, this toolkit reads version {BANK_VERSION}; "
                "make a new one with `mould synth bank OUT.safetensors` where anny is installed"
            )
        try:
            return cls(
                **{name: tensors[name] for name in _TENSORS},
                anchors={k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith("anchors.")},
                bone_labels=tuple(json.loads(header["bone_labels"])),
                groups=tuple((str(name), int(n)) for name, n in json.loads(header["groups"])),
                phenotypes=tuple(json.loads(header["phenotypes"])),
                anny_version=header.get("anny_version", "?"),
            )
        except (KeyError, ValueError, TypeError) as error:
            raise InputError(f"{path}: incomplete body bank ({error})") from None


def _safetensors_metadata(handle) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, read from its header alone."""
    size = int.from_bytes(handle.read(8), "little")
    if not 0 < size < 100_000_000:
        raise ValueError("bad header size")
    return json.loads(handle.read(size)).get("__metadata__", {})


# -- making a bank from anny ------------------------------------------------------------------------------
def bank_from_anny() -> BodyBank:
    """The bank of the anny model the toolkit uses (:func:`mould.datasets.bodies.anny_model`).

    Raises:
        ImportError: anny is not installed.
    """
    import anny
    from anny.models.model_data import PHENOTYPE_VARIATIONS
    from mould.datasets.bodies import anny_model

    model = anny_model()
    if model.bone_orientation != "cached" or model.pose_parameterization != "local-ref":
        raise RuntimeError(
            f"anny {anny.__version__}: expected cached bone orientations and local-ref poses, got "
            f"{model.bone_orientation} and {model.pose_parameterization}"
        )
    if model.root_identity_orientation or model.extrapolate_phenotypes:
        raise RuntimeError(f"anny {anny.__version__}: unexpected root orientation or phenotype extrapolation")

    def f32(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.detach().cpu().to(torch.float32).contiguous()

    def i64(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.detach().cpu().to(torch.int64).contiguous()

    groups = tuple((name, len(values)) for name, values in PHENOTYPE_VARIATIONS.items())
    return BodyBank(
        template_vertices=f32(model.template_vertices),
        blendshapes=f32(model.blendshapes),
        template_heads=f32(model.template_bone_heads),
        head_blendshapes=f32(model.bone_heads_blendshapes),
        template_orientations=f32(model.bone_template_orientation_matrices),
        orientation_blendshapes=f32(model.bone_orientation_blendshapes),
        reference_orientations=f32(model.reference_bone_orientations),
        variation_mask=f32(model.stacked_phenotype_blend_shapes_mask),
        projection=f32(model.phenotype_blendshape_projection),
        anchors={name: f32(model.anchors[name]) for name, _ in groups if name != "race"},
        faces=i64(model.get_triangular_faces()),
        uv=f32(model.texture_coordinates),
        face_uv=i64(model.face_texture_coordinate_indices),
        skin_weights=f32(model.vertex_bone_weights),
        skin_bones=i64(model.vertex_bone_indices),
        bone_parents=torch.tensor([int(p) for p in model.bone_parents], dtype=torch.int64),
        bone_labels=tuple(model.bone_labels),
        groups=groups,
        phenotypes=tuple(model.phenotype_labels),
        anny_version=str(anny.__version__),
    )


def export_bank(path: str | os.PathLike) -> Path:
    """Build the bank from anny and write it to ``path``.

    Raises:
        InputError: anny is not installed, or the bank would exceed :data:`MAX_BANK_BYTES`.
    """
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            bank = bank_from_anny()
    except ImportError:
        raise InputError("making a body bank needs the 'anny' package: pip install anny") from None
    path = bank.save(path)
    size = path.stat().st_size
    if size > MAX_BANK_BYTES:
        path.unlink()
        raise InputError(f"{path}: the bank would take {size / 1e6:.1f} MB, over {MAX_BANK_BYTES / 1e6:.0f} MB")
    return path


# -- finding the bank -------------------------------------------------------------------------------------
def cache_path() -> Path:
    """Where the bank is cached: ``$XDG_CACHE_HOME/mould/body-bank-vN.safetensors`` (default ``~/.cache``)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "mould" / f"body-bank-v{BANK_VERSION}.safetensors"


def bank_path() -> Path:
    """The bank file to use, made from anny into the cache if needed.

    Raises:
        InputError: ``$MOULD_BODY_BANK`` names no file, or there is no bank and anny is not installed.
    """
    chosen = os.environ.get(BANK_ENV)
    if chosen:
        path = Path(chosen)
        if not path.is_file():
            raise InputError(f"{BANK_ENV}={chosen}: no such body bank file")
        return path
    path = cache_path()
    if path.is_file():
        return path
    try:
        import anny  # noqa: F401
    except ImportError:
        raise InputError(
            f"no body bank at {path}: install anny (pip install anny) to make one, or carry a bank made by "
            f"`mould synth bank OUT.safetensors` and set {BANK_ENV}=OUT.safetensors"
        ) from None
    log.info("making the body bank %s from anny (once)", path)
    return export_bank(path)


@functools.lru_cache(maxsize=1)
def body_bank() -> BodyBank:
    """The body bank (:func:`bank_path`), loaded once per process."""
    return BodyBank.load(bank_path())

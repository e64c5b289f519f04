"""The options of ``mould reconstruct``: how photos become meshes, and how the person is framed.

Kept light (numpy at most, through the constants it names) so that ``mould --help`` stays instant: the
command line reads its defaults from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mould.checks import check_option
from mould.devices import DEVICES, Device
from mould.errors import InputError
from mould.recon.export import MESH_EXTENSIONS
from mould.recon.mesh import MESHERS, Mesher
from mould.recon.texture import BACK_TEXTURES, BackTexture


@dataclass(frozen=True)
class CropConfig:
    """How the person is framed."""

    size: int = 256
    """Side of the crop in pixels: the network's input."""
    margin: float = 0.1
    """Free border on each side, as a fraction of the crop; the training crops use the same 0.1."""
    max_iterations: int = 4
    """Silhouette-guided re-crops at most; each one costs a forward pass."""
    stable_iou: float = 0.95
    """Two successive crops with at least this overlap (area IoU) are stable."""
    min_pixels: int = 20
    """A silhouette smaller than this many crop pixels is 'no person found'."""


MESH_FORMATS = tuple(extension.lstrip(".") for extension in MESH_EXTENSIONS)
"""``--format`` choices: what :func:`mould.recon.export.write_mesh` writes."""


@dataclass(frozen=True)
class ReconstructConfig:
    """Options of ``mould reconstruct``."""

    outdir: Path
    """Folder for every output; nothing is written outside it."""
    formats: tuple[str, ...] = ("obj", "ply", "glb")
    """Mesh formats to write, among obj, ply, glb."""
    mesher: Mesher = "stitch"
    """Direct stitching of the two maps (the default: 28 ms at 256², watertight by construction) or screened
    Poisson (smoother, 0.8 s for a predicted mould on 2 cores)."""
    back_texture: BackTexture = "predicted"
    """How the unseen back is coloured: the network's predicted back colour (``mirror`` for a model without a
    back-colour head), the front colour carried through (``mirror``), the nearest visible colour, or grey."""
    save_mould: bool = False
    """Also write the predicted mould as .npz."""
    preview: bool = True
    """Write a preview PNG: the crop beside renders of the mesh from the front, side and back."""
    focal_factor: float = 50 / 36
    """Assumed focal length as a multiple of the photo's long side (50 mm-equivalent lens)."""
    distance: float = 2.8
    """Assumed camera-to-person distance in metres (the depth reference)."""
    device: Device = "auto"
    """Where the network runs (:mod:`mould.devices`)."""
    crop: CropConfig = field(default_factory=CropConfig)
    """How the person is framed."""

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise InputError(f"--device: expected one of {', '.join(DEVICES)}, got {self.device}")
        unknown = set(self.formats) - set(MESH_FORMATS)
        if unknown or not self.formats:
            known, given = ", ".join(MESH_FORMATS), ",".join(self.formats)
            raise InputError(f"--format: expected some of {known}, got {given}")
        if self.mesher not in MESHERS:
            raise InputError(f"--mesher: expected one of {', '.join(MESHERS)}, got {self.mesher}")
        if self.back_texture not in BACK_TEXTURES:
            raise InputError(
                f"--back-texture: expected one of {', '.join(BACK_TEXTURES)}, got {self.back_texture}"
            )
        check_option("--focal-factor", self.focal_factor, 0, 1000)
        check_option("--distance", self.distance, 0, 1e6)
        if not (self.focal_factor > 0 and self.distance > 0):
            raise InputError("--focal-factor and --distance must be positive")

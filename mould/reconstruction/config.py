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
from mould.models.runtime import RUNTIMES, Runtime
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
    min_pixels: int = 20
    """A silhouette (or a seed region of the whole-photo prediction) smaller than this many crop pixels is
    nobody."""
    min_size: float = 64.0
    """A silhouette whose longer side spans fewer photo pixels than this is too small to reconstruct: its crop
    is magnified more than three times into the network's 256-pixel input, and the generator's smallest
    people are 83 pixels tall at 256². On blurred, magnified textures the shipped network paints a person:
    9 of the 12 clutter backgrounds of the slow tests it framed, and one of the 5 empty regions of the test
    photos, were framed on figures 20-60 pixels tall (the test photos' people: 350-460)."""
    seeds: int = 2
    """Regions of the whole-photo prediction, by probability mass, around which the search looks (plus all
    regions together when there are more)."""
    zooms: tuple[float, ...] = (1.0, 1.5)
    """Crops around each seed: its framing square times each factor (1.0: the training framing; 1.5 keeps in
    view the rest of a person of whom the seed is a part). All go through the network in one batch."""
    refinements: int = 2
    """Re-framings of the best crop at the training margin at most (each one pass)."""
    refine_keep: float = 0.9
    """A re-framed crop replaces the best one unless its score falls below this share of the best's."""
    same_crop_iou: float = 0.9
    """A crop overlapping one already predicted by this much (area IoU) is not predicted again."""
    min_extent: float = 0.45
    """A silhouette whose longer side spans less of its crop than this was never confirmed close up: the search
    frames every candidate at the training margin (where a figure spans 0.83 of the crop) and zoomed out ×1.5
    (0.56), so a figure it keeps small is one whose closer crops were all refused: a patch of texture that
    only looks like a speck of a person from afar. Measured with stage 10: the framed people span 0.55-0.84
    of their crops (161 synthetic, pasted and photographed); 6 of the 10 person-free wallpapers it framed,
    and the one empty region of the test photos it framed, came from figures spanning 0.09-0.38 of a far
    crop (docs/reconstruction.md)."""
    min_contrast: float = 0.5
    """A person's silhouette is sharp: mean probability on it minus around it below this is nobody (flat black,
    which the shipped network half-believes is a person, scores 0.40-0.42; the 109 people measured, 0.55 and
    up)."""
    min_thickness: float = 0.06
    """Radius of the largest disc inside the silhouette / its extent, below which it is a pole, a wire or a
    gap between two boxes (0.02-0.06) rather than a body with a torso (people: 0.075 and up)."""
    min_edge_support: float = 1.2
    """Edge strength along the outline / over the crop, below which the outline follows nothing in the photo:
    0 on flat colours, about 1 on noise; people 1.21 and up (1.38 for 95 % of them)."""
    max_photo_share: float = 0.6
    """A silhouette covering more of the photo's pixels in the crop than this is the network painting the
    whole picture (blurred foliage, noise: up to 0.8), not a figure on a background (people: 0.06-0.42)."""
    max_solidity: float = 0.9
    """Silhouette area / its convex hull's, above which it is a disc, a box, a triangle or a blob: a body has
    hollows between the legs, under the arms, at the neck (people: 0.34-0.82)."""

    min_person_score: float = 0.45
    """The confidence at which MediaPipe's person detector, packaged
    (:mod:`mould.reconstruction.person_detector`), must see a person in the framed crop (or on the whole photo,
    inside the crop) for the figure the network frames to be one; 0 turns the check off. MediaPipe's own
    default is 0.5. Measured (2026-12-02, docs/reconstruction.md) on the 271 people the network framed, one
    generated person scores 0.501, on that edge, the others 0.584 and up but one (0.33); on the 20 person-free
    images it framed, a crop of a rocket scores 0.42, and all but a carved bird (0.54-0.82) less: 0.45 keeps a
    margin on both sides."""

    def __post_init__(self) -> None:
        if not 0 <= self.min_person_score <= 1:
            raise InputError(f"--min-person-score: expected 0 to 1, got {self.min_person_score}")
        if self.size < 16 or not 0 <= self.margin < 0.5:
            raise ValueError(f"size, margin: expected >= 16 and in [0, 0.5), got {self.size}, {self.margin}")
        if self.seeds < 1 or self.refinements < 0 or not self.zooms or min(self.zooms) <= 0:
            raise ValueError("seeds >= 1, refinements >= 0 and positive zooms expected")


OUTLINES = ("segmenter", "network")
"""``--outline`` choices: where the mould's mask comes from without a mask file."""

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
    """How the unseen back is coloured: the network's predicted back colour, smoothed (``smooth`` for a model
    without a back-colour head), the front colour smoothed (``smooth``) or carried through as it is
    (``mirror``), the nearest visible colour, or grey (:mod:`mould.recon.texture`)."""
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
    runtime: Runtime = "auto"
    """What runs the network: torch, onnxruntime, or auto (:func:`mould.models.runtime.choose_runtime`)."""
    crop: CropConfig = field(default_factory=CropConfig)
    """How the person is framed."""
    snap_radius: int = 8
    """Radius in crop pixels of the guided filter that snaps the network's silhouette to the crop's colour
    edges (:mod:`mould.reconstruction.guided_filter`); 0 keeps the network's outline. 8 was chosen on 50
    synthetic people among 2-16 (16 blurs thin limbs away, 2 moves the outline little)."""
    snap_eps: float = 1e-4
    """The guided filter's regularisation, squared colour units in [0, 1]: colour steps much larger than 0.01
    count as edges. 1e-4 was chosen among 1e-4 to 1e-2 with the radius (1e-2 follows the network's blur)."""
    outline: str = "segmenter"
    """Where the person's outline comes from without a mask: ``segmenter``, MediaPipe's pose landmark model
    (trained on real photographs; :mod:`mould.reconstruction.person_segmenter`) on the person the detector
    confirmed, or ``network``, our network's silhouette snapped and re-cut (``snap_radius``,
    ``grabcut_iterations``), which ``segmenter`` falls back to where the landmark model sees no person in its
    square (presence under 0.5) or no detection confirmed the framing (``--min-person-score 0``)."""
    grabcut_iterations: int = 1
    """Rounds of GrabCut that re-cut the snapped silhouette from the crop's colours
    (:mod:`mould.reconstruction.grabcut`); 0 keeps the snapped outline. 1 was chosen among 1, 3 and 5 (as
    good as 3 and 5 on the pasted people, better on the generated ones, and the quickest)."""

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise InputError(f"--device: expected one of {', '.join(DEVICES)}, got {self.device}")
        if self.runtime not in RUNTIMES:
            raise InputError(f"--runtime: expected one of {', '.join(RUNTIMES)}, got {self.runtime}")
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
        if not (0 <= self.snap_radius <= 64 and self.snap_eps > 0):
            raise InputError(f"--snap-radius: expected 0 to 64, got {self.snap_radius} (eps {self.snap_eps})")
        if self.outline not in OUTLINES:
            raise InputError(f"--outline: expected one of {', '.join(OUTLINES)}, got {self.outline}")
        if not 0 <= self.grabcut_iterations <= 20:
            raise InputError(f"--grabcut-iterations: expected 0 to 20, got {self.grabcut_iterations}")
        check_option("--focal-factor", self.focal_factor, 0, 1000)
        check_option("--distance", self.distance, 0, 1e6)
        if not (self.focal_factor > 0 and self.distance > 0):
            raise InputError("--focal-factor and --distance must be positive")

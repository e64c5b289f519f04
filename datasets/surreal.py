"""SURREAL (Varol et al., CVPR 2017) in its released layout, as training records.

Layout (``ROOT`` is the folder holding ``cmu/``, or ``cmu/`` itself)::

    cmu/{train,val,test}/run{0,1,2}/<seq>/<seq>_cNNNN.mp4         320 x 240 RGB video, T frames
                                         <seq>_cNNNN_info.mat     camLoc, pose, shape, gender, zrot, joints3D...
                                         <seq>_cNNNN_depth.mat    depth_1 .. depth_T, (240, 320) metres
                                         <seq>_cNNNN_segm.mat     segm_1 .. segm_T, (240, 320) 0 background

What this loader does with it, and why:

- **Intrinsics.** K = [[600, 0, 160], [0, 600, 120], [0, 0, 1]] (Blender: 60 mm lens, 32 mm sensor,
  320 x 240). Blender puts pixel centres at half-integers, so in the toolkit's convention (centres at
  integers) the principal point is (159.5, 119.5).
- **Extrinsics** as the official ``getExtrinsicBlender`` (``datageneration/misc/smpl_relations``): a
  Blender camera at ``camLoc`` looking along world -X, R_world2cv = diag(1, -1, -1) R_world2bcam with
  R_world2bcam = [[0, 0, 1], [0, -1, 0], [-1, 0, 0]]^T, t = -R camLoc. That camera's up vector (column 1 of
  its matrix_world) is world -Y, and the official body rotation (below) stands people along -Y too: in
  SURREAL's scenes the vertical is -Y, not Blender's +Z. Records use the toolkit's +Y-up world, SURREAL's
  turned 180 degrees about X: (x, y, z) -> (x, -y, -z).
- **Mirror.** That R_world2cv has determinant -1 (Blender's matrix_world for the camera has one), so the
  released frames, depth and segmentation maps are *mirror images* of the SMPL scene: the official demo
  notes that "left/right are swapped", and other readers flip the maps (``segm[:, ::-1]``) or negate the
  first row of the extrinsics. Here the frame, depth and segmentation are flipped left-right at the door
  (u -> 319 - u, which keeps the principal point 159.5) and the camera is the proper rotation
  diag(-1, 1, 1) R_world2cv, so that records show the person with their true handedness.
- **Depth.** SURREAL was rendered with Blender 2.78's Cycles (its OSL shaders are Cycles-only), whose Z
  pass is the distance from the camera centre along each pixel's ray, not the planar z: Blender
  StackExchange question 87504 and, for Blender 2.79 Cycles, rehg-lab/3DShapeGen issue 7. It is
  converted at the door: z = d / sqrt(1 + ((u - cx) / f)^2 + ((v - cy) / f)^2). ``depth_kind="planar"``
  skips the conversion for files known to hold planar z. The background value 1e10 becomes the mask
  (together with ``segm > 0``).
- **Hidden depth** comes from the SMPL body: ``pose`` with the global orientation replaced as the official
  code does (R = Rx(90 degrees) Rz(zrot) R(pose[:3])), ``shape``, the ``gender``'s model, translated so that
  its root joint lands on ``joints3D[0]`` (the official demo subtracts the template's root instead of the
  shaped body's; the two differ by the shape's effect on the pelvis, a centimetre or so), ray-cast with
  :func:`mould.encode.encode_mesh` in the crop. The SMPL model files are the user's (never bundled), read
  as ``.npz`` only (:mod:`mould.datasets.smpl`).
- **Crop.** 256 x 256 around the person's mask by the toolkit's framing rule
  (:mod:`mould.datasets.crops`). The visible depth and the mask come from SURREAL's files (re-sampled by
  nearest neighbour), the hidden depth and the normals from the SMPL cast; where the cast misses a mask
  pixel (a sub-pixel misalignment at the silhouette) the hidden depth is the visible one, and it is never
  in front of it.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
from mould.datasets.augment import AugmentConfig
from mould.datasets.crops import crop_around, mask_extent
from mould.datasets.smpl import SmplModel, load_smpl, smpl_joints, smpl_vertices
from mould.datasets.source import RecordSource

from mould.container import Mould
from mould.encode import encode_mesh
from mould.errors import InputError
from mould.framing import sample_frame

log = logging.getLogger(__name__)

SURREAL_INTRINSICS = np.array([[600.0, 0.0, 159.5], [0.0, 600.0, 119.5], [0.0, 0.0, 1.0]])
"""K of SURREAL's 320 x 240 frames with pixel centres at integers (the released K has cx, cy = 160, 120
with Blender's half-integer centres)."""

BACKGROUND_DEPTH = 1e9
"""Depths at or beyond this are background (SURREAL stores 1e10)."""

SURREAL_TO_WORLD = np.diag([1.0, -1.0, -1.0])
"""SURREAL's world (people stand along -Y) to the toolkit's +Y-up world: (x, y, z) -> (x, -y, -z)."""

_CLIP = re.compile(r"^(?P<stem>.+_c\d{4})\.mp4$")


def surreal_extrinsics(cam_loc: np.ndarray) -> np.ndarray:
    """(4, 4) world-to-camera (OpenCV axes) of a SURREAL camera at ``cam_loc`` (3,), SURREAL's world.

    The official ``getExtrinsicBlender`` with its x axis negated: the official rotation is a reflection
    (determinant -1) that matches the mirrored released frames; this one is a rotation and matches the
    frames once flipped left-right (see the module docstring).
    """
    r_world2bcam = np.array([[0.0, 0, 1], [0, -1, 0], [-1, 0, 0]]).T
    r_bcam2cv = np.diag([1.0, -1.0, -1.0])
    rotation = np.diag([-1.0, 1.0, 1.0]) @ r_bcam2cv @ r_world2bcam
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    matrix[:3, 3] = -rotation @ np.asarray(cam_loc, dtype=np.float64).ravel()
    return matrix


def surreal_cam_to_world(cam_loc: np.ndarray) -> np.ndarray:
    """(4, 4) camera-to-world of a SURREAL camera, in the toolkit's +Y-up world."""
    world_to_cam = surreal_extrinsics(cam_loc)
    cam_to_world = np.eye(4)
    cam_to_world[:3, :3] = world_to_cam[:3, :3].T
    cam_to_world[:3, 3] = -world_to_cam[:3, :3].T @ world_to_cam[:3, 3]
    to_world = np.eye(4)
    to_world[:3, :3] = SURREAL_TO_WORLD
    return to_world @ cam_to_world


def ray_to_planar(distance: np.ndarray, intrinsics: np.ndarray = SURREAL_INTRINSICS) -> np.ndarray:
    """Planar depth z from distances along each pixel's ray, (H, W) -> (H, W), same units."""
    h, w = distance.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    x = (u - intrinsics[0, 2]) / intrinsics[0, 0]
    y = (v - intrinsics[1, 2]) / intrinsics[1, 1]
    return distance / np.sqrt(1 + x * x + y * y)


def surreal_body_rotation(zrot: float, root_pose: np.ndarray) -> np.ndarray:
    """(3, 3) global orientation of the SMPL body in SURREAL's world (official ``rotateBody``)."""
    from mould.datasets.smpl import axis_angle_to_matrix

    c, s = np.cos(zrot), np.sin(zrot)
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    rx90 = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # euler2mat(pi/2, 0, 0)
    return rx90 @ rz @ axis_angle_to_matrix(np.asarray(root_pose, dtype=np.float64))


def find_clips(root: str | os.PathLike, split: str) -> list[Path]:
    """The ``.mp4`` clips of a split that have their three ``.mat`` files, sorted."""
    root = Path(root)
    base = root if root.name == "cmu" else root / "cmu"
    clips = []
    for video in sorted((base / split).glob("run*/*/*.mp4")):
        match = _CLIP.match(video.name)
        if match and all(
            (video.parent / f"{match['stem']}_{kind}.mat").is_file() for kind in ("info", "depth", "segm")
        ):
            clips.append(video)
    return clips


class SurrealDataset(RecordSource):
    """SURREAL frames as training records (see the module docstring).

    Args:
        root: the folder holding ``cmu/`` (or ``cmu/`` itself).
        smpl: the user's SMPL model ``.npz``: one path for both genders, or ``{"female": path, "male": path}``;
            None looks beside ``cmu/`` for ``smpl_female.npz`` and ``smpl_male.npz``, else ``smpl.npz`` (so
            that ``mould train --data ROOT`` finds them).
        split: ``train``, ``val`` or ``test``.
        frame_step: keep every ``frame_step``-th frame of each clip (neighbouring frames are near duplicates).
        resolution: the crop's side.
        depth_kind: ``"ray"`` (SURREAL's Cycles Z pass, converted) or ``"planar"``.
        augment, seed: as :class:`~mould.datasets.folder.SampleFolder`.

    A frame that cannot be read (corrupt file, empty mask) is logged, counted and replaced by the next one
    (:mod:`mould.datasets.source`).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        smpl: str | os.PathLike | dict[str, str | os.PathLike] | None = None,
        split: str = "train",
        frame_step: int = 10,
        resolution: int = 256,
        depth_kind: str = "ray",
        augment: AugmentConfig | None = None,
        seed: int = 0,
    ) -> None:
        if split not in ("train", "val", "test"):
            raise InputError(f"split: expected train, val or test, got {split!r}")
        if depth_kind not in ("ray", "planar"):
            raise InputError(f"depth_kind: expected 'ray' or 'planar', got {depth_kind!r}")
        if frame_step < 1:
            raise InputError(f"frame_step: expected >= 1, got {frame_step}")
        if smpl is None:
            smpl = _smpl_beside(Path(root))
        self.smpl_paths = (
            {"female": Path(smpl["female"]), "male": Path(smpl["male"])}
            if isinstance(smpl, dict)
            else {
                "female": Path(smpl),
                "male": Path(smpl),
            }
        )
        for path in self.smpl_paths.values():
            load_smpl(path)  # fail now, not in a worker
        super().__init__(augment, seed)
        self.root = Path(root)
        self.resolution = int(resolution)
        self.depth_kind = depth_kind
        self.items: list[tuple[Path, int]] = []
        for clip in find_clips(self.root, split):
            count = _frame_count(clip)
            self.items.extend((clip, t) for t in range(0, count, frame_step))
        if not self.items:
            raise InputError(f"{self.root}: no SURREAL clips found under cmu/{split}/run*/<seq>/")
        self.size = len(self.items)
        self._models: dict[str, SmplModel] = {}

    def __repr__(self) -> str:
        return f"SurrealDataset({self.root})"

    def describe(self, index: int) -> str:
        clip, t = self.items[index]
        return f"{clip} frame {t}"

    def load_mould(self, index: int) -> Mould:
        return self.frame_mould(*self.items[index])

    def model(self, gender: str) -> SmplModel:
        """The SMPL model of ``"female"`` or ``"male"`` (read once per dataset object and process)."""
        if gender not in self._models:
            self._models[gender] = load_smpl(self.smpl_paths[gender])
        return self._models[gender]

    def frame_maps(self, clip: Path, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """Frame ``t`` (0-based) of a clip as read at the door, un-mirrored, at full 320 x 240 size.

        Returns:
            (image (240, 320, 3) uint8, planar depth (240, 320) float64 metres (0 outside the mask),
            mask (240, 320) bool, the info file's variables).
        """
        stem = _CLIP.match(clip.name)["stem"]
        info = _load_mat(clip.parent / f"{stem}_info.mat", list(_INFO_VARIABLES))
        # [:, ::-1]: the released maps and frames are mirror images (see the module docstring).
        depth = _load_mat(clip.parent / f"{stem}_depth.mat", [f"depth_{t + 1}"])[f"depth_{t + 1}"]
        depth = depth.astype(np.float64)[:, ::-1]
        segm = _load_mat(clip.parent / f"{stem}_segm.mat", [f"segm_{t + 1}"])[f"segm_{t + 1}"][:, ::-1]
        if depth.shape != (240, 320) or segm.shape != (240, 320):
            raise InputError(f"{clip}: frame {t}: depth {depth.shape} and segm {segm.shape}, expected (240, 320)")
        mask = (depth < BACKGROUND_DEPTH) & (segm > 0)
        depth = np.where(mask, depth, 0.0)
        planar = ray_to_planar(depth) if self.depth_kind == "ray" else depth
        return np.ascontiguousarray(_read_frame(clip, t)[:, ::-1]), planar, mask, info

    def frame_mould(self, clip: Path, t: int) -> Mould:
        """The mould (with its crop as image) of frame ``t`` (0-based) of a clip."""
        frame, planar, mask, info = self.frame_maps(clip, t)
        extent = mask_extent(mask)
        if extent is None:
            raise InputError(f"{clip}: frame {t} shows no person")
        cam_to_world = surreal_cam_to_world(np.asarray(info["camLoc"]).ravel())
        crop = crop_around(SURREAL_INTRINSICS, cam_to_world, extent, self.resolution)
        image = np.clip(sample_frame(frame, crop.window, order=1) + 0.5, 0, 255).astype(np.uint8)
        visible = sample_frame(planar, crop.window, order=0).astype(np.float32)
        crop_mask = (sample_frame(mask.astype(np.float64), crop.window, order=0) > 0.5) & (visible > 0)

        vertices, faces = self.body_mesh(info, t)
        cast = encode_mesh(vertices, faces, crop.camera, normals=True).mould
        hidden = np.where(cast.mask, cast.hidden, visible)
        hidden = np.maximum(hidden, visible).astype(np.float32)
        keep = crop_mask[..., None]
        return Mould(
            visible=np.where(crop_mask, visible, 0),
            hidden=np.where(crop_mask, hidden, 0),
            mask=crop_mask,
            camera=crop.camera,
            image=image,
            visible_normals=np.where(keep & cast.mask[..., None], cast.visible_normals, 0).astype(np.float32),
            hidden_normals=np.where(keep & cast.mask[..., None], cast.hidden_normals, 0).astype(np.float32),
        )

    def body_mesh(self, info: dict, t: int) -> tuple[np.ndarray, np.ndarray]:
        """The frame's SMPL body, toolkit world frame: (vertices (6890, 3), faces (13776, 3))."""
        gender = "male" if int(np.asarray(info["gender"]).ravel()[t]) == 1 else "female"
        model = self.model(gender)
        pose = np.asarray(info["pose"], dtype=np.float64)[:, t]
        betas = np.asarray(info["shape"], dtype=np.float64)[:, t]
        zrot = float(np.asarray(info["zrot"]).ravel()[0])
        joints3d = np.asarray(info["joints3D"], dtype=np.float64)[:, :, t].T
        translation = joints3d[0] - smpl_joints(model, betas)[0]
        vertices, _ = smpl_vertices(
            model, pose, betas, root_rotation=surreal_body_rotation(zrot, pose[:3]), translation=translation
        )
        return vertices @ SURREAL_TO_WORLD.T, model.faces


def _smpl_beside(root: Path) -> str | dict[str, Path]:
    """The SMPL model files a user placed beside ``cmu/``."""
    base = root.parent if root.name == "cmu" else root
    female, male, single = base / "smpl_female.npz", base / "smpl_male.npz", base / "smpl.npz"
    if female.is_file() and male.is_file():
        return {"female": female, "male": male}
    if single.is_file():
        return str(single)
    raise InputError(
        f"{root}: SURREAL needs the SMPL body model for the hidden depth: pass smpl=PATH.npz or place "
        f"smpl_female.npz and smpl_male.npz (or smpl.npz) in {base} (your own copy, converted to .npz; SMPL is "
        "licence-restricted and never bundled)"
    )


_INFO_VARIABLES = ("camLoc", "gender", "pose", "shape", "zrot", "joints3D")
"""The variables of a clip's ``_info.mat`` the dataset uses."""


def _load_mat(path: Path, names: list[str] | None = None) -> dict:
    """The numeric variables ``names`` of a .mat file, their sizes checked before decompression."""
    from mould.datasets.matfile import load_numeric

    data = load_numeric(path, names)
    for name in names or ():
        if name not in data:
            raise InputError(f"{path}: no variable {name}")
    return data


def _frame_count(clip: Path) -> int:
    """Frames of a clip, from its info file (``pose`` is 72 x T)."""
    stem = _CLIP.match(clip.name)["stem"]
    try:
        info = _load_mat(clip.parent / f"{stem}_info.mat", ["pose"])
    except InputError as error:
        log.warning("skipping SURREAL clip %s: %s", clip, error)
        return 0
    pose = np.asarray(info["pose"])
    return int(pose.shape[1]) if pose.ndim == 2 else 1


def _read_frame(clip: Path, t: int) -> np.ndarray:
    """Frame ``t`` of a video, (240, 320, 3) uint8 (PyAV through imageio)."""
    import imageio.v3 as iio

    try:
        import av

        with av.open(str(clip)) as container:  # the stream's size from its header, before any decoding
            size = next(((s.codec_context.height, s.codec_context.width) for s in container.streams.video), None)
        if size != (240, 320):
            raise InputError(
                f"{clip}: a video of {size[1]}x{size[0]}, expected 320x240" if size else f"{clip}: no video"
            )
        frame = iio.imread(clip, plugin="pyav", index=t)
    except InputError:
        raise
    except ImportError as error:
        raise ImportError("reading SURREAL videos needs PyAV: pip install 'mould[surreal]'") from error
    except Exception as error:  # decoders raise many types for truncated files or missing frames
        raise InputError(f"{clip}: cannot decode frame {t} ({type(error).__name__}: {error})") from None
    if frame.shape != (240, 320, 3):
        raise InputError(f"{clip}: frame {t} has shape {frame.shape}, expected (240, 320, 3)")
    return frame

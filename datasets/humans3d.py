"""3D HUMANS-style data: real scans rendered into images, with their cameras and ground-truth meshes.

The 3D HUMANS dataset of *Moulding Humans* (about 19 scanned people rendered into realistic scenes) is
**not public**. This module defines a layout for data of that kind, so that anyone holding such data (their
own scans, renders or a multi-view capture) can train and evaluate on it:

```
ROOT/
  humans3d.json                  {"format": "mould-humans3d", "version": 1}  (marks the layout)
  <sequence>/                    one person (or one capture); any folder name
    mesh.ply                     optional: one mesh for every frame (a static scan)
    frames/<frame>.png|.jpg      the image (any size, RGB)
    cameras/<frame>.json         {"intrinsics": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],
                                  "cam_to_world": 4 x 4 rigid matrix,
                                  "pixel_centres": "integer" (default) or "half"}
    meshes/<frame>.ply|.obj|...  the ground-truth mesh of that frame (overrides mesh.ply)
```

- Meshes are in metres in the world frame of ``cam_to_world`` (preferably +Y up); cameras use OpenCV axes
  (x right, y down, z forward); ``"pixel_centres": "half"`` is for intrinsics whose pixel centres sit at
  half-integers (Blender, OpenGL), shifted here by -0.5 to the toolkit's integer centres.
- A frame's mould is the mesh ray-cast with :func:`mould.encode.encode_mesh` in a square crop around the
  mesh's projection, framed by the toolkit's one framing rule (:mod:`mould.datasets.crops`); the mask is the
  mesh's. Computing it takes a ray cast, so each frame's crop and mould are **cached** as a sample
  (:mod:`mould.datasets.samples`) in ``cache_dir`` (default ``ROOT/.mould_cache/r<N>``); delete the cache
  after changing the data.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
from mould.datasets.augment import AugmentConfig
from mould.datasets.crops import crop_around
from mould.datasets.samples import read_sample, write_sample
from mould.datasets.source import RecordSource

from mould.container import Mould
from mould.encode import encode_mesh
from mould.errors import InputError
from mould.framing import sample_frame
from mould.meshfile import MESH_SUFFIXES

log = logging.getLogger(__name__)

MARKER = "humans3d.json"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def find_frames(root: Path) -> list[tuple[str, str]]:
    """(sequence, frame) pairs that have an image and a camera, sorted."""
    pairs = []
    for sequence in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        frames = sequence / "frames"
        if not frames.is_dir():
            continue
        for image in sorted(frames.iterdir()):
            if image.suffix.lower() in IMAGE_SUFFIXES and (sequence / "cameras" / f"{image.stem}.json").is_file():
                pairs.append((sequence.name, image.stem))
    return pairs


def read_camera(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A camera JSON of the layout: ``(K (3, 3) with integer pixel centres, cam_to_world (4, 4))``.

    Raises:
        InputError: unreadable JSON, missing keys or bad shapes; the message names the file.
    """
    try:
        data = json.loads(path.read_text())
        intrinsics = np.asarray(data["intrinsics"], dtype=np.float64)
        cam_to_world = np.asarray(data["cam_to_world"], dtype=np.float64)
        centres = data.get("pixel_centres", "integer")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(
            f"{path}: not a camera of the 3D HUMANS layout ({type(error).__name__}: {error})"
        ) from None
    if intrinsics.shape != (3, 3) or cam_to_world.shape != (4, 4):
        raise InputError(f"{path}: intrinsics must be 3 x 3 and cam_to_world 4 x 4")
    if centres not in ("integer", "half"):
        raise InputError(f"{path}: pixel_centres must be 'integer' or 'half', got {centres!r}")
    if centres == "half":
        intrinsics = intrinsics.copy()
        intrinsics[:2, 2] -= 0.5
    return intrinsics, cam_to_world


class Humans3DDataset(RecordSource):
    """Frames of a 3D HUMANS-style tree (see the module docstring) as training records.

    Args:
        root: the folder holding ``humans3d.json``.
        resolution: the crop's side.
        margin: free border of the crop, see :func:`mould.framing.square_box`.
        cache_dir: where computed samples are kept; default ``root/.mould_cache/r<resolution>``; when it
            cannot be written, moulds are recomputed each time (and a warning says so once).
        augment, seed: as :class:`~mould.datasets.folder.SampleFolder`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        resolution: int = 256,
        margin: float = 0.1,
        cache_dir: str | os.PathLike | None = None,
        augment: AugmentConfig | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(augment, seed)
        self.root = Path(root)
        marker = self.root / MARKER
        if not marker.is_file():
            raise InputError(f"{self.root}: not a 3D HUMANS-style folder (no {MARKER})")
        try:
            header = json.loads(marker.read_text())
        except ValueError:
            raise InputError(f"{marker}: not valid JSON") from None
        if header.get("format") != "mould-humans3d" or header.get("version") != 1:
            raise InputError(f"{marker}: expected format mould-humans3d version 1, got {header}")
        self.resolution = int(resolution)
        self.margin = float(margin)
        self.cache_dir = (
            Path(cache_dir) if cache_dir is not None else self.root / ".mould_cache" / f"r{resolution}"
        )
        self.frames = find_frames(self.root)
        if not self.frames:
            raise InputError(
                f"{self.root}: no frames found (<sequence>/frames/<frame>.png with cameras/<frame>.json)"
            )
        self.size = len(self.frames)
        self._cache_warned = False

    def __repr__(self) -> str:
        return f"Humans3DDataset({self.root})"

    def describe(self, index: int) -> str:
        sequence, frame = self.frames[index]
        return str(self.root / sequence / "frames" / frame)

    def load_mould(self, index: int) -> Mould:
        sequence, frame = self.frames[index]
        name = f"{sequence}__{frame}"
        if (self.cache_dir / f"{name}.json").is_file():
            try:
                return read_sample(self.cache_dir, name, resolution=self.resolution)[0]
            except InputError as error:
                log.warning("recomputing cached sample %s: %s", self.cache_dir / name, error)
        mould = self.compute_mould(sequence, frame)
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            params = {"source": "humans3d", "sequence": sequence, "frame": frame, "margin": self.margin}
            write_sample(self.cache_dir, name, mould, mould.image, params)
        except OSError as error:
            if not self._cache_warned:
                log.warning("cannot cache moulds in %s (%s); they are recomputed each time", self.cache_dir, error)
                self._cache_warned = True
        return mould

    def compute_mould(self, sequence: str, frame: str) -> Mould:
        """Ray-cast one frame's mesh in the crop around it (no cache)."""
        from mould.images import load_photo
        from mould.meshfile import load_mesh

        folder = self.root / sequence
        image_path = next(
            (
                folder / "frames" / f"{frame}{s}"
                for s in IMAGE_SUFFIXES
                if (folder / "frames" / f"{frame}{s}").is_file()
            ),
            None,
        )
        if image_path is None:
            raise InputError(f"{folder / 'frames' / frame}: no image")
        intrinsics, cam_to_world = read_camera(folder / "cameras" / f"{frame}.json")
        mesh_path = next(
            (
                folder / "meshes" / f"{frame}{s}"
                for s in MESH_SUFFIXES
                if (folder / "meshes" / f"{frame}{s}").is_file()
            ),
            folder / "mesh.ply",
        )
        if not mesh_path.is_file():
            raise InputError(f"{folder}: no mesh for frame {frame} (meshes/{frame}.ply or mesh.ply)")
        vertices, faces = load_mesh(mesh_path)
        image = load_photo(image_path).rgb  # its size checked from the header before decoding
        world_to_cam = np.linalg.inv(cam_to_world)
        points = vertices @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
        front = points[:, 2] > 1e-6
        if not front.any():
            raise InputError(f"{mesh_path}: the mesh lies behind camera {frame}")
        u = intrinsics[0, 0] * points[front, 0] / points[front, 2] + intrinsics[0, 2]
        v = intrinsics[1, 1] * points[front, 1] / points[front, 2] + intrinsics[1, 2]
        crop = crop_around(
            intrinsics, cam_to_world, (u.min(), u.max(), v.min(), v.max()), self.resolution, margin=self.margin
        )
        encoding = encode_mesh(vertices, faces, crop.camera, normals=True)
        if not encoding.mould.mask.any():
            raise InputError(f"{mesh_path}: no pixel of the crop sees the mesh")
        pixels = np.clip(sample_frame(image, crop.window, order=1) + 0.5, 0, 255).astype(np.uint8)
        return encoding.mould.replace(image=pixels)

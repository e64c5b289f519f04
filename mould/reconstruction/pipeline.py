"""Photo -> textured, watertight mesh: the toolkit's main job.

Per photo: load it safely, frame the person (:mod:`mould.reconstruction.person`), predict the mould with the
network, mesh it, texture it from the crop, export it, and draw a preview.

**Metric scale.** One photo fixes shape only up to scale. We assume the photo was taken with a
50 mm-equivalent lens (focal = 50/36 x the photo's long side, in pixels) from ``distance`` = 2.8 m; with
these, a person filling 85 % of the long side is 1.7 m tall. The network predicts depth relative to the
person's median front depth, which we set to ``distance``. Change either with ``--focal-factor`` and
``--distance``: heights scale with distance / focal.

**Frames.** The mould lives in the camera frame (OpenCV: x right, y down, z forward). Exported meshes are
in that frame turned +Y up (x, -y, -z): the person stands upright and faces +Z, towards the viewer.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mould.container import Mould
from mould.errors import InputError, MouldError
from mould.files import path_inside
from mould.framing import CropWindow
from mould.images import IMAGE_SUFFIXES, Photo, load_mask, load_photo
from mould.reconstruction.config import ReconstructConfig
from mould.reconstruction.person import NoPersonFound, PersonCrop, crop_silhouette, find_person, inside_photo
from mould.reconstruction.person_detector import detect_people
from mould.reconstruction.person_segmenter import MIN_PRESENCE, segment_person

if TYPE_CHECKING:
    from mould.models.maps import Predictor

log = logging.getLogger(__name__)

REPORT_NAME = "report.json"
"""The run's report, in the output folder."""


@dataclass
class ImageReport:
    """What happened to one photo (serialised into report.json)."""

    input: str
    status: str = "ok"
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    vertices: int = 0
    faces: int = 0
    height_m: float | None = None
    crop_source: str | None = None
    outputs: list[str] = field(default_factory=list)


def collect_inputs(inputs: Iterable[Path]) -> list[Path]:
    """Expand folders into their image files (sorted, by suffix); files are kept as given.

    Raises:
        InputError: an input that does not exist, or no image at all.
    """
    found: list[Path] = []
    for path in inputs:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    if not found:
        raise InputError("no image found in the inputs")
    return found


def output_names(stem: str, config: ReconstructConfig) -> list[str]:
    """Every file name :meth:`Reconstructor.run_one` may write for the photo named ``stem``."""
    from mould.recon.export import output_paths

    names = [path.name for fmt in config.formats for path in output_paths(Path(f"{stem}.{fmt}"))]
    return names + [f"{stem}.npz"] * config.save_mould + [f"{stem}_preview.png"] * config.preview


def output_stems(paths: list[Path], config: ReconstructConfig) -> list[str]:
    """A safe file stem per input, such that no output replaces an input or another output of the batch.

    The stem is the input's own with odd characters replaced, then ``_2``, ``_3``… until none of its
    outputs (:func:`output_names`, in ``config.outdir``) is an input of the batch, an output of an earlier
    photo, or the run's ``report.json``: ``x.png`` reconstructed into its own folder keeps its photo, and
    ``x.png`` beside ``x_preview.png`` cannot write over the other's files.
    """
    outdir = Path(config.outdir).resolve()
    taken = {path.resolve() for path in paths} | {outdir / REPORT_NAME}
    stems = []
    for path in paths:
        base = re.sub(r"[^A-Za-z0-9._-]", "_", path.stem).lstrip(".") or "image"
        stem, count = base, 1
        while (outputs := {(outdir / name).resolve() for name in output_names(stem, config)}) & taken:
            count += 1
            stem = f"{base}_{count}"
        taken |= outputs
        stems.append(stem)
    return stems


class Reconstructor:
    """Holds the network and turns photos into meshes; one instance serves a whole batch.

    Args:
        network: the network, run by torch or onnxruntime (a :class:`~mould.models.maps.Predictor`, e.g. from
            :func:`mould.models.runtime.load_predictor`).
        config: the run's options.
    """

    def __init__(self, network: Predictor, config: ReconstructConfig) -> None:
        self.network = network
        self.config = config
        self._seen: dict[bytes, tuple[np.ndarray, ...]] = {}
        self._warned_back = False
        self.detect_people = None
        if config.crop.min_person_score > 0:
            self.detect_people = partial(detect_people, min_score=config.crop.min_person_score)

    # -- network ------------------------------------------------------------------------------------------
    def _forward(self, crop: np.ndarray) -> tuple[np.ndarray, ...]:
        """(visible, hidden relative depth, person probability), each (N, N) float32, and the back colour
        ((N, N, 3) uint8, or None without a back-colour head), for an (N, N, 3) uint8 crop. The crops of the
        current photo's framing are kept: framing ends on a crop it predicted (see
        :func:`~mould.reconstruction.person.find_person`), which then costs no second pass."""
        key = crop.tobytes()
        if key not in self._seen:
            self._seen[key] = self._predict(crop[None])[0]
        return self._seen[key]

    def _predict(self, crops: np.ndarray) -> list[tuple[np.ndarray, ...]]:
        """The outputs of :meth:`_forward` for each of (B, N, N, 3) uint8 crops, in one forward pass."""
        maps = self.network.predict_crops(crops)
        return [maps.item(index) for index in range(len(crops))]

    def back_texture(self, mould: Mould) -> str:
        """The back strategy to use: the configured one, but ``smooth`` (the best without a prediction:
        :data:`~mould.recon.texture.SMOOTH_MIRROR`) when ``predicted`` is asked of a model without a
        back-colour head (logged once)."""
        if self.config.back_texture == "predicted" and mould.back_image is None:
            if not self._warned_back:
                log.warning("this model predicts no back colour: the back is textured by 'smooth'")
                self._warned_back = True
            return "smooth"
        return self.config.back_texture

    def silhouettes(self, crops: np.ndarray) -> np.ndarray:
        """(B, N, N) float person probability for (B, N, N, 3) uint8 crops, in one forward pass; every crop's
        outputs are kept for :meth:`_forward`."""
        outputs = self._predict(crops)
        for crop, output in zip(crops, outputs):
            self._seen[crop.tobytes()] = output
        return np.stack([output[2] for output in outputs])

    # -- one photo ----------------------------------------------------------------------------------------
    def reconstruct(self, photo: Photo, mask: np.ndarray | None, timings: dict[str, float]):
        """Photo -> (mould, textured upright mesh, crop). Fills ``timings`` (seconds) by stage."""
        from mould.models.maps import maps_to_mould
        from mould.recon.mesh import camera_to_upright, mould_to_mesh
        from mould.recon.texture import texture_mesh

        clock = time.perf_counter()
        self._seen.clear()  # the previous photo's crops
        source = "mask-file"
        if mask is None:
            mask = photo.alpha_mask()
            source = "alpha"
        crop = find_person(
            photo.rgb,
            self.silhouettes,
            mask=mask,
            mask_source=source,
            config=self.config.crop,
            detect_people=self.detect_people,
        )
        timings["crop"] = time.perf_counter() - clock

        clock = time.perf_counter()
        visible, hidden, mask_prob, back = self._forward(crop.image)
        focal = self.config.focal_factor * max(photo.rgb.shape[:2])
        height, width = photo.rgb.shape[:2]
        window = CropWindow.square(crop.box, self.config.crop.size)
        silhouette = self.outline(photo.rgb, crop)
        camera = window.camera(focal, focal, (width - 1) / 2, (height - 1) / 2)
        mould = maps_to_mould(
            visible,
            hidden,
            silhouette,
            camera,
            reference=self.config.distance,
            depth_scale=self.network.config.depth_scale,
            image=crop.image,
            back_image=back,
        )
        if mould.mask.sum() < self.config.crop.min_pixels:
            raise NoPersonFound("no person found (the predicted silhouette is empty)")
        timings["predict"] = time.perf_counter() - clock

        clock = time.perf_counter()
        mesh = mould_to_mesh(mould, mesher=self.config.mesher)
        timings["mesh"] = time.perf_counter() - clock
        clock = time.perf_counter()
        mesh = texture_mesh(mesh, mould, crop.image, back=self.back_texture(mould))
        mesh = camera_to_upright(mesh)
        timings["texture"] = time.perf_counter() - clock
        return mould, mesh, crop

    def outline(self, rgb: np.ndarray, crop: PersonCrop) -> np.ndarray:
        """(N, N) bool: the person's silhouette in the final crop, the mould's mask (``config.outline``)."""
        height, width = rgb.shape[:2]
        person = crop.person
        if self.config.outline == "segmenter" and crop.mask is None and person is not None and person.radius >= 1:
            segmentation = segment_person(rgb, person)
            if segmentation.presence >= MIN_PRESENCE:
                window = CropWindow.square(crop.box, len(crop.image))
                return (segmentation.in_window(window) > 0.5) & inside_photo(window, height, width)
            log.info("the landmark model sees nobody (presence %.2f): network outline", segmentation.presence)
        config = self.config
        return crop_silhouette(crop, height, width, config.snap_radius, config.snap_eps, config.grabcut_iterations)

    def run_one(self, path: Path, stem: str, mask_path: Path | None) -> ImageReport:
        """Reconstruct one photo and write its outputs; errors are reported, never raised."""
        from mould.recon.export import write_mesh

        report = ImageReport(input=str(path))
        written: list[Path] = []
        try:
            clock = time.perf_counter()
            photo = load_photo(path)
            mask = load_mask(mask_path, photo.rgb.shape[:2]) if mask_path is not None else None
            report.timings["load"] = time.perf_counter() - clock
            mould, mesh, crop = self.reconstruct(photo, mask, report.timings)
            report.crop_source = crop.source
            report.vertices, report.faces = len(mesh.vertices), len(mesh.faces)
            report.height_m = float(np.ptp(mesh.vertices[:, 1]))

            clock = time.perf_counter()
            for fmt in self.config.formats:
                target = path_inside(self.config.outdir, f"{stem}.{fmt}")
                written += [Path(p) for p in write_mesh(target, mesh)]
            if self.config.save_mould:
                written.append(mould.save(path_inside(self.config.outdir, f"{stem}.npz")))
            report.timings["export"] = time.perf_counter() - clock
            if self.config.preview:
                clock = time.perf_counter()
                written.append(
                    self.write_preview(path_inside(self.config.outdir, f"{stem}_preview.png"), crop, mesh)
                )
                report.timings["preview"] = time.perf_counter() - clock
        except NoPersonFound as error:
            report.status, report.error = "error", f"{path}: {error}"
        except (MouldError, ValueError) as error:
            report.status, report.error = "error", str(error) if str(path) in str(error) else f"{path}: {error}"
        if report.status != "ok":
            for item in written:  # all or nothing per photo
                Path(item).unlink(missing_ok=True)
            written = []
        report.outputs = [str(p) for p in written]
        return report

    def write_preview(self, target: Path, crop, mesh) -> Path:
        """The crop beside front, side and back renders of the mesh, as one PNG."""
        from mould.files import write_atomic
        from mould.recon.export import png_bytes
        from mould.recon.render import render_views

        size = crop.image.shape[0]
        views = render_views(mesh, views=("front", "side", "back"), size=size)
        strip = np.concatenate([crop.image, *views], axis=1)
        write_atomic(target, lambda handle: handle.write(png_bytes(strip)))
        return target


def run_batch(
    reconstructor: Reconstructor,
    inputs: list[Path],
    mask: Path | None = None,
    on_done: Callable[[ImageReport], None] | None = None,
) -> list[ImageReport]:
    """Reconstruct every input; one bad photo never stops the others. A batch shows a progress bar."""
    reports = []
    items = list(zip(inputs, output_stems(inputs, reconstructor.config)))
    if len(items) > 1:  # one photo needs no bar, nor tqdm's import
        from mould.progress import progress_bar

        items = progress_bar(items, desc="reconstruct", unit="image", leave=False)
    for path, stem in items:
        report = reconstructor.run_one(path, stem, mask)
        reports.append(report)
        if on_done is not None:
            on_done(report)
    return reports

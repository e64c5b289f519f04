"""``mould bench photos FOLDER``: reconstruct every photo of a folder without a mask, and score the framing
against the masks that sit beside the photos.

Each photo goes through the same :class:`~mould.reconstruction.pipeline.Reconstructor` as ``mould
reconstruct`` (the network frames the person; no mask is given to it). Where a mask file sits beside a photo
(:data:`MASK_SUFFIXES`), the bench maps it into the final crop with the crop's own
:class:`~mould.framing.CropWindow` and reports the silhouette IoU of the network's prediction there, and the
share of the person that the crop holds (1.0: the whole person is framed). It writes each photo's preview,
a contact sheet of them all (``photos.png``) and the table as ``photos.json`` and ``photos.md``.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mould.errors import InputError
from mould.files import check_output_folder, output_folder
from mould.machine import describe_machine

MASK_SUFFIXES = ("_mask.png", "_segmentation.png")
"""Mask files beside a photo ``NAME.ext``: ``NAME_mask.png`` (white or opaque = person, as ``mould reconstruct
--mask`` reads it) and ``NAME_segmentation.png`` (TensorFlow.js pose segmentation: a palette image whose
index 0 is the person and index 1 the background)."""

SEGMENTATION_PERSON_INDEX = 0
"""The palette index of the person in a ``_segmentation.png`` (TensorFlow.js exports person = 0; its
colours, blue and red, are both bright, so reading it by brightness would make every pixel the person)."""


@dataclass(frozen=True)
class BenchPhotosConfig:
    """Options of ``mould bench photos``."""

    folder: Path
    """Folder of photos (mask files beside them are found by :data:`MASK_SUFFIXES` and never reconstructed)."""
    outdir: Path = Path("bench-photos")
    """Where the previews, the contact sheet (photos.png) and the table (photos.json, photos.md) go."""
    checkpoint: Path | None = None
    """Weights (a .safetensors file or a training run folder); default: the shipped model."""

    def __post_init__(self) -> None:
        if not Path(self.folder).is_dir():
            raise InputError(f"{self.folder}: not a folder of photos")
        check_output_folder(self.outdir)  # before the work: a run that cannot write fails at once


@dataclass(frozen=True)
class PhotoRow:
    """One photo's figures."""

    name: str
    """The photo's file name."""
    status: str
    """``ok``, ``no person`` (the framing refused the photo) or ``error`` (the photo could not be read, ...)."""
    error: str | None
    """What went wrong, when ``status`` is not ``ok``."""
    passes: int | None
    """Crops the network saw to frame the person (each is one crop of a forward pass)."""
    iou: float | None
    """Silhouette IoU, in the final crop, of the network's silhouette against the mask (None without one)."""
    framed: float | None
    """Share of the mask's pixels inside the final crop: 1.0 when the whole person is framed."""
    height_m: float | None
    """The mesh's height in metres (under ``mould reconstruct``'s assumed lens and distance)."""
    seconds: float
    """End to end: load, framing, prediction, meshing, texturing (export and preview apart)."""
    mask: str | None
    """The mask file used, if any."""
    crop: tuple[float, float, float] | None = None
    """The final crop in the photo: centre column, centre row and side, in pixels."""

    @property
    def reason(self) -> str | None:
        """``error`` without the photo's path in front (a reason may hold ': ' itself)."""
        if self.error is None:
            return None
        head, colon, tail = self.error.partition(": ")
        return tail if colon and head.endswith(self.name) else self.error

    def row(self) -> str:
        """This photo as a row of the markdown table."""

        def number(value: float | None, digits: int) -> str:
            return "—" if value is None else f"{value:.{digits}f}"

        status = self.status if self.error is None else f"{self.status}: {self.reason}"
        passes = "—" if self.passes is None else str(self.passes)
        return (
            f"| {self.name} | {status} | {passes} | {number(self.iou, 3)} | {number(self.framed, 2)} | "
            f"{number(self.height_m, 2)} | {self.seconds:.2f} |"
        )


TABLE_HEADER = (
    "| photo | status | framing passes | IoU vs mask | mask in crop | height (m) | time (s) |",
    "| --- | --- | --- | --- | --- | --- | --- |",
)


def mask_beside(photo: Path) -> Path | None:
    """The mask file beside a photo by :data:`MASK_SUFFIXES`, or None."""
    for suffix in MASK_SUFFIXES:
        candidate = photo.with_name(photo.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def is_mask_file(path: Path) -> bool:
    """Whether a file of the folder is a mask (by its name), not a photo."""
    return path.name.lower().endswith(MASK_SUFFIXES)


def read_person_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool person mask from a mask file of either convention (:data:`MASK_SUFFIXES`).

    Raises:
        InputError: unreadable, of another size than the photo's ``shape``, or a ``_segmentation.png`` that
            is not a palette image.
    """
    from PIL import Image

    from mould.images import load_mask

    if not path.name.lower().endswith("_segmentation.png"):
        return load_mask(path, shape)
    try:
        with Image.open(path) as image:
            # The size is checked from the header before decoding: the photo's own size is within the limits.
            if image.size != (shape[1], shape[0]):
                width, height = image.size
                raise InputError(f"{path}: mask is {width}x{height}, the photo {shape[1]}x{shape[0]}")
            if image.mode != "P":
                raise InputError(f"{path}: expected a palette image (index 0 = person), got mode {image.mode}")
            index = np.asarray(image)
    except InputError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise InputError(f"{path}: unreadable mask ({error})") from None
    return index == SEGMENTATION_PERSON_INDEX


def mask_scores(truth: np.ndarray, silhouette: np.ndarray, window) -> tuple[float, float]:
    """IoU of a predicted silhouette against the true mask mapped into the crop, and the share of the true
    mask inside the crop.

    Args:
        truth: (H, W) bool person mask of the photo.
        silhouette: (N, N) bool predicted silhouette of the crop.
        window: the crop's :class:`~mould.framing.CropWindow` in the photo.
    """
    from mould.framing import crop_image

    in_crop = crop_image(truth, window)
    union = int((in_crop | silhouette).sum())
    iou = float((in_crop & silhouette).sum() / union) if union else 0.0
    rows, cols = np.nonzero(truth)
    j, i = window.from_frame(cols, rows)
    half = window.resolution / 2
    centre = (window.resolution - 1) / 2
    inside = (np.abs(j - centre) <= half) & (np.abs(i - centre) <= half)
    return iou, float(inside.mean()) if len(rows) else 0.0


def preview_stems(photos: list[Path]) -> dict[Path, str]:
    """A file stem per photo for its preview: the photo's own (odd characters replaced), with its extension
    when two photos share a stem (``a.png`` and ``a.jpg`` give ``a_png`` and ``a_jpg``)."""
    safe = {path: re.sub(r"[^A-Za-z0-9._-]", "_", path.stem) for path in photos}
    counts = Counter(safe.values())
    return {
        path: stem if counts[stem] == 1 else f"{stem}_{path.suffix.lstrip('.')}" for path, stem in safe.items()
    }


def bench_photos(config: BenchPhotosConfig, echo: Callable[[str], None]) -> list[PhotoRow]:
    """Reconstruct every photo of ``config.folder`` without masks on the CPU and score each against its mask.

    ``echo`` receives the machine and model lines, then a markdown table, row by row. Writes previews,
    ``photos.png``, ``photos.json`` and ``photos.md`` into ``config.outdir``.
    """
    import torch

    from mould.files import write_atomic
    from mould.framing import CropWindow
    from mould.images import load_photo
    from mould.models.runtime import load_predictor
    from mould.reconstruction.config import ReconstructConfig
    from mould.reconstruction.person import NoPersonFound
    from mould.reconstruction.pipeline import Reconstructor, collect_inputs

    photos = [path for path in collect_inputs([config.folder]) if not is_mask_file(path)]
    if not photos:
        raise InputError(f"{config.folder}: no photo (only masks)")
    outdir = output_folder(config.outdir)
    network, checkpoint, runtime = load_predictor(config.checkpoint, "cpu")  # the default runtime
    reconstructor = Reconstructor(network, ReconstructConfig(outdir=outdir, formats=("obj",)))
    echo(f"machine: {describe_machine()}; torch {torch.__version__} with {torch.get_num_threads()} threads")
    echo(
        f"model: {checkpoint} ({network.config.name}) run by {runtime}; photos: {len(photos)} from {config.folder}"
    )
    for line in TABLE_HEADER:
        echo(line)
    stems = preview_stems(photos)
    with_warm_up = [photos[0], *photos]  # the first call pays for lazy initialisation: run it untimed once
    rows, previews = [], []
    for index, path in enumerate(with_warm_up):
        timings: dict[str, float] = {}
        mask_path = mask_beside(path)
        passes = iou = framed = height = box = None
        preview = None
        try:
            clock = time.perf_counter()
            photo = load_photo(path)
            timings["load"] = time.perf_counter() - clock
            truth = read_person_mask(mask_path, photo.rgb.shape[:2]) if mask_path is not None else None
            mould, mesh, crop = reconstructor.reconstruct(photo, None, timings)
            passes, height = crop.iterations, float(np.ptp(mesh.vertices[:, 1]))
            box = (float(crop.box.u), float(crop.box.v), float(crop.box.side))
            if truth is not None:
                window = CropWindow.square(crop.box, crop.image.shape[0])
                iou, framed = mask_scores(truth, mould.mask, window)
            status, error = "ok", None
            if index > 0:
                preview = reconstructor.write_preview(outdir / f"{stems[path]}_preview.png", crop, mesh)
        except NoPersonFound as failure:
            status, error = "no person", str(failure)
        except (InputError, ValueError) as failure:
            status, error = "error", str(failure)
        if index == 0:
            continue
        seconds = sum(timings.get(stage, 0.0) for stage in ("load", "crop", "predict", "mesh", "texture"))
        row = PhotoRow(
            path.name,
            status,
            error,
            passes,
            iou,
            framed,
            height,
            seconds,
            mask_path.name if mask_path is not None else None,
            box,
        )
        rows.append(row)
        previews.append((path, preview, row))
        echo(row.row())
    summary = summarise(rows)
    echo(summary)
    sheet = contact_sheet(previews)
    write_atomic(outdir / "photos.png", lambda handle: handle.write(sheet))
    record = {"machine": describe_machine(), "checkpoint": str(checkpoint), "photos": [asdict(r) for r in rows]}
    text = json.dumps(record, indent=1)
    write_atomic(outdir / "photos.json", lambda handle: handle.write(text.encode()))
    table = "\n".join([*TABLE_HEADER, *(r.row() for r in rows), "", summary, ""])
    write_atomic(outdir / "photos.md", lambda handle: handle.write(table.encode()))
    return rows


def summarise(rows: list[PhotoRow]) -> str:
    """One line: photos reconstructed, the mean IoU over those with a mask, the median time."""
    good = [r for r in rows if r.status == "ok"]
    ious = [r.iou for r in good if r.iou is not None]
    median = float(np.median([r.seconds for r in good])) if good else 0.0
    text = f"{len(good)} of {len(rows)} photos reconstructed; median {median:.2f} s a photo"
    if ious:
        text += f"; mean IoU {np.mean(ious):.3f} over the {len(ious)} with a mask"
    return text


SHEET_WIDTH = 768
"""Width of a contact sheet's row in pixels: a preview strip (crop, front, side, back) at 192² a panel."""


def contact_sheet(previews: list[tuple[Path, Path | None, PhotoRow]]) -> bytes:
    """A PNG of the previews, one row each under a caption (name, status, IoU, passes, height); a photo with no
    preview shows its own thumbnail beside the reason.

    Args:
        previews: (photo, its preview PNG or None, its row) per photo.
    """
    import io

    from PIL import Image, ImageDraw

    caption, panel = 18, SHEET_WIDTH // 4
    sheet = Image.new("RGB", (SHEET_WIDTH, max(1, len(previews)) * (panel + caption)), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (photo, preview, row) in enumerate(previews):
        top = index * (panel + caption)
        if preview is not None:
            with Image.open(preview) as image:
                sheet.paste(image.convert("RGB").resize((SHEET_WIDTH, panel), Image.BILINEAR), (0, top + caption))
        elif row.status == "no person":  # read before (an unreadable or oversized file is never opened here)
            try:
                with Image.open(photo) as image:
                    image.draft("RGB", (panel, panel))  # JPEG: decode at a reduced size
                    thumbnail = image.convert("RGB")
                    thumbnail.thumbnail((panel, panel))
                    sheet.paste(thumbnail, (0, top + caption))
            except (OSError, ValueError, Image.DecompressionBombError):
                pass  # the row's caption says why
        iou = "" if row.iou is None else f", IoU {row.iou:.3f}"
        passes = "" if row.passes is None else f", {row.passes} passes"
        height = "" if row.height_m is None else f", {row.height_m:.2f} m"
        text = f"{row.name}: {row.status}{iou}{passes}{height}, {row.seconds:.2f} s"
        draw.text(
            (4, top + 3), text if row.error is None else f"{text} ({row.error.split(': ')[-1]})", fill="black"
        )
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()

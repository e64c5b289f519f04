"""Finding the person in a photo and cutting the square crop the network sees.

The crop follows the toolkit's one framing rule (:func:`mould.framing.square_box`): the square around the
person's silhouette with the same margin as the training crops. Where the silhouette comes from:

1. an alpha channel that is a real mask (see :meth:`mould.images.Photo.alpha_mask`);
2. else a mask file (``--mask``);
3. else the network's own silhouette head, by a **framing search** (:func:`search_person`): predict the
   whole photo; around the regions of that prediction with the most probability mass (and around all of
   them together), predict crops at the training framing and zoomed out, in one batch; of the crops whose
   silhouette passes the person tests (:func:`refusal`), take the most person-like
   (:attr:`~mould.reconstruction.silhouettes.Silhouette.score`) and re-frame it at the training margin
   while that does not make it clearly worse. A photo where no crop passes is refused. The crop returned is
   one the network has seen, so the caller can reuse its prediction rather than pay for another pass.
4. then, when a person detector is given (:data:`DetectPeople`; the pipeline passes MediaPipe's, packaged:
   :mod:`mould.reconstruction.person_detector`), the framed figure must be one the detector sees too
   (:func:`confirming_detection`). Our network learnt people from renders and takes some real textures for a
   person (a cat, a coffee cup, a rocket); the detector learnt from real photographs.

Why a search and not one chain of crops (predict, crop around the silhouette, predict again): on a cluttered
photo the first prediction often holds only part of the person (the dark trousers, the torso); the chain
then crops it at the training framing, where the network sees a close-up of a limb such as it never saw in
training, and its next silhouette is the limb. Crops zoomed out around each region keep the whole person in
view, and the score picks the crop whose silhouette is whole and sharp (``docs/reconstruction.md``).

**Several people:** seeds are the regions of the whole-photo prediction by probability mass, and the score
prefers the larger of two equally sharp figures, so the largest person is framed; others may show at the
crop's edge, and a given mask keeps only the framed person's region.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from mould.framing import CropWindow, ImagePyramid, SquareBox, crop_image, whole_image_box
from mould.models.maps import MASK_THRESHOLD
from mould.reconstruction.config import CropConfig
from mould.reconstruction.grabcut import grabcut_silhouette
from mould.reconstruction.guided_filter import snap_silhouette
from mould.reconstruction.person_detector import PersonDetection
from mould.reconstruction.silhouettes import (
    EIGHT_CONNECTED,
    Silhouette,
    largest_region,
    mask_box,
    measure_silhouette,
    pixels_box,
)


def box_iou(a: SquareBox, b: SquareBox) -> float:
    """Area intersection-over-union of two squares."""
    overlap_u = max(0.0, min(a.u + a.side / 2, b.u + b.side / 2) - max(a.u - a.side / 2, b.u - b.side / 2))
    overlap_v = max(0.0, min(a.v + a.side / 2, b.v + b.side / 2) - max(a.v - a.side / 2, b.v - b.side / 2))
    inter = overlap_u * overlap_v
    return inter / (a.side**2 + b.side**2 - inter)


@dataclass(frozen=True)
class PersonCrop:
    """Where the person is and the crop the network sees.

    Attributes:
        box: the framing square in the photo's pixel-centre coordinates.
        image: (size, size, 3) uint8 crop.
        mask: (size, size) bool silhouette in the crop when it came from alpha or a mask file, else None.
        source: "alpha", "mask-file" or "network".
        iterations: crops the network saw to frame the person (0 for a given mask).
        silhouette: the measures of the chosen crop's prediction (None for a given mask).
        person: the person detector's detection that confirmed the framing, in photo pixels (None without a
            detector or for a given mask).
    """

    box: SquareBox
    image: np.ndarray
    mask: np.ndarray | None
    source: str
    iterations: int
    silhouette: Silhouette | None = None
    person: PersonDetection | None = None


class NoPersonFound(ValueError):
    """The silhouette is empty, tiny or no person's: there is nobody to reconstruct."""


SURE_IN_CROP = 0.5
"""A detection in the framed crop at least this confident (MediaPipe's own threshold) spares the detector's
pass on the whole photo (50-70 ms); under it, the photo's detections join the crop's."""

PredictSilhouettes = Callable[[np.ndarray], np.ndarray]
"""(B, N, N, 3) uint8 crops -> (B, N, N) float person probability: the network's silhouette head."""

DetectPeople = Callable[[np.ndarray], list[PersonDetection]]
"""(H, W, 3) uint8 image -> the people a detector finds in it at its threshold of confidence, most confident
first (:func:`mould.reconstruction.person_detector.detect_people`)."""


def find_person(
    rgb: np.ndarray,
    predict_silhouettes: PredictSilhouettes,
    *,
    mask: np.ndarray | None = None,
    mask_source: str = "mask-file",
    config: CropConfig | None = None,
    detect_people: DetectPeople | None = None,
) -> PersonCrop:
    """Frame the person in a photo.

    Args:
        rgb: (H, W, 3) uint8 photo.
        predict_silhouettes: the network's silhouette head (:data:`PredictSilhouettes`); called only when
            ``mask`` is None.
        mask: optional (H, W) bool person mask (from alpha or a file).
        mask_source: how ``mask`` was obtained, for the record.
        detect_people: a person detector that must confirm the framed figure (:func:`confirming_detection`);
            None: no such check. Unused with ``mask``.

    Raises:
        NoPersonFound: the mask is empty, the search finds no person (see :func:`refusal`), or the detector
            does not see the one it frames.
    """
    config = config or CropConfig()
    if mask is None:
        crop = search_person(rgb, predict_silhouettes, config)
        if detect_people is None:
            return crop
        person = confirming_detection(rgb, crop, detect_people)
        if person is None:
            raise NoPersonFound(
                "no person found (the network frames a figure, but the person detector sees nobody there)"
            )
        return replace(crop, person=person)
    box = mask_box(mask, config.margin)
    if box is None or largest_region(mask).sum() < config.min_pixels:
        raise NoPersonFound("no person in the given mask")
    window = CropWindow.square(box, config.size)
    crop_mask = crop_image(largest_region(mask), window)
    return PersonCrop(box, crop_image(rgb, window), crop_mask, mask_source, 0)


def confirming_detection(rgb: np.ndarray, crop: PersonCrop, detect_people: DetectPeople) -> PersonDetection | None:
    """The detector's person for the framed figure, in photo pixels: one it finds in the framed crop, or on
    the whole photo with its hips' middle inside the crop; None where it sees nobody there.

    Two views, because each misses people the other sees (measured at 0.5 on 271 framed people, generated,
    pasted into real scenes and photographed: the crop alone misses 4, the whole photo alone 5, both 1;
    ``docs/reconstruction.md``): the crop shows a small person large, the whole photo shows a person cut by
    the crop's edge whole. In the crop the hips may lie beyond its edge (a portrait: the body goes on below).
    The whole photo is looked at only when the crop holds no detection of :data:`SURE_IN_CROP` or more.
    Of several, the most confident of those whose body circle holds at least half the framed silhouette (else
    the one holding the most): another person at the crop's edge is not the one framed, and a crop that cuts
    a person's legs off can give a doubtful detection whose circle is twice the crop's size (seen at 0.49,
    the whole photo's of the same person at 0.96).
    """
    window = CropWindow.square(crop.box, len(crop.image))

    def to_photo(points: np.ndarray) -> np.ndarray:
        return np.stack(window.to_frame(points[:, 0], points[:, 1]), axis=1)

    (u, v), half = (crop.box.u, crop.box.v), crop.box.side / 2
    people = [person.moved(to_photo) for person in detect_people(crop.image)]
    if not any(person.score >= SURE_IN_CROP for person in people):
        people += [p for p in detect_people(rgb) if abs(p.hips[0] - u) <= half and abs(p.hips[1] - v) <= half]
    if not people or crop.silhouette is None:
        return max(people, key=lambda person: person.score, default=None)
    columns, rows = window.pixels()
    region = crop.silhouette.region

    def held(person: PersonDetection) -> float:
        """The share of the silhouette's pixels inside the person's body circle."""
        (x, y), radius = person.hips, person.radius
        inside = (columns[None, :] - x) ** 2 + (rows[:, None] - y) ** 2 <= radius**2
        return float((region & inside).sum() / max(region.sum(), 1))

    holding = [person for person in people if held(person) >= 0.5]
    return max(holding, key=lambda person: person.score) if holding else max(people, key=held)


def inside_photo(window: CropWindow, height: int, width: int) -> np.ndarray:
    """(N, N) bool: the crop's pixels whose centre lies on the photo (the others are padding)."""
    u, v = window.pixels()
    return ((v >= -0.5) & (v <= height - 0.5))[:, None] & ((u >= -0.5) & (u <= width - 0.5))[None, :]


def crop_silhouette(
    crop: PersonCrop, height: int, width: int, radius: int, eps: float, grabcut_iterations: int = 0
) -> np.ndarray:
    """(N, N) bool: the person's silhouette in ``crop`` of an (H, W) photo, the mould's mask. A given mask
    as it is; the network's probability snapped to the crop's colour edges (radius and eps of
    :func:`~mould.reconstruction.guided_filter.snap_silhouette`; radius 0: as predicted), then re-cut by
    ``grabcut_iterations`` rounds of GrabCut (:mod:`mould.reconstruction.grabcut`; 0: thresholded as it is),
    and never on the padding beyond the photo's edges (snapping can spread onto it)."""
    if crop.mask is not None:
        return crop.mask
    snapped = snap_silhouette(crop.silhouette.probability, crop.image, radius, eps)
    inside = inside_photo(CropWindow.square(crop.box, len(crop.image)), height, width)
    if grabcut_iterations:
        return grabcut_silhouette(snapped, crop.image, grabcut_iterations, inside)
    return (snapped > MASK_THRESHOLD) & inside


def seed_boxes(silhouette: Silhouette, config: CropConfig) -> list[SquareBox]:
    """Framing squares, in the photo, of the regions of a whole-photo prediction: the ``config.seeds`` regions
    with the most probability mass (of at least ``config.min_pixels``), then all regions together."""
    from scipy.ndimage import label

    probability = silhouette.probability
    labels, count = label(probability > MASK_THRESHOLD, structure=EIGHT_CONNECTED)
    mass = np.bincount(labels.ravel(), weights=probability.ravel())[1:]
    pixels = np.bincount(labels.ravel())[1:]
    keep = [k + 1 for k in np.argsort(-mass) if pixels[k] >= config.min_pixels][: config.seeds]
    groups = [labels == k for k in keep]
    if len(keep) < count:
        groups.append(labels > 0)
    return [silhouette.window.square_to_frame(pixels_box(group, config.margin)) for group in groups]


@dataclass(frozen=True)
class _Seen:
    """A crop the network predicted, with the measures of its silhouette (None: nothing above threshold)."""

    box: SquareBox
    image: np.ndarray
    silhouette: Silhouette | None


def search_person(rgb: np.ndarray, predict_silhouettes: PredictSilhouettes, config: CropConfig) -> PersonCrop:
    """The framing search (see the module docstring); ``iterations`` counts the crops predicted.

    Raises:
        NoPersonFound: no crop holds a person (:func:`refusal`).
    """
    height, width = rgb.shape[:2]
    pyramid = ImagePyramid(rgb)  # crops that shrink the photo are sampled without aliasing
    seen: list[_Seen] = []

    def look(boxes: list[SquareBox]) -> list[_Seen]:
        """Each box's crop and silhouette: the one already seen when a crop nearly the same was predicted,
        else a new one; all new crops go through the network in one batch."""
        fresh = [b for b in boxes if _already_seen(b, seen, config) is None]
        if fresh:
            windows = [CropWindow.square(b, config.size) for b in fresh]
            images = np.stack([pyramid.crop(w) for w in windows])
            probabilities = predict_silhouettes(images)
            seen.extend(
                _Seen(b, image, measure_silhouette(p, image, inside_photo(w, height, width), w, config.margin))
                for b, w, image, p in zip(fresh, windows, images, probabilities)
            )
        return [_already_seen(b, seen, config) for b in boxes]

    whole_box = whole_image_box(height, width)
    whole = look([whole_box])[0].silhouette
    if whole is None or whole.region.sum() < config.min_pixels:
        raise NoPersonFound("no person found (the predicted silhouette is empty)")
    look(
        [
            SquareBox(b.u, b.v, min(b.side * zoom, whole_box.side))
            for b in seed_boxes(whole, config)
            for zoom in config.zooms
        ]
    )
    best = _most_person_like(seen, config)
    for _ in range(config.refinements if best is not None else 0):
        # Re-frame at the training margin: the network sees the person as it learnt, the mesh gets the most
        # pixels. The score barely depends on the zoom, so a re-framed crop is kept unless clearly worse.
        framed = look([best.silhouette.box])[0]
        if framed is best or not _is_person(framed, config):
            break
        if framed.silhouette.score < config.refine_keep * best.silhouette.score:
            break
        best = framed
    if best is None:
        top = max((s for s in seen if s.silhouette is not None), key=lambda s: s.silhouette.score)
        raise NoPersonFound(f"no person found ({refusal(top.silhouette, config)})")
    return PersonCrop(best.box, best.image, None, "network", len(seen), best.silhouette)


def _already_seen(box: SquareBox, seen: list[_Seen], config: CropConfig) -> _Seen | None:
    """The crop already predicted that is nearly ``box`` (``config.same_crop_iou``), if any."""
    return next((s for s in seen if box_iou(box, s.box) >= config.same_crop_iou), None)


def _is_person(seen: _Seen, config: CropConfig) -> bool:
    return seen.silhouette is not None and refusal(seen.silhouette, config) is None


def _most_person_like(seen: list[_Seen], config: CropConfig) -> _Seen | None:
    """The crop with the best score among those whose silhouette passes :func:`refusal`: a crop that is no
    person (a limb in close-up, which the network paints as a thin strip) never hides one that is."""
    people = [s for s in seen if _is_person(s, config)]
    return max(people, key=lambda s: s.silhouette.score) if people else None


def refusal(silhouette: Silhouette, config: CropConfig) -> str | None:
    """Why a crop's silhouette is no person (the first test it fails), or None when it may be one.

    Each threshold is a field of :class:`~mould.reconstruction.config.CropConfig`, with its reason.
    """
    if silhouette.region.sum() < config.min_pixels:
        return "the predicted silhouette is empty"
    if silhouette.size < config.min_size:
        return f"the figure is too small to reconstruct: {silhouette.size:.0f} < {config.min_size:.0f} pixels"
    if silhouette.extent < config.min_extent:
        return (
            f"no closer crop confirms the figure: it spans {silhouette.extent:.0%} of its crop "
            f"< {config.min_extent:.0%}"
        )
    if silhouette.contrast < config.min_contrast:
        return f"the silhouette is unsure: contrast {silhouette.contrast:.2f} < {config.min_contrast}"
    if silhouette.thickness < config.min_thickness:
        return f"the shape is too thin for a body: {silhouette.thickness:.3f} < {config.min_thickness}"
    if silhouette.edge_support < config.min_edge_support:
        return (
            f"the outline follows no edge of the photo: support {silhouette.edge_support:.2f} "
            f"< {config.min_edge_support}"
        )
    if silhouette.photo_share > config.max_photo_share:
        return f"the silhouette fills the photo ({silhouette.photo_share:.0%})"
    if silhouette.solidity > config.max_solidity:
        return (
            f"the shape has no hollows, as a body has: solidity {silhouette.solidity:.2f} > {config.max_solidity}"
        )
    return None

"""Framing the person in a photo: the framing search over candidate crops, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import person_figure

from mould.reconstruction.config import CropConfig
from mould.reconstruction.person import NoPersonFound, find_person
from mould.reconstruction.silhouettes import largest_region, mask_box


def _ellipse(height, width, centre, radii):
    rows, cols = np.mgrid[0:height, 0:width]
    return ((cols - centre[0]) / radii[0]) ** 2 + ((rows - centre[1]) / radii[1]) ** 2 <= 1


def _person(height, width, centre, size) -> np.ndarray:
    """(height, width) bool: :func:`_figure` of side ``size`` centred on ``centre`` (column, row)."""
    mask = np.zeros((height, width), bool)
    top, left = int(centre[1] - size / 2), int(centre[0] - size / 2)
    mask[top : top + size, left : left + size] = person_figure(size)
    return mask


def _photo_with_person(height=300, width=500, centre=(340, 160), size=260):
    person = _person(height, width, centre, size)
    rgb = np.full((height, width, 3), 30, np.uint8)
    rgb[person] = 220
    return rgb, person


def _brightness_predictor(crops: np.ndarray) -> np.ndarray:
    """A silhouette head that sees exactly the bright pixels: (B, N, N, 3) uint8 -> (B, N, N)."""
    return (crops.mean(axis=3) > 128).astype(np.float32)


def _recording(predictor, calls):
    def predict(crops):
        calls.append(crops.copy())
        return predictor(crops)

    return predict


def test_search_frames_the_person_box():
    rgb, person = _photo_with_person()
    calls = []
    result = find_person(rgb, _recording(_brightness_predictor, calls))
    expected = mask_box(person, CropConfig().margin)
    # A crop pixel at the final scale is expected.side / 256 photo pixels: the box agrees to a couple of them.
    pixel = expected.side / 256
    assert abs(result.box.u - expected.u) < 2 * pixel and abs(result.box.v - expected.v) < 2 * pixel
    assert abs(result.box.side - expected.side) < 4 * pixel
    assert result.source == "network" and result.image.shape == (256, 256, 3)
    # The whole photo, then the candidates in one batch, then refinements one crop at a time.
    assert len(calls) >= 2 and len(calls[0]) == 1 and len(calls[1]) > 1
    assert result.iterations == sum(len(batch) for batch in calls)


def test_the_crop_returned_is_one_the_network_saw():
    # The caller reuses the prediction of the final crop, so the search must return a crop it predicted.
    rgb, _ = _photo_with_person()
    calls = []
    result = find_person(rgb, _recording(_brightness_predictor, calls))
    assert any(np.array_equal(result.image, crop) for batch in calls for crop in batch)


def test_the_largest_of_two_people_is_framed():
    rgb, large = _photo_with_person(400, 600, centre=(420, 200), size=360)
    small = _person(400, 600, (130, 250), 160)
    rgb[small] = 220
    result = find_person(rgb, _brightness_predictor)
    expected = mask_box(large, CropConfig().margin)
    assert (
        abs(result.box.u - expected.u) < 0.05 * expected.side
        and abs(result.box.v - expected.v) < 0.05 * expected.side
    )


def _close_up_trap(crops: np.ndarray) -> np.ndarray:
    """A silhouette head with the shipped network's failures (docs/reconstruction.md): on a figure that is
    small in the crop it sees only the figure's lower three quarters (the dark trousers), and on a figure cut by
    the crop (a close-up, unlike any training crop) only a short thin strip of it (a forearm)."""
    out = []
    for bright in crops.mean(axis=3) > 128:
        rows, cols = np.nonzero(bright)
        if len(rows) == 0:
            out.append(bright)
            continue
        n = bright.shape[0]
        seen = bright.copy()
        if rows.min() <= 1 or cols.min() <= 1 or rows.max() >= n - 2 or cols.max() >= n - 2:
            strip = np.zeros_like(bright)
            middle = int(np.median(cols))
            strip[n // 4 : 3 * n // 4, middle - 2 : middle + 3] = True
            seen &= strip
        elif rows.max() - rows.min() < 0.6 * n:
            seen[: int(rows.min() + 0.25 * (rows.max() - rows.min()))] = False
        out.append(seen)
    return np.stack(out).astype(np.float32)


def test_a_partial_first_silhouette_still_frames_the_whole_person():
    # A chain of crops frames the lower three quarters at the training margin, which cuts the figure; the
    # network then sees a limb and the chain follows it. The search's zoomed-out crops keep the whole figure.
    rgb, person = _photo_with_person(600, 800, centre=(400, 300), size=390)
    result = find_person(rgb, _close_up_trap)
    expected = mask_box(person, CropConfig().margin)
    assert abs(result.box.v - expected.v) < 0.05 * expected.side
    assert abs(result.box.side - expected.side) < 0.1 * expected.side
    assert result.silhouette.thickness > CropConfig().min_thickness  # the body, not the strip


def _seen_only_from_afar(crops: np.ndarray) -> np.ndarray:
    """A silhouette head that paints a person on a texture only while it is a speck: it sees the bright pixels
    where they span under a third of the crop, and nothing on a closer crop."""
    out = []
    for bright in crops.mean(axis=3) > 128:
        rows, cols = np.nonzero(bright)
        small = len(rows) > 0 and max(np.ptp(rows), np.ptp(cols)) + 1 < bright.shape[0] / 3
        out.append(bright if small else np.zeros_like(bright))
    return np.stack(out).astype(np.float32)


def test_a_small_person_is_framed_close_up():
    # 150 pixels tall in a 1000-pixel photo: a speck of 15 % in the whole-photo crop, confirmed at the training
    # framing, where it fills the crop.
    rgb, person = _photo_with_person(1000, 1000, centre=(700, 400), size=150)
    result = find_person(rgb, _brightness_predictor)
    expected = mask_box(person, CropConfig().margin)
    assert abs(result.box.side - expected.side) < 0.05 * expected.side
    assert result.silhouette.extent > CropConfig().min_extent


def test_a_speck_no_closer_crop_confirms_is_no_person():
    rgb, _ = _photo_with_person(1000, 1000, centre=(700, 400), size=150)
    with pytest.raises(NoPersonFound, match="no closer crop confirms"):
        find_person(rgb, _seen_only_from_afar)


def test_given_mask_frames_the_largest_person_only():
    rgb, _ = _photo_with_person()
    person = np.zeros(rgb.shape[:2], bool)
    person[50:271, 300:381] = True  # a rectangle: its extent survives nearest-neighbour resampling exactly
    second = np.zeros_like(person)
    second[10:40, 10:30] = True  # a smaller second figure
    calls = []
    result = find_person(rgb, lambda crops: calls.append(1), mask=person | second)
    assert not calls  # no network pass when a mask is given
    assert result.mask is not None and result.mask.shape == (256, 256)
    expected = mask_box(person, 0.1)
    assert (result.box.u, result.box.v, result.box.side) == pytest.approx((expected.u, expected.v, expected.side))
    # The person fills the crop's height minus the margins: 80 % of 256 pixels.
    rows = np.nonzero(result.mask.any(axis=1))[0]
    assert abs((rows.max() - rows.min() + 1) - 0.8 * 256) <= 1


def test_empty_silhouette_is_no_person():
    rgb = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(NoPersonFound):
        find_person(rgb, _brightness_predictor)
    with pytest.raises(NoPersonFound):
        find_person(rgb, _brightness_predictor, mask=np.zeros((100, 100), bool))


def _detector(*people):
    """A fake person detector: the given (hips (x, y), in photo pixels) on photos, and on 256-pixel crops
    only when ``crop`` is among them; records each image it was given."""
    from mould.reconstruction.person_detector import PersonDetection

    seen = []

    def detect(image):
        seen.append(image.shape)
        on_crop = image.shape[:2] == (256, 256)
        found = [p for p in people if (p == "crop") == on_crop]
        hips = [np.array(p if p != "crop" else (128, 128), float) for p in found]
        return [PersonDetection(0.9, h, h - (0, 50), np.zeros(4)) for h in hips]

    detect.seen = seen
    return detect


def test_a_figure_the_detector_confirms_in_the_crop_is_framed():
    rgb, _ = _photo_with_person()
    detect = _detector("crop")
    assert find_person(rgb, _brightness_predictor, detect_people=detect).source == "network"
    assert detect.seen == [(256, 256, 3)]  # a sure detection in the crop: the whole photo is not looked at


def test_a_person_found_on_the_whole_photo_confirms_the_crop_around_its_hips():
    rgb, _ = _photo_with_person()  # the figure spans columns 210-470, rows 30-290
    detect = _detector((340, 200))
    assert find_person(rgb, _brightness_predictor, detect_people=detect).source == "network"
    assert detect.seen == [(256, 256, 3), rgb.shape]


@pytest.mark.parametrize("people", [(), ((60, 150),)], ids=["nobody", "someone outside the crop"])
def test_a_figure_the_detector_does_not_see_is_no_person(people):
    rgb, person = _photo_with_person()
    with pytest.raises(NoPersonFound, match="the person detector sees nobody there"):
        find_person(rgb, _brightness_predictor, detect_people=_detector(*people))
    detect = _detector()
    assert find_person(rgb, _brightness_predictor, mask=person, detect_people=detect).source == "mask-file"
    assert detect.seen == []  # a given mask is not second-guessed


def test_a_doubtful_detection_in_the_crop_gives_way_to_the_photos():
    # A crop that cuts a person's legs off gave the detector's 0.49 with the hips far above the crop and a
    # circle twice its size; the whole photo's detection of the same person (0.96) is the one kept.
    from mould.reconstruction.person_detector import PersonDetection

    rgb, _ = _photo_with_person()  # the figure spans columns 210-470, rows 30-290

    def detect(image):
        if image.shape[:2] == (256, 256):
            hips = np.array([128.0, -240.0])
            return [PersonDetection(0.49, hips, hips - (0, 346), np.zeros(4))]
        return [PersonDetection(0.96, np.array([340.0, 170.0]), np.array([340.0, 20.0]), np.zeros(4))]

    result = find_person(rgb, _brightness_predictor, detect_people=detect)
    assert result.person.score == 0.96


def test_of_two_people_the_detector_sees_the_one_framed_confirms():
    # A second, more confident person at the crop's edge is not the framed figure: the detection kept (for
    # the outline) is the one whose body circle holds the silhouette.
    from mould.framing import CropWindow
    from mould.reconstruction.person_detector import PersonDetection

    rgb, _ = _photo_with_person()
    hips = {"framed": np.array([128.0, 150.0]), "edge": np.array([20.0, 40.0])}

    def detect(image):
        return [
            PersonDetection(0.95, hips["edge"], hips["edge"] - (0, 15), np.zeros(4)),
            PersonDetection(0.6, hips["framed"], hips["framed"] - (0, 110), np.zeros(4)),
        ]

    result = find_person(rgb, _brightness_predictor, detect_people=detect)
    window = CropWindow.square(result.box, 256)
    expected = np.stack(window.to_frame(np.array([128.0]), np.array([150.0])), axis=1)[0]
    assert result.person.score == 0.6
    np.testing.assert_allclose(result.person.hips, expected)


def test_largest_region_of_a_mask():
    mask = np.zeros((10, 10), bool)
    mask[0:2, 0:2] = True
    mask[5:9, 5:9] = True
    assert largest_region(mask).sum() == 16
    weights = np.where(mask, 1.0, 0.0)
    weights[0:2, 0:2] = 10.0  # by probability mass, the small sure region wins
    assert largest_region(mask, weights).sum() == 4


def _painted(mask: np.ndarray) -> np.ndarray:
    """(N, N, 3) uint8: a bright shape on a finely textured background (edges everywhere, strongest on it)."""
    image = np.random.default_rng(0).integers(70, 110, (*mask.shape, 3)).astype(np.uint8)
    image[mask] = 200
    return image


def _box(rows=(30, 226), cols=(100, 156), n=256):
    mask = np.zeros((n, n), bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    return mask


FIGURE, POLE, FILL = person_figure(256), _box(cols=(126, 130)), _box(rows=(8, 248), cols=(8, 248))
DISC = _ellipse(256, 256, (128, 128), (50, 90))
SPECK = _person(256, 256, (128, 128), 80)


@pytest.mark.parametrize(
    "probability, image, side, reason",
    [
        (FIGURE * 1.0, _painted(FIGURE), 256, None),
        (POLE * 1.0, _painted(POLE), 256, "too thin"),
        (FIGURE * 1.0, np.full((256, 256, 3), 90, np.uint8), 256, "follows no edge"),
        (np.where(FIGURE, 0.55, 0.45), _painted(FIGURE), 256, "unsure"),
        (FILL * 1.0, _painted(FILL), 256, "fills"),
        (DISC * 1.0, _painted(DISC), 256, "hollows"),
        # The same figure (77 % of its crop) in a crop of 80 photo pixels: 62 pixels tall; of 90: 69.
        (FIGURE * 1.0, _painted(FIGURE), 80, "too small"),
        (FIGURE * 1.0, _painted(FIGURE), 90, None),
        # A figure spanning 31 % of a crop of 1024 photo pixels: 320 pixels tall, but never seen close up.
        (SPECK * 1.0, _painted(SPECK), 1024, "no closer crop confirms"),
    ],
    ids=["figure", "pole", "flat", "unsure", "fills", "disc", "small", "small-enough", "speck"],
)
def test_refusals_name_their_reason(probability, image, side, reason):
    from mould.framing import CropWindow
    from mould.reconstruction.person import refusal
    from mould.reconstruction.silhouettes import measure_silhouette

    window = CropWindow(side / 2 - 0.5, side / 2 - 0.5, side, side, 256)  # the crop is the photo
    silhouette = measure_silhouette(probability, image, np.ones((256, 256), bool), window, 0.1)
    answer = refusal(silhouette, CropConfig())
    assert (answer is None) if reason is None else (reason in answer), answer

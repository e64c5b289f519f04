"""Photo loading: formats, modes, EXIF orientation, alpha masks, and every bad file."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mould.errors import InputError
from mould.images import load_mask, load_photo


def _gradient(h: int = 40, w: int = 30) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 8, y * 6, (x + y) * 3], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".bmp"])
def test_formats_decode_to_rgb(tmp_path, suffix):
    pixels = _gradient()
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(pixels).save(path, quality=100) if suffix != ".bmp" else Image.fromarray(pixels).save(path)
    photo = load_photo(path)
    assert photo.rgb.shape == (40, 30, 3) and photo.rgb.dtype == np.uint8
    # Lossy formats move values a little; lossless ones keep them exactly.
    tolerance = 0 if suffix in (".png", ".bmp") else 12
    assert np.abs(photo.rgb.astype(int) - pixels).max() <= tolerance


def test_modes_grey_palette_16bit_rgba(tmp_path):
    grey = _gradient()[..., 0]
    Image.fromarray(grey, "L").save(tmp_path / "l.png")
    assert np.array_equal(load_photo(tmp_path / "l.png").rgb[..., 1], grey)

    Image.fromarray(_gradient()).convert("P").save(tmp_path / "p.png")
    assert load_photo(tmp_path / "p.png").rgb.shape == (40, 30, 3)

    wide = (grey.astype(np.uint16) * 257).astype(np.uint16)  # full 16-bit range
    Image.fromarray(wide).save(tmp_path / "i16.png")  # uint16 -> a 16-bit grey PNG
    rgb = load_photo(tmp_path / "i16.png").rgb
    assert np.abs(rgb[..., 0].astype(int) - grey).max() <= 1

    rgba = np.dstack([_gradient(), np.full((40, 30), 255, np.uint8)])
    rgba[:20, :, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    photo = load_photo(tmp_path / "rgba.png")
    assert photo.alpha is not None and np.array_equal(photo.alpha_mask(), rgba[..., 3] >= 128)


def test_alpha_opaque_almost_everywhere_is_not_a_mask(tmp_path):
    rgba = np.dstack([_gradient(200, 200), np.full((200, 200), 255, np.uint8)])
    rgba[0, :5, 3] = 0  # a stray transparent corner, like the PIFu sample photo
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert load_photo(tmp_path / "a.png").alpha_mask() is None


def test_exif_orientation_is_applied(tmp_path):
    pixels = _gradient(40, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(pixels).save(tmp_path / "o.jpg", exif=exif, quality=100)
    photo = load_photo(tmp_path / "o.jpg")
    assert photo.rgb.shape == (30, 40, 3)
    expected = np.rot90(pixels, k=-1)
    assert np.abs(photo.rgb.astype(int) - expected).mean() < 4


def _png_header_only(path, width: int, height: int) -> None:
    """A PNG whose header claims width x height; decoding it would need width*height*3 bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"this is not an image at all" * 10), "not an image"),
        (lambda p: _png_header_only(p, 30000, 30000), "refused"),
        (lambda p: Image.new("RGB", (1, 1)).save(p), "too small"),
    ],
    ids=["empty", "not-image", "bomb", "1x1"],
)
def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path, make, message):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(InputError) as error:
        load_photo(path)
    text = str(error.value)
    assert str(path) in text and message in text and "\n" not in text


def test_truncated_file_is_an_error(tmp_path):
    Image.fromarray(_gradient(200, 200)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.png"):
        load_photo(tmp_path / "cut.png")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_photo(tmp_path / "nope.jpg")


def test_mask_file_must_match_the_photo(tmp_path):
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "m.png")
    with pytest.raises(InputError, match="mask is 20x20"):
        load_mask(tmp_path / "m.png", (40, 30))
    mask = np.zeros((40, 30), np.uint8)
    mask[10:30, 5:25] = 255
    Image.fromarray(mask).save(tmp_path / "m2.png")
    assert np.array_equal(load_mask(tmp_path / "m2.png", (40, 30)), mask > 0)


def test_alpha_with_a_thin_transparent_border_is_not_a_mask(tmp_path):
    """Issue #15: an alpha 1.09 % transparent was taken as a mask, and the whole background was meshed."""
    rgba = np.dstack([_gradient(512, 512), np.full((512, 512), 255, np.uint8)])
    rgba[:, :3, 3] = 0  # a 3-pixel transparent strip at the left edge: 3 / 512 = 0.59 %
    rgba[:3, :, 3] = 0  # and at the top: 1.17 % in all
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    photo = load_photo(tmp_path / "a.png")
    assert 0.0109 < float((photo.alpha < 128).mean()) < 0.012
    assert photo.alpha_mask() is None
    rgba[:, :200, 3] = 0  # a real cut-out: 39 % transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "b.png")
    assert load_photo(tmp_path / "b.png").alpha_mask() is not None

"""Loading photos safely: any common format and mode, EXIF orientation, and no decompression bombs.

Every failure is an :class:`~mould.errors.InputError` whose message names the file and the problem.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mould.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass(frozen=True)
class ImageLimits:
    """Bounds on the images the toolkit agrees to decode."""

    max_pixels: int = 50_000_000
    """Width x height above this is refused from the header, before any decoding: a 30000 x 30000 PNG
    of a few kB would otherwise expand to 2.7 GB. 50 MP covers every current camera sensor."""
    min_side: int = 16
    """A person cannot be found in fewer pixels than this on a side."""
    mask_transparent: float = 0.10
    """An alpha channel is a person mask only if at least this fraction of pixels is transparent: a person
    fills at most ~75 % of even a tight cut-out (their bounding box, arms in), so a real cut-out is a quarter
    or more background; a stray transparent border or corner (a 3-pixel frame is 2.3 % of 512²) is not a
    mask, and taking it for one would mesh the whole background."""
    mask_opaque: float = 0.01
    """... and at least this fraction opaque (the person)."""


DEFAULT_LIMITS = ImageLimits()


@dataclass(frozen=True)
class Photo:
    """A decoded photo.

    Attributes:
        rgb: (H, W, 3) uint8, sRGB, EXIF orientation applied.
        alpha: (H, W) uint8 alpha channel when the file had one, else None.
        path: where it came from.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    path: Path

    def alpha_mask(self, limits: ImageLimits = DEFAULT_LIMITS) -> np.ndarray | None:
        """(H, W) bool person mask from the alpha channel, or None when the alpha is no real mask."""
        if self.alpha is None:
            return None
        opaque = self.alpha >= 128
        fraction = float(opaque.mean())
        if limits.mask_opaque <= fraction <= 1 - limits.mask_transparent:
            return opaque
        return None


def _to_rgb_alpha(image) -> tuple[np.ndarray, np.ndarray | None]:
    """A PIL image of any mode -> (H, W, 3) uint8 RGB and an optional (H, W) uint8 alpha."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grey: scale the full 16-bit range to 8 bits (not clip at 255, which would whiten it).
        grey = np.asarray(image, dtype=np.float64)
        top = 65535.0 if grey.max() > 255 or mode.startswith("I;16") else 255.0
        grey = np.clip(grey / top * 255 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2), None
    if mode == "F":
        grey = np.asarray(image, dtype=np.float64)
        grey = np.clip(grey * (255 if grey.max() <= 1 else 1) + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2), None
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"))
        return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
    return np.asarray(image.convert("RGB")), None


def load_photo(
    path: str | os.PathLike, limits: ImageLimits = DEFAULT_LIMITS, size: tuple[int, int] | None = None
) -> Photo:
    """Decode an image file (PNG, JPEG, WebP, BMP; RGB, RGBA, grey, palette, 16-bit) safely.

    The size is read from the header and checked against ``limits.max_pixels`` (and ``size`` when given)
    before decoding.

    Args:
        size: (width, height) the caller needs, e.g. a sample's N x N crop; another size is refused from
            the header.

    Raises:
        InputError: missing, empty, not an image, truncated or corrupt, too large, too small, or not
            ``size``.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > limits.max_pixels:
                raise InputError(
                    f"{path}: {width}x{height} image refused: over {limits.max_pixels:,} pixels "
                    "(a decompression bomb, or far larger than needed)"
                )
            if size is not None and (width, height) != tuple(size):
                raise InputError(f"{path}: {width}x{height} image where {size[0]}x{size[1]} is expected")
            if min(width, height) < limits.min_side:
                raise InputError(f"{path}: {width}x{height} image is too small (need >= {limits.min_side} px)")
            image.load()
            image = ImageOps.exif_transpose(image)
            rgb, alpha = _to_rgb_alpha(image)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file (or an unsupported format)") from None
    except Image.DecompressionBombError as error:
        raise InputError(f"{path}: refused as a decompression bomb ({error})") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise InputError(f"{path}: corrupt or truncated image ({error})") from None
    return Photo(rgb=rgb, alpha=alpha, path=path)


def load_mask(path: str | os.PathLike, shape: tuple[int, int], limits: ImageLimits = DEFAULT_LIMITS) -> np.ndarray:
    """A person mask from an image file: (H, W) bool, True where the pixel is bright (>= 128) or opaque.

    Args:
        shape: (H, W) of the photo it belongs to; a mask of another size is an error.
    """
    photo = load_photo(path, limits)
    if photo.rgb.shape[:2] != tuple(shape):
        raise InputError(
            f"{path}: mask is {photo.rgb.shape[1]}x{photo.rgb.shape[0]}, the photo {shape[1]}x{shape[0]}"
        )
    if photo.alpha is not None and photo.alpha_mask(limits) is not None:
        return photo.alpha >= 128
    mask = photo.rgb.max(axis=2) >= 128
    if not mask.any():
        raise InputError(f"{path}: the mask is empty")
    return mask

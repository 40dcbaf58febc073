"""Decode stage: any photo, drawing, file or array becomes a checked uint8 array, refusing bad input.

Files are read with a size limit, decoded by Pillow (first frame, EXIF-rotated, HEIC when
pillow-heif is installed), big JPEGs straight to the working size; arrays are checked for shape
and dtype. Every failure is an InvalidImageError with a message a user can act on.
"""

from __future__ import annotations

import io
import math
import os

import cv2
import numpy as np
from PIL import Image, ImageOps

from mnist_bot.errors import InvalidImageError

ImageInput = bytes | bytearray | memoryview | str | os.PathLike[str] | Image.Image | np.ndarray
MAX_PIXELS = 50_000_000  # refuse decompression bombs before decoding
MAX_FILE_BYTES = 50 * 1024 * 1024
MIN_SIDE = 8
WORK_SIDE = 640  # photos are analysed at this longest side: plenty for a digit, fast


def _register_heif() -> None:
    """Teach Pillow HEIC/HEIF (iPhone photos) when pillow-heif is installed."""
    try:
        from pillow_heif import register_heif_opener

        register_heif_opener()
    except ImportError:
        pass


def _read_path(path: str | os.PathLike[str]) -> bytes:
    """Read an image file, refusing huge ones before reading them."""
    try:
        if os.path.getsize(path) > MAX_FILE_BYTES:
            raise InvalidImageError("The file is too large; send an image under 50 MB.")
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise InvalidImageError(f"Cannot read the file {os.fspath(path)!r}.") from exc


def open_image(data: bytes, draft: bool = True) -> Image.Image:
    """Decode encoded bytes (first frame, EXIF-rotated), refusing bombs and non-images.

    With `draft`, a big JPEG decodes at the smallest scale the working size allows.
    """
    if not data:
        raise InvalidImageError("The file is empty.")
    if len(data) > MAX_FILE_BYTES:
        raise InvalidImageError("The file is too large; send an image under 50 MB.")
    _register_heif()
    try:
        image = Image.open(io.BytesIO(data))
        _check_pixels(image.width, image.height)
        original_side = max(image.size)
        if draft:
            _decode_small(image)
        upright: Image.Image = ImageOps.exif_transpose(image) or image
        upright.info["original_side"] = original_side  # lets boxes map back to the file's pixels
        return upright
    except InvalidImageError:
        raise
    except Exception as exc:  # Pillow raises many types for broken or hostile files.
        raise InvalidImageError("That file is not an image I can read (JPEG, PNG, WebP, HEIC, ...).") from exc


def _decode_small(image: Image.Image) -> None:
    """Let a JPEG decode straight to grey, at the smallest scale whose longest side is WORK_SIDE or more."""
    # The work needs only grey (JPEG's own luma is exactly OpenCV's grey) at WORK_SIDE; decoding
    # less is most of a photo's decode time. Pillow keeps every side at least the size asked.
    shrink = WORK_SIDE / max(image.size)
    if shrink < 1:
        image.draft("L", (math.ceil(image.width * shrink), math.ceil(image.height * shrink)))


def _check_pixels(width: int, height: int) -> None:
    """Refuse images too small to hold a digit or too large to decode safely."""
    if width * height > MAX_PIXELS:
        raise InvalidImageError(f"The image is too large ({width}x{height}); send one under 50 megapixels.")
    if min(width, height) < MIN_SIDE:
        raise InvalidImageError(f"The image is too small ({width}x{height}) to hold a digit.")


def pil_to_array(image: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to uint8 grey (H, W), RGB (H, W, 3) or RGBA (H, W, 4)."""
    try:
        if image.mode in {"I;16", "I;16B", "I;16L", "I", "F"}:
            return _to_uint8(np.asarray(image, dtype=np.float64))
        has_alpha = image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info
        target = "RGBA" if has_alpha else ("L" if image.mode in {"L", "1"} else "RGB")
        return np.asarray(image.convert(target))
    except Exception as exc:  # a truncated file fails here, on the real decode
        raise InvalidImageError("The image file is damaged or truncated.") from exc


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale a numeric array to uint8, treating [0, 1] floats as fractions."""
    if not np.all(np.isfinite(values)):
        raise InvalidImageError("The image array contains NaN or infinite values.")
    top = float(values.max()) if values.size else 0.0
    if values.dtype.kind == "f" and top <= 1.0 and float(values.min()) >= 0.0:
        return np.round(values * 255).astype(np.uint8)
    if float(values.min()) < 0:
        raise InvalidImageError("The image array has negative values.")
    scale = 255.0 / top if top > 255 else 1.0
    return np.round(values * scale).astype(np.uint8)


def validate_array(array: np.ndarray) -> np.ndarray:
    """Check an array's shape and dtype and return it as uint8 grey, RGB or RGBA."""
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise InvalidImageError("The image array must hold numbers (uint8, float in [0, 1], ...).")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InvalidImageError(
            f"The image array has shape {array.shape}; expected (H, W), (H, W, 3) or (H, W, 4)."
        )
    _check_pixels(array.shape[1], array.shape[0])
    if array.dtype == np.uint8:
        return array
    return _to_uint8(array.astype(np.float64))


def _decoded(data: bytes, draft: bool = True) -> tuple[np.ndarray, float]:
    """Decode bytes; the scale says how much JPEG draft decoding shrank the image."""
    image = open_image(data, draft)
    array = pil_to_array(image)
    original = int(image.info.get("original_side", max(array.shape[:2])))
    return array, max(array.shape[:2]) / original


def load_image_scaled(source: ImageInput, draft: bool = True) -> tuple[np.ndarray, float]:
    """Load any input as an array, with its scale relative to the input's own pixels (1 without `draft`)."""
    if isinstance(source, np.ndarray):
        return validate_array(source), 1.0
    if isinstance(source, Image.Image):
        _check_pixels(source.width, source.height)
        return pil_to_array(source), 1.0
    if isinstance(source, bytes | bytearray | memoryview):
        return _decoded(bytes(source), draft)
    if isinstance(source, str | os.PathLike):
        return _decoded(_read_path(source), draft)
    raise InvalidImageError(f"Cannot read an image from a {type(source).__name__}.")


def is_transparent_drawing(rgba: np.ndarray) -> bool:
    """Tell whether an RGBA image is ink on a transparent background (a canvas)."""
    return bool(rgba.shape[2] == 4 and np.mean(rgba[:, :, 3] < 128) > 0.5)


def to_grey(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """Return uint8 (H, W) grey and whether it already holds ink as brightness (alpha ink)."""
    if image.ndim == 2:
        return image, False
    if image.shape[2] == 4 and is_transparent_drawing(image):
        return image[:, :, 3], True
    if image.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY), False
    # Flatten semi-transparent images onto white paper.
    alpha = image[:, :, 3:4].astype(np.float32) / 255
    rgb = image[:, :, :3].astype(np.float32) * alpha + 255 * (1 - alpha)
    return cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2GRAY), False

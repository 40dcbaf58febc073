"""Bring any photo, drawing or array to MNIST's convention: a 28x28 float32 digit.

MNIST digits are bright ink on black, fit into a 20x20 box keeping their aspect ratio, and
centred by centre of mass in a 28x28 field. Each step below is small and testable on its own.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps

from mnist_bot.errors import EmptyImageError, InvalidImageError

ImageInput = bytes | bytearray | memoryview | str | os.PathLike[str] | Image.Image | np.ndarray
# Called with each stage's name, its picture (uint8, working resolution) and the numbers it chose.
Trace = Callable[[str, np.ndarray, dict[str, Any]], None]

SIZE = 28
BOX = 20
CENTRE = 14.0  # where MNIST digits have their centre of mass, in pixel-index coordinates
MAX_PIXELS = 50_000_000  # refuse decompression bombs before decoding
MAX_FILE_BYTES = 50 * 1024 * 1024
MIN_SIDE = 8
WORK_SIDE = 640  # photos are analysed at this longest side: plenty for a digit, fast
MIN_WORK_SIDE = 200  # tiny inputs are upscaled so morphology has room
STROKE_IN_BOX = 2.4  # MNIST's median pen width, in pixels of the 20x20 box
FAINT_SHARE = 0.55  # blobs whose mean contrast is under this share of the strongest are not ink
UNSHADED_POLARITY_SIDE = 200  # images at least this big (photos) get shading removed for polarity
CLEAR_TILT = 2  # the histogram decides polarity when one tail is this many times longer...
PHOTO_TILT = 4  # ...or this many times on a photo, where a wide shadow can fake a tilt
SHARPER_POLARITY = 1.5  # a photo's light-ink verdict yields when dark ink has edges this much steeper
SHADOW_SHARPNESS = 0.08  # edge slope over contrast: blurred pens stay above 0.15, shadows near 0.02
SHARP_EDGE_REACH = 4  # px from a sharp edge that count as its stroke; wider strokes are walled in
SOFT_SHARE = 0.35  # blobs whose edges are under this share as steep as the sharpest are shadows
NEAR_PEAK_SHARE = 0.4  # ink fainter than this share of the strongest ink nearby is not a stroke
BACKGROUND_SHARE = 5  # the background kernel is this fraction of the image's shorter side
PEN_TO_BACKGROUND = 4  # and at least this many pen widths
MIN_CONTRAST = 28  # grey levels between ink and paper below which there is no digit
EXTREME_PIXELS = 4  # a digit shrunk to a few working pixels still has this many at its darkest
FEW_INK_PIXELS = 40  # sparse ink (a tiny digit, specks) peaks where this many of its pixels reach
SMALL_INK_SIDE = 2 * BOX  # working px: a digit no bigger has strokes of a pixel or two, too thin to read
ZOOM_MARGIN = 1.0  # a re-read crop adds this many times the ink's longer side of paper on each side
MIN_DIGIT_PX = 10  # input px: ink smaller than this is a speck at any resolution
MIN_DIGIT_SHARE = 0.03  # a photo's digit spans at least this share of the shorter side: less is a speck
BLOT_PENS = 3  # a filled shape this many of its pen widths tall is a bold digit; a blot is shorter
PIECE_SHARE = 0.04  # a piece of a digit has at least this share of its main blob's area
EMPTY_MESSAGE = "I can't see a digit; try a closer photo with the digit in the middle."


@dataclass(frozen=True)
class Box:
    """A rectangle in the input image's pixel coordinates."""

    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class PreparedDigit:
    """A model-ready digit: input28 is (28, 28) float32 in [0, 1]."""

    input28: np.ndarray
    box: Box
    digit_like: bool


@dataclass(frozen=True)
class InkImage:
    """Ink as bright uint8 (H, W) at working resolution, its scale from the input, and its kind."""

    ink: np.ndarray
    scale: float
    drawing: bool = False  # ink from a transparent canvas: every stroke belongs to the drawing
    polarity: str = "alpha"  # where the ink came from: "dark" on light paper, "light" on dark, "alpha"
    grey: np.ndarray | None = None  # the working-size grey before smoothing, where hairlines survive


@dataclass(frozen=True)
class FoundInk:
    """Labelled ink blobs of one image at working resolution."""

    labels: np.ndarray  # uint16 or int32 (H, W), 0 = background
    blobs: list[Component]
    scale: float  # working pixels per input pixel
    drawing: bool
    sparse: bool = False  # under 0.1% of the image is ink: only a digit-like shape counts
    origin: tuple[int, int] = (0, 0)  # input pixel of the labels' top-left corner (a re-read crop's)


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


def resize_for_work(grey: np.ndarray, work_side: int = WORK_SIDE) -> tuple[np.ndarray, float]:
    """Scale so the longest side is in [MIN_WORK_SIDE, work_side]; return the scale used."""
    longest = max(grey.shape)
    if longest > work_side:
        scale = work_side / longest
        interpolation = cv2.INTER_AREA
    elif longest < MIN_WORK_SIDE:
        scale = float(np.ceil(MIN_WORK_SIDE / longest))
        interpolation = cv2.INTER_LINEAR
    else:
        return grey, 1.0
    size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
    return cv2.resize(grey, size, interpolation=interpolation), scale


def grey_histogram(image: np.ndarray) -> np.ndarray:
    """Return the 256-bin histogram of a uint8 image: float32 (256,)."""
    return np.asarray(cv2.calcHist([image], [0], None, [256], [0, 256]).ravel())


def grey_percentiles(image: np.ndarray, percents: list[float]) -> list[float]:
    """Return percentiles of a uint8 image from its histogram: exact, and far faster than sorting."""
    return histogram_percentiles(grey_histogram(image), percents)


def histogram_percentiles(histogram: np.ndarray, percents: list[float]) -> list[float]:
    """Return the grey levels at the given percentiles of a 256-bin histogram."""
    cumulative = np.cumsum(histogram) / max(float(histogram.sum()), 1.0)
    return [float(np.searchsorted(cumulative, p / 100)) for p in percents]


def ink_is_dark(grey: np.ndarray) -> bool:
    """Detect polarity: the paper is the majority, so the median sits near its level."""
    # Extreme percentiles, not 1/99: a small digit can cover well under 1% of a photo.
    low, median, high = grey_percentiles(grey, [0.1, 50, 99.9])
    if max(high - median, median - low) < MIN_CONTRAST:
        # Ink under 0.1% of the image (a small digit in a big frame) leaves both tails flat:
        # its few most extreme pixels still show which side it lies on.
        low, high = extreme_levels(grey, EXTREME_PIXELS)
    above, below = high - median, median - low
    photo = min(grey.shape) >= UNSHADED_POLARITY_SIDE
    # A shadow over most of a photo can tip its histogram the wrong way: trust only a clear tilt.
    if max(above, below) > (PHOTO_TILT if photo else CLEAR_TILT) * min(above, below):
        return below > above
    # Shading (a lighting gradient, a shadow) blurs the global picture.
    return _unshaded_ink_is_dark(grey) if photo else _local_ink_is_dark(grey)


def extreme_levels(grey: np.ndarray, count: int) -> tuple[float, float]:
    """Return the grey levels reached by the `count` darkest and the `count` brightest pixels."""
    histogram = grey_histogram(grey)
    darkest = float(np.searchsorted(np.cumsum(histogram), count))
    brightest = float(255 - np.searchsorted(np.cumsum(histogram[::-1]), count))
    return darkest, brightest


def _unshaded_ink_is_dark(grey: np.ndarray) -> bool:
    """Decide polarity after subtracting the paper's shading (a wide blur) from a quarter-size copy."""
    # A shadow over most of a photo drags the median towards the ink and leaves a bright strip of
    # lit paper, so the raw histogram can be clear and wrong; shading removed, paper is the median.
    small = cv2.resize(grey, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA).astype(np.float32)
    detail = small - cv2.GaussianBlur(small, (0, 0), min(small.shape) / 8)
    low, median, high = np.percentile(detail, [0.1, 50, 99.9])
    return bool(median - low > high - median)


def _local_ink_is_dark(grey: np.ndarray) -> bool:
    """Decide polarity from detail against the local mean, which survives lighting gradients."""
    side = max(15, (min(grey.shape) // 4) | 1)
    detail = grey.astype(np.float32) - cv2.blur(grey.astype(np.float32), (side, side))
    low, high = np.percentile(detail, [0.1, 99.9])
    return bool(-low > high)


def flatten_background(ink: np.ndarray, background_side: int | None = None) -> np.ndarray:
    """Divide out the paper's own brightness: removes shadows, gradients and tinted paper.

    The background is a morphological opening wider than any pen stroke, so strokes vanish from
    it while shadows and gradients stay; the result is contrast relative to the paper. A fifth of
    the image is wide enough for most pens yet narrower than most shadows; a thicker pen than
    that (a digit filling the frame) gets a wider opening. A page whose digit size is known
    passes `background_side`: a few digits wide is enough, and far cheaper on a big page.
    """
    shorter = min(ink.shape)
    side = max(31, shorter // BACKGROUND_SHARE) if background_side is None else background_side
    contrast = paper_contrast(ink, side)
    pen = max(pen_width(contrast), pen_width(ink, inner_only=True))
    if PEN_TO_BACKGROUND * pen > side:  # a thick pen, or a shadow inside the frame: tell which
        pen = max(pen_width(contrast, sharp_only=True), pen_width(ink, inner_only=True, sharp_only=True))
    if PEN_TO_BACKGROUND * pen > side:
        contrast = paper_contrast(ink, min(round(PEN_TO_BACKGROUND * pen), shorter // 2))
    return contrast


def blobs_on_border(mask: np.ndarray) -> np.ndarray:
    """Return the 0/1 blobs of `mask` that touch the image border."""
    count, labels = cv2.connectedComponents(mask, connectivity=8)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    touching = np.zeros(count, np.uint8)
    touching[edge[edge > 0]] = 1
    return touching[labels]


def paper_contrast(ink: np.ndarray, side: int) -> np.ndarray:
    """Return ink contrast relative to a background estimated with a `side` px opening."""
    side |= 1
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    opened = cv2.morphologyEx(ink, cv2.MORPH_OPEN, kernel)
    # Smoothing must not pull the background below the opening at a shadow's edge, or the
    # edge would stand out as a stroke.
    background = np.maximum(cv2.blur(opened, (side, side)), opened).astype(np.float32)
    background = np.minimum(background, ink.astype(np.float32))
    contrast = (ink - background) / np.maximum(255.0 - background, 32.0)
    return np.clip(contrast * 255.0, 0, 255).astype(np.uint8)


def pen_width(ink: np.ndarray, inner_only: bool = False, sharp_only: bool = False) -> float:
    """Estimate the widest pen stroke: a high percentile of stroke widths in a rough Otsu mask.

    With `inner_only`, blobs touching the frame are ignored: on a raw photo those are shadows,
    page edges and paper lines, while a stroke too wide for the opening is an inner blob.
    With `sharp_only`, soft-edged blobs (shadows inside the frame) are ignored too.
    """
    _, rough = cv2.threshold(ink, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    rough = np.ascontiguousarray(rough[::2, ::2])  # half resolution: only wide pens matter here
    if inner_only:
        rough = rough & (1 - blobs_on_border(rough))
    if sharp_only:
        rough = without_shadows(rough, np.ascontiguousarray(ink[::2, ::2]))
    distance = cv2.distanceTransform(rough, cv2.DIST_L2, 3)
    ridge = distance[(distance > 0) & (distance >= cv2.dilate(distance, np.ones((3, 3), np.uint8)))]
    return 4.0 * float(np.percentile(ridge, 90)) if ridge.size else 1.0


def without_shadows(mask: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Clear the blobs of a 0/1 mask whose edges are far too soft for a pen: shadows, not strokes."""
    _, labels = cv2.connectedComponents(mask, connectivity=8)
    keep = (sharpness_by_label(labels, ink) >= SHADOW_SHARPNESS).astype(np.uint8)
    keep[0] = 0
    return keep[labels]


def ink_image(image: np.ndarray, work_side: int = WORK_SIDE, background_side: int | None = None) -> InkImage:
    """Make ink bright on black at working resolution (longest side `work_side`), whatever the polarity.

    `background_side` (working px) sizes the paper's opening when the digits' size is known.
    """
    grey, alpha_ink = to_grey(image)
    grey, scale = resize_for_work(grey, work_side)
    if alpha_ink:
        return InkImage(grey, scale, drawing=True, grey=grey)
    # The median of the inverse is the inverse of the median: one blur serves both polarities.
    smooth = cv2.medianBlur(grey, 3)
    if ink_is_dark(grey):
        return InkImage(flat_ink(smooth, True, background_side), scale, polarity="dark", grey=grey)
    light = flat_ink(smooth, False, background_side)
    if scale < 1 or (scale == 1 and min(grey.shape) >= UNSHADED_POLARITY_SIDE):
        # Dark ink on paper is the usual photo: a shadow with a lit corner can fake a light-ink
        # histogram, but not the steep edges of a pen, so check a light verdict against them.
        dark = flat_ink(smooth, True, background_side)
        if edge_sharpness_of(dark) >= SHARPER_POLARITY * edge_sharpness_of(light):
            return InkImage(dark, scale, polarity="dark", grey=grey)
    return InkImage(light, scale, polarity="light", grey=grey)


def flat_ink(smooth: np.ndarray, dark: bool, background_side: int | None = None) -> np.ndarray:
    """Return ink bright on black with the paper's shading divided out, from a median-blurred grey image."""
    return flatten_background(cv2.bitwise_not(smooth) if dark else smooth, background_side)


def edge_sharpness_of(ink: np.ndarray) -> float:
    """Rate the edges of an ink image's Otsu mask as a whole: steep for pens, soft for lit paper."""
    _, mask = cv2.threshold(ink, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(sharpness_by_label(mask.astype(np.int32), ink)[1]) if mask.any() else 0.0


def ink_peak(ink: np.ndarray) -> tuple[float, bool]:
    """Return the ink's peak level, and whether so few pixels reach it that the ink is sparse."""
    histogram = grey_histogram(ink)
    (peak,) = histogram_percentiles(histogram, [99.9])
    if peak >= MIN_CONTRAST:
        return peak, False
    # A small thin digit in a large photo covers less than 0.1% of it: look at its brightest pixels.
    return float(255 - np.searchsorted(np.cumsum(histogram[::-1]), FEW_INK_PIXELS)), True


def ink_mask(ink: np.ndarray, peak: float | None = None) -> np.ndarray:
    """Threshold ink (Otsu, with a noise floor); raise EmptyImageError when there is none."""
    peak = ink_peak(ink)[0] if peak is None else peak
    if peak < MIN_CONTRAST:
        raise EmptyImageError(EMPTY_MESSAGE)
    return ((ink > ink_threshold(ink, peak)) & (ink >= NEAR_PEAK_SHARE * nearby_peak(ink))).astype(np.uint8)


def ink_threshold(ink: np.ndarray, peak: float) -> float:
    """Return the grey level above which ink counts: Otsu's, with a noise floor under faint ink."""
    otsu, _ = cv2.threshold(ink, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(max(otsu, MIN_CONTRAST * 0.75, 0.25 * peak))


def nearby_peak(ink: np.ndarray) -> np.ndarray:
    """Return the strongest ink within an eighth of the image of each pixel (float32)."""
    # A shadow band or paper texture beside a pen stroke is much fainter than the stroke, so
    # comparing each pixel with its neighbourhood's peak keeps it from fusing with the digit.
    side = max(15, min(ink.shape) // 8) | 1
    smooth = cv2.GaussianBlur(ink, (0, 0), 1.0)  # one noisy pixel is not a peak
    return cv2.dilate(smooth, cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))).astype(np.float32)


def near_sharp_edges(mask: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Keep ink near a sharp edge, or walled in by such ink: pen strokes, not shadows fused with them.

    A shadow narrower than the background opening survives flattening and can join a stroke
    into one blob. Its edges are far too soft for a pen, so its pixels lie far from any sharp
    edge and it reaches the paper through its soft outline; the inside of a thick stroke is
    far from edges too, but ringed by sharp-edged ink. Worked out at half resolution: the
    edges that matter are several pixels wide.
    """
    half = cv2.resize(ink, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    slope = ink_slope(half.astype(np.float32)) / 2  # per pixel of the full-resolution ink
    sharp = (slope >= SHADOW_SHARPNESS * nearby_peak(half)).astype(np.uint8)
    near = (cv2.distanceTransform(1 - sharp, cv2.DIST_L2, 3) <= SHARP_EDGE_REACH / 2).astype(np.uint8)
    size = (half.shape[1], half.shape[0])
    small_mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST).astype(np.uint8)
    near |= enclosed(small_mask & (1 - near), small_mask)
    return mask & cv2.resize(near, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_NEAREST)


def enclosed(far: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Return the parts of `far` (0/1) walled in by the rest of `mask`: the inside of a blot, not a shadow.

    A shadow reaches the paper through its own soft edge; the inside of a blot or a thick
    junction is ringed by the sharp-edged ink around it.
    """
    count, labels = cv2.connectedComponents(1 - (mask & (1 - far)), connectivity=4)
    touches_paper = np.zeros(count, np.uint8)
    touches_paper[labels[mask == 0]] = 1
    return far & (1 - touches_paper[labels])


def remove_rule_lines(mask: np.ndarray) -> np.ndarray:
    """Erase ruled or squared paper lines: long thin runs spanning most of the image."""
    lines = np.zeros_like(mask)
    for axis in (1, 0):
        length = max(25, mask.shape[axis] // 6)
        shape = (length, 1) if axis == 1 else (1, length)
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, shape)
        runs = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        lines |= _spanning_components(runs, mask.shape[axis], axis)
    if not lines.any():
        return mask
    cleaned = mask & ~lines
    # Re-bridge strokes that crossed a line: line pixels with ink just above and below come back.
    vertical = cv2.getStructuringElement(cv2.MORPH_RECT, (1, 7))
    bridged = cv2.morphologyEx(cleaned, cv2.MORPH_CLOSE, vertical) & lines
    return (cleaned | bridged).astype(np.uint8)


def _spanning_components(runs: np.ndarray, extent: int, axis: int) -> np.ndarray:
    """Keep runs that cross most of the image and are thin for their length (paper lines).

    A tightly cropped "1" or the bar of a "7" can be long too, but it is thick for its length
    and rarely crosses the whole frame, so both tests must pass.
    """
    if not cv2.countNonZero(runs):
        return runs  # no long run at all (most unruled photos): labelling an empty image costs 1 ms
    count, labels, stats = blobs_with_stats(runs)
    span_column = cv2.CC_STAT_WIDTH if axis == 1 else cv2.CC_STAT_HEIGHT
    min_span = extent * (0.8 if axis == 1 else 0.9)
    keep = [
        i
        for i in range(1, count)
        if stats[i, span_column] >= min_span
        and stats[i, cv2.CC_STAT_AREA] / stats[i, span_column] <= max(4.0, 0.012 * extent)
    ]
    return np.isin(labels, keep).astype(np.uint8) if keep else np.zeros_like(runs)


@dataclass(frozen=True)
class Component:
    """One connected blob of ink at working resolution."""

    label: int
    x: int
    y: int
    w: int
    h: int
    area: int

    def gap_to(self, other: Component) -> int:
        """Return the larger of the horizontal and vertical gaps between two boxes."""
        dx = max(other.x - (self.x + self.w), self.x - (other.x + other.w), 0)
        dy = max(other.y - (self.y + self.h), self.y - (other.y + other.h), 0)
        return max(dx, dy)


def blobs_with_stats(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Label the 8-connected blobs of a 0/1 mask; return their count, labels and OpenCV stats."""
    # 16-bit labels make OpenCV's statistics pass about 3x faster; a mask with fewer ink pixels
    # than 16 bits can count cannot have more blobs than that.
    wide = cv2.countNonZero(mask) >= np.iinfo(np.uint16).max
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask, connectivity=8, ltype=cv2.CV_32S if wide else cv2.CV_16U
    )
    return count, labels, stats


def components(mask: np.ndarray, min_area: int = 12) -> tuple[np.ndarray, list[Component]]:
    """Label connected ink blobs, dropping specks of noise."""
    count, labels, stats = blobs_with_stats(mask)
    found = [
        Component(i, *(int(v) for v in stats[i, :4]), area=int(stats[i, cv2.CC_STAT_AREA]))  # type: ignore[misc]
        for i in range(1, count)
        if stats[i, cv2.CC_STAT_AREA] >= min_area
    ]
    return labels, found


def drop_faint(labels: np.ndarray, found: list[Component], ink: np.ndarray) -> list[Component]:
    """Drop blobs much fainter than the strongest one: leftovers of shadow edges, not pen strokes."""
    if len(found) < 2:
        return found
    strength = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=labels.max() + 1)
    mean = {c.label: strength[c.label] / c.area for c in found}
    largest = max(b.area for b in found)
    strongest = max(mean[c.label] for c in found if c.area >= 0.1 * largest)
    return [c for c in found if mean[c.label] >= FAINT_SHARE * strongest]


def edge_sharpness(labels: np.ndarray, found: list[Component], ink: np.ndarray) -> dict[int, float]:
    """Rate each blob's edges: the ink's slope across its outline relative to its contrast."""
    sharpness = sharpness_by_label(labels, ink)
    return {c.label: float(sharpness[c.label]) for c in found}


def sharpness_by_label(labels: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Return, for every label, the mean ink slope along its outline over its mean ink level."""
    smooth = cv2.GaussianBlur(ink, (0, 0), 1.0).astype(np.float32)
    slope = ink_slope(smooth)
    mask = (labels > 0).astype(np.uint8)
    outline = labels * (mask - cv2.erode(mask, np.ones((3, 3), np.uint8)))
    size = labels.max() + 1
    edge, edge_count = _sums_by_label(outline, slope, size)
    level, area = _sums_by_label(labels, smooth, size)
    return edge / np.maximum(edge_count, 1) / np.maximum(1.0, level / np.maximum(area, 1))


def ink_slope(image: np.ndarray) -> np.ndarray:
    """Return the float32 image's gradient magnitude in grey levels per pixel (Sobel's sum is 8x)."""
    return cv2.magnitude(cv2.Sobel(image, cv2.CV_32F, 1, 0), cv2.Sobel(image, cv2.CV_32F, 0, 1)) / 8


def _sums_by_label(labels: np.ndarray, values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum `values` and count pixels per label, over labelled pixels only (ink is sparse: fast)."""
    where = np.flatnonzero(labels)
    keys = labels.ravel()[where]
    return np.bincount(keys, weights=values.ravel()[where], minlength=size), np.bincount(keys, minlength=size)


def drop_soft(labels: np.ndarray, found: list[Component], ink: np.ndarray) -> list[Component]:
    """Drop blobs whose edges are far softer than a pen's: the blurred edges of shadows."""
    if len(found) < 2:
        return found
    sharpness = edge_sharpness(labels, found, ink)
    floor = SOFT_SHARE * max(sharpness.values())
    return [c for c in found if sharpness[c.label] >= floor]


def touches_border(c: Component, shape: tuple[int, ...], margin: int = 0) -> bool:
    """Tell whether a blob touches the frame, or comes within `margin` px of it (paper edges, shadows)."""
    return c.x <= margin or c.y <= margin or c.x + c.w >= shape[1] - margin or c.y + c.h >= shape[0] - margin


def select_digit(found: list[Component], shape: tuple[int, ...]) -> list[Component]:
    """Pick the main blob and the nearby pieces that belong to the same digit."""
    if not found:
        raise EmptyImageError(EMPTY_MESSAGE)
    inside = [c for c in found if not touches_border(c, shape)] or found
    main = max(inside, key=lambda c: c.area)
    reach = max(3, int(0.25 * max(main.h, main.w)))
    return [main] + [
        c for c in found if c is not main and c.area >= PIECE_SHARE * main.area and main.gap_to(c) <= reach
    ]


def crop_pieces(found: list[Component]) -> list[Component]:
    """Pick a small image's digit: its largest blob and every sizeable piece, wherever it lies."""
    # A small image is a crop or a scan of one digit, with no page edge or shadow: the digit may
    # touch the frame, and a faint one may break into pieces further apart than a photo allows.
    main = max(found, key=lambda c: c.area)
    return [main] + [c for c in found if c is not main and c.area >= PIECE_SHARE * main.area]


def digit_parts(ink: FoundInk) -> list[Component]:
    """Pick the blobs of the single digit among found ink."""
    if ink.drawing:  # on a canvas nothing but the user's strokes exists: a far stroke is still the digit's
        return ink.blobs
    if ink.scale > 1:  # upscaled, so under MIN_WORK_SIDE px: a crop or a scan
        return crop_pieces(ink.blobs)
    return select_digit(ink.blobs, ink.labels.shape)


def union_box(parts: list[Component]) -> Box:
    """Return the bounding box of several blobs."""
    x0, y0 = min(c.x for c in parts), min(c.y for c in parts)
    x1, y1 = max(c.x + c.w for c in parts), max(c.y + c.h for c in parts)
    return Box(x0, y0, x1 - x0, y1 - y0)


def is_speck(box: Box, shape: tuple[int, ...]) -> bool:
    """Tell whether ink is too small against the photo to be a digit: grain, dust, a grid crossing."""
    return max(box.w, box.h) < MIN_DIGIT_SHARE * min(shape[:2])


def is_background_mark(
    parts: list[Component], shape: tuple[int, ...], sparse: bool = False, labels: np.ndarray | None = None
) -> bool:
    """Tell whether a photo's candidate is no digit: a speck, or sparse ink of no digit's shape.

    Sparse ink is a tiny digit or grain: only a digit-like shape is taken for the former. With
    `labels`, a filled shape many pen widths tall counts as a bold digit rather than a blot.
    """
    box = union_box(parts)
    if is_speck(box, shape):
        return True
    if not sparse:
        return False
    # Padded: a blot filling its box has no paper inside it to measure its width against.
    pen = stroke_width(np.pad(crop_parts(labels, parts, box), 1)) if labels is not None else None
    return not looks_like_digit(parts, box, pen)


def looks_like_digit(parts: list[Component], box: Box, pen: float | None = None) -> bool:
    """Reject shapes no digit has: very wide, a filled blob (`pen` wide, when known), or too tiny to read."""
    fill = sum(c.area for c in parts) / max(1, box.w * box.h)
    slender = box.h >= 2.5 * box.w  # a "1" fills its narrow box, yet is a digit
    bold = pen is not None and box.h >= BLOT_PENS * pen  # so does a bold pen's small 0, 6 or 9
    return box.w <= 1.6 * box.h and (fill < 0.62 or slender or bold) and box.h >= 6 and len(parts) <= 4


def stroke_width(mask: np.ndarray) -> float:
    """Estimate the pen width of a binary stroke image from its distance transform."""
    distance = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    inside = distance[mask > 0]
    return max(1.0, 4.0 * float(inside.mean()) - 2.0) if inside.size else 1.0


def normalise_stroke(mask: np.ndarray, box_side: int) -> np.ndarray:
    """Thicken or thin the pen so that it matches MNIST's width once scaled into the box."""
    target = STROKE_IN_BOX * box_side / BOX
    width = stroke_width(mask)
    if 0.75 * target <= width <= 1.5 * target:
        return mask
    if width < target:
        size = max(2, round(target - width))
        return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    size = max(2, round((width - target) / 1.5))
    thinned = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    return thinned if thinned.sum() > 0.25 * mask.sum() else mask


def fit_box(digit: np.ndarray) -> np.ndarray:
    """Scale a cropped float32 digit into the 20x20 box, keeping its aspect ratio, in 28x28."""
    h, w = digit.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(digit, size, interpolation=cv2.INTER_AREA)
    out = np.zeros((SIZE, SIZE), np.float32)
    top, left = (SIZE - size[1]) // 2, (SIZE - size[0]) // 2
    out[top : top + size[1], left : left + size[0]] = small
    return out


def centre_by_mass(image28: np.ndarray) -> np.ndarray:
    """Shift a 28x28 digit so its centre of mass sits where MNIST's does."""
    total = float(image28.sum())
    if total <= 0:
        return image28
    rows, cols = np.indices(image28.shape)
    cy, cx = float((rows * image28).sum() / total), float((cols * image28).sum() / total)
    shift = np.array([[1, 0, CENTRE - cx], [0, 1, CENTRE - cy]], dtype=np.float32)
    return np.asarray(cv2.warpAffine(image28, shift, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderValue=0))


def render28(mask: np.ndarray) -> np.ndarray:
    """Render a cropped binary digit as MNIST does: soft edges, 20x20 box, centred."""
    side = max(mask.shape)
    crisp = normalise_stroke(np.pad(mask, 2), side).astype(np.float32)
    sigma = 0.5 * side / BOX  # half a box pixel of softening, like MNIST's anti-aliasing
    soft = cv2.GaussianBlur(crisp, (0, 0), sigma) if sigma > 0.3 else crisp
    rows, cols = np.nonzero(soft > 0.05)
    image28 = fit_box(soft[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])
    image28 = centre_by_mass(image28)
    return np.clip(image28 / max(float(image28.max()), 1e-6), 0, 1).astype(np.float32)


def crop_parts(labels: np.ndarray, parts: list[Component], box: Box) -> np.ndarray:
    """Cut out only the chosen blobs inside their box, as a uint8 0/1 mask."""
    window = labels[box.y : box.y + box.h, box.x : box.x + box.w]
    return np.isin(window, [c.label for c in parts]).astype(np.uint8)


def to_input_box(box: Box, scale: float, origin: tuple[int, int] = (0, 0)) -> Box:
    """Map a working-resolution box back to input pixels; `origin` is where the working image starts."""
    x, y, w, h = (round(v / scale) for v in (box.x, box.y, box.w, box.h))
    return Box(x + origin[0], y + origin[1], w, h)


def prepare_parts(
    labels: np.ndarray, parts: list[Component], scale: float, origin: tuple[int, int] = (0, 0)
) -> PreparedDigit:
    """Turn the blobs of one digit into a model-ready PreparedDigit."""
    box = union_box(parts)
    input28 = render28(crop_parts(labels, parts, box))
    return PreparedDigit(input28, to_input_box(box, scale, origin), looks_like_digit(parts, box))


def find_ink(image: ImageInput, trace: Trace | None = None) -> FoundInk:
    """Decode, clean and label the ink of an image; `trace` is shown each stage (mnist-bot explain).

    The ink is located at the working size; when the image was shrunk to it and all its ink is
    too small to read there (a small digit in a big frame), a crop around it is read again at
    the input's full resolution, so the digit is analysed at a size that follows its own.
    """
    array, decode_scale = load_image_scaled(image)
    return find_decoded_ink(image, array, decode_scale, trace)


def find_decoded_ink(
    image: ImageInput, array: np.ndarray, decode_scale: float, trace: Trace | None = None
) -> FoundInk:
    """Find the ink of an already decoded image (`array`, `decode_scale` times the input's size)."""
    ink = ink_image(array)
    scale = ink.scale * decode_scale
    if trace is not None:
        trace("ink", ink.ink, {"polarity": ink.polarity, "scale": round(scale, 4)} | _pen(ink))
    region = zoom_region(ink, scale)
    if region is None:
        return label_ink(ink, scale, trace)
    full = array if decode_scale == 1 else load_image_scaled(image, draft=False)[0]
    crop, origin = crop_region(full, region)
    ink = ink_image(crop)
    if trace is not None:
        numbers = {"box": [*origin, crop.shape[1], crop.shape[0]], "polarity": ink.polarity}
        trace("zoom", ink.ink, numbers | {"scale": round(ink.scale, 4)} | _pen(ink))
    # Ink that small against its frame is a small digit or a speck: only a digit's shape counts.
    return label_ink(ink, ink.scale, trace, origin, sparse=True)


def _pen(ink: InkImage) -> dict[str, float]:
    """Return the pen width an ink image shows, for a trace."""
    return {"pen width px": pen_width(ink.ink)}


def zoom_region(ink: InkImage, scale: float) -> Box | None:
    """Return where (input px) to re-read a shrunk image at full size, when all its ink is too small to read.

    `scale` is working pixels per input pixel. Ink spread over the image (shadows, paper edges,
    grain, a big digit) is left to the working size; ink too small even at full size is a speck.
    """
    box = strong_ink_box(plain_ink(ink)) if scale < 1 else None
    if box is None:
        return None
    side = max(box.w, box.h)
    if side >= SMALL_INK_SIDE or side < MIN_DIGIT_PX * scale:
        return None
    margin = round(ZOOM_MARGIN * side)
    grown = Box(box.x - margin, box.y - margin, box.w + 2 * margin, box.h + 2 * margin)
    return to_input_box(grown, scale)


def plain_ink(ink: InkImage) -> np.ndarray:
    """Return the unsmoothed working grey, ink bright: a shrunk hairline survives there, not in `ink.ink`."""
    if ink.grey is None:
        return ink.ink
    return cv2.bitwise_not(ink.grey) if ink.polarity == "dark" else ink.grey


def strong_ink_box(ink: np.ndarray) -> Box | None:
    """Return the box (working px) of all pixels near the strongest ink above the paper; None without ink."""
    paper, top = grey_percentiles(ink, [50, 100])
    if top - paper < MIN_CONTRAST:
        return None
    strong = (ink >= paper + max(MIN_CONTRAST, NEAR_PEAK_SHARE * (top - paper))).astype(np.uint8)
    return Box(*cv2.boundingRect(strong))


def crop_region(image: np.ndarray, region: Box) -> tuple[np.ndarray, tuple[int, int]]:
    """Cut `region` out of an image, clipped to its frame; return the crop and its top-left corner."""
    x0, y0 = max(0, region.x), max(0, region.y)
    x1, y1 = min(image.shape[1], region.x + region.w), min(image.shape[0], region.y + region.h)
    return image[y0:y1, x0:x1], (x0, y0)


def label_ink(
    ink: InkImage,
    scale: float,
    trace: Trace | None = None,
    origin: tuple[int, int] = (0, 0),
    sparse: bool = False,
) -> FoundInk:
    """Threshold, clean and label an ink image into blobs; `scale` is its working px per input px."""
    peak, sparse_peak = ink_peak(ink.ink)
    mask = remove_rule_lines(ink_mask(ink.ink, peak))
    if not ink.drawing and ink.scale <= 1:  # canvases have no shadows; upscaling softens every edge
        mask = near_sharp_edges(mask, ink.ink)
    if trace is not None:
        threshold = ink_threshold(ink.ink, peak)
        trace("mask", 255 * mask, {"ink peak": peak, "threshold": threshold, "sparse": sparse_peak})
    min_area = max(12, int(mask.size * 2e-5))
    labels, found = components(mask, min_area)
    if not ink.drawing:  # a canvas has no shadows; anti-aliasing alone makes its edges soft
        found = drop_soft(labels, found, ink.ink)
    found = drop_faint(labels, found, ink.ink)
    if not found:
        raise EmptyImageError(EMPTY_MESSAGE)
    return FoundInk(labels, found, scale, ink.drawing, sparse or sparse_peak, origin)


def prepare_found_digit(ink: FoundInk) -> PreparedDigit:
    """Prepare the single digit among already-found ink blobs."""
    parts = digit_parts(ink)
    if not ink.drawing and is_background_mark(parts, ink.labels.shape, ink.sparse, ink.labels):
        raise EmptyImageError(EMPTY_MESSAGE)
    return prepare_parts(ink.labels, parts, ink.scale, ink.origin)


def prepare_digit(image: ImageInput) -> PreparedDigit:
    """Preprocess an image holding one digit into what the model expects."""
    return prepare_found_digit(find_ink(image))

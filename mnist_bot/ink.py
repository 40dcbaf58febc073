"""Ink stage: bright ink on black at working resolution, the paper's shading and tint divided out.

Polarity is found from the histogram (checked against the pen's steep edges on a photo), and the
paper's own brightness is divided out by an opening wider than the pen, so shadows, gradients and
tinted paper vanish while strokes stay. The pen width and edge sharpness measured here size it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from mnist_bot.decode import WORK_SIDE, to_grey

# Called with each stage's name, its picture (uint8, working resolution) and the numbers it chose.
Trace = Callable[[str, np.ndarray, dict[str, Any]], None]
MIN_WORK_SIDE = 200  # tiny inputs are upscaled so morphology has room
UNSHADED_POLARITY_SIDE = 200  # images at least this big (photos) get shading removed for polarity
CLEAR_TILT = 2  # the histogram decides polarity when one tail is this many times longer...
PHOTO_TILT = 4  # ...or this many times on a photo, where a wide shadow can fake a tilt
SHARPER_POLARITY = 1.5  # a photo's light-ink verdict yields when dark ink has edges this much steeper
SHADOW_SHARPNESS = 0.08  # edge slope over contrast: blurred pens stay above 0.15, shadows near 0.02
BACKGROUND_SHARE = 5  # the background kernel is this fraction of the image's shorter side
PEN_TO_BACKGROUND = 4  # and at least this many pen widths
MIN_CONTRAST = 28  # grey levels between ink and paper below which there is no digit
HAIRLINE_PX = 2  # pens this thin or thinner (working px) are not median-filtered
EXTREME_PIXELS = 4  # a digit shrunk to a few working pixels still has this many at its darkest


@dataclass(frozen=True)
class InkImage:
    """Ink as bright uint8 (H, W) at working resolution, its scale from the input, and its kind."""

    ink: np.ndarray
    scale: float
    drawing: bool = False  # ink from a transparent canvas: every stroke belongs to the drawing
    polarity: str = "alpha"  # where the ink came from: "dark" on light paper, "light" on dark, "alpha"
    grey: np.ndarray | None = None  # the working-size grey before smoothing, where hairlines survive


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
    is_dark = ink_is_dark(grey)
    # The median of the inverse is the inverse of the median: one blur serves both polarities. It
    # takes out grain and JPEG noise, and with them a pen of 1-2 px: a hairline is left as it is.
    hairline = is_hairline(grey, is_dark)
    smooth = grey if hairline else cv2.medianBlur(grey, 3)
    if is_dark:
        return InkImage(flat_ink(smooth, True, background_side), scale, polarity="dark", grey=grey)
    light = flat_ink(smooth, False, background_side)
    if not hairline and (scale < 1 or (scale == 1 and min(grey.shape) >= UNSHADED_POLARITY_SIDE)):
        # Dark ink on paper is the usual photo: a shadow with a lit corner can fake a light-ink
        # histogram, but not the steep edges of a pen, so check a light verdict against them.
        # (Light hairlines on black, unsmoothed, would fake the steeper edges the other way.)
        dark = flat_ink(smooth, True, background_side)
        if edge_sharpness_of(dark) >= SHARPER_POLARITY * edge_sharpness_of(light):
            return InkImage(dark, scale, polarity="dark", grey=grey)
    return InkImage(light, scale, polarity="light", grey=grey)


def is_hairline(grey: np.ndarray, dark: bool) -> bool:
    """Tell whether the pen is at most HAIRLINE_PX wide, so thin that a 3x3 median would erase it."""
    ink = cv2.bitwise_not(grey) if dark else grey
    _, rough = cv2.threshold(ink, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    distance = cv2.distanceTransform(rough, cv2.DIST_L2, 3)
    ridge = distance[(distance > 0) & (distance >= cv2.dilate(distance, np.ones((3, 3), np.uint8)))]
    # Along a stroke's middle, distance to the paper is half its width: 1 px or less for 1-2 px pens.
    return bool(ridge.size) and float(np.percentile(ridge, 90)) < (HAIRLINE_PX + 1) / 2


def flat_ink(smooth: np.ndarray, dark: bool, background_side: int | None = None) -> np.ndarray:
    """Return ink bright on black with the paper's shading divided out, from the smoothed grey image."""
    return flatten_background(cv2.bitwise_not(smooth) if dark else smooth, background_side)


def edge_sharpness_of(ink: np.ndarray) -> float:
    """Rate the edges of an ink image's Otsu mask as a whole: steep for pens, soft for lit paper."""
    _, mask = cv2.threshold(ink, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(sharpness_by_label(mask.astype(np.int32), ink)[1]) if mask.any() else 0.0


def blobs_with_stats(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Label the 8-connected blobs of a 0/1 mask; return their count, labels and OpenCV stats."""
    # 16-bit labels make OpenCV's statistics pass about 3x faster; a mask with fewer ink pixels
    # than 16 bits can count cannot have more blobs than that.
    wide = cv2.countNonZero(mask) >= np.iinfo(np.uint16).max
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask, connectivity=8, ltype=cv2.CV_32S if wide else cv2.CV_16U
    )
    return count, labels, stats


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

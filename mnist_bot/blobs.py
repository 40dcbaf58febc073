"""Blob stage: the ink image thresholded into labelled blobs; shadows, rules, grain and faint ink dropped.

The mask is thresholded against the ink's own peak; ink far from any sharp edge (a shadow fused
with a stroke) and ruled lines are cleared; soft-edged blobs, blobs that stand out from the
paper's noise no more than its grain, and faint blobs are dropped. A small digit in a big frame
is found again at full resolution (`find_decoded_ink`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mnist_bot.decode import ImageInput, load_image_scaled
from mnist_bot.errors import EmptyImageError
from mnist_bot.ink import (
    MIN_CONTRAST,
    SHADOW_SHARPNESS,
    InkImage,
    Trace,
    blobs_with_stats,
    grey_histogram,
    grey_percentiles,
    histogram_percentiles,
    ink_image,
    ink_slope,
    pen_width,
    sharpness_by_label,
)

FAINT_SHARE = 0.55  # blobs whose mean contrast is under this share of the strongest are not ink
SHARP_EDGE_REACH = 4  # px from a sharp edge that count as its stroke; wider strokes are walled in
ENCLOSED_OPEN_SHARE = 0.25  # ink far from sharp edges is a stroke's inside if this share of its rim is paper
SOFT_SHARE = 0.35  # blobs whose edges are under this share as steep as the sharpest are shadows
NEAR_PEAK_SHARE = 0.4  # ink fainter than this share of the strongest ink nearby is not a stroke
FAINT_JOIN_SHARE = 0.5  # ink over this share of the mask's levels joins what the mask breaks apart
FEW_INK_PIXELS = 40  # sparse ink (a tiny digit, specks) peaks where this many of its pixels reach
SMALL_INK_SIDE = 40  # working px (twice MNIST's box): a digit no bigger has strokes too thin to read
ZOOM_MARGIN = 1.0  # a re-read crop adds this many times the ink's longer side of paper on each side
NOISE_GRAIN_AREA = 4  # working px over which smoothed paper noise is correlated: one independent sample
# A blob's contrast over the paper, summed over its grains in noise sigmas, below which it is grain:
# blank photos' grain reaches a median of 63 and digits start near 95 (a thin pen on a page lower).
MIN_SIGNIFICANCE = 40
MIN_DIGIT_PX = 10  # input px: ink smaller than this is a speck at any resolution
EMPTY_MESSAGE = "I can't see a digit; try a closer photo with the digit in the middle."


@dataclass(frozen=True)
class Box:
    """A rectangle in the input image's pixel coordinates."""

    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class FoundInk:
    """Labelled ink blobs of one image at working resolution."""

    labels: np.ndarray  # uint16 or int32 (H, W), 0 = background
    blobs: list[Component]
    scale: float  # working pixels per input pixel
    drawing: bool
    sparse: bool = False  # under 0.1% of the image is ink: only a digit-like shape counts
    origin: tuple[int, int] = (0, 0)  # input pixel of the labels' top-left corner (a re-read crop's)
    crop: bool = False  # the input is so small it was upscaled to be read: a crop or a scan of one digit
    # 0/1 ink above half the mask's threshold, where pages keep their printed lines for `printed`:
    # it joins the dashes a faint, thin printed line breaks into, so a broken box is still one box.
    faint: np.ndarray | None = None


def ink_peak(ink: np.ndarray) -> tuple[float, bool]:
    """Return the ink's peak level, and whether so few pixels reach it that the ink is sparse."""
    histogram = grey_histogram(ink)
    (peak,) = histogram_percentiles(histogram, [99.9])
    if peak >= MIN_CONTRAST:
        return peak, False
    # A small thin digit in a large photo covers less than 0.1% of it: look at its brightest pixels.
    return float(255 - np.searchsorted(np.cumsum(histogram[::-1]), FEW_INK_PIXELS)), True


def ink_mask(
    ink: np.ndarray, peak: float | None = None, share: float = 1.0, nearby: np.ndarray | None = None
) -> np.ndarray:
    """Threshold ink (Otsu, with a noise floor); raise EmptyImageError when there is none.

    `share` scales both levels: under 1, the faint edges and gaps of strokes join them.
    `nearby` is `nearby_peak(ink)` when the caller has it.
    """
    peak = ink_peak(ink)[0] if peak is None else peak
    if peak < MIN_CONTRAST:
        raise EmptyImageError(EMPTY_MESSAGE)
    level, near = share * ink_threshold(ink, peak), share * NEAR_PEAK_SHARE
    nearby = nearby_peak(ink) if nearby is None else nearby
    return ((ink > level) & (ink >= near * nearby)).astype(np.uint8)


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

    A shadow reaches the paper through its own soft edge, along much of its outline; the inside
    of a bold stroke or a thick junction is ringed by the sharp-edged ink around it, a ring that
    a soft patch of the stroke's edge may break in a few places. So each region far from sharp
    edges is judged by the share of its outline that opens onto paper, at any size.
    """
    count, regions = cv2.connectedComponents(far, connectivity=4)
    if count <= 1:
        return far
    if count > np.iinfo(np.uint16).max:  # cv2.dilate takes 16-bit labels at most: judge the first 65,534
        regions = np.where(regions < np.iinfo(np.uint16).max, regions, 0)
    # Every pixel beside a region, labelled with that region (the largest label where two meet).
    beside = cv2.dilate(regions.astype(np.uint16), cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))
    outline = (beside > 0) & (far == 0)
    size = int(beside.max()) + 1
    rim = np.bincount(beside[outline], minlength=size)
    open_to_paper = np.bincount(beside[outline & (mask == 0)], minlength=size)
    walled = open_to_paper <= ENCLOSED_OPEN_SHARE * np.maximum(rim, 1)
    walled[0] = False
    return (far & walled[np.minimum(regions, size - 1)]).astype(np.uint8)


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


def components(mask: np.ndarray, min_area: int = 12) -> tuple[np.ndarray, list[Component]]:
    """Label connected ink blobs, dropping specks of noise."""
    count, labels, stats = blobs_with_stats(mask)
    found = [
        Component(i, *(int(v) for v in stats[i, :4]), area=int(stats[i, cv2.CC_STAT_AREA]))  # type: ignore[misc]
        for i in range(1, count)
        if stats[i, cv2.CC_STAT_AREA] >= min_area
    ]
    return labels, found


def drop_faint(found: list[Component], mean: dict[int, float]) -> list[Component]:
    """Drop blobs much fainter than the strongest one (`mean` ink by label): shadow edges, not pen strokes."""
    if len(found) < 2:
        return found
    largest = max(b.area for b in found)
    strongest = max(mean[c.label] for c in found if c.area >= 0.1 * largest)
    return [c for c in found if mean[c.label] >= FAINT_SHARE * strongest]


def mean_ink(labels: np.ndarray, found: list[Component], ink: np.ndarray) -> dict[int, float]:
    """Return each blob's mean ink level, by label."""
    strength = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=labels.max() + 1)
    return {c.label: float(strength[c.label]) / c.area for c in found}


def paper_noise(labels: np.ndarray, ink: np.ndarray) -> tuple[float, float]:
    """Return the paper's level and noise (a robust sigma) in an ink image: the pixels no blob covers."""
    histogram = cv2.calcHist([ink], [0], (labels == 0).astype(np.uint8), [256], [0, 256]).ravel()
    (level,) = histogram_percentiles(histogram, [50])
    spread = np.bincount(np.abs(np.arange(256) - round(level)), weights=histogram, minlength=256)
    (mad,) = histogram_percentiles(spread, [50])
    return level, max(1.4826 * mad, 1.0)


def drop_grain(
    labels: np.ndarray, found: list[Component], ink: np.ndarray, mean: dict[int, float]
) -> list[Component]:
    """Drop blobs (`mean` ink by label) that stand out from the paper's noise no more than grain does.

    Thresholding noisy blank paper leaves grain specks at the threshold; a pen stroke, however
    faint, adds its contrast over many pixels, so its summed significance is far higher.
    """
    level, sigma = paper_noise(labels, ink)
    return [c for c in found if significance(mean[c.label], c.area, level, sigma) >= MIN_SIGNIFICANCE]


def significance(mean: float, area: int, level: float, sigma: float) -> float:
    """Rate a blob of `area` px and `mean` ink against paper at `level`, noise `sigma`: its summed z-score."""
    # Averaging n independent grains shrinks the noise by sqrt(n).
    return (mean - level) / sigma * float(np.sqrt(area / NOISE_GRAIN_AREA))


def edge_sharpness(labels: np.ndarray, found: list[Component], ink: np.ndarray) -> dict[int, float]:
    """Rate each blob's edges: the ink's slope across its outline relative to its contrast."""
    sharpness = sharpness_by_label(labels, ink)
    return {c.label: float(sharpness[c.label]) for c in found}


def drop_soft(labels: np.ndarray, found: list[Component], ink: np.ndarray) -> list[Component]:
    """Drop blobs whose edges are far softer than a pen's: the blurred edges of shadows."""
    if len(found) < 2:
        return found
    sharpness = edge_sharpness(labels, found, ink)
    floor = SOFT_SHARE * max(sharpness.values())
    return [c for c in found if sharpness[c.label] >= floor]


def stroke_width(mask: np.ndarray) -> float:
    """Estimate the pen width of a binary stroke image from its distance transform."""
    distance = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    inside = distance[mask > 0]
    return max(1.0, 4.0 * float(inside.mean()) - 2.0) if inside.size else 1.0


def to_input_box(box: Box, scale: float, origin: tuple[int, int] = (0, 0)) -> Box:
    """Map a working-resolution box back to input pixels; `origin` is where the working image starts."""
    x, y, w, h = (round(v / scale) for v in (box.x, box.y, box.w, box.h))
    return Box(x + origin[0], y + origin[1], w, h)


def find_ink(image: ImageInput, trace: Trace | None = None) -> FoundInk:
    """Decode, clean and label the ink of an image; `trace` is shown each stage (mnist-bot explain).

    The ink is located at the working size; when the image was shrunk to it and all its ink is
    too small to read there (a small digit in a big frame), a crop around it is read again at
    the input's full resolution, so the digit is analysed at a size that follows its own.
    """
    array, decode_scale = load_image_scaled(image)
    return find_decoded_ink(image, array, decode_scale, trace)


def find_decoded_ink(
    image: ImageInput,
    array: np.ndarray,
    decode_scale: float,
    trace: Trace | None = None,
    rules: bool = True,
) -> FoundInk:
    """Find the ink of an already decoded image (`array`, `decode_scale` times the input's size).

    Without `rules`, ruled lines stay for the caller's own printed-line stage (pages: `printed`).
    """
    ink = ink_image(array)
    scale = ink.scale * decode_scale
    if trace is not None:
        trace("ink", ink.ink, {"polarity": ink.polarity, "scale": round(scale, 4)} | _pen(ink))
    region = zoom_region(ink, scale)
    if region is None:
        return label_ink(ink, scale, trace, rules=rules)
    full = array if decode_scale == 1 else load_image_scaled(image, draft=False)[0]
    crop, origin = crop_region(full, region)
    ink = ink_image(crop)
    if trace is not None:
        numbers = {"box": [*origin, crop.shape[1], crop.shape[0]], "polarity": ink.polarity}
        trace("zoom", ink.ink, numbers | {"scale": round(ink.scale, 4)} | _pen(ink))
    # Ink that small against its frame is a small digit or a speck: only a digit's shape counts.
    return label_ink(ink, ink.scale, trace, origin, sparse=True, rules=rules)


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
    rules: bool = True,
) -> FoundInk:
    """Threshold, clean and label an ink image into blobs; `scale` is its working px per input px.

    With `rules`, ruled lines spanning the image are erased (sized by the image: the one-digit path).
    """
    peak, sparse_peak = ink_peak(ink.ink)
    nearby = nearby_peak(ink.ink) if peak >= MIN_CONTRAST else None
    mask = ink_mask(ink.ink, peak, nearby=nearby)
    if rules:
        mask = remove_rule_lines(mask)
    if not ink.drawing and ink.scale <= 1:  # canvases have no shadows; upscaling softens every edge
        mask = near_sharp_edges(mask, ink.ink)
    if trace is not None:
        threshold = ink_threshold(ink.ink, peak)
        trace("mask", 255 * mask, {"ink peak": peak, "threshold": threshold, "sparse": sparse_peak})
    min_area = max(12, int(mask.size * 2e-5))
    labels, found = components(mask, min_area)
    if not ink.drawing:  # a canvas has no shadows; anti-aliasing alone makes its edges soft
        found = drop_soft(labels, found, ink.ink)
    mean = mean_ink(labels, found, ink.ink)  # one pass over the image serves both tests
    found = drop_faint(drop_grain(labels, found, ink.ink, mean), mean)
    if not found:
        raise EmptyImageError(EMPTY_MESSAGE)
    faint = None if rules or ink.drawing else ink_mask(ink.ink, peak, FAINT_JOIN_SHARE, nearby)
    return FoundInk(labels, found, scale, ink.drawing, sparse or sparse_peak, origin, ink.scale > 1, faint)

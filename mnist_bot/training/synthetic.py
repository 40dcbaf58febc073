"""Realistic test inputs built from MNIST-style digits: phone photos, canvas drawings, numbers, scans.

Every function is pure and takes a seeded `np.random.Generator`, so a seed reproduces an input exactly.
No TensorFlow here: the robustness benchmark and the tests use this module on the serving side.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from mnist_bot import render
from mnist_bot.strokes import rasterise

Strokes = list[np.ndarray]  # each stroke (n, 2) float32 x, y with y pointing down
UnipenSample = tuple[int, Strokes, str]  # label, strokes, writer (the source file)

# Phone photo frames (width, height); portrait frames are drawn by transposing.
FRAME_SIZES = ((640, 480), (800, 600), (960, 720), (1024, 768), (1280, 720), (1280, 960))
INKS = ((22, 22, 28), (30, 40, 105), (25, 35, 140), (70, 70, 78), (45, 45, 50))  # RGB
PAPERS = ((246, 246, 244), (222, 222, 220), (244, 236, 212), (232, 240, 248), (248, 236, 238))
RULE_COLOURS = ((150, 185, 230), (175, 175, 180), (120, 170, 220))
MIN_DIGIT_FRACTION = 0.08  # smallest digit height, as a fraction of the frame height
FAITHFUL_TRIES = 6  # redraws allowed, per tip, for a digit whose render changed its shape
THICK_STROKE = 1.7  # source half-width (px of a 20 px digit) above which a thin pen would lose curls
LOST_INK = 4  # source ink pixels a faithful render may leave uncovered
TOUCH_SHARE = 0.5  # in a touching number, each pair of neighbours touches this often (one pair always)
TOUCH_OVERLAP = 2.0  # touching strokes meet or cross by up to this many pen widths
FLAG_ZOOM = 4  # a 1's flag is drawn on the digit enlarged this much, then shrunk back
FLAG_ANGLES = (30.0, 60.0)  # degrees between flag and stem: wider reads as a 7's bar
FLAG_FLATTEST = 25.0  # degrees below the horizontal
FLAG_LENGTHS = (0.2, 1.0)  # of the 1's height
FOOT_SHARE = 0.1  # flagged 1s that also stand on a foot


# ---------------------------------------------------------------- digit shapes


def crop_to_ink(image: np.ndarray, level: int = 30) -> np.ndarray:
    """Crop a uint8 (H, W) ink=255 image to the box of pixels above `level` (whole image if none)."""
    rows = np.flatnonzero((image > level).any(axis=1))
    cols = np.flatnonzero((image > level).any(axis=0))
    if rows.size == 0:
        return image
    return image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def digit_mask(digit: np.ndarray, height: int, rng: np.random.Generator, smooth: float = 0.45) -> np.ndarray:
    """Upscale a uint8 ink=255 digit to a smooth pen-stroke mask `height` px tall: float32 (h, w), 0-1."""
    crop = np.pad(crop_to_ink(digit), 2).astype(np.float32) / 255.0
    scale = height / max(crop.shape[0] - 4, 1)
    width = max(1, round(crop.shape[1] * scale * rng.uniform(0.9, 1.1)))
    big = cv2.resize(crop, (width, max(1, round(crop.shape[0] * scale))), interpolation=cv2.INTER_CUBIC)
    big = cv2.GaussianBlur(big, (0, 0), sigmaX=max(0.4, smooth * scale))
    # A pen stroke has a steep edge: map the smooth grey levels through a narrow ramp at a threshold,
    # whose level also varies the stroke thickness from writer to writer.
    threshold = rng.uniform(0.3, 0.55)
    return np.clip((big - threshold) / 0.08 + 0.5, 0.0, 1.0).astype(np.float32)


def pen_mask(digit: np.ndarray, height: int, pen: float, rng: np.random.Generator) -> np.ndarray:
    """Redraw a uint8 ink=255 digit `height` px tall with a round pen `pen` px wide: float32 (h, w), 0-1."""
    # Thin at a modest size (fast, few spurs), then scale the distance-to-skeleton field up:
    # its level sets are smooth, so the redrawn stroke has clean edges at any size.
    work = min(height, 96)
    skeleton = thin(digit_mask(digit, work, rng, smooth=0.6) > 0.5)
    factor = height / work
    pad = int(np.ceil(pen / 2 / factor)) + 2
    free = np.pad(~skeleton, pad, constant_values=True).astype(np.uint8)
    distance = cv2.distanceTransform(free, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    size = (round(free.shape[1] * factor), round(free.shape[0] * factor))
    distance = cv2.resize(distance, size, interpolation=cv2.INTER_LINEAR) * factor
    loops = count_holes(skeleton, min_area=4)
    return keep_loops(lambda p: _smooth_edges(np.clip(p / 2 + 0.5 - distance, 0.0, 1.0), p), pen, loops)


def count_holes(ink: np.ndarray, min_area: float) -> int:
    """Count the loops of a bool (H, W) ink mask: enclosed background regions of at least `min_area` px."""
    background = np.pad(~ink, 1, constant_values=True).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(background, connectivity=4)
    # Label 0 is the ink and label 1 the outside (it holds the padded corner); the rest are holes.
    return int(np.sum(stats[2:, cv2.CC_STAT_AREA] >= min_area))


def keep_loops(draw: Callable[[float], np.ndarray], pen: float, loops: int) -> np.ndarray:
    """Draw with `pen`, narrowing it (to 2 px at least) until the `loops` of the digit stay open.

    A pen too wide for a small loop fills it, turning an 8 or a 9 into a blob nobody could read.
    """
    drawing = draw(pen)
    while pen > 2 and count_holes(drawing >= drawing.max() / 2, min_area=pen * pen / 4) < loops:
        pen = max(2.0, pen * 0.8)
        drawing = draw(pen)
    return drawing


def _smooth_edges(stroke: np.ndarray, pen: float) -> np.ndarray:
    """Round off the skeleton's pixel steps: blur, then restore a one-pixel anti-aliased edge."""
    sigma = max(0.8, 0.3 * pen)
    blurred = cv2.GaussianBlur(stroke.astype(np.float32), (0, 0), sigmaX=sigma)
    return np.clip((blurred - 0.5) * sigma * 2.5 + 0.5, 0.0, 1.0).astype(np.float32)


def rotate_mask(mask: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate a float mask about its centre, growing the canvas so nothing is cut off."""
    h, w = mask.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(np.ceil(h * sin + w * cos)), int(np.ceil(h * cos + w * sin))
    matrix[0, 2] += (new_w - w) / 2
    matrix[1, 2] += (new_h - h) / 2
    return cv2.warpAffine(mask, matrix, (new_w, new_h), flags=cv2.INTER_LINEAR, borderValue=0.0)


def place(
    mask: np.ndarray, shape: tuple[int, int], rng: np.random.Generator, margin: float = 0.06
) -> np.ndarray:
    """Paste a mask at a random spot of an empty (H, W) float32 frame, `margin` of a side from its edges."""
    # The margin also keeps the perspective warp (corners move up to 4%) from pushing ink off the frame.
    frame = np.zeros(shape, dtype=np.float32)
    mask = _fit(mask, shape, 1.0 - 2 * margin)
    h, w = mask.shape
    y, x = _spot(shape[0], h, margin, rng), _spot(shape[1], w, margin, rng)
    frame[y : y + h, x : x + w] = mask
    return frame


def _spot(side: int, size: int, margin: float, rng: np.random.Generator) -> int:
    """Pick where a `size` long thing starts along a `side` long frame, `margin` of it from both ends."""
    low = max(0, min(round(side * margin), side - size))
    return int(rng.integers(low, max(side - size - low, low) + 1))


def _fit(mask: np.ndarray, shape: tuple[int, int], fraction: float) -> np.ndarray:
    """Shrink a mask that would not fit within `fraction` of a frame."""
    scale = min(1.0, fraction * shape[0] / mask.shape[0], fraction * shape[1] / mask.shape[1])
    if scale >= 1.0:
        return mask
    size = (max(1, int(mask.shape[1] * scale)), max(1, int(mask.shape[0] * scale)))
    return cv2.resize(mask, size, interpolation=cv2.INTER_AREA)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """Draw from a log-uniform distribution, so small sizes are as common as large ones."""
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def flag_one(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Give a uint8 (28, 28) MNIST 1 a European flag: a stroke from its top down to the left.

    MNIST's 1s are mostly bare sticks; many writers start a 1 with a flag (and some end it with a
    foot), which a model that never saw one reads as a 7. Swiss writers' flags run nearly as long
    as the stem, wider than MNIST's field leaves room for beside a centred 1, so the flag is drawn
    on a field widened to its left and the flagged 1 fit into MNIST's box again.
    """
    big = cv2.resize(digit, None, fx=FLAG_ZOOM, fy=FLAG_ZOOM, interpolation=cv2.INTER_CUBIC)
    big = np.pad(big, ((0, 0), (round(FLAG_LENGTHS[1] * big.shape[0]), 0)))
    ink = big > 127
    if np.count_nonzero(ink.any(axis=1)) < 2:
        return digit
    pen = max(FLAG_ZOOM, pen_width(big.astype(np.float32) / 255.0))
    strokes = [_flag(ink, pen, rng)]
    if rng.random() < FOOT_SHARE:
        strokes.append(_foot(ink, pen, rng))
    drawn = rasterise([(points, pen) for points in strokes], (big.shape[1], big.shape[0]))
    flagged = crop_to_ink(np.maximum(big, drawn.astype(np.uint8))).astype(np.float32) / 255.0
    return (
        np.asarray(render.centre_by_mass(render.fit_box(flagged)) * 255).clip(0, 255).round().astype(np.uint8)
    )


def _flag(ink: np.ndarray, pen: float, rng: np.random.Generator) -> np.ndarray:
    """Return a slightly bowed flag's points (x, y), from the top of a 1's stem down to the left."""
    rows = np.flatnonzero(ink.any(axis=1))
    top, height = int(rows[0]), int(rows[-1] - rows[0])
    start = np.array([np.mean(np.flatnonzero(ink[top : top + round(pen)].any(axis=0))), top + pen / 2])
    # The flag leaves the top at an angle to the stem, so a slanted 1 keeps its flag's shape,
    # but never flatter than FLAG_FLATTEST below the horizontal, where a 7's bar lies.
    angle = max(stem_angle(ink) - np.radians(rng.uniform(*FLAG_ANGLES)), np.radians(FLAG_FLATTEST))
    direction = np.array([-np.cos(angle), np.sin(angle)])
    length = min(height * rng.uniform(*FLAG_LENGTHS), (start[0] - pen) / max(-direction[0], 0.2))
    bow = rng.uniform(-0.12, 0.12) * length  # drawn quickly, not ruled
    t = np.linspace(0.0, 1.0, 12)[:, None]
    normal = np.array([direction[1], -direction[0]])
    return (start + t * length * direction + 4 * t * (1 - t) * bow * normal).astype(np.float32)


def _foot(ink: np.ndarray, pen: float, rng: np.random.Generator) -> np.ndarray:
    """Return a short level foot's two points (x, y) under the bottom of a 1's stem."""
    rows = np.flatnonzero(ink.any(axis=1))
    base, height = int(rows[-1]), int(rows[-1] - rows[0])
    centre = float(np.mean(np.flatnonzero(ink[base - round(pen) : base + 1].any(axis=0))))
    half = height * rng.uniform(0.12, 0.22)
    return np.array([[centre - half, base - pen / 2], [centre + half, base - pen / 2]], dtype=np.float32)


def stem_angle(ink: np.ndarray) -> float:
    """Return the angle (radians, below the leftward horizontal) of a bool stroke's downward long axis."""
    ys, xs = np.nonzero(ink)
    dx, dy = np.linalg.eigh(np.cov(np.stack([xs, ys]).astype(np.float64)))[1][:, -1]
    if dy < 0:
        dx, dy = -dx, -dy
    return float(np.arctan2(dy, -dx))


# ---------------------------------------------------------------- phone photos


def photo_of_digit(
    digit28: np.ndarray, rng: np.random.Generator, frame: tuple[int, int] | None = None
) -> bytes:
    """Render a uint8 (28, 28) ink=255 digit as a JPEG phone photo, `frame` (H, W) or a random size."""
    height, width = frame if frame is not None else frame_shape(rng)
    digit_height = round(height * _log_uniform(rng, MIN_DIGIT_FRACTION + 0.01, 0.6))
    mask = stroke_mask(digit28, digit_height, rng, choose_pen(digit_height, rng))
    mask = rotate_mask(mask, rng.uniform(-12, 12))
    return photograph(place(mask, (height, width), rng), rng)


def photo_of_number(digits28: Sequence[np.ndarray], rng: np.random.Generator) -> bytes:
    """Render MNIST-style digits left to right, unevenly spaced and never touching, as a JPEG photo."""
    return _photo_of_strip(number_mask, digits28, rng)


def _photo_of_strip(
    lay_out: Callable[[Sequence[np.ndarray], tuple[int, int], np.random.Generator], np.ndarray],
    digits28: Sequence[np.ndarray],
    rng: np.random.Generator,
) -> bytes:
    """Photograph digits laid out in a strip by `lay_out`, slanted a few degrees, in a random frame."""
    height, width = frame_shape(rng)
    strip = lay_out(digits28, (height, width), rng)
    return photograph(place(rotate_mask(strip, rng.uniform(-6, 6)), (height, width), rng), rng)


def number_mask(
    digits28: Sequence[np.ndarray], frame: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Lay digits side by side with uneven gaps and baselines, sized to fit `frame` (H, W)."""
    masks, gaps, digit_height = _number_parts(digits28, frame, rng)
    return _side_by_side(masks, [max(3, round(g * digit_height)) for g in gaps], digit_height, rng)


def _number_parts(
    digits28: Sequence[np.ndarray], frame: tuple[int, int], rng: np.random.Generator
) -> tuple[list[np.ndarray], np.ndarray, float]:
    """Draw a number's digits to fit `frame`: their masks, the gaps (shares of a digit height), the height."""
    if not digits28:
        raise ValueError("A number needs at least one digit.")
    sizes = rng.uniform(0.92, 1.08, len(digits28))
    aspects = [crop_to_ink(d).shape[1] / crop_to_ink(d).shape[0] for d in digits28]
    gaps = rng.uniform(0.12, 0.55, len(digits28) - 1)
    width_per_height = float(np.dot(sizes, aspects) * 1.1 + gaps.sum())
    high = min(0.4 * frame[0], 0.88 * frame[1] / width_per_height)
    digit_height = rng.uniform(min(high, max(MIN_DIGIT_FRACTION * frame[0], 24)), high)
    heights = [max(8, round(digit_height * s)) for s in sizes]
    return number_strokes(digits28, heights, rng, choose_pen(digit_height, rng)), gaps, digit_height


def _side_by_side(
    masks: list[np.ndarray], gaps: list[int], digit_height: float, rng: np.random.Generator
) -> np.ndarray:
    """Join masks left to right with the given gaps in px and a wandering baseline."""
    offsets = [round(v) for v in rng.uniform(0, 0.1 * digit_height, len(masks))]
    total_h = max(m.shape[0] + o for m, o in zip(masks, offsets, strict=True))
    strip = np.zeros((total_h, sum(m.shape[1] for m in masks) + sum(gaps)), dtype=np.float32)
    x = 0
    for mask, offset, gap in zip(masks, offsets, [*gaps, 0], strict=True):
        strip[offset : offset + mask.shape[0], x : x + mask.shape[1]] = mask
        x += mask.shape[1] + gap
    return strip


def photo_of_touching_number(digits28: Sequence[np.ndarray], rng: np.random.Generator) -> bytes:
    """Render digits left to right as a JPEG photo, some neighbours touching (at least one pair)."""
    return _photo_of_strip(touching_mask, digits28, rng)


def touching_mask(
    digits28: Sequence[np.ndarray], frame: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Lay at least two digits side by side as `number_mask` does, but with neighbours that touch.

    Each pair touches with probability TOUCH_SHARE, and one pair always does: its strokes meet
    or cross by up to TOUCH_OVERLAP pen widths, as when one writes a number quickly.
    """
    if len(digits28) < 2:
        raise ValueError("Touching digits need at least two digits.")
    masks, gaps, digit_height = _number_parts(digits28, frame, rng)
    touch = rng.random(len(gaps)) < TOUCH_SHARE
    touch[rng.integers(len(gaps))] = True
    pen = float(np.median([pen_width(m) for m in masks]))
    steps = [
        -rng.uniform(0, TOUCH_OVERLAP) * pen if touches else float(max(3, round(g * digit_height)))
        for g, touches in zip(gaps, touch, strict=True)
    ]
    offsets = [round(v) for v in rng.uniform(0, 0.1 * digit_height, len(masks))]
    return _touching_side_by_side(masks, steps, touch, offsets)


def pen_width(mask: np.ndarray) -> float:
    """Estimate the pen width (px) of a float32 stroke mask: four times the mean distance to paper."""
    ink = (mask >= 0.5).astype(np.uint8)
    inside = cv2.distanceTransform(ink, cv2.DIST_L2, 3)[ink > 0]
    return 4.0 * float(inside.mean()) if inside.size else 1.0


def _touching_side_by_side(
    masks: list[np.ndarray], steps: list[float], touch: np.ndarray, offsets: list[int]
) -> np.ndarray:
    """Join masks left to right: a touching pair `-step` px into each other's strokes, others `step` apart."""
    total_h = max(m.shape[0] + o for m, o in zip(masks, offsets, strict=True))
    xs = [0]
    right = _ink_edge(masks[0], offsets[0], total_h, last=True)  # rightmost ink column so far, per row
    for i, mask in enumerate(masks[1:]):
        left = _ink_edge(mask, offsets[i + 1], total_h, last=False)
        shared = np.isfinite(left) & np.isfinite(right)
        if touch[i] and shared.any():
            # The first column where the new digit's ink would meet the row's ink, moved in by the overlap.
            x = round(1 + steps[i] - float(np.min(left[shared] - right[shared])))
        else:
            x = round(xs[-1] + masks[i].shape[1] + abs(steps[i]))
        xs.append(max(x, xs[-1] + 1))
        right = np.fmax(right, xs[-1] + _ink_edge(mask, offsets[i + 1], total_h, last=True))
    strip = np.zeros((total_h, max(x + m.shape[1] for x, m in zip(xs, masks, strict=True))), np.float32)
    for mask, x, offset in zip(masks, xs, offsets, strict=True):
        window = strip[offset : offset + mask.shape[0], x : x + mask.shape[1]]
        np.maximum(window, mask, out=window)  # strokes that cross stay ink, not the later digit's paper
    return strip


def _ink_edge(mask: np.ndarray, offset: int, total_h: int, last: bool) -> np.ndarray:
    """Return per strip row a mask's first (or `last`) ink column, `offset` rows down; NaN where none."""
    ink = mask >= 0.5
    edge = np.full(total_h, np.nan)
    rows = np.flatnonzero(ink.any(axis=1))
    columns = ink.shape[1] - 1 - np.argmax(ink[rows, ::-1], axis=1) if last else np.argmax(ink[rows], axis=1)
    edge[rows + offset] = columns
    return edge


def stroke_mask(digit: np.ndarray, height: int, rng: np.random.Generator, pen: float | None) -> np.ndarray:
    """Draw a digit with MNIST's own felt-tip stroke (`pen` None) or a round pen, keeping its shape."""
    return number_strokes([digit], [height], rng, pen)[0]


def number_strokes(
    digits: Sequence[np.ndarray], heights: Sequence[int], rng: np.random.Generator, pen: float | None
) -> list[np.ndarray]:
    """Draw digits with one pen, or all with the felt tip when the pen cannot draw each faithfully.

    A small render can fill a loop or break a faint stroke, turning a 9 into a 1 or an 8 into
    a 9, and a thin pen following the skeleton of a thick stroke loses the curls hidden in it,
    turning a 2 into a 1 or a 3 into a 5: the photo then shows another digit than its label.
    Such draws are redrawn (a few tries). The felt tip, the source itself enlarged, is the
    fallback for the whole number, since one writer does not switch pens between digits.
    """
    if pen is not None and all(stroke_half_width(d) <= THICK_STROKE for d in digits):
        drawn = [faithful_draw(d, h, rng, pen) for d, h in zip(digits, heights, strict=True)]
        if all(mask is not None for mask in drawn):
            return [mask for mask in drawn if mask is not None]
    return [felt_tip_mask(d, h, rng) for d, h in zip(digits, heights, strict=True)]


def faithful_draw(
    digit: np.ndarray, height: int, rng: np.random.Generator, pen: float | None
) -> np.ndarray | None:
    """Return the first of a few draws that keeps the digit's parts, loops and strokes, or None."""
    wanted = source_topology(digit)
    for _ in range(FAITHFUL_TRIES):
        mask = one_stroke_mask(digit, height, rng, pen)
        # MNIST digits are 20 px tall: height / 20 is one MNIST px.
        if topology(mask >= 0.5, height / 20) == wanted and uncovered_ink(digit, mask) < LOST_INK:
            return mask
    return None


def felt_tip_mask(digit: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """Draw a digit with the felt tip, faithfully if a few tries allow (a very faint source may not)."""
    mask = faithful_draw(digit, height, rng, None)
    return one_stroke_mask(digit, height, rng, None) if mask is None else mask


def stroke_half_width(digit: np.ndarray) -> float:
    """Return the median half-width of a uint8 MNIST digit's stroke, in px of a 20 px tall digit."""
    enlarged = enlarged_ink(digit)
    if not enlarged.any():
        return 0.0
    inside = cv2.distanceTransform(enlarged.astype(np.uint8), cv2.DIST_L2, 5)
    digit_height = enlarged.shape[0] - 16  # the 2 px padding on each side, enlarged 4x
    return float(np.median(inside[thin(enlarged)])) * 20 / max(digit_height, 4)


def uncovered_ink(digit: np.ndarray, mask: np.ndarray) -> int:
    """Count the MNIST digit's ink pixels that a render, shrunk onto the digit's box, leaves far from its ink.

    Far is more than the source stroke's half-width plus one px: a thinner pen is not a loss,
    a missing hook or bar is.
    """
    source = np.pad(crop_to_ink(digit, 127), 3) > 127
    drawn = crop_to_ink((np.clip(mask, 0.0, 1.0) * 255).astype(np.uint8), 127).astype(np.float32) / 255.0
    size = (source.shape[1] - 6, source.shape[0] - 6)
    render = np.pad(cv2.resize(drawn, size, interpolation=cv2.INTER_AREA), 3) >= 0.35
    if not source.any() or not render.any():
        return int(source.sum())
    inside = cv2.distanceTransform(source.astype(np.uint8), cv2.DIST_L2, 3)
    half_width = float(np.median(inside[thin(source)]))
    far = cv2.distanceTransform((~render).astype(np.uint8), cv2.DIST_L2, 3)
    return int(np.sum(source & (far > half_width + 1.0)))


def one_stroke_mask(
    digit: np.ndarray, height: int, rng: np.random.Generator, pen: float | None
) -> np.ndarray:
    """Draw a digit once, with the felt tip (`pen` None) or a round pen, whatever its shape becomes."""
    return digit_mask(digit, height, rng) if pen is None else pen_mask(digit, height, pen, rng)


def topology(ink: np.ndarray, unit: float) -> tuple[int, int]:
    """Count the parts (over 3% of the ink) and loops (over `unit`^2 px) of a bool ink mask."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    parts = int(np.sum(stats[1:, cv2.CC_STAT_AREA] >= 0.03 * ink.sum()))
    return parts, count_holes(ink, min_area=unit * unit)


def source_topology(digit: np.ndarray) -> tuple[int, int]:
    """Return the parts and loops of a uint8 MNIST digit, seen 4x enlarged at mid grey."""
    return topology(enlarged_ink(digit), 4.0)


def enlarged_ink(digit: np.ndarray) -> np.ndarray:
    """Return a uint8 MNIST digit's ink cropped, padded by 2 px, enlarged 4x and cut at mid grey: bool."""
    crop = np.pad(crop_to_ink(digit), 2).astype(np.float32) / 255.0
    return np.asarray(cv2.resize(crop, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC) > 0.5)


def choose_pen(height: float, rng: np.random.Generator) -> float | None:
    """Pick a felt tip (None, 40%) or a pen 4-14% of the digit height wide (at least 2 px)."""
    return None if rng.random() < 0.4 else max(2.0, height * rng.uniform(0.04, 0.14))


def frame_shape(rng: np.random.Generator) -> tuple[int, int]:
    """Pick a phone photo size (H, W), landscape or portrait."""
    width, height = FRAME_SIZES[int(rng.integers(len(FRAME_SIZES)))]
    return (height, width) if rng.random() < 0.5 else (width, height)


def photograph(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """Render an ink mask (H, W) float32 as paper under phone-camera conditions; return JPEG bytes."""
    return photograph_sheet(paper(ink.shape, rng), ink, rng)[0]


def blank_photo(rng: np.random.Generator) -> bytes:
    """Photograph blank paper (plain, ruled or squared, in shadow or not) at a phone photo's size."""
    return photograph(np.zeros(frame_shape(rng), np.float32), rng)


def photograph_sheet(
    sheet: np.ndarray, ink: np.ndarray, rng: np.random.Generator, blur_scale: float | None = None
) -> tuple[bytes, np.ndarray]:
    """Write an ink mask on a sheet (H, W, 3) and photograph it: JPEG bytes and the 3x3 sheet-to-photo warp.

    Pages need the warp to carry their digits' boxes into the photo, and a `blur_scale` tied to
    their small digits (the default, the frame's long side / 1000, would blur a 30 px digit away).
    """
    image = draw_ink(sheet, ink, rng)
    matrix = perspective_matrix(image.shape[:2], rng)
    image = warp(image, matrix)
    image = lighting(image, rng)
    image = shadow(image, rng)
    image = camera_blur(image, rng, blur_scale)
    image += fine_noise(image.shape, rng, rng.uniform(1.0, 6.0))
    return encode_jpeg(image, int(rng.integers(50, 96))), matrix


def paper(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Return a blank sheet (H, W, 3) float32 0-255: tinted, textured, sometimes ruled or squared."""
    colour = np.array(PAPERS[int(rng.integers(len(PAPERS)))], dtype=np.float32) + rng.uniform(-8, 6, 3)
    texture = _smooth_noise(shape, rng, cell=int(rng.integers(24, 96)), amplitude=rng.uniform(1, 5))
    grain = fine_noise(shape, rng, rng.uniform(1, 4))
    sheet = colour[None, None, :] + (texture + grain)[..., None]
    kind = rng.random()
    if kind < 0.5:
        sheet = _rule(sheet, rng, squared=kind < 0.18)
    return sheet


def fine_noise(shape: tuple[int, ...], rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Return pixel noise of the given shape, correlated over about two pixels as in a demosaiced photo."""
    half = rng.standard_normal(((shape[0] + 1) // 2, (shape[1] + 1) // 2, *shape[2:]), dtype=np.float32)
    return cv2.resize(half * sigma, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR).reshape(shape)


def _smooth_noise(
    shape: tuple[int, int], rng: np.random.Generator, cell: int, amplitude: float
) -> np.ndarray:
    """Return low-frequency noise (H, W) float32 with features about `cell` px wide."""
    small = rng.normal(0, amplitude, (shape[0] // cell + 2, shape[1] // cell + 2)).astype(np.float32)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _rule(sheet: np.ndarray, rng: np.random.Generator, squared: bool) -> np.ndarray:
    """Print thin, slightly rotated ruled (or squared) lines on a sheet."""
    h, w = sheet.shape[:2]
    angle = np.deg2rad(rng.uniform(-3, 3))
    spacing, thickness = rng.uniform(25, 60), rng.uniform(0.8, 2.0)
    ys, xs = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
    sin, cos = np.sin(angle), np.cos(angle)
    lines = _line_cover(xs * sin + ys * cos, spacing, thickness, rng)
    if squared:
        lines = np.maximum(lines, _line_cover(xs * cos - ys * sin, spacing, thickness, rng))
    colour = np.array(RULE_COLOURS[int(rng.integers(len(RULE_COLOURS)))], dtype=np.float32)
    strength = lines[..., None] * rng.uniform(0.5, 0.9)
    return sheet * (1 - strength) + colour * strength


def _line_cover(coord: np.ndarray, spacing: float, thickness: float, rng: np.random.Generator) -> np.ndarray:
    """Return how much of each pixel a family of parallel lines covers, anti-aliased, in [0, 1]."""
    from_middle = np.abs((coord + rng.uniform(0, spacing)) % spacing - spacing / 2)
    return np.clip(from_middle - (spacing / 2 - thickness / 2) + 0.5, 0.0, 1.0)


def draw_ink(sheet: np.ndarray, ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lay ink of a random dark colour and opacity over a sheet, as a pen would."""
    colour = np.array(INKS[int(rng.integers(len(INKS)))], dtype=np.float32) + rng.uniform(-10, 10, 3)
    # Real ink is uneven: modulate its opacity a little along the strokes.
    density = rng.uniform(0.75, 1.0) * np.clip(1 + _smooth_noise(ink.shape, rng, 12, 0.08), 0.6, 1.0)
    cover = (ink * density)[..., None]
    return sheet * (1 - cover) + colour * cover


def perspective(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Warp with a small random homography, as when the phone is not held square to the page."""
    return warp(image, perspective_matrix(image.shape[:2], rng))


def perspective_matrix(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Return a small random homography (3, 3) for an (H, W) frame: each corner moves up to 4%."""
    h, w = shape[:2]
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    jitter = (rng.uniform(-0.04, 0.04, (4, 2)) * (w, h)).astype(np.float32)
    return cv2.getPerspectiveTransform(corners, corners + jitter)


def warp(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a homography to an image, keeping its size and reflecting at the borders."""
    h, w = image.shape[:2]
    return cv2.warpPerspective(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def lighting(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply an uneven light: a linear gradient, a vignette, a colour cast and an exposure change."""
    h, w = image.shape[:2]
    ys, xs = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None], np.linspace(-0.5, 0.5, w, dtype=np.float32)
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction) + 1e-9
    ramp = (xs * direction[0] + ys * direction[1]) * rng.uniform(0.0, 0.5)
    radius = (xs**2 + ys**2) * rng.uniform(0.0, 0.6)
    gain = (rng.uniform(0.7, 1.08) * (1 + ramp - radius)).astype(np.float32)
    cast = np.array([rng.uniform(0.93, 1.05), 1.0, rng.uniform(0.9, 1.05)], dtype=np.float32)
    return image * (gain[..., None] * cast)


def shadow(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sometimes darken part of the frame with a soft-edged polygon, like the shadow of a hand or phone."""
    if rng.random() < 0.45:
        return image
    h, w = image.shape[:2]
    # Drawn and blurred at 1/8 scale: the shadow is smooth, and a full-size blur this wide is slow.
    small_h, small_w = h // 8 + 1, w // 8 + 1
    centre = rng.uniform([0, 0], [small_w, small_h])
    angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))
    radii = rng.uniform(0.3, 0.9, angles.size) * max(small_h, small_w)
    points = centre + np.stack([np.cos(angles), np.sin(angles)], axis=1) * radii[:, None]
    area = np.zeros((small_h, small_w), dtype=np.float32)
    cv2.fillPoly(area, [points.astype(np.int32)], 1.0)
    area = cv2.GaussianBlur(area, (0, 0), sigmaX=rng.uniform(0.02, 0.08) * max(small_h, small_w))
    area = cv2.resize(area, (w, h), interpolation=cv2.INTER_LINEAR)
    return image * (1 - area * rng.uniform(0.15, 0.5))[..., None]


def camera_blur(image: np.ndarray, rng: np.random.Generator, scale: float | None = None) -> np.ndarray:
    """Apply defocus or a short motion blur, scaled to the frame size (or to `scale` given)."""
    scale = max(image.shape[:2]) / 1000 if scale is None else scale
    kind = rng.random()
    if kind < 0.6:
        return cv2.GaussianBlur(image, (0, 0), sigmaX=rng.uniform(0.3, 2.0) * scale)
    if kind < 0.85:
        kernel = _motion_kernel(round(rng.uniform(3, 11) * scale) | 1, rng.uniform(0, 180))
        return cv2.filter2D(image, -1, kernel)
    return image


def _motion_kernel(length: int, degrees: float) -> np.ndarray:
    """Return a normalised line kernel `length` px long at an angle."""
    line = np.zeros((length, length), dtype=np.float32)
    line[length // 2, :] = 1.0
    matrix = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), degrees, 1.0)
    kernel = np.asarray(cv2.warpAffine(line, matrix, (length, length)), dtype=np.float32)
    return kernel / max(float(kernel.sum()), 1e-6)


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """Encode an RGB float image (0-255) as JPEG bytes."""
    bgr = cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed.")
    return buffer.tobytes()


# ---------------------------------------------------------------- canvas drawings


def canvas_of_strokes(strokes: Sequence[np.ndarray], rng: np.random.Generator, size: int = 280) -> np.ndarray:
    """Draw pen trajectories (y down) as a browser canvas would: RGBA (size, size, 4) uint8, ink in alpha."""
    points = [_smooth_stroke(np.asarray(s, dtype=np.float32).reshape(-1, 2)) for s in strokes if len(s)]
    if not points:
        raise ValueError("No points to draw.")
    digit_size, pen = _digit_and_pen(size, rng)
    points = _fit_points(points, digit_size, pen, size, rng)
    # Loops big enough to be meant (not a tablet's jitter) in a hairline drawing of the same path.
    loops = count_holes(_draw_strokes(points, size, 2.0) > 0, min_area=64 * (size / 280) ** 2)
    return _rgba(keep_loops(lambda p: _draw_strokes(points, size, p), pen, loops), rng)


def _draw_strokes(points: list[np.ndarray], size: int, pen: float) -> np.ndarray:
    """Draw every stroke on an empty (size, size) uint8 alpha channel, with the widget's rasteriser."""
    return rasterise([(stroke, pen) for stroke in points], (size, size))


def canvas_of_digit(digit28: np.ndarray, rng: np.random.Generator, size: int = 280) -> np.ndarray:
    """Re-stroke an MNIST digit with a constant pen width onto an RGBA (size, size, 4) uint8 canvas.

    The pen follows the photos' rules (`stroke_mask`): a draw must keep the digit's shape, and a
    thick-stroked source or one no draw keeps is drawn with its own felt-tip stroke instead.
    """
    digit_size, pen = _digit_and_pen(size, rng)
    alpha = place(stroke_mask(digit28, round(digit_size), rng, pen), (size, size), rng, margin=0.0)
    return _rgba(np.round(alpha * 255).astype(np.uint8), rng)


def _smooth_stroke(stroke: np.ndarray) -> np.ndarray:
    """Smooth a trajectory over a few samples, hiding a tablet's coarse coordinate steps."""
    if len(stroke) < 3:
        return stroke
    kernel = np.array([1, 2, 3, 2, 1], dtype=np.float32) / 9
    padded = np.pad(stroke, ((2, 2), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, i], kernel, mode="valid") for i in range(2)], axis=1)


def _digit_and_pen(size: int, rng: np.random.Generator) -> tuple[float, float]:
    """Pick a digit height and a pen width (8-25 px on a 280 pad) that a person could draw with."""
    digit_size = size * _log_uniform(rng, 0.25, 0.85)
    pen = min(rng.uniform(8, 25) * size / 280, 0.18 * digit_size)
    return digit_size, max(pen, 2.0)


def _fit_points(
    strokes: list[np.ndarray], digit_size: float, pen: float, size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Scale strokes so the digit's longer side is `digit_size`, then move it to a random spot."""
    every = np.concatenate(strokes)
    low, high = every.min(axis=0), every.max(axis=0)
    scale = digit_size / max(float((high - low).max()), 1e-6)
    extent = (high - low) * scale + pen
    room = np.maximum(size - extent, 0)
    offset = rng.uniform(0, 1, 2) * room + pen / 2
    return [(s - low) * scale + offset for s in strokes]


def _rgba(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return RGBA with a transparent background: pen colour where there is ink, black elsewhere."""
    colour = np.zeros(3, np.uint8) if rng.random() < 0.8 else rng.integers(0, 256, 3).astype(np.uint8)
    canvas = np.zeros((*alpha.shape, 4), dtype=np.uint8)
    canvas[alpha > 0, :3] = colour
    canvas[..., 3] = alpha
    return canvas


def thin(mask: np.ndarray) -> np.ndarray:
    """Reduce a bool (H, W) mask to a one-pixel-wide skeleton (Zhang-Suen thinning)."""
    image = np.pad(mask.astype(np.uint8), 1)
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            remove = _thinning_candidates(image, step)
            if remove.any():
                image[1:-1, 1:-1][remove] = 0
                changed = True
    return image[1:-1, 1:-1].astype(bool)


def _thinning_candidates(image: np.ndarray, step: int) -> np.ndarray:
    """Return the border pixels one Zhang-Suen sub-iteration removes."""
    p = image
    # Neighbours P2..P9, clockwise from north.
    n = [p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:], p[2:, 2:], p[2:, 1:-1], p[2:, :-2], p[1:-1, :-2], p[:-2, :-2]]
    count = sum(v.astype(np.int32) for v in n)
    transitions = sum(((n[i] == 0) & (n[(i + 1) % 8] == 1)).astype(np.int32) for i in range(8))
    if step == 0:
        first, second = n[0] * n[2] * n[4], n[2] * n[4] * n[6]
    else:
        first, second = n[0] * n[2] * n[6], n[0] * n[4] * n[6]
    centre = p[1:-1, 1:-1] == 1
    return centre & (count >= 2) & (count <= 6) & (transitions == 1) & (first == 0) & (second == 0)


# ---------------------------------------------------------------- scans


def scan_of_bitmap(bitmap: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Upscale a small binary ink=255 bitmap into a smooth grey scan (H, W) uint8, dark ink on light paper."""
    digit_height = int(rng.integers(48, 160))
    mask = digit_mask(bitmap, digit_height, rng, smooth=0.8)
    side = round(max(mask.shape) * rng.uniform(1.3, 2.0))
    ink = place(mask, (side, side), rng, margin=0.1)
    background, ink_level = rng.uniform(200, 250), rng.uniform(0, 60)
    grey = background + (ink_level - background) * ink + rng.normal(0, 3, ink.shape)
    return np.clip(grey, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- loaders


def load_unipen(
    path: str | Path, rng: np.random.Generator | None = None, *, verified: bool = False
) -> list[UnipenSample]:
    """Read UNIPEN 1a digits as (label, strokes with y down, writer), dropping site `lou` and bad quality.

    `verified` keeps only the donors' checked labels ("OK") and drops the ibm samples whose strokes
    were each normalized on their own: the unchecked ones hold "00"s and dots labelled 0, which
    would set a reject level meant for digits.
    """
    qualities = {"OK"} if verified else {"OK", "?"}
    samples: list[UnipenSample] = []
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if record["site"] == "lou" or record["quality"] not in qualities:
                continue
            raw = [np.array(s, dtype=np.float32).reshape(-1, 2) for s in record["strokes"] if s]
            if verified and all(not s.min(axis=0).any() for s in raw):
                continue
            strokes = [s * (1, -1) for s in raw]
            if strokes:
                samples.append((int(record["label"]), strokes, str(record["file"])))
    if rng is not None:
        samples = [samples[i] for i in rng.permutation(len(samples))]
    return samples


def group_by_writer(samples: Sequence[UnipenSample]) -> dict[str, list[UnipenSample]]:
    """Group UNIPEN samples by writer, to keep writers apart between training and evaluation."""
    groups: dict[str, list[UnipenSample]] = defaultdict(list)
    for sample in samples:
        groups[sample[2]].append(sample)
    return dict(groups)


def load_semeion(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read Semeion digits: images (N, 16, 16) uint8 with ink=255 and labels (N,) uint8."""
    values = np.loadtxt(path, dtype=np.float32, ndmin=2)
    images = (values[:, :256].reshape(-1, 16, 16) > 0.5).astype(np.uint8) * 255
    return images, values[:, 256:266].argmax(axis=1).astype(np.uint8)


def load_optdigits(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read UCI optdigits original bitmaps: images (N, 32, 32) uint8 with ink=255 and labels (N,) uint8."""
    rows: list[str] = []
    images: list[np.ndarray] = []
    labels: list[int] = []
    for line in Path(path).read_text().splitlines():
        text = line.strip()
        if len(text) == 32 and set(text) <= {"0", "1"}:
            rows.append(text)
        elif rows and text.isdigit():
            images.append(np.array([[c == "1" for c in r] for r in rows[-32:]], dtype=np.uint8) * 255)
            labels.append(int(text))
            rows = []
    return np.stack(images), np.array(labels, dtype=np.uint8)

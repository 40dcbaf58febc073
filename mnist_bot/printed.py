"""Printed-line stage: a form's boxes and grid, ruled lines and underlines erased, sized by the digits.

Every length here is a share of the page's digit size (working px), never of the image's side: no
handwritten stroke runs straight for PRINTED_LINE digit sizes, and no digit encloses another of
about its size, so a blob that does is a printed box whose sides go from FRAME_LINE digit sizes; nor
is a digit's outline a rectangle around paper, so a box that its digit touches is found too.
A box photographed at a slant is straightened before its sides are looked for. Lines are erased
down to what touches or crosses them: a stroke that crosses a line keeps the pixels it shares
with it, a digit touching a box side keeps all of its own.
"""

from __future__ import annotations

import cv2
import numpy as np

from mnist_bot.blobs import Component

FRAMED_SHARE = 0.3  # a blob enclosing one at least this share as tall is a printed box, not a digit
FRAME_LINE = 1.2  # ... and a box's sides are erased from this many digit sizes long (a 1 is about 1)
PRINTED_LINE = 1.5  # straight strokes this many digit sizes long are printed lines, never a digit's
STRAIGHT_SHARE = 0.5  # a box is at least this share straight lines; a digit around a piece of itself is not
RECTANGULAR = 0.88  # a box's outline fills this share of its rotated rectangle; no MNIST digit's tops 0.84
HOLLOW = 0.5  # ... and its ink, a digit touching it included, is under this share of what it encloses
REMNANT_ASPECT = 4  # a blob this much longer than wide along an erased line is a piece of it...
REMNANT_SHARE = 0.4  # ... and so is one smaller than this share of the digits (a box's corner)
TOUCH = 3  # px: a piece this close to a digit touches it
OUTLINE_REACH = 3  # px: upright runs this close to a box's left or right edge are its sides
CHAIN_GAP = 2  # px: upright runs this close above each other are one side slanted by perspective
END_RUN = 0.4  # an inner side (a divider) is inked on at both ends to level runs this share of a side long
DASHED_SHARE = 0.3  # a faint straight line this much covered by found ink is a printed line in dashes
MIN_SLANT = 0.5  # degrees: a box slanted less is read as it lies
MAX_SLANT = 10.0  # degrees: a box slanted more is no printed box straightened by this stage


def framing_blobs(blobs: list[Component]) -> np.ndarray:
    """Flag blobs whose box holds a blob at least FRAMED_SHARE as tall: printed boxes, not digits.

    A handwritten digit never encloses another of about its size; a form's box (or a cell cut out
    of a form, its box along the edges) does, and would otherwise be read as a 0 around the digit.
    """
    x0, y0 = np.array([c.x for c in blobs]), np.array([c.y for c in blobs])
    x1, y1 = x0 + np.array([c.w for c in blobs]), y0 + np.array([c.h for c in blobs])
    heights = y1 - y0
    inside = (x0[:, None] <= x0) & (y0[:, None] <= y0) & (x1[:, None] >= x1) & (y1[:, None] >= y1)
    holds_digit = inside & (heights >= FRAMED_SHARE * heights[:, None])
    np.fill_diagonal(holds_digit, False)
    return np.asarray(holds_digit.any(axis=1))


def is_hollow_rectangle(mask: np.ndarray) -> bool:
    """Tell whether a blob's 0/1 mask is a rectangle's outline around paper: a box its digit touches.

    A digit touching its box is one blob with it, so no blob lies inside the box to show it is one;
    but no handwritten digit's outline is a rectangle, nor is its ink so thin for what it encloses.
    """
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    outline = max(contours, key=cv2.contourArea)
    enclosed = cv2.contourArea(outline)
    _, (width, height), _ = cv2.minAreaRect(outline)
    return bool(enclosed >= RECTANGULAR * width * height and cv2.countNonZero(mask) <= HOLLOW * enclosed)


def blob_mask(labels: np.ndarray, blob: Component) -> np.ndarray:
    """Return a blob's own pixels within its box as a uint8 0/1 mask."""
    window = labels[blob.y : blob.y + blob.h, blob.x : blob.x + blob.w]
    return (window == blob.label).astype(np.uint8)


def is_straight(mask: np.ndarray) -> bool:
    """Tell whether most of a blob's 0/1 mask lies on level or upright runs half its size long: print."""
    upright, _ = straightened(mask)
    straight = straight_lines(upright, 0.5 * min(mask.shape))
    return bool(straight.sum() >= STRAIGHT_SHARE * upright.sum())


def straight_lines(mask: np.ndarray, length: float) -> np.ndarray:
    """Return the 0/1 pixels of `mask` on horizontal or vertical runs at least `length` px long."""
    level, upright = level_and_upright(mask, length)
    return np.maximum(level, upright)


def level_and_upright(mask: np.ndarray, length: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the 0/1 pixels of `mask` on horizontal runs, and on vertical runs, `length` px or longer.

    A run may wander a pixel sideways: a thin line slanted a degree or two is still one run.
    """
    side = max(3, round(length))
    rect = cv2.getStructuringElement

    def runs(across: tuple[int, int], along: tuple[int, int]) -> np.ndarray:
        widened = cv2.dilate(mask, rect(cv2.MORPH_RECT, across))
        return mask & cv2.morphologyEx(widened, cv2.MORPH_OPEN, rect(cv2.MORPH_RECT, along))

    return runs((1, 3), (side, 1)), runs((3, 1), (1, side))


def without_lines(mask: np.ndarray, length: float, lone_uprights: bool = True) -> np.ndarray:
    """Erase level and upright runs `length` px or longer from a 0/1 mask, keeping strokes across them.

    A stroke crossing a line has ink on both sides of it: the line's pixels between are put back,
    so a 7 whose stem crosses a ruled line stays in one piece. Ink touching a line from one side
    keeps only its own pixels. Without `lone_uprights`, upright runs go only beside level ones: a
    blob that is one tall straight stroke is a 1 or a 7, not print. With it (a printed box), they
    go where they are the box's sides (`box_sides`), not a tall 1 inside that touches one.
    """
    level, upright = level_and_upright(mask, length)
    if not lone_uprights and not level.any():
        upright = np.zeros_like(upright)  # a tall 1 or 7 alone, not a box's side or a grid's rule
    elif lone_uprights:
        upright = box_sides(upright, level_and_upright(mask, END_RUN * length)[0], mask)
    lines = np.maximum(level, upright)
    if not lines.any():
        return mask
    rest = mask & (1 - lines)
    # A line's run may take a pixel of what touches it on either side: gaps that wide are bridged.
    across_level = closed(rest, (1, line_thickness(level, axis=0) + 4)) & level
    across_upright = closed(rest, (line_thickness(upright, axis=1) + 4, 1)) & upright
    return rest | across_level | across_upright


def box_sides(upright: np.ndarray, level: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Keep the upright runs that are a box's sides: on its outline, or inked on to level runs at both ends.

    A tall 1 that the faint mask joined to its box's top is one upright run with it, but it stands
    inside the box and its foot ends on paper, while a side is the box's left or right edge, or (a
    row of cells' divider) its ink runs from the top to the bottom. A side slanted by perspective
    is several runs a pixel apart, its ends off the runs: each chain of runs is one side, followed
    on its ink past either end.
    """
    chains = cv2.dilate(upright, np.ones((2 * CHAIN_GAP + 1, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(chains, connectivity=8)
    inked = np.flatnonzero(mask.any(axis=0))
    left, right = (int(inked[0]), int(inked[-1])) if inked.size else (0, 0)
    kept = np.zeros(count, bool)
    for k in range(1, count):
        x, y, w, h = stats[k, :4]
        on_outline = x <= left + OUTLINE_REACH or x + w - 1 >= right - OUTLINE_REACH
        columns = slice(max(0, x - CHAIN_GAP), x + w + CHAIN_GAP)  # room for the side to lean
        band, band_level = mask[:, columns], level[:, columns]
        top, bottom = y + CHAIN_GAP, y + h - 1 - CHAIN_GAP  # its runs' own ends, inside the widening
        kept[k] = on_outline or (
            ink_reaches_level(band, band_level, range(top, -1, -1))
            and ink_reaches_level(band, band_level, range(bottom, mask.shape[0]))
        )
    return upright & kept[labels].astype(upright.dtype)


def ink_reaches_level(mask: np.ndarray, level: np.ndarray, rows: range) -> bool:
    """Tell whether ink runs unbroken through `rows` (in order) until a row holding a level run."""
    for row in rows:
        if level[row].any():
            return True
        if not mask[row].any():
            return False
    return False


def closed(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Close a 0/1 mask with a `shape` (width, height) rectangle: gaps narrower than it are filled."""
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, shape))


def line_thickness(lines: np.ndarray, axis: int) -> int:
    """Return the mean thickness (px) of 0/1 lines across `axis` (0: level lines, 1: upright ones)."""
    total = int(cv2.countNonZero(lines))
    if not total:
        return 1
    edge = np.diff(lines, axis=axis, prepend=0)  # +1 where a run across the lines starts
    starts = int(np.count_nonzero(edge == 1))
    return max(1, round(total / max(starts, 1)))


def straightened(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Turn a box's 0/1 mask so its sides lie level; return it and the matrix turning it back (None: as is).

    The slant is the one of the blob's tightest rotated rectangle: a box, or a row of joined cells,
    with a digit inside is still outlined by its printed sides. The turned mask is large enough to
    hold the whole box.
    """
    points = cv2.findNonZero(mask)
    if points is None:
        return mask, None
    angle = float(cv2.minAreaRect(points)[2])
    angle = (angle + 45) % 90 - 45  # OpenCV's angle of a rectangle is only defined up to quarter turns
    if not MIN_SLANT <= abs(angle) <= MAX_SLANT:
        return mask, None
    height, width = mask.shape
    cos, sin = abs(np.cos(np.radians(angle))), abs(np.sin(np.radians(angle)))
    size = (int(np.ceil(width * cos + height * sin)), int(np.ceil(height * cos + width * sin)))
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    matrix[:, 2] += ((size[0] - width) / 2, (size[1] - height) / 2)
    turned = cv2.warpAffine(mask, matrix, size, flags=cv2.INTER_NEAREST)
    return turned, cv2.invertAffineTransform(matrix)


def frame_without_sides(mask: np.ndarray, length: float, frame: bool = True) -> np.ndarray:
    """Erase a printed box's sides (runs `length` px or longer, the box straightened) from its 0/1 mask.

    A blob that is no `frame` (it encloses no digit) loses an upright run only beside a level one.
    """
    upright, back = straightened(mask)
    kept = without_lines(upright, length, lone_uprights=frame)
    if back is None:
        return kept
    removed = upright & (1 - kept)
    shape = (mask.shape[1], mask.shape[0])
    # Turned back, the erased sides land a pixel off here and there: widen them by one.
    removed = cv2.warpAffine(removed, back, shape, flags=cv2.INTER_NEAREST)
    return mask & (1 - cv2.dilate(removed, np.ones((3, 3), np.uint8)))


def remnants(labels: np.ndarray, blobs: list[Component], lines: np.ndarray, size: float) -> list[bool]:
    """Flag what erased lines leave: pieces lying along them, thin and straight or small beside a digit.

    A line slanted by perspective, or printed faintly, leaves short runs and corners between the
    erased ones; `size` (the digit size, px) bridges the erased lines' gaps to find them.
    """
    reach = max(3, round(size))
    along = np.maximum(closed(lines, (1, reach)), closed(lines, (reach, 1)))
    near = cv2.dilate(along, np.ones((5, 5), np.uint8))
    where = np.flatnonzero(labels)
    count = int(labels.max()) + 1
    total = np.bincount(labels.ravel()[where], minlength=count)
    beside = np.bincount(labels.ravel()[where], weights=near.ravel()[where], minlength=count)
    return [
        beside[c.label] >= 0.8 * total[c.label]
        and (max(c.w, c.h) >= REMNANT_ASPECT * min(c.w, c.h) or max(c.w, c.h) < REMNANT_SHARE * size)
        for c in blobs
    ]


def beside_no_digit(
    labels: np.ndarray, blobs: list[Component], flags: list[bool], height: float
) -> list[bool]:
    """Unflag pieces touching a blob `height` px tall or more: a stroke cut off by a line is the digit's.

    A 7's bar lying on a ruled line loses its lower half with the line, and what is left of it
    meets its stem only across the line.
    """
    tall = np.zeros(int(labels.max()) + 1, bool)
    tall[[c.label for c, flag in zip(blobs, flags, strict=True) if not flag and c.h >= height]] = True
    return [flag and not touches(labels, c, tall) for c, flag in zip(blobs, flags, strict=True)]


def touches(labels: np.ndarray, blob: Component, chosen: np.ndarray) -> bool:
    """Tell whether a blob lies within TOUCH px of a blob whose label `chosen` (bool per label) marks."""
    y0, x0 = max(0, blob.y - TOUCH), max(0, blob.x - TOUCH)
    window = labels[y0 : blob.y + blob.h + TOUCH, x0 : blob.x + blob.w + TOUCH]
    return bool(chosen[window].any())

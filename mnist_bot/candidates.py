"""Candidate stage for one digit: which blobs are the digit, and whether they can be one at all."""

from __future__ import annotations

import numpy as np

from mnist_bot.blobs import EMPTY_MESSAGE, Box, Component, FoundInk, stroke_width
from mnist_bot.errors import EmptyImageError

MIN_DIGIT_SHARE = 0.03  # a photo's digit spans at least this share of the shorter side: less is a speck
BLOT_PENS = 3  # a filled shape this many of its pen widths tall is a bold digit; a blot is shorter
PEER_SHARE = 0.8  # ink this share as large as the digits beside it is one of them, however small
PIECE_SHARE = 0.04  # a piece of a digit has at least this share of its main blob's area


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
    if ink.crop:
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
    parts: list[Component],
    shape: tuple[int, ...],
    sparse: bool = False,
    labels: np.ndarray | None = None,
    peer_size: float = 0.0,
) -> bool:
    """Tell whether a photo's candidate is no digit: a speck, or sparse ink of no digit's shape.

    Sparse ink is a tiny digit or grain: only a digit-like shape is taken for the former. With
    `labels`, a filled shape many pen widths tall counts as a bold digit rather than a blot.
    Ink small against the photo is no speck when nearly as large as the digits beside it
    (`peer_size`, their longer side): a long number written small has digits on both sides of
    any share of the photo.
    """
    box = union_box(parts)
    as_large_as_peers = peer_size > 0 and max(box.w, box.h) >= PEER_SHARE * peer_size
    if is_speck(box, shape) and not as_large_as_peers:
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


def crop_parts(labels: np.ndarray, parts: list[Component], box: Box) -> np.ndarray:
    """Cut out only the chosen blobs inside their box, as a uint8 0/1 mask."""
    window = labels[box.y : box.y + box.h, box.x : box.x + box.w]
    return np.isin(window, [c.label for c in parts]).astype(np.uint8)

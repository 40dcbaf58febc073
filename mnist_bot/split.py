"""Touching digits: cut a group wider than its line's digits along the paths crossing least ink.

Two digits written close touch or cross, their ink becomes one blob, and read as one (wrong)
digit. A group wider than a digit of its line usually is gets split candidates: 2 (and, when
wider still, 3) pieces cut along the top-to-bottom path through the fewest ink pixels (a
shortest path, which slips between the digits and crosses the thin place where they meet).
Each piece is rendered as any digit is; the classifier then chooses between the readings.
"""

from __future__ import annotations

import cv2
import numpy as np

from mnist_bot.blobs import Box, Component, to_input_box
from mnist_bot.candidates import crop_parts, looks_like_digit, union_box
from mnist_bot.preprocess import PreparedDigit
from mnist_bot.render import render28

# Of MNIST test digits, 95% are narrower than 1.11 and 99% than 1.43 times their height, while two
# touching digits are about 1.1 (a 1 and a 7) to 1.9 (two wide ones) line heights wide.
SPLIT_ASPECT = 1.0  # a group this many line heights wide (and its own heights) may be two digits touching
SPLIT3_ASPECT = 1.6  # ... and this wide, three
CUT_REACH = 0.1  # a cut lies within this share of the group's width of where it is looked for
CUT_SHIFTS = (-0.15, 0.0, 0.15)  # 2-way cuts are looked for at the middle and this share of the width off it
MIN_PIECE_HEIGHT = 0.5  # each piece stands at least this share of the line's height: no tail or hat alone
MIN_PIECE_INK = 0.08  # ... and holds at least this share of the group's ink (a 1 holds about 15%)
PATH_ROWS = 64  # the path is searched at most this many rows tall: fine enough to find where digits meet
PAPER_COST = 0.01  # a path step over paper costs this much of a step through ink: shorter paths win ties


def split_candidates(
    labels: np.ndarray,
    group: list[Component],
    height: float,
    scale: float,
    origin: tuple[int, int] = (0, 0),
) -> list[tuple[PreparedDigit, ...]]:
    """Return ways to read a group as 2 or 3 touching digits, each piece prepared; none for a narrow group.

    `height` is the line's digit height in working px, as are the labels' and the group's boxes.
    """
    box = union_box(group)
    # Wider than the line's digits and than itself is tall: a big digit (a long-tailed 4) is no pair.
    aspect = box.w / max(height, box.h, 1.0)
    if aspect < SPLIT_ASPECT:
        return []
    mask = crop_parts(labels, group, box)
    found = []
    for count, shift in cut_plans(aspect):
        pieces = cut_pieces(mask, count, shift)
        if all(usable(piece, mask, height) for piece in pieces):
            found.append(tuple(prepare_piece(piece, box, scale, origin) for piece in pieces))
    return found


def cut_plans(aspect: float) -> list[tuple[int, float]]:
    """Return (pieces, shift) to try: 2 pieces cut left of, at and right of the middle; 3 if wide.

    Touching digits differ in width (a 1 beside a 0), so a 2-way cut is looked for in three
    places; the classifier says which reads best.
    """
    plans = [(2, shift) for shift in CUT_SHIFTS]
    return [*plans, (3, 0.0)] if aspect >= SPLIT3_ASPECT else plans


def cut_pieces(mask: np.ndarray, count: int, shift: float = 0.0) -> list[np.ndarray]:
    """Cut a uint8 0/1 (H, W) mask into `count` pieces left to right, each a full-size 0/1 mask.

    Cut k is looked for around k / count of the width, moved by `shift` of the width.
    """
    width = mask.shape[1]
    columns = np.arange(width)[None, :]
    pieces, left_of = [], np.zeros(mask.shape, dtype=bool)
    reach = CUT_REACH * width
    for k in range(1, count):
        centre = (k / count + shift) * width
        path = cheapest_path(mask, max(0, round(centre - reach)), min(width, round(centre + reach) + 1))
        left = columns < path[:, None]
        pieces.append(mask * (left & ~left_of))
        left_of |= left | (columns == path[:, None])  # the path's own pixels go to neither piece
    pieces.append(mask * ~left_of)
    return pieces


def cheapest_path(mask: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Return (H,) the columns, one per row, of the top-to-bottom path through the least ink.

    The path stays within columns [start, stop) and moves at most one column per row, so it
    crosses a stroke where the stroke is thinnest and never runs along it. A tall mask is searched
    shrunk to PATH_ROWS rows (its aspect kept): the path's cost is a loop over rows.
    """
    shrink = min(1.0, PATH_ROWS / mask.shape[0])
    if shrink < 1.0:
        small = cv2.resize(mask, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        lo, hi = int(start * shrink), max(int(start * shrink) + 1, round(stop * shrink))
        path = cheapest_path(small, lo, min(hi, small.shape[1]))
        rows = np.minimum((np.arange(mask.shape[0]) * shrink).astype(int), len(path) - 1)
        return np.clip(np.round((path[rows] + 0.5) / shrink).astype(np.int64), start, stop - 1)
    cost = (mask[:, start:stop] > 0).astype(np.float32) + PAPER_COST
    return _least_cost_path(cost) + start


def _least_cost_path(cost: np.ndarray) -> np.ndarray:
    """Return (H,) the columns of the cheapest top-to-bottom path through float32 (H, W) costs."""
    rows, width = cost.shape
    options = np.full((3, width), np.inf, np.float32)  # from the left, from above, from the right
    total = cost[0].copy()
    steps = np.zeros((rows, width), np.int8)
    for row in range(1, rows):
        options[0, 1:], options[1], options[2, :-1] = total[:-1], total, total[1:]
        steps[row] = options.argmin(axis=0) - 1  # where the path came from: left, above or right
        total = options.min(axis=0) + cost[row]
    path = np.empty(rows, np.int64)
    path[-1] = int(np.argmin(total))
    for row in range(rows - 1, 0, -1):
        path[row - 1] = path[row] + steps[row, path[row]]
    return path


def usable(piece: np.ndarray, mask: np.ndarray, height: float) -> bool:
    """Tell whether a piece may be a digit: tall enough for its line and holding enough of the ink."""
    rows = np.flatnonzero(piece.any(axis=1))
    if rows.size == 0:
        return False
    tall = rows[-1] - rows[0] + 1 >= MIN_PIECE_HEIGHT * min(height, mask.shape[0])
    return bool(tall and piece.sum() >= MIN_PIECE_INK * mask.sum())


def prepare_piece(piece: np.ndarray, group_box: Box, scale: float, origin: tuple[int, int]) -> PreparedDigit:
    """Render one piece of a cut group; its box in input pixels."""
    rows, cols = np.flatnonzero(piece.any(axis=1)), np.flatnonzero(piece.any(axis=0))
    crop = piece[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    box = Box(group_box.x + int(cols[0]), group_box.y + int(rows[0]), crop.shape[1], crop.shape[0])
    # The piece as one blob, to judge its shape as any candidate's.
    blob = Component(0, box.x, box.y, box.w, box.h, int(crop.sum()))
    return PreparedDigit(render28(crop), to_input_box(box, scale, origin), looks_like_digit([blob], box))

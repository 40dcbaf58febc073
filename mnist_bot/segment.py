"""Multi-digit numbers: find the digits, order them left to right, prepare each."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from mnist_bot.blobs import EMPTY_MESSAGE, Component, FoundInk, find_ink
from mnist_bot.candidates import is_background_mark, union_box
from mnist_bot.decode import ImageInput
from mnist_bot.errors import EmptyImageError
from mnist_bot.preprocess import PreparedDigit, prepare_parts
from mnist_bot.split import split_candidates

MAX_DIGITS = 12
JOIN_GAP = 0.5  # neighbours closer than this share of a digit's height may be one broken digit
JOIN_ASPECT = 1.1  # ... if together they are no wider than this share of their height
JOIN_TALLEST = 1.25  # ... counted as at most this many times the line's typical height
FLAT_SHARE = 0.5  # a group less tall than this share of the digits is a piece of a neighbour
SPECK_SHARE = 0.25  # a group no bigger than this share of the line's tallest is a speck
MAX_SLOPE = 0.25  # steepest text line followed (about 14 degrees)
DIGIT_HEIGHT_SHARE = 0.35  # ink at least this share as tall as the tallest blob may be a digit
PIECE_REACH = 2  # px at working resolution: pieces of a stroke broken by blur or a thin pen lie this close
MAX_CLUSTER_HEIGHT = 1.2  # close pieces taller than this share of the tallest blob are texture, not a digit
SHARED_COLUMNS = 0.2  # a left-out piece sharing this share of its columns with a digit is part of it


@dataclass(frozen=True)
class NumberLayout:
    """A number's digits left to right, and neighbours that might be pieces of one digit."""

    digits: list[PreparedDigit]
    joins: dict[int, PreparedDigit] = field(default_factory=dict)  # i: digits i and i + 1 as one
    whole: PreparedDigit | None = None  # all of the ink as one digit, when a few groups may be just one
    # i: digit i cut into 2 or 3 pieces, each way one tuple, when it may be touching digits
    splits: dict[int, list[tuple[PreparedDigit, ...]]] = field(default_factory=dict)


def stroke_clusters(labels: np.ndarray, found: list[Component]) -> list[list[Component]]:
    """Group blobs lying within PIECE_REACH px of each other: the pieces of one broken stroke."""
    size = int(labels.max()) + 1
    is_found = np.zeros(size, np.uint8)
    is_found[[c.label for c in found]] = 1
    ink = is_found[labels]
    reach = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * PIECE_REACH + 1,) * 2)
    _, near = cv2.connectedComponents(cv2.dilate(ink, reach), connectivity=8)
    cluster_of = np.zeros(size, np.int32)
    on_ink = ink > 0
    cluster_of[labels[on_ink]] = near[on_ink]  # every pixel of a blob lies in the same cluster
    clusters: dict[int, list[Component]] = {}
    for c in found:
        clusters.setdefault(int(cluster_of[c.label]), []).append(c)
    return list(clusters.values())


def main_blobs(found: list[Component], clusters: list[list[Component]]) -> list[Component]:
    """Keep blobs tall enough to be digits (or large enough to be a part of one), alone or with close pieces.

    A thin 7 or a faint 1 under blur can break into short pieces, each too small to pass for a
    digit; together, a pixel or two apart, they stand as tall as the digits beside them. A
    cluster much taller than any blob is no broken digit but texture: squared paper under glare.
    """
    tallest = max(c.h for c in found)
    largest = max(c.area for c in found)
    kept = {c.label for c in found if c.h >= DIGIT_HEIGHT_SHARE * tallest or c.area >= 0.15 * largest}
    for cluster in clusters:
        if DIGIT_HEIGHT_SHARE * tallest <= union_box(cluster).h <= MAX_CLUSTER_HEIGHT * tallest:
            kept.update(c.label for c in cluster)
    return [c for c in found if c.label in kept]


def on_text_line(blobs: list[Component]) -> list[Component]:
    """Drop blobs far above or below the line that most digits share, even when it slopes."""
    x = np.array([c.x + c.w / 2 for c in blobs])
    y = np.array([c.y + c.h / 2 for c in blobs])
    height = float(np.median([c.h for c in blobs]))
    offset = y - line_slope(x, y, height) * x
    # The line runs through a real blob (not between two far apart), so at least one blob stays.
    line = np.percentile(offset, 50, method="closest_observation")
    return [c for c, off in zip(blobs, offset, strict=True) if abs(off - line) <= 0.75 * height]


def line_slope(x: np.ndarray, y: np.ndarray, height: float) -> float:
    """Return the median slope between blob centres a digit apart (Theil-Sen), at most MAX_SLOPE.

    A photo taken at a slant tilts a long number: its end digits sit a digit's height above or
    below the middle ones, and a level row would drop them. Medians ignore the odd stray mark.
    """
    dx = x[None, :] - x[:, None]
    dy = y[None, :] - y[:, None]
    apart = dx > height  # pairs side by side; a 5's hat above its body says nothing of the slope
    if not apart.any():
        return 0.0
    return float(np.clip(np.median(dy[apart] / dx[apart]), -MAX_SLOPE, MAX_SLOPE))


def centre_line(x: np.ndarray, y: np.ndarray, height: float) -> tuple[float, float]:
    """Fit a line through centres robustly: return its intercept and slope (Theil-Sen, `line_slope`)."""
    slope = line_slope(x, y, height) if len(x) > 1 else 0.0
    return float(np.median(y - slope * x)), slope


def _overlap(a: tuple[int, int], b: Component) -> float:
    """Return the horizontal overlap of a span and a blob, relative to the narrower one."""
    shared = min(a[1], b.x + b.w) - max(a[0], b.x)
    return shared / max(1, min(a[1] - a[0], b.w))


def group_columns(blobs: list[Component]) -> list[list[Component]]:
    """Merge blobs that share columns (a broken stroke, the hat of a 5) into one digit each."""
    groups: list[list[Component]] = []
    for blob in sorted(blobs, key=lambda c: c.x):
        if groups and _overlap(_span(groups[-1]), blob) >= 0.5:
            groups[-1].append(blob)
        else:
            groups.append([blob])
    return groups


def attach_small(groups: list[list[Component]], found: list[Component]) -> list[list[Component]]:
    """Attach small blobs left out so far to the digit whose columns they share most.

    A 5's hat written as a separate stroke often starts above the body's right end and runs on
    past it, so only a few of its columns lie over the body.
    """
    if not groups:
        return groups
    used = {c.label for group in groups for c in group}
    spans = [_span(g) for g in groups]  # the digits as grouped, not as grown by earlier pieces
    largest = [max(c.area for c in g) for g in groups]
    for blob in (c for c in found if c.label not in used):
        shared, i = max((_overlap(span, blob), i) for i, span in enumerate(spans))
        if shared >= SHARED_COLUMNS and blob.area >= 0.05 * largest[i]:
            groups[i].append(blob)
    return groups


def _span(group: list[Component]) -> tuple[int, int]:
    """Return the columns a group covers, as (first, end)."""
    return min(c.x for c in group), max(c.x + c.w for c in group)


def attach_flat(groups: list[list[Component]]) -> list[list[Component]]:
    """Merge groups far shorter than the digits (the detached hat of a 5) into their nearer neighbour."""
    height = float(np.median([_height(g) for g in groups]))
    middle = middle_line(groups, height)
    merged = [list(g) for g in groups]
    i = 0
    while i < len(merged) and len(merged) > 1:
        # A hat sits above the line's middle; a short mark reaching below it is a small digit (an "o").
        # The middle follows the line's slope: on a number photographed at a slant, the end digits'
        # hats lie below the middle of the line as a whole.
        if _height(merged[i]) >= FLAT_SHARE * height or (
            len(groups) >= 3 and max(c.y + c.h for c in merged[i]) > middle(_centre_x(merged[i]))
        ):
            i += 1
            continue
        gap, j = min((_gap_between(merged, i, k), k) for k in (i - 1, i + 1) if 0 <= k < len(merged))
        if gap > JOIN_GAP * height:
            i += 1
            continue
        merged[j] += merged[i]
        del merged[i]
        i = min(i, j)  # the grown group may still be flat: look at it again
    return merged


def middle_line(groups: list[list[Component]], height: float) -> Callable[[float], float]:
    """Return the line's middle at a column: fitted through the groups' middles, following its slope."""
    x = np.array([_centre_x(g) for g in groups])
    y = np.array([_middle(g) for g in groups])
    intercept, slope = centre_line(x, y, height)
    return lambda column: intercept + slope * column


def _centre_x(group: list[Component]) -> float:
    """Return the horizontal centre of a group's box."""
    return (min(c.x for c in group) + max(c.x + c.w for c in group)) / 2


def _height(group: list[Component]) -> int:
    """Return the height of a group's box."""
    return max(c.y + c.h for c in group) - min(c.y for c in group)


def without_specks(groups: list[list[Component]]) -> list[list[Component]]:
    """Drop groups far smaller than the tallest: a speck beside a digit, however surely it reads."""
    tallest = max((_height(g) for g in groups), default=0)
    return [g for g in groups if max(_height(g), _width(g)) >= SPECK_SHARE * tallest]


def _width(group: list[Component]) -> int:
    """Return the width of a group's box."""
    return max(c.x + c.w for c in group) - min(c.x for c in group)


def _middle(group: list[Component]) -> float:
    """Return the vertical centre of a group's box."""
    return (min(c.y for c in group) + max(c.y + c.h for c in group)) / 2


def _gap_between(groups: list[list[Component]], i: int, j: int) -> int:
    """Return the horizontal gap between groups i and j, in either order."""
    return _gap(groups[min(i, j)], groups[max(i, j)])


def _gap(left: list[Component], right: list[Component]) -> int:
    """Return the horizontal gap from a group to the group on its right (negative when they overlap)."""
    return min(c.x for c in right) - max(c.x + c.w for c in left)


def line_groups(ink: FoundInk) -> list[list[Component]]:
    """Group the ink of one text line into characters, left to right."""
    blobs = on_text_line(main_blobs(ink.blobs, stroke_clusters(ink.labels, ink.blobs)))
    return attach_small(attach_flat(group_columns(blobs)), ink.blobs)


def digit_groups(ink: FoundInk, row_size: float = 0.0) -> list[list[Component]]:
    """Group found ink into digits, left to right (empty when none looks like a digit).

    `row_size` is the size of the characters of the image's one row of writing, when it has one.
    """
    groups = line_groups(ink)
    if not ink.drawing:
        marks = [is_background_mark(g, ink.labels.shape, ink.sparse, ink.labels) for g in groups]
        digits = [g for g, mark in zip(groups, marks, strict=True) if not mark]
        # Measured against the digits found, not only against the photo: a row of digits all small
        # against the photo is measured by its own characters. Only the marks need a second look.
        size = float(np.median([max(_height(g), _width(g)) for g in digits])) if digits else row_size
        groups = [
            g
            for g, mark in zip(groups, marks, strict=True)
            if not mark or not is_background_mark(g, ink.labels.shape, ink.sparse, ink.labels, size)
        ]
    return groups[:MAX_DIGITS]


def could_be_one(left: list[Component], right: list[Component], height: float) -> bool:
    """Tell whether two neighbouring groups are close and narrow enough to be one broken digit."""
    width = max(c.x + c.w for c in right) - min(c.x for c in left)
    # As tall as the whole, but no taller than the line's digits: a 7's long tail beside a 3 is no digit.
    tall = min(_height(left + right), JOIN_TALLEST * height)
    return _gap(left, right) <= JOIN_GAP * height and width <= JOIN_ASPECT * tall


def layout(ink: FoundInk, groups: list[list[Component]]) -> NumberLayout:
    """Prepare each group, each pair that could be one broken digit, each group that could be two."""
    height = float(np.median([_height(g) for g in groups]))
    joins = {
        i: prepare_parts(ink.labels, left + right, ink.scale, ink.origin)
        for i, (left, right) in enumerate(itertools.pairwise(groups))
        if could_be_one(left, right, height)
    }
    digits = [prepare_parts(ink.labels, group, ink.scale, ink.origin) for group in groups]
    return NumberLayout(digits, joins, splits=group_splits(ink, groups, height))


def group_splits(
    ink: FoundInk, groups: list[list[Component]], height: float
) -> dict[int, list[tuple[PreparedDigit, ...]]]:
    """Return, for each group wide enough to be touching digits, its ways of being cut into pieces."""
    cuts = {i: split_candidates(ink.labels, g, height, ink.scale, ink.origin) for i, g in enumerate(groups)}
    return {i: ways for i, ways in cuts.items() if ways}


def prepare_number(image: ImageInput) -> NumberLayout:
    """Preprocess each digit of a written number, left to right."""
    ink = find_ink(image)
    groups = digit_groups(ink)
    if not groups:
        raise EmptyImageError(EMPTY_MESSAGE)
    return layout(ink, groups)

"""Pages: find every digit of an image, group them into lines in reading order, prepare each.

One path for every image: a single digit and a single number are pages of one line. The page's
own digit height, not the image's side, sets the resolution the ink is read at and every
distance used to tell characters, lines and stray marks apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from mnist_bot import printed, segment
from mnist_bot.blobs import EMPTY_MESSAGE, Box, Component, FoundInk, components, find_decoded_ink, label_ink
from mnist_bot.candidates import digit_parts, touches_border, union_box
from mnist_bot.decode import ImageInput, load_image_scaled
from mnist_bot.errors import EmptyImageError
from mnist_bot.ink import ink_image
from mnist_bot.preprocess import PreparedDigit, prepare_found_digit

MAX_WHOLE_GROUPS = 3  # a line of up to this many groups may be one digit in pieces
WHOLE_ASPECT = 1.2  # ... if together no wider than this share of their height
MAX_WHOLE_PIECES = 8  # more characters than this are never the pieces of one digit
WHOLE_COVER = 0.8  # a page's ink may be one digit if the one-digit path takes in this share of it
MIN_TURN_CHARACTERS = 3  # a page of this many characters may lie sideways; fewer are read as they stand
MIN_DIGIT_PX = 36  # working px: a page's digits shorter than this are re-read at a finer resolution...
TARGET_DIGIT_PX = 40  # ... one that makes them this tall
BACKGROUND_DIGITS = 4  # the paper's brightness is estimated over this many digit heights
MAX_UPSCALE = 2.0  # a small image's small digits are read at up to this many working px per input px
MAX_WORK_PIXELS = 16_000_000  # the finest working resolution, for memory (a 35 MP form fits at about 0.7x)
FRAME_MARGIN = 2  # working px from the frame within which ink counts as touching it (a paper edge's rest)
LINE_ASPECT = 8  # a blob this many times longer than wide is a straight stroke
MIN_ROW_CHARACTERS = 3  # a row of this many characters is a number, sized by its own characters
MAIN_SHARE = 0.4  # blobs at least this share as tall as the page's tall ones are characters; less are pieces
LINE_OVERLAP = 0.4  # neighbours on a line share at least this share of the shorter one's rows...
LINE_REACH = 2.5  # ... and lie at most this many digit heights apart
STACK_GAP = 0.2  # pieces of one digit stacked with a gap under this share of the taller are one character
STACK_SPAN = 1.5  # ... and together no taller than this many digit heights
ROW_DRIFT = 0.5  # pieces of one row (grid columns far apart) lie within this many digit heights of its line
PIECE_DRIFT = 0.75  # a small piece (a 5's hat, a dot of a broken stroke) lies this close to its line
TALLEST_SHARE = 2.5  # ink this many times taller than the digits is a paper edge or a rule, not a character
MIN_LINE_SHARE = 0.6  # a line whose tallest character is shorter than this share of the digits is a mark
SPECK_SHARE = 0.25  # ink no bigger than this share of the digits is a speck or a dot, not a digit
WORD_ASPECT = 2.5  # ink this many times wider than tall is a word or a rule, never one digit
SEPARATOR_ASPECT = 1.5  # a flat mark this much wider than tall at mid-height is a dash between digits


@dataclass(frozen=True)
class PageLayout:
    """A page's lines top to bottom, each a number's digits left to right with possible joins.

    `rotation` is how far (degrees, counter-clockwise) the page was turned to read it this way;
    the boxes are in the input's own, unturned pixels.
    """

    lines: list[segment.NumberLayout]
    rotation: int = 0
    whole: PreparedDigit | None = None  # all of the ink as one digit, when the lines may be one digit


def prepare_number(image: ImageInput) -> segment.NumberLayout:
    """Prepare an image's digits as one line, left to right: the page path's ink, read as a number."""
    ink = page_ink(image)
    groups = segment.digit_groups(ink)
    if not groups:
        raise EmptyImageError(EMPTY_MESSAGE)
    return segment.layout(ink, groups)


def may_lie_turned(ink: FoundInk) -> bool:
    """Tell whether found ink is a page of enough characters that it may have been photographed turned."""
    return ink.origin == (0, 0) and len(page_characters(ink)) >= MIN_TURN_CHARACTERS


def turned_layouts(ink: FoundInk) -> list[PageLayout]:
    """Lay out a page turned a quarter, a half and three quarters counter-clockwise.

    A document photographed sideways or upside down carries no EXIF orientation to say so: the
    caller reads each way up and keeps the one the classifier reads best.
    """
    return [turned_layout(ink, quarter) for quarter in (1, 2, 3)]


def ink_layout(ink: FoundInk) -> PageLayout:
    """Lay out found ink as lines of digits; one row is one digit or one number, as read() read them.

    A few characters may also be the pieces of one digit (a thin pen broken in places, a digit
    broken across its middle): then the one digit is offered too, and the classifier chooses.
    """
    rows = page_rows(ink)
    if not is_page(rows) and not is_stacked_pair(rows):
        return PageLayout([single_line(ink, row_size(rows))])
    lines = [layout for layout in (row_layout(ink, row) for row in rows) if layout is not None]
    return PageLayout(lines, whole=whole_digit(ink, rows))


def whole_digit(ink: FoundInk, rows: list[list[Component]]) -> PreparedDigit | None:
    """Return the one digit the single-digit path picks, when it takes in nearly all of the rows' ink."""
    characters = [c for row in rows for c in row]
    if len(characters) > MAX_WHOLE_PIECES:
        return None
    parts = digit_parts(ink)
    labels = {c.label for c in parts}
    covered = sum(c.area for c in characters if c.label in labels)
    if covered < WHOLE_COVER * sum(c.area for c in characters):
        return None  # digits apart from one another: the page's lines, not one digit
    try:
        return prepare_found_digit(ink, parts)
    except EmptyImageError:
        return None


def turned_layout(ink: FoundInk, quarter: int) -> PageLayout:
    """Lay out the ink turned `quarter` quarter-turns counter-clockwise, boxes mapped back to the input."""
    turned = turned_ink(ink, quarter)
    shape = (round(turned.labels.shape[0] / ink.scale), round(turned.labels.shape[1] / ink.scale))
    if not turned.blobs:
        return PageLayout([], rotation=90 * quarter)
    page = ink_layout(turned)
    whole = None if page.whole is None else unturned_digit(page.whole, shape, quarter)
    lines = [unturned_line(line, shape, quarter) for line in page.lines]
    return PageLayout(lines, rotation=90 * quarter, whole=whole)


def turned_ink(ink: FoundInk, quarter: int) -> FoundInk:
    """Turn found ink (labels and blob boxes) `quarter` quarter-turns counter-clockwise."""
    labels = ink.labels
    blobs = ink.blobs
    for _ in range(quarter):
        blobs = [turned_component(c, labels.shape[1]) for c in blobs]
        labels = np.rot90(labels)
    return replace(ink, labels=np.ascontiguousarray(labels), blobs=blobs)


def turned_component(c: Component, width: int) -> Component:
    """Return a blob's box after a quarter-turn counter-clockwise of an image `width` px wide."""
    return replace(c, x=c.y, y=width - c.x - c.w, w=c.h, h=c.w)


def unturned_line(line: segment.NumberLayout, shape: tuple[int, int], quarter: int) -> segment.NumberLayout:
    """Map a turned line's boxes (in the turned input's pixels, of `shape`) back to the input's."""

    def back(digit: PreparedDigit) -> PreparedDigit:
        return unturned_digit(digit, shape, quarter)

    whole = None if line.whole is None else back(line.whole)
    splits = {i: [tuple(back(d) for d in way) for way in ways] for i, ways in line.splits.items()}
    return segment.NumberLayout(
        [back(d) for d in line.digits], {i: back(d) for i, d in line.joins.items()}, whole, splits
    )


def unturned_digit(digit: PreparedDigit, shape: tuple[int, int], quarter: int) -> PreparedDigit:
    """Map a turned digit's box back to the input's pixels."""
    return replace(digit, box=unturned_box(digit.box, shape, quarter))


def unturned_box(box: Box, shape: tuple[int, int], quarter: int) -> Box:
    """Turn a box back by `quarter` quarter-turns clockwise; `shape` (H, W) is the turned image's."""
    height, width = shape
    for _ in range(quarter):  # one clockwise quarter-turn of an H x W image
        box = Box(height - box.y - box.h, box.x, box.h, box.w)
        height, width = width, height
    return box


def is_page(rows: list[list[Component]]) -> bool:
    """Tell whether rows of characters are lines of a page, not one digit or number with stray ink.

    Two rows of one character each are more often one digit broken across its middle, or a digit
    over a shadow, than two digits written one above the other.
    """
    counts = [len(row) for row in rows]
    return len(counts) >= 3 or (len(counts) == 2 and max(counts) >= 2)


def is_stacked_pair(rows: list[list[Component]]) -> bool:
    """Tell whether rows are two single characters one above the other: two digits, or one in two pieces."""
    return [len(row) for row in rows] == [1, 1]


def row_size(rows: list[list[Component]]) -> float:
    """Return the size of the characters of an image's one row of a few (a number), else 0."""
    if len(rows) != 1 or len(rows[0]) < MIN_ROW_CHARACTERS:
        return 0.0
    return digit_size(rows[0])


def single_line(ink: FoundInk, size: float = 0.0) -> segment.NumberLayout:
    """Prepare the one number or the one digit of an image (the latter chosen among stray marks).

    `size` is that of the characters of the image's one row, when it holds a number.
    """
    groups = segment.digit_groups(ink, size)
    if len(groups) <= MAX_WHOLE_GROUPS:  # one digit beside specks, not a number with a small broken piece
        groups = segment.without_specks(groups)
    if len(groups) < 2:
        return lone_digit(ink, groups)
    number = segment.layout(ink, groups)
    whole = union_box([c for group in groups for c in group])
    if len(groups) > MAX_WHOLE_GROUPS or whole.w > WHOLE_ASPECT * whole.h:  # too wide for one digit
        return number
    # A digit broken by a gap, or beside a stray mark, can pass for a short number: the classifier
    # chooses, reading the single digit the one-digit path picks too.
    try:
        return replace(number, whole=prepare_found_digit(ink))
    except EmptyImageError:
        return number


def lone_digit(ink: FoundInk, groups: list[list[Component]]) -> segment.NumberLayout:
    """Prepare the one digit of an image, and its cuts when its one group is as wide as touching digits."""
    digit = prepare_found_digit(ink)
    if not groups:
        return segment.NumberLayout([digit])
    # Alone, the group is its own line: its height is the line's.
    return segment.NumberLayout([digit], splits=segment.group_splits(ink, groups, union_box(groups[0]).h))


def page_ink(image: ImageInput) -> FoundInk:
    """Find an image's ink at a resolution where its digits are tall enough to read."""
    array, decode_scale = load_image_scaled(image)
    found = find_decoded_ink(image, array, decode_scale, rules=False)
    if found.origin != (0, 0):  # zoomed in onto one small digit: already at full size
        return found
    input_shape = (array.shape[0] / decode_scale, array.shape[1] / decode_scale)
    scale = finer_scale(found, input_shape)
    if scale is None:
        return without_printed_lines(found)
    return without_printed_lines(finer_ink(image, array, decode_scale, scale))


def finer_ink(image: ImageInput, array: np.ndarray, decode_scale: float, scale: float) -> FoundInk:
    """Find the ink again at `scale` working px per input px, decoding the input in full if it was drafted."""
    full = array if decode_scale == 1 else load_image_scaled(image, draft=False)[0]
    upscale = max(1.0, scale)
    if upscale > 1:  # small digits of a small image: their hairline strokes need more than a pixel
        full = cv2.resize(full, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
    side = round(max(full.shape[:2]) * scale / upscale)
    finer = ink_image(full, work_side=side, background_side=BACKGROUND_DIGITS * TARGET_DIGIT_PX)
    return label_ink(finer, finer.scale * upscale, rules=False)


def without_printed_lines(ink: FoundInk) -> FoundInk:
    """Erase a form's boxes and grid, underlines and rules, sized by the page's digits (`printed`).

    A blob enclosing a digit and mostly straight, or a hollow rectangle (a box its digit touches), is
    a printed box: its sides go from FRAME_LINE digit sizes long. In any blob longer than
    PRINTED_LINE digit sizes (a ruled line, a grid) straight runs that long go. Each is straightened
    first; the strokes crossing or touching the lines stay. Boxes whose thin sides the mask broke
    into dashes are looked for again with their faint straight lines joining the dashes
    (`joined_blobs`).
    """
    unprinted = replace(ink, faint=None)  # the faint mask serves this stage only
    if len(ink.blobs) < 2:  # one blob is the digit: there is no other writing to size a printed line by
        return unprinted
    labels, joined = ink.labels, ink.blobs
    frames, masks = printed_frames(labels, joined)
    size = digit_size(unruled(labels, _plain(joined, frames)) or joined)  # boxes are no measure of digits
    if ink.faint is not None:  # a thin printed line broken into dashes is one line again: look again
        labels, joined = joined_blobs(ink, printed.FRAME_LINE * size)
        frames, masks = printed_frames(labels, joined)
        size = digit_size(unruled(labels, _plain(joined, frames)) or joined)  # dashes are no digits
    sides = {
        i: (printed.FRAME_LINE if frame else printed.PRINTED_LINE) * size
        for i, (c, frame) in enumerate(zip(joined, frames, strict=True))
        if frame or max(c.w, c.h) > printed.PRINTED_LINE * size
    }
    if not sides:
        return unprinted
    kept = found_mask(ink)
    lines = np.zeros_like(kept)
    for i, length in sides.items():
        c = joined[i]
        own = masks[i] if i in masks else printed.blob_mask(labels, c)
        erased = own & (1 - printed.frame_without_sides(own, length, frame=bool(frames[i])))
        kept[c.y : c.y + c.h, c.x : c.x + c.w] &= 1 - erased
        lines[c.y : c.y + c.h, c.x : c.x + c.w] |= erased
    labels, blobs = components(kept, min_area=max(4, round(0.02 * size**2)))
    flags = printed.remnants(labels, blobs, lines, size)
    flags = printed.beside_no_digit(labels, blobs, flags, MAIN_SHARE * size)
    blobs = [c for c, rest in zip(blobs, flags, strict=True) if not rest]
    return replace(unprinted, labels=labels, blobs=blobs) if blobs else unprinted


def printed_frames(labels: np.ndarray, blobs: list[Component]) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Flag the blobs that are printed boxes (around a digit, or touched by one); return the masks seen."""
    around = printed.framing_blobs(blobs)
    hollow = np.array([c.area <= printed.HOLLOW * c.w * c.h for c in blobs])  # no box has more ink
    masks = {int(i): printed.blob_mask(labels, blobs[i]) for i in np.flatnonzero(around | hollow)}
    frames = np.zeros(len(blobs), bool)
    for i, mask in masks.items():  # only the blobs around others, or thin for their box, need a look
        frames[i] = (around[i] and printed.is_straight(mask)) or (
            hollow[i] and printed.is_hollow_rectangle(mask)
        )
    return frames, masks


def _plain(blobs: list[Component], frames: np.ndarray) -> list[Component]:
    """Return the blobs that are no printed box."""
    return [c for c, frame in zip(blobs, frames, strict=True) if not frame]


def joined_blobs(ink: FoundInk, length: float) -> tuple[np.ndarray, list[Component]]:
    """Label the found ink again with the faint straight lines `length` px or longer that link it.

    A thin printed line breaks into dashes under the mask's threshold but stays whole at half of it
    (`FoundInk.faint`). Only its straight runs join, so a digit beside a box is not joined to it by
    its own faint rim, and the lines' pixels between the dashes are in the box's mask to be erased.
    """
    assert ink.faint is not None
    found = found_mask(ink)
    left_out = (ink.labels > 0) & (found == 0)  # specks, shadows, and ink fainter than the page's
    runs = printed.straight_lines(ink.faint, length)
    count, labels = cv2.connectedComponents(runs, connectivity=8, ltype=cv2.CV_32S)
    # A printed line's dashes are most of its length. They are found ink, or, where a box's sides
    # are much fainter than its digit, ink the ink stage left out (as faint, or as grain) beside
    # found sides. The faint ruling of squared paper, which the mask leaves out, has ink only where
    # digits cross it, and a faint line along one stroke (a 2's base on a ruled line) joins nothing.
    dashed = dashes(labels, count, found | left_out, ink.labels)
    dashed[0] = False
    return components(found | dashed.astype(np.uint8)[labels], min_area=1)


def dashes(runs: np.ndarray, count: int, dashed: np.ndarray, blobs: np.ndarray) -> np.ndarray:
    """Flag the `count` labelled runs at least DASHED_SHARE on `dashed` ink that touch two `blobs` or more."""
    total = np.bincount(runs.ravel(), minlength=count)
    covered = np.bincount(runs.ravel(), weights=dashed.ravel(), minlength=count)
    on_ink = (runs > 0) & (blobs > 0)
    stride = int(blobs.max()) + 1  # (run, blob) pairs as one number, to count blobs per run
    pieces = np.bincount(np.unique(runs[on_ink].astype(np.int64) * stride + blobs[on_ink]) // stride)
    pieces = np.pad(pieces, (0, count - pieces.size))
    return np.asarray((covered >= printed.DASHED_SHARE * total) & (pieces >= 2))


def found_mask(ink: FoundInk) -> np.ndarray:
    """Return the 0/1 mask of the blobs found: labels also hold the specks and shadows left out."""
    found = np.zeros(int(ink.labels.max()) + 1, np.uint8)
    found[[c.label for c in ink.blobs]] = 1
    return np.asarray(found[ink.labels])


def unruled(labels: np.ndarray, blobs: list[Component]) -> list[Component]:
    """Return the blobs, each long flat one (a ruled line, digits fused with it) as its pieces off the line.

    Digits written on a line are one blob with it: only without the line do they show their size.
    """
    out = []
    for c in blobs:
        if max(c.w, c.h) < WORD_ASPECT * min(c.w, c.h):
            out.append(c)
            continue
        own = printed.blob_mask(labels, c)
        rest = own & (1 - printed.straight_lines(own, 0.8 * max(c.w, c.h)))
        pieces = components(rest, min_area=max(4, c.area // 100))[1]
        out.extend(pieces or [c])
    return out


def finer_scale(found: FoundInk, input_shape: tuple[float, float]) -> float | None:
    """Return the working scale (px per input px) that makes small digits TARGET_DIGIT_PX tall, or None."""
    height = digit_height(found.blobs)
    if height >= MIN_DIGIT_PX:
        return None
    # Interpolating finer than the input helps only where the first pass already saw every pixel.
    finest = MAX_UPSCALE if found.scale >= 1 else 1.0
    finest = min(finest, float(np.sqrt(MAX_WORK_PIXELS / (input_shape[0] * input_shape[1]))))
    scale = min(finest, found.scale * TARGET_DIGIT_PX / height)
    return scale if scale > 1.2 * found.scale else None


def digit_height(blobs: list[Component]) -> float:
    """Estimate the page's digit height: the median height of its character-sized blobs (working px)."""
    return _median_size([c.h for c in _shaped(blobs)])


def digit_size(blobs: list[Component]) -> float:
    """Estimate the longer side of the page's digits, whichever way up the page lies (working px)."""
    return _median_size([max(c.w, c.h) for c in _shaped(blobs)])


def _shaped(blobs: list[Component]) -> list[Component]:
    """Leave out straight thin strokes (a form's box sides, rules, an upright 1) while others remain.

    They say nothing of the size of the writing.
    """
    return [c for c in blobs if max(c.w, c.h) < LINE_ASPECT * min(c.w, c.h)] or blobs


def _median_size(sizes: list[int]) -> float:
    """Return the median of the sizes close to the largest ones (pieces and specks left out)."""
    values = np.array(sizes, np.float32)
    tall = float(np.percentile(values, 90))
    return float(np.median(values[values >= MAIN_SHARE * tall]))


def page_characters(ink: FoundInk) -> list[Component]:
    """Return the blobs of character size: the ones lines are built from."""
    height = digit_height(ink.blobs)
    shape = ink.labels.shape
    # A page's digits lie inside the frame; what touches it is a paper edge, a shadow or a cut-off mark.
    return [
        c for c in ink.blobs if is_character_sized(c, height) and not touches_border(c, shape, FRAME_MARGIN)
    ]


def page_rows(ink: FoundInk) -> list[list[Component]]:
    """Group an image's blobs into text rows, top to bottom, each with its small pieces."""
    height = digit_height(ink.blobs)
    characters = page_characters(ink)
    if not characters:
        return []
    rows = merge_row_fragments(linked_lines(characters, height), height)
    rows = [row for row in rows if max(c.h for c in row) >= MIN_LINE_SHARE * height]
    rows.sort(key=lambda row: row_centre(row, middle_x(ink.blobs)))
    if not is_page(rows) and not is_stacked_pair(rows):
        return rows
    chosen = set(characters)
    shape = ink.labels.shape
    pieces = [
        c
        for c in ink.blobs
        if c not in chosen and c.h < MAIN_SHARE * height and not touches_border(c, shape, FRAME_MARGIN)
    ]
    return attach_pieces(rows, pieces, height)


def is_character_sized(blob: Component, height: float) -> bool:
    """Tell whether a blob is as tall as the page's characters: not a piece, a rule or a paper edge."""
    tall_enough = MAIN_SHARE * height <= blob.h <= TALLEST_SHARE * height
    return tall_enough and blob.w <= WORD_ASPECT * max(blob.h, height)


def linked_lines(characters: list[Component], height: float) -> list[list[Component]]:
    """Join characters into line fragments: side by side on one line, or stacked pieces of one digit.

    Neighbours on a line share rows and lie a few digits apart. Pieces of one broken digit (a 6's
    stem over its loop) share columns with almost no gap and together stand about a digit tall,
    while lines of a page lie further apart.
    """
    top, left = (np.array([c.y for c in characters]), np.array([c.x for c in characters]))
    bottom = top + np.array([c.h for c in characters])
    right = left + np.array([c.w for c in characters])
    shared_rows, row_gap = _overlap_and_gap(top, bottom)
    shared_columns, column_gap = _overlap_and_gap(left, right)
    heights, widths = bottom - top, right - left
    side_by_side = (shared_rows >= LINE_OVERLAP * np.minimum.outer(heights, heights)) & (
        column_gap <= LINE_REACH * height
    )
    span = np.maximum.outer(bottom, bottom) - np.minimum.outer(top, top)
    stacked = (
        (shared_columns >= 0.5 * np.minimum.outer(widths, widths))
        & (row_gap <= STACK_GAP * np.maximum.outer(heights, heights))
        & (span <= STACK_SPAN * height)  # pieces of one digit are together about a digit tall
    )
    return [[characters[i] for i in members] for members in connected(side_by_side | stacked)]


def _overlap_and_gap(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return, for every pair of intervals, how much they overlap and the gap between them (px)."""
    overlap = np.minimum.outer(end, end) - np.maximum.outer(start, start)
    return overlap, -overlap


def connected(linked: np.ndarray) -> list[list[int]]:
    """Return the connected groups of a symmetric boolean adjacency matrix (union-find)."""
    parent = list(range(len(linked)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(linked, 1)), strict=True):
        parent[root(int(i))] = root(int(j))
    groups: dict[int, list[int]] = {}
    for i in range(len(linked)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def merge_row_fragments(fragments: list[list[Component]], height: float) -> list[list[Component]]:
    """Merge fragments on one row (grid columns, words far apart) that do not overlap side by side."""
    rows: list[list[Component]] = []
    skew = page_skew(fragments)
    lines: list[list[tuple[float, float]]] = []  # each row's centre lines, refitted as it grows
    for fragment in sorted(fragments, key=lambda f: -len(f)):  # long fragments fix the lines best
        x = middle_x(fragment)
        centre = row_centre(fragment, x)
        drifts = [
            (min(abs(intercept + slope * x - centre) for intercept, slope in row_lines), i)
            for i, (row, row_lines) in enumerate(zip(rows, lines, strict=True))
            if not overlaps_columns(row, fragment)
        ]
        drift, home = min(drifts, default=(np.inf, -1))
        if drift <= ROW_DRIFT * height:
            rows[home].extend(fragment)
            lines[home] = centre_lines(rows[home], skew)
        else:
            rows.append(list(fragment))
            lines.append(centre_lines(fragment, skew))
    return rows


def centre_lines(row: list[Component], skew: float) -> list[tuple[float, float]]:
    """Return a row's centre line as fitted, and at the page's skew through its characters (intercept, slope).

    A few characters of a grid's row fit a line whose slope is mostly their jitter; extrapolated
    to a far column it misses the row there, while the page's lines share one skew: a point lies
    on the row when it lies near either line.
    """
    level = float(np.median([c.y + c.h / 2 - skew * (c.x + c.w / 2) for c in row]))
    return [line_fit(row), (level, skew)]


def page_skew(fragments: list[list[Component]]) -> float:
    """Return the page's skew (slope of its lines): the median slope of its fragments of a few characters."""
    slopes = [line_fit(f)[1] for f in fragments if len(f) >= MIN_ROW_CHARACTERS]
    return float(np.median(slopes)) if slopes else 0.0


def overlaps_columns(row: list[Component], fragment: list[Component]) -> bool:
    """Tell whether a fragment lies over or under a row's characters rather than beside them."""
    span = union_box(fragment)
    return any(min(c.x + c.w, span.x + span.w) - max(c.x, span.x) > 0.5 * c.w for c in row)


def middle_x(blobs: list[Component]) -> float:
    """Return the mean horizontal centre of some blobs."""
    return float(np.mean([c.x + c.w / 2 for c in blobs]))


def row_centre(row: list[Component], x: float) -> float:
    """Return the height of a row's centre line at column `x`, following its slope."""
    intercept, slope = line_fit(row)
    return intercept + slope * x


def line_fit(row: list[Component]) -> tuple[float, float]:
    """Fit a row's centre line robustly: return its intercept and slope (Theil-Sen, as a number's)."""
    centres_x = np.array([c.x + c.w / 2 for c in row])
    centres_y = np.array([c.y + c.h / 2 for c in row])
    return segment.centre_line(centres_x, centres_y, float(np.median([c.h for c in row])))


def attach_pieces(
    rows: list[list[Component]], pieces: list[Component], height: float
) -> list[list[Component]]:
    """Give each small piece to the row it lies on (within reach of its characters); drop the rest."""
    spans = [union_box(row) for row in rows]
    lines = [line_fit(row) for row in rows]
    for piece in pieces:
        x, y = piece.x + piece.w / 2, piece.y + piece.h / 2
        near = [
            (abs(intercept + slope * x - y), i)
            for i, (intercept, slope) in enumerate(lines)
            if spans[i].x - height <= x <= spans[i].x + spans[i].w + height
        ]
        if near and min(near)[0] <= PIECE_DRIFT * height:
            rows[min(near)[1]].append(piece)
    return rows


def row_layout(ink: FoundInk, row: list[Component]) -> segment.NumberLayout | None:
    """Prepare one row's digits (and possible joins) from a crop of the page's labels around it."""
    line = row_ink(ink, row)
    height = digit_height(line.blobs)
    groups = [g for g in segment.line_groups(line) if is_digit_candidate(g, height)]
    return segment.layout(line, groups) if groups else None


def row_ink(ink: FoundInk, row: list[Component]) -> FoundInk:
    """Cut the labels around one row so per-row work costs the row's area, not the page's."""
    box = union_box(row)
    margin = 4
    x0, y0 = max(0, box.x - margin), max(0, box.y - margin)
    x1 = min(ink.labels.shape[1], box.x + box.w + margin)
    y1 = min(ink.labels.shape[0], box.y + box.h + margin)
    blobs = [replace(c, x=c.x - x0, y=c.y - y0) for c in row]
    origin = (ink.origin[0] + round(x0 / ink.scale), ink.origin[1] + round(y0 / ink.scale))
    return replace(ink, labels=ink.labels[y0:y1, x0:x1], blobs=blobs, origin=origin)


def is_digit_candidate(group: list[Component], height: float) -> bool:
    """Tell whether a group of blobs on a line may be a digit: not a word, a rule, a dash or a speck."""
    box: Box = union_box(group)
    if box.w > WORD_ASPECT * box.h or max(box.w, box.h) < SPECK_SHARE * height:
        return False
    return not (box.w >= SEPARATOR_ASPECT * box.h and box.h < MAIN_SHARE * height)


def prepared_digits(page: PageLayout) -> list[PreparedDigit]:
    """Return every prepared digit of a page, in reading order."""
    return [digit for line in page.lines for digit in line.digits]

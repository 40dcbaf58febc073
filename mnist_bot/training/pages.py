"""Synthetic pages of handwritten digits and their truth: rows, grids, forms, words and phone numbers.

Pages are built from MNIST *test* digits (and held-out UNIPEN writers' letters for `words`) and
photographed with the phone-photo pieces of `synthetic` (paper, rules, lighting, shadow,
perspective, blur, JPEG). Each page is a pure function of its kind and seed. Its truth is the lines
top to bottom and each digit's box in the photo's own pixels (the perspective warp applied).
No TensorFlow here: the page benchmark and the tests use this module on the serving side.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from mnist_bot.data import load_mnist
from mnist_bot.strokes import rasterise
from mnist_bot.training import synthetic as syn

KINDS = ("rows", "grid", "form", "words", "phone")
LONG_SIDES = (1000, 2000)  # px, the page's long side
DIGIT_HEIGHTS = (30.0, 120.0)  # px
ASPECTS = (4 / 3, math.sqrt(2))  # a phone photo's frame, an A4 sheet
MARGIN = 0.07  # of each side: the perspective warp moves corners by up to 4%
MAX_SLOPE = 4.0  # degrees a written line may climb or fall
PHONE_GROUPS = ((3, 3, 4), (3, 4), (4, 3, 4), (2, 2, 2, 2, 2), (3, 3, 2, 2), (4, 4), (3, 4, 4))
PRINT_COLOURS = ((35, 35, 40), (60, 60, 66), (40, 55, 110))  # RGB of a form's printed lines


class Box(NamedTuple):
    """A rectangle in the photo's pixels."""

    x: int
    y: int
    w: int
    h: int


class TrueDigit(NamedTuple):
    """One digit drawn on a page and its box in the photo."""

    digit: int
    box: Box


@dataclass(frozen=True)
class Page:
    """A rendered page: JPEG bytes and its truth, lines top to bottom, each digit left to right."""

    kind: str
    seed: int
    image: bytes
    shape: tuple[int, int]  # (H, W) of the photo
    lines: tuple[tuple[TrueDigit, ...], ...]

    @property
    def line_texts(self) -> list[str]:
        """Return each line's digits as a string."""
        return ["".join(str(d.digit) for d in line) for line in self.lines]

    @property
    def text(self) -> str:
        """Return the lines joined by newlines, as `PageReading.text` reads them."""
        return "\n".join(self.line_texts)

    @property
    def digits(self) -> list[TrueDigit]:
        """Return every digit in reading order."""
        return [d for line in self.lines for d in line]


@dataclass(frozen=True)
class PageSources:
    """What pages are drawn from: MNIST test digits by label, and letters for the words kind."""

    images: np.ndarray  # (N, 28, 28) uint8, ink = 255
    labels: np.ndarray  # (N,) uint8
    letters: Sequence[tuple[str, list[np.ndarray], str]] = ()  # label, strokes (y down), writer

    @classmethod
    def load(cls, mnist_dir: Path | None, letters_file: Path | None = None) -> PageSources:
        """Load the MNIST test split and, when a file is given, held-out writers' letters (no look-alikes)."""
        test = load_mnist(mnist_dir, download=False).test
        if letters_file is None or not letters_file.is_file():
            return cls(test.images, test.labels)
        from mnist_bot.training.reject import load_letters  # parses 105,130 letters: only when wanted

        letters = [s for s in load_letters(letters_file, held_out=True) if s[0].isalpha()]
        return cls(test.images, test.labels, letters)


class Placed(NamedTuple):
    """A mask put on the sheet at (x, y); `digit` is None for ink that is no digit (letters, dashes)."""

    digit: int | None
    mask: np.ndarray  # float32 (h, w) in [0, 1]
    x: int
    y: int


@dataclass(frozen=True)
class Plan:
    """What a kind decided to write on an (H, W) sheet: lines of placed ink, printed lines, the digit size."""

    shape: tuple[int, int]
    lines: list[list[Placed]]
    digit_height: float
    printed: np.ndarray | None = None  # float32 (H, W) cover of printed form lines


# ---------------------------------------------------------------- rendering


def render_page(kind: str, sources: PageSources, seed: int, shape: tuple[int, int] | None = None) -> Page:
    """Render one page of `kind` for `seed` (deterministic), on a random or given (H, W) sheet."""
    if kind not in KINDS:
        raise ValueError(f"Unknown page kind {kind!r}; choose one of {', '.join(KINDS)}.")
    rng = np.random.default_rng([KINDS.index(kind), seed])
    plan = PLANNERS[kind](sources, rng, shape or page_shape(rng))
    return photograph_plan(kind, seed, plan, rng)


def photographed_sheet(
    sources: PageSources, seed: int, shape: tuple[int, int] = (4000, 3000), grid: tuple[int, int] = (10, 10)
) -> Page:
    """Render a phone photo (12 MP by default) of a sheet of `grid` (rows, columns) scattered digits."""
    rng = np.random.default_rng([len(KINDS), seed])
    return photograph_plan("sheet", seed, plan_big_grid(sources, rng, shape, grid), rng)


def scanned_form(
    sources: PageSources, seed: int, shape: tuple[int, int] = (7014, 4962), grid: tuple[int, int] = (44, 25)
) -> Page:
    """Render a grey scan (A4 at 600 dpi by default) of a form of `grid` (rows, columns) boxed digits."""
    rng = np.random.default_rng([len(KINDS) + 1, seed])
    plan = plan_big_form(sources, rng, shape, grid)
    ink = np.zeros(shape, np.float32)
    boxes = [[paste(ink, p) for p in line] for line in plan.lines]
    image = scan(ink, plan.printed, rng)
    lines = tuple(
        tuple(TrueDigit(p.digit, b) for p, b in zip(line, line_boxes, strict=True) if p.digit is not None)
        for line, line_boxes in zip(plan.lines, boxes, strict=True)
    )
    return Page("scanned_form", seed, image, shape, lines)


def photograph_plan(kind: str, seed: int, plan: Plan, rng: np.random.Generator) -> Page:
    """Write a plan's ink on paper (its printed lines first), photograph it and carry the boxes along."""
    ink = np.zeros(plan.shape, np.float32)
    boxes = [[paste(ink, p) for p in line] for line in plan.lines]
    sheet = syn.paper(plan.shape, rng)
    if plan.printed is not None:
        sheet = print_lines(sheet, plan.printed, rng)
    blur = min(max(plan.shape) / 1000, plan.digit_height / 80)
    image, matrix = syn.photograph_sheet(sheet, ink, rng, blur_scale=blur)
    lines = tuple(
        tuple(
            TrueDigit(p.digit, warp_box(b, matrix, plan.shape))
            for p, b in zip(line, line_boxes, strict=True)
            if p.digit is not None
        )
        for line, line_boxes in zip(plan.lines, boxes, strict=True)
    )
    return Page(kind, seed, image, plan.shape, tuple(line for line in lines if line))


def scan(ink: np.ndarray, printed: np.ndarray | None, rng: np.random.Generator) -> bytes:
    """Render ink (and printed lines) as a flatbed scan: even grey paper, slight blur, grey JPEG bytes."""
    grey: np.ndarray = rng.uniform(232, 250) + syn.fine_noise(ink.shape, rng, rng.uniform(1, 3))
    if printed is not None:
        cover = printed * rng.uniform(0.8, 0.95)
        grey = grey * (1 - cover) + rng.uniform(30, 80) * cover
    cover = ink * rng.uniform(0.8, 1.0)
    grey = cv2.GaussianBlur(grey * (1 - cover) + rng.uniform(10, 60) * cover, (0, 0), sigmaX=0.7)
    ok, buffer = cv2.imencode(".jpg", np.clip(grey, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise ValueError("JPEG encoding failed.")
    return buffer.tobytes()


def page_shape(rng: np.random.Generator) -> tuple[int, int]:
    """Pick a sheet (H, W): long side 1000-2000 px, a photo's or an A4's aspect, mostly portrait."""
    long = int(rng.integers(LONG_SIDES[0], LONG_SIDES[1] + 1))
    short = round(long / ASPECTS[int(rng.integers(len(ASPECTS)))])
    return (long, short) if rng.random() < 0.6 else (short, long)


def paste(ink: np.ndarray, placed: Placed) -> Box:
    """Lay a mask on the ink (the darker wins, as with two strokes) and return its box of visible ink."""
    h, w = placed.mask.shape
    y0, x0 = max(placed.y, 0), max(placed.x, 0)
    y1, x1 = min(placed.y + h, ink.shape[0]), min(placed.x + w, ink.shape[1])
    part = placed.mask[y0 - placed.y : y1 - placed.y, x0 - placed.x : x1 - placed.x]
    np.maximum(ink[y0:y1, x0:x1], part, out=ink[y0:y1, x0:x1])
    rows, cols = np.flatnonzero((part >= 0.5).any(axis=1)), np.flatnonzero((part >= 0.5).any(axis=0))
    if rows.size == 0:
        return Box(x0, y0, 0, 0)
    return Box(x0 + int(cols[0]), y0 + int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))


def warp_box(box: Box, matrix: np.ndarray, shape: tuple[int, int]) -> Box:
    """Carry a box through the photo's perspective warp: the bounding box of its warped corners, clipped."""
    corners = np.array([[box.x, box.y], [box.x + box.w, box.y], [box.x + box.w, box.y + box.h]], np.float32)
    corners = np.vstack([corners, [[box.x, box.y + box.h]]]).astype(np.float32)
    moved = cv2.perspectiveTransform(corners[None], matrix)[0]
    x0, y0 = np.clip(np.floor(moved.min(axis=0)), 0, None).astype(int)
    x1 = min(int(np.ceil(moved[:, 0].max())), shape[1])
    y1 = min(int(np.ceil(moved[:, 1].max())), shape[0])
    return Box(int(x0), int(y0), max(0, x1 - int(x0)), max(0, y1 - int(y0)))


def print_lines(sheet: np.ndarray, printed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Print a form's lines (a cover (H, W) in [0, 1]) on the sheet in a dark printer's colour."""
    colour = np.array(PRINT_COLOURS[int(rng.integers(len(PRINT_COLOURS)))], np.float32)
    strength = printed[..., None] * rng.uniform(0.75, 0.95)
    return sheet * (1 - strength) + colour * strength


# ---------------------------------------------------------------- digits and lines


def pick_digits(sources: PageSources, labels: Sequence[int], rng: np.random.Generator) -> list[np.ndarray]:
    """Pick one random MNIST test image of each wanted label."""
    return [sources.images[int(rng.choice(np.flatnonzero(sources.labels == d)))] for d in labels]


def digit_masks(
    sources: PageSources, labels: Sequence[int], height: float, pen: float | None, rng: np.random.Generator
) -> list[np.ndarray]:
    """Draw digits of the given labels about `height` px tall with one writer's pen (synthetic's rules)."""
    heights = [max(8, round(height * s)) for s in rng.uniform(0.9, 1.1, len(labels))]
    return syn.number_strokes(pick_digits(sources, labels, rng), heights, rng, pen)


def write_line(
    items: Sequence[tuple[int | None, np.ndarray, float]],
    x0: float,
    baseline: tuple[float, float],
    slope: float,
    rng: np.random.Generator,
) -> list[Placed]:
    """Write masks left to right from x0, each followed by its gap, bottoms on a sloped baseline.

    The baseline is (x, y) of a point it passes through: lines of one page share that x, so two
    lines with other indents stay as far apart everywhere as where they cross it.
    """
    rise = math.tan(math.radians(slope))
    placed, x = [], x0
    for digit, upright, gap in items:
        mask = syn.rotate_mask(upright, slope + rng.uniform(-3, 3))
        jitter = rng.uniform(-0.04, 0.04) * mask.shape[0]
        y = baseline[1] - (x - baseline[0]) * rise - mask.shape[0] + jitter
        placed.append(Placed(digit, mask, round(x), round(y)))
        x += mask.shape[1] + gap
    return placed


def line_width(items: Sequence[tuple[int | None, np.ndarray, float]]) -> float:
    """Return how wide a line of masks and gaps is, without the last gap."""
    return sum(mask.shape[1] + gap for _, mask, gap in items) - (items[-1][2] if items else 0)


def fit_items(
    items: list[tuple[int | None, np.ndarray, float]], room: float
) -> list[tuple[int | None, np.ndarray, float]]:
    """Drop masks from the end of a line until it fits in `room` px (one at least stays)."""
    while len(items) > 1 and line_width(items) > room:
        items = items[:-1]
    return items


def digit_items(
    masks: Sequence[np.ndarray], labels: Sequence[int], height: float, rng: np.random.Generator
) -> list[tuple[int | None, np.ndarray, float]]:
    """Pair each digit mask with its label and a gap after it (one spacing per line, each a bit uneven)."""
    spacing = rng.uniform(0.12, 0.6)
    gaps = height * spacing * rng.uniform(0.7, 1.3, len(masks))
    return [(d, m, max(3.0, float(g))) for d, m, g in zip(labels, masks, gaps, strict=True)]


def stack_lines(
    lines: list[list[tuple[int | None, np.ndarray, float]]],
    shape: tuple[int, int],
    height: float,
    rng: np.random.Generator,
) -> list[list[Placed]]:
    """Write lines top to bottom with ragged indents, one page slope (each line a little off it)."""
    room_w = shape[1] * (1 - 2 * MARGIN)
    page_slope = rng.uniform(-MAX_SLOPE, MAX_SLOPE)
    pitch = height * rng.uniform(1.6, 2.2)
    drop = room_w / 2 * math.tan(math.radians(MAX_SLOPE + 0.5))  # lines pivot on the page's middle
    top = shape[0] * MARGIN + drop + height
    room_h = shape[0] * (1 - MARGIN) - drop - top
    pitch = max(min(pitch, room_h / max(len(lines) - 1, 1) / 1.1), 1.4 * height)
    slack = room_h - pitch * 1.1 * (len(lines) - 1)
    baseline = top + rng.uniform(0, max(slack, 0))
    out = []
    for wanted in lines:
        items = fit_items(wanted, room_w)
        x0 = shape[1] * MARGIN + rng.uniform(0, max(room_w - line_width(items), 0))
        slope = float(np.clip(page_slope + rng.uniform(-0.5, 0.5), -MAX_SLOPE, MAX_SLOPE))
        out.append(write_line(items, x0, (shape[1] / 2, baseline), slope, rng))
        baseline += pitch * rng.uniform(0.95, 1.1)
    return out


def lines_that_fit(shape: tuple[int, int], height: float, wanted: int) -> int:
    """Return how many lines of `height` px digits fit on the sheet (at least one)."""
    room = shape[0] * (1 - 2 * MARGIN) - shape[1] * math.tan(math.radians(MAX_SLOPE)) - height
    return max(1, min(wanted, int(room // (height * 2.3)) + 1))


def digit_height(rng: np.random.Generator, shape: tuple[int, int], per_line: int = 3) -> float:
    """Pick a digit height (log-uniform 30-120 px), small enough for `per_line` digits across the sheet."""
    low, high = DIGIT_HEIGHTS
    height = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return min(height, shape[1] * (1 - 2 * MARGIN) / (per_line * 1.5))


# ---------------------------------------------------------------- kinds


def plan_rows(sources: PageSources, rng: np.random.Generator, shape: tuple[int, int]) -> Plan:
    """Plan 2-6 rows of 3-10 digits: ragged lengths, indents and spacing, lines sloping up to 4 degrees."""
    height = digit_height(rng, shape)
    pen = syn.choose_pen(height, rng)
    count = lines_that_fit(shape, height, int(rng.integers(2, 7)))
    lines = []
    for _ in range(count):
        labels = [int(d) for d in rng.integers(0, 10, int(rng.integers(3, 11)))]
        lines.append(digit_items(digit_masks(sources, labels, height, pen, rng), labels, height, rng))
    return Plan(shape, stack_lines(lines, shape, height, rng), height)


def plan_phone(sources: PageSources, rng: np.random.Generator, shape: tuple[int, int]) -> Plan:
    """Plan 1-4 phone numbers, one a line: digit groups split by dashes or spaces (no digits themselves)."""
    height = digit_height(rng, shape, per_line=8)
    pen = syn.choose_pen(height, rng)
    lines = [
        phone_items(sources, height, pen, rng)
        for _ in range(lines_that_fit(shape, height, int(rng.integers(1, 5))))
    ]
    return Plan(shape, stack_lines(lines, shape, height, rng), height)


def phone_items(
    sources: PageSources, height: float, pen: float | None, rng: np.random.Generator
) -> list[tuple[int | None, np.ndarray, float]]:
    """Write one phone number's groups, with a dash or a wide space between groups."""
    groups = PHONE_GROUPS[int(rng.integers(len(PHONE_GROUPS)))]
    dashed = rng.random() < 0.5
    items: list[tuple[int | None, np.ndarray, float]] = []
    for i, size in enumerate(groups):
        labels = [int(d) for d in rng.integers(0, 10, size)]
        items += digit_items(digit_masks(sources, labels, height, pen, rng), labels, height, rng)
        if i == len(groups) - 1:
            break
        if dashed:
            items[-1] = (*items[-1][:2], height * rng.uniform(0.15, 0.35))
            items.append((None, dash_mask(height, pen, rng), height * rng.uniform(0.15, 0.35)))
        else:
            items[-1] = (*items[-1][:2], height * rng.uniform(0.8, 1.3))
    return items


def dash_mask(height: float, pen: float | None, rng: np.random.Generator) -> np.ndarray:
    """Draw a short hand-written dash: a slightly tilted stroke at mid-height of a digit-tall mask."""
    width = max(2.0, pen or height * 0.09)
    length = height * rng.uniform(0.25, 0.45)
    size = (round(length + 2 * width) + 2, round(height))
    mid = height * rng.uniform(0.45, 0.6)
    tilt = length * rng.uniform(-0.1, 0.1)
    points = np.array([[width, mid + tilt], [width + length, mid - tilt]], np.float32)
    return rasterise([(points, width)], size).astype(np.float32) / 255


def plan_grid(sources: PageSources, rng: np.random.Generator, shape: tuple[int, int]) -> Plan:
    """Plan a test sheet: 0-9 written row after row, or random digits, scattered on an unprinted grid."""
    columns = int(rng.integers(4, 11))
    height = digit_height(rng, shape, per_line=columns)
    pitch_x = min(height * rng.uniform(1.5, 2.6), shape[1] * (1 - 2 * MARGIN) / columns)
    pitch_y = height * rng.uniform(1.7, 2.6)
    rows = max(1, min(int(rng.integers(2, 7)), int(shape[0] * (1 - 2 * MARGIN) // pitch_y)))
    counting = rng.random() < 0.6  # "write 0 to 9" as a test, else any digits
    pen = syn.choose_pen(height, rng)
    left = shape[1] * MARGIN + rng.uniform(0, max(shape[1] * (1 - 2 * MARGIN) - columns * pitch_x, 0))
    top = shape[0] * MARGIN + rng.uniform(0, max(shape[0] * (1 - 2 * MARGIN) - rows * pitch_y, 0))
    lines = []
    for r in range(rows):
        labels = [(c % 10) if counting else int(rng.integers(10)) for c in range(columns)]
        masks = digit_masks(sources, labels, height, pen, rng)
        cells = [(left + c * pitch_x, top + r * pitch_y) for c in range(columns)]
        lines.append(
            [
                scatter(d, m, cell, (pitch_x, pitch_y), rng)
                for d, m, cell in zip(labels, masks, cells, strict=True)
            ]
        )
    return Plan(shape, lines, height)


def scatter(
    digit: int,
    mask: np.ndarray,
    cell: tuple[float, float],
    pitch: tuple[float, float],
    rng: np.random.Generator,
) -> Placed:
    """Place a digit in its grid cell, off its centre by a little (never into the next row)."""
    mask = syn.rotate_mask(mask, rng.uniform(-8, 8))
    free_x = max(pitch[0] - mask.shape[1], 0) * 0.4
    x = cell[0] + (pitch[0] - mask.shape[1]) / 2 + rng.uniform(-free_x, free_x)
    y = cell[1] + (pitch[1] - mask.shape[0]) / 2 + rng.uniform(-0.12, 0.12) * mask.shape[0]
    return Placed(digit, mask, round(x), round(y))


def plan_form(sources: PageSources, rng: np.random.Generator, shape: tuple[int, int]) -> Plan:
    """Plan a printed form: rows of boxes (joined cells or separate boxes), one digit in each."""
    columns = int(rng.integers(4, 13))
    height = digit_height(rng, shape, per_line=columns)
    cell = (height * rng.uniform(1.15, 1.6), height * rng.uniform(1.2, 1.6))  # w, h
    gap = 0.0 if rng.random() < 0.5 else height * rng.uniform(0.2, 0.8)  # joined cells, or separate boxes
    columns = max(1, min(columns, int(shape[1] * (1 - 2 * MARGIN) // (cell[0] + gap))))
    row_pitch = cell[1] + height * rng.uniform(0.4, 1.5)
    rows = max(1, min(int(rng.integers(2, 9)), int(shape[0] * (1 - 2 * MARGIN) // row_pitch)))
    printed = np.zeros(shape, np.float32)
    thickness = int(rng.integers(1, 4))
    pen = syn.choose_pen(height * 0.85, rng)
    left = shape[1] * MARGIN
    top = shape[0] * MARGIN + rng.uniform(0, max(shape[0] * (1 - 2 * MARGIN) - rows * row_pitch, 0))
    lines = []
    for r in range(rows):
        labels = [int(d) for d in rng.integers(0, 10, columns)]
        masks = digit_masks(sources, labels, height * 0.85, pen, rng)
        line = []
        for c, (digit, mask) in enumerate(zip(labels, masks, strict=True)):
            x, y = left + c * (cell[0] + gap), top + r * row_pitch
            draw_box(printed, (x, y, *cell), thickness)
            line.append(in_box(digit, mask, (x, y, *cell), rng))
        lines.append(line)
    return Plan(shape, lines, height * 0.85, printed=printed)


def plan_big_grid(
    sources: PageSources, rng: np.random.Generator, shape: tuple[int, int], grid: tuple[int, int]
) -> Plan:
    """Plan a sheet filled with `grid` (rows, columns) digits scattered on an unprinted grid."""
    rows, columns = grid
    pitch = (shape[1] * (1 - 2 * MARGIN) / columns, shape[0] * (1 - 2 * MARGIN) / rows)
    height = min(0.6 * pitch[0], 0.55 * pitch[1], DIGIT_HEIGHTS[1])
    pen = syn.choose_pen(height, rng)
    lines = []
    for r in range(rows):
        labels = [int(d) for d in rng.integers(0, 10, columns)]
        masks = digit_masks(sources, labels, height, pen, rng)
        cells = [(shape[1] * MARGIN + c * pitch[0], shape[0] * MARGIN + r * pitch[1]) for c in range(columns)]
        lines.append(
            [scatter(d, m, cell, pitch, rng) for d, m, cell in zip(labels, masks, cells, strict=True)]
        )
    return Plan(shape, lines, height)


def plan_big_form(
    sources: PageSources, rng: np.random.Generator, shape: tuple[int, int], grid: tuple[int, int]
) -> Plan:
    """Plan a form filling the sheet with `grid` (rows, columns) joined printed cells, a digit in each."""
    rows, columns = grid
    cell_w = shape[1] * (1 - 2 * MARGIN) / columns
    row_pitch = shape[0] * (1 - 2 * MARGIN) / rows
    cell = (cell_w, row_pitch * 0.8)
    height = min(cell[0], cell[1]) / 1.3
    printed = np.zeros(shape, np.float32)
    pen = syn.choose_pen(height, rng)
    lines = []
    for r in range(rows):
        labels = [int(d) for d in rng.integers(0, 10, columns)]
        masks = digit_masks(sources, labels, height, pen, rng)
        line = []
        for c, (digit, mask) in enumerate(zip(labels, masks, strict=True)):
            box = (shape[1] * MARGIN + c * cell_w, shape[0] * MARGIN + r * row_pitch, *cell)
            draw_box(printed, box, 3)
            line.append(in_box(digit, mask, box, rng))
        lines.append(line)
    return Plan(shape, lines, height, printed=printed)


def draw_box(printed: np.ndarray, box: tuple[float, float, float, float], thickness: int) -> None:
    """Print a box's outline (x, y, w, h) into a cover mask with anti-aliased lines."""
    x, y, w, h = (round(v) for v in box)
    cover = np.zeros((h + 2 * thickness + 1, w + 2 * thickness + 1), np.uint8)
    cv2.rectangle(cover, (thickness, thickness), (thickness + w, thickness + h), 255, thickness, cv2.LINE_AA)
    y0, x0 = y - thickness, x - thickness
    region = printed[y0 : y0 + cover.shape[0], x0 : x0 + cover.shape[1]]
    np.maximum(region, cover[: region.shape[0], : region.shape[1]] / 255, out=region)


def in_box(
    digit: int, mask: np.ndarray, box: tuple[float, float, float, float], rng: np.random.Generator
) -> Placed:
    """Place a digit in its printed box: mostly inside, one in four pushed onto a side of the box."""
    x, y, w, h = box
    mask = syn.rotate_mask(mask, rng.uniform(-5, 5))
    free_x, free_y = w - mask.shape[1], h - mask.shape[0]
    dx, dy = free_x / 2 + rng.uniform(-0.3, 0.3) * max(free_x, 0), free_y / 2
    if rng.random() < 0.25:  # touching: the stroke runs into the printed line
        side = int(rng.integers(4))
        push = rng.uniform(1, 4)
        dx = [-push, free_x + push, dx, dx][side]
        dy = [dy, dy, -push, free_y + push][side]
    return Placed(digit, mask, round(x + dx), round(y + dy))


def plan_words(sources: PageSources, rng: np.random.Generator, shape: tuple[int, int]) -> Plan:
    """Plan 1-4 digit rows with a line of handwritten words above them or between two of them."""
    if not sources.letters:
        raise ValueError("The words kind needs UNIPEN letters (PageSources.load with a letters file).")
    height = digit_height(rng, shape)
    pen = syn.choose_pen(height, rng)
    count = lines_that_fit(shape, height, int(rng.integers(2, 6)))
    rows = []
    for _ in range(max(count - 1, 1)):
        labels = [int(d) for d in rng.integers(0, 10, int(rng.integers(3, 11)))]
        rows.append(digit_items(digit_masks(sources, labels, height, pen, rng), labels, height, rng))
    words_at = int(rng.integers(0, len(rows)))  # above the first row, or between two rows
    rows.insert(words_at, word_items(sources, height, pen, rng))
    return Plan(shape, stack_lines(rows, shape, height, rng), height)


def word_items(
    sources: PageSources, height: float, pen: float | None, rng: np.random.Generator
) -> list[tuple[int | None, np.ndarray, float]]:
    """Write 1-3 words of 2-7 letters of one UNIPEN writer, letter gaps narrow and word gaps wide."""
    writer = sources.letters[int(rng.integers(len(sources.letters)))][2]
    own = [s for s in sources.letters if s[2] == writer] or list(sources.letters)
    width = max(2.0, pen or height * 0.09)
    items: list[tuple[int | None, np.ndarray, float]] = []
    for _ in range(int(rng.integers(1, 4))):
        for _ in range(int(rng.integers(2, 8))):
            strokes = own[int(rng.integers(len(own)))][1]
            items.append((None, letter_mask(strokes, height * rng.uniform(0.55, 1.0), width), height * 0.12))
        items[-1] = (None, items[-1][1], height * rng.uniform(0.7, 1.2))
    return items


def letter_mask(strokes: Sequence[np.ndarray], height: float, pen: float) -> np.ndarray:
    """Rasterise a pen trajectory (y down) `height` px tall (width at most 1.3 x height): float32 (h, w)."""
    every = np.concatenate(strokes)
    low, extent = every.min(axis=0), np.maximum(np.ptp(every, axis=0), 1e-6)
    scale = min(height / extent[1], 1.3 * height / extent[0])
    size = (round(extent[0] * scale + 2 * pen) + 2, round(extent[1] * scale + 2 * pen) + 2)
    moved = [(s - low) * scale + pen + 1 for s in strokes]
    return rasterise([(s, pen) for s in moved], size).astype(np.float32) / 255


PLANNERS: dict[str, Callable[[PageSources, np.random.Generator, tuple[int, int]], Plan]] = {
    "rows": plan_rows,
    "grid": plan_grid,
    "form": plan_form,
    "words": plan_words,
    "phone": plan_phone,
}

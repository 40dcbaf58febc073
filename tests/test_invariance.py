"""Invariance of the ink pipeline: one digit drawn at any size, pen, polarity or encoding reads the same.

Each of 30 MNIST *test* digits (chosen by seed among those the reference rendering reads right) is
thinned to a skeleton and redrawn with a round pen of a controlled width: the skeleton's pixel
links become sub-pixel line segments at the target size, and the ink is the anti-aliased band of
`pen` px around them (a distance transform), so the stroke width is exact at any size. The
reference rendering is the digit 200 px tall with a 24 px pen (MNIST's 12%) in a 280 px frame,
dark on white, passed as a grey array. A variant redraws it with

- stroke width from 1 px to a fifth of the digit's height,
- digit height from 16 px to the full frame (a digit wider than the frame is shrunk to fit it),
- square frame side from 28 px to 4000 px (the 1000-4000 px frames draw few examples: they are slow),
- dark on light or light on dark,
- an opaque grey array, or an RGBA canvas with a transparent background (ink in the alpha channel),
- or JPEG bytes at quality 30-95 (opaque only: JPEG has no alpha).

Measure: the cosine similarity of the variant's 28x28 (`Recognizer.predict(x).input28`) and the
reference's, both blurred with a Gaussian of sigma 1 px of the 28x28, so that a stroke a little
wider or a pixel off still counts as close. Bar: >= 0.85, and the digit read must equal the
reference's (the label: only digits whose reference reads right are chosen). Measured: in the
passing regions below the blurred cosine stays >= 0.86 (>= 0.93 at MNIST's pen, 12% of the
height), while a digit read wrong or lost scores 0.0-0.6 (0 when `EmptyImageError` is raised);
between references, other writers' digits of the same class score a median 0.82 and other
classes 0.62 (max 0.91). So the bar says "closer to its reference than another writer's same
digit"; the digit check catches the remaining cases.

Hypothesis draws the sizes log-uniformly on an integer grid (it favours the low ends: small
frames, small digits, thin pens, which are the corners), derandomised with no database, and each
failing region carries one explicit `@example` known to fail, so CI is deterministic (hypothesis
stops at a failing explicit example: the drawn ones run once it is fixed, and the test turns red,
XPASS, only when they all read alike too).

FAILURE MAP (pipeline of commit 21b75c2; grid of 30 digits per cell and 500 random points of the
whole space; scripts and pictures in /tmp/invariance of the session that wrote this):

1. Hairlines, opaque inputs (grey arrays, JPEG) with 1-2 px pens, and pens under 2 working px
   once a 641-4000 px frame is shrunk to 640 px: fixed in the eleventh session. The ink stage's
   3x3 median (against grain and JPEG noise) erased any stroke 1-2 px wide, and read 27-30 of 30
   digits wrong at 1 px, 3-23 at 1.5 px (26 of 30 for 2 px pens in a 4000 px frame). It now
   leaves a hairline pen unsmoothed (`ink.is_hairline`): 0 of 80 random renders over the whole
   region read differently. -> `test_opaque_hairlines_read_alike`, `test_thin_pens_in_big_frames_read_alike`.
2. Small digits, 16-23 px tall: 2-5 of 30 read differently at 16 px (pens 2-3 px), 0-2 of 30 at
   18-22 px, often with loops filled (a 4 read as 0, a 6 as 8); alpha canvases too, a little
   less. From 24 px up: 0 of 30 for every pen tried. -> `test_small_digits_read_alike` (xfail).
3. Bold digits filling the frame: a digit 90-100% of its frame tall with a pen of 15-20% of its
   height (ink over 40-50% of the image) reads wrong for 4-11 of 30 opaque renders in 28-2000 px
   frames: polarity flips near half ink (the paper taken for ink), or the 28x28 loses its body
   (similarity 0.5-0.8). RGBA canvases pass except at ~32 px frames. At 85% of the frame or a
   pen of 12%: 0 of 30. -> `test_bold_digits_filling_the_frame_read_alike` (xfail).

Everything else reads alike (normal tests): either polarity (identical 28x28s), alpha or opaque,
JPEG 30-95 (similarity >= 0.99 at 280 px, >= 0.94 at 28 px), frames 28-4000 px with MNIST's pen
and heights from 16 px to the full frame, small digits in 1000-4000 px frames (re-read at full
resolution), and pens from 2 px to a fifth of the height wherever the cases above do not apply.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from mnist_bot.data import Mnist
from mnist_bot.errors import EmptyImageError
from mnist_bot.recognizer import Recognizer
from mnist_bot.training.synthetic import crop_to_ink, thin

pytestmark = pytest.mark.slow

DIGITS = 30
SEED = 2026
BAR = 0.85
SKELETON_HEIGHT = 96  # px: the digit is thinned at this height, then redrawn at any size from segments
SUBPIXEL_BITS = 4  # cv2.line's fixed-point shift: segment ends placed to 1/16 px
WORK_SIDE_PEN = 2.0  # working px: a pen at least this wide once a big frame is shrunk reads alike
BOLD_FILL = 0.85  # a digit at least this share of its frame tall fills it...
BOLD_PEN = 0.12  # ...and a pen wider than this share of its height makes it a bold blot
ZOOMED_WORK_PX = 30  # working px: a digit no taller is re-read at full size (under preprocess.SMALL_INK_SIDE)


@dataclass(frozen=True)
class Render:
    """How to draw a digit (`height` px tall, `pen` px wide, in a `side` px square frame) and encode it."""

    height: int
    pen: float
    side: int
    light: bool = False  # light ink on a dark background
    alpha: bool = False  # RGBA with a transparent background
    jpeg: int | None = None  # JPEG quality, None for an array


REFERENCE = Render(height=200, pen=24.0, side=280)


@dataclass(frozen=True)
class Digit:
    """One MNIST test digit: its index, label, skeleton and the 28x28 its reference rendering gives."""

    index: int
    label: int
    skeleton: np.ndarray
    reference28: np.ndarray


class Digits(list[Digit]):
    """The chosen digits, printed by MNIST index: hypothesis prints its arguments with a counterexample."""

    def __repr__(self) -> str:
        """Name the digits, not their arrays."""
        return f"Digits(MNIST test {[d.index for d in self]})"


def skeleton(digit28: np.ndarray) -> np.ndarray:
    """Thin a uint8 (28, 28) ink=255 MNIST digit, smoothly enlarged, to a bool one-pixel skeleton, cropped."""
    crop = np.pad(crop_to_ink(digit28), 2).astype(np.float32) / 255.0
    scale = SKELETON_HEIGHT / max(crop.shape[0] - 4, 1)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    big = cv2.GaussianBlur(cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC), (0, 0), 0.6 * scale)
    bones = thin(big > 0.4)
    rows, cols = np.flatnonzero(bones.any(axis=1)), np.flatnonzero(bones.any(axis=0))
    return bones[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def segments(bones: np.ndarray) -> np.ndarray:
    """Return the skeleton as float64 (n, 2, 2) segments (x, y ends) joining 8-neighbouring pixels."""
    ys, xs = np.nonzero(bones)
    on = set(zip(ys.tolist(), xs.tolist(), strict=True))
    ends = [((x, y), (x, y)) for y, x in on]  # lone pixels are dots
    for y, x in on:
        ends += [
            ((x, y), (x + dx, y + dy))
            for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1))
            if (y + dy, x + dx) in on
        ]
    return np.asarray(ends, np.float64)


def draw_ink(bones: np.ndarray, height: int, pen: float, side: int) -> np.ndarray:
    """Draw a skeleton `height` px tall with a round `pen` px wide, centred in a side x side frame."""
    rows, cols = bones.shape
    scale = (height - pen) / max(rows - 1, 1)
    if cols > 1:  # a digit wider than the frame is shrunk to fit it
        scale = min(scale, (side - pen) / (cols - 1))
    margin = int(np.ceil(pen / 2)) + 2
    shape = (
        int(np.ceil((rows - 1) * scale)) + 2 * margin + 1,
        int(np.ceil((cols - 1) * scale)) + 2 * margin + 1,
    )
    lines = np.full(shape, 255, np.uint8)
    fixed = np.round((segments(bones) * scale + margin) * (1 << SUBPIXEL_BITS)).astype(np.int64)
    for (x0, y0), (x1, y1) in fixed:
        cv2.line(lines, (int(x0), int(y0)), (int(x1), int(y1)), 0, 1, cv2.LINE_8, SUBPIXEL_BITS)
    distance = cv2.distanceTransform(lines, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return centred(np.clip(pen / 2 + 0.5 - distance, 0.0, 1.0).astype(np.float32), side)


def centred(stroke: np.ndarray, side: int) -> np.ndarray:
    """Crop float32 ink to its box and paste it in the middle of an empty side x side frame."""
    rows, cols = np.flatnonzero(stroke.any(axis=1)), np.flatnonzero(stroke.any(axis=0))
    stroke = stroke[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1][:side, :side]
    frame = np.zeros((side, side), np.float32)
    top, left = (side - stroke.shape[0]) // 2, (side - stroke.shape[1]) // 2
    frame[top : top + stroke.shape[0], left : left + stroke.shape[1]] = stroke
    return frame


def encode(ink: np.ndarray, render: Render) -> np.ndarray | bytes:
    """Turn float32 ink into the input a front end passes: a grey array, an RGBA canvas or JPEG bytes."""
    level = np.round(ink * 255).astype(np.uint8)
    if render.alpha:  # as ipycanvas returns it: pen colour where there is ink, transparent black elsewhere
        canvas = np.zeros((*level.shape, 4), np.uint8)
        canvas[level > 0, :3] = 255 if render.light else 0
        canvas[..., 3] = level
        return canvas
    grey = level if render.light else 255 - level
    if render.jpeg is None:
        return grey
    buffer = io.BytesIO()
    Image.fromarray(grey).convert("RGB").save(buffer, format="JPEG", quality=render.jpeg)
    return buffer.getvalue()


def seen28(recognizer: Recognizer, bones: np.ndarray, render: Render) -> tuple[np.ndarray, int | None]:
    """Return the 28x28 the model sees and the digit read (blank and None when no digit is found)."""
    image = encode(draw_ink(bones, render.height, render.pen, render.side), render)
    try:
        prediction = recognizer.predict(image)
    except EmptyImageError:
        return np.zeros((28, 28), np.float32), None
    return prediction.input28, prediction.digit


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Return the cosine similarity of two (28, 28) inputs, each blurred with a Gaussian of sigma 1 px."""
    a, b = (cv2.GaussianBlur(x.astype(np.float32), (0, 0), 1.0).ravel() for x in (a, b))
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norms if norms > 0 else 0.0


@pytest.fixture(scope="module")
def digits(mnist: Mnist, recognizer: Recognizer) -> Digits:
    """Pick the test digits by seed, keeping those whose reference rendering is read right."""
    chosen = Digits()
    for index in np.random.default_rng(SEED).permutation(len(mnist.test.labels)):
        label, bones = int(mnist.test.labels[index]), skeleton(mnist.test.images[index])
        reference28, digit = seen28(recognizer, bones, REFERENCE)
        if digit == label:
            chosen.append(Digit(int(index), label, bones, reference28))
        if len(chosen) == DIGITS:
            return chosen
    raise AssertionError("too few MNIST test digits read right at the reference rendering")


# ---------------------------------------------------------------- the space, region by region

Span = tuple[float, float]
OPAQUE = ("grey", "jpeg")
ANY = ("grey", "alpha", "jpeg")
GRID = 1000  # steps of a log-uniform draw
WORK_SIDE = 640  # the pipeline analyses a bigger frame shrunk to this side (mnist_bot.preprocess.WORK_SIDE)


def log_uniform(draw: st.DrawFn, span: Span) -> float:
    """Draw from [low, high] with small values as likely as large ones (sizes span two decades)."""
    # An integer grid spreads the draws: hypothesis's floats cling to the bounds of their range.
    low, high = span
    share = draw(st.integers(0, GRID)) / GRID
    return float(min(high, max(low, low * (high / low) ** share)))


@st.composite
def renders(
    draw: st.DrawFn,
    sides: Span,
    heights: Callable[[int], Span],
    pens: Callable[[int, int], Span],
    encodings: tuple[str, ...] = ANY,
) -> Render:
    """Draw a Render: a side in `sides`, then a height in `heights(side)`, a pen in `pens(side, height)`."""
    side = round(log_uniform(draw, sides))
    height = round(log_uniform(draw, heights(side)))
    pen = log_uniform(draw, pens(side, height))
    encoding = draw(st.sampled_from(encodings))
    jpeg = draw(st.integers(30, 95)) if encoding == "jpeg" else None
    return Render(height, pen, side, draw(st.booleans()), encoding == "alpha", jpeg)


def whole_frame(low: float) -> Callable[[int], Span]:
    """Heights from `low` px to the full frame."""
    return lambda side: (low, side)


def up_to_fifth(low: Callable[[int], float]) -> Callable[[int, int], Span]:
    """Pens from `low(side)` px to a fifth of the digit's height."""
    return lambda side, height: (low(side), height / 5)


def zoomed_if_big(side: int) -> Span:
    """Heights from 24 px to the frame, or, in a frame bigger than the working side, to a re-read size."""
    return (24, side if side <= WORK_SIDE else ZOOMED_WORK_PX / working_px(side))


def up_to_fifth_unless_filling(low: Callable[[int], float]) -> Callable[[int, int], Span]:
    """Pens from `low(side)` px to a fifth of the height, to BOLD_PEN of it for a digit filling its frame."""
    return lambda side, height: (low(side), height * (BOLD_PEN if height >= BOLD_FILL * side else 0.2))


def working_px(side: int) -> float:
    """Return how many working pixels one input pixel of a `side` px frame becomes."""
    return min(1.0, WORK_SIDE / side)


def check_reads_alike(recognizer: Recognizer, digit: Digit, render: Render) -> None:
    """Assert a rendering's 28x28 is close to the reference's and reads as the same digit."""
    seen, read = seen28(recognizer, digit.skeleton, render)
    score = similarity(seen, digit.reference28)
    assert read == digit.label, f"MNIST test #{digit.index} ({digit.label}) read as {read} at {render}"
    assert score >= BAR, f"MNIST test #{digit.index}: similarity {score:.3f} < {BAR} at {render}"


# Deterministic for CI: derandomised, no example database; rendering a 4000 px frame takes a while.
COMMON = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow],
)


def passing(examples: int) -> settings:
    """Settings for a region that reads alike: shrink a counterexample if one turns up."""
    return settings(COMMON, max_examples=examples)


def failing(examples: int) -> settings:
    """Settings for a known failing region: one counterexample is enough, shrinking would only spend time."""
    return settings(
        COMMON, max_examples=examples, phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False
    )


which = st.integers(0, DIGITS - 1)


# ---------------------------------------------------------------- passing regions


@passing(100)
@given(which, renders((28, WORK_SIDE), whole_frame(24), up_to_fifth_unless_filling(lambda side: 2.0)))
def test_frames_up_to_working_side_read_alike(
    recognizer: Recognizer, digits: Digits, k: int, render: Render
) -> None:
    """Frames of 28-640 px, digits from 24 px to the frame, pens from 2 px: any polarity and encoding."""
    check_reads_alike(recognizer, digits[k], render)


@passing(50)
@given(
    which,
    renders((28, 4000), zoomed_if_big, up_to_fifth_unless_filling(lambda side: 1.0), encodings=("alpha",)),
)
def test_canvas_hairlines_read_alike(recognizer: Recognizer, digits: Digits, k: int, render: Render) -> None:
    """A transparent canvas (ink in alpha) reads alike with 1 px pens; big frames when re-read full size."""
    check_reads_alike(recognizer, digits[k], render)


@passing(10)
@given(
    which,
    renders(
        (WORK_SIDE + 1, 4000),
        lambda side: (max(24, 5 * WORK_SIDE_PEN / working_px(side)), side),
        up_to_fifth_unless_filling(lambda side: WORK_SIDE_PEN / working_px(side)),
    ),
)
def test_big_frames_read_alike(recognizer: Recognizer, digits: Digits, k: int, render: Render) -> None:
    """Frames of 641-4000 px whose pen stays at least 2 px once the frame is shrunk to its working side."""
    check_reads_alike(recognizer, digits[k], render)


@passing(10)
@given(
    which,
    renders((WORK_SIDE + 1, 4000), zoomed_if_big, up_to_fifth(lambda side: 2.0)),
)
def test_small_digit_in_big_frame_reads_alike(
    recognizer: Recognizer, digits: Digits, k: int, render: Render
) -> None:
    """A digit under 30 working px in a 641-4000 px frame is re-read at full resolution: pens from 2 px."""
    check_reads_alike(recognizer, digits[k], render)


@passing(30)
@example(0, Render(100, 1.0, 280))  # MNIST test #7835, a 0: the median kept one arc, read as a 1
@given(which, renders((28, 4000), whole_frame(24), lambda side, height: (1.0, 2.0), encodings=OPAQUE))
def test_opaque_hairlines_read_alike(recognizer: Recognizer, digits: Digits, k: int, render: Render) -> None:
    """Opaque images (grey arrays, JPEG) drawn with a 1-2 px pen, digits from 24 px (smaller: item 2)."""
    check_reads_alike(recognizer, digits[k], render)


@passing(8)
@example(0, Render(2800, 2.0, 4000))  # MNIST test #7835, a 0: the median kept one arc, read as a 1
@given(
    which,
    renders(
        (WORK_SIDE + 1, 4000),
        lambda side: (ZOOMED_WORK_PX / working_px(side), side),
        lambda side, height: (1.0, min(height / 5, WORK_SIDE_PEN / working_px(side))),
    ),
)
def test_thin_pens_in_big_frames_read_alike(
    recognizer: Recognizer, digits: Digits, k: int, render: Render
) -> None:
    """A digit too big to be re-read at full size, its pen under 2 working px, in a 641-4000 px frame."""
    check_reads_alike(recognizer, digits[k], render)


# ---------------------------------------------------------------- failing regions (FAILURE MAP)


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="small digit: 16-23 px digits change their reading for 3-17% of MNIST digits",
)
@failing(60)
@example(4, Render(16, 3.0, 280))  # MNIST test #6700, a 4: its loop fills, read as a 0
@given(which, renders((28, 4000), lambda side: (16, 23), up_to_fifth(lambda side: 1.0)))
def test_small_digits_read_alike(recognizer: Recognizer, digits: Digits, k: int, render: Render) -> None:
    """Digits 16-23 px tall, any pen, frame, polarity and encoding."""
    check_reads_alike(recognizer, digits[k], render)


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="bold filling the frame: a bold digit as tall as its frame reads as another",
)
@failing(15)
@example(8, Render(64, 12.8, 64))  # MNIST test #9321, an 8, read as a 0
@given(
    which,
    renders(
        (28, 4000),
        lambda side: (BOLD_FILL * side, side),
        lambda side, height: (BOLD_PEN * height, height / 5),
    ),
)
def test_bold_digits_filling_the_frame_read_alike(
    recognizer: Recognizer, digits: Digits, k: int, render: Render
) -> None:
    """A digit 85-100% of its frame tall drawn with a pen 12-20% of its height: ink over 40% of the image."""
    check_reads_alike(recognizer, digits[k], render)

"""Recognizer: preprocessing plus a model runtime, behind the public API."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mnist_bot import layout, preprocess, render, segment
from mnist_bot.blobs import Box
from mnist_bot.config import load_settings, resolve_model_path
from mnist_bot.decode import ImageInput
from mnist_bot.errors import EmptyImageError
from mnist_bot.preprocess import PreparedDigit
from mnist_bot.runtime import Runtime, load_runtime

# Calibrated on MNIST validation digits and synthetic photos: below these the answer is a guess.
MIN_CONFIDENCE = 0.60
MIN_MARGIN = 0.40
WHOLE_MARGIN = 0.2  # a line's ink read as one digit wins when this much surer than its weakest part
PAGE_WHOLE_MARGIN = 0.05  # a page's ink read as one digit wins when this much likelier than all its lines
# A group cut into pieces wins when their joint log-probability beats the whole's by more than this
# (nats). Chosen on generated data (benchmarks/split_margin.py): a larger margin loses touching
# digits, a negative one (ties go to the cut) splits plain numbers' digits and single ones.
SPLIT_MARGIN = 0.0
# A lone group is far more often one digit (a wide 9, a 1 with its flag) than two touching: its cut
# must be twice as likely as the whole.
LONE_SPLIT_MARGIN = math.log(2)
ORIENTATION_SAMPLE = 32  # digits read each way up to choose the page's way up
# Digits read upside down or sideways are mostly guesses, but a few (0, 1, 8) read as well either
# way: a turned page must read clearly better than upright, and a page read well upright is not turned.
UPRIGHT_BONUS = 0.1  # nats of mean log-confidence a turned page must gain to be read turned
SURELY_UPRIGHT = float(np.log(0.9))  # a page reading at least this well upright is taken as it stands
# The shipped model's reject head (`mnist-bot train-reject`) answers P(digit) beside the ten
# probabilities; the model's .json holds the rule chosen on held-out writers ("reject": low, doubtful).
# A line of words is told by its median cut-out's P(digit), not by each letter alone: single letters
# often pass the per-cut-out rule (tuned to lose almost no digit), but few of a word's do. On the
# page benchmark's lines (seed 0, 20 pages a kind, real sheets too) digit lines' medians were >= 0.58
# (1% under 0.86) and word lines' <= 0.17. A model's .json may set its own ("reject": words).
WORD_LINE_P_DIGIT = 0.3
PEER_HEIGHTS = (0.75, 1.33)  # a cut-out this tall against its line's sure digits may be one of them
MIN_WORD_LETTERS = 3  # fewer cut-outs than this are judged one by one
NOT_A_DIGIT = "That doesn't look like a digit to me; try writing one digit, large and clear."

# The fast path's test of "already MNIST": every MNIST digit passes it with room to spare (its centre
# of mass is within 0.5 px of the centre, its ink box 19-20 px, 55-96% of its pixels exactly 0).
FAST_MAX_OFFSET = 1.0  # px between the centre of mass and MNIST's centre
FAST_BOX_SIDES = (17, 21)  # longer side of the box of visible ink (above FAST_INK_LEVEL), in px
FAST_INK_LEVEL = 0.05
FAST_MIN_DARK = 0.5  # share of pixels that are black (under FAST_INK_LEVEL): light ink on black
FAST_MIN_PEAK = 0.9  # the brightest ink is near white, as MNIST's
_PIXEL_ROWS_COLS = np.indices((28, 28)).reshape(2, -1).astype(np.float32)  # for the centre of mass


@dataclass(frozen=True)
class Prediction:
    """One digit's answer and what the model saw."""

    digit: int
    confidence: float
    probabilities: tuple[float, ...]
    unsure: bool
    input28: np.ndarray  # (28, 28) float32 in [0, 1]
    box: Box | None = None  # where the digit was found in the input, in input pixels
    digit_probability: float = 1.0  # the reject head's P(this is a digit at all); 1.0 without one

    def ranked(self, top: int = 3) -> list[tuple[int, float]]:
        """Return the `top` (digit, probability) pairs, most likely first."""
        order = np.argsort(self.probabilities)[::-1][:top]
        return [(int(d), float(self.probabilities[d])) for d in order]

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON-friendly fields of the CLI contract."""
        return {
            "digit": self.digit,
            "confidence": round(self.confidence, 6),
            "probabilities": [round(p, 6) for p in self.probabilities],
            "unsure": self.unsure,
        }


@dataclass(frozen=True)
class NumberReading:
    """A multi-digit number read left to right."""

    text: str
    digits: list[Prediction]

    @property
    def unsure(self) -> bool:
        """Whether any digit of the number is unsure."""
        return any(p.unsure for p in self.digits)

    @property
    def confidence(self) -> float:
        """Probability that every digit is right, assuming independence."""
        return float(np.prod([p.confidence for p in self.digits]))


@dataclass(frozen=True)
class PageReading:
    """Every digit an image holds, as lines top to bottom, each read left to right.

    One digit and one number are pages of one line. Boxes are in the input's own pixels, also
    when the page was read turned (`rotation`, degrees counter-clockwise it was turned to read).
    """

    lines: list[NumberReading]
    rotation: int = 0

    @property
    def digits(self) -> list[Prediction]:
        """Return every digit in reading order."""
        return [p for line in self.lines for p in line.digits]

    @property
    def text(self) -> str:
        """Return the lines' texts joined by newlines."""
        return "\n".join(line.text for line in self.lines)

    @property
    def unsure(self) -> bool:
        """Whether any digit of the page is unsure."""
        return any(line.unsure for line in self.lines)

    @property
    def confidence(self) -> float:
        """Probability that every digit is right, assuming independence."""
        return float(np.prod([p.confidence for p in self.digits]))


def is_unsure(probabilities: np.ndarray, digit_like: bool) -> bool:
    """Flag low confidence, a small top-two margin, or an input that does not look like a digit."""
    top_two = np.sort(probabilities)[-2:]
    return bool(top_two[1] < MIN_CONFIDENCE or top_two[1] - top_two[0] < MIN_MARGIN or not digit_like)


def _prediction(prepared: PreparedDigit, probabilities: np.ndarray, p_digit: float = 1.0) -> Prediction:
    """Build a Prediction from model output for one prepared digit."""
    probabilities = probabilities / probabilities.sum()
    digit = int(np.argmax(probabilities))
    return Prediction(
        digit=digit,
        confidence=float(probabilities[digit]),
        probabilities=tuple(float(p) for p in probabilities),
        unsure=is_unsure(probabilities, prepared.digit_like),
        input28=prepared.input28,
        box=prepared.box,
        digit_probability=p_digit,
    )


@dataclass(frozen=True)
class RejectRule:
    """When a cut-out is no digit: P(digit) under `low`, or under `doubtful` with an unsure answer.

    Alone in its image (one digit, or one line) a cut-out is turned away only under `alone`, or
    under `alone_doubtful` with an unsure answer: levels under which no calibration digit fell,
    since there turning away a digit fails the whole answer.
    A page's line of MIN_WORD_LETTERS or more cut-outs whose median P(digit) is under `words` is
    words (or marks), and goes whole.
    """

    low: float
    doubtful: float
    alone: float = 0.0
    words: float = 0.0
    alone_doubtful: float = 0.0

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> RejectRule | None:
        """Read the rule from a model's metadata; None for a model without a reject head's rule."""
        rule = metadata.get("reject")
        if not isinstance(rule, dict) or "low" not in rule:
            return None
        low = float(rule["low"])
        doubtful, alone = float(rule.get("doubtful", low)), float(rule.get("alone", low))
        alone_doubtful = max(alone, float(rule.get("alone_doubtful", alone)))
        return cls(low, doubtful, alone, float(rule.get("words", WORD_LINE_P_DIGIT)), alone_doubtful)

    def rejects(self, prediction: Prediction, on_page: bool = True) -> bool:
        """Tell whether a prediction's cut-out is no digit (a letter, a mark, a shadow)."""
        p_digit = prediction.digit_probability
        low, doubtful = (self.low, self.doubtful) if on_page else (self.alone, self.alone_doubtful)
        if p_digit < low:
            return True
        # "Unsure" as the rule was calibrated: from the probabilities alone, not the shape checks.
        return p_digit < doubtful and is_unsure(np.asarray(prediction.probabilities), digit_like=True)

    def rejects_line(self, line: list[Prediction]) -> bool:
        """Tell whether a page's line of cut-outs is words or marks: its median P(digit) is under `words`."""
        if len(line) < MIN_WORD_LETTERS:
            return False
        return float(np.median([p.digit_probability for p in line])) < self.words


def vouched_for(prediction: Prediction, peers: list[Prediction], line_length: int) -> bool:
    """Tell whether a line's surely read digits vouch for a cut-out: read surely, and as tall as they are.

    They must be at least two and half the line, so a word is not vouched for by a letter or two.
    """
    if prediction.unsure or prediction.box is None or len(peers) < max(2, line_length / 2):
        return False
    heights = [p.box.h for p in peers if p.box is not None]
    typical = float(np.median(heights)) if heights else 0.0
    return PEER_HEIGHTS[0] * typical <= prediction.box.h <= PEER_HEIGHTS[1] * typical


def mean_log_confidence(confidences: list[float]) -> float:
    """Return the mean log of confidences, each floored at 0.001 so one wild guess does not decide."""
    return float(np.mean(np.log(np.maximum(confidences, 1e-3))))


def reads_as_well(upright: PageReading | None, turned: PageReading | None) -> bool:
    """Tell whether a page's digits read upright as many and as surely as turned: then it is not turned.

    The way up is chosen on every cut-out, letters too, and a line of letters may read as surer
    digits upside down (the round ones as 0s); the digits it leaves, once words are dropped, say
    whether turning gained anything.
    """
    if upright is None or turned is None or len(upright.digits) < len(turned.digits):
        return False
    rating = [mean_log_confidence([p.confidence for p in page.digits]) for page in (upright, turned)]
    return rating[0] >= rating[1]


def sample_evenly(items: list[PreparedDigit], count: int) -> list[PreparedDigit]:
    """Return at most `count` items spread evenly over the list."""
    if len(items) <= count:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


def settle_joins(singles: list[Prediction], joined: dict[int, Prediction]) -> list[Prediction]:
    """Replace two neighbours by their join where the pieces are unsure and the whole is sure.

    A thin pen under blur can break one digit in two; each piece alone reads as a weak guess,
    whereas two real digits side by side each read clearly.
    """
    return settle_line(singles, joined, {})


def settle_line(
    singles: list[Prediction],
    joined: dict[int, Prediction],
    cuts: dict[int, tuple[Prediction, ...]],
    rotation: int = 0,
) -> list[Prediction]:
    """Read a line: each group as cut (`cuts`, the winning ones), joined to its neighbour, or alone.

    `rotation` is how far the page was turned to be read (degrees), since boxes are in input pixels.
    """
    digits: list[Prediction] = []
    i = 0
    while i < len(singles):
        join = joined.get(i)
        if i in cuts:
            digits.extend(cuts[i])
            i += 1
        elif (
            join is not None and i + 1 not in cuts and _join_wins(singles[i], singles[i + 1], join, rotation)
        ):
            digits.append(join)
            i += 2
        else:
            digits.append(singles[i])
            i += 1
    return digits


def log_confidence(prediction: Prediction) -> float:
    """Return the log of a reading's confidence, floored at 0.001 as mean_log_confidence does."""
    return float(np.log(max(prediction.confidence, 1e-3)))


def log_likelihood(prediction: Prediction) -> float:
    """Return the log of the chance that a cut-out is a digit and read right: confidence x P(digit).

    The classifier reads most pieces of a digit cut apart (a 0's two halves, a 4's stem) as some
    digit surely; the reject head knows them for no digit. Each floored at 0.001.
    """
    return log_confidence(prediction) + float(np.log(max(prediction.digit_probability, 1e-3)))


Score = Callable[[Prediction], float]


def winning_cuts(
    singles: list[Prediction],
    ways: dict[int, list[tuple[Prediction, ...]]],
    margin: float = SPLIT_MARGIN,
    score: Score = log_likelihood,
) -> dict[int, tuple[Prediction, ...]]:
    """Return, for each group read better cut into pieces (by `margin` nats), the pieces' readings."""
    cuts = {i: best_cut(singles[i], options, margin, score) for i, options in ways.items()}
    return {i: cut for i, cut in cuts.items() if cut is not None}


def best_cut(
    whole: Prediction,
    ways: list[tuple[Prediction, ...]],
    margin: float = SPLIT_MARGIN,
    score: Score = log_likelihood,
) -> tuple[Prediction, ...] | None:
    """Return the likeliest cut of a group when it beats the group read whole by `margin` nats, else None.

    A cut's likelihood is its pieces' joint probability (each piece right, by `score`), so every
    extra piece must read surely to pay for itself: a wide 0 cut in two reads as two weak guesses,
    while two touching digits cut apart each read about as surely as any digit, and read whole as
    a guess.
    """
    scores = [sum(score(p) for p in way) for way in ways]
    best = int(np.argmax(scores))
    return ways[best] if scores[best] > score(whole) + margin else None


@dataclass(frozen=True)
class LineReadings:
    """The model's readings of every alternative of one line (see `alternatives`)."""

    singles: list[Prediction]
    joined: dict[int, Prediction]
    ways: dict[int, list[tuple[Prediction, ...]]]
    whole: Prediction | None


def line_readings(line: segment.NumberLayout, predictions: Iterator[Prediction]) -> LineReadings:
    """Take one line's readings off the predictions of `alternatives`, in the same order."""
    singles = [next(predictions) for _ in line.digits]
    joined = {i: next(predictions) for i in line.joins}
    ways = {i: [tuple(next(predictions) for _ in way) for way in w] for i, w in line.splits.items()}
    whole = next(predictions) if line.whole is not None else None
    return LineReadings(singles, joined, ways, whole)


def settle(
    read: LineReadings,
    digits_of: Callable[[list[Prediction]], list[Prediction]] = lambda digits: digits,
    is_digit: Callable[[Prediction], bool] = lambda p: True,
    margin: float = SPLIT_MARGIN,
    rotation: int = 0,
) -> list[Prediction]:
    """Choose a line's digits among its readings.

    `digits_of` drops what is no digit from the settled line, `is_digit` judges the whole, `margin`
    is a cut's, `rotation` how far the page was turned to be read.
    """
    # Only what may be digits is cut: a group that may be a digit, or (two touching digits are no
    # one digit) a cut whose every piece may be. On a page a line of words has gone whole before
    # this: its letters cut apart would pass for digits.
    whole_digit = {i: is_digit(read.singles[i]) for i in read.ways}
    digit_ways = {
        i: [way for way in ways if whole_digit[i] or all(is_digit(p) for p in way)]
        for i, ways in read.ways.items()
    }
    ways = {i: options for i, options in digit_ways.items() if options}
    # A lone group is far more often one odd digit than two touching ones: its cut is weighed by
    # the readings' confidence alone, since the reject head doubts odd digits (a Swiss 1 with a flag
    # as long as its stem) more than the clean strokes they are cut into. In a line, the pieces of
    # a digit cut apart are no digits to the head, and P(digit) keeps plain digits whole.
    lone = len(read.singles) == 1
    cut_margin = max(margin, LONE_SPLIT_MARGIN) if lone else margin
    cut_score = log_confidence if lone else log_likelihood
    # A group that is no digit whole needs no margin when its reading is a guess (two touching
    # digits squeezed into one 28x28 are): its likeliest cut is all the reading it has. One read
    # surely (a 1 whose flag crosses its stem, read as flag and stem) is cut as any other group.
    guessed = {i for i in ways if not whole_digit[i] and read.singles[i].unsure}
    sure_ways = {i: w for i, w in ways.items() if i not in guessed}
    guessed_ways = {i: w for i, w in ways.items() if i in guessed}
    cuts = winning_cuts(read.singles, sure_ways, cut_margin, cut_score)
    cuts |= winning_cuts(read.singles, guessed_ways, -math.inf, cut_score)
    # Joins first: the pieces of a broken digit may each be no digit, while their join is one.
    digits = digits_of(settle_line(read.singles, read.joined, cuts, rotation))
    if read.whole is not None and digits and reads_better_whole(digits, read.whole) and is_digit(read.whole):
        return [read.whole]
    return digits


def alternatives(line: segment.NumberLayout) -> list[PreparedDigit]:
    """Return every reading of a line to classify: its digits, joins, cuts, and the whole as one."""
    pieces = [piece for ways in line.splits.values() for way in ways for piece in way]
    return [*line.digits, *line.joins.values(), *pieces, *([line.whole] if line.whole is not None else [])]


def reads_better_whole(digits: list[Prediction], whole: Prediction) -> bool:
    """Tell whether a few groups read better as one digit: the whole sure, and clearly surer than a part.

    A digit in pieces (a 4 of two strokes, a 0 with a gap) reads as a weaker guess per piece, while
    digits side by side each read about as surely as their whole.
    """
    weakest = min(p.confidence for p in digits)
    return len(digits) > 1 and not whole.unsure and whole.confidence > weakest + WHOLE_MARGIN


def page_reads_better_whole(digits: list[Prediction], whole: Prediction) -> bool:
    """Tell whether the `digits` of a page's few lines read better as one digit: likelier than all read right.

    The pieces of one digit broken by a thin pen each read as some digit, a few of them surely;
    together they are likely only if every one is, while their whole reads as one clear digit.
    """
    joint = float(np.prod([p.confidence for p in digits]))
    return not digits or whole.confidence > joint + PAGE_WHOLE_MARGIN


def _join_wins(left: Prediction, right: Prediction, join: Prediction, rotation: int = 0) -> bool:
    """Tell whether a join reads better than the two pieces it is made of.

    Two pieces of one line that share no row lie one above the other: the halves of one digit
    broken across (a slanted 1 in two), however surely each reads, never two digits side by side.
    """
    if join.unsure:
        return False
    weaker = min(left.confidence, right.confidence)
    return ((left.unsure or right.unsure) and join.confidence > weaker) or stacked(left, right, rotation)


def stacked(upper: Prediction, lower: Prediction, rotation: int = 0) -> bool:
    """Tell whether two cut-outs share no row of the page as read: one lies wholly above the other.

    Boxes are in input pixels: on a page read a quarter turn round, its rows are the input's columns.
    """
    a, b = upper.box, lower.box
    if a is None or b is None:
        return False
    if rotation % 180:
        return a.x + a.w <= b.x or b.x + b.w <= a.x
    return a.y + a.h <= b.y or b.y + b.h <= a.y


class Recognizer:
    """Recognise handwritten digits in photos, drawings and arrays."""

    def __init__(
        self, runtime: Runtime, metadata: dict[str, Any] | None = None, reject: RejectRule | None = None
    ) -> None:
        self.runtime = runtime
        self.metadata = metadata or {}
        self.reject = reject if reject is not None else RejectRule.from_metadata(self.metadata)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Recognizer:
        """Load a model (`path`, else MNIST_BOT_MODEL, else the shipped one) with its reject rule."""
        model_path = resolve_model_path(path if path is not None else load_settings().model_path)
        return cls(load_runtime(model_path), _read_metadata(model_path))

    def predict(self, image: ImageInput) -> Prediction:
        """Recognise the single digit in `image`; raise EmptyImageError when it holds no digit."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Sequence[ImageInput]) -> list[Prediction]:
        """Recognise one digit per image in one runtime call; raise EmptyImageError if any holds no digit."""
        predictions = self._classify([prepare(image) for image in images])
        if any(self.is_no_digit(p, on_page=False) for p in predictions):
            raise EmptyImageError(NOT_A_DIGIT)
        return predictions

    def is_no_digit(self, prediction: Prediction, on_page: bool = True) -> bool:
        """Tell whether the reject head says a cut-out is no digit (a letter, a mark, a shadow)."""
        return self.reject is not None and self.reject.rejects(prediction, on_page)

    def read_number(self, image: ImageInput) -> NumberReading:
        """Read one line of digits left to right (a number), whatever its layout; read() reads pages."""
        return self._read_layout(layout.prepare_number(image))

    def read_page(self, image: ImageInput) -> PageReading:
        """Read every digit in the image: lines top to bottom, each left to right."""
        ready = prepared_mnist(image)
        if ready is not None:  # one MNIST digit: read as predict() reads it
            return self._read_lines([segment.NumberLayout([ready], {})])
        ink = layout.page_ink(image)
        upright, score = self._read_page_layout(layout.ink_layout(ink))
        if not layout.may_lie_turned(ink) or score >= SURELY_UPRIGHT:
            return self._or_no_digit(upright)
        turned = [page for page in layout.turned_layouts(ink) if layout.prepared_digits(page)]
        best = self._best_turn(turned, score)
        if best is None:
            return self._or_no_digit(upright)
        reading = self._read_page_layout(best)[0]
        return self._or_no_digit(upright if reads_as_well(upright, reading) else reading)

    def _read_page_layout(self, page: layout.PageLayout) -> tuple[PageReading | None, float]:
        """Read a laid-out page (None when it holds no digit) and rate how well it reads this way up.

        The rating leaves touching digits uncut: cuts are chosen for reading well, and a page
        lying sideways, its digits wide, would read well upright when they are cut into pieces.
        """
        try:
            reading, uncut = self._read_lines_and_uncut(page.lines, page.rotation, page.whole)
        except EmptyImageError:
            return None, -np.inf
        return reading, mean_log_confidence([p.confidence for p in uncut or reading.digits])

    @staticmethod
    def _or_no_digit(reading: PageReading | None) -> PageReading:
        """Return a reading, or raise EmptyImageError when there is none."""
        if reading is None:
            raise EmptyImageError(NOT_A_DIGIT)
        return reading

    def _best_turn(self, pages: list[layout.PageLayout], upright: float) -> layout.PageLayout | None:
        """Return the turned layout that reads better than upright, from a sample of each; None if none."""
        samples = [sample_evenly(layout.prepared_digits(page), ORIENTATION_SAMPLE) for page in pages]
        predictions = iter(self._classify([d for sample in samples for d in sample]))
        scores = [mean_log_confidence([next(predictions).confidence for _ in sample]) for sample in samples]
        floor = upright + UPRIGHT_BONUS  # `upright`: the upright page's rating (-inf when no digit)
        best = int(np.argmax(scores)) if scores else -1
        return pages[best] if scores and scores[best] > floor else None

    def read(self, image: ImageInput) -> PageReading:
        """Read whatever the image holds (one digit, a number or a page): what a front end shows."""
        return self.read_page(image)

    def _read_layout(self, number: segment.NumberLayout) -> NumberReading:
        """Read one line of digits."""
        return self._read_lines([number]).lines[0]

    def _read_lines(
        self, lines: list[segment.NumberLayout], rotation: int = 0, whole: PreparedDigit | None = None
    ) -> PageReading:
        """Classify every line's digits and other readings in one runtime call, then settle each line.

        `whole` is all of the ink as one digit: it replaces the lines when it reads clearly better.
        """
        return self._read_lines_and_uncut(lines, rotation, whole)[0]

    def _read_lines_and_uncut(
        self, lines: list[segment.NumberLayout], rotation: int = 0, whole: PreparedDigit | None = None
    ) -> tuple[PageReading, list[Prediction]]:
        """Read lines as `_read_lines` does; also return their digits as read with no group cut."""
        batch = [d for line in lines for d in alternatives(line)] + ([whole] if whole is not None else [])
        predictions = iter(self._classify(batch))
        on_page = len(lines) > 1
        settled = [self._settle_line(line, predictions, on_page, rotation) for line in lines]
        read = [reading for reading, _ in settled if reading is not None]
        uncut = [p for _, digits in settled for p in digits]
        if whole is not None:
            one = next(predictions)
            # Weighed as laid out, none turned away: a piece the reject drops (a 3's lower half on
            # a line of its own) is ink the lines leave unread, not a line read right.
            if not read or page_reads_better_whole(uncut, one):
                read = [] if self.is_no_digit(one, on_page=False) else [NumberReading(str(one.digit), [one])]
                uncut = [one]
        if not read:
            raise EmptyImageError(NOT_A_DIGIT)
        return PageReading(read, rotation), uncut

    def _settle_line(
        self, line: segment.NumberLayout, predictions: Iterator[Prediction], on_page: bool, rotation: int = 0
    ) -> tuple[NumberReading | None, list[Prediction]]:
        """Settle one line from its predictions, in `alternatives` order (None when nothing is left).

        Also return its digits as read with no group cut and none turned away, which rate the way up.
        `rotation` is how far the page was turned to be read.
        """
        readings = line_readings(line, predictions)

        def digits_of(settled: list[Prediction]) -> list[Prediction]:
            return self._digits_of_line(settled, on_page)

        def is_digit(prediction: Prediction) -> bool:
            return not self.is_no_digit(prediction, on_page)

        # Rated as laid out, nothing turned away: dropping a sideways page's worst-read pieces as
        # no digits would make what is left read well upright.
        laid_out = replace(readings, ways={})
        rating = settle(laid_out, rotation=rotation)
        # On a page, a line of words or of marks goes whole: cutting its letters makes no digits.
        # Alone, the line is what the user sent: touching digits are no digit uncut, only cut.
        if on_page and not settle(laid_out, digits_of, is_digit, rotation=rotation):
            return None, rating
        digits = settle(readings, digits_of, is_digit, rotation=rotation)
        reading = NumberReading(text="".join(str(p.digit) for p in digits), digits=digits) if digits else None
        return reading, rating

    def _digits_of_line(self, settled: list[Prediction], on_page: bool) -> list[Prediction]:
        """Drop a line's cut-outs that are no digit, and on a page all of a line of words."""
        # The letters of a word that pass for digits are no more digits than the rest of the word.
        # Alone in its image a line is what the user sent to be read: digits crowded until they
        # touch read as no digit to the head, and turning the line away fails the whole answer.
        if on_page and self.reject is not None and self.reject.rejects_line(settled):
            return []
        digit = [not self.is_no_digit(p, on_page) for p in settled]
        if not on_page:
            # A line alone is one writer's number: a cut-out read surely, as tall as its line's
            # surely read digits, is one of them however odd the head finds its shape.
            peers = [p for p, d in zip(settled, digit, strict=True) if d and not p.unsure]
            digit = [d or vouched_for(p, peers, len(settled)) for p, d in zip(settled, digit, strict=True)]
        return [p for p, d in zip(settled, digit, strict=True) if d]

    def classify28(self, batch: np.ndarray) -> np.ndarray:
        """Return (N, 10) probabilities for already-prepared (N, 28, 28) float32 inputs."""
        return self.runtime.predict(np.asarray(batch, dtype=np.float32))

    def _classify(self, prepared: list[PreparedDigit]) -> list[Prediction]:
        """Run the model once over all prepared digits."""
        if not prepared:
            return []
        batch = np.stack([p.input28 for p in prepared])
        probabilities, digitness = self.runtime.predict_with_digitness(batch)
        p_digit = digitness if digitness is not None else np.ones(len(prepared), np.float32)
        return [
            _prediction(p, probs, float(pd))
            for p, probs, pd in zip(prepared, probabilities, p_digit, strict=True)
        ]


def prepare(image: ImageInput) -> PreparedDigit:
    """Prepare one digit: as it is when already in MNIST's convention, else through the photo pipeline."""
    ready = prepared_mnist(image)
    return ready if ready is not None else preprocess.prepare_digit(image)


def prepared_mnist(image: ImageInput) -> PreparedDigit | None:
    """Return a 28x28 array or image already in MNIST's convention as the model's input, else None."""
    grey = _grey28(image)
    box = None if grey is None else mnist_box(grey)
    return None if grey is None or box is None else PreparedDigit(grey, box, digit_like=True)


def _grey28(image: ImageInput) -> np.ndarray | None:
    """Return a (28, 28) grey array or image as float32 in [0, 1]; None for any other input or range."""
    if isinstance(image, Image.Image):
        if image.mode != "L" or image.size != (28, 28):
            return None
        image = np.asarray(image)
    if not isinstance(image, np.ndarray) or image.shape not in {(28, 28), (28, 28, 1)}:
        return None
    values = image.reshape(28, 28)
    if values.dtype == np.uint8:
        return values.astype(np.float32) / 255  # as the model was trained: float32 of uint8 / 255
    # Comparisons with NaN are false, so NaN and infinities fall through to the pipeline's checks.
    low, high = values.min(), values.max()
    if values.dtype.kind in "ui" and low >= 0 and high <= 255:
        return values.astype(np.float32) / 255
    if values.dtype.kind == "f" and low >= 0 and high <= 1:
        return values.astype(np.float32)
    return None


def mnist_box(grey: np.ndarray) -> Box | None:
    """Return the ink box of float32 (28, 28) grey when it is light ink on black centred as MNIST's."""
    visible = grey > FAST_INK_LEVEL
    total = float(grey.sum())
    if grey.max() < FAST_MIN_PEAK or visible.mean() > 1 - FAST_MIN_DARK:
        return None
    rows, cols = np.flatnonzero(visible.any(axis=1)), np.flatnonzero(visible.any(axis=0))
    box = Box(int(cols[0]), int(rows[0]), int(cols[-1] - cols[0]) + 1, int(rows[-1] - rows[0]) + 1)
    centre_y, centre_x = _PIXEL_ROWS_COLS @ grey.ravel() / total
    offset = math.hypot(centre_y - render.CENTRE, centre_x - render.CENTRE)
    sized = FAST_BOX_SIDES[0] <= max(box.w, box.h) <= FAST_BOX_SIDES[1]
    return box if sized and offset <= FAST_MAX_OFFSET else None


def _read_metadata(model_path: Path) -> dict[str, Any]:
    """Read the `.json` written beside a model at training time, if any."""
    meta = model_path.with_suffix(".json")
    try:
        return dict(json.loads(meta.read_text())) if meta.is_file() else {}
    except (OSError, ValueError):
        return {}

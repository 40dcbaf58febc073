"""Recognizer: the public API with a fake runtime, and the real model on real digits."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_bot import (
    EmptyImageError,
    InvalidImageError,
    ModelLoadError,
    NumberReading,
    Prediction,
    Recognizer,
    segment,
)
from mnist_bot.blobs import Box, Component
from mnist_bot.layout import merge_row_fragments
from mnist_bot.recognizer import is_unsure, settle_joins, settle_line
from mnist_bot.runtime import FakeRuntime
from tests.conftest import draw_digit, encode, mnist_photo


def test_predict_returns_a_full_prediction(fake_recognizer: Recognizer) -> None:
    p = fake_recognizer.predict(draw_digit(7, 200, width=14))
    assert isinstance(p, Prediction)
    assert 0 <= p.digit <= 9
    assert len(p.probabilities) == 10 and sum(p.probabilities) == pytest.approx(1.0)
    assert p.confidence == pytest.approx(max(p.probabilities))
    assert p.input28.shape == (28, 28) and p.input28.dtype == np.float32
    assert p.ranked(3)[0] == (p.digit, pytest.approx(p.confidence))
    assert set(p.as_dict()) == {"digit", "confidence", "probabilities", "unsure"}


def test_predict_batch_calls_the_runtime_once() -> None:
    runtime = FakeRuntime()
    recognizer = Recognizer(runtime)
    predictions = recognizer.predict_batch([draw_digit(d, 200, width=14) for d in (0, 1, 4, 7)])
    assert len(predictions) == 4 and runtime.calls == 1


def test_unsure_flags_low_confidence_small_margin_and_odd_shapes() -> None:
    assert is_unsure(np.array([0.5, 0.4] + [0.0125] * 8), digit_like=True)
    assert is_unsure(np.array([0.65, 0.3] + [0.00625] * 8), digit_like=True)
    assert not is_unsure(np.array([0.98, 0.01] + [0.00125] * 8), digit_like=True)
    assert is_unsure(np.array([0.98, 0.01] + [0.00125] * 8), digit_like=False)


def test_empty_input_raises_instead_of_guessing(fake_recognizer: Recognizer) -> None:
    with pytest.raises(EmptyImageError):
        fake_recognizer.predict(np.full((300, 300), 240, np.uint8))
    with pytest.raises(EmptyImageError):
        fake_recognizer.read_number(np.zeros((280, 280, 4), np.uint8))


def test_bad_input_raises_invalid_image_error(fake_recognizer: Recognizer) -> None:
    with pytest.raises(InvalidImageError):
        fake_recognizer.predict(b"definitely not an image")


def test_missing_model_raises_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="No model file"):
        Recognizer.load(tmp_path / "missing.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelLoadError):
        Recognizer.load(bad)
    with pytest.raises(ModelLoadError, match="Unknown model type"):
        (tmp_path / "model.onnx").write_bytes(b"x")
        Recognizer.load(tmp_path / "model.onnx")


def test_model_path_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MNIST_BOT_MODEL", str(tmp_path / "from-env.tflite"))
    with pytest.raises(ModelLoadError, match="from-env"):
        Recognizer.load()


def test_read_number_orders_digits_left_to_right(fake_recognizer: Recognizer) -> None:
    canvas = np.full((200, 600), 255, np.uint8)
    for i, digit in enumerate((1, 7, 4, 0)):
        canvas[40:160, 30 + i * 140 : 150 + i * 140] = np.asarray(draw_digit(digit, 120, width=10))
    reading = fake_recognizer.read_number(canvas)
    assert isinstance(reading, NumberReading)
    assert len(reading.digits) == 4 and len(reading.text) == 4
    xs = [p.box.x for p in reading.digits if p.box]
    assert xs == sorted(xs)


def test_specks_are_not_counted_as_digits_of_a_number() -> None:
    page = np.full((480, 640), 255, np.uint8)
    for i, digit in enumerate((7, 4)):
        page[150:270, 150 + i * 150 : 270 + i * 150] = np.asarray(draw_digit(digit, 120, width=10))
    specks = page.copy()
    specks[205:213, 460:468] = 0  # a dot after the number, on its line: 2% of the shorter side
    assert len(segment.prepare_number(specks).digits) == len(segment.prepare_number(page).digits) == 2
    only_specks = np.full((480, 640), 255, np.uint8)
    for x in range(60, 600, 90):
        only_specks[205:213, x : x + 8] = 0
    with pytest.raises(EmptyImageError):
        segment.prepare_number(only_specks)


def guess(digit: int, confidence: float) -> Prediction:
    """Return a Prediction of `digit` with `confidence`, the rest spread evenly."""
    probabilities = np.full(10, (1 - confidence) / 9)
    probabilities[digit] = confidence
    sure = confidence >= 0.9
    return Prediction(digit, confidence, tuple(probabilities), not sure, np.zeros((28, 28), np.float32))


def test_an_unsure_pair_is_replaced_by_its_sure_join() -> None:
    pieces = [guess(4, 0.99), guess(1, 0.45), guess(7, 0.5), guess(2, 0.98)]
    digits = settle_joins(pieces, {1: guess(5, 0.97)})
    assert [p.digit for p in digits] == [4, 5, 2]


def test_two_sure_digits_are_never_joined() -> None:
    pieces = [guess(1, 0.99), guess(1, 0.98)]
    assert [p.digit for p in settle_joins(pieces, {0: guess(4, 0.99)})] == [1, 1]


def test_two_sure_pieces_one_above_the_other_are_one_digit() -> None:
    # A slanted 1 broken across its middle: two sure 1s that share no row of the line, never two
    # digits of it side by side. Beside each other (sharing rows) they stay two digits.
    def at(prediction: Prediction, box: Box) -> Prediction:
        return replace(prediction, box=box)

    upper, lower = at(guess(1, 0.99), Box(161, 227, 13, 29)), at(guess(1, 0.99), Box(170, 260, 15, 35))
    join = at(guess(1, 0.99), Box(161, 227, 24, 68))
    assert len(settle_line([upper, lower], {0: join}, {})) == 1
    beside = at(guess(1, 0.99), Box(200, 230, 15, 35))
    assert len(settle_line([upper, beside], {0: join}, {})) == 2
    # Read a quarter turn round, the page's rows are the input's columns: these pieces are beside.
    assert len(settle_line([upper, lower], {0: join}, {}, rotation=90)) == 2


def test_an_unsure_join_is_not_taken() -> None:
    pieces = [guess(1, 0.5), guess(7, 0.5)]
    assert [p.digit for p in settle_joins(pieces, {0: guess(4, 0.55)})] == [1, 7]


def test_a_digit_broken_in_two_is_offered_as_a_join() -> None:
    page = np.full((200, 400), 255, np.uint8)
    page[40:160, 60:180] = np.asarray(draw_digit(0, 120, width=10))
    page[40:160, 118:124] = 255  # the 0 is cut into a left and a right half
    page[40:160, 270:390] = np.asarray(draw_digit(7, 120, width=10))
    layout = segment.prepare_number(page)
    assert len(layout.digits) == 3
    assert list(layout.joins) == [0]  # the halves of the 0, not the 0 and the far 7


def test_a_stroke_broken_into_short_pieces_still_counts_as_a_digit() -> None:
    page = np.full((200, 600), 255, np.uint8)
    page[40:160, 40:160] = np.asarray(draw_digit(4, 120, width=10))
    page[40:160, 250:260] = 0  # a 1 ...
    page[67:70, 250:260] = page[97:100, 250:260] = page[127:130, 250:260] = 255  # ... in four short pieces
    page[40:160, 420:540] = np.asarray(draw_digit(0, 120, width=10))
    layout = segment.prepare_number(page)
    assert len(layout.digits) == 3
    assert layout.digits[1].box is not None and layout.digits[1].box.h >= 110  # one digit, all four pieces


def test_close_pieces_taller_than_any_digit_are_texture_not_a_digit() -> None:
    digit = Component(1, 0, 0, 60, 100, 2000)
    broken = [Component(2 + i, 100, 26 * i, 10, 24, 240) for i in range(4)]  # 98 px in all
    grid = [Component(10 + i, 300, 26 * i, 10, 24, 240) for i in range(9)]  # 230 px: glare on squares
    kept = segment.main_blobs([digit, *broken, *grid], [[digit], broken, grid])
    assert [c.label for c in kept] == [1, 2, 3, 4, 5]


def five_with_a_detached_hat(size: int) -> np.ndarray:
    """Draw a 5 whose hat is a separate stroke, starting above the body's right end and running past it."""
    image = Image.new("L", (size, size), 255)
    pen = ImageDraw.Draw(image)
    body = [(30, 40), (28, 55), (55, 50), (70, 65), (60, 85), (30, 82)]
    pen.line([(x * size / 100, y * size / 100) for x, y in body], fill=0, width=10, joint="curve")
    pen.line([(62 * size / 100, 22 * size / 100), (92 * size / 100, 20 * size / 100)], fill=0, width=7)
    return np.asarray(image)


def test_a_detached_hat_sharing_few_columns_stays_with_its_5() -> None:
    page = np.full((200, 640), 255, np.uint8)
    page[40:160, 40:160] = np.asarray(draw_digit(4, 120, width=10))
    page[40:160, 230:350] = five_with_a_detached_hat(120)
    page[40:160, 440:560] = np.asarray(draw_digit(0, 120, width=10))
    digits = segment.prepare_number(page).digits
    assert len(digits) == 3
    assert digits[1].box is not None and digits[1].box.y < 70  # the hat at y 62-69 is part of the 5


def test_a_left_out_piece_joins_the_digit_sharing_most_of_its_columns() -> None:
    left, right = [Component(1, 0, 0, 50, 100, 2000)], [Component(2, 60, 0, 50, 100, 2000)]
    piece = Component(3, 39, 110, 30, 8, 200)  # 11 of its columns under the left digit, 9 under the right
    piece_right = Component(4, 41, 110, 30, 8, 200)  # 9 under the left digit, 11 under the right
    groups = segment.attach_small([left, right], [*left, *right, piece, piece_right])
    assert [c.label for c in groups[0]] == [1, 3] and [c.label for c in groups[1]] == [2, 4]


def test_a_slanted_number_keeps_its_end_digits() -> None:
    page = np.full((700, 1200), 255, np.uint8)
    for i in range(8):  # each digit 30 px lower (12 degrees): the ends sit a digit off the middle row
        x, y = 40 + i * 140, 60 + i * 30
        page[y : y + 100, x : x + 100] = np.asarray(draw_digit((1, 7, 4, 0)[i % 4], 100, width=9))
    assert len(segment.prepare_number(page).digits) == 8


def test_the_text_line_follows_the_slope_and_drops_marks_off_it() -> None:
    x = np.array([0.0, 100, 200, 300, 400, 150])
    y = np.array([0.0, 20, 40, 60, 80, 400])  # the last centre is a stray mark far below the line
    assert segment.line_slope(x, y, height=50) == pytest.approx(0.2)
    centres = enumerate(zip(x, y, strict=True))
    blobs = [Component(i, int(cx) - 20, int(cy) - 25, 40, 50, 800) for i, (cx, cy) in centres]
    assert [c.label for c in segment.on_text_line(blobs)] == [0, 1, 2, 3, 4]


def test_two_marks_far_apart_vertically_keep_one_line() -> None:
    # The median of two offsets lies between them, a line through neither: both would be dropped.
    blobs = [Component(1, 0, 0, 40, 50, 800), Component(2, 300, 200, 40, 50, 800)]
    assert len(segment.on_text_line(blobs)) == 1


def test_a_detached_hat_joins_the_digit_beside_it() -> None:
    body, hat, other = (
        Component(1, 0, 20, 60, 100, 900),
        Component(2, 50, 18, 60, 10, 400),
        Component(3, 200, 20, 60, 100, 900),
    )
    groups = segment.attach_flat([[body], [hat], [other]])
    assert [[c.label for c in g] for g in groups] == [[1, 2], [3]]


def test_a_flat_mark_far_from_any_digit_stays_apart() -> None:
    left, dash, right = (
        Component(1, 0, 20, 60, 100, 900),
        Component(2, 200, 60, 40, 8, 300),
        Component(3, 400, 20, 60, 100, 900),
    )
    assert len(segment.attach_flat([[left], [dash], [right]])) == 3


def test_a_hat_at_the_low_end_of_a_sloping_number_joins_its_digit() -> None:
    # Photographed at a slant, the number runs down to the right: the last digit's hat lies below
    # the middle of the line as a whole, but above the middle of the line where it is.
    digits = [Component(i + 1, 120 * i, 25 * i, 60, 100, 900) for i in range(4)]
    hat = Component(9, 120 * 3 + 40, 25 * 3 - 10, 60, 14, 300)
    groups = segment.attach_flat([[d] for d in digits] + [[hat]])
    assert [[c.label for c in g] for g in groups] == [[1], [2], [3], [4, 9]]


# --- the real shipped model ---------------------------------------------------------------------------


@pytest.mark.slow
def test_real_model_reads_mnist_test_digits_as_photos(recognizer: Recognizer, mnist) -> None:
    images, labels = mnist.test.images[:300], mnist.test.labels[:300]
    photos = [encode(mnist_photo(image).convert("RGB"), "JPEG", quality=85) for image in images]
    predictions = recognizer.predict_batch(photos)
    accuracy = np.mean([p.digit == label for p, label in zip(predictions, labels, strict=True)])
    assert accuracy >= 0.97


@pytest.mark.slow
def test_real_model_reads_a_number(recognizer: Recognizer, mnist) -> None:
    labels = mnist.test.labels
    picks = [int(np.flatnonzero(labels == d)[3]) for d in (2, 0, 4, 8)]
    row = np.hstack([np.pad(mnist.test.images[i], ((4, 4), (6, 6))) for i in picks])
    photo = 235 - (row.astype(np.float32) / 255 * 200)
    big = np.kron(photo, np.ones((8, 8))).astype(np.uint8)
    assert recognizer.read_number(big).text == "2048"


@pytest.mark.slow
def test_real_model_is_confident_on_clean_digits_and_unsure_on_scribbles(
    recognizer: Recognizer, mnist
) -> None:
    clean = recognizer.predict_batch(list(mnist.test.images[:100]))
    assert np.mean([not p.unsure for p in clean]) >= 0.9
    dash = np.zeros((200, 200), np.uint8)
    dash[90:110, 25:175] = 255  # a long dash is no digit: far wider than tall
    with contextlib.suppress(EmptyImageError):  # turned away by the reject head, or answered unsure
        assert recognizer.predict(dash).unsure


@pytest.mark.slow
def test_serving_never_imports_tensorflow_or_front_ends(tmp_path: Path) -> None:
    code = (
        "import sys, json, numpy as np\n"
        "from mnist_bot import Recognizer\n"
        "p = Recognizer.load().predict(np.pad(np.full((20, 4), 255, np.uint8), 4))\n"
        "print(json.dumps({'runtime': Recognizer.load().runtime.name, 'digit': p.digit,\n"
        "  'modules': sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "  {'tensorflow', 'keras', 'telegram', 'ipywidgets', 'ipycanvas'})}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["runtime"] == "litert"
    assert result["modules"] == []


def test_read_returns_a_number_or_the_single_digit_in_one_runtime_call() -> None:
    runtime = FakeRuntime()
    recognizer = Recognizer(runtime)
    canvas = np.full((200, 600), 255, np.uint8)
    for i, digit in enumerate((1, 7, 4)):
        canvas[40:160, 30 + i * 180 : 150 + i * 180] = np.asarray(draw_digit(digit, 120, width=10))
    assert len(recognizer.read(canvas).digits) == 3
    single = np.asarray(draw_digit(7, 200, width=14))
    reading = recognizer.read(single)
    assert len(reading.digits) == 1
    assert np.allclose(reading.digits[0].input28, recognizer.predict(single).input28)
    assert runtime.calls == 3  # one call per read or predict, however many digits
    with pytest.raises(EmptyImageError):
        recognizer.read(np.full((300, 300), 240, np.uint8))


def test_a_grid_row_whose_few_characters_seem_to_slope_stays_one_row() -> None:
    # A grid's row of scattered digits: four in the middle jitter so they seem to slope down to the
    # right, while the row as a whole (and the page) runs level; extrapolated to the far columns,
    # their slope put the row's ends on a line of their own.
    def char(label: int, x: int, middle: int) -> Component:
        return Component(label, x, middle - 15, 25, 30, 400)

    middle_four = [char(1, 310, 115), char(2, 410, 123), char(3, 490, 120), char(4, 580, 125)]
    far_ends = [[char(5, 145, 128)], [char(6, 670, 106), char(7, 770, 105)]]
    level_rows = [[char(10 * r + i, 120 + 90 * i, 220 + 100 * r) for i in range(8)] for r in (1, 2)]
    rows = merge_row_fragments([middle_four, *far_ends, *level_rows], height=38.0)
    assert sorted(len(row) for row in rows) == [7, 8, 8]
    first = next(row for row in rows if len(row) == 7)
    assert {c.label for c in first} == {1, 2, 3, 4, 5, 6, 7}

"""DigitChat with the shipped model on real pen trajectories (UNIPEN), replayed as mouse and touch events."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from mnist_bot import NumberReading, Prediction, Recognizer
from mnist_bot.data import Mnist
from mnist_bot.training.synthetic import load_unipen, photo_of_digit, photo_of_number
from tests.test_widget import draw_with_finger, draw_with_mouse, upload
from widgets import DigitChat

HANDWRITING = Path(__file__).resolve().parents[2] / "shared" / "handwriting"
UNIPEN = HANDWRITING / "unipen_1a_digits.jsonl.gz"
PAD = 280

pytestmark = pytest.mark.slow


def fit_to_pad(strokes: Sequence[np.ndarray], height: float) -> list[np.ndarray]:
    """Scale a trajectory so its longer side is `height` of the pad, centred, as a person would draw."""
    points = np.concatenate(strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    scale = PAD * height / max(float((high - low).max()), 1e-6)
    offset = (PAD - (high - low) * scale) / 2
    return [(stroke - low) * scale + offset for stroke in strokes]


def replay(chat: DigitChat, strokes: Sequence[np.ndarray], touch: bool) -> None:
    """Send each stroke to the canvas as the browser would, by mouse or by finger."""
    draw = draw_with_finger if touch else draw_with_mouse
    for stroke in strokes:
        draw(chat, [(float(x), float(y)) for x, y in stroke])


@pytest.fixture(scope="module")
def shipped() -> Recognizer:
    return Recognizer.load()


def test_real_handwriting_drawn_on_the_pad_is_read_correctly(shipped: Recognizer) -> None:
    samples = load_unipen(UNIPEN, np.random.default_rng(0))[:400]
    rng = np.random.default_rng(1)
    chat = DigitChat(shipped, user="test")
    right = unsure = split = no_digit = 0
    for index, (label, strokes, _writer) in enumerate(samples):
        chat.pen_slider.value = int(rng.integers(10, 26))
        replay(chat, fit_to_pad(strokes, rng.uniform(0.45, 0.85)), touch=index % 2 == 1)
        chat.send_button.click()
        answer = chat.messages[-1].answer
        if answer is None:  # turned away by the reject: the chat says so
            assert "doesn't look like a digit" in chat.messages[-1].text
            no_digit += 1
            continue
        right += (str(answer.digit) if isinstance(answer, Prediction) else answer.text) == str(label)
        unsure += answer.unsure
        split += not isinstance(answer, Prediction)  # the pad reads numbers too: one digit read as two
    # Measured through read() (the pad reads numbers and pages): 394 of 400 right, 2 read as two
    # digits (sizes 45-85% of the pad, pens 10-25 px); predict() on the same drawings: 396 right.
    # One is turned away: a 4 whose two strokes lie far apart, read as a 6 before the head saw strokes.
    assert right / len(samples) >= 0.95
    assert no_digit / len(samples) <= 0.01
    assert unsure / len(samples) <= 0.06
    assert split / len(samples) <= 0.02


@pytest.mark.parametrize(
    ("digit", "points"),
    [
        (7, [(70, 60), (212, 58), (172, 140), (135, 240)]),
        (1, [(120, 80), (150, 40), (150, 240)]),
        (1, [(140, 40), (140, 240)]),  # the plainest 1: one straight bar
        (0, [(140, 40), (200, 80), (205, 180), (140, 240), (80, 190), (75, 90), (140, 40)]),
        (4, [(170, 240), (170, 40), (70, 170), (220, 170)]),
    ],
)
def test_simple_drawn_digits_get_a_confident_answer(
    shipped: Recognizer, digit: int, points: list[tuple[float, float]]
) -> None:
    chat = DigitChat(shipped, user="test")
    replay(chat, [np.array(points, dtype=np.float32)], touch=False)
    chat.send()

    answer = chat.messages[-1].answer
    assert isinstance(answer, Prediction)
    assert (answer.digit, answer.unsure) == (digit, False), chat.messages[-1].text


def test_uploaded_phone_photos_of_numbers_and_digits_are_read(shipped: Recognizer, mnist: Mnist) -> None:
    rng = np.random.default_rng(3)
    chat = DigitChat(shipped, user="test")
    numbers_right = digits_right = 0
    for _ in range(20):
        picks = rng.integers(0, len(mnist.test.labels), int(rng.integers(2, 5)))
        upload(chat, photo_of_number([mnist.test.images[i] for i in picks], rng))
        reading = chat.messages[-1].answer
        want = "".join(str(mnist.test.labels[i]) for i in picks)
        numbers_right += isinstance(reading, NumberReading) and reading.text == want
    for _ in range(20):
        pick = int(rng.integers(0, len(mnist.test.labels)))
        upload(chat, photo_of_digit(mnist.test.images[pick], rng))
        answer = chat.messages[-1].answer
        digits_right += isinstance(answer, Prediction) and answer.digit == mnist.test.labels[pick]
    # Measured 20/20 numbers and 19/20 digits with this seed; a little room for model updates.
    assert numbers_right >= 17
    assert digits_right >= 18

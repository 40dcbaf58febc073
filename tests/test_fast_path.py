"""The fast path: a 28x28 input already in MNIST's convention skips the photo pipeline; others do not."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mnist_bot import decode, preprocess
from mnist_bot.blobs import Box
from mnist_bot.data import Mnist
from mnist_bot.recognizer import Recognizer, RejectRule, prepared_mnist
from mnist_bot.runtime import FakeRuntime
from tests.conftest import draw_digit


@pytest.fixture
def pipeline_calls(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Count the inputs that go through the photo pipeline (which still runs as before)."""
    calls: list[object] = []
    real = preprocess.prepare_digit

    def counted(image: decode.ImageInput) -> preprocess.PreparedDigit:
        calls.append(image)
        return real(image)

    monkeypatch.setattr(preprocess, "prepare_digit", counted)
    return calls


@pytest.fixture(scope="module")
def digits(mnist: Mnist) -> np.ndarray:
    """The first 300 MNIST test digits, uint8 (N, 28, 28) light ink on black."""
    return mnist.test.images[:300]


def test_every_mnist_digit_skips_the_pipeline_and_the_model_sees_it_as_it_is(
    digits: np.ndarray, pipeline_calls: list[object]
) -> None:
    rec = Recognizer(FakeRuntime())
    predictions = [rec.predict(d) for d in digits]

    assert pipeline_calls == []
    for digit, prediction in zip(digits, predictions, strict=True):
        np.testing.assert_array_equal(prediction.input28, digit.astype(np.float32) / 255)
        assert prediction.input28.dtype == np.float32 and not prediction.unsure


def test_floats_in_0_1_and_grey_pillow_images_take_it_too(
    digits: np.ndarray, pipeline_calls: list[object]
) -> None:
    rec = Recognizer(FakeRuntime())
    as_float = rec.predict(digits[0].astype(np.float64) / 255)
    as_image = rec.predict(Image.fromarray(digits[0]))
    as_column = rec.predict(digits[0][..., None])

    assert pipeline_calls == []
    np.testing.assert_allclose(as_float.input28, as_image.input28, atol=1e-6)
    np.testing.assert_array_equal(as_image.input28, as_column.input28)


def test_the_box_is_the_ink_in_input_pixels() -> None:
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 11:17] = 255  # a bar 6 wide and 20 tall, centred
    ready = prepared_mnist(image)

    assert ready is not None and ready.box == Box(11, 4, 6, 20)


@pytest.mark.parametrize(
    "name",
    ["dark_on_white", "off_centre", "small_digit", "light_drawing_on_black", "floats_0_255", "rgb", "faint"],
)
def test_any_other_28x28_goes_through_the_pipeline(name: str, digits: np.ndarray) -> None:
    digit = digits[0]
    other = {
        "dark_on_white": 255 - digit,  # MNIST inverted: a dark-on-white 28x28 drawing
        "off_centre": np.roll(digit, 4, axis=1),
        "small_digit": np.pad(np.asarray(Image.fromarray(digit).resize((14, 14))), 7),
        "light_drawing_on_black": np.asarray(draw_digit(7, 28, width=2, ink=255, paper=0)),
        "floats_0_255": digit.astype(np.float32),  # not in [0, 1]: the pipeline rescales it
        "rgb": np.repeat(digit[..., None], 3, axis=2),
        "faint": (digit * 0.5).astype(np.uint8),
    }[name]
    assert prepared_mnist(other) is None


def test_a_dark_on_white_28x28_is_read_by_the_pipeline_as_today(
    digits: np.ndarray, pipeline_calls: list[object]
) -> None:
    rec = Recognizer(FakeRuntime())
    drawing = 255 - digits[0]
    prediction = rec.predict(drawing)

    assert len(pipeline_calls) == 1 and pipeline_calls[0] is drawing
    np.testing.assert_array_equal(prediction.input28, preprocess.prepare_digit(drawing).input28)


def test_batch_and_read_take_the_fast_path_per_image(
    digits: np.ndarray, pipeline_calls: list[object]
) -> None:
    runtime = FakeRuntime()
    rec = Recognizer(runtime)
    drawing = 255 - digits[1]
    batch = rec.predict_batch([digits[0], drawing])
    reading = rec.read(digits[0])

    assert pipeline_calls == [drawing]  # only the dark-on-white one
    assert runtime.calls == 2  # still one runtime call per batch and per read
    assert reading.digits[0].probabilities == batch[0].probabilities == rec.predict(digits[0]).probabilities


@pytest.mark.slow
def test_the_shipped_model_answers_as_on_raw_mnist(mnist: Mnist, recognizer: Recognizer) -> None:
    x, y = mnist.test.images[:1000], mnist.test.labels[:1000]
    answers = Recognizer(recognizer.runtime, reject=RejectRule(0.0, 0.0, 0.0)).predict_batch(list(x))
    fast = np.array([p.digit for p in answers])
    raw = recognizer.classify28(x.astype(np.float32) / 255).argmax(axis=1)

    np.testing.assert_array_equal(fast, raw)
    assert np.mean(fast == y) >= 0.99
    # The reject turns away a few of MNIST's scrawls alone (1 of these, 14 of the 10,000).
    assert sum(recognizer.is_no_digit(p, on_page=False) for p in answers) <= 5


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_infinite_values_are_left_to_the_pipeline_to_refuse(bad: float, digits: np.ndarray) -> None:
    image = digits[0].astype(np.float32) / 255
    image[0, 0] = bad
    assert prepared_mnist(image) is None


def test_other_integer_types_in_0_255_take_it_too(digits: np.ndarray) -> None:
    ready = prepared_mnist(digits[0].astype(np.int64))
    assert ready is not None and prepared_mnist(digits[0].astype(np.int64) * 2) is None
    np.testing.assert_array_equal(ready.input28, digits[0].astype(np.float32) / 255)

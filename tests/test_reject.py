"""Tests of the "not a digit" model: its data, its calibration, and how the recognizer uses it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_bot import EmptyImageError
from mnist_bot.config import DEFAULT_MODEL
from mnist_bot.recognizer import NOT_A_DIGIT, REJECT_MODEL, DigitCheck, Prediction, Recognizer
from mnist_bot.runtime import FakeRuntime
from mnist_bot.training import reject
from mnist_bot.training.realistic import is_held_out_writer
from tests.conftest import draw_digit, encode


class FixedDigitness:
    """A reject runtime answering P(digit) from the ink's height: a flat mark (a dash) is no digit."""

    name = "fixed"

    def __init__(self, p_digit: float | None = None) -> None:
        self.p_digit = p_digit

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Return (N, 1): the fixed value, or 0.95 for ink over 8 rows high and 0.05 for flatter ink."""
        if self.p_digit is not None:
            return np.full((len(batch), 1), self.p_digit, np.float32)
        rows = (batch > 0.3).any(axis=2).sum(axis=1)
        return np.where(rows > 8, 0.95, 0.05).astype(np.float32)[:, None]


def recognizer(p_digit: float | None = None, threshold: float = 0.3) -> Recognizer:
    """A fake recognizer with a fake reject model."""
    return Recognizer(FakeRuntime(), check=DigitCheck(FixedDigitness(p_digit), threshold))


def test_a_cut_out_under_the_threshold_is_no_digit() -> None:
    image = encode(draw_digit(7))
    with pytest.raises(EmptyImageError, match="doesn't look like a digit"):
        recognizer(0.1).predict(image)
    with pytest.raises(EmptyImageError):
        recognizer(0.1).predict_batch([image, image])
    doubtful = Prediction(1, 1.0, (0.0,) * 10, False, np.zeros((28, 28)), digit_probability=0.29)
    assert recognizer(threshold=0.3).is_no_digit(doubtful)
    assert not Recognizer(FakeRuntime()).is_no_digit(doubtful)  # no reject model, no rejection


def test_a_kept_answer_carries_its_digitness_and_keeps_its_unsure_flag() -> None:
    image = encode(draw_digit(7))
    plain = Recognizer(FakeRuntime()).predict(image)
    kept = recognizer(0.5).predict(image)
    assert kept.digit == plain.digit and kept.unsure == plain.unsure
    assert kept.digit_probability == pytest.approx(0.5)


def test_without_a_reject_model_every_cut_out_is_a_digit() -> None:
    prediction = Recognizer(FakeRuntime()).predict(encode(draw_digit(1)))
    assert prediction.digit_probability == 1.0


def test_a_number_drops_what_is_no_digit_and_an_all_rejected_number_is_empty() -> None:
    image = np.full((100, 300), 255, np.uint8)
    image[20:80, 40:48] = 0  # a bold 1: much ink in its 28x28
    image[20:80, 140:148] = 0
    image[76:80, 230:290] = 0  # a dash: flat once fit into 20x20
    reading = recognizer(threshold=0.3).read_number(encode_array(image))
    assert len(reading.digits) == 2
    with pytest.raises(EmptyImageError, match=NOT_A_DIGIT[:20]):
        recognizer(0.1).read(encode(draw_digit(7)))


def encode_array(array: np.ndarray) -> bytes:
    """Encode a grey uint8 array as PNG."""
    return encode(Image.fromarray(array))


def test_the_reject_model_is_loaded_beside_the_digit_model_with_its_threshold(tmp_path: Path) -> None:
    assert DigitCheck.load(tmp_path / REJECT_MODEL) is None
    assert Recognizer.load(DEFAULT_MODEL).check is None  # none ships yet (see benchmarks/README.md)
    for name in ("cnn.tflite", "cnn.json"):
        (tmp_path / name).write_bytes((DEFAULT_MODEL.parent / name).read_bytes())
    (tmp_path / REJECT_MODEL).write_bytes((DEFAULT_MODEL.parent / "dense.tflite").read_bytes())  # any .tflite
    (tmp_path / "reject.json").write_text(json.dumps({"threshold": 0.25}))
    loaded = Recognizer.load(tmp_path / "cnn.tflite").check
    assert loaded is not None and loaded.threshold == 0.25


def test_calibration_keeps_nearly_every_held_back_digit() -> None:
    from mnist_bot.training.train_reject import KEPT_DIGITS, calibrate

    rng = np.random.default_rng(0)
    p_digit = np.concatenate([rng.uniform(0.6, 1.0, 1000), rng.uniform(0.0, 0.4, 1000)])
    y = np.concatenate([np.ones(1000), np.zeros(1000)]).astype(np.uint8)
    result = calibrate(p_digit, y)
    assert result["validation_digits_kept"] >= KEPT_DIGITS
    assert result["threshold"] <= 0.5 and result["validation_non_digits_rejected"] == 1.0


def write_letters(path: Path) -> None:
    """Write a tiny letters file: a kept letter, a look-alike, an unverified one, a broken ibm one."""
    stroke = [[5, 5], [15, 25], [25, 5]]
    rows = [
        {"label": "h", "quality": "OK", "site": "apa", "file": "data/1c/apa/w1.dat", "strokes": [stroke]},
        {"label": "O", "quality": "OK", "site": "apa", "file": "data/1b/apa/w1.dat", "strokes": [stroke]},
        {"label": "k", "quality": "?", "site": "apa", "file": "data/1c/apa/w1.dat", "strokes": [stroke]},
        {
            "label": "E",
            "quality": "OK",
            "site": "ibm",
            "file": "data/1b/ibm/w2.dat",
            "strokes": [[[0, 0], [5, 0]]],
        },
    ]
    with gzip.open(path, "wt") as out:
        out.writelines(json.dumps(row) + "\n" for row in rows)


def test_letters_leave_out_look_alikes_unverified_and_broken_samples(tmp_path: Path) -> None:
    path = tmp_path / "letters.jsonl.gz"
    write_letters(path)
    kept = reject.load_letters(path, held_out=is_held_out_writer("data/1c/apa/w1.dat"))
    assert [label for label, _, _ in kept] == ["h"]
    assert kept[0][1][0][1].tolist() == [15.0, -25.0]  # y flipped to point down
    assert reject.load_letters(path, held_out=not is_held_out_writer("data/1c/apa/w1.dat")) == []


def test_scribbles_are_canvases_with_ink() -> None:
    canvas = reject.scribble(np.random.default_rng(3))
    assert canvas.shape == (280, 280, 4) and canvas[:, :, 3].max() > 200

"""Tests of evaluation metrics, the text report and the plots, on hand-made and fake predictions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_bot.data import Split
from mnist_bot.recognizer import Recognizer
from mnist_bot.runtime import FakeRuntime
from mnist_bot.training.evaluate import Evaluation, evaluate, format_report
from mnist_bot.training.report import write_report


def one_hot(digit: int, confidence: float) -> list[float]:
    """Return 10 probabilities with `confidence` on `digit` and the rest spread evenly."""
    row = [(1.0 - confidence) / 9] * 10
    row[digit] = confidence
    return row


@pytest.fixture
def hand_made() -> Evaluation:
    """Six answers: four right, two wrong (1 read as 7 at 60%, 3 read as 5 at 95%)."""
    labels = np.array([0, 1, 2, 3, 0, 1])
    rows = [
        one_hot(0, 0.9),
        one_hot(7, 0.6),
        one_hot(2, 0.8),
        one_hot(5, 0.95),
        one_hot(0, 0.7),
        one_hot(1, 0.99),
    ]
    return Evaluation("hand.tflite", labels, np.array(rows, dtype=np.float32))


def test_accuracy_predictions_and_loss(hand_made: Evaluation) -> None:
    assert hand_made.predicted.tolist() == [0, 7, 2, 5, 0, 1]
    assert hand_made.accuracy == pytest.approx(4 / 6)
    picked = [0.9, 0.4 / 9, 0.8, 0.05 / 9, 0.7, 0.99]  # probability given to the true digit
    assert hand_made.loss == pytest.approx(-np.mean(np.log(picked)), rel=1e-5)


def test_loss_stays_finite_when_the_true_digit_got_zero() -> None:
    probabilities = np.zeros((1, 10), dtype=np.float32)
    probabilities[0, 3] = 1.0
    evaluation = Evaluation("m", np.array([4]), probabilities)
    assert math.isfinite(evaluation.loss) and evaluation.loss == pytest.approx(-math.log(1e-7), rel=1e-4)


def test_confusion_rows_are_true_digits_columns_predictions(hand_made: Evaluation) -> None:
    confusion = hand_made.confusion
    assert confusion.shape == (10, 10)
    assert confusion.sum() == 6
    assert confusion[0, 0] == 2 and confusion[1, 1] == 1 and confusion[2, 2] == 1
    assert confusion[1, 7] == 1 and confusion[3, 5] == 1
    assert confusion[7, 1] == 0 and confusion[5, 3] == 0
    assert confusion.sum(axis=1).tolist() == [2, 2, 1, 1, 0, 0, 0, 0, 0, 0]


def test_per_class_precision_and_recall(hand_made: Evaluation) -> None:
    per_class = hand_made.per_class()
    assert list(per_class) == ["precision", "recall"]
    precision, recall = per_class["precision"], per_class["recall"]
    assert len(precision) == len(recall) == 10
    assert precision[0] == 1.0 and recall[0] == 1.0
    assert precision[1] == 1.0 and recall[1] == 0.5  # one of two 1s found, no false 1s
    assert precision[7] == 0.0 and precision[5] == 0.0  # only wrong answers said 7 and 5
    assert recall[3] == 0.0
    assert precision[9] == 0.0 and recall[9] == 0.0  # no 9 at all: zero, not a division error


def test_misclassified_lists_the_most_confident_mistakes_first(hand_made: Evaluation) -> None:
    assert hand_made.misclassified().tolist() == [3, 1]


def test_misclassified_is_empty_when_all_are_right() -> None:
    evaluation = Evaluation("m", np.array([2, 4]), np.array([one_hot(2, 0.8), one_hot(4, 0.9)], np.float32))
    assert evaluation.misclassified().tolist() == []
    assert evaluation.accuracy == 1.0


def test_as_dict_is_json_ready(hand_made: Evaluation) -> None:
    result = json.loads(json.dumps(hand_made.as_dict()))
    assert result["model"] == "hand.tflite"
    assert result["accuracy"] == round(4 / 6, 5)
    assert result["n"] == 6 and result["errors"] == 2
    assert result["loss"] == round(hand_made.loss, 5)
    assert result["recall"][1] == 0.5 and len(result["precision"]) == 10
    assert result["confusion"][3][5] == 1


def test_format_report_text(hand_made: Evaluation) -> None:
    text = format_report(hand_made)
    lines = text.splitlines()
    assert lines[0].startswith("model hand.tflite: accuracy 66.6667% on 6 test images")
    assert f"loss {hand_made.loss:.4f}" in lines[0] and lines[0].endswith("2 errors")
    assert "digit  precision  recall" in lines
    assert "  1      1.0000   0.5000" in lines
    assert "confusion (rows: true digit, columns: predicted)" in lines
    row_one = next(line for line in lines if line.startswith("  1  ") and len(line.split()) == 11)
    assert [int(v) for v in row_one.split()[1:]] == [0, 1, 0, 0, 0, 0, 0, 1, 0, 0]


def uniform_digits(values: list[int]) -> np.ndarray:
    """Return uint8 images whose uniform grey makes FakeRuntime answer each given digit."""
    # FakeRuntime favours int(mean * 10) % 10: a grey of 25 k + 12 (mean (25 k + 12) / 255) gives k.
    return np.stack([np.full((28, 28), 25 * k + 12, dtype=np.uint8) for k in values])


@pytest.fixture
def fake_split() -> Split:
    """Twelve fake test images: the fake runtime gets ten right and two wrong."""
    answers = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 3, 3]
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 8, 3], dtype=np.uint8)
    return Split(uniform_digits(answers), labels)


def test_evaluate_runs_the_recognizer_in_batches(fake_split: Split) -> None:
    runtime = FakeRuntime()
    evaluation = evaluate(Recognizer(runtime), fake_split, "fake.tflite", batch_size=5)
    assert runtime.calls == 3  # 12 images in batches of 5
    assert evaluation.model == "fake.tflite"
    assert evaluation.probabilities.shape == (12, 10)
    np.testing.assert_allclose(evaluation.probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert evaluation.predicted.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 3, 3]
    assert evaluation.accuracy == pytest.approx(11 / 12)
    assert evaluation.misclassified().tolist() == [10]


def png_size(path: Path) -> tuple[int, int]:
    """Open a PNG fully (it must decode) and return its size."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def test_write_report_writes_plots_and_metrics(fake_split: Split, tmp_path: Path) -> None:
    evaluation = evaluate(Recognizer(FakeRuntime()), fake_split, "fake.tflite")
    history = {
        "loss": [0.9, 0.5, 0.3],
        "accuracy": [0.7, 0.85, 0.9],
        "val_loss": [0.6, 0.4, 0.35],
        "val_accuracy": [0.8, 0.88, 0.9],
    }
    files = write_report(evaluation, fake_split.images, {"history": history}, tmp_path / "report")
    names = [f.name for f in files]
    assert names == [
        "confusion_matrix.png",
        "misclassified.png",
        "reliability.png",
        "training_curves.png",
        "metrics.json",
    ]
    for path in files[:3]:
        width, height = png_size(path)
        assert width > 300 and height > 150
    assert json.loads((tmp_path / "report" / "metrics.json").read_text()) == evaluation.as_dict()


def test_write_report_without_history_or_mistakes(tmp_path: Path) -> None:
    images = uniform_digits([4, 7])
    evaluation = evaluate(Recognizer(FakeRuntime()), Split(images, np.array([4, 7], np.uint8)), "fake")
    assert evaluation.accuracy == 1.0
    files = write_report(evaluation, images, {}, tmp_path)
    assert [f.name for f in files] == [
        "confusion_matrix.png",
        "misclassified.png",
        "reliability.png",
        "metrics.json",
    ]
    assert not (tmp_path / "training_curves.png").exists()
    png_size(tmp_path / "misclassified.png")


def test_reliability_bins_answers_by_confidence_and_measures_the_gap() -> None:
    from mnist_bot.training.evaluate import reliability

    confidence = np.array([0.95, 0.95, 0.95, 0.95, 0.55, 0.55])
    correct = np.array([True, True, True, False, True, False])
    curve = reliability(confidence, correct)
    assert curve.counts.tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 0, 4]
    assert curve.accuracy[9] == 0.75 and curve.accuracy[5] == 0.5 and np.isnan(curve.accuracy[0])
    assert curve.ece == pytest.approx((4 * 0.2 + 2 * 0.05) / 6)
    assert curve.as_dict()["accuracy"][0] is None
    perfect = reliability(np.array([1.0, 1.0]), np.array([True, True]))
    assert perfect.ece == 0.0 and perfect.counts[9] == 2  # confidence 1.0 falls in the last bin

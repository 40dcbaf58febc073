"""Tests of the realistic extra training data: photos, drawings and number digits of MNIST training digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnist_bot.cli import main
from mnist_bot.data import Mnist
from mnist_bot.recognizer import Recognizer
from mnist_bot.training.realistic import build_extra, flagged_ones, mnist_number_digits
from mnist_bot.training.train import load_extra


def _agreement(recognizer: Recognizer, images: np.ndarray, labels: np.ndarray) -> float:
    """Return the share of uint8 28x28 inputs the shipped model reads as their label."""
    probabilities = recognizer.classify28(images.astype(np.float32) / 255)
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def test_number_digits_carry_the_labels_of_the_digits_they_show(mnist: Mnist) -> None:
    digits = mnist_number_digits(mnist.train, numbers=12, rng=np.random.default_rng(3))
    assert digits.images.dtype == np.uint8 and digits.images.shape[1:] == (28, 28)
    assert len(digits.labels) >= 2 * 9  # most numbers are cut into the right count of digits
    # A label shifted by one digit would agree about one time in ten.
    assert _agreement(Recognizer.load(), digits.images, digits.labels) >= 0.9


def test_build_extra_joins_every_part(mnist: Mnist) -> None:
    extra = build_extra(mnist.train, None, photos=6, canvases=5, unipen_renders=0, seed=0, numbers=3)
    assert len(extra.labels) >= 6 + 5 + 3 * 2 - 2  # a photo may hold no readable digit
    assert extra.images.shape == (len(extra.labels), 28, 28) and extra.labels.max() <= 9
    assert _agreement(Recognizer.load(), extra.images, extra.labels) >= 0.8


def test_flagged_ones_are_read_as_ones_by_their_labels(mnist: Mnist) -> None:
    ones = flagged_ones(mnist.train, count=10, rng=np.random.default_rng(5))
    assert len(ones.labels) >= 8 and set(ones.labels.tolist()) == {1}
    # The flag shows in the model input: a bare MNIST 1 has little ink in its upper left.
    upper_left = ones.images[:, 4:14, :11].astype(np.float32).sum(axis=(1, 2))
    assert np.median(upper_left) > 0.02 * ones.images.astype(np.float32).sum(axis=(1, 2)).mean()


def test_make_extra_writes_data_that_training_reads(
    tmp_path: Path, mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "extra.npz"
    sizes = ["--photos", "3", "--canvases", "2", "--unipen-renders", "0", "--numbers", "2"]
    assert main(["make-extra", str(out), *sizes, "--mnist-dir", str(mnist_dir)]) == 0
    extra = load_extra(out)
    assert capsys.readouterr().out.strip() == f"wrote {len(extra.labels)} digits to {out}"
    assert len(extra.labels) >= 3 + 2 + 2 * 2 - 2

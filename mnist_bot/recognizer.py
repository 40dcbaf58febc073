"""Recognizer: preprocessing plus a model runtime, behind the public API."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnist_bot import preprocess, segment
from mnist_bot.config import load_settings, resolve_model_path
from mnist_bot.preprocess import Box, ImageInput, PreparedDigit
from mnist_bot.runtime import Runtime, load_runtime

# Calibrated on MNIST validation digits and synthetic photos: below these the answer is a guess.
MIN_CONFIDENCE = 0.60
MIN_MARGIN = 0.40


@dataclass(frozen=True)
class Prediction:
    """One digit's answer and what the model saw."""

    digit: int
    confidence: float
    probabilities: tuple[float, ...]
    unsure: bool
    input28: np.ndarray  # (28, 28) float32 in [0, 1]
    box: Box | None = None  # where the digit was found in the input, in input pixels

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


def is_unsure(probabilities: np.ndarray, digit_like: bool) -> bool:
    """Flag low confidence, a small top-two margin, or an input that does not look like a digit."""
    top_two = np.sort(probabilities)[-2:]
    return bool(top_two[1] < MIN_CONFIDENCE or top_two[1] - top_two[0] < MIN_MARGIN or not digit_like)


def _prediction(prepared: PreparedDigit, probabilities: np.ndarray) -> Prediction:
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
    )


def settle_joins(singles: list[Prediction], joined: dict[int, Prediction]) -> list[Prediction]:
    """Replace two neighbours by their join where the pieces are unsure and the whole is sure.

    A thin pen under blur can break one digit in two; each piece alone reads as a weak guess,
    whereas two real digits side by side each read clearly.
    """
    digits: list[Prediction] = []
    i = 0
    while i < len(singles):
        join = joined.get(i)
        if join is not None and _join_wins(singles[i], singles[i + 1], join):
            digits.append(join)
            i += 2
        else:
            digits.append(singles[i])
            i += 1
    return digits


def _join_wins(left: Prediction, right: Prediction, join: Prediction) -> bool:
    """Tell whether a join reads better than the two pieces it is made of."""
    weaker = min(left.confidence, right.confidence)
    return (left.unsure or right.unsure) and not join.unsure and join.confidence > weaker


class Recognizer:
    """Recognise handwritten digits in photos, drawings and arrays."""

    def __init__(self, runtime: Runtime, metadata: dict[str, Any] | None = None) -> None:
        self.runtime = runtime
        self.metadata = metadata or {}

    @classmethod
    def load(cls, path: str | Path | None = None) -> Recognizer:
        """Load a model: `path`, else MNIST_BOT_MODEL, else the shipped default."""
        model_path = resolve_model_path(path if path is not None else load_settings().model_path)
        return cls(load_runtime(model_path), _read_metadata(model_path))

    def predict(self, image: ImageInput) -> Prediction:
        """Recognise the single digit in `image`."""
        return self._classify([preprocess.prepare_digit(image)])[0]

    def predict_batch(self, images: Sequence[ImageInput]) -> list[Prediction]:
        """Recognise one digit per image with a single runtime call."""
        return self._classify([preprocess.prepare_digit(image) for image in images])

    def read_number(self, image: ImageInput) -> NumberReading:
        """Read a multi-digit number, left to right."""
        return self._read_layout(segment.prepare_number(image))

    def read(self, image: ImageInput) -> NumberReading:
        """Read whatever the image holds: a number of two or more digits, or one digit."""
        return self._read_layout(segment.prepare_digit_or_number(image))

    def _read_layout(self, layout: segment.NumberLayout) -> NumberReading:
        """Classify a number's digits and possible joins in one runtime call, then settle the joins."""
        predictions = self._classify(layout.digits + list(layout.joins.values()))
        singles = predictions[: len(layout.digits)]
        joined = dict(zip(layout.joins, predictions[len(layout.digits) :], strict=True))
        digits = settle_joins(singles, joined)
        return NumberReading(text="".join(str(p.digit) for p in digits), digits=digits)

    def classify28(self, batch: np.ndarray) -> np.ndarray:
        """Return (N, 10) probabilities for already-prepared (N, 28, 28) float32 inputs."""
        return self.runtime.predict(np.asarray(batch, dtype=np.float32))

    def _classify(self, prepared: list[PreparedDigit]) -> list[Prediction]:
        """Run the model once over all prepared digits."""
        if not prepared:
            return []
        probabilities = self.classify28(np.stack([p.input28 for p in prepared]))
        return [_prediction(p, probs) for p, probs in zip(prepared, probabilities, strict=True)]


def _read_metadata(model_path: Path) -> dict[str, Any]:
    """Read the `.json` written beside a model at training time, if any."""
    meta = model_path.with_suffix(".json")
    try:
        return dict(json.loads(meta.read_text())) if meta.is_file() else {}
    except (OSError, ValueError):
        return {}

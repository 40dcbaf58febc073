"""Measure a model on the MNIST test set through the serving runtime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mnist_bot.data import Split
from mnist_bot.recognizer import Recognizer


@dataclass(frozen=True)
class Evaluation:
    """Test-set metrics; probabilities is float32 (N, 10)."""

    model: str
    labels: np.ndarray
    probabilities: np.ndarray

    @property
    def predicted(self) -> np.ndarray:
        """Return the predicted digit per image."""
        return np.argmax(self.probabilities, axis=1)

    @property
    def accuracy(self) -> float:
        """Return the share of correct answers."""
        return float(np.mean(self.predicted == self.labels))

    @property
    def loss(self) -> float:
        """Return the mean cross-entropy."""
        picked = self.probabilities[np.arange(len(self.labels)), self.labels]
        return float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))

    @property
    def confusion(self) -> np.ndarray:
        """Return the (10, 10) confusion matrix: rows true, columns predicted."""
        matrix = np.zeros((10, 10), dtype=np.int64)
        np.add.at(matrix, (self.labels, self.predicted), 1)
        return matrix

    def per_class(self) -> dict[str, list[float]]:
        """Return precision and recall per digit."""
        matrix = self.confusion.astype(np.float64)
        precision = np.diag(matrix) / np.maximum(matrix.sum(axis=0), 1)
        recall = np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)
        return {
            "precision": [round(float(p), 5) for p in precision],
            "recall": [round(float(r), 5) for r in recall],
        }

    def misclassified(self) -> np.ndarray:
        """Return indices of wrong answers, most confident mistakes first."""
        wrong = np.flatnonzero(self.predicted != self.labels)
        return wrong[np.argsort(-self.probabilities[wrong].max(axis=1))]

    def as_dict(self) -> dict[str, Any]:
        """Return the metrics as JSON-friendly values."""
        return {
            "model": self.model,
            "accuracy": round(self.accuracy, 5),
            "loss": round(self.loss, 5),
            "n": len(self.labels),
            "errors": int((self.predicted != self.labels).sum()),
            **self.per_class(),
            "confusion": self.confusion.tolist(),
            "reliability": reliability(
                self.probabilities.max(axis=1), self.predicted == self.labels
            ).as_dict(),
        }


@dataclass(frozen=True)
class Reliability:
    """Answers binned by confidence: how often each bin was right, against how sure it was."""

    confidence: np.ndarray  # (bins,) mean confidence of each bin's answers (NaN where empty)
    accuracy: np.ndarray  # (bins,) share right in each bin (NaN where empty)
    counts: np.ndarray  # (bins,) answers in each bin
    ece: float  # expected calibration error: the count-weighted gap between the two

    def as_dict(self) -> dict[str, Any]:
        """Return the bins as JSON-friendly lists (None for empty bins)."""
        clean = [
            [None if np.isnan(v) else round(float(v), 4) for v in a] for a in (self.confidence, self.accuracy)
        ]
        return {
            "ece": round(self.ece, 4),
            "confidence": clean[0],
            "accuracy": clean[1],
            "counts": self.counts.tolist(),
        }


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> Reliability:
    """Bin answers by confidence into `bins` equal-width bins over [0, 1] and measure each bin."""
    confidence, correct = np.asarray(confidence, np.float64), np.asarray(correct, np.float64)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, confidence, bins) / counts
        accuracy = np.bincount(index, correct, bins) / counts
    gaps = np.nan_to_num(np.abs(accuracy - mean_confidence)) * counts
    return Reliability(mean_confidence, accuracy, counts, float(gaps.sum() / max(len(confidence), 1)))


def evaluate(recognizer: Recognizer, test: Split, model_name: str, batch_size: int = 1000) -> Evaluation:
    """Run every test image through the recognizer's runtime in batches."""
    x = test.images.astype(np.float32) / 255.0
    probabilities = np.concatenate(
        [recognizer.classify28(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    )
    return Evaluation(model_name, test.labels.astype(np.int64), probabilities)


def format_report(evaluation: Evaluation) -> str:
    """Render accuracy, per-class precision/recall and the confusion matrix as text."""
    per_class = evaluation.per_class()
    errors = int((evaluation.predicted != evaluation.labels).sum())
    lines = [
        f"model {evaluation.model}: accuracy {evaluation.accuracy:.4%} on {len(evaluation.labels)} "
        f"test images, loss {evaluation.loss:.4f}, {errors} errors",
        "",
        "digit  precision  recall",
    ]
    lines += [
        f"  {d}      {p:.4f}   {r:.4f}" for d, (p, r) in enumerate(zip(*per_class.values(), strict=True))
    ]
    lines += [
        "",
        "confusion (rows: true digit, columns: predicted)",
        "     " + "".join(f"{d:>6}" for d in range(10)),
    ]
    lines += [f"  {d}  " + "".join(f"{v:>6}" for v in row) for d, row in enumerate(evaluation.confusion)]
    return "\n".join(lines)

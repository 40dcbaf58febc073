"""Train the "not a digit" model on rendered digits and non-digits, and calibrate where it rejects."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mnist_bot.training.architectures import reject
from mnist_bot.training.reject import DIGIT
from mnist_bot.training.train import _versions, convert_to_tflite

log = logging.getLogger(__name__)

VALIDATION_SHARE = 0.1
KEPT_DIGITS = 0.998  # the threshold keeps this share of held-back digits: losing a digit costs more


@dataclass(frozen=True)
class RejectResult:
    """Where the reject model went and how it did on the held-back inputs."""

    tflite_path: Path
    metadata: dict[str, Any]


def split(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """Hold back a random tenth of the inputs for calibration: x_train, y_train, x_val, y_val."""
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(len(y) * (1 - VALIDATION_SHARE))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def calibrate(p_digit: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Choose the P(digit) under which an input is no digit: the one keeping KEPT_DIGITS of digits."""
    digits, others = p_digit[y == DIGIT], p_digit[y != DIGIT]
    threshold = float(min(0.5, np.quantile(digits, 1 - KEPT_DIGITS)))
    return {
        "threshold": round(threshold, 6),
        "validation_digits_kept": round(float(np.mean(digits >= threshold)), 5),
        "validation_non_digits_rejected": round(float(np.mean(others < threshold)), 5),
        "validation_n": len(y),
    }


def train_reject(
    x: np.ndarray, y: np.ndarray, out_dir: Path, *, epochs: int = 8, seed: int = 1, command: str = ""
) -> RejectResult:
    """Train on uint8 (N, 28, 28) inputs with 1 = digit; write reject.keras/.tflite/.json."""
    keras.utils.set_random_seed(seed)
    x_train, y_train, x_val, y_val = split(x.astype(np.float32) / 255.0, y, seed)
    model = reject()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    share = float(np.mean(y_train == DIGIT))  # balance the classes: each counts as half
    weights = {DIGIT: 0.5 / share, 1 - DIGIT: 0.5 / (1 - share)}
    started = time.perf_counter()
    history = model.fit(
        x_train[..., None], y_train, batch_size=128, epochs=epochs, class_weight=weights, verbose=2,
        validation_data=(x_val[..., None], y_val),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(out_dir / "reject.keras")
    convert_to_tflite(model, out_dir / "reject.tflite")
    p_digit = model.predict(x_val[..., None], batch_size=1000, verbose=0)[:, 0]
    metadata = {
        "name": "reject",
        "command": command,
        "epochs": epochs,
        "seed": seed,
        "parameters": int(model.count_params()),
        "n_train": len(y_train),
        "digit_share": round(share, 4),
        "training_seconds": round(seconds, 1),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        "history": {k: [round(float(v), 5) for v in vals] for k, vals in history.history.items()},
    } | calibrate(p_digit, y_val)
    (out_dir / "reject.json").write_text(json.dumps(metadata, indent=2) + "\n")
    log.info("Wrote %s (threshold %.4f)", out_dir / "reject.tflite", metadata["threshold"])
    return RejectResult(out_dir / "reject.tflite", metadata)

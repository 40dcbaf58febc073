"""Train the "not a digit" head on the digit CNN's frozen features, and ship both in one `.tflite`.

The shipped CNN already knows digit shapes: its last conv stage (3x3x128, where strokes still lie
where they were drawn) and its penultimate layer (128 units, what the digit answer reads) separate a
digit from a letter or a shadow far better than a small model trained from pixels. A small head on
those frozen features answers P(digit); the digit model's weights, and so its ten probabilities,
stay exactly as they are. The combined model gives both in one runtime call.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from mnist_bot.recognizer import is_unsure
from mnist_bot.runtime import LiteRtRuntime
from mnist_bot.training.reject import DIGIT, RejectData
from mnist_bot.training.train import _versions, convert_to_tflite

log = logging.getLogger(__name__)

VALIDATION_SHARE = 0.1
# Losing a real digit costs far more than reading a letter: the rule may turn away at most this
# share of the calibration digits (held-out UNIPEN writers, held-back rendered inputs), each set.
MAX_DIGITS_LOST = 0.0005
HEAD_UNITS = 32
DIGITS_OUTPUT, DIGITNESS_OUTPUT = "digits", "is_digit"
Scored = tuple[np.ndarray, np.ndarray, np.ndarray]  # P(digit), the digit answer's unsure flag, 1 a digit


@dataclass(frozen=True)
class Calibration:
    """The calibration inputs: float32 (N, 28, 28) and 1 for a digit, by set name."""

    sets: dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class RejectResult:
    """Where the combined model went and how the reject did on the calibration inputs."""

    tflite_path: Path
    metadata: dict[str, Any]


def split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold back a random tenth of n inputs for calibration: train and held-back indices."""
    order = np.random.default_rng(seed).permutation(n)
    cut = int(n * (1 - VALIDATION_SHARE))
    return order[:cut], order[cut:]


def head_features(cnn: keras.Model) -> Any:
    """Return the tensor the head reads: the last conv stage, flattened, and the penultimate activations.

    The penultimate layer alone was trained to tell digits apart, not digits from the rest: a
    letter's features there sit among some digit's. The conv stage still shows the strokes.
    """
    flat = next(layer for layer in cnn.layers if isinstance(layer, layers.Flatten)).output
    return layers.Concatenate(name="head_features")([flat, cnn.layers[-1].input])


def feature_model(cnn: keras.Model) -> keras.Model:
    """Return the CNN up to the features the head reads."""
    return keras.Model(cnn.inputs, head_features(cnn), name="features")


def head(units: int) -> keras.Sequential:
    """Build the reject head: features -> P(digit)."""
    return keras.Sequential(
        [
            keras.Input((units,)),
            layers.Dense(HEAD_UNITS, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="reject_head",
    )


def combined(cnn: keras.Model, reject_head: keras.Model) -> keras.Model:
    """Return one model giving the CNN's ten probabilities and the head's P(digit)."""
    return keras.Model(
        cnn.inputs,
        {DIGITS_OUTPUT: cnn.outputs[0], DIGITNESS_OUTPUT: reject_head(head_features(cnn))},
        name="cnn_reject",
    )


def fit_head(
    features: np.ndarray, y: np.ndarray, *, epochs: int, seed: int
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Train the head on frozen features, each class counting as half."""
    keras.utils.set_random_seed(seed)
    model = head(features.shape[1])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    share = float(np.mean(y == DIGIT))
    weights = {DIGIT: 0.5 / share, 1 - DIGIT: 0.5 / (1 - share)}
    history = model.fit(features, y, batch_size=256, epochs=epochs, class_weight=weights, verbose=2)
    return model, {k: [round(float(v), 5) for v in vals] for k, vals in history.history.items()}


def reject_mask(p_digit: np.ndarray, unsure: np.ndarray, low: float, doubtful: float) -> np.ndarray:
    """Flag inputs as no digit: P(digit) under `low`, or under `doubtful` with an unsure digit answer."""
    return (p_digit < low) | ((p_digit < doubtful) & unsure)


def choose_rule(scored: dict[str, Scored]) -> dict[str, float]:
    """Pick the page's (low, doubtful) and the lone cut-out's (alone, alone_doubtful) levels.

    `scored` maps a set name to (P(digit), unsure flags, is-digit labels). On a page the pair
    rejecting the most non-digits while every set loses <= MAX_DIGITS_LOST of its digits; alone,
    the lowest calibration digit's P(digit), and the highest doubtful level that loses none.
    """
    # A head that reads the conv stage is surest of its digits: its levels start far under 1e-4.
    grid = np.concatenate([np.geomspace(1e-6, 0.05, 40), np.linspace(0.06, 0.9, 29)])
    low, doubtful = _most_rejecting(scored, grid, grid, MAX_DIGITS_LOST)
    alone = alone_level(scored)
    _, alone_doubtful = _most_rejecting(scored, np.array([alone]), np.append(grid, alone), 0.0)
    # What is no digit alone, losing no calibration digit, is no digit on a page either.
    low, doubtful = max(low, alone), max(doubtful, alone_doubtful)
    rule = {"low": low, "doubtful": doubtful, "alone": alone, "alone_doubtful": alone_doubtful}
    return {name: _round_down(level) for name, level in rule.items()}


def _round_down(level: float, digits: int = 4) -> float:
    """Round a level down to `digits` significant digits: rounded up, it could turn away its own digit."""
    if level <= 0:
        return 0.0
    step = 10.0 ** (np.floor(np.log10(level)) - digits + 1)
    return float(np.floor(level / step) * step)


def _most_rejecting(
    scored: dict[str, Scored], lows: np.ndarray, doubtfuls: np.ndarray, max_lost: float
) -> tuple[float, float]:
    """Return the (low, doubtful) pair rejecting the most non-digits while each set loses <= max_lost."""
    best = (-1.0, float(lows[0]), float(lows[0]))
    for low in lows:
        for doubtful in doubtfuls[doubtfuls >= low]:
            if any(_lost(s, low, doubtful) > max_lost for s in scored.values()):
                continue
            rejected = np.mean([_rejected(s, low, doubtful) for s in scored.values() if (s[2] == 0).any()])
            best = max(best, (float(rejected), float(low), float(doubtful)))
    return best[1], best[2]


def alone_level(scored: dict[str, Scored]) -> float:
    """Return the P(digit) no calibration digit falls under: where a lone cut-out is turned away."""
    return float(min(s[0][s[2] == DIGIT].min() for s in scored.values() if (s[2] == DIGIT).any()))


def _lost(scored: Scored, low: float, doubtful: float) -> float:
    """Return the share of a set's digits the rule turns away."""
    p, unsure, y = scored
    digits = y == DIGIT
    return float(reject_mask(p[digits], unsure[digits], low, doubtful).mean()) if digits.any() else 0.0


def _rejected(scored: Scored, low: float, doubtful: float) -> float:
    """Return the share of a set's non-digits the rule turns away."""
    p, unsure, y = scored
    return float(reject_mask(p[y != DIGIT], unsure[y != DIGIT], low, doubtful).mean())


def score(runtime: LiteRtRuntime, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return P(digit) and the digit answer's unsure flag of float32 (N, 28, 28) inputs, from LiteRT."""
    parts = [runtime.predict_with_digitness(batch) for batch in np.array_split(x, max(1, len(x) // 1000))]
    probabilities = np.concatenate([p for p, _ in parts])
    p_digit = np.concatenate([d for _, d in parts if d is not None])
    return p_digit, np.array([is_unsure(p, digit_like=True) for p in probabilities])


def report(
    scored: dict[str, Scored],
    rule: dict[str, float],
    names: Sequence[str],
    sources: np.ndarray,
) -> dict[str, dict[str, float]]:
    """Say, per calibration set (and per source of the held-back set), how many of each class stay.

    `non_digits_rejected` is on a page; `alone_rejected` is for a cut-out alone in its image.
    """
    held_back = scored.get("held-back renders")
    parts = dict(scored)
    if held_back is not None:
        for i, source in enumerate(names):
            mask = sources == i
            parts[f"held-back {source}"] = (held_back[0][mask], held_back[1][mask], held_back[2][mask])
    out: dict[str, dict[str, float]] = {}
    for name, s in parts.items():
        out[name] = {"n": len(s[0]), "digits_lost": _lost(s, rule["low"], rule["doubtful"])}
        if (s[2] != DIGIT).any():
            out[name]["non_digits_rejected"] = _rejected(s, rule["low"], rule["doubtful"])
            out[name]["alone_rejected"] = _rejected(s, rule["alone"], rule["alone_doubtful"])
    return {k: {m: round(float(v), 5) for m, v in vals.items()} for k, vals in out.items()}


def train_reject(
    data: RejectData,
    calibration: Calibration,
    cnn_path: Path,
    out_dir: Path,
    *,
    epochs: int = 20,
    seed: int = 1,
    command: str = "",
) -> RejectResult:
    """Train the head on `data`, calibrate its rule, write the combined tflite and the head beside the CNN."""
    cnn = keras.models.load_model(cnn_path, compile=False)
    x = data.x.astype(np.float32) / 255.0
    train_idx, held_idx = split(len(data.y), seed)
    features = feature_model(cnn).predict(x[..., None], batch_size=1000, verbose=0)
    started = time.perf_counter()
    reject_head, history = fit_head(features[train_idx], data.y[train_idx], epochs=epochs, seed=seed)
    seconds = time.perf_counter() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    reject_head.save(out_dir / "reject.keras")
    tflite_path = out_dir / f"{cnn_path.stem}.tflite"
    convert_to_tflite(combined(cnn, reject_head), tflite_path)
    runtime = LiteRtRuntime(tflite_path)
    sets = {"held-back renders": (x[held_idx], data.y[held_idx]), **calibration.sets}
    scored: dict[str, Scored] = {name: (*score(runtime, xs), ys) for name, (xs, ys) in sets.items()}
    rule = choose_rule(scored)
    metadata = {
        "reject": {
            "command": command,
            "head": f"Dense({HEAD_UNITS}, relu) -> Dense(1, sigmoid) on the frozen {features.shape[1]} "
            "features: the last conv stage flattened and the penultimate activations",
            "parameters": int(reject_head.count_params()),
            "epochs": epochs,
            "seed": seed,
            "n_train": len(train_idx),
            "sources": {name: int((data.source[train_idx] == i).sum()) for i, name in enumerate(data.names)},
            "training_seconds": round(seconds, 1),
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "versions": _versions(),
            "history": history,
            "max_digits_lost": MAX_DIGITS_LOST,
            "calibration": report(scored, rule, data.names, data.source[held_idx]),
            **rule,
        }
    }
    log.info("Wrote %s (rule %s)", tflite_path, rule)
    return RejectResult(tflite_path, metadata)


def write_metadata(result: RejectResult, model_json: Path, out_json: Path) -> None:
    """Write the digit model's `.json` with the reject's description and rule added (or replaced)."""
    meta = json.loads(model_json.read_text()) if model_json.is_file() else {}
    out_json.write_text(json.dumps(meta | result.metadata, indent=2) + "\n")

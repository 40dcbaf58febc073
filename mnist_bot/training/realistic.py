"""Extra training data that looks like what users send, seen through our own preprocessing.

MNIST alone teaches the model MNIST's pen. Real drawings come from other writers and pens, and
real photos pass through thresholding and stroke normalisation first. Rendering UNIPEN pen
trajectories as canvases and MNIST *training* digits as phone photos (alone, or side by side as
numbers cut apart by `segment.prepare_number`), then running them through the serving
preprocessing, gives the model the exact inputs it will see in service.
UNIPEN writers are split by a stable hash so that benchmarks can hold some writers out.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

import numpy as np

from mnist_bot.data import Split
from mnist_bot.errors import RecognizerError
from mnist_bot.preprocess import prepare_digit
from mnist_bot.segment import prepare_number
from mnist_bot.training import synthetic as syn

log = logging.getLogger(__name__)

UNIPEN_FILE = "unipen_1a_digits.jsonl.gz"
HELD_OUT_SHARE = 5  # one writer in five is never trained on


def is_held_out_writer(writer: str) -> bool:
    """Tell whether a UNIPEN writer is reserved for evaluation (a stable 20% of writers)."""
    return int(hashlib.sha256(writer.encode()).hexdigest(), 16) % HELD_OUT_SHARE == 0


def _prepared(items: Iterable[tuple[int, Callable[[], object]]]) -> Split:
    """Render and preprocess each (label, make_image) pair, skipping inputs with no digit."""
    images, labels = [], []
    for label, make_image in items:
        try:
            images.append(prepare_digit(make_image()).input28)  # type: ignore[arg-type]
        except RecognizerError:
            continue  # a fragmentary sample; the pipeline rejects it in service too
        labels.append(label)
    return _as_split(images, labels)


def _as_split(images: list[np.ndarray], labels: list[int]) -> Split:
    """Store float 0-1 model inputs as a uint8 Split, like MNIST's own."""
    x = np.round(np.stack(images) * 255).astype(np.uint8) if images else np.zeros((0, 28, 28), np.uint8)
    return Split(x, np.asarray(labels, dtype=np.uint8))


def unipen_canvases(handwriting_dir: Path, renders: int, rng: np.random.Generator) -> Split:
    """Draw each training writer's UNIPEN digits `renders` times as canvas drawings."""
    samples = [s for s in syn.load_unipen(handwriting_dir / UNIPEN_FILE) if not is_held_out_writer(s[2])]
    items = [(label, partial(syn.canvas_of_strokes, strokes, rng)) for label, strokes, _ in samples]
    return _prepared(items * renders)


def mnist_photos(train: Split, count: int, rng: np.random.Generator) -> Split:
    """Photograph `count` random MNIST training digits with the synthetic phone camera."""
    picks = rng.choice(len(train.images), size=count, replace=False)
    return _prepared(
        (int(train.labels[i]), partial(syn.photo_of_digit, train.images[i], rng, frame=(640, 480)))
        for i in picks
    )


def mnist_number_digits(train: Split, numbers: int, rng: np.random.Generator) -> Split:
    """Photograph `numbers` numbers of 2-10 MNIST training digits; keep each digit our segmentation cuts.

    A digit in a number is drawn smaller and next to others, so it reaches the model cut and
    scaled differently from a lone digit. Numbers cut into the wrong count of digits are skipped:
    their pieces would carry the wrong labels.
    """
    images, labels = [], []
    for _ in range(numbers):
        picks = rng.choice(len(train.images), int(rng.integers(2, 11)), replace=False)
        try:
            found = prepare_number(syn.photo_of_number([train.images[i] for i in picks], rng)).digits
        except RecognizerError:
            continue
        if len(found) == len(picks):
            images += [digit.input28 for digit in found]
            labels += [int(train.labels[i]) for i in picks]
    return _as_split(images, labels)


def mnist_canvases(train: Split, count: int, rng: np.random.Generator) -> Split:
    """Re-stroke `count` random MNIST training digits as canvas drawings of varied pens."""
    picks = rng.choice(len(train.images), size=count, replace=False)
    return _prepared(
        (int(train.labels[i]), partial(syn.canvas_of_digit, train.images[i], rng)) for i in picks
    )


def flagged_ones(train: Split, count: int, rng: np.random.Generator) -> Split:
    """Give `count` random MNIST training 1s a European flag; photograph half, draw the rest as canvases."""
    ones = np.flatnonzero(train.labels == 1)
    picks = rng.choice(ones, size=min(count, len(ones)), replace=False)
    flagged = [syn.flag_one(train.images[i], rng) for i in picks]
    return _prepared((1, _photo_or_canvas(digit, n % 2 == 1, rng)) for n, digit in enumerate(flagged))


def _photo_or_canvas(digit: np.ndarray, photo: bool, rng: np.random.Generator) -> Callable[[], object]:
    """Return how to render a digit: as a 640x480 phone photo, or as a canvas drawing."""
    if photo:
        return partial(syn.photo_of_digit, digit, rng, frame=(640, 480))
    return partial(syn.canvas_of_digit, digit, rng)


def build_extra(
    train: Split,
    handwriting_dir: Path | None,
    photos: int,
    canvases: int,
    unipen_renders: int,
    seed: int,
    numbers: int = 0,
    flagged: int = 0,
) -> Split:
    """Build the extra training set and return it as one Split."""
    rng = np.random.default_rng(seed)
    parts = {"photos": mnist_photos(train, photos, rng), "canvases": mnist_canvases(train, canvases, rng)}
    if handwriting_dir is not None and unipen_renders:
        parts["unipen"] = unipen_canvases(handwriting_dir, unipen_renders, rng)
    if numbers:
        parts["number digits"] = mnist_number_digits(train, numbers, rng)
    if flagged:
        parts["flagged 1s"] = flagged_ones(train, flagged, rng)
    for name, part in parts.items():
        log.info("extra %s: %d digits", name, len(part.labels))
    chosen = list(parts.values())
    return Split(np.concatenate([p.images for p in chosen]), np.concatenate([p.labels for p in chosen]))


def save_extra(split: Split, path: Path) -> None:
    """Write an extra-data `.npz` that `mnist-bot train --extra-data` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, x=split.images, y=split.labels)

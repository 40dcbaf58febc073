"""The "not a digit" model: a small CNN that tells a digit's 28x28 from anything else the pipeline cuts out.

The digit model answers one of ten digits for any input, so a letter, a scribble or a patch of
shadow on blank paper gets a digit too, often a confident one. Shape rules cannot tell an `h`
from a `4`; a model trained on real non-digits can. Both classes are seen exactly as in service:
every input is rendered, then cut out and normalised by the serving preprocessing.

- digits: MNIST training digits (as grey images, as phone photos, as canvases, cut from numbers)
  and UNIPEN training writers' digits drawn as canvases;
- not digits: UNIPEN training writers' letters and symbols (look-alikes such as O, l, S, Z left
  out) drawn as canvases and photographed, whatever the pipeline picks on photos of blank paper,
  and random scribbles.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mnist_bot.data import Split
from mnist_bot.errors import RecognizerError
from mnist_bot.preprocess import prepare_digit
from mnist_bot.training import realistic
from mnist_bot.training import synthetic as syn

log = logging.getLogger(__name__)

LETTERS_FILE = "unipen_1bcd_letters.jsonl.gz"
# Glyphs a person may write for a digit (the data's README names most): never taught as "not a digit".
LOOK_ALIKES = set("OoIl|ZzSsBbgq/()DTGJLYyt!")
DIGIT, NOT_DIGIT = 1, 0
Letter = tuple[str, list[np.ndarray], str]  # label, strokes (y down), writer (the source file)


@dataclass(frozen=True)
class RejectCounts:
    """How many inputs of each kind to render for the reject model's training set."""

    mnist_grey: int = 6000
    mnist_photos: int = 2000
    mnist_canvases: int = 2000
    number_photos: int = 200
    unipen_digits: int = 3000
    letter_canvases: int = 8000
    letter_photos: int = 2000
    blank_photos: int = 2000
    scribbles: int = 2000


def load_letters(path: Path, held_out: bool = False) -> list[Letter]:
    """Read verified UNIPEN letters and symbols (no look-alikes, no broken ibm samples), y down."""
    samples = []
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if record["quality"] != "OK" or record["label"] in LOOK_ALIKES or record["site"] == "lou":
                continue
            if realistic.is_held_out_writer(record["file"]) != held_out:
                continue
            strokes = [np.array(s, dtype=np.float32).reshape(-1, 2) * (1, -1) for s in record["strokes"] if s]
            # ibm's normalised part: every stroke starts at (0, 0) on its own and the glyph is lost.
            if strokes and not all(s[:, 0].min() == 0 and s[:, 1].max() == 0 for s in strokes):
                samples.append((str(record["label"]), strokes, str(record["file"])))
    return samples


def letter_photo(strokes: list[np.ndarray], rng: np.random.Generator) -> bytes:
    """Photograph a letter written on paper: its canvas drawing as the ink of a phone photo."""
    alpha = syn.canvas_of_strokes(strokes, rng)[:, :, 3]
    ink = syn.crop_to_ink(alpha).astype(np.float32) / 255.0
    height, width = 480, 640
    scale = height * float(rng.uniform(0.1, 0.5)) / max(ink.shape[0], 1)
    small = cv2.resize(ink, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return syn.photograph(syn.place(syn.rotate_mask(small, rng.uniform(-12, 12)), (height, width), rng), rng)


def scribble(rng: np.random.Generator, size: int = 280) -> np.ndarray:
    """Draw a random scribble (a few jagged or looping strokes) as a canvas: RGBA uint8."""
    strokes = []
    for _ in range(int(rng.integers(1, 4))):
        steps = rng.normal(0, 1, (int(rng.integers(4, 40)), 2)).cumsum(axis=0)
        strokes.append((steps * rng.uniform(0.5, 3.0)).astype(np.float32))
    return syn.canvas_of_strokes(strokes, rng, size)


def prepared(images: Iterable[object]) -> Iterator[np.ndarray]:
    """Yield the model input the serving pipeline makes of each image; skip those it finds empty."""
    for image in images:
        try:
            yield prepare_digit(image).input28  # type: ignore[arg-type]
        except RecognizerError:
            continue


def digit_inputs(
    train: Split, handwriting: Path, counts: RejectCounts, rng: np.random.Generator
) -> np.ndarray:
    """Render digits as users send them and return what the model sees: float32 (N, 28, 28)."""
    picks = rng.choice(len(train.images), counts.mnist_grey, replace=False)
    parts = [np.stack(list(prepared(train.images[i] for i in picks)))]
    parts.append(realistic.mnist_photos(train, counts.mnist_photos, rng).images / 255.0)
    parts.append(realistic.mnist_canvases(train, counts.mnist_canvases, rng).images / 255.0)
    parts.append(realistic.mnist_number_digits(train, counts.number_photos, rng).images / 255.0)
    unipen = [
        s
        for s in syn.load_unipen(handwriting / realistic.UNIPEN_FILE)
        if not realistic.is_held_out_writer(s[2])
    ]
    chosen = rng.choice(len(unipen), min(counts.unipen_digits, len(unipen)), replace=False)
    parts.append(np.stack(list(prepared(syn.canvas_of_strokes(unipen[i][1], rng) for i in chosen))))
    return np.concatenate(parts).astype(np.float32)


def non_digit_inputs(handwriting: Path, counts: RejectCounts, rng: np.random.Generator) -> np.ndarray:
    """Render letters, blank paper and scribbles as users send them: float32 (N, 28, 28)."""
    letters = load_letters(handwriting / LETTERS_FILE)
    canvases = rng.choice(len(letters), counts.letter_canvases, replace=False)
    photos = rng.choice(len(letters), counts.letter_photos, replace=False)
    blank = (syn.photograph(np.zeros((480, 640), np.float32), rng) for _ in range(counts.blank_photos))
    parts = [
        list(prepared(syn.canvas_of_strokes(letters[i][1], rng) for i in canvases)),
        list(prepared(letter_photo(letters[i][1], rng) for i in photos)),
        list(prepared(blank)),
        list(prepared(scribble(rng) for _ in range(counts.scribbles))),
    ]
    for name, part in zip(
        ("letter canvases", "letter photos", "blank photos", "scribbles"), parts, strict=True
    ):
        log.info("not a digit, %s: %d inputs", name, len(part))
    return np.stack([x for part in parts for x in part]).astype(np.float32)


def build_reject_data(
    train: Split, handwriting: Path, counts: RejectCounts, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return inputs (N, 28, 28) uint8, stored as MNIST's are, and labels (N,) uint8: 1 a digit, 0 not."""
    rng = np.random.default_rng(seed)
    digits = digit_inputs(train, handwriting, counts, rng)
    others = non_digit_inputs(handwriting, counts, rng)
    x = np.round(np.concatenate([digits, others]) * 255).astype(np.uint8)
    y = np.concatenate([np.full(len(digits), DIGIT), np.full(len(others), NOT_DIGIT)]).astype(np.uint8)
    return x, y

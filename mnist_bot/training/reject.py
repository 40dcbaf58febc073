"""The "not a digit" model: a small CNN that tells a digit's 28x28 from anything else the pipeline cuts out.

The digit model answers one of ten digits for any input, so a letter, a scribble or a patch of
shadow on blank paper gets a digit too, often a confident one. Shape rules cannot tell an `h`
from a `4`; a model trained on real non-digits can. Both classes are seen exactly as in service:
every input is rendered, then cut out and normalised by the serving preprocessing.

- digits: MNIST training digits (as grey images, as phone photos, as canvases, cut from numbers,
  1s given a European flag) and UNIPEN training writers' digits drawn as canvases;
- not digits: UNIPEN training writers' letters and symbols (look-alikes such as O, l, S, Z left
  out) drawn as canvases and photographed, whatever the pipeline picks on photos of blank paper,
  and random scribbles. Photos and scribbles are cut both ways the service cuts them: as one
  digit (`predict`) and as a page (`read`), whose cut-outs of a shadow or of ruled paper differ.
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

from mnist_bot import layout
from mnist_bot.data import Split
from mnist_bot.errors import RecognizerError
from mnist_bot.preprocess import Box, prepare_digit
from mnist_bot.recognizer import alternatives
from mnist_bot.training import pages, realistic
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
    flagged_ones: int = 2000
    unipen_digits: int = 3000
    letter_canvases: int = 8000
    letter_photos: int = 2000
    blank_photos: int = 2000
    scribbles: int = 2000
    pages: int = 300  # synthetic pages of training digits, cut into candidates as read_page cuts them


# Pages whose pieces teach the reject: letters beside digits, printed boxes, dashes, ruled rows.
PIECE_KINDS = ("words", "form", "words", "phone", "rows", "grid")
PAGE_SEED = 7_000_000  # far from the page benchmark's seeds (seed * 100,000 + i)
READ_CUTS = 6  # at most this many of read()'s cut-outs of one non-digit image, so no image outweighs many
DIGIT_IOU = 0.5  # a candidate this close to a written digit's box is that digit...
NON_DIGIT_IOU = 0.1  # ... one overlapping every written digit less than this is no digit


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


def read_cut_outs(images: Iterable[object], rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Yield a few of the model inputs read() classifies for each image: its digits, joins, cuts, whole."""
    for image in images:
        try:
            page = layout.ink_layout(layout.page_ink(image))  # type: ignore[arg-type]
        except RecognizerError:
            continue
        cuts = [d for line in page.lines for d in alternatives(line)] + ([page.whole] if page.whole else [])
        for i in rng.permutation(len(cuts))[:READ_CUTS]:
            yield cuts[i].input28


def _stacked(inputs: Iterable[np.ndarray]) -> np.ndarray:
    """Stack 28x28 inputs as float32 (N, 28, 28), also when there are none."""
    items = list(inputs)
    return np.stack(items).astype(np.float32) if items else np.zeros((0, 28, 28), np.float32)


def digit_inputs(
    train: Split, handwriting: Path, counts: RejectCounts, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Render digits as users send them; return what the model sees by source: float32 (N, 28, 28)."""
    picks = rng.choice(len(train.images), counts.mnist_grey, replace=False)
    unipen = [
        s
        for s in syn.load_unipen(handwriting / realistic.UNIPEN_FILE, verified=True)
        if not realistic.is_held_out_writer(s[2])
    ]
    chosen = rng.choice(len(unipen), min(counts.unipen_digits, len(unipen)), replace=False)
    return {
        "mnist grey": _stacked(prepared(train.images[i] for i in picks)),
        "mnist photos": realistic.mnist_photos(train, counts.mnist_photos, rng).images / 255.0,
        "mnist canvases": realistic.mnist_canvases(train, counts.mnist_canvases, rng).images / 255.0,
        "number digits": realistic.mnist_number_digits(train, counts.number_photos, rng).images / 255.0,
        "flagged ones": realistic.flagged_ones(train, counts.flagged_ones, rng).images / 255.0,
        "unipen digits": _stacked(prepared(syn.canvas_of_strokes(unipen[i][1], rng) for i in chosen)),
    }


def non_digit_inputs(
    handwriting: Path, counts: RejectCounts, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Render letters, blank paper and scribbles as users send them, by source: float32 (N, 28, 28).

    Each photo and scribble is cut out as one digit and, a second time, as read() cuts a page.
    """
    letters = load_letters(handwriting / LETTERS_FILE)
    canvases = rng.choice(len(letters), counts.letter_canvases, replace=False)
    picked = rng.choice(len(letters), counts.letter_photos, replace=False)
    photos = [letter_photo(letters[i][1], rng) for i in picked]
    blank = [syn.blank_photo(rng) for _ in range(counts.blank_photos)]
    scribbles = [scribble(rng) for _ in range(counts.scribbles)]
    return {
        "letter canvases": _stacked(prepared(syn.canvas_of_strokes(letters[i][1], rng) for i in canvases)),
        "letter photos": _stacked(prepared(photos)),
        "blank photos": _stacked(prepared(blank)),
        "scribbles": _stacked(prepared(scribbles)),
        "letter photos read": _stacked(read_cut_outs(photos, rng)),
        "blank photos read": _stacked(read_cut_outs(blank, rng)),
        "scribbles read": _stacked(read_cut_outs(scribbles, rng)),
    }


def box_iou(a: Box | pages.Box, b: Box | pages.Box) -> float:
    """Return the intersection over union of two (x, y, w, h) boxes."""
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    inter = max(w, 0) * max(h, 0)
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def page_candidates(page: pages.Page) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Cut a page into candidates as read_page does: (the written digits' inputs, the others')."""
    try:
        lines = layout.ink_layout(layout.page_ink(page.image)).lines
    except RecognizerError:
        return [], []
    truth = [d.box for d in page.digits]
    digits, others = [], []
    for candidate in (d for line in lines for d in line.digits):
        best = max((box_iou(candidate.box, t) for t in truth), default=0.0)
        if best >= DIGIT_IOU:
            digits.append(candidate.input28)
        elif best < NON_DIGIT_IOU:  # pieces of a digit (half a broken 4) are neither
            others.append(candidate.input28)
    return digits, others


def page_pieces(
    train: Split, letters: list[Letter], count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Cut `count` synthetic pages of training digits and writers into (digit, non-digit) inputs."""
    sources = pages.PageSources(train.images, train.labels, [s for s in letters if s[0].isalpha()])
    first = int(rng.integers(0, 1_000_000))
    digits: list[np.ndarray] = []
    others: list[np.ndarray] = []
    for i in range(count):
        page = pages.render_page(PIECE_KINDS[i % len(PIECE_KINDS)], sources, PAGE_SEED + first + i)
        found, rest = page_candidates(page)
        digits += found
        others += rest
    log.info("page pieces: %d digits, %d not digits from %d pages", len(digits), len(others), count)
    empty = np.zeros((0, 28, 28), np.float32)
    return (np.stack(digits) if digits else empty), (np.stack(others) if others else empty)


@dataclass(frozen=True)
class RejectData:
    """The reject's training inputs: uint8 (N, 28, 28) as MNIST's, labels (1 a digit), each one's source."""

    x: np.ndarray
    y: np.ndarray
    source: np.ndarray  # (N,) int: an index into `names`
    names: tuple[str, ...]


def save_renders(path: Path, data: RejectData, calibration: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Save the rendered training and calibration inputs, so the head can be retrained without rendering."""
    arrays = {"x": data.x, "y": data.y, "source": data.source, "names": np.array(data.names)}
    for name, xy in calibration.items():
        arrays |= {f"calibration/{name}/{part}": array for part, array in zip("xy", xy, strict=True)}
    np.savez_compressed(path, allow_pickle=False, **arrays)


def load_renders(path: Path) -> tuple[RejectData, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Load what `save_renders` saved: the training inputs and the calibration sets."""
    with np.load(path) as saved:
        data = RejectData(saved["x"], saved["y"], saved["source"], tuple(str(n) for n in saved["names"]))
        names = sorted({key.split("/")[1] for key in saved.files if key.startswith("calibration/")})
        calibration = {n: (saved[f"calibration/{n}/x"], saved[f"calibration/{n}/y"]) for n in names}
    return data, calibration


def build_reject_data(train: Split, handwriting: Path, counts: RejectCounts, seed: int) -> RejectData:
    """Render every source of digits and non-digits through the serving pipeline."""
    rng = np.random.default_rng(seed)
    digits = digit_inputs(train, handwriting, counts, rng)
    others = non_digit_inputs(handwriting, counts, rng)
    page_digits, page_others = page_pieces(train, load_letters(handwriting / LETTERS_FILE), counts.pages, rng)
    digits["page digits"], others["page pieces"] = page_digits, page_others
    parts = [(name, part, DIGIT) for name, part in digits.items()]
    parts += [(name, part, NOT_DIGIT) for name, part in others.items()]
    for name, part, _ in parts:
        log.info("%s: %d inputs", name, len(part))
    return RejectData(
        x=np.round(np.concatenate([part for _, part, _ in parts]) * 255).astype(np.uint8),
        y=np.concatenate([np.full(len(part), label) for _, part, label in parts]).astype(np.uint8),
        source=np.concatenate([np.full(len(part), i) for i, (_, part, _) in enumerate(parts)]),
        names=tuple(name for name, _, _ in parts),
    )


def calibration_inputs(handwriting: Path, count: int, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Render held-out UNIPEN writers' digits and letters (the latter half photographed) to calibrate on.

    Returns float32 (N, 28, 28) inputs and labels (1 a digit) by set name. The writers are never
    trained on, so the rule is chosen on other people's pens, as users' will be.
    """
    rng = np.random.default_rng(seed)
    unipen = [
        s
        for s in syn.load_unipen(handwriting / realistic.UNIPEN_FILE, verified=True)
        if realistic.is_held_out_writer(s[2])
    ]
    letters = load_letters(handwriting / LETTERS_FILE, held_out=True)
    chosen = rng.choice(len(unipen), min(count, len(unipen)), replace=False)
    picked = rng.choice(len(letters), min(count, len(letters)), replace=False)
    digits = _stacked(prepared(syn.canvas_of_strokes(unipen[i][1], rng) for i in chosen))
    others = _stacked(
        prepared(
            syn.canvas_of_strokes(letters[i][1], rng) if k % 2 else letter_photo(letters[i][1], rng)
            for k, i in enumerate(picked)
        )
    )
    return {
        "held-out UNIPEN digits": (digits, np.full(len(digits), DIGIT, np.uint8)),
        "held-out UNIPEN letters": (others, np.full(len(others), NOT_DIGIT, np.uint8)),
    }

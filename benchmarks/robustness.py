"""Robustness benchmark: accuracy on real inputs first, then realistic renders beside clean MNIST.

The first rows are real: `../shared/real-dev` (photos, drawings and pages by people outside the
project, scored per source) and held-out UNIPEN writers. Then inputs built from data the model never
trained on: MNIST **test** digits turned into phone photos, canvas drawings and multi-digit numbers by
`mnist_bot.training.synthetic`, plus Semeion and optdigits scans. Each kind is scored through the
full pipeline (`Recognizer.predict_batch` / `read_number` / `read`) and through the naive path (resize
the whole image to 28x28 grey) with the same model.

    python benchmarks/robustness.py --n 500 --gallery /tmp/gallery --json-out robustness.json
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np
from PIL import Image, ImageDraw

from mnist_bot import NumberReading, PageReading, Prediction, Recognizer, RecognizerError
from mnist_bot.data import load_mnist
from mnist_bot.training import reject
from mnist_bot.training import synthetic as syn
from mnist_bot.training.evaluate import Reliability, reliability
from mnist_bot.training.realistic import is_held_out_writer  # no TensorFlow behind this import

sys.path.insert(0, str(Path(__file__).resolve().parent))
from failure_classes import FAILURE_KINDS, MAKERS  # a sibling script, not a package

Reading = NumberReading | PageReading  # a number, or a page read the way the front ends read it

SHARED = Path(__file__).resolve().parents[2] / "shared"  # the checkout's sibling, as in CI
DEFAULT_MNIST_DIR = SHARED / "mnist"
DEFAULT_HANDWRITING_DIR = SHARED / "handwriting"
DEFAULT_REAL_DEV_DIR = SHARED / "real-dev"
CHUNK = 64
EXAMPLES_PER_KIND = 6
FAILURES_PER_KIND = 24
# Each kind's generator is seeded by its place here, so new kinds go at the end.
SEED_ORDER = (
    "mnist",
    "mnist_pipeline",
    "photo",
    "canvas",
    "unipen",
    "semeion",
    "optdigits",
    "number",
    "blank",
)
SEED_ORDER += ("real_photo", "real_drawn", "real_page", *FAILURE_KINDS, "letters", "scribble", "touching")
SEED_ORDER += ("unipen_verified",)
REAL_KINDS = ("real_photo", "real_drawn", "real_page")  # files in real-dev, by its `kind` column
REAL_DEV_KIND = {"real_photo": "photo", "real_drawn": "drawn", "real_page": "page"}
# Real rows first: they are the figure that counts.
KINDS = ("real_photo", "real_drawn", "real_page", "unipen", "unipen_verified", "mnist", "mnist_pipeline")
KINDS += ("photo", "canvas")
KINDS += (*FAILURE_KINDS, "semeion", "optdigits", "number", "touching", "blank", "letters", "scribble")
NOT_DIGIT_KINDS = {"blank", "letters", "scribble"}  # right = "no digit here"
HANDWRITING_KINDS = {"unipen", "unipen_verified", "semeion", "optdigits"}  # read from ../shared/handwriting
SEQUENCE_KINDS = {"number", "touching", "real_page"}  # scored as a whole reading and digit by digit
NO_DIGIT = ""  # the true answer for blank paper: "no digit here" (an EmptyImageError), not a guess
TARGETS = {"real_photo": 0.995, "real_drawn": 0.995, "unipen": 0.99, "unipen_verified": 0.99}
TARGETS |= {"photo": 0.99, "canvas": 0.99}
TARGETS |= {"number": 0.95}
DESCRIPTIONS = {
    "real_photo": "real-dev: real scans and phone photos of one digit",
    "real_drawn": "real-dev: real digits drawn in paint programs and canvases",
    "real_page": "real-dev: real sheets of several digits, read() (whole page right)",
    "mnist": "clean MNIST test, model on the raw 28x28",
    "mnist_pipeline": "MNIST test 28x28 as a grey image, full pipeline",
    "photo": "phone photos of MNIST test digits (JPEG)",
    "canvas": "MNIST test digits re-stroked on a 280x280 RGBA canvas",
    "unipen": "real UNIPEN pen trajectories of held-out writers, 280x280 RGBA canvas",
    "unipen_verified": "the same writers, only labels the donors checked (no '00's or dots labelled 0)",
    "semeion": "Semeion 16x16 scans, upscaled grey",
    "optdigits": "optdigits 32x32 scans, upscaled grey",
    "number": "photos of 2-10 digit numbers (whole number right)",
    "touching": "photos of 2-10 digit numbers whose neighbours touch or cross by up to 2 pen widths",
    "blank": "photos of blank paper (right = no digit found)",
    "letters": "real UNIPEN letters and symbols of held-out writers, canvas or photo (right = no digit)",
    "scribble": "random scribbles on a 280x280 canvas (right = no digit)",
    "bold": "MNIST test digits drawn bold (8% of a 400 px side), black on white PNG",
    "faint": "MNIST test digits in a thin light pen on white, PNG or JPEG",
    "small": "MNIST test digits 16-60 px tall in a 1000-2500 px white frame",
}

Image_ = bytes | np.ndarray
NumberPhoto = Callable[[Sequence[np.ndarray], np.random.Generator], bytes]


class Sample(NamedTuple):
    """An input, its true answer (one digit, or a number's digits) and where it came from."""

    image: Image_
    truth: str
    source: str = ""


@dataclass
class Score:
    """Running tallies for one kind of input."""

    kind: str
    n: int = 0
    correct: int = 0
    naive_correct: int = 0
    unsure: int = 0
    sure_correct: int = 0
    errors: int = 0
    digits: int = 0  # numbers only: true digits, and those read right (edit-distance alignment)
    digits_correct: int = 0
    length_correct: int = 0
    seconds: float = 0.0
    confusions: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, list[int]] = field(default_factory=dict)  # source: [inputs, right]
    sure_wrong: int = 0
    answers: list[tuple[float, bool]] = field(default_factory=list)  # single digits: (confidence, right)

    def add(self, truth: str, answer: str | None, unsure: bool, naive: str | None, source: str = "") -> bool:
        """Count one input: the pipeline's answer (None for an error), its unsure flag, the naive answer.

        Return whether the answer was right.
        """
        self.n += 1
        right = answer == truth or (truth == NO_DIGIT and answer is None)
        self.correct += right
        self.sure_wrong += not right and not unsure and answer is not None
        if source:
            tally = self.by_source.setdefault(source, [0, 0])
            tally[0] += 1
            tally[1] += right
        self.naive_correct += naive == truth
        self.unsure += unsure or answer is None
        self.sure_correct += right and not unsure
        self.errors += answer is None
        if not right:
            key = f"{truth}->{answer if answer is not None else 'error'}"
            self.confusions[key] = self.confusions.get(key, 0) + 1
        if self.kind in SEQUENCE_KINDS:
            self.digits += len(truth)
            self.digits_correct += max(0, len(truth) - edit_distance(truth, answer or ""))
            self.length_correct += len(answer or "") == len(truth)
        return right

    def summary(self) -> dict[str, Any]:
        """Return the rates as a JSON-friendly dict."""
        sure = self.n - self.unsure
        out: dict[str, Any] = {
            "n": self.n,
            "accuracy": _rate(self.correct, self.n),
            "naive_accuracy": _rate(self.naive_correct, self.n) if self.kind not in SEQUENCE_KINDS else None,
            "unsure_rate": _rate(self.unsure, self.n),
            "accuracy_when_sure": _rate(self.sure_correct, sure),
            "sure_wrong_rate": _rate(self.sure_wrong, self.n),  # wrong answers not flagged unsure
            "right_sure_rate": _rate(self.sure_correct, self.correct),  # right answers left unflagged
            "errors": self.errors,
            "target": TARGETS.get(self.kind),
            "seconds": round(self.seconds, 1),
            "top_confusions": dict(sorted(self.confusions.items(), key=lambda kv: -kv[1])[:8]),
        }
        if self.answers:
            out["ece"] = round(self.reliability().ece, 4)
        if self.by_source:
            out["by_source"] = {
                name: {"n": n, "accuracy": _rate(right, n)} for name, (n, right) in self.by_source.items()
            }
        if self.kind in SEQUENCE_KINDS:
            out["digit_accuracy"] = _rate(self.digits_correct, self.digits)
            out["length_accuracy"] = _rate(self.length_correct, self.n)
        return out

    def reliability(self) -> Reliability:
        """Bin the single-digit answers by confidence: how often each bin was right."""
        confidence, right = zip(*self.answers, strict=True) if self.answers else ((), ())
        return reliability(np.array(confidence), np.array(right))


def _rate(count: int, total: int) -> float | None:
    """Return count / total rounded for display, or None when there is nothing to divide."""
    return round(count / total, 4) if total else None


def edit_distance(a: str, b: str) -> int:
    """Return the Levenshtein distance between two strings."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


# ---------------------------------------------------------------- naive path


def naive28(image: Image_) -> np.ndarray:
    """Resize the whole image to 28x28 grey with Pillow, inverting light backgrounds: float32 (28, 28)."""
    pil = Image.open(io.BytesIO(image)) if isinstance(image, bytes) else Image.fromarray(image)
    if pil.mode in {"RGBA", "LA", "P"}:
        # A transparent canvas seen the way a person sees it: ink over a white page.
        white = Image.new("RGBA", pil.size, (255, 255, 255, 255))
        pil = Image.alpha_composite(white, pil.convert("RGBA"))
    small = np.asarray(pil.convert("L").resize((28, 28), Image.Resampling.BILINEAR), dtype=np.float32) / 255
    border = np.concatenate([small[0], small[-1], small[:, 0], small[:, -1]])
    return 1.0 - small if border.mean() > 0.5 else small


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Sources:
    """The data the inputs are built from; None where a file is missing."""

    mnist_x: np.ndarray  # (N, 28, 28) uint8 test images, ink = 255
    mnist_y: np.ndarray  # (N,) uint8
    unipen: list[syn.UnipenSample] | None
    semeion: tuple[np.ndarray, np.ndarray] | None
    optdigits: tuple[np.ndarray, np.ndarray] | None
    real_dev: dict[str, list[Sample]] = field(default_factory=dict)  # by kind: file bytes and label
    letters: list[reject.Letter] | None = None  # held-out writers' letters and symbols
    unipen_verified: list[syn.UnipenSample] | None = None  # the same writers, checked labels only


def load_real_dev(folder: Path) -> dict[str, list[Sample]]:
    """Read real-dev's labelled files as bytes, grouped by kind; the source is the repository's owner."""
    labels = folder / "labels.csv"
    if not labels.is_file():
        return {}
    by_kind: dict[str, list[Sample]] = {kind: [] for kind in REAL_KINDS}
    names = {name: kind for kind, name in REAL_DEV_KIND.items()}
    with labels.open(newline="") as rows:
        for row in csv.DictReader(rows):
            truth = row["label"].replace("/", "")  # a page's rows, read in order
            sample = Sample((folder / row["file"]).read_bytes(), truth, row["repo"].split("/")[0])
            by_kind[names[row["kind"]]].append(sample)
    return by_kind


def load_sources(
    mnist_dir: Path | None, handwriting: Path, real_dev: Path | None = None, kinds: Sequence[str] = KINDS
) -> Sources:
    """Load the MNIST test split, and the real data of the wanted kinds that is present."""
    test = load_mnist(mnist_dir, download=False).test
    unipen = handwriting / "unipen_1a_digits.jsonl.gz"
    semeion = handwriting / "semeion.data"
    letters = handwriting / reject.LETTERS_FILE
    opt_files = [handwriting / "optdigits-orig.tra", handwriting / "optdigits-orig.windep"]
    optdigits = None
    if all(p.is_file() for p in opt_files):
        parts = [syn.load_optdigits(p) for p in opt_files]
        optdigits = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return Sources(
        mnist_x=test.images,
        mnist_y=test.labels,
        unipen=held_out(syn.load_unipen(unipen)) if unipen.is_file() else None,
        unipen_verified=held_out(syn.load_unipen(unipen, verified=True))
        if "unipen_verified" in kinds and unipen.is_file()
        else None,
        semeion=syn.load_semeion(semeion) if semeion.is_file() else None,
        optdigits=optdigits,
        # Reading real-dev's files and parsing 105,130 letters takes seconds: only when asked for.
        real_dev=load_real_dev(real_dev) if real_dev is not None and set(REAL_KINDS) & set(kinds) else {},
        letters=reject.load_letters(letters, held_out=True)
        if "letters" in kinds and letters.is_file()
        else None,
    )


def held_out(unipen: list[syn.UnipenSample]) -> list[syn.UnipenSample]:
    """Keep only the UNIPEN writers that training never sees (training uses the other 80%)."""
    return [sample for sample in unipen if is_held_out_writer(sample[2])]


def samples(kind: str, sources: Sources, n: int, rng: np.random.Generator) -> Iterator[Sample]:
    """Yield `n` inputs of one kind (fewer where the source is smaller), built lazily."""
    x, y = sources.mnist_x, sources.mnist_y
    if kind in {"number", "touching"}:
        yield from _numbers(
            x, y, n, rng, syn.photo_of_number if kind == "number" else syn.photo_of_touching_number
        )
        return
    if kind in REAL_KINDS:
        yield from _real_dev(sources.real_dev.get(kind, []), n, rng)
        return
    if kind in HANDWRITING_KINDS:
        yield from _real(kind, sources, n, rng)
        return
    if kind == "blank":
        yield from _blank_photos(n, rng)
        return
    if kind == "letters":
        yield from _letters(sources.letters or [], n, rng)
        return
    if kind == "scribble":
        for _ in range(n):
            yield Sample(reject.scribble(rng), NO_DIGIT)
        return
    make: Callable[[np.ndarray], Image_] = {
        "mnist": lambda d: d,
        "mnist_pipeline": lambda d: d,
        "photo": lambda d: syn.photo_of_digit(d, rng),
        "canvas": lambda d: syn.canvas_of_digit(d, rng),
        **{name: lambda d, make=make: make(d, rng) for name, make in MAKERS.items()},
    }[kind]
    for i in _pick(len(x), n, rng):
        yield Sample(make(x[i]), str(y[i]))


def _pick(size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Choose n indices out of size, without repeats while that is possible."""
    return rng.choice(size, n, replace=n > size)


def _blank_photos(n: int, rng: np.random.Generator) -> Iterator[Sample]:
    """Yield photos of paper with nothing written on it: lighting, shadows, rule lines, grain."""
    for _ in range(n):
        yield Sample(syn.blank_photo(rng), NO_DIGIT)


def _letters(letters: list[reject.Letter], n: int, rng: np.random.Generator) -> Iterator[Sample]:
    """Yield held-out writers' letters and symbols (no digit look-alikes), half drawn, half photographed."""
    for i in _pick(len(letters), min(n, len(letters)), rng):
        _, strokes, _ = letters[i]
        image = (
            syn.canvas_of_strokes(strokes, rng) if rng.random() < 0.5 else reject.letter_photo(strokes, rng)
        )
        yield Sample(image, NO_DIGIT)


def _numbers(
    x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator, photo: NumberPhoto
) -> Iterator[Sample]:
    """Yield photos (drawn by `photo`) of numbers of 2-10 MNIST test digits."""
    for _ in range(n):
        chosen = rng.choice(len(x), int(rng.integers(2, 11)), replace=False)
        yield Sample(photo([x[i] for i in chosen], rng), "".join(str(y[i]) for i in chosen))


def _real(kind: str, sources: Sources, n: int, rng: np.random.Generator) -> Iterator[Sample]:
    """Yield real handwriting by other writers: UNIPEN drawn as canvases, scans upscaled as grey images."""
    if kind in {"unipen", "unipen_verified"}:
        unipen = getattr(sources, kind) or []
        for i in _pick(len(unipen), min(n, len(unipen)), rng):
            label, strokes, writer = unipen[i]
            yield Sample(syn.canvas_of_strokes(strokes, rng), str(label), writer.split("/")[2])
        return
    images, labels = getattr(sources, kind) or (np.zeros((0, 16, 16), np.uint8), np.zeros(0, np.uint8))
    for i in _pick(len(images), min(n, len(images)), rng):
        yield Sample(syn.scan_of_bitmap(images[i], rng), str(labels[i]))


def _real_dev(files: list[Sample], n: int, rng: np.random.Generator) -> Iterator[Sample]:
    """Yield real-dev files as sent: every file, in the labels' order, unless n is smaller."""
    chosen = range(len(files)) if n >= len(files) else sorted(_pick(len(files), n, rng))
    for i in chosen:
        yield files[i]


def available(kind: str, sources: Sources) -> bool:
    """Whether the data for a kind is present."""
    if kind in REAL_KINDS:
        return bool(sources.real_dev.get(kind))
    if kind == "letters":
        return bool(sources.letters)
    return kind not in HANDWRITING_KINDS or getattr(sources, kind) is not None


# ---------------------------------------------------------------- scoring


def chunks(items: Iterator[Sample], size: int) -> Iterator[list[Sample]]:
    """Group an iterator into lists of `size`."""
    batch: list[Sample] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def predict_all(rec: Recognizer, images: Sequence[Image_]) -> list[Prediction | None]:
    """Predict a chunk in one call; on an error, one by one so one bad input costs only itself."""
    try:
        return list(rec.predict_batch(list(images)))
    except RecognizerError:
        return [_predict_one(rec, image) for image in images]


def _predict_one(rec: Recognizer, image: Image_) -> Prediction | None:
    """Predict one input, None where the pipeline refuses it."""
    try:
        return rec.predict(image)
    except RecognizerError:
        return None


def read_all(read: Callable[[Image_], Reading], images: Sequence[Image_]) -> list[Reading | None]:
    """Read each image with `read`, None where the pipeline refuses it."""
    out: list[Reading | None] = []
    for image in images:
        try:
            out.append(read(image))
        except RecognizerError:
            out.append(None)
    return out


def score_chunk(
    rec: Recognizer,
    kind: str,
    batch: list[Sample],
    score: Score,
    saver: Saver | None,
    gallery: Gallery | None,
    api: str = "predict",
) -> None:
    """Run one chunk through the pipeline and the naive path and tally it.

    With `api="read"`, single digits are read as the front ends read any image (`Recognizer.read`):
    an answer of two digits for one is wrong.
    """
    images = [sample.image for sample in batch]
    results: Sequence[Prediction | Reading | None] = [None] * len(batch)
    if kind == "mnist":
        raw = np.stack([np.asarray(image, np.float32) / 255 for image in images])
        answers: list[Any] = [_as_answer(p) for p in rec.classify28(raw)]
        naive = answers
    elif kind in SEQUENCE_KINDS:
        # A page is read the way the front ends read any image; a number with the number reader.
        results = read_all(rec.read if kind == "real_page" else rec.read_number, images)
        answers = [_reading(r) for r in results]
        naive = [None] * len(batch)
    else:
        results = read_all(rec.read, images) if api == "read" else predict_all(rec, images)
        answers = [_reading(r) for r in results]
        naive = _naive_answers(rec, images)
    for i, (sample, (answer, unsure)) in enumerate(zip(batch, answers, strict=True)):
        naive_answer = naive[i][0] if naive[i] is not None else None
        right = score.add(sample.truth, answer, unsure, naive_answer, sample.source)
        if isinstance(results[i], Prediction) and sample.truth != NO_DIGIT:
            score.answers.append((results[i].confidence, right))  # type: ignore[union-attr]
        if saver is not None:
            saver.save(kind, score.n, sample, answer, results[i])
        if gallery is not None and not right:
            gallery.add(kind, sample, answer, results[i])


def _as_answer(probabilities: np.ndarray) -> tuple[str, bool]:
    """Turn model probabilities into an (answer, unsure) pair; the raw path never flags unsure."""
    return str(int(np.argmax(probabilities))), False


def _reading(result: Prediction | Reading | None) -> tuple[str | None, bool]:
    """Turn a pipeline result into an (answer, unsure) pair."""
    if result is None:
        return None, True
    if isinstance(result, NumberReading | PageReading):
        return result.text.replace("\n", ""), result.unsure  # a page's truth is its rows run together
    return str(result.digit), result.unsure


def _naive_answers(rec: Recognizer, images: Sequence[Image_]) -> list[tuple[str, bool]]:
    """Classify each whole image resized to 28x28 with the same model."""
    probabilities = rec.classify28(np.stack([naive28(image) for image in images]))
    return [_as_answer(p) for p in probabilities]


# ---------------------------------------------------------------- examples


class Saver:
    """Write a few inputs of each kind, and failures beside what the model saw, for a person to look at."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.failures: dict[str, int] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def save(self, kind: str, index: int, sample: Sample, answer: str | None, result: Any) -> None:
        """Save the first inputs of a kind, and its first failures with the model's 28x28 view."""
        image, truth, _ = sample
        wrong = answer != truth
        if index <= EXAMPLES_PER_KIND:
            _write_input(self.folder / f"{kind}_{index:03d}_true{truth}", image)
        if not wrong or self.failures.get(kind, 0) >= FAILURES_PER_KIND:
            return
        self.failures[kind] = self.failures.get(kind, 0) + 1
        stem = self.folder / "failures" / f"{kind}_{index:04d}_true{truth}_got{answer or 'error'}"
        stem.parent.mkdir(exist_ok=True)
        _write_input(stem, image)
        seen = _seen28(result)
        if seen is not None:
            cv2.imwrite(f"{stem}_seen.png", seen)


def _write_input(stem: Path, image: Image_) -> None:
    """Write an input as the file a user would send: JPEG bytes as .jpg, arrays as .png."""
    if isinstance(image, bytes):
        suffix = {"jpeg": "jpg"}.get(name := (Image.open(io.BytesIO(image)).format or "jpeg").lower(), name)
        stem.with_suffix(f".{suffix}").write_bytes(image)
        return
    Image.fromarray(image).save(stem.with_suffix(".png"))


def _seen28(result: Any) -> np.ndarray | None:
    """Return the 28x28 input(s) the model saw, side by side and enlarged 4x, as uint8."""
    if result is None:
        return None
    views = (
        [p.input28 for p in result.digits]
        if isinstance(result, NumberReading | PageReading)
        else [result.input28]
    )
    if not views:
        return None
    strip = np.concatenate([np.pad(v, 1, constant_values=0.5) for v in views], axis=1)
    return cv2.resize((strip * 255).astype(np.uint8), None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)


class Gallery:
    """Collect every failure beside the 28x28 the model saw, and write one contact sheet per kind."""

    TILE = 112  # px: the input's thumbnail and the model's view, each this high
    COLUMNS = 4

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.tiles: dict[str, list[Image.Image]] = {}

    def add(self, kind: str, sample: Sample, answer: str | None, result: Any) -> None:
        """Add one failure: what was sent, what the model saw, the truth and the answer."""
        caption = f"true {sample.truth or 'none'}  got {answer if answer is not None else 'no digit'}"
        if isinstance(result, Prediction):
            caption += f" {result.confidence:.2f}{' unsure' if result.unsure else ''}"
        if sample.source:
            caption += f"  {sample.source[:18]}"
        self.tiles.setdefault(kind, []).append(self._tile(sample.image, _seen28(result), caption))

    def _tile(self, image: Image_, seen: np.ndarray | None, caption: str) -> Image.Image:
        """Lay out one failure: the input (fit to the tile's height), the 28x28 view, a caption."""
        shown = _as_pil(image)
        shown.thumbnail((3 * self.TILE, self.TILE))
        views = Image.fromarray(seen).convert("RGB") if seen is not None else Image.new("RGB", (1, 1))
        views.thumbnail((3 * self.TILE, self.TILE))
        tile = Image.new("RGB", (shown.width + views.width + 12, self.TILE + 16), "white")
        tile.paste(shown, (2, 2))
        tile.paste(views, (shown.width + 8, 2))
        ImageDraw.Draw(tile).text((2, self.TILE + 3), caption, fill="black")
        return tile

    def write(self) -> list[Path]:
        """Write `<kind>.png` for each kind with failures; return the files written."""
        self.folder.mkdir(parents=True, exist_ok=True)
        written = []
        for kind, tiles in self.tiles.items():
            width = max(t.width for t in tiles) + 8
            rows = -(-len(tiles) // self.COLUMNS)
            sheet = Image.new("RGB", (width * self.COLUMNS, rows * (self.TILE + 24)), (200, 200, 200))
            for i, tile in enumerate(tiles):
                sheet.paste(tile, ((i % self.COLUMNS) * width, (i // self.COLUMNS) * (self.TILE + 24)))
            path = self.folder / f"{kind}.png"
            sheet.save(path)
            written.append(path)
        return written


def _as_pil(image: Image_) -> Image.Image:
    """Show an input as a person sees it: transparent canvases over white paper, in RGB."""
    pil = Image.open(io.BytesIO(image)) if isinstance(image, bytes) else Image.fromarray(image)
    if pil.mode in {"RGBA", "LA", "P"}:
        white = Image.new("RGBA", pil.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, pil.convert("RGBA")).convert("RGB")
    return pil.convert("RGB")


# ---------------------------------------------------------------- report


def run(
    rec: Recognizer,
    sources: Sources,
    kinds: Sequence[str],
    n: int,
    *,
    seed: int,
    saver: Saver | None,
    gallery: Gallery | None = None,
    api: str = "predict",
) -> list[Score]:
    """Score every kind, each with its own seeded generator so kinds do not disturb each other."""
    scores = []
    for kind in kinds:
        index = SEED_ORDER.index(kind)
        score = Score(kind)
        if available(kind, sources):
            rng = np.random.default_rng([seed, index])
            started = time.perf_counter()
            for batch in chunks(samples(kind, sources, n, rng), CHUNK):
                score_chunk(rec, kind, batch, score, saver, gallery, api)
            score.seconds = time.perf_counter() - started
        scores.append(score)
    return scores


def _percent(value: float | None) -> str:
    """Format a rate as a percentage, or a dash."""
    return "—" if value is None else f"{100 * value:.2f}%"


def markdown(scores: Sequence[Score]) -> str:
    """Return the results as a Markdown table."""
    lines = [
        "| kind | what | n | pipeline | naive 28x28 | unsure | accuracy when sure | sure and wrong | target "
        "| errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for score in scores:
        s = score.summary()
        accuracy = _percent(s["accuracy"])
        if score.kind in SEQUENCE_KINDS and s["n"]:
            accuracy += f" (digits {_percent(s['digit_accuracy'])})"
        target = f">= {100 * s['target']:g}%" if s["target"] else ""
        if s["target"] and s["accuracy"] is not None:
            target += " ✓" if s["accuracy"] >= s["target"] else " ✗"
        cells = [score.kind, DESCRIPTIONS[score.kind], str(s["n"]), accuracy, _percent(s["naive_accuracy"])]
        cells += [
            _percent(s["unsure_rate"]),
            _percent(s["accuracy_when_sure"]),
            _percent(s["sure_wrong_rate"]),
        ]
        cells += [target, str(s["errors"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + source_table(scores))


def source_table(scores: Sequence[Score]) -> list[str]:
    """Return the per-source rows of the real kinds: a source under 97% is a failure class to look at."""
    rows = [
        f"| {score.kind} | {name} | {n} | {_percent(_rate(right, n))} |"
        for score in scores
        if score.kind in REAL_KINDS
        for name, (n, right) in sorted(score.by_source.items())
    ]
    return ["", "| kind | source | n | pipeline |", "|---|---|---:|---:|", *rows] if rows else []


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=2000, help="inputs per kind (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help=f"comma-separated subset of {','.join(KINDS)}"
    )
    parser.add_argument("--mnist-dir", type=Path, default=None, help="MNIST IDX folder (default: MNIST_DIR)")
    parser.add_argument("--handwriting-dir", type=Path, default=DEFAULT_HANDWRITING_DIR)
    parser.add_argument(
        "--real-dev-dir", type=Path, default=DEFAULT_REAL_DEV_DIR, help="real-dev folder (labels.csv)"
    )
    parser.add_argument(
        "--gallery", type=Path, default=None, help="write a contact sheet of every failure per kind here"
    )
    parser.add_argument(
        "--reliability",
        type=Path,
        default=None,
        help="write a reliability diagram (PNG) of the digit kinds here",
    )
    parser.add_argument(
        "--api",
        choices=("predict", "read"),
        default="predict",
        help="read single digits with predict() (default) or read(), as the bot and the widget do",
    )
    parser.add_argument("--json-out", type=Path, default=None, help="also write the JSON line to this file")
    parser.add_argument(
        "--save-examples", type=Path, default=None, help="write sample inputs and failures here"
    )
    args = parser.parse_args(argv)
    unknown = set(args.kinds.split(",")) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    return args


def _mnist_dir(given: Path | None) -> Path | None:
    """Use the given folder, else MNIST_DIR, else the shared copy when present."""
    if given is not None:
        return given
    if os.environ.get("MNIST_DIR"):
        return Path(os.environ["MNIST_DIR"])
    return DEFAULT_MNIST_DIR if DEFAULT_MNIST_DIR.is_dir() else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print a Markdown table and one JSON line."""
    args = parse_args(argv)
    rec = Recognizer.load(args.model)
    kinds = [k for k in KINDS if k in args.kinds.split(",")]
    sources = load_sources(_mnist_dir(args.mnist_dir), args.handwriting_dir, args.real_dev_dir, kinds)
    saver = Saver(args.save_examples) if args.save_examples else None
    gallery = Gallery(args.gallery) if args.gallery else None
    scores = run(rec, sources, kinds, args.n, seed=args.seed, saver=saver, gallery=gallery, api=args.api)
    if gallery is not None:
        gallery.write()
    if args.reliability:
        from mnist_bot.training.report import plot_reliability  # matplotlib: the train extra

        curves = {s.kind: s.reliability() for s in scores if s.answers}
        plot_reliability(curves, args.reliability, "confidence against accuracy, pipeline answers")
    report = {
        "benchmark": "robustness",
        "model": str(args.model) if args.model else "default",
        "runtime": rec.runtime.name,
        "model_metadata": {k: rec.metadata.get(k) for k in ("name", "command", "date", "test_accuracy")},
        "seed": args.seed,
        "n_per_kind": args.n,
        "api": args.api,
        "kinds": {s.kind: s.summary() for s in scores},
    }
    print(markdown(scores))
    print(json.dumps(report))
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Robustness benchmark: accuracy on realistic photos, drawings, scans and numbers beside clean MNIST.

Every input is built from data the model never trained on: MNIST **test** digits (never training
digits) turned into phone photos, canvas drawings and multi-digit numbers by `mnist_bot.synthetic`,
plus real handwriting from other writers (UNIPEN pen trajectories, Semeion and optdigits scans).
Each kind is scored through the full pipeline (`Recognizer.predict_batch` / `read_number`) and
through the naive path (resize the whole image to 28x28 grey) with the same model.

    python benchmarks/robustness.py --n 500 --save-examples /tmp/examples --json-out robustness.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from mnist_bot import NumberReading, Prediction, Recognizer, RecognizerError
from mnist_bot.data import load_mnist
from mnist_bot.training import synthetic as syn
from mnist_bot.training.realistic import is_held_out_writer  # no TensorFlow behind this import

SHARED = Path("/work/shared")
DEFAULT_MNIST_DIR = SHARED / "mnist"
DEFAULT_HANDWRITING_DIR = SHARED / "handwriting"
CHUNK = 64
EXAMPLES_PER_KIND = 6
FAILURES_PER_KIND = 24
KINDS = ("mnist", "mnist_pipeline", "photo", "canvas", "unipen", "semeion", "optdigits", "number", "blank")
NO_DIGIT = ""  # the true answer for blank paper: "no digit here" (an EmptyImageError), not a guess
TARGETS = {"photo": 0.99, "canvas": 0.98, "unipen": 0.98, "number": 0.95}
DESCRIPTIONS = {
    "mnist": "clean MNIST test, model on the raw 28x28",
    "mnist_pipeline": "MNIST test 28x28 as a grey image, full pipeline",
    "photo": "phone photos of MNIST test digits (JPEG)",
    "canvas": "MNIST test digits re-stroked on a 280x280 RGBA canvas",
    "unipen": "real UNIPEN pen trajectories of held-out writers, 280x280 RGBA canvas",
    "semeion": "Semeion 16x16 scans, upscaled grey",
    "optdigits": "optdigits 32x32 scans, upscaled grey",
    "number": "photos of 2-10 digit numbers (whole number right)",
    "blank": "photos of blank paper (right = no digit found)",
}

Image_ = bytes | np.ndarray
Sample = tuple[Image_, str]  # an input and its true answer: one digit, or a number's digits


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

    def add(self, truth: str, answer: str | None, unsure: bool, naive: str | None) -> None:
        """Count one input: the pipeline's answer (None for an error), its unsure flag, the naive answer."""
        self.n += 1
        right = answer == truth or (truth == NO_DIGIT and answer is None)
        self.correct += right
        self.naive_correct += naive == truth
        self.unsure += unsure or answer is None
        self.sure_correct += right and not unsure
        self.errors += answer is None
        if not right:
            key = f"{truth}->{answer if answer is not None else 'error'}"
            self.confusions[key] = self.confusions.get(key, 0) + 1
        if self.kind == "number":
            self.digits += len(truth)
            self.digits_correct += max(0, len(truth) - edit_distance(truth, answer or ""))
            self.length_correct += len(answer or "") == len(truth)

    def summary(self) -> dict[str, Any]:
        """Return the rates as a JSON-friendly dict."""
        sure = self.n - self.unsure
        out: dict[str, Any] = {
            "n": self.n,
            "accuracy": _rate(self.correct, self.n),
            "naive_accuracy": _rate(self.naive_correct, self.n) if self.kind != "number" else None,
            "unsure_rate": _rate(self.unsure, self.n),
            "accuracy_when_sure": _rate(self.sure_correct, sure),
            "errors": self.errors,
            "target": TARGETS.get(self.kind),
            "seconds": round(self.seconds, 1),
            "top_confusions": dict(sorted(self.confusions.items(), key=lambda kv: -kv[1])[:8]),
        }
        if self.kind == "number":
            out["digit_accuracy"] = _rate(self.digits_correct, self.digits)
            out["length_accuracy"] = _rate(self.length_correct, self.n)
        return out


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


def load_sources(mnist_dir: Path | None, handwriting: Path) -> Sources:
    """Load the MNIST test split and whatever real handwriting is present."""
    test = load_mnist(mnist_dir, download=False).test
    unipen = handwriting / "unipen_1a_digits.jsonl.gz"
    semeion = handwriting / "semeion.data"
    opt_files = [handwriting / "optdigits-orig.tra", handwriting / "optdigits-orig.windep"]
    optdigits = None
    if all(p.is_file() for p in opt_files):
        parts = [syn.load_optdigits(p) for p in opt_files]
        optdigits = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return Sources(
        mnist_x=test.images,
        mnist_y=test.labels,
        unipen=held_out(syn.load_unipen(unipen)) if unipen.is_file() else None,
        semeion=syn.load_semeion(semeion) if semeion.is_file() else None,
        optdigits=optdigits,
    )


def held_out(unipen: list[syn.UnipenSample]) -> list[syn.UnipenSample]:
    """Keep only the UNIPEN writers that training never sees (training uses the other 80%)."""
    return [sample for sample in unipen if is_held_out_writer(sample[2])]


def samples(kind: str, sources: Sources, n: int, rng: np.random.Generator) -> Iterator[Sample]:
    """Yield `n` inputs of one kind (fewer where the source is smaller), built lazily."""
    x, y = sources.mnist_x, sources.mnist_y
    if kind == "number":
        yield from _numbers(x, y, n, rng)
        return
    if kind in {"unipen", "semeion", "optdigits"}:
        yield from _real(kind, sources, n, rng)
        return
    if kind == "blank":
        yield from _blank_photos(n, rng)
        return
    make: Callable[[np.ndarray], Image_] = {
        "mnist": lambda d: d,
        "mnist_pipeline": lambda d: d,
        "photo": lambda d: syn.photo_of_digit(d, rng),
        "canvas": lambda d: syn.canvas_of_digit(d, rng),
    }[kind]
    for i in _pick(len(x), n, rng):
        yield make(x[i]), str(y[i])


def _pick(size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Choose n indices out of size, without repeats while that is possible."""
    return rng.choice(size, n, replace=n > size)


def _blank_photos(n: int, rng: np.random.Generator) -> Iterator[Sample]:
    """Yield photos of paper with nothing written on it: lighting, shadows, rule lines, grain."""
    for _ in range(n):
        yield syn.photograph(np.zeros(syn.frame_shape(rng), np.float32), rng), NO_DIGIT


def _numbers(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> Iterator[Sample]:
    """Yield photos of numbers of 2-10 MNIST test digits."""
    for _ in range(n):
        chosen = rng.choice(len(x), int(rng.integers(2, 11)), replace=False)
        yield syn.photo_of_number([x[i] for i in chosen], rng), "".join(str(y[i]) for i in chosen)


def _real(kind: str, sources: Sources, n: int, rng: np.random.Generator) -> Iterator[Sample]:
    """Yield real handwriting by other writers: UNIPEN drawn as canvases, scans upscaled as grey images."""
    if kind == "unipen":
        unipen = sources.unipen or []
        for i in _pick(len(unipen), min(n, len(unipen)), rng):
            label, strokes, _writer = unipen[i]
            yield syn.canvas_of_strokes(strokes, rng), str(label)
        return
    images, labels = getattr(sources, kind) or (np.zeros((0, 16, 16), np.uint8), np.zeros(0, np.uint8))
    for i in _pick(len(images), min(n, len(images)), rng):
        yield syn.scan_of_bitmap(images[i], rng), str(labels[i])


def available(kind: str, sources: Sources) -> bool:
    """Whether the data for a kind is present."""
    return kind not in {"unipen", "semeion", "optdigits"} or getattr(sources, kind) is not None


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


def read_all(rec: Recognizer, images: Sequence[Image_]) -> list[NumberReading | None]:
    """Read each number, None where the pipeline refuses it."""
    out: list[NumberReading | None] = []
    for image in images:
        try:
            out.append(rec.read_number(image))
        except RecognizerError:
            out.append(None)
    return out


def score_chunk(rec: Recognizer, kind: str, batch: list[Sample], score: Score, saver: Saver | None) -> None:
    """Run one chunk through the pipeline and the naive path and tally it."""
    images = [image for image, _ in batch]
    results: Sequence[Prediction | NumberReading | None] = [None] * len(batch)
    if kind == "mnist":
        raw = np.stack([np.asarray(image, np.float32) / 255 for image in images])
        answers: list[Any] = [_as_answer(p) for p in rec.classify28(raw)]
        naive = answers
    else:
        results = read_all(rec, images) if kind == "number" else predict_all(rec, images)
        answers = [_reading(r) for r in results]
        naive = [None] * len(batch) if kind == "number" else _naive_answers(rec, images)
    for i, ((image, truth), (answer, unsure)) in enumerate(zip(batch, answers, strict=True)):
        naive_answer = naive[i][0] if naive[i] is not None else None
        score.add(truth, answer, unsure, naive_answer)
        if saver is not None:
            saver.save(kind, score.n, (image, truth), answer, results[i])


def _as_answer(probabilities: np.ndarray) -> tuple[str, bool]:
    """Turn model probabilities into an (answer, unsure) pair; the raw path never flags unsure."""
    return str(int(np.argmax(probabilities))), False


def _reading(result: Prediction | NumberReading | None) -> tuple[str | None, bool]:
    """Turn a pipeline result into an (answer, unsure) pair."""
    if result is None:
        return None, True
    if isinstance(result, NumberReading):
        return result.text, result.unsure
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
        image, truth = sample
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
        stem.with_suffix(".jpg").write_bytes(image)
        return
    Image.fromarray(image).save(stem.with_suffix(".png"))


def _seen28(result: Any) -> np.ndarray | None:
    """Return the 28x28 input(s) the model saw, side by side and enlarged 4x, as uint8."""
    if result is None:
        return None
    views = [p.input28 for p in result.digits] if isinstance(result, NumberReading) else [result.input28]
    if not views:
        return None
    strip = np.concatenate([np.pad(v, 1, constant_values=0.5) for v in views], axis=1)
    return cv2.resize((strip * 255).astype(np.uint8), None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)


# ---------------------------------------------------------------- report


def run(
    rec: Recognizer, sources: Sources, kinds: Sequence[str], n: int, *, seed: int, saver: Saver | None
) -> list[Score]:
    """Score every kind, each with its own seeded generator so kinds do not disturb each other."""
    scores = []
    for kind in kinds:
        index = KINDS.index(kind)
        score = Score(kind)
        if available(kind, sources):
            rng = np.random.default_rng([seed, index])
            started = time.perf_counter()
            for batch in chunks(samples(kind, sources, n, rng), CHUNK):
                score_chunk(rec, kind, batch, score, saver)
            score.seconds = time.perf_counter() - started
        scores.append(score)
    return scores


def _percent(value: float | None) -> str:
    """Format a rate as a percentage, or a dash."""
    return "—" if value is None else f"{100 * value:.2f}%"


def markdown(scores: Sequence[Score]) -> str:
    """Return the results as a Markdown table."""
    lines = [
        "| kind | what | n | pipeline | naive 28x28 | unsure | accuracy when sure | target | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for score in scores:
        s = score.summary()
        accuracy = _percent(s["accuracy"])
        if score.kind == "number" and s["n"]:
            accuracy += f" (digits {_percent(s['digit_accuracy'])})"
        target = f">= {100 * s['target']:.0f}%" if s["target"] else ""
        if s["target"] and s["accuracy"] is not None:
            target += " ✓" if s["accuracy"] >= s["target"] else " ✗"
        cells = [score.kind, DESCRIPTIONS[score.kind], str(s["n"]), accuracy, _percent(s["naive_accuracy"])]
        cells += [_percent(s["unsure_rate"]), _percent(s["accuracy_when_sure"]), target, str(s["errors"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    sources = load_sources(_mnist_dir(args.mnist_dir), args.handwriting_dir)
    saver = Saver(args.save_examples) if args.save_examples else None
    kinds = [k for k in KINDS if k in args.kinds.split(",")]
    scores = run(rec, sources, kinds, args.n, seed=args.seed, saver=saver)
    report = {
        "benchmark": "robustness",
        "model": str(args.model) if args.model else "default",
        "runtime": rec.runtime.name,
        "model_metadata": {k: rec.metadata.get(k) for k in ("name", "command", "date", "test_accuracy")},
        "seed": args.seed,
        "n_per_kind": args.n,
        "kinds": {s.kind: s.summary() for s in scores},
    }
    print(markdown(scores))
    print(json.dumps(report))
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

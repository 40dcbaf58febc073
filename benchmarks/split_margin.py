"""Choose the touching-digit split's width gate and margin on generated data (never on real-dev).

Reads photos of touching numbers, of plain numbers (gaps between digits) and of single digits
(photos and canvases), all from MNIST test digits with a seed of their own (not the robustness
benchmark's), classifies every alternative of every line once, and settles the lines again for
each choice on a grid: the width, in line heights, from which a group is offered cut
(`split.SPLIT_ASPECT`) and what a cut must gain over the whole (`recognizer.SPLIT_MARGIN`, nats):

    python benchmarks/split_margin.py --n 300
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from mnist_bot import Recognizer, RecognizerError, layout, split
from mnist_bot.data import load_mnist
from mnist_bot.recognizer import LineReadings, alternatives, line_readings, settle
from mnist_bot.training import synthetic as syn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robustness import DEFAULT_MNIST_DIR, edit_distance  # a sibling script, not a package

KINDS = ("touching", "number", "photo", "canvas")
GATES = (0.7, 0.8, 0.9, 1.0, 1.1, 1.2)
MARGINS = (-0.5, -0.25, -0.1, 0.0, 0.1, 0.25, 0.5, 1.0, 100.0)  # 100: never cut, the reading before cuts
SEED = 20261202  # not the robustness benchmark's seeds (0 and the kinds' places)
LOWEST_GATE = min(GATES)


@dataclass(frozen=True)
class Read:
    """One input's truth and its lines' readings."""

    kind: str
    truth: str
    lines: list[LineReadings]


def make_inputs(kind: str, n: int, rng: np.random.Generator) -> list[tuple[object, str]]:
    """Build `n` inputs of one kind from MNIST test digits, each with its true text."""
    mnist = load_mnist(DEFAULT_MNIST_DIR)
    x, y = mnist.test.images, mnist.test.labels
    out: list[tuple[object, str]] = []
    for _ in range(n):
        if kind in {"touching", "number"}:
            chosen = rng.choice(len(x), int(rng.integers(2, 11)), replace=False)
            photo = syn.photo_of_touching_number if kind == "touching" else syn.photo_of_number
            out.append((photo([x[i] for i in chosen], rng), "".join(str(y[i]) for i in chosen)))
        else:
            i = int(rng.integers(len(x)))
            make: Callable[..., object] = syn.photo_of_digit if kind == "photo" else syn.canvas_of_digit
            out.append((make(x[i], rng), str(y[i])))
    return out


def read_lines(rec: Recognizer, image: object) -> list[LineReadings]:
    """Lay out an image as read() does upright and classify every alternative of every line once."""
    lines = layout.ink_layout(layout.page_ink(image)).lines  # type: ignore[arg-type]
    predictions = iter(rec._classify([d for line in lines for d in alternatives(line)]))
    return [line_readings(line, predictions) for line in lines]


def widths(readings: LineReadings) -> list[float]:
    """Return each group's width over the larger of its line's height and its own (split's gate)."""
    height = float(np.median([p.box.h for p in readings.singles if p.box is not None]))
    return [p.box.w / max(height, p.box.h) if p.box is not None else 0.0 for p in readings.singles]


@dataclass(frozen=True)
class Choice:
    """One point of the grid."""

    gate: float
    margin: float


def text_for(read: Read, choice: Choice) -> str:
    """Settle an input's lines as read() would with this choice."""
    texts = []
    for readings in read.lines:
        aspects = widths(readings)
        ways = {i: w for i, w in readings.ways.items() if aspects[i] >= choice.gate}
        chosen = settle(replace(readings, ways=ways), margin=choice.margin)
        texts.append("".join(str(p.digit) for p in chosen))
    return "".join(texts)


def score(reads: Sequence[Read], choice: Choice) -> dict[str, dict[str, float]]:
    """Return, per kind, the share of inputs read exactly and of digits read right."""
    out: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        chosen = [r for r in reads if r.kind == kind]
        texts = [text_for(r, choice) for r in chosen]
        right = sum(t == r.truth for t, r in zip(texts, chosen, strict=True))
        digits = sum(len(r.truth) for r in chosen)
        digit_right = sum(
            max(0, len(r.truth) - edit_distance(r.truth, t)) for t, r in zip(texts, chosen, strict=True)
        )
        out[kind] = {
            "exact": round(right / max(1, len(chosen)), 4),
            "digits": round(digit_right / max(1, digits), 4),
        }
    return out


def collect(rec: Recognizer, n: int) -> list[Read]:
    """Read `n` inputs of each kind, with cut candidates down to the lowest gate."""
    split.SPLIT_ASPECT = LOWEST_GATE  # every candidate the grid may use; the grid filters them
    reads = []
    for k, kind in enumerate(KINDS):
        rng = np.random.default_rng([SEED, k])
        for image, truth in make_inputs(kind, n, rng):
            try:
                reads.append(Read(kind, truth, read_lines(rec, image)))
            except RecognizerError:
                reads.append(Read(kind, truth, []))
    return reads


def cached_reads(cache: Path | None, n: int) -> list[Read]:
    """Collect the readings, or load them from `cache` when it exists (saving them there otherwise)."""
    if cache is not None and cache.is_file():
        return list(pickle.loads(cache.read_bytes()))
    reads = collect(Recognizer.load(), n)
    if cache is not None:
        cache.write_bytes(pickle.dumps(reads))
    return reads


def main(argv: Sequence[str] | None = None) -> int:
    """Print one JSON line per point of the grid with each kind's figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="inputs per kind (default 300)")
    parser.add_argument("--cache", type=Path, default=None, help="keep the readings here, and reuse them")
    args = parser.parse_args(argv)
    reads = cached_reads(args.cache, args.n)
    for point in itertools.product(GATES, MARGINS):
        choice = Choice(*point)
        print(json.dumps({**asdict(choice), **score(reads, choice)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

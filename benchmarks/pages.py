"""Page benchmark: how well `Recognizer.read_page` reads whole sheets, real pages first.

The first row is real: the pages of `../shared/real-dev/pages/` (kind `page` in its labels.csv, rows
split by `/`; three of them are stored sideways and passed as they are: the reader must turn them).
Then synthetic pages of MNIST *test* digits from `mnist_bot.training.pages`: rows, grids, forms, a
line of words among the rows, phone numbers. Each page is read with `read_page(photo bytes)`.

Metrics per kind (pooled over its pages):
- digits found (recall): true digits matched by a read digit, over the true digits;
- found right: matched and read as the right digit, over the true digits;
- invented: read digits matched by no true digit, per page (mean and worst page), and precision
  (matched read digits over all read digits);
- digit agreement: 1 - edit distance / length of the longer of truth and reading, on the page's
  text with the newlines removed (Levenshtein, `robustness.edit_distance`), pooled as
  1 - sum(distances) / sum(longer lengths);
- lines right: true lines read exactly, in order (the longest common subsequence of the true and the
  read lines, equal strings only), over the true lines;
- pages right: pages whose whole text, newlines included, is exactly the truth.
Read digits are matched to true ones one to one: on synthetic pages by box overlap (greedy, highest
IoU first, IoU >= 0.3); on real pages, which have no boxes, by the Levenshtein alignment of the two
texts (a substitution is a digit found but misread, an insertion one invented).

    python benchmarks/pages.py --n 20 --gallery /tmp/page-gallery
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from PIL import Image, ImageDraw, ImageFont

from mnist_bot import Recognizer, RecognizerError
from mnist_bot.recognizer import PageReading
from mnist_bot.training import pages
from mnist_bot.training.reject import LETTERS_FILE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robustness import (  # a sibling script, not a package
    DEFAULT_HANDWRITING_DIR,
    DEFAULT_REAL_DEV_DIR,
    _mnist_dir,
    _percent,
    _rate,
    edit_distance,
)

KINDS = ("real_page", *pages.KINDS)
MIN_IOU = 0.3
TARGET_AGREEMENT = 0.97
TARGET_MAX_INVENTED = 1  # read digits matched by no true digit, on any one page
SEED_STRIDE = 100_000  # page i of --seed s has the page seed s * SEED_STRIDE + i
DESCRIPTIONS = {
    "real_page": "real-dev: real sheets of several digits (3 stored sideways)",
    "rows": "2-6 rows of 3-10 digits, ragged, sloping up to 4 degrees",
    "grid": "0-9 (or any digits) scattered on a grid, read row by row",
    "form": "one digit in each printed box or grid cell, some touching it",
    "words": "digit rows with a line of UNIPEN letters above or between them",
    "phone": "phone numbers, digit groups split by dashes or spaces",
}


class Case(NamedTuple):
    """A page to read: its bytes, its true lines and, on synthetic pages, each digit's box."""

    kind: str
    name: str
    image: bytes
    lines: tuple[str, ...]
    digits: tuple[pages.TrueDigit, ...] | None  # None: no boxes (real pages)


@dataclass(frozen=True)
class PageScore:
    """How one page was read."""

    name: str
    truth: str
    read: str
    true_digits: int
    read_digits: int
    found: int  # true digits matched by a read digit
    found_right: int  # ... and read as that digit
    invented: int  # read digits matched by no true digit
    distance: int  # edit distance of the texts, newlines removed
    longer: int  # the longer of the two texts' lengths, newlines removed
    true_lines: int
    lines_right: int
    error: bool  # the reader refused the page (no digit found)

    @property
    def exact(self) -> bool:
        """Whether the whole reading, lines included, is the truth."""
        return self.read == self.truth


@dataclass
class KindScore:
    """Every page of one kind and the time they took."""

    kind: str
    pages: list[PageScore] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Return the pooled rates as a JSON-friendly dict."""
        p = self.pages
        total = sum(s.true_digits for s in p)
        read = sum(s.read_digits for s in p)
        return {
            "n": len(p),
            "digits": total,
            "digits_found": _rate(sum(s.found for s in p), total),
            "found_right": _rate(sum(s.found_right for s in p), total),
            "invented_per_page": round(sum(s.invented for s in p) / len(p), 3) if p else None,
            "max_invented": max((s.invented for s in p), default=None),
            "precision": _rate(read - sum(s.invented for s in p), read),
            "digit_agreement": _rate(sum(s.longer - s.distance for s in p), sum(s.longer for s in p)),
            "lines_right": _rate(sum(s.lines_right for s in p), sum(s.true_lines for s in p)),
            "pages_right": _rate(sum(s.exact for s in p), len(p)),
            "errors": sum(s.error for s in p),
            "seconds": round(self.seconds, 1),
        }


# ---------------------------------------------------------------- scoring


def iou(a: Any, b: Any) -> float:
    """Return the intersection over union of two (x, y, w, h) boxes."""
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    inter = max(w, 0) * max(h, 0)
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def match_boxes(truth: Sequence[Any], read: Sequence[Any]) -> list[tuple[int, int]]:
    """Pair true and read boxes one to one, highest IoU first, keeping pairs with IoU >= MIN_IOU."""
    pairs = sorted(
        ((iou(t, r), i, j) for i, t in enumerate(truth) for j, r in enumerate(read) if r is not None),
        reverse=True,
    )
    used_t: set[int] = set()
    used_r: set[int] = set()
    out = []
    for overlap, i, j in pairs:
        if overlap < MIN_IOU:
            break
        if i not in used_t and j not in used_r:
            used_t.add(i)
            used_r.add(j)
            out.append((i, j))
    return out


def align(truth: str, read: str) -> tuple[int, int, int]:
    """Align two texts (Levenshtein, with backtrace): return matches, substitutions and insertions."""
    rows, cols = len(truth) + 1, len(read) + 1
    cost = [[i + j if i == 0 or j == 0 else 0 for j in range(cols)] for i in range(rows)]
    for i in range(1, rows):
        for j in range(1, cols):
            same = truth[i - 1] == read[j - 1]
            cost[i][j] = min(cost[i - 1][j] + 1, cost[i][j - 1] + 1, cost[i - 1][j - 1] + (not same))
    i, j, matches, substitutions, insertions = len(truth), len(read), 0, 0, 0
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (truth[i - 1] != read[j - 1]):
            matches += truth[i - 1] == read[j - 1]
            substitutions += truth[i - 1] != read[j - 1]
            i, j = i - 1, j - 1
        elif j and cost[i][j] == cost[i][j - 1] + 1:
            insertions, j = insertions + 1, j - 1
        else:
            i -= 1
    return matches, substitutions, insertions


def common_lines(truth: Sequence[str], read: Sequence[str]) -> int:
    """Return the length of the longest common subsequence of two lists of lines (equal strings)."""
    previous = [0] * (len(read) + 1)
    for t in truth:
        current = [0]
        for j, r in enumerate(read, 1):
            current.append(previous[j - 1] + 1 if t == r else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def score_page(case: Case, reading: PageReading | None) -> PageScore:
    """Score one reading (None: the reader found no digit) against its page's truth."""
    read_lines = [line.text for line in reading.lines] if reading is not None else []
    read_digits = reading.digits if reading is not None else []
    truth, read = "".join(case.lines), "".join(read_lines)
    if case.digits is not None:
        pairs = match_boxes([d.box for d in case.digits], [p.box for p in read_digits])
        found = len(pairs)
        right = sum(case.digits[i].digit == read_digits[j].digit for i, j in pairs)
    else:
        right, wrong, _ = align(truth, read)
        found = right + wrong
    return PageScore(
        name=case.name,
        truth="\n".join(case.lines),
        read="\n".join(read_lines),
        true_digits=len(truth),
        read_digits=len(read_digits),
        found=found,
        found_right=right,
        invented=len(read_digits) - found,
        distance=edit_distance(truth, read),
        longer=max(len(truth), len(read)),
        true_lines=len(case.lines),
        lines_right=common_lines(case.lines, read_lines),
        error=reading is None,
    )


# ---------------------------------------------------------------- pages


def real_pages(folder: Path) -> list[Case]:
    """Read real-dev's pages and their rows (labels.csv, kind `page`)."""
    labels = folder / "labels.csv"
    if not labels.is_file():
        return []
    with labels.open(newline="") as rows:
        chosen = [row for row in csv.DictReader(rows) if row["kind"] == "page"]
    return [
        Case(
            "real_page",
            Path(row["file"]).name,
            (folder / row["file"]).read_bytes(),
            tuple(row["label"].split("/")),
            None,
        )
        for row in chosen
    ]


def synthetic_pages(kind: str, sources: pages.PageSources, n: int, seed: int) -> Iterator[Case]:
    """Render `n` pages of one kind, page i with the seed `seed * SEED_STRIDE + i`."""
    for i in range(n):
        page = pages.render_page(kind, sources, seed * SEED_STRIDE + i)
        yield Case(kind, f"{kind}_{page.seed}", page.image, tuple(page.line_texts), tuple(page.digits))


def read(rec: Recognizer, image: bytes) -> PageReading | None:
    """Read a page, None where the reader refuses it (no digit found)."""
    try:
        return rec.read_page(image)
    except RecognizerError:
        return None


def run(
    rec: Recognizer,
    kinds: Sequence[str],
    n: int,
    seed: int,
    real_dev: Path,
    sources: pages.PageSources | None,
    gallery: Path | None = None,
) -> list[KindScore]:
    """Read and score every page of every wanted kind; draw the pages not read exactly right."""
    scores = []
    for kind in kinds:
        score = KindScore(kind)
        started = time.perf_counter()
        cases = real_pages(real_dev) if kind == "real_page" else synthetic_pages(kind, sources, n, seed)  # type: ignore[arg-type]
        for case in cases:
            reading = read(rec, case.image)
            result = score_page(case, reading)
            score.pages.append(result)
            if gallery is not None and not result.exact:
                draw_reading(case, reading, gallery / f"{case.name}.jpg")
        score.seconds = time.perf_counter() - started
        scores.append(score)
    return scores


# ---------------------------------------------------------------- gallery


def draw_reading(case: Case, reading: PageReading | None, path: Path) -> None:
    """Write the page with every read digit boxed and labelled and the truth above it (missed ones blue)."""
    photo = Image.open(io.BytesIO(case.image)).convert("RGB")
    draw = ImageDraw.Draw(photo)
    read_digits = reading.digits if reading is not None else []
    matched: set[int] = set()
    right: set[int] = set()
    if case.digits is not None:
        pairs = match_boxes([d.box for d in case.digits], [p.box for p in read_digits])
        matched = {j for _, j in pairs}
        right = {j for i, j in pairs if case.digits[i].digit == read_digits[j].digit}
        for i in set(range(len(case.digits))) - {i for i, _ in pairs}:
            b = case.digits[i].box
            draw.rectangle([b.x, b.y, b.x + b.w, b.y + b.h], outline=(40, 90, 255), width=2)
    for j, p in enumerate(read_digits):
        if p.box is None:
            continue
        ok = case.digits is None or j in right
        colour = (0, 170, 0) if ok else (255, 140, 0) if j in matched else (230, 0, 0)
        b = p.box
        draw.rectangle([b.x, b.y, b.x + b.w, b.y + b.h], outline=colour, width=3)
        draw.text((b.x, max(b.y - 12, 0)), str(p.digit), fill=colour)
    photo.thumbnail((1600, 1600))
    said = reading.text.replace("\n", "/") if reading is not None else "(nothing)"
    title = f"truth {'/'.join(case.lines)}   read {said}"
    sheet = Image.new("RGB", (photo.width, photo.height + 30), "white")
    sheet.paste(photo, (0, 30))
    ImageDraw.Draw(sheet).text((4, 4), title[:200], fill="black", font=ImageFont.load_default(size=18))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=85)


# ---------------------------------------------------------------- report


def markdown(scores: Sequence[KindScore]) -> str:
    """Return the results as a Markdown table."""
    lines = [
        "| kind | what | pages | digits | found | found right | invented / page (worst) | precision "
        "| digit agreement | lines right | pages right | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for score in scores:
        s = score.summary()
        met = (
            s["digit_agreement"] is not None
            and s["digit_agreement"] >= TARGET_AGREEMENT
            and s["max_invented"] <= TARGET_MAX_INVENTED
        )
        invented = (
            "—" if s["invented_per_page"] is None else f"{s['invented_per_page']:.2f} ({s['max_invented']})"
        )
        cells = [score.kind, DESCRIPTIONS[score.kind], str(s["n"]), str(s["digits"])]
        cells += [_percent(s[k]) for k in ("digits_found", "found_right")]
        cells += [invented, _percent(s["precision"])]
        cells += [_percent(s[k]) for k in ("digit_agreement", "lines_right", "pages_right")]
        cells.append(f"agreement >= 97%, <= 1 invented {'✓' if met else '✗'}" if s["n"] else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=20, help="synthetic pages per kind (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help=f"comma-separated subset of {','.join(KINDS)}"
    )
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    parser.add_argument("--mnist-dir", type=Path, default=None, help="MNIST IDX folder (default: MNIST_DIR)")
    parser.add_argument("--handwriting-dir", type=Path, default=DEFAULT_HANDWRITING_DIR)
    parser.add_argument("--real-dev-dir", type=Path, default=DEFAULT_REAL_DEV_DIR)
    parser.add_argument(
        "--gallery", type=Path, default=None, help="draw each page not read exactly right here"
    )
    parser.add_argument("--json", action="store_true", help="print only one JSON line")
    args = parser.parse_args(argv)
    unknown = set(args.kinds.split(",")) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    return args


def report(scores: Sequence[KindScore], args: argparse.Namespace, rec: Recognizer) -> dict[str, Any]:
    """Return the JSON report: the settings, each kind's summary and the real pages one by one."""
    out: dict[str, Any] = {
        "benchmark": "pages",
        "model": str(args.model) if args.model else "default",
        "runtime": rec.runtime.name,
        "seed": args.seed,
        "n_per_kind": args.n,
        "kinds": {s.kind: s.summary() for s in scores},
    }
    real = [s for s in scores if s.kind == "real_page"]
    if real:
        out["real_pages"] = [{"file": p.name, "truth": p.truth, "read": p.read} for p in real[0].pages]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print a Markdown table and one JSON line (only the JSON with --json)."""
    args = parse_args(argv)
    rec = Recognizer.load(args.model)
    kinds = [k for k in KINDS if k in args.kinds.split(",")]
    sources = None
    if set(kinds) - {"real_page"}:
        letters = args.handwriting_dir / LETTERS_FILE if "words" in kinds else None
        sources = pages.PageSources.load(_mnist_dir(args.mnist_dir), letters)
    scores = run(rec, kinds, args.n, args.seed, args.real_dev_dir, sources, args.gallery)
    if not args.json:
        print(markdown(scores))
    print(json.dumps(report(scores, args, rec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

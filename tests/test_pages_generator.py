"""Tests of the synthetic page generator and the page benchmark's scoring."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
from PIL import Image

from mnist_bot.recognizer import NumberReading, PageReading, Prediction
from mnist_bot.training import pages
from mnist_bot.training.pages import Box, PageSources

ROOT = Path(__file__).resolve().parents[1]


def font_digit(digit: int, variant: int) -> np.ndarray:
    """Draw a digit in a Hershey font as a uint8 (28, 28) MNIST-style image, ink = 255."""
    image = np.zeros((28, 28), np.uint8)
    font = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX)[variant % 2]
    cv2.putText(image, str(digit), (7, 23), font, 0.8, 255, 2, cv2.LINE_AA)
    return image


@pytest.fixture(scope="module")
def sources() -> PageSources:
    """Page sources without MNIST or UNIPEN files: font digits and two hand-made letters."""
    images = np.stack([font_digit(d, v) for v in range(3) for d in range(10)])
    labels = np.array([d for _ in range(3) for d in range(10)], np.uint8)
    letter_v = [np.array([[0, 0], [5, 12], [10, 0]], np.float32)]
    letter_e = [
        np.array([[8, 2], [0, 2], [0, 10], [8, 10]], np.float32),
        np.array([[0, 6], [6, 6]], np.float32),
    ]
    letters = [("v", letter_v, "w1"), ("E", letter_e, "w1")]
    return PageSources(images, labels, letters)


def grey(page: pages.Page) -> np.ndarray:
    """Decode a page's photo to grey uint8 (H, W)."""
    return np.asarray(Image.open(io.BytesIO(page.image)).convert("L"))


@pytest.mark.parametrize("kind", pages.KINDS)
def test_every_kind_renders_a_page_whose_boxes_hold_its_digits(kind: str, sources: PageSources) -> None:
    page = pages.render_page(kind, sources, seed=3)
    photo = grey(page)
    assert photo.shape == page.shape and 1000 <= max(photo.shape) <= 2000
    assert page.lines and all(page.line_texts)
    assert len(page.digits) == len(page.text.replace("\n", ""))
    for true in page.digits:
        box = true.box
        assert box.w > 0 and box.h > 0
        assert (
            box.x >= 0 and box.y >= 0 and box.x + box.w <= photo.shape[1] and box.y + box.h <= photo.shape[0]
        )
        assert 20 <= box.h <= 180  # digits 30-120 px tall, boxes grown a little by the warp and rotation
        inside = photo[box.y : box.y + box.h, box.x : box.x + box.w]
        # Ink in the box: its darkest pixels are far darker than its paper.
        assert np.percentile(inside, 90) - inside.min() > 40


@pytest.mark.parametrize("kind", ["rows", "grid", "form", "phone"])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_darkest_pixels_of_a_page_are_its_digits_in_their_boxes(
    kind: str, seed: int, sources: PageSources
) -> None:
    page = pages.render_page(kind, sources, seed)
    photo = grey(page)
    boxed = np.zeros(photo.shape, bool)
    for true in page.digits:
        b = true.box
        boxed[max(b.y - 3, 0) : b.y + b.h + 3, max(b.x - 3, 0) : b.x + b.w + 3] = True
    # As many pixels as a tenth of the boxes' area: ink. Printed box lines and dashes take a few;
    # boxes shifted by one box width catch under half of them.
    count = sum(d.box.w * d.box.h for d in page.digits) // 10
    darkest = np.argsort(photo, axis=None)[:count]
    assert boxed.flat[darkest].mean() > 0.9


@pytest.mark.parametrize("kind", pages.KINDS)
def test_truth_is_in_reading_order(kind: str, sources: PageSources) -> None:
    page = pages.render_page(kind, sources, seed=5)
    middles = [[d.box.y + d.box.h / 2 for d in line] for line in page.lines]
    for line in page.lines:
        lefts = [d.box.x for d in line]
        assert lefts == sorted(lefts)
    line_heights = [float(np.mean(m)) for m in middles]
    assert line_heights == sorted(line_heights)


def overlap(a: Box, b: Box) -> bool:
    """Whether two boxes share any pixel."""
    return min(a.x + a.w, b.x + b.w) > max(a.x, b.x) and min(a.y + a.h, b.y + b.h) > max(a.y, b.y)


@pytest.mark.parametrize("kind", pages.KINDS)
def test_no_digit_of_one_line_touches_a_digit_of_another(kind: str, sources: PageSources) -> None:
    # Ragged indents and slopes: lines stay apart at every x. Rows seed 13 drew two rows into each
    # other when each line sloped from its own start.
    for seed in (0, 1, 2, 3, 13):
        page = pages.render_page(kind, sources, seed)
        for i, line in enumerate(page.lines):
            below = [d for other in page.lines[i + 1 :] for d in other]
            assert not any(overlap(a.box, b.box) for a in line for b in below), (kind, seed)


def test_pages_are_deterministic_per_seed(sources: PageSources) -> None:
    first, again = (pages.render_page("rows", sources, seed=11) for _ in range(2))
    other = pages.render_page("rows", sources, seed=12)
    assert first.image == again.image and first.lines == again.lines
    assert other.image != first.image


def test_dashes_and_letters_are_drawn_but_are_not_digits(sources: PageSources) -> None:
    phone = pages.plan_phone(sources, np.random.default_rng(1), (1200, 1600))
    words = pages.plan_words(sources, np.random.default_rng(1), (1200, 1600))
    for plan in (phone, words):
        assert any(p.digit is None for line in plan.lines for p in line)
    assert any(all(p.digit is None for p in line) for line in words.lines)  # the words line


def test_form_prints_box_lines_and_puts_one_digit_in_each(sources: PageSources) -> None:
    plan = pages.plan_form(sources, np.random.default_rng(4), (1400, 1000))
    assert plan.printed is not None and plan.printed.max() > 0.9
    assert all(p.digit is not None for line in plan.lines for p in line)


def test_unknown_kind_and_missing_letters_are_refused(sources: PageSources) -> None:
    with pytest.raises(ValueError, match="Unknown page kind"):
        pages.render_page("poster", sources, seed=0)
    with pytest.raises(ValueError, match="letters"):
        pages.render_page("words", PageSources(sources.images, sources.labels), seed=0)


def test_a_box_is_carried_through_the_warp() -> None:
    shift = np.array([[1, 0, 10], [0, 1, 5], [0, 0, 1]], np.float64)
    assert pages.warp_box(Box(20, 30, 40, 50), shift, (200, 200)) == Box(30, 35, 40, 50)
    assert pages.warp_box(Box(180, 190, 40, 50), shift, (200, 200)) == Box(190, 195, 10, 5)


# ---------------------------------------------------------------- the benchmark's scoring


def page_bench() -> ModuleType:
    """Import benchmarks/pages.py, a script rather than a package module."""
    spec = importlib.util.spec_from_file_location("page_bench", ROOT / "benchmarks" / "pages.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["page_bench"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def said(digit: int, box: Box | None) -> Prediction:
    """Make a read digit by hand."""
    probabilities = tuple(1.0 if d == digit else 0.0 for d in range(10))
    return Prediction(digit, 1.0, probabilities, False, np.zeros((28, 28), np.float32), box)  # type: ignore[arg-type]


def reading(*lines: list[Prediction]) -> PageReading:
    """Make a page reading of lines of read digits."""
    return PageReading([NumberReading("".join(str(p.digit) for p in line), line) for line in lines])


def test_boxes_match_one_to_one_and_count_found_right_and_invented() -> None:
    bench = page_bench()
    truth = (pages.TrueDigit(3, Box(0, 0, 20, 30)), pages.TrueDigit(1, Box(40, 0, 20, 30)))
    truth += (pages.TrueDigit(4, Box(0, 60, 20, 30)),)
    case = bench.Case("rows", "p", b"", ("31", "4"), truth)
    read = reading(
        [said(3, Box(1, 1, 20, 30)), said(7, Box(41, 0, 18, 30)), said(2, Box(300, 300, 20, 30))],
        [said(4, Box(2, 58, 20, 30))],
    )
    score = bench.score_page(case, read)
    assert (score.found, score.found_right, score.invented) == (3, 2, 1)
    assert score.distance == 2 and score.longer == 4  # "314" against "3724"
    assert score.lines_right == 1 and not score.exact
    summary = bench.KindScore("rows", [score]).summary()
    assert summary["digits_found"] == 1.0 and summary["precision"] == 0.75
    assert summary["digit_agreement"] == 0.5 and summary["lines_right"] == 0.5


def test_real_pages_match_by_alignment_and_an_unread_page_scores_zero() -> None:
    bench = page_bench()
    case = bench.Case("real_page", "p", b"", ("012", "345"), None)
    score = bench.score_page(case, reading([said(0, None), said(1, None), said(9, None)], [said(3, None)]))
    # "012345" read as "0193": 0 and 1 right, 9 for 2, 3 right, 4 and 5 missed: nothing invented.
    assert (score.found, score.found_right, score.invented) == (4, 3, 0)
    empty = bench.score_page(case, None)
    assert empty.error and empty.found == 0 and empty.longer == 6 and empty.distance == 6
    right = bench.score_page(
        case,
        reading([said(0, None), said(1, None), said(2, None)], [said(3, None), said(4, None), said(5, None)]),
    )
    assert right.exact and right.lines_right == 2


def test_alignment_counts_insertions_as_invented() -> None:
    bench = page_bench()
    assert bench.align("123", "1723") == (3, 0, 1)
    assert bench.align("123", "") == (0, 0, 0)
    assert bench.common_lines(["12", "34", "56"], ["12", "99", "56"]) == 2


@pytest.mark.slow
def test_benchmark_reports_every_metric_as_a_rate(
    mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = page_bench()
    gallery = tmp_path / "gallery"
    argv = [
        "--n",
        "2",
        "--kinds",
        "phone",
        "--json",
        "--mnist-dir",
        str(mnist_dir),
        "--gallery",
        str(gallery),
    ]
    assert bench.main(argv) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    summary = report["kinds"]["phone"]
    assert summary["n"] == 2 and summary["digits"] > 0
    for name in ("digits_found", "found_right", "digit_agreement", "lines_right", "pages_right"):
        assert 0.0 <= summary[name] <= 1.0, name
    assert summary["precision"] is None or 0.0 <= summary["precision"] <= 1.0
    assert summary["invented_per_page"] >= 0
    drawn = list(gallery.glob("*.jpg")) if gallery.exists() else []
    assert len(drawn) == 2 - round(summary["pages_right"] * 2)  # one picture per page not read right


def test_the_speed_inputs_hold_every_digit_of_their_grid(sources: PageSources) -> None:
    sheet = pages.photographed_sheet(sources, 0, shape=(1600, 1200), grid=(4, 5))
    form = pages.scanned_form(sources, 0, shape=(1400, 1000), grid=(6, 4))
    assert [len(line) for line in sheet.lines] == [5] * 4 and [len(line) for line in form.lines] == [4] * 6
    for page in (sheet, form):
        photo = grey(page)
        assert photo.shape == page.shape
        for true in page.digits:
            box = true.box
            inside = photo[box.y : box.y + box.h, box.x : box.x + box.w]
            assert box.w > 0 and box.h > 0 and np.percentile(inside, 90) - inside.min() > 40
    assert Image.open(io.BytesIO(form.image)).mode == "L"  # a grey scan

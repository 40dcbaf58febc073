"""Tests of the realistic test-input generator and a smoke test of the robustness benchmark."""

from __future__ import annotations

import gzip
import importlib.util
import io
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
from PIL import Image

from mnist_bot.config import DEFAULT_MODEL
from mnist_bot.data import Mnist
from mnist_bot.training import synthetic as syn

ROOT = Path(__file__).resolve().parents[1]
HANDWRITING = Path(os.environ.get("HANDWRITING_DIR") or ROOT.parent / "shared" / "handwriting")
FRAME_SIDES = {side for size in syn.FRAME_SIZES for side in size}


def mnist_like(digit: int = 7) -> np.ndarray:
    """Draw a digit the MNIST way: white ink on black, uint8 (28, 28), inside a 20x20 box."""
    paths = {
        1: [[(14, 4), (14, 24)]],
        7: [[(6, 5), (21, 5), (11, 24)]],
        0: [[(14, 4), (20, 9), (20, 19), (14, 24), (8, 19), (8, 9), (14, 4)]],
    }
    image = np.zeros((28, 28), dtype=np.uint8)
    for path in paths[digit]:
        cv2.polylines(image, [np.array(path, dtype=np.int32)], False, 255, 2, cv2.LINE_AA)
    return image


def ink_ratio(photo: bytes) -> np.ndarray:
    """Return each pixel's brightness over the local paper brightness: ink is well below 1."""
    grey = np.asarray(Image.open(io.BytesIO(photo)).convert("L"), dtype=np.float32) + 1
    small = cv2.resize(grey, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    paper = cv2.dilate(small, np.ones((31, 31), np.uint8))
    paper = cv2.resize(cv2.GaussianBlur(paper, (0, 0), 4), (grey.shape[1], grey.shape[0]))
    return grey / paper


def ink_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Return (x, y, w, h) of the True pixels of a mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def rng(seed: int = 0) -> np.random.Generator:
    """Return a seeded generator."""
    return np.random.default_rng(seed)


def test_synthetic_and_realistic_import_without_tensorflow() -> None:
    code = (
        "import sys, json\n"
        "import mnist_bot.training.synthetic, mnist_bot.training.realistic\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'tensorflow', 'keras'})\n"
        "print(json.dumps({'heavy': heavy}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(done.stdout.strip().splitlines()[-1])["heavy"] == []
    assert not (ROOT / "mnist_bot" / "synthetic.py").exists()  # generators live with training now


# ---------------------------------------------------------------- shapes and strokes


def test_digit_mask_is_the_requested_height_and_soft_edged() -> None:
    mask = syn.digit_mask(mnist_like(7), 200, rng())
    assert mask.dtype == np.float32
    _, _, _, h = ink_box(mask > 0.5)
    assert 190 <= h <= 210
    assert mask.min() == 0.0 and mask.max() == 1.0
    assert 0 < np.mean((mask > 0) & (mask < 1)) < 0.05  # anti-aliased edge, not a blur


def test_pen_mask_strokes_have_the_requested_width() -> None:
    mask = syn.pen_mask(mnist_like(1), 200, pen=12.0, rng=rng())
    row = mask[mask.shape[0] // 2] > 0.5
    assert 9 <= row.sum() <= 15


def test_topology_counts_parts_and_loops() -> None:
    assert syn.source_topology(mnist_like(0)) == (1, 1)
    assert syn.source_topology(mnist_like(7)) == (1, 0)
    two_bars = np.zeros((40, 40), dtype=bool)
    two_bars[5:35, 5:9] = two_bars[5:35, 30:34] = True
    assert syn.topology(two_bars, unit=2.0) == (2, 0)


def test_stroke_mask_keeps_the_parts_and_loops_of_small_mnist_digits(mnist: Mnist) -> None:
    digits = mnist.test.images[:300]
    draw = np.random.default_rng(3)
    heights = draw.integers(18, 40, len(digits))
    pens = [syn.choose_pen(h, draw) for h in heights]

    def faithful_share(render: Callable[..., np.ndarray]) -> float:
        kept = [
            syn.topology(render(d, int(h), rng(i), pen) >= 0.5, h / 20) == syn.source_topology(d)
            for i, (d, h, pen) in enumerate(zip(digits, heights, pens, strict=True))
        ]
        return float(np.mean(kept))

    # One draw of a small digit fills a loop or breaks a stroke about one time in twenty.
    redrawn = faithful_share(syn.stroke_mask)
    assert redrawn >= 0.97
    assert redrawn > faithful_share(syn.one_stroke_mask)


def test_uncovered_ink_counts_a_lost_stroke_but_not_a_thinner_pen() -> None:
    zero = mnist_like(0)
    thin_pen = syn.pen_mask(zero, 200, pen=6.0, rng=rng())
    assert syn.uncovered_ink(zero, thin_pen) < syn.LOST_INK
    open_side = syn.digit_mask(zero, 200, rng())
    h, w = open_side.shape
    open_side[h // 3 : 2 * h // 3, w // 2 :] = 0  # the 0's right side is gone: a C
    assert syn.uncovered_ink(zero, open_side) >= syn.LOST_INK


def test_stroke_half_width_tells_thick_sources_from_thin_ones() -> None:
    thin_one, thick_one = mnist_like(1), cv2.dilate(mnist_like(1), np.ones((3, 3), np.uint8))
    assert syn.stroke_half_width(thin_one) <= syn.THICK_STROKE < syn.stroke_half_width(thick_one)


def test_flag_one_adds_a_flag_down_to_the_left_of_the_top_in_mnists_box() -> None:
    stem = mnist_like(1)
    widths = []
    for seed in range(8):
        flagged = syn.flag_one(stem, np.random.default_rng(seed))
        ys, xs = np.nonzero(flagged > 127)
        height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        widths.append(width / height)
        # Fit into MNIST's 20x20 box again, centred by mass.
        assert 18 <= max(height, width) <= 21, seed
        assert np.average(np.indices(flagged.shape)[1], weights=flagged) == pytest.approx(14, abs=1.0)
        # The flag leaves the top and falls to the left: the leftmost ink lies below the top and
        # above the stem's foot, which is right of the ink's middle.
        left = ys[xs == xs.min()]
        assert ys.min() + 1 < left.mean() < ys.max() - 2, seed
        assert xs[ys >= ys.max() - 2].mean() > xs.mean(), seed
    # Some flags run long, as Swiss writers' do: a 1 almost as wide as half its height or more.
    assert max(widths) >= 0.45 and min(widths) >= 0.2


def test_stem_angle_measures_the_slant_of_a_stroke() -> None:
    upright = mnist_like(1) > 127
    slanted = cv2.warpAffine(mnist_like(1), np.float32([[1, -0.3, 4], [0, 1, 0]]), (28, 28)) > 127
    assert syn.stem_angle(upright) == pytest.approx(np.pi / 2, abs=0.05)
    # The top leans right, so the stem points down and to the left: less than 90 degrees.
    assert syn.stem_angle(slanted) == pytest.approx(np.pi / 2 - np.arctan(0.3), abs=0.08)


def test_a_number_the_pen_cannot_follow_is_drawn_with_the_felt_tip_throughout() -> None:
    # One writer does not switch pens between digits: a mixed number is not a realistic photo.
    thick_seven = cv2.dilate(mnist_like(7), np.ones((3, 3), np.uint8))
    digits, heights = [mnist_like(1), thick_seven, mnist_like(0)], [120, 120, 120]
    felt = syn.number_strokes(digits, heights, rng(), pen=4.0)
    pen = syn.number_strokes([mnist_like(1), mnist_like(7), mnist_like(0)], heights, rng(), pen=4.0)

    def half_widths(masks: list[np.ndarray]) -> list[float]:
        return [syn.stroke_half_width(np.uint8(m * 255)) for m in masks]

    assert max(half_widths(pen)) < 0.5  # the 4 px pen on 120 px digits
    assert min(half_widths(felt)) > 0.5  # the sources' own strokes, thin 1 and 0 included


def test_thin_reduces_a_thick_bar_to_a_one_pixel_line() -> None:
    bar = np.zeros((40, 60), dtype=bool)
    bar[15:26, 5:55] = True
    skeleton = syn.thin(bar)
    assert skeleton[10:30, 20:40].sum(axis=0).max() == 1
    assert skeleton.sum() >= 30


def test_place_keeps_the_whole_mask_inside_the_frame() -> None:
    mask = np.ones((50, 30), dtype=np.float32)
    for seed in range(20):
        frame = syn.place(mask, (100, 200), rng(seed))
        assert frame.sum() == pytest.approx(1500)


def test_place_keeps_ink_away_from_the_frame_edges() -> None:
    for seed in range(30):
        x, y, w, h = ink_box(syn.place(np.ones((40, 40), dtype=np.float32), (480, 640), rng(seed)) > 0)
        assert x >= 0.06 * 640 and y >= 0.06 * 480 and x + w <= 0.94 * 640 and y + h <= 0.94 * 480


def test_place_shrinks_a_mask_larger_than_the_frame() -> None:
    frame = syn.place(np.ones((300, 100), dtype=np.float32), (100, 100), rng())
    _, _, _, h = ink_box(frame > 0.5)
    assert h <= 100


def test_number_mask_lays_digits_left_to_right_without_touching() -> None:
    for seed in range(10):
        strip = syn.number_mask([mnist_like(1)] * 5, (480, 640), rng(seed))
        count, labels = cv2.connectedComponents((strip > 0.05).astype(np.uint8))
        assert count - 1 == 5
        spans = sorted((ink_box(labels == i)[0], sum(ink_box(labels == i)[::2])) for i in range(1, count))
        gaps = [right_next[0] - left[1] for left, right_next in itertools.pairwise(spans)]
        assert min(gaps) >= 3  # ink columns never overlap: each digit stands apart


# ---------------------------------------------------------------- photos


def test_photo_is_a_jpeg_of_a_phone_frame() -> None:
    photo = syn.photo_of_digit(mnist_like(7), rng())
    assert photo[:2] == b"\xff\xd8"
    image = Image.open(io.BytesIO(photo))
    assert image.format == "JPEG" and image.mode == "RGB"
    assert set(image.size) <= FRAME_SIDES


def test_photo_is_reproducible_from_its_seed() -> None:
    assert syn.photo_of_digit(mnist_like(0), rng(3)) == syn.photo_of_digit(mnist_like(0), rng(3))
    assert syn.photo_of_digit(mnist_like(0), rng(3)) != syn.photo_of_digit(mnist_like(0), rng(4))


@pytest.mark.parametrize("seed", range(8))
def test_photo_holds_dark_ink_at_a_plausible_size(seed: int) -> None:
    photo = syn.photo_of_digit(mnist_like(1), rng(seed))
    ink = ink_ratio(photo) < 0.6
    assert ink.sum() > 30
    _, _, _, h = ink_box(ink)
    # A "1" fills its box's height: at least ~8% of the frame, at most 60% plus rotation.
    assert 0.05 * ink.shape[0] <= h <= 0.7 * ink.shape[0]


def test_photos_vary_in_frame_size_orientation_and_place() -> None:
    photos = [syn.photo_of_digit(mnist_like(1), rng(seed)) for seed in range(16)]
    sizes = {Image.open(io.BytesIO(p)).size for p in photos}
    assert any(w > h for w, h in sizes) and any(w < h for w, h in sizes)
    centres = [ink_box(ink_ratio(p) < 0.6) for p in photos]
    assert len({(x // 50, y // 50) for x, y, _, _ in centres}) > 8


def test_photo_of_number_decodes() -> None:
    photo = syn.photo_of_number([mnist_like(d) for d in (1, 0, 7)], rng())
    image = Image.open(io.BytesIO(photo))
    assert image.format == "JPEG" and set(image.size) <= FRAME_SIDES
    assert (ink_ratio(photo) < 0.6).sum() > 50


def test_photo_of_number_needs_a_digit() -> None:
    with pytest.raises(ValueError, match="at least one digit"):
        syn.photo_of_number([], rng())


# ---------------------------------------------------------------- canvases


def test_canvas_of_digit_is_rgba_with_ink_only_in_alpha() -> None:
    canvas = syn.canvas_of_digit(mnist_like(0), rng())
    assert canvas.shape == (280, 280, 4) and canvas.dtype == np.uint8
    alpha = canvas[..., 3]
    assert 0.01 < np.mean(alpha > 0) < 0.4
    assert np.all(canvas[alpha == 0, :3] == 0)  # a transparent background, as the browser returns it


def test_canvas_of_digit_keeps_the_parts_and_loops_of_mnist_digits(mnist: Mnist) -> None:
    def faithful(digit: np.ndarray, seed: int) -> bool:
        alpha = syn.crop_to_ink(syn.canvas_of_digit(digit, rng(seed))[..., 3], 127)
        return syn.topology(alpha > 127, alpha.shape[0] / 20) == syn.source_topology(digit)

    # A pen redrawn along the skeleton alone loses a loop or a stroke about one time in fifteen.
    assert np.mean([faithful(d, i) for i, d in enumerate(mnist.test.images[:300])]) >= 0.97


def test_canvas_of_digit_is_reproducible_and_varies_with_seed() -> None:
    first = syn.canvas_of_digit(mnist_like(7), rng(5))
    assert np.array_equal(first, syn.canvas_of_digit(mnist_like(7), rng(5)))
    assert not np.array_equal(first, syn.canvas_of_digit(mnist_like(7), rng(6)))


def test_canvas_of_strokes_draws_a_round_capped_bar_where_the_line_goes() -> None:
    stroke = [np.array([[0.0, 0.0], [0.0, 100.0]])]
    for seed in range(10):
        alpha = syn.canvas_of_strokes(stroke, rng(seed))[..., 3]
        x, y, w, h = ink_box(alpha > 127)
        assert 8 - 2 <= w <= 25 + 2  # the pen width
        assert 0.25 * 280 <= h <= 280  # the digit's height, plus the round caps
        assert x >= 0 and y >= 0 and x + w <= 280 and y + h <= 280


def test_canvas_of_strokes_draws_a_single_tap_as_a_dot() -> None:
    tap, line = np.array([[0.0, 0.0]]), np.array([[100.0, 0.0], [100.0, 100.0]])
    alpha = syn.canvas_of_strokes([tap, line], rng())[..., 3]
    count, _ = cv2.connectedComponents((alpha > 127).astype(np.uint8))
    assert count - 1 == 2  # the line and, apart from it, the dot


def test_canvas_of_strokes_refuses_nothing_to_draw() -> None:
    with pytest.raises(ValueError, match="No points"):
        syn.canvas_of_strokes([], rng())


def test_scan_of_bitmap_is_dark_ink_on_light_paper() -> None:
    bitmap = cv2.resize(mnist_like(0), (16, 16), interpolation=cv2.INTER_AREA)
    scan = syn.scan_of_bitmap((bitmap > 60).astype(np.uint8) * 255, rng())
    assert scan.dtype == np.uint8 and scan.ndim == 2 and scan.shape[0] == scan.shape[1]
    assert np.median(scan) > 180 and scan.min() < 90


# ---------------------------------------------------------------- loaders (small files written here)


def test_load_unipen_flips_y_drops_lou_and_unknown_quality(tmp_path: Path) -> None:
    records = [
        {"label": "3", "site": "syn", "file": "w1", "quality": "OK", "strokes": [[[1, 10], [2, 20]]]},
        {"label": "4", "site": "lou", "file": "w2", "quality": "OK", "strokes": [[[1, 1]]]},
        {"label": "5", "site": "apb", "file": "w3", "quality": "bad", "strokes": [[[1, 1]]]},
        {"label": "6", "site": "apb", "file": "w3", "quality": "?", "strokes": [[], [[3, 4]]]},
    ]
    path = tmp_path / "unipen.jsonl.gz"
    path.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in records).encode()))
    samples = syn.load_unipen(path)
    assert [(label, writer) for label, _, writer in samples] == [(3, "w1"), (6, "w3")]
    assert samples[0][1][0].tolist() == [[1, -10], [2, -20]]
    assert len(samples[1][1]) == 1  # the empty stroke is dropped
    assert set(syn.group_by_writer(samples)) == {"w1", "w3"}


def test_load_unipen_verified_keeps_checked_labels_and_drops_self_normalized_strokes(tmp_path: Path) -> None:
    records = [
        {"label": "3", "site": "syn", "file": "w1", "quality": "OK", "strokes": [[[1, 10], [2, 20]]]},
        {"label": "0", "site": "val", "file": "w2", "quality": "?", "strokes": [[[5, 5], [9, 9]]]},
        # ibm: every stroke starts its own box at (0, 0), so the strokes lose their layout
        {
            "label": "4",
            "site": "ibm",
            "file": "w3",
            "quality": "OK",
            "strokes": [[[0, 3], [2, 0]], [[0, 0], [4, 1]]],
        },
        {
            "label": "7",
            "site": "ibm",
            "file": "w3",
            "quality": "OK",
            "strokes": [[[0, 3], [2, 0]], [[3, 1], [4, 6]]],
        },
    ]
    path = tmp_path / "unipen.jsonl.gz"
    path.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in records).encode()))
    assert [label for label, _, _ in syn.load_unipen(path, verified=True)] == [3, 7]
    assert [label for label, _, _ in syn.load_unipen(path)] == [3, 0, 4, 7]


def test_load_semeion_reads_bitmaps_and_one_hot_labels(tmp_path: Path) -> None:
    pixels = np.zeros(256, dtype=int)
    pixels[:16] = 1  # top row inked
    label = np.eye(10, dtype=int)[7]
    path = tmp_path / "semeion.data"
    path.write_text(" ".join(f"{v}.0000" for v in pixels) + " " + " ".join(map(str, label)) + "\n")
    images, labels = syn.load_semeion(path)
    assert images.shape == (1, 16, 16) and images.dtype == np.uint8
    assert labels.tolist() == [7]
    assert images[0, 0].tolist() == [255] * 16 and images[0, 1:].max() == 0


def test_load_optdigits_skips_the_header_and_reads_labels(tmp_path: Path) -> None:
    block = ["0" * 32] * 31 + ["1" * 32]
    path = tmp_path / "optdigits.tra"
    path.write_text("\n".join(["header text", "entwidth = 32", *block, " 4", *block, " 9"]) + "\n")
    images, labels = syn.load_optdigits(path)
    assert images.shape == (2, 32, 32) and labels.tolist() == [4, 9]
    assert images[0, 31].min() == 255 and images[0, :31].max() == 0


@pytest.mark.slow
def test_real_handwriting_files_load() -> None:
    samples = syn.load_unipen(HANDWRITING / "unipen_1a_digits.jsonl.gz")
    assert len(samples) > 15_000
    assert {label for label, _, _ in samples} == set(range(10))
    semeion_images, semeion_labels = syn.load_semeion(HANDWRITING / "semeion.data")
    assert semeion_images.shape == (1593, 16, 16) and set(semeion_labels.tolist()) == set(range(10))
    opt_images, opt_labels = syn.load_optdigits(HANDWRITING / "optdigits-orig.tra")
    assert opt_images.shape == (1934, 32, 32) and set(opt_labels.tolist()) == set(range(10))


# ---------------------------------------------------------------- the benchmark


def robustness_module() -> ModuleType:
    """Import benchmarks/robustness.py, which is a script rather than a package module."""
    spec = importlib.util.spec_from_file_location("robustness", ROOT / "benchmarks" / "robustness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["robustness"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_naive_path_sees_a_transparent_canvas_as_bright_ink_on_black() -> None:
    bench = robustness_module()
    small = bench.naive28(syn.canvas_of_digit(mnist_like(1), rng()))
    assert small.shape == (28, 28) and small.dtype == np.float32
    assert small.max() > 0.3 and np.median(small) < 0.05


def test_number_scores_count_digits_by_edit_distance() -> None:
    bench = robustness_module()
    score = bench.Score("number")
    score.add("2048", "2048", False, None)
    score.add("2048", "248", True, None)
    summary = score.summary()
    assert summary["accuracy"] == 0.5 and summary["length_accuracy"] == 0.5
    assert summary["digit_accuracy"] == pytest.approx(7 / 8, abs=1e-4)
    assert summary["accuracy_when_sure"] == 1.0 and summary["unsure_rate"] == 0.5


def test_blank_paper_scores_right_only_when_no_digit_is_found() -> None:
    bench = robustness_module()
    score = bench.Score("blank")
    score.add(bench.NO_DIGIT, None, True, "7")  # "no digit here": right
    score.add(bench.NO_DIGIT, "1", True, "1")  # an unsure guess is still a guess
    score.add(bench.NO_DIGIT, "4", False, "4")
    summary = score.summary()
    assert summary["accuracy"] == pytest.approx(1 / 3, abs=1e-4) and summary["naive_accuracy"] == 0.0


@pytest.mark.slow
def test_robustness_benchmark_runs_end_to_end(tmp_path: Path, mnist_dir: Path) -> None:
    out = tmp_path / "robustness.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "robustness.py"), "--n", "20"]
    command += ["--model", str(DEFAULT_MODEL), "--mnist-dir", str(mnist_dir)]
    command += ["--handwriting-dir", str(HANDWRITING), "--json-out", str(out)]
    command += ["--save-examples", str(tmp_path / "examples")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("| kind |")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == json.loads(out.read_text())
    assert set(report["kinds"]) == set(robustness_module().KINDS)
    assert all(kind["n"] == min(20, {"real_page": 9}.get(name, 20)) for name, kind in report["kinds"].items())
    assert report["kinds"]["mnist"]["accuracy"] >= 0.9  # 20 clean test digits: a real model gets them
    assert list((tmp_path / "examples").glob("photo_*_true*.jpg"))
    assert list((tmp_path / "examples").glob("canvas_*_true*.png"))

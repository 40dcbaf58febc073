"""Tests of the robustness benchmark's real rows: real-dev loading, per-source scores, the gallery."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_bot.config import DEFAULT_MODEL
from mnist_bot.recognizer import Recognizer
from tests.test_synthetic import robustness_module as robustness

ROOT = Path(__file__).resolve().parents[1]
REAL_DEV = ROOT.parent / "shared" / "real-dev"
# Floors a few points under the figures measured on the shipped model (real_photo 98.71%,
# real_drawn 100.00%): they catch a broken pipeline, not noise on 233 and 126 images.
FLOORS = {"real_photo": 0.96, "real_drawn": 0.97}


def png(array: np.ndarray) -> bytes:
    """Encode a uint8 array as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def write_real_dev(folder: Path) -> None:
    """Lay out a tiny real-dev folder: two photos from two sources, a drawing and a page."""
    blank = np.full((40, 40), 255, np.uint8)
    rows = ["file,kind,label,repo,commit,orig_path,license"]
    for name, kind, label, repo in [
        ("photos/a.png", "photo", "3", "alice/digits"),
        ("photos/b.png", "photo", "4", "bob/scans"),
        ("drawn/c.png", "drawn", "7", "carol/paint"),
        ("pages/d.png", "page", "12/345", "dave/sheets"),
    ]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(png(blank))
        rows.append(f"{name},{kind},{label},{repo},0,{name},MIT")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")


def test_real_dev_files_load_by_kind_with_their_source_and_page_rows_joined(tmp_path: Path) -> None:
    bench = robustness()
    write_real_dev(tmp_path)
    real = bench.load_real_dev(tmp_path)
    assert [s.truth for s in real["real_photo"]] == ["3", "4"]
    assert [s.source for s in real["real_photo"]] == ["alice", "bob"]
    assert real["real_page"][0].truth == "12345"
    assert real["real_drawn"][0].image == (tmp_path / "drawn" / "c.png").read_bytes()
    assert bench.load_real_dev(tmp_path / "missing") == {}


def test_real_rows_come_first_and_keep_the_synthetic_seeds() -> None:
    bench = robustness()
    assert bench.KINDS[:4] == ("real_photo", "real_drawn", "real_page", "unipen")
    assert set(bench.KINDS) == set(bench.SEED_ORDER)
    # Each synthetic kind's generator is seeded by its old place, so its figures stay comparable.
    assert bench.SEED_ORDER[:9] == (
        "mnist", "mnist_pipeline", "photo", "canvas", "unipen", "semeion", "optdigits", "number", "blank"
    )  # fmt: skip


def test_scores_count_each_source_and_sure_wrong_answers() -> None:
    bench = robustness()
    score = bench.Score("real_photo")
    score.add("1", "1", False, "1", "alice")
    score.add("1", "7", False, "7", "alice")  # sure and wrong
    score.add("2", "3", True, "3", "bob")  # wrong but flagged
    score.add("5", None, True, None, "bob")  # refused: wrong, not a sure answer
    summary = score.summary()
    assert summary["by_source"] == {"alice": {"n": 2, "accuracy": 0.5}, "bob": {"n": 2, "accuracy": 0.0}}
    assert summary["sure_wrong_rate"] == 0.25 and summary["right_sure_rate"] == 1.0
    table = bench.markdown([score])
    assert "| real_photo | alice | 2 | 50.00% |" in table and "| real_photo | bob | 2 | 0.00% |" in table


def test_a_page_is_scored_as_a_whole_and_digit_by_digit() -> None:
    bench = robustness()
    score = bench.Score("real_page")
    score.add("12345", "12345", False, None, "dave")
    score.add("12345", "1245", False, None, "dave")
    summary = score.summary()
    assert summary["accuracy"] == 0.5 and summary["digit_accuracy"] == 0.9
    assert summary["naive_accuracy"] is None


def test_gallery_writes_a_contact_sheet_of_each_kinds_failures(tmp_path: Path, fake_recognizer) -> None:
    bench = robustness()
    gallery = bench.Gallery(tmp_path / "gallery")
    digit = np.zeros((60, 60), np.uint8)
    digit[10:50, 28:33] = 255
    sample = bench.Sample(png(255 - digit), "1", "alice")
    for _ in range(5):
        gallery.add("real_photo", sample, "7", fake_recognizer.predict(sample.image))
    gallery.add("real_page", bench.Sample(png(255 - digit), "12", "dave"), None, None)
    written = gallery.write()
    assert sorted(p.name for p in written) == ["real_page.png", "real_photo.png"]
    sheet = Image.open(tmp_path / "gallery" / "real_photo.png")
    assert sheet.height == 2 * (bench.Gallery.TILE + 24)  # five failures, four a row
    assert np.asarray(sheet.convert("L")).min() < 50  # the tiles' ink and captions are drawn


@pytest.mark.slow
@pytest.mark.skipif(
    not (REAL_DEV / "labels.csv").is_file(), reason="../shared/real-dev is not beside the checkout"
)
def test_real_dev_rows_stay_above_their_floors() -> None:
    bench = robustness()
    sources = bench.Sources(
        mnist_x=np.zeros((0, 28, 28), np.uint8),
        mnist_y=np.zeros(0, np.uint8),
        unipen=None,
        semeion=None,
        optdigits=None,
        real_dev=bench.load_real_dev(REAL_DEV),
    )
    rec = Recognizer.load(DEFAULT_MODEL)
    scores = bench.run(rec, sources, list(FLOORS), 10_000, seed=0, saver=None)
    for score in scores:
        assert score.n == {"real_photo": 233, "real_drawn": 126}[score.kind]
        assert score.correct / score.n >= FLOORS[score.kind], score.summary()

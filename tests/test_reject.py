"""Tests of the "not a digit" model: its data, its calibration, and how the recognizer uses it."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_bot import EmptyImageError
from mnist_bot.blobs import Box
from mnist_bot.recognizer import (
    NOT_A_DIGIT,
    WORD_LINE_P_DIGIT,
    Prediction,
    Recognizer,
    RejectRule,
    vouched_for,
)
from mnist_bot.runtime import FakeRuntime
from mnist_bot.training import reject
from mnist_bot.training.realistic import is_held_out_writer
from tests.conftest import draw_digit, encode


def flat_is_no_digit(image: np.ndarray) -> float:
    """P(digit) from the ink's height: 0.95 for ink over 8 rows high, 0.05 for flatter ink (a dash)."""
    return 0.95 if int((image > 0.3).any(axis=1).sum()) > 8 else 0.05


def recognizer(p_digit: float | None = None, low: float = 0.3, doubtful: float | None = None) -> Recognizer:
    """A fake recognizer whose runtime answers P(digit): a fixed value, or by the ink's height."""
    digitness = flat_is_no_digit if p_digit is None else (lambda _: p_digit)
    rule = RejectRule(low, low if doubtful is None else doubtful, alone=low)
    return Recognizer(FakeRuntime(digitness=digitness), reject=rule)


def doubtful_one(p_digit: float, unsure: bool) -> Prediction:
    """A prediction of 1 with the given P(digit), sure (one-hot probabilities) or unsure (even ones)."""
    probabilities = (0.1,) * 10 if unsure else (0.0, 1.0) + (0.0,) * 8
    return Prediction(
        1, max(probabilities), probabilities, unsure, np.zeros((28, 28)), digit_probability=p_digit
    )


def test_a_cut_out_under_the_threshold_is_no_digit() -> None:
    image = encode(draw_digit(7))
    with pytest.raises(EmptyImageError, match="doesn't look like a digit"):
        recognizer(0.1).predict(image)
    with pytest.raises(EmptyImageError):
        recognizer(0.1).predict_batch([image, image])
    assert recognizer(low=0.3).is_no_digit(doubtful_one(0.29, unsure=False))
    # No rule, no rejection.
    assert not Recognizer(FakeRuntime()).is_no_digit(doubtful_one(0.29, unsure=False))


def test_a_doubtful_cut_out_is_no_digit_only_when_its_answer_is_unsure() -> None:
    rec = recognizer(low=0.1, doubtful=0.5)
    assert not rec.is_no_digit(doubtful_one(0.3, unsure=False))
    assert rec.is_no_digit(doubtful_one(0.3, unsure=True))
    assert not rec.is_no_digit(doubtful_one(0.6, unsure=True))
    assert rec.is_no_digit(doubtful_one(0.05, unsure=False))


def test_a_kept_answer_carries_its_digitness_and_keeps_its_unsure_flag() -> None:
    image = encode(draw_digit(7))
    plain = Recognizer(FakeRuntime()).predict(image)
    kept = recognizer(0.5).predict(image)
    assert kept.digit == plain.digit and kept.unsure == plain.unsure
    assert kept.digit_probability == pytest.approx(0.5)


def test_without_a_reject_head_every_cut_out_is_a_digit() -> None:
    prediction = Recognizer(FakeRuntime()).predict(encode(draw_digit(1)))
    assert prediction.digit_probability == 1.0


def test_a_number_drops_what_is_no_digit_and_an_all_rejected_number_is_empty() -> None:
    image = np.full((100, 300), 255, np.uint8)
    image[20:80, 40:48] = 0  # a bold 1: much ink in its 28x28
    image[20:80, 140:148] = 0
    image[76:80, 230:290] = 0  # a dash: flat once fit into 20x20
    reading = recognizer(low=0.3).read_number(encode_array(image))
    assert len(reading.digits) == 2
    with pytest.raises(EmptyImageError, match=NOT_A_DIGIT[:20]):
        recognizer(0.1).read(encode(draw_digit(7)))


def encode_array(array: np.ndarray) -> bytes:
    """Encode a grey uint8 array as PNG."""
    return encode(Image.fromarray(array))


def test_the_rule_is_read_from_the_model_metadata() -> None:
    assert RejectRule.from_metadata({}) is None
    rule = {"reject": {"low": 0.01, "doubtful": 0.2, "alone": 0.001}}
    assert RejectRule.from_metadata(rule) == RejectRule(0.01, 0.2, 0.001, WORD_LINE_P_DIGIT, 0.001)
    rule["reject"]["alone_doubtful"] = 0.05
    assert RejectRule.from_metadata(rule) == RejectRule(0.01, 0.2, 0.001, WORD_LINE_P_DIGIT, 0.05)
    plain = Recognizer(FakeRuntime(), {"reject": {"low": 0.02, "words": 0.1}})
    assert plain.reject == RejectRule(0.02, 0.02, 0.02, 0.1, 0.02)


def test_a_lone_cut_out_is_turned_away_only_under_the_lone_level() -> None:
    rule = RejectRule(low=0.3, doubtful=0.3, alone=0.01)
    assert rule.rejects(doubtful_one(0.1, unsure=False)) and not rule.rejects(doubtful_one(0.1, False), False)
    assert rule.rejects(doubtful_one(0.005, unsure=False), on_page=False)
    # Alone, a doubtful cut-out goes only with an unsure answer, as on a page.
    lone = RejectRule(low=0.3, doubtful=0.5, alone=0.01, alone_doubtful=0.2)
    assert lone.rejects(doubtful_one(0.1, unsure=True), on_page=False)
    assert not lone.rejects(doubtful_one(0.1, unsure=False), on_page=False)
    assert not lone.rejects(doubtful_one(0.25, unsure=True), on_page=False)
    rec = Recognizer(FakeRuntime(digitness=lambda _: 0.1), reject=rule)
    assert rec.predict(encode(draw_digit(7))).digit_probability == pytest.approx(0.1)


def test_the_chosen_rule_loses_at_most_the_allowed_share_of_digits_in_every_set() -> None:
    from mnist_bot.training.train_reject import MAX_DIGITS_LOST, choose_rule, reject_mask

    rng = np.random.default_rng(0)
    y = np.concatenate([np.ones(2000), np.zeros(2000)]).astype(np.uint8)
    # One set's digits are clear; the other's overlap its non-digits, and only unsure answers tell them apart.
    clear = np.concatenate([rng.uniform(0.6, 1.0, 2000), rng.uniform(0.0, 0.4, 2000)])
    mixed = np.concatenate([rng.uniform(0.2, 1.0, 2000), rng.uniform(0.0, 0.5, 2000)])
    unsure = np.concatenate([np.zeros(2000, bool), rng.random(2000) < 0.8])
    scored = {"clear": (clear, unsure, y), "mixed": (mixed, unsure, y)}
    rule = choose_rule(scored)
    for p, flags, labels in scored.values():
        lost = reject_mask(p[labels == 1], flags[labels == 1], rule["low"], rule["doubtful"]).mean()
        assert lost <= MAX_DIGITS_LOST
    assert rule["doubtful"] > rule["low"]  # unsure non-digits are turned away at a higher P(digit)
    assert reject_mask(mixed[2000:], unsure[2000:], rule["low"], rule["doubtful"]).mean() > 0.7
    lowest_digit = min(clear[:2000].min(), mixed[:2000].min())
    assert rule["alone"] <= lowest_digit and rule["alone"] == pytest.approx(lowest_digit, rel=1e-3)
    # Alone, no calibration digit is lost, yet unsure non-digits go at a higher level than `alone`.
    for p, flags, labels in scored.values():
        assert not reject_mask(
            p[labels == 1], flags[labels == 1], rule["alone"], rule["alone_doubtful"]
        ).any()
    assert rule["alone_doubtful"] > rule["alone"]
    # A page turns away no less than an image alone.
    assert rule["low"] >= rule["alone"] and rule["doubtful"] >= rule["alone_doubtful"]


def write_letters(path: Path) -> None:
    """Write a tiny letters file: a kept letter, a look-alike, an unverified one, a broken ibm one."""
    stroke = [[5, 5], [15, 25], [25, 5]]
    rows = [
        {"label": "h", "quality": "OK", "site": "apa", "file": "data/1c/apa/w1.dat", "strokes": [stroke]},
        {"label": "O", "quality": "OK", "site": "apa", "file": "data/1b/apa/w1.dat", "strokes": [stroke]},
        {"label": "k", "quality": "?", "site": "apa", "file": "data/1c/apa/w1.dat", "strokes": [stroke]},
        {
            "label": "E",
            "quality": "OK",
            "site": "ibm",
            "file": "data/1b/ibm/w2.dat",
            "strokes": [[[0, 0], [5, 0]]],
        },
    ]
    with gzip.open(path, "wt") as out:
        out.writelines(json.dumps(row) + "\n" for row in rows)


def test_letters_leave_out_look_alikes_unverified_and_broken_samples(tmp_path: Path) -> None:
    path = tmp_path / "letters.jsonl.gz"
    write_letters(path)
    kept = reject.load_letters(path, held_out=is_held_out_writer("data/1c/apa/w1.dat"))
    assert [label for label, _, _ in kept] == ["h"]
    assert kept[0][1][0][1].tolist() == [15.0, -25.0]  # y flipped to point down
    assert reject.load_letters(path, held_out=not is_held_out_writer("data/1c/apa/w1.dat")) == []


def test_scribbles_are_canvases_with_ink() -> None:
    canvas = reject.scribble(np.random.default_rng(3))
    assert canvas.shape == (280, 280, 4) and canvas[:, :, 3].max() > 200


def wide_is_no_digit(image: np.ndarray) -> float:
    """P(digit) from the ink's shape: low for ink wider than tall (a stand-in for a letter)."""
    ink = image > 0.3
    return 0.05 if ink.any(axis=0).sum() > ink.any(axis=1).sum() else 0.95


def page_with_a_word_line() -> bytes:
    """Draw three rows: two of upright bars (1s), between them wide blocks and one bar (a word)."""
    image = np.full((420, 600), 255, np.uint8)
    for top in (30, 310):
        for left in range(60, 540, 120):
            image[top : top + 80, left : left + 10] = 0
    for left in (60, 200, 340):
        image[170:250, left : left + 110] = 0
        image[185:235, left + 15 : left + 95] = 255  # a ring: a wide letter, not a solid blot
    image[170:250, 500:510] = 0
    return encode_array(image)


def test_a_page_line_mostly_of_non_digits_is_dropped_whole() -> None:
    rec = Recognizer(FakeRuntime(digitness=wide_is_no_digit), reject=RejectRule(0.3, 0.3, 0.3, words=0.3))
    reading = rec.read_page(page_with_a_word_line())
    assert [len(line.digits) for line in reading.lines] == [4, 4]
    assert all(p.box is not None and p.box.h >= 60 for p in reading.digits)


def test_a_word_whose_letters_each_pass_for_digits_goes_by_its_median() -> None:
    # Each letter (P(digit) 0.05) passes a rule that turns away only what is under 0.01, as a rule
    # that loses almost no digit does; the line's median tells it is words all the same.
    by_median = Recognizer(FakeRuntime(digitness=wide_is_no_digit), reject=RejectRule(0.01, 0.01, 0.01, 0.3))
    assert [len(line.digits) for line in by_median.read_page(page_with_a_word_line()).lines] == [4, 4]
    one_by_one = Recognizer(FakeRuntime(digitness=wide_is_no_digit), reject=RejectRule(0.01, 0.01, 0.01))
    lines = one_by_one.read_page(page_with_a_word_line()).lines
    # Judged one by one, the word passes for digits (its wide letters even cut into narrow ones).
    assert len(lines) == 3 and [len(lines[0].digits), len(lines[2].digits)] == [4, 4]


def test_a_line_alone_in_its_image_is_never_dropped_as_words() -> None:
    rule = RejectRule(0.01, 0.01, 0.01, words=0.3)
    image = np.full((140, 600), 255, np.uint8)
    for left in range(60, 540, 120):
        image[30:110, left : left + 10] = 0
    reading = Recognizer(FakeRuntime(digitness=lambda _: 0.05), reject=rule).read(encode_array(image))
    # Crowded digits can read as no digit to the head; a lone line is what the user sent to be read.
    assert len(reading.digits) == 4


@pytest.mark.slow
def test_the_head_trains_from_saved_renders_and_leaves_the_digit_answers_as_they_were(
    tmp_path: Path, mnist_dir: Path
) -> None:
    from mnist_bot.data import load_mnist
    from mnist_bot.runtime import LiteRtRuntime
    from mnist_bot.training import train_reject

    handwriting = Path(__file__).resolve().parents[2] / "shared" / "handwriting"
    few = {field: 10 for field in reject.RejectCounts.__dataclass_fields__}
    counts = reject.RejectCounts(**few | {"number_photos": 3, "pages": 1})
    data = reject.build_reject_data(load_mnist(mnist_dir).train, handwriting, counts, seed=3)
    sets = reject.calibration_inputs(handwriting, 20, seed=4)
    # Photos and scribbles are also cut as read() cuts a page, and 1s with a flag are digits.
    assert {"blank photos read", "letter photos read", "scribbles read", "flagged ones"} <= set(data.names)
    reject.save_renders(tmp_path / "renders.npz", data, sets)
    saved, saved_sets = reject.load_renders(tmp_path / "renders.npz")
    assert saved.names == data.names and np.array_equal(saved.x, data.x) and np.array_equal(saved.y, data.y)
    assert all(np.array_equal(saved_sets[name][0], xy[0]) for name, xy in sets.items())
    shipped = Path(__file__).resolve().parents[1] / "models" / "cnn.keras"
    result = train_reject.train_reject(
        saved, train_reject.Calibration(saved_sets), shipped, tmp_path / "out", epochs=1
    )
    x = data.x[:40].astype(np.float32) / 255
    probabilities, p_digit = LiteRtRuntime(result.tflite_path).predict_with_digitness(x)
    before = LiteRtRuntime(shipped.with_suffix(".tflite")).predict(x)
    # The same digit answers: each converted graph may order its float sums differently (LiteRT
    # versions differ in the last bits), so equal up to rounding, and the same digit read.
    np.testing.assert_allclose(probabilities, before, rtol=1e-4, atol=1e-7)
    assert np.array_equal(probabilities.argmax(axis=1), before.argmax(axis=1))
    assert p_digit is not None and p_digit.shape == (40,)
    assert result.metadata["reject"]["parameters"] > 32 * 128  # it reads the conv stage too


def reading(digit: int, confidence: float, p_digit: float) -> Prediction:
    """A prediction of `digit` at `confidence` (the rest spread evenly) with the given P(digit)."""
    rest = (1 - confidence) / 9
    probabilities = tuple(confidence if d == digit else rest for d in range(10))
    unsure = confidence < 0.8
    return Prediction(digit, confidence, probabilities, unsure, np.zeros((28, 28)), digit_probability=p_digit)


def test_touching_digits_no_digit_whole_are_read_as_their_cut_into_digits() -> None:
    from mnist_bot.recognizer import LineReadings, settle

    rule = RejectRule(low=0.01, doubtful=0.1, alone=0.01, alone_doubtful=0.1)

    def is_digit(p: Prediction) -> bool:
        return not rule.rejects(p, on_page=False)

    pair = reading(8, 0.7, 1e-4)  # two touching digits read whole: no digit, and a guess
    cut = (reading(3, 0.99, 0.6), reading(5, 0.97, 0.8))
    # The cut reads less surely than the whole with the lone margin (0.96 against 2 x 0.7), yet wins.
    assert [p.digit for p in settle(LineReadings([pair], {}, {0: [cut]}, None), is_digit=is_digit)] == [3, 5]
    # A sure reading whole (a 1 whose flag crosses its stem; flag and stem read as two 1s) is cut
    # only by the lone margin, as any group: no digit whole, it is no digit.
    odd_one = reading(1, 0.99, 1e-4)
    flag_and_stem = (reading(1, 0.999, 0.5), reading(1, 0.998, 0.5))  # surer than the whole, not twice
    assert (
        settle(
            LineReadings([odd_one], {}, {0: [flag_and_stem]}, None),
            lambda d: [p for p in d if is_digit(p)],
            is_digit,
        )
        == []
    )
    # A cut with a piece that is no digit either is no reading of what is no digit.
    weak = (reading(1, 0.6, 0.001), reading(1, 0.99, 0.9))
    assert (
        settle(LineReadings([pair], {}, {0: [weak]}, None), lambda d: [p for p in d if is_digit(p)], is_digit)
        == []
    )


def boxed(digit: int, confidence: float, p_digit: float, height: int) -> Prediction:
    """`reading(...)` with a box `height` px tall."""
    return replace(reading(digit, confidence, p_digit), box=Box(0, 0, height // 2, height))


def test_a_lone_lines_sure_digits_vouch_for_a_sure_cut_out_as_tall_as_they_are() -> None:
    peers = [boxed(7, 0.99, 0.9, 100), boxed(5, 0.99, 0.95, 96), boxed(3, 0.98, 0.9, 104)]
    # A bold 2 the head finds odd (P(digit) under the alone level), read surely and as tall.
    assert vouched_for(boxed(2, 0.88, 1.9e-4, 98), peers, line_length=4)
    assert not vouched_for(boxed(6, 0.46, 1.9e-4, 98), peers, line_length=4)  # a guess
    assert not vouched_for(boxed(1, 0.99, 1e-4, 40), peers, line_length=4)  # a short mark
    assert not vouched_for(boxed(2, 0.88, 1.9e-4, 98), peers[:1], line_length=2)  # one peer is no line
    assert not vouched_for(boxed(2, 0.88, 1.9e-4, 98), peers[:2], line_length=6)  # a word with two digits


def test_alone_a_sure_cut_out_among_sure_digits_is_kept_and_on_a_page_it_is_judged_alone() -> None:
    rule = RejectRule(low=0.01, doubtful=0.01, alone=0.01)
    rec = Recognizer(FakeRuntime(), reject=rule)
    line = [boxed(7, 0.99, 0.9, 100), boxed(2, 0.9, 0.001, 98), boxed(5, 0.99, 0.9, 100)]
    assert [p.digit for p in rec._digits_of_line(line, on_page=False)] == [7, 2, 5]
    assert [p.digit for p in rec._digits_of_line(line, on_page=True)] == [7, 5]

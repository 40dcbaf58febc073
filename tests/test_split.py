"""Touching digits: cut candidates for wide groups, and the classifier choosing between readings."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_bot import Prediction, Recognizer, layout
from mnist_bot.blobs import Component
from mnist_bot.recognizer import LineReadings, best_cut, settle, settle_line
from mnist_bot.split import cheapest_path, cut_pieces, split_candidates
from mnist_bot.training import synthetic as syn


def guess(digit: int, confidence: float) -> Prediction:
    """Return a Prediction of `digit` with `confidence`, the rest spread evenly."""
    probabilities = np.full(10, (1 - confidence) / 9)
    probabilities[digit] = confidence
    return Prediction(
        digit, confidence, tuple(probabilities), confidence < 0.9, np.zeros((28, 28), np.float32)
    )


def two_rings_bridged() -> np.ndarray:
    """Return a uint8 0/1 mask of two rings side by side joined by a bridge 2 px tall."""
    mask = np.zeros((40, 80), np.uint8)
    mask[2:38, 2:36] = 1
    mask[6:34, 6:32] = 0
    mask[2:38, 44:78] = 1
    mask[6:34, 48:74] = 0
    mask[19:21, 36:44] = 1
    return mask


def test_the_cheapest_path_slips_between_the_rings_and_crosses_only_the_bridge() -> None:
    mask = two_rings_bridged()
    path = cheapest_path(mask, 20, 60)
    assert path.shape == (40,)
    assert np.all((path >= 32) & (path < 48))  # between the rings, never through one
    assert int(mask[np.arange(40), path].sum()) == 2  # two pixels: where the bridge meets a ring


def test_cut_pieces_share_out_the_ink_left_to_right() -> None:
    mask = two_rings_bridged()
    left, right = cut_pieces(mask, 2)
    assert not np.any(left & right)
    assert left[:, 36:].sum() == 0 and right[:, :32].sum() == 0  # the bridge goes with one ring
    assert left.sum() + right.sum() == mask.sum() - 2  # only the path's two ink pixels go
    assert left[:, :32].sum() == mask[:, :32].sum() and right[:, 44:].sum() == mask[:, 44:].sum()


def test_only_a_group_wider_than_its_line_is_cut_and_its_pieces_map_to_input_pixels() -> None:
    labels = np.zeros((60, 120), np.int32)
    labels[10:50, 20:100] = np.where(two_rings_bridged() > 0, 7, 0)
    group = [Component(7, 20, 10, 80, 40, int((labels == 7).sum()))]
    assert split_candidates(labels, group, height=90, scale=0.5) == []  # narrower than its line is tall
    ways = split_candidates(labels, group, height=40, scale=0.5, origin=(300, 200))
    assert ways and all(len(way) in (2, 3) for way in ways)
    left, right = next(way for way in ways if len(way) == 2)
    # Working px / 0.5 + the origin: the left ring at x 22-55, y 12-47 working px.
    assert (left.box.x, left.box.y, left.box.h) == (344, 224, 72)
    assert left.box.x + left.box.w <= right.box.x and right.box.x + right.box.w <= 300 + 200
    assert left.input28.shape == (28, 28) and left.input28.max() == pytest.approx(1.0)


def test_two_sure_pieces_beat_a_guessed_whole_and_two_guesses_lose_to_a_sure_whole() -> None:
    assert best_cut(guess(8, 0.6), [(guess(3, 0.99), guess(6, 0.98))]) is not None
    assert best_cut(guess(0, 0.99), [(guess(1, 0.8), guess(1, 0.7))]) is None
    chosen = best_cut(guess(8, 0.5), [(guess(1, 0.6), guess(7, 0.6)), (guess(3, 0.99), guess(6, 0.99))])
    assert chosen is not None and [p.digit for p in chosen] == [3, 6]


def judged(digit: int, confidence: float, p_digit: float) -> Prediction:
    """Return `guess(digit, confidence)` with the reject head's P(digit)."""
    return replace(guess(digit, confidence), digit_probability=p_digit)


def test_in_a_line_a_sure_digit_stays_whole_when_its_pieces_are_no_digits_to_the_head() -> None:
    # A wide 0 cut in two reads as a 6 and a 3 surer than the 0, but neither piece is a digit to the head.
    zero, pieces = judged(0, 0.97, 0.99), (judged(6, 0.995, 0.04), judged(3, 1.0, 0.5))
    readings = LineReadings([judged(4, 1.0, 1.0), zero], {}, {1: [pieces]}, None)
    assert [p.digit for p in settle(readings)] == [4, 0]
    # Two touching digits: the group is no digit to the head, and its pieces are.
    pair, apart = judged(8, 0.99, 1e-6), (judged(3, 0.99, 0.9), judged(6, 0.98, 0.9))
    readings = LineReadings([judged(4, 1.0, 1.0), pair], {}, {1: [apart]}, None)
    assert [p.digit for p in settle(readings)] == [4, 3, 6]


def test_a_lone_group_is_cut_by_confidence_alone() -> None:
    # A Swiss 1 whose flag is as long as its stem: the head doubts the whole, not the two strokes.
    swiss_one, strokes = judged(7, 0.93, 1e-4), (judged(1, 0.99, 0.9), judged(1, 0.99, 0.9))
    assert [p.digit for p in settle(LineReadings([swiss_one], {}, {0: [strokes]}, None))] == [7]


def test_a_cut_group_is_read_as_its_pieces_and_is_never_joined() -> None:
    singles = [guess(4, 0.99), guess(8, 0.5), guess(1, 0.5)]
    cuts = {1: (guess(3, 0.99), guess(6, 0.99))}
    joined = {1: guess(9, 0.99)}  # would win over 8 and 1, but 8 is two digits
    assert [p.digit for p in settle_line(singles, joined, cuts)] == [4, 3, 6, 1]
    assert [p.digit for p in settle_line(singles, joined, {})] == [4, 9]


def touching_pair(
    mnist, first: int, second: int, seed: int, pad: int = 40, third: int | None = None
) -> np.ndarray:
    """Return a grey photo-like image of two MNIST test digits whose strokes touch, and a `third` apart.

    A lone pair must read twice as likely cut as whole (a wide single digit is likelier); beside
    another digit, a pair is one group of a number's line and is cut at the plain margin.
    """
    rng = np.random.default_rng(seed)
    strip = np.clip(
        syn.touching_mask([mnist.test.images[first], mnist.test.images[second]], (300, 400), rng), 0, 1
    )
    if third is not None:
        side = strip.shape[0]
        alone = cv2.resize(mnist.test.images[third].astype(np.float32) / 255, (side, side))
        strip = np.hstack([strip, np.zeros((side, side // 3), np.float32), alone])
    ink = np.pad(strip, pad)
    return (235 - 200 * ink).astype(np.uint8)


def pairs(mnist, count: int) -> list[tuple[int, int, int]]:
    """Pick `count` pairs of MNIST test digits and a seed for each."""
    rng = np.random.default_rng(16)
    return [(int(a), int(b), i) for i, (a, b) in enumerate(rng.choice(len(mnist.test.labels), (count, 2)))]


@pytest.mark.slow
def test_two_touching_mnist_test_digits_read_as_two_digits(recognizer: Recognizer, mnist) -> None:
    labels = mnist.test.labels
    right = 0
    for first, second, seed in pairs(mnist, 40):
        third = (first + second) % len(labels)
        reading = recognizer.read(touching_pair(mnist, first, second, seed, third=third))
        right += reading.text == f"{labels[first]}{labels[second]}{labels[third]}"
    assert right >= 10


@pytest.mark.slow
def test_the_pieces_of_a_cut_pair_are_boxed_in_the_input_pixels(recognizer: Recognizer, mnist) -> None:
    labels = mnist.test.labels
    first, second = int(np.flatnonzero(labels == 3)[0]), int(np.flatnonzero(labels == 6)[0])
    third = int(np.flatnonzero(labels == 7)[0])
    pair = touching_pair(mnist, first, second, seed=0, pad=0)
    image = touching_pair(mnist, first, second, seed=0, pad=0, third=third)
    page = np.full((900, 1600), 235, np.uint8)
    page[500 : 500 + image.shape[0], 300 : 300 + image.shape[1]] = image
    reading = recognizer.read(page)
    assert len(reading.digits) == 3 and reading.text[0] == "3"  # the pair is cut in two (its 6 may read as 5)
    left, right = (p.box for p in reading.digits[:2])
    rows, cols = np.nonzero(pair < 135)
    assert abs(left.x - 300 - cols.min()) <= 3 and abs(right.x + right.w - 300 - cols.max()) <= 3
    assert all(abs(box.y - 500 - rows.min()) <= 0.15 * image.shape[0] for box in (left, right))
    assert left.x < right.x and left.x + left.w <= right.x + 0.5 * right.w


@pytest.mark.slow
def test_a_wide_zero_is_offered_a_cut_and_still_reads_as_one_zero(recognizer: Recognizer) -> None:
    image = Image.new("L", (600, 400), 245)
    ImageDraw.Draw(image).ellipse((140, 110, 460, 310), outline=20, width=16)  # 1.6 times wider than tall
    lines = layout.ink_layout(layout.page_ink(np.asarray(image))).lines
    assert lines[0].splits  # wide enough to be offered as touching digits
    reading = recognizer.read(image)
    assert reading.text == "0"

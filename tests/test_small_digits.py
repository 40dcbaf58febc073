"""A small digit in a big frame: read from a full-resolution crop, boxed in the input's pixels.

The frames are shrunk to the working size to locate ink; a digit 16-40 px tall in a 1000-4000 px
frame would be a few working pixels there, so it is read again from a crop at full resolution.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from mnist_bot import blobs, preprocess
from mnist_bot.data import Mnist
from mnist_bot.errors import EmptyImageError
from mnist_bot.ink import ink_is_dark
from mnist_bot.recognizer import Recognizer

# (digit height px, frame side px): every height against every frame size, 16-40 px in 1000-4000 px.
SIZES = [(16, 1000), (24, 2000), (32, 3000), (40, 4000), (20, 4000), (28, 1500), (36, 2500), (18, 3500)]


def digit_in_frame(
    digit28: np.ndarray, height: int, side: int, at: tuple[int, int]
) -> tuple[np.ndarray, blobs.Box]:
    """Draw an MNIST digit `height` px tall, dark on white, at `at` (x, y) in a side x side frame.

    Returns the uint8 (side, side) grey frame and the box of the drawn ink in its pixels.
    """
    rows, cols = np.nonzero(digit28 > 40)
    crop = digit28[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].astype(np.float32)
    width = max(1, round(crop.shape[1] * height / crop.shape[0]))
    ink = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
    frame = np.full((side, side), 255, np.float32)
    frame[at[1] : at[1] + height, at[0] : at[0] + width] -= ink
    frame = np.clip(frame, 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(frame < 128)
    return frame, blobs.Box(int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1)


def first_of_each_class(mnist: Mnist) -> list[int]:
    """Return the index of the first MNIST test digit of each class, 0 to 9."""
    return [int(np.flatnonzero(mnist.test.labels == d)[0]) for d in range(10)]


def assert_box_close(found: blobs.Box | None, truth: blobs.Box, slack: int = 3) -> None:
    """Check a box against the drawn ink's, in input pixels, within `slack` px on every side."""
    assert found is not None
    assert abs(found.x - truth.x) <= slack and abs(found.y - truth.y) <= slack
    assert abs(found.x + found.w - truth.x - truth.w) <= slack
    assert abs(found.y + found.h - truth.y - truth.h) <= slack


def place(side: int, height: int, rng: np.random.Generator) -> tuple[int, int]:
    """Pick a place for a digit anywhere in the frame, edges included."""
    return int(rng.integers(0, side - 2 * height)), int(rng.integers(0, side - height))


@pytest.mark.slow
def test_small_digits_in_big_frames_read_right_with_boxes_in_input_pixels(
    mnist: Mnist, recognizer: Recognizer
) -> None:
    rng = np.random.default_rng(17)
    for i, index in enumerate(first_of_each_class(mnist)):
        height, side = SIZES[i % len(SIZES)]
        frame, truth = digit_in_frame(mnist.test.images[index], height, side, place(side, height, rng))
        prediction = recognizer.predict(frame)
        assert prediction.digit == mnist.test.labels[index], (index, height, side)
        assert_box_close(prediction.box, truth)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_small_digit_in_a_big_file_reads_right(mnist: Mnist, recognizer: Recognizer, fmt: str) -> None:
    # A big JPEG decodes shrunk (draft); the crop must come from the full-size decode.
    frame, truth = digit_in_frame(mnist.test.images[0], 24, 4000, (3100, 500))  # a 7
    buffer = io.BytesIO()
    Image.fromarray(frame).convert("RGB").save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    prediction = recognizer.predict(buffer.getvalue())
    assert prediction.digit == 7
    assert_box_close(prediction.box, truth)


def test_the_zoomed_crop_is_a_stage_and_maps_boxes_back_to_input_pixels() -> None:
    frame = np.full((2400, 3000), 250, np.uint8)
    cv2.line(frame, (2000, 1500), (2000, 1530), 20, 3)  # a 1 of 31 px: 7 working px tall
    assert stage_names(frame) == ["ink", "zoom", "mask"]
    found = blobs.find_ink(frame)
    assert found.origin != (0, 0) and found.scale > 1  # read from an enlarged crop
    box = preprocess.prepare_found_digit(found).box
    assert abs(box.x - 1999) <= 2 and abs(box.y - 1499) <= 2 and 29 <= box.h <= 34


def stage_names(image: np.ndarray) -> list[str]:
    """Return the names of the stages find_ink shows for an image."""
    names: list[str] = []
    blobs.find_ink(image, lambda name, picture, numbers: names.append(name))
    return names


def test_a_frame_at_working_size_or_a_big_digit_is_not_zoomed() -> None:
    for frame in (np.full((480, 640), 250, np.uint8), np.full((2000, 2000), 250, np.uint8)):
        side = min(frame.shape)
        cv2.line(frame, (side // 2, side // 4), (side // 2, 3 * side // 4), 20, max(3, side // 60))
        assert stage_names(frame) == ["ink", "mask"]


def grainy_paper(side: int, rng: np.random.Generator) -> np.ndarray:
    """Return blank paper with pixel grain and a slow lighting gradient: uint8 (side, side)."""
    gradient = np.linspace(-12, 12, side, dtype=np.float32)[None, :]
    grain = rng.normal(0, 4, (side, side)).astype(np.float32)
    return np.clip(225 + gradient + grain, 0, 255).astype(np.uint8)


def test_blank_big_paper_with_grain_and_specks_has_no_digit() -> None:
    rng = np.random.default_rng(3)
    paper = grainy_paper(2500, rng)
    for _ in range(12):  # dust: dark specks of 2-6 px scattered over the sheet
        x, y, r = int(rng.integers(50, 2450)), int(rng.integers(50, 2450)), int(rng.integers(1, 4))
        cv2.circle(paper, (x, y), r, int(rng.integers(60, 140)), -1)
    with pytest.raises(EmptyImageError):
        preprocess.prepare_digit(paper)
    with pytest.raises(EmptyImageError):
        preprocess.prepare_digit(grainy_paper(3000, rng))


@pytest.mark.parametrize("radius", [3, 12])
def test_a_lone_speck_or_blot_in_a_big_frame_is_no_digit(radius: int) -> None:
    # 3: too small to be a digit at any resolution; 12: a blot 25 px wide, zoomed, yet a blot.
    frame = np.full((2500, 2500), 245, np.uint8)
    cv2.circle(frame, (1300, 900), radius, 30, -1)
    with pytest.raises(EmptyImageError):
        preprocess.prepare_digit(frame)


def test_polarity_of_a_digit_under_a_thousandth_of_the_frame() -> None:
    frame = np.full((640, 640), 255, np.uint8)
    cv2.line(frame, (300, 300), (300, 310), 120, 1)  # 11 px of ink in 409,600
    assert ink_is_dark(frame)
    assert not ink_is_dark(cv2.bitwise_not(frame))

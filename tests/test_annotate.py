"""The annotated picture of a page reading: boxes and readings drawn on the upright input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mnist_bot import NumberReading, PageReading, Prediction, Recognizer
from mnist_bot.annotate import SURE_COLOUR, UNSURE_COLOUR, annotate
from mnist_bot.blobs import Box
from mnist_bot.data import Mnist
from tests.conftest import encode
from tests.test_layout import clear_digits, page_of


def digit(value: int, box: Box, unsure: bool = False) -> Prediction:
    """Build a prediction by hand."""
    probabilities = tuple(0.9 if d == value else 0.1 / 9 for d in range(10))
    return Prediction(value, 0.9, probabilities, unsure, np.zeros((28, 28), np.float32), box)


def page(*lines: list[Prediction]) -> PageReading:
    """Build a page from lines of predictions."""
    return PageReading([NumberReading("".join(str(p.digit) for p in line), line) for line in lines])


def colour_pixels(image: Image.Image, colour: tuple[int, int, int]) -> np.ndarray:
    """Return a mask of the pixels of exactly `colour`."""
    return np.all(np.asarray(image) == colour, axis=-1)


def test_boxes_are_drawn_where_the_digits_are_in_the_two_colours() -> None:
    paper = Image.new("L", (400, 300), 255)
    reading = page([digit(3, Box(40, 60, 40, 60)), digit(1, Box(120, 60, 30, 60), unsure=True)])
    drawn = annotate(paper, reading)
    assert drawn.size == (400, 300) and drawn.mode == "RGB"
    sure, unsure = colour_pixels(drawn, SURE_COLOUR), colour_pixels(drawn, UNSURE_COLOUR)
    assert sure[60:120, 40].all() and not sure[60:120, 120].any()  # left edge of the first box
    assert unsure[60:120, 120].all() and not unsure[:, :100].any()
    assert not sure[200:].any() and not unsure[200:].any()  # nothing far from the digits
    assert sure[:60, 40:80].any()  # the label tag sits above its box


def test_line_width_and_labels_grow_with_the_digits() -> None:
    small = annotate(Image.new("L", (400, 300), 255), page([digit(7, Box(40, 100, 30, 40))]))
    big = annotate(Image.new("L", (4000, 3000), 255), page([digit(7, Box(400, 1000, 300, 400))]), 4000)
    small_ink = colour_pixels(small, SURE_COLOUR).sum()
    big_ink = colour_pixels(big, SURE_COLOUR).sum()
    assert big_ink > 50 * small_ink  # ~100x the area: the drawing scales, not a hairline on a scan
    assert colour_pixels(small, SURE_COLOUR)[100:140, 40:44].sum() >= 2 * 30  # >= 2 px lines on a thumbnail


def test_huge_images_are_drawn_smaller_with_the_boxes_scaled() -> None:
    scan = Image.new("L", (6000, 4000), 255)
    drawn = annotate(scan, page([digit(5, Box(3000, 2000, 300, 450))]))
    assert max(drawn.size) == 2048 and drawn.size[1] == round(4000 * 2048 / 6000)
    scale = 2048 / 6000
    x, y = round(3000 * scale), round(2000 * scale)
    assert colour_pixels(drawn, SURE_COLOUR)[y + 10 : y + 100, x].all()


def test_exif_turned_photos_are_drawn_upright() -> None:
    image = Image.new("L", (300, 200), 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: shown turned 90 degrees clockwise
    data = encode(image, "JPEG", exif=exif.tobytes())
    drawn = annotate(data, page([digit(4, Box(50, 100, 40, 60))]))
    assert drawn.size == (200, 300)  # upright, as the recognizer's boxes are


def test_a_page_without_boxes_is_the_plain_picture() -> None:
    paper = Image.new("L", (100, 100), 200)
    drawn = annotate(paper, page([Prediction(1, 0.9, (0.1,) * 10, False, np.zeros((28, 28)))]))
    assert (np.asarray(drawn) == 200).all()


@pytest.mark.slow
def test_a_real_page_is_annotated_on_every_digit(recognizer: Recognizer, mnist: Mnist) -> None:
    data = encode(Image.fromarray(page_of(["3141", "59265"], clear_digits(mnist))), "JPEG")
    reading = recognizer.read(data)
    drawn = annotate(data, reading)
    ink = colour_pixels(drawn, SURE_COLOUR) | colour_pixels(drawn, UNSURE_COLOUR)
    for prediction in reading.digits:
        assert prediction.box is not None
        box = prediction.box
        assert ink[box.y : box.y + box.h, box.x].mean() > 0.9  # every box's left edge is drawn


def test_a_transparent_canvas_is_drawn_on_white_paper() -> None:
    rgba = np.zeros((280, 280, 4), np.uint8)  # a drawing pad: black ink, coverage in alpha
    rgba[100:180, 130:150, 3] = 255
    drawn = np.asarray(annotate(rgba, page([digit(1, Box(130, 100, 20, 80))])))
    assert (drawn[10, 10] == 255).all() and (drawn[140, 140] == 0).all()

"""The page layout stage: every digit of an image, in lines, in reading order, read once."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from mnist_bot import PageReading, Recognizer, printed
from mnist_bot.blobs import Box
from mnist_bot.data import Mnist
from mnist_bot.layout import connected, unturned_box
from tests.conftest import encode

pytestmark = pytest.mark.slow

DIGIT_PX = 60  # digit height on the test pages


def clear_digits(mnist: Mnist) -> dict[int, list[np.ndarray]]:
    """Return MNIST test digits grouped by label, in test-set order."""
    out: dict[int, list[np.ndarray]] = {}
    for image, label in zip(mnist.test.images[:2000], mnist.test.labels[:2000], strict=True):
        out.setdefault(int(label), []).append(image)
    return out


def page_of(
    rows: list[str],
    pool: dict[int, list[np.ndarray]],
    slope_degrees: float = 0.0,
    gaps: list[int] | None = None,
    indent: list[int] | None = None,
) -> np.ndarray:
    """Draw rows of MNIST test digits, dark on light paper, as a uint8 grey page."""
    width = 120 + max(len(r) for r in rows) * 70 + max(indent or [0])
    page = np.full((160 + len(rows) * 130, width), 235, np.uint8)
    slope = np.tan(np.radians(slope_degrees))
    used: dict[int, int] = {}
    for r, row in enumerate(rows):
        x = 60 + (indent[r] if indent else 0)
        for ch in row:
            if ch == " ":
                x += 70
                continue
            digit = int(ch)
            sample = pool[digit][used.get(digit, 0) % len(pool[digit])]
            used[digit] = used.get(digit, 0) + 1
            big = cv2.resize(sample, (DIGIT_PX, DIGIT_PX), interpolation=cv2.INTER_LINEAR)
            y = round(80 + r * 130 + slope * x)
            window = page[y : y + DIGIT_PX, x : x + DIGIT_PX]
            ink = (235 - big.astype(np.int32) * 205 // 255).astype(np.uint8)
            np.minimum(window, ink, out=window)
            x += 70 + (gaps[r] if gaps else 0)
    return page


def read(recognizer: Recognizer, page: np.ndarray) -> PageReading:
    """Read a page as the front ends do, from PNG bytes."""
    return recognizer.read(encode(Image.fromarray(page)))


def test_rows_read_top_to_bottom_left_to_right(recognizer: Recognizer, mnist: Mnist) -> None:
    """Four rows of different lengths read as four lines, not columns squeezed into bars."""
    rows = ["3141", "59265", "358", "9793"]
    reading = read(recognizer, page_of(rows, clear_digits(mnist)))
    assert reading.text == "\n".join(rows)
    assert [len(line.digits) for line in reading.lines] == [4, 5, 3, 4]


def test_sloped_lines_are_followed(recognizer: Recognizer, mnist: Mnist) -> None:
    """Lines sloping a few degrees (a photo at a slant) still read line by line."""
    rows = ["012345", "678901"]
    assert read(recognizer, page_of(rows, clear_digits(mnist), slope_degrees=4)).text == "\n".join(rows)


def test_ragged_lines_and_wide_gaps_stay_one_line(recognizer: Recognizer, mnist: Mnist) -> None:
    """A grid's columns far apart and lines indented differently read row by row."""
    rows = ["0 1 2", "3 4 5", "6 7"]
    reading = read(recognizer, page_of(rows, clear_digits(mnist), indent=[0, 40, 10]))
    assert reading.text == "012\n345\n67"


def test_boxes_are_in_input_pixels_and_in_order(recognizer: Recognizer, mnist: Mnist) -> None:
    """Each digit's box covers where it was drawn, in the input's pixels, in reading order."""
    reading = read(recognizer, page_of(["12", "34"], clear_digits(mnist)))
    boxes = [p.box for p in reading.digits]
    assert all(box is not None for box in boxes)
    lefts = [box.x for box in boxes if box is not None]
    tops = [box.y for box in boxes if box is not None]
    assert lefts[0] < lefts[1] and lefts[2] < lefts[3]
    assert max(tops[:2]) < min(tops[2:])
    assert all(50 <= box.x <= 200 and 60 <= box.y <= 300 for box in boxes if box is not None)


def test_a_sideways_page_is_read_upright(recognizer: Recognizer, mnist: Mnist) -> None:
    """A page lying on its side (no EXIF to say so) is turned by the readings, boxes mapped back."""
    rows = ["2045", "3867"]
    page = page_of(rows, clear_digits(mnist))
    sideways = np.ascontiguousarray(np.rot90(page, -1))  # tops of the digits point right
    reading = read(recognizer, sideways)
    assert reading.rotation == 90
    assert reading.text == "\n".join(rows)
    box = reading.digits[0].box
    assert box is not None and box.x > sideways.shape[1] // 2  # the first line lies on the right


def test_one_digit_and_one_number_are_one_line(recognizer: Recognizer, mnist: Mnist) -> None:
    """A single digit and a single number are pages of one line."""
    pool = clear_digits(mnist)
    assert read(recognizer, page_of(["7"], pool)).text == "7"
    number = read(recognizer, page_of(["2048"], pool))
    assert number.text == "2048" and len(number.lines) == 1 and number.rotation == 0


def test_two_digits_one_above_the_other_are_two_lines(recognizer: Recognizer, mnist: Mnist) -> None:
    """A 5 over a 6 is two lines, not one tall digit: together they stand two digits tall."""
    assert read(recognizer, page_of(["5", "6"], clear_digits(mnist))).text == "5\n6"


def test_a_thin_digit_broken_in_pieces_reads_as_one_digit(recognizer: Recognizer, mnist: Mnist) -> None:
    """A thin pen's digit broken into pieces is one digit, not a page of its pieces."""
    page = page_of(["5"], clear_digits(mnist))

    for y in (80 + DIGIT_PX // 3, 80 + 2 * DIGIT_PX // 3):
        page[y - 2 : y + 2] = 235  # two cuts across the digit: three stacked pieces
    reading = read(recognizer, page)
    assert reading.text == "5" and len(reading.lines) == 1


def test_small_digits_of_a_small_page_read_at_a_finer_scale(recognizer: Recognizer, mnist: Mnist) -> None:
    """A small scan whose digits are about 21 px tall is read at a finer scale, where thin strokes hold."""
    rows = ["3141", "5926", "5358"]
    page = page_of(rows, clear_digits(mnist))
    small = cv2.resize(page, None, fx=0.35, fy=0.35, interpolation=cv2.INTER_AREA)
    assert read(recognizer, small).text == "\n".join(rows)


def test_a_long_number_written_small_on_a_big_sheet_keeps_every_digit(
    recognizer: Recognizer, mnist: Mnist
) -> None:
    """Digits about 3% of the sheet's side (some under the size a lone digit's speck test drops), or 2%."""
    row = page_of(["6806195241"], clear_digits(mnist))
    for scale in (0.75, 0.5):  # ink about 32 and 21 px tall
        sheet = np.full((1400, 1050), 235, np.uint8)
        small = cv2.resize(row, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        sheet[1000 : 1000 + small.shape[0], 150 : 150 + small.shape[1]] = small
        assert read(recognizer, sheet).text == "6806195241", scale


def test_dashes_between_digit_groups_are_not_digits(recognizer: Recognizer, mnist: Mnist) -> None:
    """A phone number's dashes are separators, not 1s or 7s, and split no digit."""
    page = page_of(["555 0123", "867 5309"], clear_digits(mnist))
    for row in range(2):
        y = 80 + row * 130 + DIGIT_PX // 2
        page[y - 2 : y + 3, 60 + 3 * 70 + 12 : 60 + 3 * 70 + 58] = 30
    assert read(recognizer, page).text == "5550123\n8675309"


def test_connected_groups() -> None:
    """Union-find groups the pairs linked directly or through others."""
    linked = np.zeros((5, 5), bool)
    for i, j in [(0, 2), (2, 4)]:
        linked[i, j] = linked[j, i] = True
    assert sorted(sorted(g) for g in connected(linked)) == [[0, 2, 4], [1], [3]]


@pytest.mark.parametrize("quarter", [1, 2, 3])
def test_unturned_box_inverts_numpy_rot90(quarter: int) -> None:
    """A box found in an image turned by np.rot90 maps back onto the same pixels."""
    image = np.zeros((40, 70), np.uint8)
    image[5:12, 20:35] = 1
    turned = np.rot90(image, quarter)
    ys, xs = np.nonzero(turned)
    box = Box(int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1)
    assert unturned_box(box, turned.shape, quarter) == Box(20, 5, 15, 7)


def boxed_form(
    pool: dict[int, list[np.ndarray]], rows: list[str], cell: int = 80, digit: int = 50
) -> np.ndarray:
    """Draw a printed form: a box per digit, each with a handwritten MNIST test digit inside."""
    page = np.full((100 + len(rows) * (cell + 20), 100 + max(len(r) for r in rows) * cell), 240, np.uint8)
    for r, row in enumerate(rows):
        top = 50 + r * (cell + 20)
        for c, ch in enumerate(row):
            left = 50 + c * cell
            cv2.rectangle(page, (left, top), (left + cell, top + cell), 40, 2)
            big = cv2.resize(pool[int(ch)][r + c], (digit, digit))
            offset = (cell - digit) // 2
            window = page[top + offset : top + offset + digit, left + offset : left + offset + digit]
            np.minimum(window, (240 - big.astype(np.int32) * 200 // 255).astype(np.uint8), out=window)
    return page


def test_a_form_reads_each_boxed_digit_once_and_no_box(recognizer: Recognizer, mnist: Mnist) -> None:
    """The printed boxes and grid of a form are no digits (no 1s, no 7s); each digit reads once."""
    rows = ["47082822", "60888411", "93950041"]
    assert read(recognizer, boxed_form(clear_digits(mnist), rows)).text == "\n".join(rows)


def test_a_cropped_cell_with_its_box_reads_as_its_digit(recognizer: Recognizer, mnist: Mnist) -> None:
    """One cell cut from a form, its printed box around the digit, reads as that one digit."""
    form = boxed_form(clear_digits(mnist), ["3"])
    cell = form[45:136, 45:136]  # the box and a little paper around it
    assert read(recognizer, cell).text == "3"


def touching_form(
    pool: dict[int, list[np.ndarray]], rows: list[str], digit: int = 50, pad: int = 12
) -> np.ndarray:
    """Draw a form whose every box is drawn around its digit's ink, its left side touching the stroke."""
    cell = digit + 2 * pad
    page = np.full(
        (100 + len(rows) * (cell + 20), 100 + max(len(r) for r in rows) * (cell + 20)), 240, np.uint8
    )
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            big = cv2.resize(pool[int(ch)][r + c], (digit, digit))
            top, left = 50 + r * (cell + 20), 50 + c * (cell + 20)
            window = page[top + pad : top + pad + digit, left + pad : left + pad + digit]
            np.minimum(window, (240 - big.astype(np.int32) * 200 // 255).astype(np.uint8), out=window)
            side = (
                left + pad + int(np.nonzero(big.max(axis=0) > 128)[0].min()) - 1
            )  # 2 px wide: it meets the ink
            cv2.rectangle(page, (side, top), (left + cell, top + cell), 40, 2)
    return page


def test_a_form_whose_digits_touch_their_boxes_reads_no_box(recognizer: Recognizer, mnist: Mnist) -> None:
    """A box its digit touches is one blob with it, enclosing none, and still a box: erased, no 0s, no 1s."""
    rows = ["47082", "60938", "23950"]  # before hollow rectangles were boxes: "000\n000"
    assert read(recognizer, touching_form(clear_digits(mnist), rows)).text == "\n".join(rows)


def test_a_hollow_rectangle_is_a_box_and_no_digit_is_one(mnist: Mnist) -> None:
    """A box's outline with a digit touching it is a hollow rectangle; no MNIST test digit is one."""
    box = np.zeros((80, 60), np.uint8)
    cv2.rectangle(box, (0, 0), (59, 79), 1, 2)
    box[20:60, 2:8] = 1  # a 1 pressed against its left side
    assert printed.is_hollow_rectangle(box)
    digits = [cv2.resize(image, None, fx=3, fy=3) > 100 for image in mnist.test.images[:2000]]
    assert not any(printed.is_hollow_rectangle(largest_blob(d)) for d in digits)


def largest_blob(mask: np.ndarray) -> np.ndarray:
    """Return the largest 8-connected blob of a boolean mask as a uint8 0/1 mask."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)


def dashed_form(
    pool: dict[int, list[np.ndarray]], rows: list[str], cell: int = 40, digit: int = 28
) -> np.ndarray:
    """Draw a form of thin, faint printed boxes whose sides fade into dashes, a digit in each box.

    Along each 1 px side, 2 px of every 7 are fainter: under the mask's
    threshold, the side breaks into dashes shorter than a digit, each of which would read as a 1.
    """
    page = boxed_form(pool, rows, cell, digit)
    page[page == 40] = 240  # boxed_form's own boxes go: these are drawn thinner and fainter
    along = np.arange(cell + 1)
    level = np.where(along % 7 < 5, 110, 175).astype(np.uint8)
    for r, row in enumerate(rows):
        top = 50 + r * (cell + 20)
        for c in range(len(row)):
            left = 50 + c * cell
            for y in (top, top + cell):
                np.minimum(page[y, left : left + cell + 1], level, out=page[y, left : left + cell + 1])
            for x in (left, left + cell):
                np.minimum(page[top : top + cell + 1, x], level, out=page[top : top + cell + 1, x])
    return page


def test_a_form_of_faint_boxes_broken_into_dashes_reads_no_dash(recognizer: Recognizer, mnist: Mnist) -> None:
    """A thin box side that the mask breaks into dashes is still one side, erased whole: no 1s."""
    rows = ["470828", "609358", "239504"]  # no 1 written: any 1 read is a piece of a box side
    assert read(recognizer, dashed_form(clear_digits(mnist), rows)).text == "\n".join(rows)


def grid_form(
    pool: dict[int, list[np.ndarray]], rows: list[str], cell: int = 80, digit: int = 50, touch: int = -1
) -> np.ndarray:
    """Draw a form whose rules span the page: level lines edge to edge, upright ones down each row.

    The digit of column `touch` is pushed against its box's left side, its ink over the line.
    """
    width = 100 + max(len(r) for r in rows) * cell
    page = np.full((100 + len(rows) * (cell + 20), width), 240, np.uint8)
    for r, row in enumerate(rows):
        top = 50 + r * (cell + 20)
        page[top : top + 2, :] = 40  # the form's rules run from edge to edge of the scan
        page[top + cell : top + cell + 2, :] = 40
        for c in range(len(row) + 1):
            page[top : top + cell, 50 + c * cell : 50 + c * cell + 2] = 40
        for c, ch in enumerate(row):
            big = cv2.resize(pool[int(ch)][r + c], (digit, digit))
            left, offset = 50 + c * cell, (cell - digit) // 2
            cols = np.nonzero(big.max(axis=0) > 64)[0]
            shift = -(offset + int(cols.min())) + 1 if c == touch else 0  # its ink starts on the side
            x = left + offset + shift
            window = page[top + offset : top + offset + digit, x : x + digit]
            np.minimum(window, (240 - big.astype(np.int32) * 200 // 255).astype(np.uint8), out=window)
    return page


def test_a_form_whose_rules_span_the_page_reads_no_box_side_as_a_1(
    recognizer: Recognizer, mnist: Mnist
) -> None:
    """Rules edge to edge are erased with the boxes' sides between them, sized by the digits: no 1s."""
    rows = ["4708", "6093", "2585"]  # no 1 written: any 1 read is a box side
    reading = read(recognizer, grid_form(clear_digits(mnist), rows))
    assert reading.text == "\n".join(rows)


def stroke_page(strokes: list[tuple[tuple[int, int], tuple[int, int]]], lines: list[np.s_]) -> np.ndarray:
    """Draw pen strokes (4 px wide) and printed lines on a 300x300 page; the strokes make one digit."""
    page = np.full((300, 300), 240, np.uint8)
    for where in lines:
        page[where] = 40
    for start, end in strokes:
        cv2.line(page, start, end, 20, 5, cv2.LINE_AA)
    return page


SEVEN = [((120, 120), (180, 120)), ((180, 120), (140, 200))]
ONE = [((150, 100), (150, 180))]


def test_a_7_on_a_ruled_line_keeps_its_bar(recognizer: Recognizer) -> None:
    """A 7 whose bar lies on a ruled line keeps its bar: the line goes, the stroke on it stays."""
    page = stroke_page(SEVEN, [np.s_[121:123, :], np.s_[230:232, :]])
    reading = read(recognizer, page)
    assert reading.text == "7"
    box = reading.digits[0].box
    assert box is not None and box.y <= 120 and box.w >= 50  # the bar, above the line, is part of it


def test_a_stroke_crossing_a_ruled_line_stays_one_stroke() -> None:
    """Where a stroke crosses a printed line, the line's pixels between its two sides stay."""
    mask = np.zeros((100, 300), np.uint8)
    mask[50:52, :] = 1  # a ruled line
    mask[20:90, 140:144] = 1  # an upright stroke across it
    kept = printed.without_lines(mask, 120)
    assert kept[:, :100].sum() == 0 and kept[:, 200:].sum() == 0  # the line is gone
    assert kept[20:90, 140:144].all()  # the stroke is whole


def test_a_1_touching_a_box_side_keeps_its_stroke(recognizer: Recognizer, mnist: Mnist) -> None:
    """A 1 written against its box's side is read as a 1 of its own height, and the side is not."""
    pool = clear_digits(mnist)
    reading = read(recognizer, grid_form(pool, ["4170"], touch=1))
    assert reading.text == "4170"
    one = reading.digits[1].box
    assert one is not None and one.h <= 60  # the stroke (about 45 px), not the 80 px side


def test_a_tall_1_hanging_from_its_box_top_is_no_box_side() -> None:
    """A box's sides run from its top to its bottom; a 1 that the faint mask joined to the top ends inside."""
    box = np.zeros((42, 47), np.uint8)
    box[:3, :] = box[-3:, :] = 1  # top and bottom sides
    box[:, :3] = box[:, -3:] = 1  # left and right sides
    box[3:35, 22:28] = 1  # a 1 hanging from the top side: 35 px with it, taller than 1.2 digit sizes
    kept = printed.frame_without_sides(box, length=1.2 * 24.5)
    assert kept[8:35, 22:28].all()  # the 1 stays
    assert kept[10:30, :3].sum() == 0 and kept[10:30, -3:].sum() == 0  # the sides go


def test_the_slanted_dividers_of_a_row_of_cells_are_box_sides() -> None:
    """A row of cells photographed in perspective: each divider leans a little, and still goes."""
    row = np.zeros((60, 160), np.uint8)
    row[:3, :] = row[-3:, :] = 1
    row[:, :3] = row[:, -3:] = 1
    for left in (50, 105):  # two dividers, each drifting 5 px from the top to the bottom
        for y in range(3, 57):
            row[y, left + (y - 3) * 5 // 54 : left + (y - 3) * 5 // 54 + 3] = 1
    kept = printed.frame_without_sides(row, length=1.2 * 30)
    assert kept[8:52, 45:65].sum() == 0 and kept[8:52, 100:120].sum() == 0

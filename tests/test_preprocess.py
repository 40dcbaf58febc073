"""Preprocessing: each step on its own, the properties of the whole, and bad input."""

from __future__ import annotations

import contextlib
import gzip
import io
import zipfile

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from mnist_bot import blobs, decode, preprocess, render
from mnist_bot.data import Mnist
from mnist_bot.errors import EmptyImageError, InvalidImageError, RecognizerError
from mnist_bot.ink import blobs_with_stats, flatten_background, ink_image, ink_is_dark, is_hairline, pen_width
from mnist_bot.training import synthetic as syn
from tests.conftest import draw_digit, encode


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """Return (row, column) of the intensity centre of mass."""
    rows, cols = np.indices(image.shape)
    return float((rows * image).sum() / image.sum()), float((cols * image).sum() / image.sum())


# --- single steps ------------------------------------------------------------------------------


def test_ink_is_dark_detects_polarity() -> None:
    dark_on_light = np.asarray(draw_digit(7, ink=20, paper=230))
    assert ink_is_dark(dark_on_light)
    assert not ink_is_dark(255 - dark_on_light)


def shadowed_photo_with_a_thin_one() -> np.ndarray:
    """Return a grey (480, 640) page: a shadow over all but a lit strip, and a thin dark 1 in the shadow."""
    page = np.full((480, 640), 140, np.float32)
    page[:, :110] = 230  # the lit strip beside the shadow of the hand holding the phone
    page = cv2.GaussianBlur(page, (0, 0), 10)
    page[200:280, 400:404] = 105  # a faint pencil 1: nearer the shadow than the lit strip is
    return page.astype(np.uint8)


def test_polarity_survives_a_shadow_over_most_of_the_photo() -> None:
    assert ink_is_dark(shadowed_photo_with_a_thin_one())
    assert not ink_is_dark(cv2.bitwise_not(shadowed_photo_with_a_thin_one()))


@pytest.mark.parametrize("width", [8, 60, 180])
@pytest.mark.parametrize("dark", [True, False])
def test_polarity_of_a_large_image_with_any_pen_width(width: int, dark: bool) -> None:
    page = np.full((480, 640), 225 if dark else 25, np.uint8)
    page[40:440, 320 - width // 2 : 320 + width // 2] = 20 if dark else 235  # up to a frame-filling marker
    assert ink_is_dark(page) == dark


def shadow_with_a_lit_corner() -> np.ndarray:
    """Draw a thin dark 1 in a shadow that covers all of a photo but one softly lit corner."""
    page = np.full((480, 640), 95, np.float32)
    lit = np.zeros((480, 640), np.float32)
    cv2.fillPoly(lit, [np.array([[0, 0], [260, 0], [0, 200]], np.int32)], 1.0)
    page += cv2.GaussianBlur(lit, (0, 0), 12) * 140
    cv2.line(page, (400, 240), (400, 330), 35, 3)
    cv2.line(page, (400, 240), (385, 255), 35, 3)
    return np.clip(page, 0, 255).astype(np.uint8)


def test_a_lit_corner_in_a_shadow_does_not_turn_the_paper_into_ink() -> None:
    page = shadow_with_a_lit_corner()
    assert not ink_is_dark(page)  # the histogram and the shading both point the wrong way...
    ink = ink_image(page).ink
    assert ink[280, 400] > 100 and ink[20, 20] < 30  # ...but only dark ink has a pen's steep edges


def test_chalk_on_a_dark_board_stays_light_ink() -> None:
    board = np.full((480, 640), 45, np.float32) + np.linspace(0, 25, 640)[None, :]
    cv2.line(board, (300, 150), (300, 330), 215, 6)
    cv2.line(board, (300, 150), (270, 190), 215, 6)
    board += np.random.default_rng(0).normal(0, 3, board.shape)
    ink = ink_image(np.clip(board, 0, 255).astype(np.uint8)).ink
    assert ink[250, 300] > 100 and ink[100, 100] < 30


def test_flatten_background_removes_a_lighting_gradient() -> None:
    gradient = np.tile(np.linspace(0, 120, 300, dtype=np.float32), (300, 1)).astype(np.uint8)
    stroke = gradient.copy()
    stroke[100:200, 148:154] = 250
    flat = flatten_background(stroke)
    assert flat[:, :100].max() < 30  # the ramp is gone
    assert flat[150, 150] > 100  # the stroke stays


def shadowed_page(soft: float) -> np.ndarray:
    """Return ink-bright (300, 400) uint8: a pen stroke, and a shadow band whose edges blur over `soft` px."""
    ink = np.full((300, 400), 10, np.float32)
    ink[:, 150:230] = 90  # a shadow band 80 px wide, narrower than the background opening
    ink = cv2.GaussianBlur(ink, (0, 0), soft) if soft else ink
    ink[60:240, 300:308] = 230  # a "1" well away from the band
    return ink.astype(np.uint8)


def test_flatten_background_keeps_a_sharp_shadow_edge_out_of_the_ink() -> None:
    ink = np.full((300, 400), 10, np.uint8)
    ink[:, 200:] = 120  # the right half lies in a hard shadow
    ink[100:200, 100:106] = 250  # a stroke in the light
    flat = flatten_background(ink)
    assert flat[:, 190:215].max() < 30  # no false stroke along the shadow's edge
    assert flat[150, 103] > 100


def test_flatten_background_removes_a_thick_pen_filling_the_frame() -> None:
    ink = np.full((240, 240), 10, np.uint8)
    ink[30:210, 90:150] = 240  # a 60 px wide bar: wider than a fifth of the image
    flat = flatten_background(ink)
    assert flat[120, 95:145].min() > 150  # the middle of the stroke is ink, not background


def test_soft_shadow_blobs_are_dropped_and_pen_strokes_kept() -> None:
    ink = flatten_background(shadowed_page(soft=12))
    labels, found = blobs.components(blobs.ink_mask(ink))
    kept = blobs.drop_soft(labels, found, ink)
    assert [(c.x, c.w) for c in kept] == [(300, 8)]


def test_edge_sharpness_rates_a_pen_stroke_above_a_shadow_edge() -> None:
    ink = shadowed_page(soft=12)
    labels, found = blobs.components((ink > 50).astype(np.uint8))
    sharpness = blobs.edge_sharpness(labels, found, ink)
    stroke = next(c for c in found if c.x >= 290)
    band = next(c for c in found if c.x < 290)
    assert sharpness[stroke.label] > 3 * sharpness[band.label]


def test_ink_mask_does_not_fuse_a_faint_band_with_a_stroke() -> None:
    ink = np.zeros((300, 300), np.uint8)
    ink[50:250, 100:108] = 220  # a stroke
    ink[50:250, 108:125] = 70  # the faint edge of a shadow touching it
    mask = blobs.ink_mask(ink)
    assert mask[150, 100:108].all()
    assert not mask[150, 110:125].any()


def test_a_soft_shadow_fused_with_a_stroke_is_cut_away_and_the_stroke_kept() -> None:
    ink = np.full((300, 400), 10, np.float32)
    ink[:, 160:260] = 140  # a shadow band touching the stroke, as strong as half the ink
    ink = cv2.GaussianBlur(ink, (0, 0), 12)
    ink[60:240, 252:260] = 240  # a "1" at the band's edge: one blob once thresholded
    ink = ink.astype(np.uint8)
    mask = (ink > 60).astype(np.uint8)
    kept = blobs.near_sharp_edges(mask, ink)
    assert kept[60:240, 252:260].mean() > 0.95
    band = mask.copy()
    band[:, 240:272] = 0  # the band away from the stroke
    assert kept[band > 0].mean() < 0.1


def test_near_sharp_edges_keeps_the_inside_of_a_blot() -> None:
    ink = np.full((300, 300), 10, np.uint8)
    cv2.circle(ink, (150, 150), 60, 230, -1)  # a filled blob far wider than the pen of the digit beside it
    ink[40:260, 40:46] = 230
    mask = (ink > 100).astype(np.uint8)
    assert blobs.near_sharp_edges(mask, ink)[mask > 0].mean() > 0.99


def test_near_sharp_edges_keeps_a_bold_stroke_whose_edge_is_soft_in_places() -> None:
    """A marker stroke whose edge blurs here and there keeps its body: the ring around it is mostly sharp."""
    ink = np.full((500, 500), 10, np.float32)
    ink[40:460, 220:280] = 200  # a bold "1", 60 px wide
    soft = cv2.GaussianBlur(ink, (0, 0), 6)
    for y in (120, 250, 380):  # three stretches of its edge out of focus, left and right
        ink[y : y + 30, 200:300] = soft[y : y + 30, 200:300]
    ink = ink.astype(np.uint8)
    mask = (ink > 80).astype(np.uint8)
    assert blobs.near_sharp_edges(mask, ink)[60:440, 235:265].mean() > 0.95


@pytest.mark.parametrize("share", [0.02, 0.6])  # sparse ink gets 16-bit labels, a dense mask 32-bit
def test_blobs_with_stats_match_opencvs_default_labelling(share: float) -> None:
    mask = (np.random.default_rng(0).random((400, 400)) < share).astype(np.uint8)
    count, labels, stats = blobs_with_stats(mask)
    expected = cv2.connectedComponentsWithStats(mask, connectivity=8)
    assert count == expected[0]
    assert np.array_equal(labels, expected[1]) and np.array_equal(stats, expected[2])


def test_pen_width_reads_the_widest_strokes() -> None:
    contrast = np.zeros((300, 300), np.uint8)
    contrast[40:260, 60:64] = 200  # a hairline
    contrast[40:260, 150:170] = 200  # a marker stroke
    assert 14 <= pen_width(contrast) <= 24


@pytest.mark.parametrize(("width", "hairline"), [(1, True), (4, False), (12, False)])
def test_a_pen_of_one_pixel_is_a_hairline_and_a_wider_one_is_not(width: int, hairline: bool) -> None:
    grey = np.full((300, 300), 230, np.uint8)
    cv2.circle(grey, (150, 150), 90, 20, width)  # a 0, dark on light: diagonal runs too
    assert is_hairline(grey, dark=True) is hairline


def test_a_1_px_pen_keeps_its_whole_stroke_in_the_ink() -> None:
    """The 3x3 median that takes out grain would erase a 1 px stroke: a hairline is not smoothed."""
    grey = np.full((300, 300), 230, np.uint8)
    cv2.circle(grey, (150, 150), 90, 20, 1)
    ink = ink_image(grey).ink
    ring = cv2.circle(np.zeros_like(grey), (150, 150), 90, 1, 1) > 0
    assert (ink[ring] > 100).mean() > 0.9


def test_pen_width_of_inner_blobs_ignores_a_soft_shadow_around_a_thin_digit() -> None:
    ink = np.full((400, 400), 10, np.float32)
    cv2.fillPoly(ink, [np.array([(200, 40), (330, 340), (70, 340)], np.int32)], 90)
    ink = cv2.GaussianBlur(ink, (0, 0), 12)  # a hand's shadow inside the frame
    ink[220:280, 195:199] = 230  # a thin "1" written inside the shadow
    ink = ink.astype(np.uint8)
    assert pen_width(ink, inner_only=True) > 60  # the shadow reads as a very wide pen...
    assert pen_width(ink, inner_only=True, sharp_only=True) <= 8  # ...until soft blobs are dropped


def test_pen_width_of_inner_blobs_keeps_a_sharp_marker_stroke() -> None:
    ink = np.full((400, 400), 10, np.uint8)
    ink[60:340, 180:220] = 230  # a 40 px marker stroke, sharp-edged
    assert 30 <= pen_width(ink, inner_only=True, sharp_only=True) <= 50


def test_specks_on_a_photo_are_no_digit_but_a_small_digit_is_read() -> None:
    page = np.full((480, 640), 215, np.uint8)
    for x in range(60, 600, 90):
        page[300:310, x : x + 9] = 40  # specks of dirt 10 px tall: 2% of the shorter side
    with pytest.raises(EmptyImageError):
        preprocess.prepare_digit(page)
    cv2.line(page, (420, 100), (420, 150), 40, 4)  # a 1 of 50 px, 10% of it
    assert preprocess.prepare_digit(page).box.x > 400


def test_a_tiny_thin_digit_in_a_large_photo_is_found_but_a_lone_odd_mark_is_not() -> None:
    page = np.full((480, 640), 215, np.uint8)
    cv2.line(page, (300, 200), (300, 245), 60, 2)  # a 1 of 46x2 px: under 0.1% of the photo
    assert preprocess.prepare_digit(page).box.h >= 40
    mark = np.full((480, 640), 215, np.uint8)
    cv2.rectangle(mark, (300, 200), (309, 219), 60, -1)  # a filled blot, as sparse: not digit-like
    with pytest.raises(EmptyImageError):
        preprocess.prepare_digit(mark)


def test_a_small_crop_keeps_its_digit_touching_the_frame_over_a_stray_mark() -> None:
    crop = np.zeros((28, 28), np.uint8)  # MNIST-like: bright ink on black, a 1 from edge to edge
    crop[:, 13:16] = 255
    crop[4:8, 4:8] = 255  # a stray tick, the only blob not touching the frame
    assert preprocess.prepare_digit(crop).box.h >= 24


def test_a_small_crop_keeps_every_piece_of_a_broken_digit() -> None:
    crop = np.zeros((28, 28), np.uint8)
    crop[2:12, 13:16] = 255  # a faint 1 broken in two, its pieces far apart
    crop[18:27, 13:16] = 255
    assert preprocess.prepare_digit(crop).box.h >= 24


def test_ink_mask_raises_on_a_blank_page() -> None:
    with pytest.raises(EmptyImageError):
        blobs.ink_mask(np.full((200, 200), 3, np.uint8))


def test_grain_of_blank_paper_is_no_ink_and_every_digit_stroke_stays(
    mnist: Mnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(3)
    blank = [syn.blank_photo(rng) for _ in range(30)]
    digits = [syn.photo_of_digit(mnist.test.images[i], rng) for i in range(30)]
    kept_digits = [_blob_boxes(photo) for photo in digits]
    empty = sum(_blob_boxes(photo) is None for photo in blank)
    monkeypatch.setattr(blobs, "MIN_SIGNIFICANCE", 0.0)  # every blob over the threshold is ink
    # Measured: 16 of these 30 blank photos hold no ink, against 6 without the grain test.
    assert empty >= 12 and empty >= sum(_blob_boxes(photo) is None for photo in blank) + 6
    assert kept_digits == [_blob_boxes(photo) for photo in digits]  # no stroke of a digit is lost


def _blob_boxes(image: bytes) -> list[tuple[int, int, int, int]] | None:
    """Return the boxes of an image's blobs, None where it holds no ink."""
    try:
        return sorted((c.x, c.y, c.w, c.h) for c in blobs.find_ink(image).blobs)
    except EmptyImageError:
        return None


def test_remove_rule_lines_keeps_the_digit_and_drops_the_lines() -> None:
    mask = np.zeros((300, 400), np.uint8)
    mask[50::40, :] = 1  # ruled lines across the page
    mask[100:220, 195:203] = 1  # a "1" crossing three lines
    cleaned = blobs.remove_rule_lines(mask)
    assert cleaned[50, :150].sum() == 0
    assert cleaned[130, 195:203].all()  # stroke kept, including where it crossed a line
    assert cleaned[170, 195:203].all()


def test_remove_rule_lines_keeps_a_tightly_cropped_one() -> None:
    mask = np.zeros((224, 224), np.uint8)
    mask[30:194, 100:118] = 1  # thick and long, but not a paper line
    assert blobs.remove_rule_lines(mask).sum() == mask.sum()


def test_stroke_width_estimate() -> None:
    mask = np.zeros((100, 100), np.uint8)
    mask[10:90, 40:50] = 1
    assert 8 <= blobs.stroke_width(mask) <= 12


def test_normalise_stroke_thickens_thin_pens_and_thins_fat_ones() -> None:
    thin = np.asarray(draw_digit(7, size=200, width=2, ink=1, paper=0))
    fat = np.asarray(draw_digit(7, size=200, width=40, ink=1, paper=0))
    target = render.STROKE_IN_BOX * 200 / render.BOX
    assert blobs.stroke_width(render.normalise_stroke(thin, 200)) > blobs.stroke_width(thin)
    assert blobs.stroke_width(render.normalise_stroke(fat, 200)) < blobs.stroke_width(fat)
    assert abs(blobs.stroke_width(render.normalise_stroke(thin, 200)) - target) < target


def test_fit_box_keeps_aspect_ratio_inside_20x20() -> None:
    tall = np.ones((100, 20), np.float32)
    out = render.fit_box(tall)
    rows, cols = np.nonzero(out > 0.5)
    assert rows.max() - rows.min() + 1 == 20
    assert cols.max() - cols.min() + 1 == 4


def test_centre_by_mass_moves_the_mass_to_mnist_centre() -> None:
    image = np.zeros((28, 28), np.float32)
    image[2:8, 3:9] = 1
    assert centre_of_mass(render.centre_by_mass(image)) == pytest.approx(
        (render.CENTRE, render.CENTRE), abs=0.3
    )


def test_alpha_channel_ink_is_used_for_transparent_drawings() -> None:
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[60:220, 135:150, 3] = 255  # black RGB everywhere: only alpha says where the ink is
    grey, alpha_ink = decode.to_grey(rgba)
    assert alpha_ink
    assert grey[100, 140] == 255 and grey[10, 10] == 0


# --- whole-pipeline properties ---------------------------------------------------------------------


def prepared(image: object) -> np.ndarray:
    """Run the pipeline and return input28."""
    return preprocess.prepare_digit(image).input28  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    digit=st.sampled_from([0, 1, 4, 7]),
    size=st.integers(60, 500),
    width_ratio=st.floats(0.02, 0.12),
    scale=st.floats(0.3, 0.9),
    dx=st.floats(0, 1),
    dy=st.floats(0, 1),
)
def test_output_is_mnist_shaped_centred_and_in_range(digit, size, width_ratio, scale, dx, dy) -> None:
    free = size * (1 - scale)
    image = draw_digit(
        digit,
        size,
        width=max(1, int(width_ratio * size)),
        scale=scale,
        offset=(int(dx * free), int(dy * free)),
    )
    out = prepared(image)
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() == pytest.approx(1.0)
    assert centre_of_mass(out) == pytest.approx((render.CENTRE, render.CENTRE), abs=0.6)
    rows, cols = np.nonzero(out > 0.1)
    assert max(np.ptp(rows), np.ptp(cols)) >= 17  # fills the 20x20 box (soft edges allowed)


def test_inverting_the_image_gives_the_same_input() -> None:
    image = np.asarray(draw_digit(4, 200, width=12))
    assert np.abs(prepared(image) - prepared(255 - image)).mean() < 0.02


def test_position_and_scale_do_not_change_the_input() -> None:
    small = draw_digit(7, 400, width=6, scale=0.3, offset=(20, 250))
    large = draw_digit(7, 400, width=24, scale=0.8, offset=(40, 40))
    assert np.abs(prepared(small) - prepared(large)).mean() < 0.06


def test_canvas_rgba_and_grey_photo_agree() -> None:
    grey = np.asarray(draw_digit(0, 280, width=18))
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[:, :, 3] = 255 - grey
    assert np.abs(prepared(grey) - prepared(rgba)).mean() < 0.02


def test_ruled_paper_and_shadow_do_not_change_the_digit() -> None:
    clean = np.asarray(draw_digit(4, 400, width=14, ink=40, paper=220)).astype(np.float32)
    noisy = clean.copy()
    noisy[20::35, :] = np.minimum(noisy[20::35, :], 150)  # ruled lines
    noisy *= np.linspace(0.55, 1.0, 400)[np.newaxis, :]  # a shadow from the left
    assert np.abs(prepared(clean.astype(np.uint8)) - prepared(noisy.astype(np.uint8))).mean() < 0.05


def test_box_is_reported_in_input_pixels() -> None:
    image = draw_digit(1, 1000, width=30, scale=0.4, offset=(100, 500))
    box = preprocess.prepare_digit(image).box
    assert 280 <= box.x + box.w / 2 <= 320 and 530 <= box.y <= 580 and 260 <= box.h <= 320


def test_a_large_jpeg_decodes_small_and_grey_with_boxes_in_its_own_pixels() -> None:
    page = Image.new("RGB", (1280, 960), (235, 235, 225))
    digit = draw_digit(1, 1000, width=30, scale=0.4, offset=(100, 500)).convert("RGB")
    page.paste(digit.crop((0, 0, 900, 900)))
    data = encode(page, "JPEG", quality=90)
    array, scale = decode.load_image_scaled(data)
    assert array.shape == (480, 640) and scale == 0.5  # decoded at half size, luma only
    box = preprocess.prepare_digit(data).box
    assert 280 <= box.x + box.w / 2 <= 320 and 530 <= box.y <= 580 and 260 <= box.h <= 320


def test_exif_orientation_is_applied() -> None:
    upright = draw_digit(7, 300, width=16).convert("RGB")
    rotated = upright.rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": undoes the 90 CCW rotation above
    data = encode(rotated, "JPEG", exif=exif.tobytes(), quality=95)
    assert np.abs(prepared(data) - prepared(upright)).mean() < 0.04


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "CMYK", "I;16", "1", "LA"])
def test_every_pillow_mode_is_read(mode: str) -> None:
    base = draw_digit(7, 200, width=14)
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base).astype(np.uint16) * 257)
    else:
        image = base.convert(mode)
    fmt = {"CMYK": "JPEG", "I;16": "TIFF"}.get(mode, "PNG")
    data = encode(image, fmt)
    assert prepared(data).max() == pytest.approx(1.0)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"])
def test_common_formats_decode(fmt: str) -> None:
    data = encode(draw_digit(1, 200, width=14).convert("RGB" if fmt != "GIF" else "P"), fmt)
    assert prepared(data).shape == (28, 28)


def test_animated_gif_uses_the_first_frame() -> None:
    frames = [draw_digit(1, 200, width=14).convert("P"), Image.new("P", (200, 200), 255)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert prepared(buffer.getvalue()).max() == pytest.approx(1.0)


def test_paths_and_pil_images_are_accepted(tmp_path) -> None:
    image = draw_digit(7, 200, width=14)
    path = tmp_path / "seven.png"
    image.save(path)
    assert np.allclose(prepared(str(path)), prepared(image))
    assert np.allclose(prepared(path), prepared(np.asarray(image)))


def test_float_arrays_in_unit_range_are_accepted() -> None:
    image = np.asarray(draw_digit(7, 200, width=14)).astype(np.float64) / 255
    assert prepared(image).max() == pytest.approx(1.0)


# --- empty and bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        np.full((200, 200), 255, np.uint8),
        np.zeros((280, 280, 4), np.uint8),  # an empty transparent canvas
        np.random.default_rng(0).normal(128, 2, (300, 300)).clip(0, 255).astype(np.uint8),
    ],
    ids=["white page", "empty canvas", "flat noise"],
)
def test_no_digit_raises_empty_image_error(image: np.ndarray) -> None:
    with pytest.raises(EmptyImageError):
        preprocess.prepare_digit(image)


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is text and not an image",
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF",
        gzip.compress(b"not an image"),
        _zip_bytes(),
        encode(draw_digit(7, 200, width=14), "PNG")[:300],  # truncated
        encode(Image.new("L", (1, 1), 0), "PNG"),
    ],
    ids=["empty", "text", "pdf", "gzip", "zip", "truncated png", "1x1"],
)
def test_bad_files_raise_invalid_image_error(data: bytes) -> None:
    with pytest.raises(InvalidImageError):
        preprocess.prepare_digit(data)


def test_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = encode(Image.new("1", (10_000, 10_000), 0), "PNG")  # 100 megapixels, a few kB
    assert len(bomb) < 100_000
    with pytest.raises(InvalidImageError, match="too large"):
        preprocess.prepare_digit(bomb)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((28, 28, 2), np.uint8),
        np.zeros((2, 28, 28, 3), np.uint8),
        np.zeros((28,), np.uint8),
        np.full((28, 28), np.nan, np.float32),
        np.zeros((28, 28), np.complex64),
        np.array([["a"] * 28] * 28),
        np.zeros((4, 4), np.uint8),
        -np.ones((28, 28), np.int16),
    ],
    ids=["2 channels", "4d", "1d", "nan", "complex", "strings", "tiny", "negative"],
)
def test_bad_arrays_raise_invalid_image_error(array: np.ndarray) -> None:
    with pytest.raises(InvalidImageError):
        preprocess.prepare_digit(array)


def test_unsupported_types_raise_invalid_image_error() -> None:
    with pytest.raises(InvalidImageError):
        preprocess.prepare_digit(12345)  # type: ignore[arg-type]


def test_missing_file_raises_invalid_image_error(tmp_path) -> None:
    with pytest.raises(InvalidImageError):
        preprocess.prepare_digit(tmp_path / "nope.png")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes_never_escape_as_other_errors(data: bytes) -> None:
    with contextlib.suppress(RecognizerError):
        preprocess.prepare_digit(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int32, np.bool_]),
        shape=st.tuples(st.integers(1, 64), st.integers(1, 64))
        | st.tuples(st.integers(1, 40), st.integers(1, 40), st.sampled_from([1, 2, 3, 4, 5])),
    )
)
def test_random_arrays_give_a_digit_or_a_recognizer_error(array: np.ndarray) -> None:
    try:
        out = preprocess.prepare_digit(array).input28
    except RecognizerError:
        return
    assert out.shape == (28, 28) and np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=1, max_size=2048))
def test_corrupted_real_jpeg_never_escapes(noise: bytes) -> None:
    data = bytearray(encode(draw_digit(7, 200, width=14).convert("RGB"), "JPEG"))
    for i, byte in enumerate(noise[:64]):
        data[(i * 97 + byte) % len(data)] = byte
    with contextlib.suppress(RecognizerError):
        preprocess.prepare_digit(bytes(data))

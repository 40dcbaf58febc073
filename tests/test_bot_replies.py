"""Unit tests of the bot's pure parts: reply texts, keyboards, photo sizes, pictures, log redaction."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
from PIL import Image
from telegram import PhotoSize

from mnist_bot import Prediction
from mnist_bot.bot import images, keyboards, replies
from mnist_bot.bot.app import RedactingFilter, protect_token
from mnist_bot.bot.handlers import UserLimiter
from mnist_bot.recognizer import NumberReading, PageReading
from mnist_bot.runtime import FakeRuntime

TOKEN = "987654:SECRET-token-value"


def prediction(probabilities: dict[int, float], unsure: bool | None = None) -> Prediction:
    """Build a Prediction with the given probabilities (the rest spread evenly)."""
    rest = (1.0 - sum(probabilities.values())) / (10 - len(probabilities))
    probs = tuple(probabilities.get(d, rest) for d in range(10))
    digit = int(np.argmax(probs))
    sure = probs[digit] >= 0.7
    return Prediction(
        digit=digit,
        confidence=probs[digit],
        probabilities=probs,
        unsure=(not sure) if unsure is None else unsure,
        input28=np.zeros((28, 28), dtype=np.float32),
    )


# ---------------------------------------------------------------- replies


def test_a_sure_digit_is_answered_with_its_confidence() -> None:
    assert replies.digit_reply(prediction({7: 0.98})) == "7, 98% sure"


def test_an_unsure_digit_lists_the_runner_ups() -> None:
    text = replies.digit_reply(prediction({7: 0.54, 1: 0.30, 9: 0.10}))
    assert text.startswith("Maybe 7, only 54% sure.")
    assert "It could also be 1 (30%) or 9 (10%)." in text


def test_a_confident_answer_flagged_for_its_shape_says_so() -> None:
    text = replies.digit_reply(prediction({1: 0.99}, unsure=True))
    assert text.startswith("Probably 1 (99%), though it doesn't look much like a handwritten digit.")
    assert "only" not in text


def test_runner_ups_below_five_percent_are_not_mentioned() -> None:
    text = replies.digit_reply(prediction({4: 0.6, 9: 0.38}))
    assert "9 (38%)" in text
    assert text.count("(") == 1


@pytest.mark.parametrize(
    ("probability", "shown"), [(0.9999, "99%"), (0.0004, "1%"), (1.0, "100%"), (0.5, "50%"), (0.984, "98%")]
)
def test_percent_never_claims_certainty_it_does_not_have(probability: float, shown: str) -> None:
    assert replies.percent(probability) == shown


def test_a_number_is_read_with_per_digit_confidence() -> None:
    digits = [prediction({2: 0.99}), prediction({0: 0.97}), prediction({4: 0.88}), prediction({8: 0.95})]
    text = replies.number_reply(NumberReading(text="2048", digits=digits))
    assert text.splitlines() == ["I read 2048", "2: 99%", "0: 97%", "4: 88%", "8: 95%"]


def test_an_unsure_digit_of_a_number_is_flagged_with_alternatives() -> None:
    digits = [prediction({1: 0.99}), prediction({4: 0.55, 9: 0.40})]
    text = replies.number_reply(NumberReading(text="14", digits=digits))
    assert text.splitlines()[0] == "I read 14 (not sure about every digit)"
    assert "4: 55% (or 9 (40%))" in text


def test_reading_reply_picks_the_digit_or_number_form() -> None:
    assert replies.reading_reply([prediction({3: 0.9})]) == "3, 90% sure"
    assert replies.reading_reply([prediction({3: 0.9}), prediction({1: 0.9})]).startswith("I read 31")


def test_about_states_accuracy_and_privacy() -> None:
    text = replies.about({"architecture": "cnn", "test_accuracy": 0.9931}, stored=2)
    assert "99.31%" in text and "cnn" in text
    assert "never keep your photos" in text and "/forget" in text and "2 corrected digits" in text
    assert "not been measured" in replies.about({}, stored=1)
    assert "1 corrected digit from you" in replies.about({}, stored=1)


def test_forgotten_and_thanks_texts() -> None:
    assert replies.forgotten(3) == "Done: I deleted the 3 digits I had stored for you."
    assert "nothing stored" in replies.forgotten(0)
    assert replies.thanks(7, 7) == "Thanks for confirming it's a 7!"
    assert replies.thanks(7, 1).startswith("Thanks! Saved as 7")


def test_corrected_note_replaces_an_earlier_note() -> None:
    once = replies.corrected_note("1, 90% sure", [7])
    twice = replies.corrected_note(once, [4])
    assert once.startswith("1, 90% sure") and "You said it's a 7" in once
    assert twice.count("You said") == 1 and "You said it's a 4" in twice
    assert "You said it's 2948" in replies.corrected_note("I read 2048", [2, 9, 4, 8])


def test_too_big_names_the_size_and_the_limit() -> None:
    assert replies.too_big(25 * 1024 * 1024).startswith("That file is 25 MB")
    assert "20 MB" in replies.too_big(None)


@pytest.mark.parametrize(
    ("name", "mime", "expected"),
    [
        ("digit.png", "image/png", True),
        ("IMG_0001.HEIC", None, True),
        ("scan.webp", "application/octet-stream", True),
        (None, "image/jpeg", True),
        ("notes.pdf", "application/pdf", False),
        (None, None, False),
    ],
)
def test_image_documents_are_recognised_by_mime_type_or_name(
    name: str | None, mime: str | None, expected: bool
) -> None:
    assert replies.is_image_document(name, mime) is expected


def test_position_labels_use_ordinals() -> None:
    assert [replies.position_label(i, 5) for i in (0, 1, 2, 3, 10, 11)] == [
        "1st: 5",
        "2nd: 5",
        "3rd: 5",
        "4th: 5",
        "11th: 5",
        "12th: 5",
    ]


# ---------------------------------------------------------------- keyboards


def test_callback_data_round_trips_and_fits_telegram_limit() -> None:
    for tap in [
        keyboards.Tap("saw", "AbCdEfGhIjKl"),
        keyboards.Tap("fix", "AbCdEfGhIjKl"),
        keyboards.Tap("pos", "AbCdEfGhIjKl", 11),
        keyboards.Tap("set", "AbCdEfGhIjKl", 3, 9),
        keyboards.Tap("back", "AbCdEfGhIjKl"),
    ]:
        data = tap.data()
        assert len(data.encode()) <= 64
        assert keyboards.parse(data) == tap


@pytest.mark.parametrize(
    "data",
    [None, "", "saw", "saw:", "zap:abc", "set:abc:0", "set:abc:0:10", "set:abc:x:1", "pos:ab:-1", "fix:a:1"],
)
def test_foreign_or_broken_callback_data_is_ignored(data: str | None) -> None:
    assert keyboards.parse(data) is None


def test_answer_keyboard_has_the_two_buttons() -> None:
    markup = keyboards.answer_keyboard("key123")
    buttons = [b for row in markup.inline_keyboard for b in row]
    assert [b.callback_data for b in buttons] == ["saw:key123", "fix:key123"]
    assert "What I saw" in buttons[0].text and "Wrong? Fix it" in buttons[1].text


def test_digit_keypad_offers_every_digit_once_and_a_way_back() -> None:
    markup = keyboards.digit_keypad("k", 2)
    data = [b.callback_data for row in markup.inline_keyboard for b in row]
    assert sorted(d for d in data if d.startswith("set:")) == sorted(f"set:k:2:{d}" for d in range(10))
    assert data[-1] == "back:k"


def test_position_picker_has_one_button_per_digit() -> None:
    markup = keyboards.position_picker("k", [2, 0, 4, 8, 1])
    buttons = [b for row in markup.inline_keyboard for b in row]
    assert [b.text for b in buttons[:5]] == ["1st: 2", "2nd: 0", "3rd: 4", "4th: 8", "5th: 1"]
    assert [b.callback_data for b in buttons] == [*(f"pos:k:{i}" for i in range(5)), "back:k"]


# ---------------------------------------------------------------- photo sizes and pictures


def _size(width: int, height: int) -> PhotoSize:
    return PhotoSize(f"id{width}", f"u{width}", width, height)


def test_the_smallest_photo_size_that_is_big_enough_is_chosen() -> None:
    sizes = [_size(90, 68), _size(320, 240), _size(800, 600), _size(1280, 960)]
    assert images.pick_photo_size(sizes).width == 800
    assert images.pick_photo_size(list(reversed(sizes))).width == 800
    assert images.pick_photo_size([_size(90, 68), _size(240, 180)]).width == 240


def test_what_i_saw_shows_the_crop_beside_the_enlarged_input() -> None:
    photo = Image.new("RGB", (400, 300), "white")
    photo.paste((0, 0, 0), (180, 100, 220, 200))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG")
    input28 = np.zeros((28, 28), dtype=np.float32)
    input28[4:24, 12:16] = 1.0
    picture = Image.open(io.BytesIO(images.what_i_saw([input28], buffer.getvalue(), [(180, 100, 40, 100)])))
    assert picture.format == "PNG"
    assert picture.height == images.PANEL + 2 * images.GAP
    right = np.asarray(picture.convert("L"))[:, -images.PANEL - images.GAP : -images.GAP]
    assert right[images.GAP + 150, images.PANEL // 2] < 50  # the input's ink is dark on the right
    assert picture.width > images.PANEL + 3 * images.GAP  # and the crop takes room on the left


def test_what_i_saw_without_the_photo_shows_only_the_inputs() -> None:
    inputs = [np.eye(28, dtype=np.float32)] * 3
    picture = Image.open(io.BytesIO(images.what_i_saw(inputs, None, [None] * 3)))
    strip = images.inputs_strip(inputs)
    assert picture.size == (strip.width + 2 * images.GAP, strip.height + 2 * images.GAP)


def test_what_i_saw_survives_a_photo_it_cannot_decode() -> None:
    picture = Image.open(io.BytesIO(images.what_i_saw([np.zeros((28, 28))], b"not a jpeg", [(0, 0, 5, 5)])))
    assert picture.width == images.PANEL + 2 * images.GAP


# ---------------------------------------------------------------- logging and limits


def test_redacting_filter_removes_the_token_from_messages_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(TOKEN))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("POST https://api.telegram.org/bot%s/getMe", TOKEN)
        try:
            raise RuntimeError(f"failed https://x/bot{TOKEN}/sendMessage")
        except RuntimeError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert TOKEN not in text
    assert text.count("<token>") == 2 and "RuntimeError" in text


async def test_user_limiter_allows_the_budget_then_warns_once() -> None:
    limiter = UserLimiter(per_minute=3)
    assert [await limiter.allow(1) for _ in range(4)] == [True, True, True, False]
    assert await limiter.allow(2)  # other users are not affected
    assert limiter.should_warn(1) and not limiter.should_warn(1)


def test_fake_runtime_is_deterministic_for_the_handler_tests() -> None:
    runtime = FakeRuntime(lambda image: np.eye(10)[7] * 9)
    assert int(np.argmax(runtime.predict(np.zeros((1, 28, 28), dtype=np.float32))[0])) == 7


def test_protecting_an_empty_token_leaves_logs_alone(caplog: pytest.LogCaptureFixture) -> None:
    root = logging.getLogger()
    before = [list(h.filters) for h in root.handlers]
    protect_token("")
    assert [list(h.filters) for h in root.handlers] == before
    assert logging.getLogger("httpx").level == logging.WARNING


# ---------------------------------------------------------------- pages


def page_of_digits(*rows: str, unsure_at: tuple[int, int] | None = None) -> PageReading:
    """Build a page reading from rows of digit characters; one digit (line, index) may be unsure."""
    lines = []
    for r, row in enumerate(rows):
        digits = [
            prediction({int(ch): 0.5, (int(ch) + 1) % 10: 0.4})
            if (r, i) == unsure_at
            else prediction({int(ch): 0.95})
            for i, ch in enumerate(row)
        ]
        lines.append(NumberReading(row, digits))
    return PageReading(lines)


def test_pages_are_several_lines_or_many_digits() -> None:
    assert not replies.is_page(page_of_digits("7"))
    assert not replies.is_page(page_of_digits("2048"))
    assert replies.is_page(page_of_digits("12", "3"))
    assert replies.is_page(page_of_digits("1234567890123"))


def test_a_page_reply_numbers_its_lines_and_names_the_unsure_digits() -> None:
    text = replies.page_reply(page_of_digits("3141", "59265", "358", unsure_at=(1, 2)))
    lines = text.splitlines()
    assert lines[0].startswith("I read 3 lines, 12 digits (not sure about 1 of them")
    assert lines[1:4] == ["1: 3141", "2: 59265", "3: 358"]
    assert lines[4] == "Not sure: line 2, 3rd: 2 (or 3 (40%))"
    assert replies.page_spans(text, 12) == [(0, 4), (4, 5), (9, 3)]


def test_a_long_page_is_summarised_within_telegrams_limits() -> None:
    page = page_of_digits(*["1234567890" * 4] * 300)
    text, caption = replies.page_reply(page), replies.page_caption(page)
    assert len(text) <= replies.MESSAGE_LIMIT - 200 and len(caption) <= replies.CAPTION_LIMIT
    assert "more lines (all on the picture)" in text.splitlines()[-1]
    assert replies.page_spans(text, len(page.digits)) is None  # not every line listed: no spans


def test_page_spans_ignore_a_correction_note_and_refuse_what_does_not_add_up() -> None:
    text = replies.page_reply(page_of_digits("12", "345"))
    noted = replies.page_corrected_note(text, 2, 0, 9)
    assert noted.endswith("You said the 1st digit of line 2 is a 9. Thanks!")
    assert replies.page_spans(noted, 5) == [(0, 2), (2, 3)]
    assert replies.page_corrected_note(noted, 1, 1, 4).count("You said") == 1
    assert replies.page_spans(text, 6) is None
    assert (
        replies.page_spans(replies.number_reply(NumberReading("12", [prediction({1: 0.9})] * 2)), 2) is None
    )


def test_row_taps_round_trip_and_fit_telegram_limit() -> None:
    tap = keyboards.Tap("row", "AbCdEfGhIjKlMnOp", 12345, count=678)
    assert len(tap.data().encode()) <= 64 and keyboards.parse(tap.data()) == tap
    assert keyboards.parse("row:k:1") is None and keyboards.parse("row:k:1:-2") is None


def test_line_picker_offers_each_line_then_its_digits() -> None:
    digits = [3, 1, 4, 1, 5, 9, 2, 6, 5]
    markup = keyboards.line_picker("k", digits, [(0, 4), (4, 5)])
    buttons = [b for row in markup.inline_keyboard for b in row]
    assert [b.text for b in buttons] == ["Line 1: 3141", "Line 2: 59265", "↩ Back"]
    assert [b.callback_data for b in buttons] == ["row:k:0:4", "row:k:4:5", "back:k"]
    row = [b for r in keyboards.position_picker("k", digits[4:], 4).inline_keyboard for b in r]
    assert [b.text for b in row][:2] == ["1st: 5", "2nd: 9"]
    assert [b.callback_data for b in row] == [*(f"pos:k:{i}" for i in range(4, 9)), "fix:k"]  # back: lines


def test_pickers_stay_under_telegrams_button_limit() -> None:
    digits = [7] * 3000
    spans = [(i * 10, 10) for i in range(300)]
    for markup in (keyboards.line_picker("k", digits, spans), keyboards.line_picker("k", digits, None)):
        buttons = [b for row in markup.inline_keyboard for b in row]
        assert len(buttons) <= 100
        covered = [keyboards.parse(b.callback_data) for b in buttons[:-1]]
        assert sum(t.count for t in covered if t) == 3000  # every digit still reachable
    assert "Lines 1-4" in keyboards.line_picker("k", digits, spans).inline_keyboard[0][0].text


def test_photo_shaped_pads_a_too_wide_strip() -> None:
    assert images.photo_shaped(Image.new("RGB", (4000, 100))).size == (4000, 200)
    wide_enough = Image.new("RGB", (400, 100))
    assert images.photo_shaped(wide_enough) is wide_enough

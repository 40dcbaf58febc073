"""DigitChat driven by the messages a browser sends: mouse, touch, keys, clicks and uploads."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ipywidgets import Button, HBox, Label, VBox
from PIL import Image

from mnist_bot import InvalidImageError, NumberReading, PageReading, Prediction, Recognizer
from mnist_bot.feedback import FeedbackStore
from mnist_bot.runtime import FakeRuntime
from mnist_bot.strokes import rasterise
from mnist_bot.training import synthetic
from tests.conftest import draw_digit
from widgets import DigitChat
from widgets import chat as chat_module
from widgets.pad import StrokeRecorder
from widgets.raster import Stroke, mask_to_png, stroke_mask, strokes_to_rgba

Point = tuple[float, float]
SEVEN: list[Point] = [(80, 60), (200, 60), (190, 90), (150, 160), (120, 240)]
ONE: list[Point] = [(130, 70), (150, 50), (150, 240)]


class Clock:
    """A hand-moved clock for the live-mode throttle."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def confident(digit: int) -> Callable[[np.ndarray], np.ndarray]:
    """Score function for FakeRuntime that always answers `digit` with ~99.9% confidence."""

    def score(_image: np.ndarray) -> np.ndarray:
        scores = np.zeros(10, dtype=np.float32)
        scores[digit] = 10.0
        return scores

    return score


def torn(first: int, second: int) -> Callable[[np.ndarray], np.ndarray]:
    """Score function for FakeRuntime that hesitates between two digits."""

    def score(_image: np.ndarray) -> np.ndarray:
        scores = np.zeros(10, dtype=np.float32)
        scores[first], scores[second] = 3.0, 2.6
        return scores

    return score


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeedbackStore]:
    with FeedbackStore(tmp_path / "feedback.db") as feedback:
        yield feedback


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime(confident(7))


@pytest.fixture
def chat(runtime: FakeRuntime, store: FeedbackStore, clock: Clock) -> DigitChat:
    return DigitChat(Recognizer(runtime), store, user="tester", clock=clock)


def event(chat: DigitChat, name: str, **content: Any) -> None:
    """Deliver one frontend event to the pad's canvas, as the ipycanvas JavaScript would."""
    chat.pad.canvas._handle_frontend_event(None, {"event": name, **content}, [])


def draw_with_mouse(chat: DigitChat, points: Sequence[Point]) -> None:
    """Press, drag through `points` and release."""
    event(chat, "mouse_down", x=points[0][0], y=points[0][1])
    for x, y in points[1:]:
        event(chat, "mouse_move", x=x, y=y)
    event(chat, "mouse_up", x=points[-1][0], y=points[-1][1])


def draw_with_finger(chat: DigitChat, points: Sequence[Point]) -> None:
    """Touch, slide through `points` and lift (touch_end lists the fingers still down: none)."""
    event(chat, "touch_start", touches=[{"x": points[0][0], "y": points[0][1]}])
    for x, y in points[1:]:
        event(chat, "touch_move", touches=[{"x": x, "y": y}])
    event(chat, "touch_end", touches=[])


def upload(chat: DigitChat, content: bytes, name: str = "photo.png") -> None:
    """Set the FileUpload's value the way the frontend does (ipywidgets 8 wire format)."""
    entry = {"name": name, "type": "image/png", "size": len(content), "content": memoryview(content)}
    chat.upload.set_state({"value": [{**entry, "last_modified": 1_700_000_000_000}]})


def png_of(strokes: Sequence[Stroke], size: tuple[int, int]) -> bytes:
    """Render strokes as a photo-like PNG: dark ink on white paper."""
    return mask_to_png(stroke_mask(strokes, size))


def bot_messages(chat: DigitChat) -> list[chat_module.ChatMessage]:
    return [m for m in chat.messages if m.role == "bot"]


# ------------------------------------------------------------------ the stroke model


def test_mouse_drag_records_one_stroke_with_the_event_coordinates(chat: DigitChat) -> None:
    event(chat, "mouse_move", x=10, y=10)  # hovering with no button pressed draws nothing
    draw_with_mouse(chat, SEVEN)
    event(chat, "mouse_move", x=5, y=5)

    assert chat.pad.strokes == (Stroke(tuple(SEVEN), 18.0),)


def test_touch_draws_like_the_mouse_and_a_second_finger_is_ignored(chat: DigitChat) -> None:
    event(chat, "touch_start", touches=[{"x": 100, "y": 50}, {"x": 10, "y": 10}])
    event(chat, "touch_move", touches=[{"x": 100, "y": 150}, {"x": 12, "y": 12}])
    event(chat, "touch_end", touches=[])
    draw_with_finger(chat, ONE)

    assert [s.points for s in chat.pad.strokes] == [((100, 50), (100, 150)), tuple(ONE)]


def test_leaving_the_pad_ends_the_stroke(chat: DigitChat) -> None:
    event(chat, "mouse_down", x=50, y=50)
    event(chat, "mouse_move", x=60, y=80)
    event(chat, "mouse_out", x=0, y=80)
    event(chat, "mouse_move", x=90, y=90)  # back in with the button still held: not a stroke

    assert [s.points for s in chat.pad.strokes] == [((50, 50), (60, 80))]


def test_recorder_skips_sub_pixel_jitter_and_a_tap_is_a_dot() -> None:
    recorder = StrokeRecorder()
    recorder.pen_down((10.0, 10.0), 12)
    assert recorder.pen_move((10.3, 10.4)) is None
    assert recorder.pen_move((14.0, 10.0)) == (10.0, 10.0)
    recorder.pen_up()
    recorder.pen_down((40.0, 40.0), 12)
    recorder.pen_up()

    assert [s.points for s in recorder.strokes] == [((10.0, 10.0), (14.0, 10.0)), ((40.0, 40.0),)]
    dot = stroke_mask([recorder.strokes[1]], (80, 80))
    assert dot[40, 40] == 255 and dot[40, 45] == 255 and dot[40, 48] == 0


def test_raster_has_the_pen_width_round_caps_and_ink_in_alpha() -> None:
    rgba = strokes_to_rgba([Stroke(((50.0, 100.0), (150.0, 100.0)), 20)], (200, 200))

    assert rgba.shape == (200, 200, 4) and rgba.dtype == np.uint8
    assert not rgba[..., :3].any()  # black ink, transparent paper: a canvas's image data
    alpha = rgba[..., 3]
    # 20 px of pen from y = 90 to 110; OpenCV's anti-aliased edge adds about a pixel, as soft as a canvas's.
    assert np.flatnonzero(alpha[:, 100] == 255).tolist() == list(range(90, 111))
    assert set(np.flatnonzero(alpha[:, 100])) <= set(range(88, 112))
    assert alpha[100, 40] == 255 and alpha[100, 37] == 0  # a round cap reaches half a pen past the end
    assert alpha[90, 41] == 0  # ...and is round, not square


def test_the_pad_the_synthetic_canvases_and_the_test_digits_share_one_rasteriser() -> None:
    points = ((60.5, 40.5), (140.5, 150.5))
    pad = stroke_mask([Stroke(points, 14)], (200, 200))
    core = rasterise([(np.subtract(points, 0.5), 14)], (200, 200))  # canvas pixel centres sit at +0.5
    canvas = synthetic._draw_strokes([np.subtract(points, 0.5).astype(np.float32)], 200, 14)

    digit = np.asarray(draw_digit(1, 100, width=8, ink=255, paper=0))  # the tests' factory, light on black
    one = rasterise([(np.array([(50.0, 15.0), (50.0, 85.0)]), 8)], (100, 100))

    np.testing.assert_array_equal(pad, core)
    np.testing.assert_array_equal(canvas, core)
    np.testing.assert_array_equal(digit, one)
    assert 0 < np.mean((core > 0) & (core < 255)) < np.mean(core == 255)  # anti-aliased, mostly solid


def test_undo_and_clear_buttons(chat: DigitChat) -> None:
    draw_with_mouse(chat, SEVEN)
    draw_with_mouse(chat, ONE)
    chat.undo_button.click()
    assert [s.points for s in chat.pad.strokes] == [tuple(SEVEN)]

    draw_with_finger(chat, ONE)
    chat.clear_button.click()
    assert chat.pad.strokes == ()
    chat.undo_button.click()  # nothing left to undo: no error, nothing posted
    assert len(chat.messages) == 1


def test_pen_width_slider_applies_to_new_strokes_only(chat: DigitChat) -> None:
    draw_with_mouse(chat, SEVEN)
    chat.pen_slider.value = 30
    draw_with_mouse(chat, ONE)

    assert [s.width for s in chat.pad.strokes] == [18.0, 30.0]


# ------------------------------------------------------------------ sending drawings


def test_send_posts_the_drawing_and_an_answer_bubble(chat: DigitChat) -> None:
    draw_with_mouse(chat, SEVEN)
    chat.send_button.click()

    greeting, drawing, reply = chat.messages
    assert greeting.kind == "hint"
    assert (drawing.role, drawing.kind) == ("user", "image")
    assert "data:image/png;base64," in drawing.html
    assert (reply.role, reply.kind) == ("bot", "answer")
    assert reply.text == "It's a 7 (100% sure)."
    assert 'data-digit="7"' in reply.html
    assert reply.html.count("<img") == 1  # the 28x28 the model saw
    assert all(f'<span style="width:8px">{d}</span>' in reply.html for d in range(10))  # ten bars
    assert chat.pad.strokes == ()  # sent, so the pad is ready for the next digit
    assert len(chat.transcript.children) == 3


def test_enter_on_the_pad_sends(chat: DigitChat) -> None:
    draw_with_mouse(chat, SEVEN)
    event(chat, "key_down", key="a", shift_key=False, ctrl_key=False, meta_key=False)
    assert len(chat.messages) == 1
    event(chat, "key_down", key="Enter", shift_key=False, ctrl_key=False, meta_key=False)

    assert [m.kind for m in chat.messages] == ["hint", "image", "answer"]


def test_the_model_sees_the_python_raster_of_the_strokes(chat: DigitChat) -> None:
    draw_with_finger(chat, SEVEN)
    strokes = chat.pad.strokes
    chat.send_button.click()

    answer = chat.messages[-1].answer
    expected = Recognizer(FakeRuntime()).predict(strokes_to_rgba(strokes))
    assert isinstance(answer, Prediction)
    np.testing.assert_array_equal(answer.input28, expected.input28)


def test_an_empty_pad_gets_a_hint_not_a_guess(chat: DigitChat, runtime: FakeRuntime) -> None:
    chat.send_button.click()

    assert chat.messages[-1].text == "Draw a digit first: the pad is empty."
    assert chat.messages[-1].kind == "hint"
    assert runtime.calls == 0


def test_an_unsure_answer_says_so_and_names_the_runner_up(store: FeedbackStore) -> None:
    chat = DigitChat(Recognizer(FakeRuntime(torn(4, 9))), store)
    draw_with_mouse(chat, SEVEN)
    chat.send_button.click()

    reply = chat.messages[-1]
    assert reply.text.startswith("I'm not sure: maybe a 4 (")
    assert "or else a 9 (" in reply.text


def test_a_recognizer_error_becomes_a_friendly_bubble(store: FeedbackStore) -> None:
    def refuse(_image: np.ndarray) -> np.ndarray:
        raise InvalidImageError("That drawing is too large for me.")

    chat = DigitChat(Recognizer(FakeRuntime(refuse)), store)
    draw_with_mouse(chat, SEVEN)
    chat.send_button.click()

    assert (chat.messages[-1].kind, chat.messages[-1].text) == ("error", "That drawing is too large for me.")


def test_a_tap_is_answered_but_flagged_as_unsure(chat: DigitChat) -> None:
    draw_with_mouse(chat, [(140, 140)])
    chat.send_button.click()

    assert chat.messages[-1].kind == "answer"
    assert chat.messages[-1].text.startswith("I'm not sure")


def test_an_unexpected_failure_is_logged_and_answered_with_an_apology(
    store: FeedbackStore, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_image: np.ndarray) -> np.ndarray:
        raise RuntimeError("interpreter exploded")

    chat = DigitChat(Recognizer(FakeRuntime(broken)), store)
    draw_with_mouse(chat, SEVEN)
    with caplog.at_level(logging.ERROR):
        chat.send_button.click()  # must not raise into the notebook

    assert chat.messages[-1].kind == "apology"
    assert "interpreter exploded" in caplog.text
    assert "interpreter exploded" not in chat.messages[-1].html


def test_a_missing_model_is_reported_in_the_chat(
    store: FeedbackStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MNIST_BOT_MODEL", str(tmp_path / "nowhere.tflite"))
    chat_module.default_recognizer.cache_clear()
    chat = DigitChat(feedback=store)
    draw_with_mouse(chat, SEVEN)
    chat.send_button.click()
    chat_module.default_recognizer.cache_clear()

    assert chat.messages[-1].kind == "error"
    assert "No model file" in chat.messages[-1].text


def test_the_default_model_loads_once_per_kernel(
    store: FeedbackStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[int] = []

    def fake_load(cls: type[Recognizer], path: object = None) -> Recognizer:
        loads.append(1)
        return Recognizer(FakeRuntime(confident(3)))

    monkeypatch.setattr(Recognizer, "load", classmethod(fake_load))
    chat_module.default_recognizer.cache_clear()
    first, second = DigitChat(feedback=store), DigitChat(feedback=store)
    assert loads == []  # showing the widget does not load the model
    for chat in (first, second, first):
        draw_with_mouse(chat, SEVEN)
        chat.send_button.click()
    chat_module.default_recognizer.cache_clear()

    assert len(loads) == 1
    assert [m.text for m in bot_messages(second)][-1] == "It's a 3 (100% sure)."


def test_two_widgets_on_one_page_keep_their_own_state(store: FeedbackStore) -> None:
    left = DigitChat(Recognizer(FakeRuntime(confident(2))), store)
    right = DigitChat(Recognizer(FakeRuntime(confident(5))), store)
    draw_with_mouse(left, SEVEN)
    event(right, "mouse_down", x=20, y=20)  # right's pen is down...
    draw_with_mouse(left, ONE)  # ...while left gets a whole stroke
    left.send_button.click()

    assert right.pad.recorder.drawing and len(right.pad.strokes) == 1
    assert len(right.messages) == 1 and len(left.messages) == 3
    assert left.messages[-1].text.startswith("It's a 2")
    assert left.pad.canvas is not right.pad.canvas and left.transcript is not right.transcript


def test_displaying_the_chat_shows_its_widget_tree(chat: DigitChat) -> None:
    bundle = chat._repr_mimebundle_()

    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == chat.model_id
    assert chat.children == (chat.transcript, chat.children[1])  # the transcript above the pad row
    assert chat.pad.canvas in chat.children[1].children


# ------------------------------------------------------------------ a real widget


def test_the_chat_is_a_vbox_that_composes_in_layouts(chat: DigitChat) -> None:
    other = Label("beside the chat")
    row = HBox([chat, other])

    assert isinstance(chat, VBox) and row.children == (chat, other)
    assert row.get_state()["children"] == [f"IPY_MODEL_{chat.model_id}", f"IPY_MODEL_{other.model_id}"]
    draw_with_mouse(chat, SEVEN)  # still a working chat inside the layout
    chat.send_button.click()
    assert chat.messages[-1].text == "It's a 7 (100% sure)."


def test_observing_reading_fires_on_each_answer_with_the_reading_shown(chat: DigitChat) -> None:
    seen: list[Any] = []
    chat.observe(lambda change: seen.append((change["old"], change["new"])), "reading")
    assert chat.reading is None
    draw_with_mouse(chat, SEVEN)
    chat.send_button.click()
    draw_with_mouse(chat, SEVEN)  # the same drawing again is a new answer: it fires again
    chat.send_button.click()

    assert len(seen) == 2
    first, second = (chat.messages[2].answer, chat.messages[4].answer)
    assert seen == [(None, first), (first, second)] and chat.reading is second
    assert isinstance(second, Prediction) and second.digit == 7


def test_reading_is_a_number_for_a_photo_of_a_number_and_stays_on_errors(chat: DigitChat) -> None:
    seen: list[Any] = []
    chat.observe(lambda change: seen.append(change["new"]), "reading")
    strokes = [Stroke(tuple((x * 0.6 + 130 * i, y * 0.6 + 40) for x, y in SEVEN), 12) for i in range(3)]
    upload(chat, png_of(strokes, (440, 260)), "number.png")
    upload(chat, b"not a picture", "notes.txt")
    chat.send_button.click()  # an empty pad: a hint, not an answer

    assert len(seen) == 1 and isinstance(chat.reading, NumberReading) and chat.reading.text == "777"
    assert chat.reading is chat.messages[2].answer


def test_reading_is_kept_on_each_instance_and_not_synced_to_the_page(store: FeedbackStore) -> None:
    left = DigitChat(Recognizer(FakeRuntime(confident(2))), store)
    right = DigitChat(Recognizer(FakeRuntime(confident(5))), store)
    draw_with_mouse(left, SEVEN)
    left.send_button.click()

    assert isinstance(left.reading, Prediction) and left.reading.digit == 2 and right.reading is None
    assert "reading" not in left.get_state()  # a Python object for notebook code, not widget state


def test_the_widget_protocol_send_still_messages_the_page(chat: DigitChat) -> None:
    chat.focus()  # ipywidgets sends {"do": "focus"} through send(content): not a drawing
    draw_with_mouse(chat, SEVEN)
    chat.send()  # no content: send the drawing, as the Send button does

    assert [m.kind for m in chat.messages] == ["hint", "image", "answer"]


# ------------------------------------------------------------------ live mode


def test_live_mode_is_throttled_while_drawing_and_updates_on_pen_up(
    chat: DigitChat, runtime: FakeRuntime, clock: Clock
) -> None:
    chat.live_toggle.value = True
    assert runtime.calls == 0 and "draw to see" in chat.live_line.value

    event(chat, "mouse_down", x=80, y=60)  # first change: answers at once
    assert runtime.calls == 1 and "live: I&#x27;m not sure: maybe a 7" in chat.live_line.value  # a dot
    for x in range(90, 200, 5):  # 22 moves within 0.3 s: no more predictions
        clock.now += 0.01
        event(chat, "mouse_move", x=x, y=60)
    assert runtime.calls == 1
    clock.now += 0.1
    event(chat, "mouse_move", x=190, y=120)
    assert runtime.calls == 2
    event(chat, "mouse_up", x=190, y=120)  # the finished stroke always gets an answer
    assert runtime.calls == 3
    assert len(chat.messages) == 1  # live answers do not fill the transcript


def test_live_mode_off_never_predicts_while_drawing(chat: DigitChat, runtime: FakeRuntime) -> None:
    draw_with_mouse(chat, SEVEN)
    draw_with_finger(chat, ONE)

    assert runtime.calls == 0
    assert chat.live_line.value.count("live:") == 0


def test_live_mode_follows_undo_and_clear(chat: DigitChat) -> None:
    chat.live_toggle.value = True
    draw_with_mouse(chat, SEVEN)
    assert chat.live_prediction is not None
    chat.clear_button.click()

    assert chat.live_prediction is None
    assert "draw to see my guess" in chat.live_line.value


# ------------------------------------------------------------------ uploads


def test_uploading_a_photo_of_one_digit_answers_it(chat: DigitChat) -> None:
    upload(chat, png_of([Stroke(tuple(SEVEN), 18)], (280, 280)), "seven.png")

    _, photo, reply = chat.messages
    assert (photo.role, photo.kind, photo.text) == ("user", "image", "seven.png")
    assert reply.kind == "answer" and reply.text.startswith("It's a 7")
    assert chat.upload.value == ()  # emptied, so the same file can be sent again


def test_uploading_a_photo_of_a_number_reads_every_digit(chat: DigitChat) -> None:
    strokes = [Stroke(tuple((x * 0.6 + 130 * i, y * 0.6 + 40) for x, y in SEVEN), 12) for i in range(3)]
    upload(chat, png_of(strokes, (440, 260)), "number.png")

    reply = chat.messages[-1]
    assert reply.kind == "number"
    assert reply.text.startswith("It reads 777")
    assert reply.html.count("<img") == 3


def test_uploading_a_file_that_is_no_image_gets_a_friendly_answer(chat: DigitChat) -> None:
    upload(chat, b"%PDF-1.4 definitely not a picture", "notes.pdf")

    photo, reply = chat.messages[-2:]
    assert (photo.kind, photo.text) == ("text", "notes.pdf")
    assert reply.kind == "error"


# ------------------------------------------------------------------ corrections


def _correction_row(chat: DigitChat) -> HBox:
    """Return the row under the last answer bubble."""
    box = chat.transcript.children[0]  # newest first: the transcript is laid out bottom-up
    row = box.children[1]
    assert isinstance(row, HBox)
    return row


def test_wrong_stores_the_28x28_and_the_label_in_the_feedback_db(
    chat: DigitChat, store: FeedbackStore, tmp_path: Path
) -> None:
    draw_with_mouse(chat, SEVEN)
    chat.send_button.click()
    answer = chat.messages[-1].answer
    row = _correction_row(chat)
    wrong = row.children[0]
    assert isinstance(wrong, Button) and wrong.description == "Wrong?"
    wrong.click()
    picks = [b for b in row.children if isinstance(b, Button)]
    assert [b.description for b in picks] == [str(d) for d in range(10)]
    picks[1].click()

    assert store.count() == 1 and store.count("tester") == 1
    assert store.stats()["by_source"] == {"widget": 1}
    out = tmp_path / "export.npz"
    store.export(out)
    saved = np.load(out)
    assert saved["y"].tolist() == [1] and saved["predicted"].tolist() == [7]
    assert isinstance(answer, Prediction)
    np.testing.assert_array_equal(saved["x"][0], np.rint(answer.input28 * 255).astype(np.uint8))
    assert isinstance(row.children[0], Label) and row.children[0].value == "you said: 1"
    assert chat.messages[-1].kind == "thanks"


def test_corrections_go_to_the_configured_db_when_none_is_given(
    runtime: FakeRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MNIST_BOT_DB", str(tmp_path / "bot.db"))
    chat = DigitChat(Recognizer(runtime), user="someone")
    draw_with_mouse(chat, ONE)
    chat.send_button.click()
    row = _correction_row(chat)
    row.children[0].click()
    row.children[5].click()  # label "4": the children are the prompt, then 0-9

    with FeedbackStore(tmp_path / "bot.db") as bot_store:
        assert bot_store.count("someone") == 1
        assert bot_store.labelled()[1].tolist() == [4]


def test_thumbnail_of_a_photo_is_small_and_upright() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (1200, 600), "white").save(buffer, format="JPEG")
    thumb = Image.open(io.BytesIO(chat_module.photo_thumbnail(buffer.getvalue()) or b""))

    assert thumb.size == (96, 48)
    assert chat_module.photo_thumbnail(b"not an image") is None


# ------------------------------------------------------------------ numbers and pages


def small_sevens(rows: int, per_row: int, pitch: tuple[int, int] = (80, 120)) -> list[Point]:
    """Return the corners of small sevens laid out in rows on the pad."""
    return [(10 + c * pitch[0], r * pitch[1]) for r in range(rows) for c in range(per_row)]


def seven_at(origin: Point, scale: float = 0.35) -> list[Point]:
    """Return SEVEN shrunk by `scale` and moved to `origin`."""
    return [(origin[0] + x * scale, origin[1] + y * scale) for x, y in SEVEN]


def bubble_picture(html: str) -> Image.Image:
    """Decode the picture inline in a bubble as RGB."""
    data = html.split("data:image/png;base64,", maxsplit=1)[1].split('"', maxsplit=1)[0]
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


def page_blue_pixels(html: str) -> int:
    """Count the sure-box blue pixels of the annotated picture inline in a page bubble."""
    from mnist_bot.annotate import SURE_COLOUR

    picture = np.asarray(bubble_picture(html))
    return int((picture == SURE_COLOUR).all(axis=-1).sum())


def test_uploading_a_page_shows_its_lines_and_the_annotated_picture(chat: DigitChat) -> None:
    strokes = [
        Stroke(tuple((x * 0.6 + 130 * i, y * 0.6 + 40 + 200 * row) for x, y in SEVEN), 12)
        for row, count in enumerate([3, 2])
        for i in range(count)
    ]
    seen: list[Any] = []
    chat.observe(lambda change: seen.append(change["new"]), "reading")
    upload(chat, png_of(strokes, (440, 460)), "page.png")

    reply = chat.messages[-1]
    assert reply.kind == "page" and reply.text == "I read 2 lines:\n777\n77"
    assert '<pre class="digitchat-page-text"' in reply.html and "777\n77</pre>" in reply.html
    assert reply.html.count("<img") == 1 and page_blue_pixels(reply.html) > 5 * 40  # five boxes
    assert isinstance(chat.reading, PageReading) and seen == [chat.reading] and reply.answer is chat.reading


def test_digits_drawn_side_by_side_on_the_pad_read_as_a_number(chat: DigitChat) -> None:
    for origin in small_sevens(1, 3):
        draw_with_mouse(chat, seven_at((origin[0], 100)))
    chat.send_button.click()

    reply = chat.messages[-1]
    assert reply.kind == "number" and reply.text.startswith("It reads 777")


def test_rows_drawn_on_the_pad_read_as_a_page_drawn_on_white(chat: DigitChat) -> None:
    for origin in small_sevens(2, 3):
        draw_with_mouse(chat, seven_at((origin[0], origin[1] + 20)))
    chat.send_button.click()

    reply = chat.messages[-1]
    assert reply.kind == "page" and reply.text == "I read 2 lines:\n777\n777"
    assert bubble_picture(reply.html).getpixel((2, 2)) == (
        255,
        255,
        255,
    )  # the pad's clear paper is shown white, not black
    assert page_blue_pixels(reply.html) > 6 * 30


def how_button(chat: DigitChat) -> Button:
    """Return the "How I read it" button under the newest answer."""
    row = chat.transcript.children[0].children[1]
    return next(b for b in row.children if isinstance(b, Button) and b.description == "How I read it")


def test_how_i_read_it_posts_the_strip_of_stages_of_a_drawing(chat: DigitChat) -> None:
    draw_with_mouse(chat, SEVEN)
    chat.send_button.click()
    how_button(chat).click()

    shown = chat.messages[-1]
    assert (shown.role, shown.kind, shown.text) == ("bot", "explain", chat_module.HOW_TEXT)
    strip = bubble_picture(shown.html)
    assert strip.width > 4 * strip.height  # one panel per stage, side by side
    assert np.asarray(strip)[10:100, 10:100].min() < 100  # the decoded drawing is shown: dark ink on white


def test_how_i_read_it_is_offered_for_numbers_and_pages_too(chat: DigitChat) -> None:
    strokes = [Stroke(tuple((x * 0.6 + 130 * i, y * 0.6 + 40) for x, y in SEVEN), 12) for i in range(3)]
    upload(chat, png_of(strokes, (440, 260)), "number.png")
    how_button(chat).click()
    assert chat.messages[-1].kind == "explain" and chat.messages[-2].kind == "number"

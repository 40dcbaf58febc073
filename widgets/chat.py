"""DigitChat: a chat transcript above a drawing pad; draw a digit or upload a photo, get the answer."""

from __future__ import annotations

import functools
import getpass
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ipywidgets import HTML, Button, FileUpload, HBox, IntSlider, Label, Layout, ToggleButton, VBox, Widget
from traitlets import Instance, Union

from mnist_bot import (
    InvalidImageError,
    NumberReading,
    PageReading,
    Prediction,
    Recognizer,
    RecognizerError,
)
from mnist_bot.annotate import annotate
from mnist_bot.config import load_settings
from mnist_bot.decode import ImageInput, open_image
from mnist_bot.explain import explain, strip
from widgets import bubbles
from widgets.pad import DrawingPad
from widgets.raster import DEFAULT_PEN_WIDTH, PAD_SIZE, image_to_png, mask_to_png, mask_to_rgba

if TYPE_CHECKING:
    from mnist_bot.feedback import FeedbackStore

log = logging.getLogger(__name__)

Answer = Prediction | NumberReading | PageReading
PAGE_SIDE = 480  # the annotated picture of a page, in the chat
LIVE_INTERVAL_S = 0.3  # at most ~3 live predictions a second keeps the kernel free for drawing events
THUMB_SIDE = 96
GREETING = (
    "Hi! Draw a digit (or a number, or rows of them) on the pad and press Send (or Enter), "
    "or upload a photo of a digit, a number or a page."
)
EMPTY_PAD = "Draw a digit first: the pad is empty."
APOLOGY = "Sorry, something went wrong on my side. Please try again."
LIVE_HINT = "live: draw to see my guess"
HOW_TEXT = "How I read it: the ink, the mask, the blobs I considered, the digits I chose and each 28x28."


@dataclass(frozen=True)
class ChatMessage:
    """One transcript entry: who said it, what kind it is, its plain text and the HTML shown."""

    role: str  # "user" | "bot"
    # user: "image" | "text"; bot: "answer" | "number" | "page" | "explain" | "hint" | "error" | "apology"
    # | "thanks"
    kind: str
    text: str
    html: str
    answer: Answer | None = None


@functools.cache
def default_recognizer() -> Recognizer:
    """Load the configured model once per kernel, shared by every DigitChat."""
    return Recognizer.load()


def read_any(recognizer: Recognizer, image: ImageInput) -> Answer:
    """Read a digit, a number (one line) or a page (several lines), as the bot does."""
    reading = recognizer.read(image)
    if len(reading.lines) > 1:
        return reading
    return reading.lines[0] if len(reading.digits) >= 2 else reading.digits[0]


read_photo = read_any  # the name earlier notebooks imported


def explain_png(recognizer: Recognizer, image: ImageInput) -> bytes:
    """Return the strip of every stage of reading `image` as PNG."""
    return image_to_png(strip(explain(recognizer, image)))


def annotated_png(image: ImageInput, page: PageReading, side: int = PAGE_SIDE) -> bytes:
    """Return the page's picture with every digit's box and reading drawn on it, as PNG."""
    return image_to_png(annotate(image, page), side)


def photo_thumbnail(data: bytes, side: int = THUMB_SIDE) -> bytes | None:
    """Return a small upright PNG of an uploaded photo, or None when it is not an image we can read."""
    try:
        image = open_image(data)  # the core's decoder: size limits, HEIC, EXIF rotation
        return image_to_png(image.convert("RGB"), side)
    except (InvalidImageError, OSError):
        return None


def _default_user() -> str:
    """Name the notebook's user for the feedback store, which only keeps a salted hash of it."""
    try:
        return f"widget:{getpass.getuser()}"
    except (KeyError, OSError):  # containers without a passwd entry for the uid
        return "widget"


class DigitChat(VBox):
    """A notebook chat: draw a digit (mouse, pen or finger) or upload a photo; the bot answers.

    A `VBox`, so it composes in layouts (`HBox([DigitChat(), other])`). `reading` holds the last
    answer shown (a `Prediction`, a `NumberReading` for a number, a `PageReading` for several
    lines): observe it with
    `chat.observe(fn, "reading")` to react to each answer. It stays in Python, never synced to the page.
    """

    reading = Union(
        [Instance(Prediction), Instance(NumberReading), Instance(PageReading)],
        default_value=None,
        allow_none=True,
    )

    def __init__(
        self,
        recognizer: Recognizer | None = None,
        feedback: FeedbackStore | None = None,
        *,
        user: str | None = None,
        live_interval_s: float = LIVE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        pad_size: int = PAD_SIZE,
    ) -> None:
        self._recognizer = recognizer
        self._feedback = feedback
        self.user = user or _default_user()
        self.live_interval_s = live_interval_s
        self._clock = clock
        self._last_live = -math.inf
        self.live_prediction: Prediction | None = None
        self.messages: list[ChatMessage] = []
        self._message_widgets: list[Widget] = []
        self.pad = DrawingPad(pad_size)
        self._build_controls()
        super().__init__(self._children(), layout=Layout(max_width="560px", gap="6px"))
        self._wire()
        self._say_bot(GREETING, "hint")

    # ------------------------------------------------------------------ building

    def _build_controls(self) -> None:
        """Create the buttons, slider, toggle, upload and the live line."""
        small = Layout(width="150px")
        self.send_button = Button(
            description="Send", button_style="primary", icon="paper-plane", layout=small
        )
        self.undo_button = Button(
            description="Undo", icon="undo", layout=small, tooltip="Remove the last stroke"
        )
        self.clear_button = Button(description="Clear", icon="eraser", layout=small)
        self.pen_slider = IntSlider(
            value=DEFAULT_PEN_WIDTH,
            min=6,
            max=40,
            description="pen",
            layout=Layout(width="210px"),
            style={"description_width": "30px"},
        )
        self.live_toggle = ToggleButton(value=False, description="live", icon="bolt", layout=small)
        self.upload = FileUpload(accept="image/*", multiple=False, description="photo", layout=small)
        self.live_line = HTML(bubbles.live(None, ""), layout=Layout(width="210px"))
        self.transcript = VBox(layout=_transcript_layout())

    def _children(self) -> list[Widget]:
        """Put the transcript above the pad, the controls and the live answer beside the pad."""
        controls = VBox(
            [
                self.send_button,
                self.undo_button,
                self.clear_button,
                self.live_toggle,
                self.pen_slider,
                self.upload,
                self.live_line,  # beside the pad, so the live answer is in view while drawing
            ],
            layout=Layout(gap="4px", margin="0 0 0 8px", width="220px"),
        )
        pad_row = HBox([self.pad.canvas, controls], layout=Layout(align_items="flex-start"))
        return [self.transcript, pad_row]

    def _wire(self) -> None:
        """Connect every event; each handler is guarded so no exception escapes into the notebook."""
        self.send_button.on_click(self._guarded(lambda _: self.send_drawing()))
        self.undo_button.on_click(self._guarded(lambda _: self.undo()))
        self.clear_button.on_click(self._guarded(lambda _: self.clear()))
        self.pen_slider.observe(self._guarded(self._on_pen_width), names="value")
        self.live_toggle.observe(self._guarded(self._on_live_toggle), names="value")
        self.upload.observe(self._guarded(self._on_upload), names="value")
        self.pad.on_change = self._guarded(self._on_pad_change)
        self.pad.on_enter = self._guarded(self.send_drawing)

    # ------------------------------------------------------------------ services

    def recognizer(self) -> Recognizer:
        """Return the injected recognizer, or the kernel-wide default model."""
        return self._recognizer if self._recognizer is not None else default_recognizer()

    def feedback_store(self) -> FeedbackStore:
        """Return the corrections store: the injected one, or the bot's SQLite file from the settings."""
        if self._feedback is None:
            from mnist_bot.feedback import FeedbackStore

            self._feedback = FeedbackStore(load_settings().db_path)
        return self._feedback

    # ------------------------------------------------------------------ user actions

    def send(self, content: Any = None, buffers: Any = None) -> None:
        """Send the drawing; with `content`, send ipywidgets' custom message to the page instead."""
        # DOMWidget.focus() and blur() call send(content): the widget protocol keeps working.
        if content is None:
            self.send_drawing()
        else:
            super().send(content, buffers)

    def send_drawing(self) -> None:
        """Send the drawing: show it as the user's bubble, clear the pad and answer."""
        if not self.pad.strokes:
            self._say_bot(EMPTY_PAD, "hint")
            return
        mask = self.pad.ink_mask()
        self._say_user(
            bubbles.user_image(mask_to_png(mask, THUMB_SIDE), "your drawing"), "image", "(drawing)"
        )
        self.pad.clear()
        self._show_live(None, LIVE_HINT if self.live_toggle.value else "")
        image = mask_to_rgba(mask)
        self._answer(lambda recognizer: read_any(recognizer, image), image)

    def send_photo(self, data: bytes, name: str = "photo") -> None:
        """Send an uploaded photo: show a thumbnail and answer with a digit or a number."""
        thumbnail = photo_thumbnail(data)
        if thumbnail is None:
            self._say_user(bubbles.user_text(name), "text", name)
        else:
            self._say_user(bubbles.user_image(thumbnail, name), "image", name)
        self._answer(lambda recognizer: read_any(recognizer, data), data)

    def undo(self) -> None:
        """Remove the last stroke."""
        self.pad.undo()
        self._refresh_live()

    def clear(self) -> None:
        """Remove every stroke."""
        self.pad.clear()
        self._refresh_live()

    # ------------------------------------------------------------------ answering

    def _answer(self, compute: Callable[[Recognizer], Answer], image: ImageInput) -> None:
        """Run the recogniser and post its answer; errors become friendly bubbles, never exceptions."""
        try:
            result = compute(self.recognizer())
            picture = annotated_png(image, result) if isinstance(result, PageReading) else b""
        except RecognizerError as exc:
            self._say_bot(str(exc), "error")
            return
        except Exception:
            log.exception("DigitChat could not answer")
            self._say_bot(APOLOGY, "apology")
            return
        row = self._answer_row(result, image)
        if isinstance(result, PageReading):
            html = bubbles.page(result, picture)
            self._post(ChatMessage("bot", "page", bubbles.page_text(result), html, result), row)
        elif isinstance(result, NumberReading):
            text, html = bubbles.number_text(result), bubbles.number(result)
            self._post(ChatMessage("bot", "number", text, html, result), row)
        else:
            text, html = bubbles.answer_text(result), bubbles.answer(result)
            self._post(ChatMessage("bot", "answer", text, html, result), row)
        self.reading = result  # after the bubble is shown, so observers see the transcript with it

    def _answer_row(self, result: Answer, image: ImageInput) -> HBox:
        """Return the buttons under an answer: "Wrong?" for one digit, and "How I read it"."""
        row = HBox(layout=Layout(margin="0 0 6px 6px", flex_flow="row wrap", align_items="center"))
        how = Button(
            description="How I read it", layout=Layout(width="auto"), tooltip="Show each stage of the reading"
        )
        how.on_click(self._guarded(lambda _: self.show_how(image)))
        if not isinstance(result, Prediction):
            row.children = (how,)
            return row
        wrong = Button(description="Wrong?", layout=Layout(width="auto"), tooltip="Tell me the right digit")
        wrong.on_click(self._guarded(lambda _: self._ask_label(row, result)))
        row.children = (wrong, how)
        return row

    def show_how(self, image: ImageInput) -> None:
        """Post the strip of every stage of reading `image` (as `mnist-bot explain` draws it)."""
        try:
            picture = explain_png(self.recognizer(), image)
        except RecognizerError as exc:
            self._say_bot(str(exc), "error")
            return
        self._post(ChatMessage("bot", "explain", HOW_TEXT, bubbles.explain(picture, HOW_TEXT)))

    def _ask_label(self, row: HBox, prediction: Prediction) -> None:
        """Replace the "Wrong?" button with one button per digit."""
        picks = []
        for digit in range(10):
            button = Button(description=str(digit), layout=Layout(width="34px"))
            button.on_click(self._guarded(functools.partial(self._store_label, row, prediction, digit)))
            picks.append(button)
        row.children = (Label("It was:"), *picks)

    def _store_label(self, row: HBox, prediction: Prediction, label: int, _button: object = None) -> None:
        """Save the 28x28 the model saw with the user's label, in the same store as the bot."""
        self.feedback_store().add(prediction.input28, prediction.digit, label, self.user, "widget")
        row.children = (Label(f"you said: {label}"),)
        self._say_bot(f"Thanks! I saved this drawing as {bubbles.a_digit(label)} to learn from it.", "thanks")

    # ------------------------------------------------------------------ live mode

    def _on_pad_change(self, finished: bool) -> None:
        """Update the live answer at most every `live_interval_s` while drawing, and when a stroke ends."""
        if not self.live_toggle.value:
            return
        now = self._clock()
        if not finished and now - self._last_live < self.live_interval_s:
            return
        self._last_live = now
        self._refresh_live()

    def _on_live_toggle(self, change: dict[str, Any]) -> None:
        """Show a live answer at once when switched on; blank the line when off."""
        self._refresh_live()

    def _refresh_live(self) -> None:
        """Recompute the live answer from the pad (only in live mode)."""
        if not self.live_toggle.value:
            self._show_live(None, "")
            return
        if not self.pad.strokes:
            self._show_live(None, LIVE_HINT)
            return
        try:
            prediction = self.recognizer().predict(mask_to_rgba(self.pad.ink_mask()))
        except RecognizerError as exc:
            self._show_live(None, f"live: {exc}")
            return
        self._show_live(prediction)

    def _show_live(self, prediction: Prediction | None, hint: str = "") -> None:
        """Write the live line beside the pad."""
        self.live_prediction = prediction
        self.live_line.value = bubbles.live(prediction, hint)

    # ------------------------------------------------------------------ other events

    def _on_pen_width(self, change: dict[str, Any]) -> None:
        """Use the slider's width for the next strokes."""
        self.pad.pen_width = float(change["new"])

    def _on_upload(self, change: dict[str, Any]) -> None:
        """Answer each uploaded file, then empty the upload so the same file can be sent again."""
        files: Sequence[Any] = change["new"]
        if not files:
            return
        for file in files:
            self.send_photo(bytes(file["content"]), str(file["name"]))
        self.upload.value = ()

    # ------------------------------------------------------------------ transcript

    def _say_user(self, html: str, kind: str, text: str) -> None:
        """Post a user bubble."""
        self._post(ChatMessage("user", kind, text, html))

    def _say_bot(self, text: str, kind: str) -> None:
        """Post a plain bot bubble."""
        self._post(ChatMessage("bot", kind, text, bubbles.bot_text(text, kind)))

    def _post(self, message: ChatMessage, extra: Widget | None = None) -> None:
        """Append a message (and any widget under it) to the transcript."""
        self.messages.append(message)
        # flex "0 0 auto": a full transcript scrolls instead of squeezing the bubbles.
        if extra is None:
            self._message_widgets.append(HTML(message.html, layout=Layout(width="100%", flex="0 0 auto")))
        else:
            bubble = HTML(message.html, layout=Layout(width="100%"))
            self._message_widgets.append(VBox([bubble, extra], layout=Layout(flex="0 0 auto")))
        # The transcript's flex direction is reversed so the browser keeps it scrolled to the newest.
        self.transcript.children = tuple(reversed(self._message_widgets))

    def _guarded(self, handler: Callable[..., None]) -> Callable[..., None]:
        """Wrap an event handler: log any exception and apologise in the chat instead of raising."""

        def run(*args: Any) -> None:
            try:
                handler(*args)
            except Exception:
                log.exception("DigitChat event handler failed")
                self._say_bot(APOLOGY, "apology")

        return run


def _transcript_layout() -> Layout:
    """Lay the transcript out newest-at-bottom and scrollable."""
    return Layout(
        flex_flow="column-reverse",
        overflow_y="auto",
        max_height="420px",
        min_height="60px",
        border="1px solid #e0e0e0",
        padding="6px",
        width="100%",
    )

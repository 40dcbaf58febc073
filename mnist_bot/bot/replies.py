"""The bot's words: every reply text, built from predictions by pure functions."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from mnist_bot import NumberReading, PageReading, Prediction

DOWNLOAD_LIMIT_BYTES = 20 * 1024 * 1024  # the Bot API refuses getFile above this size
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".heic", ".heif")

GREETING = (
    "Hi! Send me a photo of a handwritten digit and I'll tell you which one it is.\n"
    "A photo of a whole number works too: I read it left to right.\n\n"
    "Tips for a good photo:\n"
    "• dark pen on plain light paper, one digit (or one number) in the middle;\n"
    "• get close, so the digit fills about half of the picture;\n"
    "• good light and no strong shadows, held straight.\n\n"
    "Under each answer, “What I saw” shows the picture the model looked at, and “Wrong? Fix it” "
    "lets you tell me the right digit so the model can learn.\n"
    "/about: the model and what I keep · /forget: delete everything I stored for you"
)
EMPTY = "I can't see a digit; try a closer photo with the digit in the middle."
APOLOGY = "Sorry, something went wrong on my side. Please try again in a minute."
NOT_AN_IMAGE = "I can read photos and image files (PNG, JPEG, WebP, HEIC). Send the digit as a photo."
HINT = (
    "Send me a photo of a handwritten digit (or a number) and I'll read it. /help has tips for a good photo."
)
HINTS_BY_KIND: Mapping[str, str] = {
    "text": HINT,
    "sticker": "Nice sticker! I only read handwritten digits though: send me a photo of one.",
    "voice": "I can't listen, only look: send me a photo of a handwritten digit.",
    "audio": "I can't listen, only look: send me a photo of a handwritten digit.",
    "video": "Videos are too much for me: send a single photo of a handwritten digit.",
    "video_note": "Videos are too much for me: send a single photo of a handwritten digit.",
    "animation": "GIFs are too lively for me: send a still photo of a handwritten digit.",
}
PRIVATE = "Sorry, this bot is private."
EXPIRED = "I no longer have that answer (deleted with /forget, or too old). Send the photo again."
NOT_YOURS = "Only the person who sent the photo can correct it."
PICK_POSITION = "Which digit did I get wrong?"
PICK_DIGIT = "Which digit is it really?"
ANSWER_NOTE = "\n\n✅ "
PHOTO_TIP = "A closer, sharper photo of a single digit helps."
PICK_LINE = "Which line has the wrong digit?"
HOW_CAPTION = (
    "How I read it, left to right: your photo, the ink made bright, the ink mask, the blobs I "
    "considered, the digits I chose (green sure, orange unsure) and each 28×28 the model saw."
)
PHOTO_GONE = "I can no longer fetch your photo from Telegram; send it again to see how I read it."
MANY_DIGITS = 12  # more digits than this in one line are answered as a page: a picture, not a list
MESSAGE_LIMIT = 4096  # characters in a Telegram message
CAPTION_LIMIT = 1024  # characters in a photo's caption
LIST_UNSURE = 10  # unsure digits named under a page's text, at most
PAGE_LINE = re.compile(r"^(\d+): (\d+)$")  # "2: 59265", a page line as page_reply writes it


def percent(probability: float) -> str:
    """Format a probability as a whole percentage that never claims certainty."""
    value = round(probability * 100)
    return f"{min(max(value, 1), 99) if 0 < probability < 1 else value}%"


def runner_ups(prediction: Prediction, top: int = 3) -> list[tuple[int, float]]:
    """Return the other likely digits (at least 5%), most likely first."""
    return [(d, p) for d, p in prediction.ranked(top) if d != prediction.digit and p >= 0.05]


def _alternatives(prediction: Prediction) -> str:
    """Say which other digits it could be, e.g. "1 (30%) or 9 (10%)"."""
    parts = [f"{d} ({percent(p)})" for d, p in runner_ups(prediction)]
    return " or ".join(parts)


def digit_reply(prediction: Prediction) -> str:
    """Answer for one digit: "7, 98% sure", with runner-ups when unsure."""
    sure = percent(prediction.confidence)
    if not prediction.unsure:
        return f"{prediction.digit}, {sure} sure"
    others = _alternatives(prediction)
    if not others:  # the model is confident: the shape of the ink is what looks odd
        text = f"Probably {prediction.digit} ({sure}), though it doesn't look much like a handwritten digit."
    else:
        text = f"Maybe {prediction.digit}, only {sure} sure. It could also be {others}."
    return text + "\n" + PHOTO_TIP


def number_reply(reading: NumberReading) -> str:
    """Answer for a number: "I read 2048" and each digit's confidence."""
    lines = [f"I read {reading.text}" + (" (not sure about every digit)" if reading.unsure else "")]
    for prediction in reading.digits:
        line = f"{prediction.digit}: {percent(prediction.confidence)}"
        if prediction.unsure and runner_ups(prediction):
            line += f" (or {_alternatives(prediction)})"
        lines.append(line)
    return "\n".join(lines)


def reading_reply(digits: Sequence[Prediction]) -> str:
    """Answer for what was found: one digit or a number."""
    if len(digits) == 1:
        return digit_reply(digits[0])
    return number_reply(NumberReading(text="".join(str(p.digit) for p in digits), digits=list(digits)))


def is_page(page: PageReading) -> bool:
    """Tell whether a reading is answered as a page: two or more lines, or many digits."""
    return len(page.lines) > 1 or len(page.digits) > MANY_DIGITS


def _page_head(page: PageReading) -> str:
    """Say how much was read, e.g. "I read 3 lines, 12 digits (not sure about 2 of them):"."""
    lines, digits, unsure = len(page.lines), len(page.digits), sum(p.unsure for p in page.digits)
    what = f"{lines} line{'s' if lines != 1 else ''}, {digits} digits"
    doubt = f" (not sure about {unsure} of them, marked orange on the picture)" if unsure else ""
    return f"I read {what}{doubt}:"


def _unsure_notes(page: PageReading) -> list[str]:
    """Name the first unsure digits by line and position, with their runner-ups."""
    notes = []
    for number, line in enumerate(page.lines, 1):
        for index, prediction in enumerate(line.digits):
            if prediction.unsure:
                others = f" (or {_alternatives(prediction)})" if runner_ups(prediction) else ""
                notes.append(f"line {number}, {position_label(index, prediction.digit)}{others}")
    if len(notes) > LIST_UNSURE:
        notes = [*notes[:LIST_UNSURE], f"and {len(notes) - LIST_UNSURE} more"]
    return ["Not sure: " + "; ".join(notes)] if notes else []


def _fit(head: str, body: list[str], tail: list[str], limit: int) -> str:
    """Join head, body lines and tail, dropping body lines from the end (and saying so) to fit `limit`."""
    kept = list(body)
    while kept:
        more = len(body) - len(kept)
        extra = [f"… and {more} more line{'s' if more != 1 else ''} (all on the picture)"] if more else []
        text = "\n".join([head, *kept, *extra, *tail])
        if len(text) <= limit:
            return text
        kept.pop()
    return "\n".join([head, *tail])[:limit]


def page_reply(page: PageReading) -> str:
    """Answer for a page: its lines numbered ("1: 3141"), then the unsure digits, within a message."""
    body = [f"{n}: {line.text}" for n, line in enumerate(page.lines, 1)]
    if len(body) == 1:
        body = [page.text]  # one long line: no number, nothing to tell apart
    return _fit(_page_head(page), body, _unsure_notes(page), MESSAGE_LIMIT - 200)  # room for the note


def page_caption(page: PageReading) -> str:
    """Caption of the annotated photo: the page's text, shortened to a caption's limit."""
    head = "What I read, marked on your photo (orange: not sure):"
    return _fit(head, [line.text for line in page.lines], [], CAPTION_LIMIT)


def page_spans(text: str, count: int) -> list[tuple[int, int]] | None:
    """Recover each line's (first position, digit count) from a page answer's text; None if not all listed."""
    spans: list[tuple[int, int]] = []
    start = 0
    for line in text.split(ANSWER_NOTE, maxsplit=1)[0].splitlines():
        found = PAGE_LINE.match(line)
        if found and int(found[1]) == len(spans) + 1:
            spans.append((start, len(found[2])))
            start += len(found[2])
    return spans if len(spans) > 1 and start == count else None


def page_corrected_note(text: str, line: int, index: int, label: int) -> str:
    """Append (or replace) the correction note under a page answer."""
    base = text.split(ANSWER_NOTE, maxsplit=1)[0]
    return f"{base}{ANSWER_NOTE}You said the {ordinal(index + 1)} digit of line {line} is a {label}. Thanks!"


def line_label(first: int, last: int, digits: Sequence[int], width: int = 12) -> str:
    """Label a line (or a group of lines) on the line picker, e.g. "Line 2: 59265"."""
    shown = "".join(str(d) for d in digits)
    shown = shown if len(shown) <= width else shown[: width - 1] + "…"
    name = f"Line {first}" if first == last else f"Lines {first}-{last}"
    return f"{name}: {shown}"


def about(metadata: Mapping[str, Any], stored: int) -> str:
    """Describe the model, its measured accuracy and what the bot keeps."""
    name = metadata.get("architecture") or metadata.get("name") or "a small convolutional network"
    accuracy = metadata.get("test_accuracy")
    measured = (
        f"It gets {float(accuracy):.2%} of the 10,000 MNIST test digits right."
        if isinstance(accuracy, int | float)
        else "Its accuracy has not been measured for this model file."
    )
    return (
        f"I run {name}, trained on MNIST (70,000 handwritten digits). {measured}\n"
        "Phone photos are harder than MNIST scans, so check the confidence I give you.\n\n"
        "Privacy: I never keep your photos. For each answer I keep the 28×28 picture the model saw, "
        "what I answered and, if you fix it, the right digit, under a salted hash of your user id "
        "(not your name), so the buttons keep working and corrections can improve the model. "
        "Answers you never correct are deleted after 30 days.\n"
        f"I hold {stored} corrected digit{'s' if stored != 1 else ''} from you. /forget deletes everything."
    )


def forgotten(count: int) -> str:
    """Confirm /forget."""
    if count == 0:
        return "I had nothing stored for you, and still have nothing."
    return f"Done: I deleted the {count} digit{'s' if count != 1 else ''} I had stored for you."


def thanks(label: int, predicted: int) -> str:
    """Thank the user for a correction (or a confirmation)."""
    if label == predicted:
        return f"Thanks for confirming it's a {label}!"
    return f"Thanks! Saved as {label}; I'll learn from it."


def corrected_note(text: str, digits: Sequence[int]) -> str:
    """Append (or replace) the correction note under an answer's text."""
    base = text.split(ANSWER_NOTE, maxsplit=1)[0]
    known = "".join(str(d) for d in digits)
    what = f"a {known}" if len(digits) == 1 else known
    return f"{base}{ANSWER_NOTE}You said it's {what}. Thanks!"


def too_big(size: int | None) -> str:
    """Refuse a file above the bot download limit."""
    what = f"That file is {size / 1024 / 1024:.0f} MB" if size else "That file is too big"
    return (
        f"{what}: bots can only download files up to 20 MB. Send it as a photo instead (Telegram shrinks it)."
    )


def slow_down(per_minute: int) -> str:
    """Ask a user who sends too much to wait."""
    return f"That's a lot of pictures! I read up to {per_minute} a minute per person; please wait a moment."


def saw_caption(digits: Sequence[int], with_crop: bool) -> str:
    """Caption for the "What I saw" picture."""
    what = "the 28×28 picture the model saw" + (" for each digit" if len(digits) > 1 else "")
    if with_crop:
        return f"Left: the part of your photo I used. Right: {what}."
    return f"This is {what}."


def ordinal(n: int) -> str:
    """Write 1 as "1st", 2 as "2nd", 11 as "11th", 23 as "23rd"."""
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(n if n < 20 else n % 10, "th")
    return f"{n}{suffix}"


def position_label(index: int, digit: int) -> str:
    """Label a digit of a number on the picker keypad, e.g. "2nd: 0"."""
    return f"{ordinal(index + 1)}: {digit}"


def is_image_document(file_name: str | None, mime_type: str | None) -> bool:
    """Tell whether a document is an image file the core can decode."""
    if mime_type and mime_type.startswith("image/"):
        return True
    return bool(file_name and file_name.lower().endswith(IMAGE_EXTENSIONS))

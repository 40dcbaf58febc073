"""The bot's words: every reply text, built from predictions by pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mnist_bot import NumberReading, Prediction

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


def position_label(index: int, digit: int) -> str:
    """Label a digit of a number on the picker keypad, e.g. "2nd: 0"."""
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(index + 1 if index + 1 < 20 else (index + 1) % 10, "th")
    return f"{index + 1}{suffix}: {digit}"


def is_image_document(file_name: str | None, mime_type: str | None) -> bool:
    """Tell whether a document is an image file the core can decode."""
    if mime_type and mime_type.startswith("image/"):
        return True
    return bool(file_name and file_name.lower().endswith(IMAGE_EXTENSIONS))

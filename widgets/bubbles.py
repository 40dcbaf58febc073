"""HTML chat bubbles: the user's drawing or photo, and the bot's answer with bars and the 28x28 it saw."""

from __future__ import annotations

import base64
from html import escape

from mnist_bot import NumberReading, PageReading, Prediction
from widgets.raster import mask_to_png

USER_COLOUR = "#d9fdd3"
BOT_COLOUR = "#f1f3f4"
WARN_COLOUR = "#fff4e5"
BAR_COLOUR = "#1a73e8"
BAR_MUTED = "#9aa0a6"
INPUT_SIDE = 84  # the 28x28 shown three times larger, pixels kept square


def png_img(png: bytes, alt: str, css: str = "") -> str:
    """Return an <img> tag carrying `png` inline, so the transcript needs no files."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}" style="{css}"/>'


def _bubble(inner: str, role: str, colour: str, kind: str, extra: str = "") -> str:
    """Wrap `inner` in a rounded bubble aligned right for the user and left for the bot."""
    side = "flex-end" if role == "user" else "flex-start"
    return (
        f'<div class="digitchat-msg digitchat-{role} digitchat-{kind}" {extra} '
        f'style="display:flex;justify-content:{side};margin:2px 0">'
        f'<div style="background:{colour};border-radius:14px;padding:6px 10px;max-width:85%;'
        f'line-height:1.35;color:#202124">{inner}</div></div>'
    )


def user_image(png: bytes, caption: str) -> str:
    """Return the user's bubble showing their drawing or photo as a small image."""
    img = png_img(png, caption, "display:block;max-width:112px;max-height:112px;border-radius:8px")
    return _bubble(img, "user", USER_COLOUR, "image")


def user_text(text: str) -> str:
    """Return a plain user bubble (a file that is not a picture, say)."""
    return _bubble(escape(text), "user", USER_COLOUR, "text")


def bot_text(text: str, kind: str = "text") -> str:
    """Return a plain bot bubble: hints, friendly errors and apologies."""
    colour = WARN_COLOUR if kind in {"error", "apology"} else BOT_COLOUR
    return _bubble(escape(text), "bot", colour, kind)


def a_digit(digit: int) -> str:
    """Return the digit with its article: "a 7", "an 8"."""
    return f"an {digit}" if digit == 8 else f"a {digit}"


def answer_text(prediction: Prediction) -> str:
    """Say what the digit is, or that the answer is a guess and what the runner-up is."""
    (best, p1), (second, p2) = prediction.ranked(2)
    if prediction.unsure:
        return f"I'm not sure: maybe {a_digit(best)} ({p1:.0%}), or else {a_digit(second)} ({p2:.0%})."
    return f"It's {a_digit(best)} ({p1:.0%} sure)."


def number_text(reading: NumberReading) -> str:
    """Say which number was read, flagging a guess."""
    if reading.unsure:
        return f"I think it reads {reading.text}, but I'm not sure ({reading.confidence:.0%})."
    return f"It reads {reading.text} ({reading.confidence:.0%} sure)."


def probability_bars(probabilities: tuple[float, ...], top: int) -> str:
    """Return ten labelled horizontal bars, the chosen digit in colour."""
    rows = []
    for digit, p in enumerate(probabilities):
        colour = BAR_COLOUR if digit == top else BAR_MUTED
        rows.append(
            '<div style="display:flex;align-items:center;gap:4px;font-size:11px;height:13px">'
            f'<span style="width:8px">{digit}</span>'
            f'<span style="display:inline-block;width:100px;height:8px;background:#e8eaed;border-radius:4px">'
            f'<span style="display:block;width:{p * 100:.1f}px;height:8px;background:{colour};'
            f'border-radius:4px"></span></span><span>{p:.0%}</span></div>'
        )
    return "".join(rows)


def input_figure(prediction: Prediction, caption: str = "what I saw") -> str:
    """Return the 28x28 model input enlarged with square pixels, with a caption."""
    png = mask_to_png(prediction.input28, INPUT_SIDE)
    img = png_img(png, caption, "display:block;image-rendering:pixelated;border:1px solid #dadce0")
    return f'<figure style="margin:0;text-align:center;font-size:11px">{img}{escape(caption)}</figure>'


def answer(prediction: Prediction) -> str:
    """Return the bot's bubble for one digit: the answer, bars for all ten and the model's input."""
    headline = f'<div style="font-size:15px;font-weight:600">{escape(answer_text(prediction))}</div>'
    body = (
        '<div style="display:flex;gap:12px;align-items:flex-start;margin-top:4px">'
        f"<div>{probability_bars(prediction.probabilities, prediction.digit)}</div>"
        f"{input_figure(prediction)}</div>"
    )
    colour = WARN_COLOUR if prediction.unsure else BOT_COLOUR
    return _bubble(headline + body, "bot", colour, "answer", f'data-digit="{prediction.digit}"')


def number(reading: NumberReading) -> str:
    """Return the bot's bubble for a multi-digit number: the text and each digit's input and confidence."""
    headline = f'<div style="font-size:15px;font-weight:600">{escape(number_text(reading))}</div>'
    figures = "".join(
        input_figure(p, f"{p.digit} · {p.confidence:.0%}{' ?' if p.unsure else ''}") for p in reading.digits
    )
    body = f'<div style="display:flex;gap:6px;margin-top:4px;flex-wrap:wrap">{figures}</div>'
    colour = WARN_COLOUR if reading.unsure else BOT_COLOUR
    return _bubble(headline + body, "bot", colour, "number", f'data-number="{escape(reading.text)}"')


def page_text(reading: PageReading) -> str:
    """Say how many lines were read and how sure, the lines themselves following."""
    count = len(reading.lines)
    doubt = sum(p.unsure for p in reading.digits)
    flag = f", not sure about {doubt} digit{'s' if doubt != 1 else ''} (orange)" if doubt else ""
    return f"I read {count} lines{flag}:\n{reading.text}"


def page(reading: PageReading, annotated_png: bytes) -> str:
    """Return the bot's bubble for a page: its lines, and the picture with each digit boxed and read."""
    head, _, lines = page_text(reading).partition("\n")
    text = (
        f'<div style="font-size:15px;font-weight:600">{escape(head)}</div>'
        f'<pre class="digitchat-page-text" style="margin:4px 0;font-size:15px">{escape(lines)}</pre>'
    )
    img = png_img(
        annotated_png, "the page, each digit boxed", "display:block;max-width:100%;border-radius:6px"
    )
    colour = WARN_COLOUR if reading.unsure else BOT_COLOUR
    lines_attr = f'data-lines="{len(reading.lines)}"'
    return _bubble(text + img, "bot", colour, "page", lines_attr)


def explain(strip_png: bytes, text: str) -> str:
    """Return the bot's bubble with the strip of every stage of a reading, scrollable sideways."""
    img = png_img(strip_png, "each stage of the reading", "display:block;max-height:200px")
    inner = f'<div>{escape(text)}</div><div style="overflow-x:auto;max-width:100%">{img}</div>'
    return _bubble(inner, "bot", BOT_COLOUR, "explain")


def live(prediction: Prediction | None, hint: str = "") -> str:
    """Return the small live-answer line under the pad."""
    text = hint if prediction is None else f"live: {answer_text(prediction)}"
    style = "font-size:12px;color:#5f6368;min-height:16px"
    return f'<div class="digitchat-live" style="{style}">{escape(text)}</div>'

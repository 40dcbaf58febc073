"""Inline keyboards and their callback data, which carries everything a tap needs.

Callback data survives restarts because it only names a stored answer (a random key in the
feedback store) and what was tapped, never in-memory state. It stays far below Telegram's 64 bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from mnist_bot.bot import replies

MAX_CALLBACK_BYTES = 64
ACTIONS = frozenset({"saw", "how", "fix", "row", "pos", "set", "back"})
NUMBERS = {"row": 2, "pos": 1, "set": 2}  # how many numbers each action's callback data carries
MAX_BUTTONS = 96  # Telegram allows about 100 buttons under a message; 4 stay free for "Back"
PER_ROW = 4
GROUP = 8  # digits per group of the picker when a page's lines are not known


@dataclass(frozen=True)
class Tap:
    """A decoded button press: the action, the stored answer, a digit position, label or line's length.

    "row" picks a line of a page: its first digit's position and its number of digits (`count`).
    """

    action: str
    answer: str
    position: int = 0
    label: int | None = None
    count: int = 0

    def data(self) -> str:
        """Encode as callback data, e.g. "set:AbC123xyz_-0:1:7" or "row:AbC123xyz_-0:9:5"."""
        parts = [self.action, self.answer]
        if self.action in NUMBERS:
            parts.append(str(self.position))
        if self.action == "set":
            parts.append(str(self.label))
        if self.action == "row":
            parts.append(str(self.count))
        text = ":".join(parts)
        if len(text.encode()) > MAX_CALLBACK_BYTES:
            raise ValueError(f"callback data too long: {text!r}")
        return text


def parse(data: str | None) -> Tap | None:
    """Decode callback data; return None for anything this bot did not produce."""
    parts = (data or "").split(":")
    if len(parts) < 2 or parts[0] not in ACTIONS or not parts[1]:
        return None
    try:
        numbers = [int(p) for p in parts[2:]]
    except ValueError:
        return None
    if len(numbers) != NUMBERS.get(parts[0], 0) or any(n < 0 for n in numbers):
        return None
    if parts[0] == "set" and numbers[1] > 9:
        return None
    if parts[0] == "row":
        return Tap("row", parts[1], numbers[0], count=numbers[1])
    return Tap(parts[0], parts[1], *numbers)


def _button(text: str, tap: Tap) -> InlineKeyboardButton:
    """Make one callback button."""
    return InlineKeyboardButton(text, callback_data=tap.data())


def answer_keyboard(answer: str) -> InlineKeyboardMarkup:
    """The two buttons under every answer."""
    return InlineKeyboardMarkup(
        [[_button("🔍 What I saw", Tap("saw", answer)), _button("✏️ Wrong? Fix it", Tap("fix", answer))]]
    )


def explain_keyboard(answer: str) -> InlineKeyboardMarkup:
    """The button under "What I saw" that sends the strip of every stage of the reading."""
    return InlineKeyboardMarkup([[_button("🧭 How I read it", Tap("how", answer))]])


def digit_keypad(answer: str, position: int) -> InlineKeyboardMarkup:
    """A 0-9 keypad to give the right label of one digit, with a way back."""
    keys = [_button(str(d), Tap("set", answer, position, d)) for d in range(10)]
    return InlineKeyboardMarkup([keys[1:6], [*keys[6:], keys[0]], [_button("↩ Back", Tap("back", answer))]])


def _grid(buttons: list[InlineKeyboardButton], back: Tap) -> InlineKeyboardMarkup:
    """Lay buttons out PER_ROW a row, with a way back below them."""
    rows = [buttons[i : i + PER_ROW] for i in range(0, len(buttons), PER_ROW)]
    return InlineKeyboardMarkup([*rows, [_button("↩ Back", back)]])


def position_picker(answer: str, digits: Sequence[int], start: int = 0) -> InlineKeyboardMarkup:
    """For a number (or one line of a page from position `start`): one button per digit to fix."""
    buttons = [
        _button(replies.position_label(i, d), Tap("pos", answer, start + i)) for i, d in enumerate(digits)
    ]
    back = Tap("fix", answer) if start or len(digits) > MAX_BUTTONS else Tap("back", answer)
    return _grid(buttons[:MAX_BUTTONS], back)


def chunked(spans: Sequence[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """Split (start, count) spans longer than `size` digits into pieces of at most `size`."""
    pieces = []
    for start, count in spans:
        pieces += [(s, min(size, start + count - s)) for s in range(start, start + count, size)]
    return pieces


def line_picker(
    answer: str, digits: Sequence[int], spans: Sequence[tuple[int, int]] | None
) -> InlineKeyboardMarkup:
    """For a page: one button per line (or per group of digits), each opening that line's digits."""
    groups = chunked(spans or [(0, len(digits))], GROUP if spans is None else MAX_BUTTONS)
    per_button = -(-len(groups) // MAX_BUTTONS)  # lines a button covers, so the buttons fit
    buttons = []
    for first in range(0, len(groups), per_button):
        covered = groups[first : first + per_button]
        start, end = covered[0][0], covered[-1][0] + covered[-1][1]
        name = (first + 1, first + len(covered)) if spans else (start + 1, end)
        label = replies.line_label(*name, digits[start:end]) if spans else f"Digits {name[0]}-{name[1]}"
        buttons.append(_button(label, Tap("row", answer, start, count=end - start)))
    return _grid(buttons, Tap("back", answer))

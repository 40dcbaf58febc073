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
ACTIONS = frozenset({"saw", "fix", "pos", "set", "back"})


@dataclass(frozen=True)
class Tap:
    """A decoded button press: the action, the stored answer, and optional digit position and label."""

    action: str
    answer: str
    position: int = 0
    label: int | None = None

    def data(self) -> str:
        """Encode as callback data, e.g. "set:AbC123xyz_-0:1:7"."""
        parts = [self.action, self.answer]
        if self.action in {"pos", "set"}:
            parts.append(str(self.position))
        if self.action == "set":
            parts.append(str(self.label))
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
    expected = {"pos": 1, "set": 2}.get(parts[0], 0)
    if len(numbers) != expected or any(n < 0 for n in numbers) or (expected == 2 and numbers[1] > 9):
        return None
    return Tap(parts[0], parts[1], *numbers)


def _button(text: str, tap: Tap) -> InlineKeyboardButton:
    """Make one callback button."""
    return InlineKeyboardButton(text, callback_data=tap.data())


def answer_keyboard(answer: str) -> InlineKeyboardMarkup:
    """The two buttons under every answer."""
    return InlineKeyboardMarkup(
        [[_button("🔍 What I saw", Tap("saw", answer)), _button("✏️ Wrong? Fix it", Tap("fix", answer))]]
    )


def digit_keypad(answer: str, position: int) -> InlineKeyboardMarkup:
    """A 0-9 keypad to give the right label of one digit, with a way back."""
    keys = [_button(str(d), Tap("set", answer, position, d)) for d in range(10)]
    return InlineKeyboardMarkup([keys[1:6], [*keys[6:], keys[0]], [_button("↩ Back", Tap("back", answer))]])


def position_picker(answer: str, digits: Sequence[int]) -> InlineKeyboardMarkup:
    """For a number: one button per digit, to choose which one to fix."""
    buttons = [_button(replies.position_label(i, d), Tap("pos", answer, i)) for i, d in enumerate(digits)]
    rows = [buttons[i : i + 4] for i in range(0, len(buttons), 4)]
    return InlineKeyboardMarkup([*rows, [_button("↩ Back", Tap("back", answer))]])

"""Notebook front end: `DigitChat()` shows a chat transcript above a drawing pad."""

from __future__ import annotations

from widgets.chat import ChatMessage, DigitChat

__all__ = ["ChatMessage", "DigitChat"]

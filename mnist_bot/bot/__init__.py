"""Telegram bot front end: send a photo of a digit, get the answer with its confidence."""

from __future__ import annotations

from mnist_bot.bot.app import build_application, run_bot

__all__ = ["build_application", "run_bot"]

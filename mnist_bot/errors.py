"""Typed errors whose messages are safe to show to a user."""

from __future__ import annotations


class RecognizerError(Exception):
    """Base error: its message is a sentence a user may read."""


class InvalidImageError(RecognizerError):
    """The input cannot be decoded, has a bad shape or dtype, or is too large."""


class EmptyImageError(RecognizerError):
    """The image holds no ink that looks like a digit."""


class ModelLoadError(RecognizerError):
    """The model file is missing, unreadable or not a digit classifier."""


class ConfigError(RecognizerError):
    """A setting is missing or malformed."""


class DatasetError(RecognizerError):
    """The MNIST files are missing, corrupt or inconsistent."""

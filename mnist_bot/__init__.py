"""mnist-bot: recognise handwritten digits in photos and drawings."""

from __future__ import annotations

from mnist_bot.errors import (
    ConfigError,
    DatasetError,
    EmptyImageError,
    InvalidImageError,
    ModelLoadError,
    RecognizerError,
)
from mnist_bot.recognizer import NumberReading, PageReading, Prediction, Recognizer

__all__ = [
    "ConfigError",
    "DatasetError",
    "EmptyImageError",
    "InvalidImageError",
    "ModelLoadError",
    "NumberReading",
    "PageReading",
    "Prediction",
    "Recognizer",
    "RecognizerError",
]

"""One digit through the stages: decode -> ink -> candidates -> 28x28 (`prepare_digit`).

The stages live in their own modules (`decode`, `ink`, `candidates`, `render`); pages and numbers
take the same ink and candidates through `layout` and `segment` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_bot.blobs import EMPTY_MESSAGE, Box, Component, FoundInk, find_ink, to_input_box
from mnist_bot.candidates import crop_parts, digit_parts, is_background_mark, looks_like_digit, union_box
from mnist_bot.decode import ImageInput
from mnist_bot.errors import EmptyImageError
from mnist_bot.render import render28


@dataclass(frozen=True)
class PreparedDigit:
    """A model-ready digit: input28 is (28, 28) float32 in [0, 1]."""

    input28: np.ndarray
    box: Box
    digit_like: bool


def prepare_parts(
    labels: np.ndarray, parts: list[Component], scale: float, origin: tuple[int, int] = (0, 0)
) -> PreparedDigit:
    """Turn the blobs of one digit into a model-ready PreparedDigit."""
    box = union_box(parts)
    input28 = render28(crop_parts(labels, parts, box))
    return PreparedDigit(input28, to_input_box(box, scale, origin), looks_like_digit(parts, box))


def prepare_found_digit(ink: FoundInk, parts: list[Component] | None = None) -> PreparedDigit:
    """Prepare the single digit among already-found ink blobs (`parts`, when already picked)."""
    parts = digit_parts(ink) if parts is None else parts
    if not ink.drawing and is_background_mark(parts, ink.labels.shape, ink.sparse, ink.labels):
        raise EmptyImageError(EMPTY_MESSAGE)
    return prepare_parts(ink.labels, parts, ink.scale, ink.origin)


def prepare_digit(image: ImageInput) -> PreparedDigit:
    """Preprocess an image holding one digit into what the model expects."""
    return prepare_found_digit(find_ink(image))

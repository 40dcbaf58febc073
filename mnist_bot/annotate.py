"""Draw a page reading on its image: every digit's box, with what was read above it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mnist_bot.blobs import Box
from mnist_bot.decode import ImageInput, open_image
from mnist_bot.recognizer import PageReading, Prediction

MAX_SIDE = 2048  # longest side drawn on: enough to read, small enough to send and show
# Okabe-Ito blue and orange: told apart with every common colour-vision deficiency.
SURE_COLOUR = (0, 114, 178)
UNSURE_COLOUR = (230, 159, 0)
LABEL_TEXT = (255, 255, 255)


def _decoded(image: ImageInput) -> tuple[Image.Image, float]:
    """Return the upright input as RGB and the scale from the input's own pixels to it."""
    if isinstance(image, Image.Image):
        return _on_white(image), 1.0
    if isinstance(image, np.ndarray):
        return _on_white(Image.fromarray(_as_uint8(image))), 1.0
    data = Path(image).read_bytes() if isinstance(image, str | os.PathLike) else bytes(image)
    # Drafted for reading, a big JPEG decodes at about 1000 px: too coarse to draw fine print on.
    decoded = open_image(data, draft=False)
    return _on_white(decoded), 1.0


def _on_white(image: Image.Image) -> Image.Image:
    """Return an image as RGB, transparent parts (a drawing pad's clear paper) made white."""
    if image.mode not in {"RGBA", "LA", "PA"} and "transparency" not in image.info:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")


def _as_uint8(array: np.ndarray) -> np.ndarray:
    """Bring an array image (uint8, or float in [0, 1]) to uint8 for Pillow."""
    if array.dtype == np.uint8:
        return array
    return (np.clip(array, 0.0, 1.0) * 255).astype(np.uint8)


def _shrunk(image: Image.Image, scale: float, max_side: int) -> tuple[Image.Image, float]:
    """Downscale an image whose longest side exceeds `max_side`, updating the box scale."""
    shrink = max_side / max(image.size)
    if shrink >= 1:
        return image, scale
    size = (max(1, round(image.width * shrink)), max(1, round(image.height * shrink)))
    return image.resize(size, Image.Resampling.LANCZOS), scale * shrink


def _scaled(box: Box, scale: float) -> tuple[int, int, int, int]:
    """Return a box's corners (x0, y0, x1, y1) in the drawn image's pixels."""
    x0, y0 = round(box.x * scale), round(box.y * scale)
    return x0, y0, x0 + max(1, round(box.w * scale)), y0 + max(1, round(box.h * scale))


def _digit_height(boxes: list[tuple[int, int, int, int]], image: Image.Image) -> float:
    """Return the typical digit height in drawn pixels, which sizes lines and labels."""
    if not boxes:
        return min(image.size) / 4
    return float(np.median([y1 - y0 for _, y0, _, y1 in boxes]))


def _label_text(prediction: Prediction) -> str:
    """Say what was read for one digit; an unsure one gets a question mark."""
    return f"{prediction.digit}?" if prediction.unsure else str(prediction.digit)


def _draw_label(
    draw: ImageDraw.ImageDraw,
    corner: tuple[int, int],
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    colour: tuple[int, int, int],
) -> None:
    """Write `text` on a filled tag just above `corner` (inside the image when there is no room)."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(1, (bottom - top) // 6)
    height = bottom - top + 2 * pad
    x, y = corner[0], max(0, corner[1] - height)
    draw.rectangle((x, y, x + right - left + 2 * pad, y + height), fill=colour)
    draw.text((x + pad - left, y + pad - top), text, font=font, fill=LABEL_TEXT)


def annotate(image: ImageInput, page: PageReading, max_side: int = MAX_SIDE) -> Image.Image:
    """Return the upright input (at most `max_side` px) with every digit's box and reading drawn on it."""
    picture, scale = _shrunk(*_decoded(image), max_side)
    placed = [(p, _scaled(p.box, scale)) for p in page.digits if p.box is not None]
    height = _digit_height([corners for _, corners in placed], picture)
    width = max(2, round(height / 25))  # a 400 px thumbnail's 40 px digits get 2 px lines
    font = ImageFont.load_default(size=max(10, round(height * 0.45)))
    draw = ImageDraw.Draw(picture)
    for prediction, corners in placed:
        colour = UNSURE_COLOUR if prediction.unsure else SURE_COLOUR
        draw.rectangle(corners, outline=colour, width=width)
        _draw_label(draw, (corners[0], corners[1]), _label_text(prediction), font, colour)
    return picture

"""Rasterise pen strokes into the arrays the recogniser reads, exactly as a canvas would draw them."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

Point = tuple[float, float]

PAD_SIZE = 280  # pad side in pixels: ten times MNIST's 28, so a finger-width stroke is MNIST-thick
DEFAULT_PEN_WIDTH = 18


@dataclass(frozen=True)
class Stroke:
    """One pen-down-to-pen-up trace: points in pad pixels and the pen width it was drawn with."""

    points: tuple[Point, ...]
    width: float = DEFAULT_PEN_WIDTH


def _draw_stroke(draw: ImageDraw.ImageDraw, stroke: Stroke, ink: int) -> None:
    """Draw a stroke with round caps and joins: a line per segment and a disc at every point."""
    radius = stroke.width / 2
    if len(stroke.points) > 1:
        draw.line(stroke.points, fill=ink, width=max(1, round(stroke.width)))
    for x, y in stroke.points:
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=ink)


def stroke_mask(strokes: Sequence[Stroke], size: tuple[int, int] = (PAD_SIZE, PAD_SIZE)) -> np.ndarray:
    """Return the ink coverage of `strokes` as (H, W) uint8, 255 where ink is, 0 elsewhere; size is (W, H)."""
    image = Image.new("L", size, 0)
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        _draw_stroke(draw, stroke, 255)
    return np.asarray(image, dtype=np.uint8)


def strokes_to_rgba(strokes: Sequence[Stroke], size: tuple[int, int] = (PAD_SIZE, PAD_SIZE)) -> np.ndarray:
    """Return (H, W, 4) uint8 like a canvas's image data: black ink, the coverage in alpha, clear paper."""
    return mask_to_rgba(stroke_mask(strokes, size))


def mask_to_rgba(mask: np.ndarray) -> np.ndarray:
    """Turn an (H, W) uint8 ink mask into (H, W, 4) uint8 canvas image data: black ink, clear paper."""
    rgba = np.zeros((*mask.shape, 4), dtype=np.uint8)
    rgba[..., 3] = mask
    return rgba


def mask_to_png(mask: np.ndarray, side: int | None = None) -> bytes:
    """Encode an ink mask ((H, W) uint8, or float in [0, 1]) as a PNG of dark ink on white, fit in `side`."""
    grey = np.asarray(mask)
    if grey.dtype != np.uint8:
        grey = (np.clip(grey, 0.0, 1.0) * 255).round().astype(np.uint8)
    return image_to_png(Image.fromarray(255 - grey), side)


def image_to_png(image: Image.Image, side: int | None = None) -> bytes:
    """Encode `image` as PNG, scaled so its longer side is `side` pixels when given."""
    if side is not None:
        scale = side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        # Nearest keeps the 28x28's pixels crisp when enlarged; box filtering keeps thumbnails smooth.
        resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.NEAREST
        image = image.resize(size, resample)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()

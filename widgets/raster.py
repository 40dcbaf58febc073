"""Rasterise the pad's strokes into the arrays the recogniser reads, as the canvas draws them."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from mnist_bot.strokes import rasterise

Point = tuple[float, float]

PAD_SIZE = 280  # pad side in pixels: ten times MNIST's 28, so a finger-width stroke is MNIST-thick
DEFAULT_PEN_WIDTH = 18
CANVAS_TO_PIXEL_CENTRES = 0.5  # a canvas puts pixel centres at +0.5, the rasteriser at whole numbers


@dataclass(frozen=True)
class Stroke:
    """One pen-down-to-pen-up trace: points in pad pixels and the pen width it was drawn with."""

    points: tuple[Point, ...]
    width: float = DEFAULT_PEN_WIDTH


def stroke_mask(strokes: Sequence[Stroke], size: tuple[int, int] = (PAD_SIZE, PAD_SIZE)) -> np.ndarray:
    """Return the anti-aliased ink coverage of `strokes` as (H, W) uint8, 255 = ink; size is (W, H)."""
    pen = [(np.asarray(s.points, dtype=np.float64) - CANVAS_TO_PIXEL_CENTRES, s.width) for s in strokes]
    return rasterise(pen, size)


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

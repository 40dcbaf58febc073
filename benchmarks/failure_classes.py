"""Inputs of the failure classes real users hit, drawn from MNIST test digits.

Each is what a person makes outside a phone camera, so no photo pipeline is applied: a clean file
from a drawing app or a scanner. The digit keeps its shape (`training.synthetic.stroke_mask` redraws it until
its parts and loops match the source), so a wrong answer is the reader's fault.

- `bold`: a thick black stroke (about 8% of the image side) on a 400x400 white PNG without alpha.
- `faint`: a thin, light pen (blue, grey or pencil) on white paper, half of them saved as JPEG.
- `small`: a digit 16-60 px tall in a 1000-2500 px white frame, anywhere in it.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from mnist_bot.training import synthetic as syn

FAILURE_KINDS = ("bold", "faint", "small")
FAINT_INKS = ((120, 160, 230), (150, 150, 150), (170, 175, 185), (90, 140, 220))


def bold_drawing(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Draw a digit with a marker about 8% of a 400 px side wide, black on white, as a PNG."""
    side = 400
    height = int(rng.uniform(0.6, 0.85) * side)
    mask = syn.stroke_mask(digit, height, rng, pen=side * rng.uniform(0.07, 0.09))
    return _encode(_on_paper(mask, (side, side), (0, 0, 0), rng), "PNG")


def faint_pen(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Draw a digit with a thin light pen (2-3 px) on white, as PNG or JPEG."""
    side = int(rng.integers(300, 801))
    height = int(rng.uniform(0.4, 0.8) * side)
    mask = syn.stroke_mask(digit, height, rng, pen=rng.uniform(2.0, 3.0))
    ink = FAINT_INKS[int(rng.integers(len(FAINT_INKS)))]
    image = _on_paper(mask, (side, side), ink, rng)
    return _encode(image, "JPEG" if rng.random() < 0.5 else "PNG", quality=int(rng.integers(60, 96)))


def small_in_frame(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Draw a digit 16-60 px tall anywhere in a big white frame, as a PNG."""
    side = int(rng.integers(1000, 2501))
    height = int(rng.integers(16, 61))
    mask = syn.stroke_mask(digit, height, rng, pen=max(1.5, height * rng.uniform(0.08, 0.14)))
    return _encode(_on_paper(mask, (side, side), (0, 0, 0), rng), "PNG")


def _on_paper(
    mask: np.ndarray, shape: tuple[int, int], ink: tuple[int, int, int], rng: np.random.Generator
) -> np.ndarray:
    """Lay a float32 0-1 stroke mask at a random place on white paper: uint8 (H, W, 3)."""
    canvas = np.zeros(shape, np.float32)
    h, w = min(mask.shape[0], shape[0]), min(mask.shape[1], shape[1])
    top, left = int(rng.integers(0, shape[0] - h + 1)), int(rng.integers(0, shape[1] - w + 1))
    canvas[top : top + h, left : left + w] = np.clip(mask[:h, :w], 0, 1)
    alpha = canvas[..., None]
    return (255 * (1 - alpha) + np.asarray(ink, np.float32) * alpha).astype(np.uint8)


def _encode(image: np.ndarray, fmt: str, quality: int = 90) -> bytes:
    """Encode an RGB uint8 image as the file a user would send."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buffer.getvalue()


MAKERS = {"bold": bold_drawing, "faint": faint_pen, "small": small_in_frame}

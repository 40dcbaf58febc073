"""Pictures for the bot: which photo size to fetch, and the "What I saw" image."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageOps
from telegram import PhotoSize

from mnist_bot.explain import explain, strip
from mnist_bot.recognizer import Recognizer

MAX_PHOTO_RATIO = 20  # Telegram refuses photos more than 20 times wider than high
MIN_PHOTO_SIDE = 320  # enough pixels for a digit; bigger sizes only cost download time
PANEL = 280  # side of each panel of the "What I saw" picture
GAP = 12
BACKGROUND = 255
FRAME = 170
Box = tuple[int, int, int, int]  # x, y, w, h in the original photo's pixels


def pick_photo_size(sizes: Sequence[PhotoSize], min_side: int = MIN_PHOTO_SIDE) -> PhotoSize:
    """Return the smallest size whose shorter side is at least `min_side`, else the largest."""
    by_area = sorted(sizes, key=lambda s: s.width * s.height)
    for size in by_area:
        if min(size.width, size.height) >= min_side:
            return size
    return by_area[-1]


def _input_panel(input28: np.ndarray, side: int) -> Image.Image:
    """Enlarge a (28, 28) float32 model input to `side` px, dark ink on white, crisp pixels."""
    pixels = (255 - np.clip(input28 * 255.0, 0, 255)).astype(np.uint8)
    panel = Image.fromarray(pixels, mode="L").resize((side, side), Image.Resampling.NEAREST)
    ImageDraw.Draw(panel).rectangle((0, 0, side - 1, side - 1), outline=FRAME)  # shows the 28x28 border
    return panel


def inputs_strip(inputs: Sequence[np.ndarray]) -> Image.Image:
    """Lay the 28x28 inputs of a number side by side, enlarged."""
    side = PANEL if len(inputs) == 1 else max(84, PANEL * 2 // len(inputs))
    strip = Image.new("L", (len(inputs) * side + (len(inputs) - 1) * GAP // 2, side), BACKGROUND)
    for index, input28 in enumerate(inputs):
        strip.paste(_input_panel(input28, side), (index * (side + GAP // 2), 0))
    return strip


def crop_region(photo: Image.Image, boxes: Sequence[Box], margin: float = 0.15) -> Image.Image:
    """Cut the union of `boxes` out of the photo, with a margin, as greyscale."""
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    pad = round(margin * max(x1 - x0, y1 - y0))
    region = (max(0, x0 - pad), max(0, y0 - pad), min(photo.width, x1 + pad), min(photo.height, y1 + pad))
    return photo.convert("L").crop(region)


def _fit_height(image: Image.Image, height: int) -> Image.Image:
    """Scale an image to `height` px tall, keeping its aspect ratio (at most 3:1 wide)."""
    width = max(1, min(3 * height, round(image.width * height / max(1, image.height))))
    return image.resize((width, height), Image.Resampling.LANCZOS)


def side_by_side(left: Image.Image | None, right: Image.Image) -> Image.Image:
    """Place the photo crop (if any) left of the model inputs, on white."""
    height = right.height
    panels = [_fit_height(left, height), right] if left is not None else [right]
    canvas = Image.new("L", (sum(p.width for p in panels) + GAP * (len(panels) + 1), height + 2 * GAP), 255)
    x = GAP
    for panel in panels:
        canvas.paste(panel, (x, GAP))
        x += panel.width + GAP
    return canvas


def open_photo(data: bytes) -> Image.Image:
    """Decode a photo, turned upright as the recognizer does (its boxes use these pixels)."""
    image = Image.open(io.BytesIO(data))
    return ImageOps.exif_transpose(image) or image


def what_i_saw(inputs: Sequence[np.ndarray], photo: bytes | None, boxes: Sequence[Box | None]) -> bytes:
    """Render the "What I saw" PNG: the crop of the photo next to the enlarged 28x28 inputs."""
    known = [b for b in boxes if b is not None]
    crop = None
    if photo is not None and known:
        try:
            crop = crop_region(open_photo(photo), known)
        except (OSError, ValueError, Image.DecompressionBombError):
            crop = None  # the crop is a nicety; the model input alone still answers the question
    out = io.BytesIO()
    side_by_side(crop, inputs_strip(inputs)).save(out, format="PNG")
    return out.getvalue()


def photo_shaped(image: Image.Image) -> Image.Image:
    """Pad a wide picture (the explain strip) with white below so Telegram takes it as a photo."""
    height = max(image.height, -(-image.width // MAX_PHOTO_RATIO))
    if height == image.height:
        return image
    canvas = Image.new("RGB", (image.width, height), "white")
    canvas.paste(image.convert("RGB"), (0, 0))
    return canvas


def how_i_read(recognizer: Recognizer, photo: bytes) -> bytes:
    """Render the explain strip of a photo (each stage of its reading) as a PNG Telegram accepts."""
    out = io.BytesIO()
    photo_shaped(strip(explain(recognizer, photo))).save(out, format="PNG")
    return out.getvalue()

"""Show what each stage of the pipeline saw and chose, as one strip of pictures (`mnist-bot explain`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from mnist_bot import blobs, decode
from mnist_bot.decode import ImageInput
from mnist_bot.errors import RecognizerError
from mnist_bot.recognizer import PageReading, Recognizer

PANEL = 200  # px: every stage is shown this high
CAPTION = 64  # px of text under each picture
SURE, UNSURE, CANDIDATE = (0, 170, 0), (230, 120, 0), (60, 140, 255)


@dataclass(frozen=True)
class Stage:
    """One stage's picture (uint8 grey or RGB) and the numbers it chose."""

    name: str
    picture: np.ndarray
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Explanation:
    """Every stage of one image's reading, and the reading itself (None when nothing was read)."""

    stages: list[Stage]
    reading: PageReading | None
    error: str | None = None

    def numbers(self) -> dict[str, Any]:
        """Return each stage's numbers and the reading, JSON-friendly."""
        out: dict[str, Any] = {s.name: s.numbers for s in self.stages}
        out["text"] = self.reading.text if self.reading is not None else None
        out["error"] = self.error
        return out


def explain(recognizer: Recognizer, image: ImageInput) -> Explanation:
    """Read `image` and keep a picture of each stage: decoded, ink, mask, candidates, chosen, 28x28."""
    # At full size, not JPEG-drafted, so the boxes (in the input's own pixels) land on it.
    array, _ = decode.load_image_scaled(image, draft=False)
    stages = [Stage("decoded", array, {"size": f"{array.shape[1]}x{array.shape[0]}"})]

    def trace(name: str, picture: np.ndarray, numbers: dict[str, Any]) -> None:
        stages.append(Stage(name, picture, numbers))

    try:
        # The input itself, as the front ends pass it: a big JPEG is drafted, a small digit zoomed.
        found = blobs.find_ink(image, trace)
        stages.append(candidates_stage(found, stages[-1].picture))
        reading = recognizer.read(image)
    except RecognizerError as exc:
        return Explanation(stages, None, str(exc))
    stages += [chosen_stage(array, reading), input28_stage(reading)]
    return Explanation(stages, reading)


def candidates_stage(found: blobs.FoundInk, mask: np.ndarray) -> Stage:
    """Box every ink blob that survived the filters on the mask."""
    picture = Image.fromarray(mask).convert("RGB")
    draw = ImageDraw.Draw(picture)
    for blob in found.blobs:
        draw.rectangle((blob.x, blob.y, blob.x + blob.w - 1, blob.y + blob.h - 1), outline=CANDIDATE)
    return Stage("candidates", np.asarray(picture), {"blobs": len(found.blobs)})


def chosen_stage(array: np.ndarray, reading: PageReading) -> Stage:
    """Box the chosen digits on the input, each with its answer: green sure, orange unsure."""
    picture = Image.fromarray(array).convert("RGB")
    draw = ImageDraw.Draw(picture)
    width = max(1, max(picture.size) // 200)
    for p in reading.digits:
        if p.box is None:
            continue
        colour = UNSURE if p.unsure else SURE
        draw.rectangle((p.box.x, p.box.y, p.box.x + p.box.w, p.box.y + p.box.h), outline=colour, width=width)
        draw.text((p.box.x, max(0, p.box.y - 12)), str(p.digit), fill=colour)
    boxes = [[p.box.x, p.box.y, p.box.w, p.box.h] for p in reading.digits if p.box is not None]
    return Stage("chosen", np.asarray(picture), {"digits": len(reading.digits), "boxes": boxes})


def input28_stage(reading: PageReading) -> Stage:
    """Show each digit's 28x28 model input side by side, with the answers and confidences."""
    strip = np.concatenate([np.pad(p.input28, 1, constant_values=0.5) for p in reading.digits], axis=1)
    answers = [f"{p.digit} {p.confidence:.2f}{'?' if p.unsure else ''}" for p in reading.digits]
    return Stage("28x28", (strip * 255).astype(np.uint8), {"answers": answers})


def strip(explanation: Explanation) -> Image.Image:
    """Lay the stages side by side, each fitted to PANEL px high, with its name and numbers beneath."""
    panels = [_panel(stage) for stage in explanation.stages]
    sheet = Image.new("RGB", (sum(p.width for p in panels) + 4 * len(panels), PANEL + CAPTION), "white")
    x = 0
    for panel in panels:
        sheet.paste(panel, (x, 0))
        x += panel.width + 4
    if explanation.error:
        ImageDraw.Draw(sheet).text((4, PANEL + CAPTION - 14), explanation.error, fill=(200, 0, 0))
    return sheet


def _panel(stage: Stage) -> Image.Image:
    """Draw one stage: its picture scaled to PANEL px high (pixels kept sharp) and its caption."""
    picture = Image.fromarray(stage.picture).convert("RGB")
    width = max(PANEL // 2, round(picture.width * PANEL / max(picture.height, 1)))
    resample = Image.Resampling.NEAREST if picture.height < PANEL else Image.Resampling.BILINEAR
    picture = picture.resize((min(width, 4 * PANEL), PANEL), resample)
    panel = Image.new("RGB", (max(picture.width, 150), PANEL + CAPTION - 16), "white")
    panel.paste(picture, (0, 0))
    lines = [stage.name] + [f"{k}: {_short(v)}" for k, v in stage.numbers.items()]
    ImageDraw.Draw(panel).multiline_text((2, PANEL + 2), "\n".join(lines[:4]), fill="black", spacing=1)
    return panel


def _short(value: Any) -> str:
    """Format a stage number for a caption: floats rounded, long lists cut."""
    if isinstance(value, float):
        return f"{value:.3g}"
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def write(explanation: Explanation, folder: Path, stem: str = "explain") -> tuple[Path, Path]:
    """Write the strip as `<stem>.png` and the numbers as `<stem>.json`; return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    png, numbers = folder / f"{stem}.png", folder / f"{stem}.json"
    strip(explanation).save(png)
    numbers.write_text(json.dumps(explanation.numbers(), indent=2, default=str) + "\n")
    return png, numbers

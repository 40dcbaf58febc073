"""Shared fixtures: isolated environment, digit factories, fake and real recognizers."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_bot.config import DEFAULT_MODEL
from mnist_bot.data import Mnist, load_mnist
from mnist_bot.recognizer import Recognizer
from mnist_bot.runtime import FakeRuntime
from mnist_bot.strokes import ink_on_paper, rasterise

# Captured before any test runs: the isolation fixture removes it from the environment.
ORIGINAL_MNIST_DIR = os.environ.get("MNIST_DIR") or str(
    Path(__file__).resolve().parents[2] / "shared" / "mnist"
)
OUR_VARIABLES = (
    "MNIST_DIR",
    "MNIST_BOT_MODEL",
    "MNIST_BOT_DB",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_API_BASE_URL",
    "MNIST_BOT_ALLOWED_USERS",
    "MNIST_BOT_RATE_LIMIT",
)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Run each test in an empty folder with none of our variables set (no stray .env)."""
    for name in OUR_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # The default feedback file lives in the user data folder: keep tests out of the real one.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Return the real MNIST folder (CI sets MNIST_DIR)."""
    return Path(ORIGINAL_MNIST_DIR)


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path) -> Mnist:
    """Load the real MNIST once per session."""
    return load_mnist(mnist_dir)


@pytest.fixture
def fake_recognizer() -> Recognizer:
    """Return a recognizer with the fast deterministic fake runtime."""
    return Recognizer(FakeRuntime())


@pytest.fixture(scope="session")
def recognizer() -> Recognizer:
    """Return the real shipped model (LiteRT)."""
    return Recognizer.load(DEFAULT_MODEL)


# Pen paths for a few digits on a 100x100 grid: enough to test geometry without MNIST.
STROKES = {
    1: [[(50, 15), (50, 85)]],
    7: [[(25, 15), (75, 15), (40, 85)]],
    4: [[(60, 85), (60, 15), (20, 60), (80, 60)]],
    0: [[(50, 12), (75, 30), (75, 70), (50, 88), (25, 70), (25, 30), (50, 12)]],
}


def draw_digit(
    digit: int = 7,
    size: int = 100,
    width: int = 8,
    ink: int = 0,
    paper: int = 255,
    offset: tuple[int, int] = (0, 0),
    scale: float = 1.0,
) -> Image.Image:
    """Draw a simple digit with the shared rasteriser as grey (dark ink on light paper by default)."""
    factor = scale * size / 100
    pen = [(np.asarray(stroke, np.float64) * factor + offset, width) for stroke in STROKES[digit]]
    return Image.fromarray(ink_on_paper(rasterise(pen, (size, size)), ink, paper))


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    """Encode a Pillow image to bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def mnist_photo(digit28: np.ndarray, size: int = 400, paper: int = 210) -> Image.Image:
    """Enlarge an MNIST digit into a plain photo-like image: dark ink on grey paper."""
    big = np.asarray(Image.fromarray(digit28).resize((size // 2, size // 2), Image.Resampling.BICUBIC))
    canvas = np.full((size, size), 0, np.uint8)
    canvas[size // 4 : size // 4 + size // 2, size // 4 : size // 4 + size // 2] = big
    photo = paper - (canvas.astype(np.float32) / 255 * (paper - 30))
    return Image.fromarray(photo.astype(np.uint8))

"""Golden test: the same image gets the same reading through the bot, the widget and the CLI.

The shipped model on real MNIST test digits: the bot as a real process answering the fake Bot API
over HTTP, the widget through its Python API, the CLI as `mnist-bot predict --json` in a subprocess.
Each is compared with the library's own `Recognizer.read` of the same bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mnist_bot import NumberReading, Prediction, Recognizer
from mnist_bot.bot import replies
from mnist_bot.config import DEFAULT_MODEL
from mnist_bot.feedback import FeedbackStore
from tests.fake_telegram import FakeTelegram, mnist_test_digits, paper_photo, png_bytes
from tests.test_bot_e2e import REPLY_TIMEOUT, BotProcess
from widgets import DigitChat

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

USER = 4242
# MNIST test indices: one digit alone, and three side by side as a number.
SINGLE = (0,)
NUMBER = (18, 2, 3)  # a 3, a 1 and a 0


@pytest.fixture(scope="module")
def golden(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Write the golden images as PNG files (an image sent "as a file" reaches the bot byte for byte)."""
    x, _ = mnist_test_digits(str(mnist_dir))
    folder = tmp_path_factory.mktemp("golden")
    paths = {}
    for name, indices in (("single", SINGLE), ("number", NUMBER)):
        paths[name] = folder / f"{name}.png"
        paths[name].write_bytes(png_bytes(paper_photo([x[i] for i in indices])))
    return paths


@pytest.fixture(scope="module")
def library() -> Recognizer:
    """The shipped model, read in this process: what every front end should agree with."""
    return Recognizer.load(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def bot_replies(
    golden: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Send each golden image to a real bot process as a file and collect its replies."""
    workdir = tmp_path_factory.mktemp("golden_bot")
    with FakeTelegram() as fake:
        bot = BotProcess(fake, workdir / "feedback.db", workdir / "bot.log").wait_ready()
        try:
            texts = {}
            for name, path in golden.items():
                sent = fake.send_document(USER, path.read_bytes(), path.name, "image/png")
                texts[name] = str(fake.wait_reply(USER, sent, REPLY_TIMEOUT)["text"])
        finally:
            assert bot.stop() == 0, bot.log()
    yield texts


def widget_reading(library: Recognizer, path: Path, tmp_path: Path) -> Prediction | NumberReading:
    """Upload the image to a DigitChat and return the reading it shows (its observable trait)."""
    with FeedbackStore(tmp_path / "widget.db") as store:
        chat = DigitChat(library, store, user="golden")
        chat.send_photo(path.read_bytes(), path.name)
    assert chat.reading is not None, chat.messages[-1].text
    return chat.reading


def cli_results(paths: list[Path], *options: str) -> list[dict[str, Any]]:
    """Run `mnist-bot predict --json` on the files and return its JSON lines."""
    executable = shutil.which("mnist-bot", path=str(Path(sys.executable).parent)) or "mnist-bot"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MNIST_BOT_"))}
    done = subprocess.run(
        [executable, "predict", *map(str, paths), "--json", "--model", str(DEFAULT_MODEL), *options],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def cli_digits(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the digits of one CLI result, however the reading is laid out (digit, digits or lines)."""
    if "lines" in result:
        return [digit for line in result["lines"] for digit in line["digits"]]
    return list(result.get("digits") or [result])


def digits_of(reading: Prediction | NumberReading) -> list[Prediction]:
    """Return a reading's digits left to right."""
    return reading.digits if isinstance(reading, NumberReading) else [reading]


@pytest.mark.parametrize("name", ["single", "number"])
def test_bot_widget_and_cli_give_the_same_reading(
    name: str,
    golden: dict[str, Path],
    library: Recognizer,
    bot_replies: dict[str, str],
    tmp_path: Path,
) -> None:
    path = golden[name]
    expected = library.read(path.read_bytes()).digits
    assert "".join(str(p.digit) for p in expected) == {"single": "7", "number": "310"}[name]

    widget = digits_of(widget_reading(library, path, tmp_path))
    options = ("--number",) if name == "number" else ()
    [cli] = cli_results([path], *options)

    assert [p.digit for p in widget] == [p.digit for p in expected]
    np.testing.assert_array_equal([p.probabilities for p in widget], [p.probabilities for p in expected])
    assert bot_replies[name] == replies.reading_reply(expected) == replies.reading_reply(widget)
    assert [d["digit"] for d in cli_digits(cli)] == [p.digit for p in expected]
    np.testing.assert_allclose(
        [d["probabilities"] for d in cli_digits(cli)], [p.probabilities for p in expected], atol=2e-6
    )

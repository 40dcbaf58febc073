"""End to end: the real bot process, the real model and SQLite, over real HTTP to the fake Bot API.

The bot runs as `python -m mnist_bot.bot` with TELEGRAM_API_BASE_URL pointing at the fake server,
exactly as it would run against a self-hosted Bot API server.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mnist_bot.annotate import SURE_COLOUR
from mnist_bot.bot import replies
from mnist_bot.feedback import FeedbackStore
from tests.fake_telegram import (
    FakeTelegram,
    blank_photo,
    mnist_test_digits,
    paper_photo,
    png_bytes,
    reencode,
)
from tests.servers import bot_env, stop_process

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Read at import, before the isolation fixture clears it: lets a run pick another model file.
MODEL_OVERRIDE = os.environ.get("MNIST_BOT_MODEL")
READY_TIMEOUT = 60.0  # a cold start imports numpy, OpenCV, LiteRT and python-telegram-bot on a busy machine
REPLY_TIMEOUT = 30.0


class BotProcess:
    """`python -m mnist_bot.bot` as a subprocess, logging verbosely (DEBUG) into a file."""

    def __init__(self, fake: FakeTelegram, db: Path, log: Path, *args: str) -> None:
        self.fake, self.log_path = fake, log
        env = bot_env(fake.token, fake.base_url, db, MNIST_BOT_RATE_LIMIT="600")
        if MODEL_OVERRIDE:
            env["MNIST_BOT_MODEL"] = MODEL_OVERRIDE
        self.log_file = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mnist_bot.bot", "--verbose", *args],
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=db.parent,
        )

    def wait_ready(self, method: str = "deleteWebhook") -> BotProcess:
        """Wait until the bot has bootstrapped (it deletes or sets its webhook last)."""
        before = len(self.fake.calls(method))
        try:
            self.fake.wait_for(lambda: len(self.fake.calls(method)) > before, timeout=READY_TIMEOUT)
        except TimeoutError:
            self.process.kill()
            raise AssertionError(f"the bot did not start:\n{self.log()}") from None
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send a stop signal and return the exit status."""
        code = stop_process(self.process, sig)
        self.log_file.close()
        return code

    def log(self) -> str:
        """Return everything the process has written so far."""
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def digits(mnist_dir: Path) -> dict[int, np.ndarray]:
    """One clean MNIST test digit per class, as uint8 (28, 28) ink=255."""
    x, y = mnist_test_digits(str(mnist_dir))
    return {d: x[int(np.flatnonzero(y == d)[0])] for d in range(10)}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bot_e2e")


@pytest.fixture(scope="module")
def bot(fake: FakeTelegram, workdir: Path) -> Iterator[BotProcess]:
    """One bot process shared by the scenarios that do not restart it."""
    process = BotProcess(fake, workdir / "feedback.db", workdir / "bot.log").wait_ready()
    yield process
    assert process.stop() == 0, process.log()


@pytest.fixture
def own_fake() -> Iterator[FakeTelegram]:
    """A fake server of its own, for a test that runs its own bot: two pollers would share updates."""
    with FakeTelegram() as server:
        yield server


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """Map button texts to callback data under a message."""
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return {b["text"]: b["callback_data"] for row in rows for b in row}


def answer_key(message: dict[str, Any]) -> str:
    """Return the feedback key an answer's buttons point to."""
    return next(iter(buttons(message).values())).split(":")[1]


# ---------------------------------------------------------------- answers


@pytest.mark.parametrize("digit", [7, 2, 4])
def test_a_digit_photo_is_answered_correctly(
    fake: FakeTelegram, bot: BotProcess, digits: dict[int, np.ndarray], digit: int
) -> None:
    user = 100 + digit
    answer = fake.wait_reply(user, fake.send_photo(user, paper_photo([digits[digit]])), REPLY_TIMEOUT)
    assert answer["text"].startswith(f"{digit}, "), answer["text"]
    assert answer["text"].endswith("% sure")
    assert set(buttons(answer)) == {"🔍 What I saw", "✏️ Wrong? Fix it"}


def test_an_image_document_is_answered(
    fake: FakeTelegram, bot: BotProcess, digits: dict[int, np.ndarray]
) -> None:
    sent = fake.send_document(201, png_bytes(paper_photo([digits[3]])), "three.png", "image/png")
    assert fake.wait_reply(201, sent, REPLY_TIMEOUT)["text"].startswith("3, ")


def test_a_number_is_read(fake: FakeTelegram, bot: BotProcess, digits: dict[int, np.ndarray]) -> None:
    photo = paper_photo([digits[2], digits[0], digits[4], digits[8]], side=160)
    answer = fake.wait_reply(202, fake.send_photo(202, photo), REPLY_TIMEOUT)
    lines = answer["text"].splitlines()
    assert lines[0].startswith("I read 2048"), answer["text"]
    assert len(lines) == 5 and all(line.endswith("%") or ")" in line for line in lines[1:])


def test_an_empty_photo_gets_no_guess(fake: FakeTelegram, bot: BotProcess) -> None:
    assert fake.wait_reply(203, fake.send_photo(203, blank_photo()), REPLY_TIMEOUT)["text"] == replies.EMPTY


def test_a_corrupt_file_is_explained(fake: FakeTelegram, bot: BotProcess) -> None:
    sent = fake.send_document(204, b"\x89PNG\r\n\x1a\n broken", "digit.png", "image/png")
    assert "not an image I can read" in fake.wait_reply(204, sent, REPLY_TIMEOUT)["text"]


def test_non_image_messages_get_a_hint(fake: FakeTelegram, bot: BotProcess) -> None:
    assert fake.wait_reply(205, fake.send_text(205, "hello?"), REPLY_TIMEOUT)["text"] == replies.HINT
    sticker = fake.wait_reply(205, fake.send_other(205, "sticker"), REPLY_TIMEOUT)
    assert sticker["text"] == replies.HINTS_BY_KIND["sticker"]


def page_photo(rows: list[str], mnist_dir: Path) -> bytes:
    """Draw rows of MNIST test digits on paper (the layout tests' pages), as a JPEG photo."""
    from mnist_bot.data import load_mnist
    from tests.test_layout import clear_digits, page_of

    page = page_of(rows, clear_digits(load_mnist(mnist_dir)))
    return reencode(png_bytes_of(page), "JPEG")


def png_bytes_of(array: np.ndarray) -> bytes:
    """Encode a grey uint8 array as PNG."""
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def test_a_page_gets_its_lines_an_annotated_photo_and_a_one_digit_fix(
    fake: FakeTelegram, bot: BotProcess, mnist_dir: Path, workdir: Path
) -> None:
    user, rows = 210, ["3141", "59265", "358"]
    sent = fake.send_photo(user, page_photo(rows, mnist_dir))
    picture = fake.wait_reply(user, sent, REPLY_TIMEOUT)
    answer = fake.wait_reply(user, sent, REPLY_TIMEOUT, count=2)
    assert picture["caption"].splitlines()[1:] == rows, picture["caption"]
    marked = Image.open(io.BytesIO(next(iter(fake.calls("sendPhoto")[-1].files.values())))).convert("RGB")
    assert (np.asarray(marked) == SURE_COLOUR).all(axis=-1).sum() > 12 * 50  # the twelve boxes, drawn
    assert answer["text"].splitlines()[1:4] == ["1: 3141", "2: 59265", "3: 358"], answer["text"]

    key = answer_key(answer)
    fake.press(user, answer, buttons(answer)["✏️ Wrong? Fix it"])
    lines = fake.wait_for(
        lambda: (b := buttons(fake.message(user, answer["message_id"]))) and "Line 2: 59265" in b and b,
        REPLY_TIMEOUT,
    )
    fake.press(user, fake.message(user, answer["message_id"]), lines["Line 2: 59265"])
    fake.wait_for(lambda: "3rd: 2" in buttons(fake.message(user, answer["message_id"])), REPLY_TIMEOUT)
    fake.press(user, fake.message(user, answer["message_id"]), f"set:{key}:6:7")
    fake.wait_for(
        lambda: "3rd digit of line 2 is a 7" in fake.message(user, answer["message_id"])["text"],
        REPLY_TIMEOUT,
    )
    with FeedbackStore(workdir / "feedback.db") as store:
        samples = store.samples(key)
    assert [s.predicted for s in samples] == [int(d) for d in "".join(rows)]
    assert [s.label for s in samples] == [None] * 6 + [7] + [None] * 5


# ---------------------------------------------------------------- faults


def test_faults_are_survived_and_no_correction_is_lost(
    fake: FakeTelegram, bot: BotProcess, digits: dict[int, np.ndarray], workdir: Path
) -> None:
    user, labels = 300, [5, 6, 9]
    fake.inject("getUpdates", "500", times=2)
    fake.inject("getFile", "slow", delay=2.0)
    fake.inject("download", "drop_before")
    fake.inject("sendMessage", "500", times=2)
    fake.inject("sendChatAction", "429", retry_after=1)
    sent = [fake.send_photo(user, paper_photo([digits[label]])) for label in labels]
    fake.inject("getUpdates", "drop")  # the updates reach the bot only on the next poll
    answers = [fake.wait_reply(user, message_id, REPLY_TIMEOUT) for message_id in sent]
    assert all("% sure" in a["text"] and len(buttons(a)) == 2 for a in answers), answers

    # The user says every answer is wrong (label 1) while the server misbehaves on every step after it.
    fake.inject("answerCallbackQuery", "500", times=3)
    fake.inject("editMessageText", "drop")
    fake.inject("sendMessage", "429", retry_after=1)
    for answer in answers:
        fake.press(user, answer, f"set:{answer_key(answer)}:0:1")
    with FeedbackStore(workdir / "feedback.db") as store:
        fake.wait_for(lambda: store.count(str(user)) == len(labels), timeout=REPLY_TIMEOUT)
        assert [store.samples(answer_key(a))[0].label for a in answers] == [1, 1, 1]
    assert fake.wait_reply(user, fake.send_text(user, "/help"), REPLY_TIMEOUT)["text"] == replies.GREETING
    assert bot.process.poll() is None, bot.log()
    log = bot.log()
    assert "retrying" in log and fake.token not in log


# ---------------------------------------------------------------- restart, correction, forget, logs


def test_corrections_work_after_a_restart_and_forget_deletes_them(
    own_fake: FakeTelegram, digits: dict[int, np.ndarray], tmp_path: Path
) -> None:
    fake = own_fake
    user, db, log = 400, tmp_path / "feedback.db", tmp_path / "bot.log"
    first = BotProcess(fake, db, log).wait_ready()
    answer = fake.wait_reply(user, fake.send_photo(user, paper_photo([digits[8]])), REPLY_TIMEOUT)
    assert first.stop(signal.SIGTERM) == 0
    assert "Bot stopped" in first.log()

    second = BotProcess(fake, db, log).wait_ready()
    try:
        fake.press(user, answer, buttons(answer)["✏️ Wrong? Fix it"])
        keypad = fake.wait_for(
            lambda: "3" in buttons(fake.message(user, answer["message_id"])), REPLY_TIMEOUT
        )
        assert keypad
        fake.press(user, fake.message(user, answer["message_id"]), f"set:{answer_key(answer)}:0:3")
        fake.wait_for(
            lambda: "You said it's a 3" in fake.message(user, answer["message_id"])["text"], REPLY_TIMEOUT
        )
        with FeedbackStore(db) as store:
            [sample] = store.samples(answer_key(answer))
        assert (sample.predicted, sample.label) == (8, 3)

        fake.press(user, answer, buttons(answer)["🔍 What I saw"])
        picture = fake.wait_reply(user, answer["message_id"], REPLY_TIMEOUT)
        assert picture["caption"].startswith("Left: the part of your photo I used")

        forgot = fake.wait_reply(user, fake.send_text(user, "/forget"), REPLY_TIMEOUT)
        assert forgot["text"] == replies.forgotten(1)
        with FeedbackStore(db) as store:
            assert store.count(str(user)) == 0 and store.samples(answer_key(answer)) == []
    finally:
        assert second.stop(signal.SIGINT) == 0
    text = log.read_text()
    assert "sendMessage" in text  # DEBUG logging did record the API calls...
    assert "<token>" in text  # python-telegram-bot logs its URLs at DEBUG: redacted...
    assert fake.token not in text  # ...so the token itself never appears


def test_export_makes_a_training_set_from_the_corrections(
    fake: FakeTelegram, bot: BotProcess, digits: dict[int, np.ndarray], workdir: Path, tmp_path: Path
) -> None:
    answer = fake.wait_reply(500, fake.send_photo(500, paper_photo([digits[0]])), REPLY_TIMEOUT)
    fake.press(500, answer, f"set:{answer_key(answer)}:0:0")
    with FeedbackStore(workdir / "feedback.db") as store:
        fake.wait_for(lambda: store.count("500") == 1, REPLY_TIMEOUT)
        n = store.export(tmp_path / "extra.npz")
    data = np.load(tmp_path / "extra.npz")
    assert n == len(data["y"]) >= 1 and data["x"].shape == (n, 28, 28) and data["x"].dtype == np.uint8
    assert data["x"][-1].max() > 200 and data["y"][-1] == 0  # ink bright on black, as in MNIST


# ---------------------------------------------------------------- webhook mode


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_webhook_mode_receives_updates_and_checks_the_secret(
    own_fake: FakeTelegram, digits: dict[int, np.ndarray], tmp_path: Path
) -> None:
    fake = own_fake
    port = _free_port()
    url = f"http://127.0.0.1:{port}/hook"
    args = ("--webhook", url, "--port", str(port), "--listen", "127.0.0.1", "--secret", "s3cret-Token_1")
    webhook_bot = BotProcess(fake, tmp_path / "feedback.db", tmp_path / "bot.log", *args).wait_ready(
        "setWebhook"
    )
    try:
        registered = fake.calls("setWebhook")[-1].params
        assert registered["url"] == url and registered["secret_token"] == "s3cret-Token_1"
        answer = fake.wait_reply(600, fake.send_photo(600, paper_photo([digits[1]])), REPLY_TIMEOUT)
        assert answer["text"].startswith("1, ")
        forged = urllib.request.Request(url, b'{"update_id": 999999}', {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=10)
        assert refused.value.code == 403
    finally:
        assert webhook_bot.stop(signal.SIGTERM) == 0, webhook_bot.log()
    assert fake.token not in webhook_bot.log()


def test_a_missing_token_is_a_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MNIST_BOT_"))}
    done = subprocess.run(
        [sys.executable, "-m", "mnist_bot.bot"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1  # `python -m mnist_bot.bot` is `mnist-bot bot`: a typed error exits 1
    assert "Set TELEGRAM_BOT_TOKEN" in done.stderr

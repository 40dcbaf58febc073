"""Handler tests: the real Application in a thread, talking real HTTP to the fake Bot API server.

The recognizer runs the real preprocessing with the fast fake runtime, so answers are predictable;
the end-to-end tests (test_bot_e2e.py) repeat the main paths with the real model in a subprocess.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mnist_bot import Recognizer
from mnist_bot.annotate import SURE_COLOUR
from mnist_bot.bot import replies
from mnist_bot.bot.app import build_application, protect_token
from mnist_bot.config import Settings, load_settings
from mnist_bot.feedback import FeedbackStore
from mnist_bot.runtime import FakeRuntime
from tests.conftest import encode
from tests.fake_telegram import FakeTelegram, blank_photo, mnist_test_digits, paper_photo, reencode

pytestmark = pytest.mark.e2e  # real HTTP to the fake Bot API, though with the fast fake model

USER = 1001


def always(digit: int, strength: float = 6.0) -> Callable[[np.ndarray], np.ndarray]:
    """Fake-runtime scores that always favour one digit (softmax ~0.98 at strength 6)."""
    return lambda image: np.eye(10, dtype=np.float32)[digit] * strength


class RunningBot:
    """The bot's Application polling in a background thread with its own event loop."""

    def __init__(self, settings: Settings, recognizer: Recognizer) -> None:
        protect_token(settings.telegram_token or "")
        self.application = build_application(settings, recognizer=recognizer)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.application.run_polling(stop_signals=None, close_loop=False, timeout=2)

    def start(self, fake: FakeTelegram) -> RunningBot:
        self.thread.start()
        fake.wait_for(lambda: fake.calls("deleteWebhook"), timeout=20)
        return self

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.application.stop_running)
            self.thread.join(20)
        self.loop.close()


@pytest.fixture(scope="module")
def digits(mnist_dir: Path) -> dict[int, np.ndarray]:
    """One clean MNIST test digit per class."""
    x, y = mnist_test_digits(str(mnist_dir))
    return {d: x[int(np.flatnonzero(y == d)[0])] for d in range(10)}


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


@pytest.fixture
def settings(fake: FakeTelegram, tmp_path: Path) -> Settings:
    return load_settings(
        telegram_token=fake.token, telegram_api_base_url=fake.base_url, db_path=tmp_path / "feedback.db"
    )


@pytest.fixture
def start_bot(fake: FakeTelegram, settings: Settings) -> Iterator[Callable[..., RunningBot]]:
    """Start a bot with a fake-runtime recognizer (always 7 unless told otherwise)."""
    running: list[RunningBot] = []

    def start(recognizer: Recognizer | None = None, **overrides: Any) -> RunningBot:
        bot = RunningBot(replace(settings, **overrides), recognizer or Recognizer(FakeRuntime(always(7))))
        running.append(bot.start(fake))
        return bot

    yield start
    for bot in running:
        bot.stop()


def buttons(message: dict[str, Any]) -> list[dict[str, str]]:
    """Return the inline buttons under a message, flattened."""
    return [b for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


def answer_key(message: dict[str, Any]) -> str:
    """Return the stored sample's key carried by the first button under an answer."""
    return buttons(message)[0]["callback_data"].split(":")[1]


def tap(fake: FakeTelegram, user: int, message: dict[str, Any], label: str) -> str:
    """Press the button whose text contains `label` (or whose data equals it); return the query id."""
    current = fake.message(message["chat"]["id"], message["message_id"])
    button = next(b for b in buttons(current) if label in b["text"] or b["callback_data"] == label)
    return fake.press(user, current, button["callback_data"])


def wait_answered(fake: FakeTelegram, query_id: str) -> dict[str, Any]:
    """Wait for the bot to answer a button tap and return the answer's parameters."""
    return dict(fake.wait_for(lambda: fake.answered(query_id))[0].params)


def wait_markup(
    fake: FakeTelegram, message: dict[str, Any], changed_from: list[dict[str, str]]
) -> list[dict]:
    """Wait until the buttons under a message change, and return the new ones."""
    key = (message["chat"]["id"], message["message_id"])
    return list(fake.wait_for(lambda: (b := buttons(fake.message(*key))) != changed_from and b))


# ---------------------------------------------------------------- commands and hints


def test_start_and_help_greet_in_the_users_chat_threaded_to_the_command(
    fake: FakeTelegram, start_bot: Callable[..., RunningBot]
) -> None:
    start_bot()
    for command in ("/start", "/help"):
        sent = fake.send_text(USER, command)
        answer = fake.wait_reply(USER, sent)
        assert answer["text"] == replies.GREETING
        assert answer["chat"]["id"] == USER
    assert [c.params["commands"][0]["command"] for c in fake.calls("setMyCommands")] == ["start"]


def test_about_reports_the_measured_accuracy(
    fake: FakeTelegram, start_bot: Callable[..., RunningBot]
) -> None:
    start_bot(Recognizer(FakeRuntime(always(7)), metadata={"architecture": "cnn", "test_accuracy": 0.9925}))
    answer = fake.wait_reply(USER, fake.send_text(USER, "/about"))
    assert "99.25%" in answer["text"] and "never keep your photos" in answer["text"]


@pytest.mark.parametrize("kind", ["sticker", "voice", "video", "location"])
def test_non_image_messages_get_a_hint(
    fake: FakeTelegram, start_bot: Callable[..., RunningBot], kind: str
) -> None:
    start_bot()
    answer = fake.wait_reply(USER, fake.send_other(USER, kind))
    assert answer["text"] == replies.HINTS_BY_KIND.get(kind, replies.HINT)


def test_text_and_unknown_commands_get_a_hint(
    fake: FakeTelegram, start_bot: Callable[..., RunningBot]
) -> None:
    start_bot()
    assert fake.wait_reply(USER, fake.send_text(USER, "what is this?"))["text"] == replies.HINT
    assert fake.wait_reply(USER, fake.send_text(USER, "/dance"))["text"] == replies.HINT


# ---------------------------------------------------------------- photos and files


def test_a_photo_is_answered_with_buttons_after_a_typing_action(
    fake: FakeTelegram,
    start_bot: Callable[..., RunningBot],
    digits: dict[int, np.ndarray],
    settings: Settings,
) -> None:
    start_bot()
    sent = fake.send_photo(USER, paper_photo([digits[7]]))
    answer = fake.wait_reply(USER, sent)
    assert answer["text"] == "7, 98% sure"
    assert [b["text"] for b in buttons(answer)] == ["🔍 What I saw", "✏️ Wrong? Fix it"]
    methods = [c.method for c in fake.calls()]
    assert methods.index("sendChatAction") < methods.index("sendMessage")
    # The photo came in four sizes (90, 320, 800 and 960 px): the 800 px one is the smallest big enough.
    sizes = fake.message(USER, sent)["photo"]
    assert fake.calls("getFile")[0].params["file_id"] == sizes[2]["file_id"] and sizes[2]["width"] == 800
    key = answer_key(answer)
    with FeedbackStore(settings.db_path) as store:
        [sample] = store.samples(key)
    assert sample.predicted == 7 and sample.label is None and sample.input28.max() > 0.5


@pytest.mark.parametrize(
    "file",
    [("PNG", "digit.png", "image/png"), ("WEBP", "digit.webp", "image/webp"), ("HEIF", "IMG_0042.HEIC", "")],
)
def test_an_image_sent_as_a_file_is_answered(
    fake: FakeTelegram,
    start_bot: Callable[..., RunningBot],
    digits: dict[int, np.ndarray],
    file: tuple[str, str, str],
) -> None:
    start_bot()
    fmt, name, mime = file
    sent = fake.send_document(USER, reencode(paper_photo([digits[3]]), fmt), name, mime)
    assert fake.wait_reply(USER, sent)["text"] == "7, 98% sure"


def test_a_number_is_read_digit_by_digit(
    fake: FakeTelegram, start_bot: Callable[..., RunningBot], digits: dict[int, np.ndarray]
) -> None:
    start_bot()
    sent = fake.send_photo(USER, paper_photo([digits[2], digits[0], digits[4], digits[8]], side=160))
    text = fake.wait_reply(USER, sent)["text"]
    assert text.splitlines() == ["I read 7777", "7: 98%", "7: 98%", "7: 98%", "7: 98%"]


def test_an_empty_photo_gets_no_guess(fake: FakeTelegram, start_bot: Callable[..., RunningBot]) -> None:
    start_bot()
    answer = fake.wait_reply(USER, fake.send_photo(USER, blank_photo()))
    assert answer["text"] == replies.EMPTY
    assert "reply_markup" not in answer


def test_a_corrupt_file_is_explained(fake: FakeTelegram, start_bot: Callable[..., RunningBot]) -> None:
    start_bot()
    answer = fake.wait_reply(
        USER, fake.send_document(USER, b"\xff\xd8\xff garbage", "photo.jpg", "image/jpeg")
    )
    assert "not an image I can read" in answer["text"]


def test_other_files_are_refused_without_downloading(
    fake: FakeTelegram, start_bot: Callable[..., RunningBot]
) -> None:
    start_bot()
    answer = fake.wait_reply(USER, fake.send_document(USER, b"%PDF-1.4", "notes.pdf", "application/pdf"))
    assert answer["text"] == replies.NOT_AN_IMAGE
    assert fake.calls("getFile") == []


def test_files_over_the_download_limit_are_refused(
    fake: FakeTelegram, start_bot: Callable[..., RunningBot]
) -> None:
    start_bot()
    big = fake.send_document(USER, b"x", "huge.png", "image/png", declared_size=25 * 1024 * 1024)
    assert fake.wait_reply(USER, big)["text"].startswith("That file is 25 MB")
    assert fake.calls("getFile") == []
    # Without a declared size, Telegram's getFile refuses it ("file is too big"): same friendly answer.
    huge = 25 * 1024 * 1024
    unknown = fake.send_document(
        USER, b"x", "huge.png", "image/png", declared_size=huge, size_in_message=False
    )
    assert "20 MB" in fake.wait_reply(USER, unknown)["text"]


def test_an_unexpected_failure_is_logged_and_apologised_for(
    fake: FakeTelegram,
    start_bot: Callable[..., RunningBot],
    digits: dict[int, np.ndarray],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(image: np.ndarray) -> np.ndarray:
        raise RuntimeError("model exploded")

    start_bot(Recognizer(FakeRuntime(broken)))
    with caplog.at_level(logging.ERROR, logger="mnist_bot.bot.handlers"):
        answer = fake.wait_reply(USER, fake.send_photo(USER, paper_photo([digits[1]])))
        fake.wait_for(lambda: "model exploded" in caplog.text)
    assert answer["text"] == replies.APOLOGY
    assert "Traceback" in caplog.text


# ---------------------------------------------------------------- buttons


def test_fix_flow_stores_the_correction_and_thanks_the_user(
    fake: FakeTelegram,
    start_bot: Callable[..., RunningBot],
    digits: dict[int, np.ndarray],
    settings: Settings,
) -> None:
    start_bot()
    answer = fake.wait_reply(USER, fake.send_photo(USER, paper_photo([digits[1]])))
    first = buttons(answer)
    query = tap(fake, USER, answer, "Fix it")
    keypad = wait_markup(fake, answer, first)
    assert wait_answered(fake, query).get("text") == replies.PICK_DIGIT
    assert sorted(b["text"] for b in keypad if b["callback_data"].startswith("set:")) == list("0123456789")
    query = tap(fake, USER, answer, "1")
    toast = wait_answered(fake, query)
    assert toast["text"].startswith("Thanks! Saved as 1")
    edited = fake.wait_for(lambda: "You said" in fake.message(USER, answer["message_id"])["text"] and True)
    assert edited
    final = fake.message(USER, answer["message_id"])
    assert final["text"].startswith("7, 98% sure") and "You said it's a 1" in final["text"]
    assert buttons(final) == first
    with FeedbackStore(settings.db_path) as store:
        assert store.count(str(USER)) == 1
        x, y, predicted = store.labelled()
    assert y.tolist() == [1] and predicted.tolist() == [7] and x.shape == (1, 28, 28)


def test_back_restores_the_answer_buttons(
    fake: FakeTelegram, start_bot: Callable[..., RunningBot], digits: dict[int, np.ndarray]
) -> None:
    start_bot()
    answer = fake.wait_reply(USER, fake.send_photo(USER, paper_photo([digits[5]])))
    first = buttons(answer)
    tap(fake, USER, answer, "Fix it")
    keypad = wait_markup(fake, answer, first)
    tap(fake, USER, answer, "Back")
    assert wait_markup(fake, answer, keypad) == first


def test_a_number_is_fixed_one_digit_at_a_time(
    fake: FakeTelegram,
    start_bot: Callable[..., RunningBot],
    digits: dict[int, np.ndarray],
    settings: Settings,
) -> None:
    start_bot()
    answer = fake.wait_reply(USER, fake.send_photo(USER, paper_photo([digits[4], digits[2]], side=180)))
    first = buttons(answer)
    tap(fake, USER, answer, "Fix it")
    picker = wait_markup(fake, answer, first)
    assert [b["text"] for b in picker] == ["1st: 7", "2nd: 7", "↩ Back"]
    tap(fake, USER, answer, "2nd: 7")
    wait_markup(fake, answer, picker)
    query = tap(fake, USER, answer, f"set:{first[0]['callback_data'].split(':')[1]}:1:2")
    wait_answered(fake, query)
    fake.wait_for(lambda: "You said it's 72" in fake.message(USER, answer["message_id"])["text"])
    with FeedbackStore(settings.db_path) as store:
        labels = [s.label for s in store.samples(first[0]["callback_data"].split(":")[1])]
    assert labels == [None, 2]


def test_what_i_saw_sends_the_model_input_next_to_the_crop(
    fake: FakeTelegram, start_bot: Callable[..., RunningBot], digits: dict[int, np.ndarray]
) -> None:
    start_bot()
    answer = fake.wait_reply(USER, fake.send_photo(USER, paper_photo([digits[9]])))
    wait_answered(fake, tap(fake, USER, answer, "What I saw"))
    picture = fake.wait_reply(USER, answer["message_id"])
    assert picture["caption"].startswith("Left: the part of your photo I used")
    assert picture["photo"][0]["width"] > picture["photo"][0]["height"]
    assert [c.params["action"] for c in fake.calls("sendChatAction")][-1] == "upload_photo"


def test_only_the_sender_can_correct_an_answer(
    fake: FakeTelegram,
    start_bot: Callable[..., RunningBot],
    digits: dict[int, np.ndarray],
    settings: Settings,
) -> None:
    start_bot()
    answer = fake.wait_reply(USER, fake.send_photo(USER, paper_photo([digits[0]])))
    key = answer_key(answer)
    toast = wait_answered(fake, fake.press(2002, answer, f"set:{key}:0:3"))
    assert toast["text"] == replies.NOT_YOURS and toast["show_alert"] is True
    with FeedbackStore(settings.db_path) as store:
        assert store.count() == 0


def test_forget_deletes_everything_and_old_buttons_say_so(
    fake: FakeTelegram,
    start_bot: Callable[..., RunningBot],
    digits: dict[int, np.ndarray],
    settings: Settings,
) -> None:
    start_bot()
    answer = fake.wait_reply(USER, fake.send_photo(USER, paper_photo([digits[6]])))
    key = answer_key(answer)
    wait_answered(fake, fake.press(USER, answer, f"set:{key}:0:6"))
    other = fake.wait_reply(2002, fake.send_photo(2002, paper_photo([digits[6]])))
    assert fake.wait_reply(USER, fake.send_text(USER, "/forget"))["text"] == replies.forgotten(1)
    toast = wait_answered(fake, tap(fake, USER, answer, "Fix it"))
    assert toast["text"] == replies.EXPIRED
    with FeedbackStore(settings.db_path) as store:
        assert store.count(str(USER)) == 0
        assert len(store.samples(answer_key(other))) == 1


def test_buttons_the_bot_did_not_make_are_acknowledged_and_ignored(
    fake: FakeTelegram, start_bot: Callable[..., RunningBot]
) -> None:
    start_bot()
    hint = fake.wait_reply(USER, fake.send_text(USER, "hi"))
    assert "text" not in wait_answered(fake, fake.press(USER, hint, "bogus:data"))


# ---------------------------------------------------------------- access, limits, faults, concurrency


def test_only_allowed_users_are_served(fake: FakeTelegram, start_bot: Callable[..., RunningBot]) -> None:
    start_bot(allowed_user_ids=frozenset({USER}))
    assert fake.wait_reply(2002, fake.send_text(2002, "/start"))["text"] == replies.PRIVATE
    assert fake.wait_reply(USER, fake.send_text(USER, "/start"))["text"] == replies.GREETING


def test_a_user_over_the_rate_limit_is_told_once_to_slow_down(
    fake: FakeTelegram, start_bot: Callable[..., RunningBot], digits: dict[int, np.ndarray]
) -> None:
    start_bot(rate_limit_per_minute=2)
    photo = paper_photo([digits[2]])
    sent = [fake.send_photo(USER, photo) for _ in range(4)]
    assert fake.wait_reply(USER, sent[0])["text"] == "7, 98% sure"
    assert fake.wait_reply(USER, sent[1])["text"] == "7, 98% sure"
    assert fake.wait_reply(USER, sent[2])["text"] == replies.slow_down(2)
    assert fake.wait_reply(2002, fake.send_photo(2002, photo))["text"] == "7, 98% sure"  # others unaffected
    assert fake.replies_to(USER, sent[3]) == []


def test_server_errors_rate_limits_and_lost_answers_are_retried(
    fake: FakeTelegram, start_bot: Callable[..., RunningBot], digits: dict[int, np.ndarray]
) -> None:
    start_bot()
    photo = paper_photo([digits[7]])
    fake.inject("getUpdates", "500", times=2)
    fake.inject("getFile", "drop_before")
    fake.inject("download", "500")
    fake.inject("sendMessage", "500", times=2)
    first = fake.wait_reply(USER, fake.send_photo(USER, photo), timeout=30)
    assert first["text"] == "7, 98% sure"
    fake.inject("sendMessage", "429", retry_after=1)
    started = time.monotonic()
    assert fake.wait_reply(USER, fake.send_photo(USER, photo), timeout=30)["text"] == "7, 98% sure"
    assert time.monotonic() - started >= 1.0  # it waited as told
    fake.inject("getUpdates", "drop")  # updates delivered, answer lost: they come again
    assert fake.wait_reply(USER, fake.send_text(USER, "/help"), timeout=30)["text"] == replies.GREETING


def test_a_slow_download_does_not_hold_up_other_users(
    fake: FakeTelegram, start_bot: Callable[..., RunningBot], digits: dict[int, np.ndarray]
) -> None:
    start_bot()
    fake.inject("download", "slow", delay=3.0)
    slow = fake.send_photo(USER, paper_photo([digits[1]]))
    fake.wait_for(lambda: fake.calls("getFile"))
    quick = fake.send_photo(2002, paper_photo([digits[2]]))
    fast_answer = fake.wait_reply(2002, quick)
    assert fake.replies_to(USER, slow) == []  # still downloading
    slow_answer = fake.wait_reply(USER, slow)
    assert slow_answer["message_id"] > fast_answer["message_id"]


# ---------------------------------------------------------------- pages


def page_photo(rows: list[str], digits: dict[int, np.ndarray]) -> bytes:
    """Draw rows of MNIST test digits on paper, as a JPEG photo of a page."""
    from tests.test_layout import page_of

    return encode(Image.fromarray(page_of(rows, {d: [image] for d, image in digits.items()})), "JPEG")


def test_a_page_gets_an_annotated_photo_and_its_lines_and_one_digit_is_fixed(
    fake: FakeTelegram,
    start_bot: Callable[..., RunningBot],
    digits: dict[int, np.ndarray],
    settings: Settings,
) -> None:
    start_bot()
    sent = fake.send_photo(USER, page_photo(["314", "1592", "65"], digits))
    picture, answer = fake.wait_reply(USER, sent, count=1), fake.wait_reply(USER, sent, count=2)
    assert picture["caption"].startswith("What I read, marked on your photo")
    assert picture["caption"].splitlines()[1:] == ["777", "7777", "77"]
    assert answer["text"].splitlines()[1:4] == ["1: 777", "2: 7777", "3: 77"]
    marked = Image.open(io.BytesIO(next(iter(fake.calls("sendPhoto")[-1].files.values())))).convert("RGB")
    assert (np.asarray(marked) == SURE_COLOUR).all(axis=-1).sum() > 9 * 50  # nine boxes drawn on the photo
    first = buttons(answer)
    tap(fake, USER, answer, "Fix it")
    lines = wait_markup(fake, answer, first)
    assert [b["text"] for b in lines] == ["Line 1: 777", "Line 2: 7777", "Line 3: 77", "↩ Back"]
    tap(fake, USER, answer, "Line 2")
    positions = wait_markup(fake, answer, lines)
    assert [b["text"] for b in positions] == ["1st: 7", "2nd: 7", "3rd: 7", "4th: 7", "↩ Back"]
    tap(fake, USER, answer, "3rd: 7")
    wait_markup(fake, answer, positions)
    key = answer_key(answer)
    wait_answered(fake, tap(fake, USER, answer, f"set:{key}:5:9"))
    fake.wait_for(lambda: "3rd digit of line 2 is a 9" in fake.message(USER, answer["message_id"])["text"])
    with FeedbackStore(settings.db_path) as store:
        labels = [s.label for s in store.samples(key)]
    assert labels == [None] * 5 + [9] + [None] * 3


def test_how_i_read_it_under_what_i_saw_sends_the_strip_of_stages(
    fake: FakeTelegram, start_bot: Callable[..., RunningBot], digits: dict[int, np.ndarray]
) -> None:
    start_bot()
    answer = fake.wait_reply(USER, fake.send_photo(USER, paper_photo([digits[3]])))
    wait_answered(fake, tap(fake, USER, answer, "What I saw"))
    saw = fake.wait_reply(USER, answer["message_id"])
    assert [b["text"] for b in buttons(saw)] == ["🧭 How I read it"]
    assert buttons(saw)[0]["callback_data"] == f"how:{answer_key(answer)}"
    wait_answered(fake, tap(fake, USER, saw, "How I read it"))
    strip = fake.wait_reply(USER, saw["message_id"])
    assert strip["caption"] == replies.HOW_CAPTION
    size = strip["photo"][0]
    assert (
        size["width"] > 3 * size["height"] and size["width"] <= 20 * size["height"]
    )  # a strip Telegram takes

"""Update handlers: one small coroutine per kind of update, errors translated at this edge."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiolimiter import AsyncLimiter
from telegram import Document, InlineKeyboardMarkup, Message, PhotoSize, ReplyParameters, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import ApplicationHandlerStop, ContextTypes

from mnist_bot import EmptyImageError, PageReading, Prediction, Recognizer, RecognizerError
from mnist_bot.annotate import annotate
from mnist_bot.bot import images, keyboards, replies
from mnist_bot.feedback import FeedbackStore, Sample

log = logging.getLogger(__name__)

SERVICES = "services"
PENDING_DAYS = 30  # unlabelled answers are kept this long so their buttons keep working
MAX_TRACKED_USERS = 10_000


@dataclass
class UserLimiter:
    """Per-user incoming limit: `per_minute` images, and one warning per minute when exceeded."""

    per_minute: int
    _limiters: dict[int, AsyncLimiter] = field(default_factory=dict)
    _warned: dict[int, float] = field(default_factory=dict)

    async def allow(self, user_id: int) -> bool:
        """Take one unit of the user's budget if there is any left, never waiting."""
        limiter = self._limiters.get(user_id)
        if limiter is None:
            if len(self._limiters) > MAX_TRACKED_USERS:
                self._forget_idle()
            limiter = self._limiters[user_id] = AsyncLimiter(self.per_minute, 60)
        if not limiter.has_capacity():
            return False
        await limiter.acquire()  # returns at once: capacity was just checked on this single-threaded loop
        return True

    def should_warn(self, user_id: int) -> bool:
        """Warn a limited user at most once a minute, so the bot does not flood them either."""
        now = time.monotonic()
        if now - self._warned.get(user_id, -60.0) < 60:
            return False
        self._warned[user_id] = now
        return True

    def _forget_idle(self) -> None:
        """Drop limiters that are full again, so memory stays bounded."""
        for user_id, limiter in list(self._limiters.items()):
            if limiter.has_capacity(limiter.max_rate):
                del self._limiters[user_id]
                self._warned.pop(user_id, None)


@dataclass
class Services:
    """What the handlers need, kept in `application.bot_data`."""

    recognizer: Recognizer
    store: FeedbackStore
    limiter: UserLimiter
    allowed_user_ids: frozenset[int] = frozenset()


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    """Fetch the shared services from the application."""
    found = context.bot_data[SERVICES]
    assert isinstance(found, Services)
    return found


def user_key(update: Update) -> str:
    """Identify the sender for the feedback store (hashed there, never stored raw)."""
    if update.effective_user is not None:
        return str(update.effective_user.id)
    return f"chat:{update.effective_chat.id if update.effective_chat else 0}"


def threaded(message: Message) -> ReplyParameters:
    """Reply parameters that thread an answer to the user's message, even if it was deleted."""
    return ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)


async def reply(message: Message, text: str, **kwargs: object) -> Message:
    """Answer a message in its chat, threaded to it."""
    return await message.reply_text(text, reply_parameters=threaded(message), **kwargs)  # type: ignore[arg-type]


async def show_action(message: Message, action: str = ChatAction.TYPING) -> None:
    """Show "typing..." while working; losing this hint must never lose the answer."""
    with contextlib.suppress(TelegramError):
        await message.reply_chat_action(action)


# ---------------------------------------------------------------- gatekeeping (group -1)


async def gatekeeper(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stop updates from users outside the allow-list, and images beyond the per-user limit."""
    found = services(context)
    user = update.effective_user
    if found.allowed_user_ids and (user is None or user.id not in found.allowed_user_ids):
        if update.callback_query is not None:
            await update.callback_query.answer(replies.PRIVATE)
        elif update.effective_message is not None:
            await reply(update.effective_message, replies.PRIVATE)
        raise ApplicationHandlerStop
    message = update.message
    if user is None or message is None or not (message.photo or message.document):
        return
    if not await found.limiter.allow(user.id):
        if found.limiter.should_warn(user.id):
            await reply(message, replies.slow_down(found.limiter.per_minute))
        raise ApplicationHandlerStop


# ---------------------------------------------------------------- commands


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet and explain how to take a good photo (/start and /help)."""
    if update.effective_message is not None:
        await reply(update.effective_message, replies.GREETING)


async def about(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Describe the model, its accuracy and what is stored."""
    found = services(context)
    if update.effective_message is None:
        return
    stored = await asyncio.to_thread(found.store.count, user_key(update))
    await reply(update.effective_message, replies.about(found.recognizer.metadata, stored))


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Delete everything stored for this user."""
    if update.effective_message is None:
        return
    count = await asyncio.to_thread(services(context).store.forget, user_key(update))
    await reply(update.effective_message, replies.forgotten(count))


# ---------------------------------------------------------------- images


def recognise(recognizer: Recognizer, data: bytes) -> PageReading:
    """Read whatever the photo holds: a digit, a number or a page (runs in a worker thread)."""
    return recognizer.read(data)


def annotated_png(data: bytes, page: PageReading) -> bytes:
    """Draw the reading on the photo and encode it as PNG (runs in a worker thread)."""
    out = io.BytesIO()
    annotate(data, page).save(out, format="PNG")
    return out.getvalue()


def _box(prediction: Prediction) -> tuple[int, int, int, int] | None:
    """Return a prediction's box as a plain tuple for storage."""
    box = prediction.box
    return None if box is None else (int(box.x), int(box.y), int(box.w), int(box.h))


async def answer_image(update: Update, context: ContextTypes.DEFAULT_TYPE, file_id: str) -> None:
    """Download an image, recognise it, store the answer as pending and reply with buttons."""
    message = update.effective_message
    assert message is not None
    found = services(context)
    await show_action(message)
    try:
        telegram_file = await context.bot.get_file(file_id)
        data = bytes(await telegram_file.download_as_bytearray())
        page = await asyncio.to_thread(recognise, found.recognizer, data)
    except BadRequest as exc:
        if "too big" not in str(exc).lower():
            raise
        await reply(message, replies.too_big(None))
        return
    except EmptyImageError:
        await reply(message, replies.EMPTY)
        return
    except RecognizerError as exc:
        await reply(message, str(exc))
        return
    predictions = page.digits
    key = await asyncio.to_thread(
        found.store.add_pending,
        [p.input28 for p in predictions],
        [p.digit for p in predictions],
        user_key(update),
        "telegram",
        file_ref=file_id,
        boxes=[_box(p) for p in predictions],
    )
    if not replies.is_page(page):
        await reply(message, replies.reading_reply(predictions), reply_markup=keyboards.answer_keyboard(key))
        return
    await send_annotated(message, data, page)
    await reply(message, replies.page_reply(page), reply_markup=keyboards.answer_keyboard(key))


async def send_annotated(message: Message, data: bytes, page: PageReading) -> None:
    """Send the photo with every digit's box and reading drawn on it; the text answer follows anyway."""
    await show_action(message, ChatAction.UPLOAD_PHOTO)
    picture = await asyncio.to_thread(annotated_png, data, page)
    await message.reply_photo(picture, caption=replies.page_caption(page), reply_parameters=threaded(message))


async def photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer a photo, fetching the smallest size that is big enough."""
    message = update.effective_message
    assert message is not None
    size: PhotoSize = images.pick_photo_size(message.photo)
    if size.file_size and size.file_size > replies.DOWNLOAD_LIMIT_BYTES:
        await reply(message, replies.too_big(size.file_size))
        return
    await answer_image(update, context, size.file_id)


async def document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer an image sent as a file; refuse other files and files over the download limit."""
    message = update.effective_message
    assert message is not None
    doc: Document | None = message.document
    if doc is None or not replies.is_image_document(doc.file_name, doc.mime_type):
        await reply(message, replies.NOT_AN_IMAGE)
        return
    if doc.file_size and doc.file_size > replies.DOWNLOAD_LIMIT_BYTES:
        await reply(message, replies.too_big(doc.file_size))
        return
    await answer_image(update, context, doc.file_id)


def message_kind(message: Message) -> str:
    """Name the kind of a message that is not an image, to pick a hint."""
    for kind in ("sticker", "voice", "audio", "video_note", "video", "animation", "text"):
        if getattr(message, kind, None):
            return kind
    return "other"


async def hint(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer anything that is not an image with a short hint instead of silence."""
    message = update.effective_message
    if message is not None:
        await reply(message, replies.HINTS_BY_KIND.get(message_kind(message), replies.HINT))


# ---------------------------------------------------------------- buttons


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Handle a tap on an answer's buttons; everything needed is in the callback data and SQLite."""
    query = update.callback_query
    assert query is not None
    tap = keyboards.parse(query.data)
    if tap is None:
        await query.answer()
        return
    samples = await asyncio.to_thread(services(context).store.samples, tap.answer)
    if not samples:
        await query.answer(replies.EXPIRED, show_alert=True)
        return
    if tap.action == "saw":
        await show_what_i_saw(update, context, samples)
    elif tap.action == "how":
        await show_how_i_read(update, context, samples)
    elif tap.action == "set":
        await store_correction(update, context, tap, samples)
    else:
        await change_keyboard(update, tap, samples)


def _spans(query_message: object, count: int) -> list[tuple[int, int]] | None:
    """Return a page answer's lines as (first position, count), read back from its text."""
    text = query_message.text if isinstance(query_message, Message) else None
    return replies.page_spans(text or "", count)


def _picker(
    tap: keyboards.Tap, samples: Sequence[Sample], answer: object
) -> tuple[InlineKeyboardMarkup, str]:
    """Choose the buttons a tap leads to, and the note to show with them."""
    digits = [s.predicted for s in samples]
    spans = _spans(answer, len(samples))
    if tap.action == "fix" and (spans is not None or len(samples) > keyboards.MAX_BUTTONS):
        return keyboards.line_picker(tap.answer, digits, spans), replies.PICK_LINE
    if tap.action == "fix" and len(samples) > 1:
        return keyboards.position_picker(tap.answer, digits), replies.PICK_POSITION
    if tap.action == "row" and tap.count and tap.position + tap.count <= len(samples):
        row = digits[tap.position : tap.position + tap.count]
        return keyboards.position_picker(tap.answer, row, tap.position), replies.PICK_POSITION
    if tap.action in {"fix", "pos"} and tap.position < len(samples):
        return keyboards.digit_keypad(tap.answer, tap.position), replies.PICK_DIGIT
    return keyboards.answer_keyboard(tap.answer), ""


async def change_keyboard(update: Update, tap: keyboards.Tap, samples: Sequence[Sample]) -> None:
    """Swap the buttons under an answer: line or digit picker, keypad, or back to the answer buttons."""
    query = update.callback_query
    assert query is not None
    markup, note = _picker(tap, samples, query.message)
    await query.answer(note or None)
    await _ignore_unmodified(query.edit_message_reply_markup(reply_markup=markup))


def _note(text: str, tap: keyboards.Tap, samples: Sequence[Sample]) -> str:
    """Write the correction under the answer: by line and position on a page, else the digits."""
    spans = replies.page_spans(text, len(samples))
    if spans is not None and tap.label is not None:
        line = next(n for n, (start, count) in enumerate(spans, 1) if tap.position < start + count)
        return replies.page_corrected_note(text, line, tap.position - spans[line - 1][0], tap.label)
    digits = [s.label if s.label is not None else s.predicted for s in samples]
    return replies.corrected_note(text, digits)


async def store_correction(
    update: Update, context: ContextTypes.DEFAULT_TYPE, tap: keyboards.Tap, samples: Sequence[Sample]
) -> None:
    """Save the right label first, then thank the user and note it under the answer."""
    query = update.callback_query
    assert query is not None and tap.label is not None
    store = services(context).store
    saved = await asyncio.to_thread(store.correct, tap.answer, tap.position, tap.label, user_key(update))
    if not saved:
        await query.answer(replies.NOT_YOURS, show_alert=True)
        return
    predicted = samples[tap.position].predicted if tap.position < len(samples) else tap.label
    await query.answer(replies.thanks(tap.label, predicted))
    fresh = await asyncio.to_thread(store.samples, tap.answer)
    answer = query.message
    if isinstance(answer, Message) and answer.text:
        markup = keyboards.answer_keyboard(tap.answer)
        await _ignore_unmodified(query.edit_message_text(_note(answer.text, tap, fresh), reply_markup=markup))


async def show_what_i_saw(
    update: Update, context: ContextTypes.DEFAULT_TYPE, samples: Sequence[Sample]
) -> None:
    """Send the 28x28 inputs, enlarged, next to the crop of the original photo."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    answer = query.message
    chat_id = answer.chat.id if answer is not None else query.from_user.id
    with contextlib.suppress(TelegramError):
        await context.bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO)
    photo_bytes = await _refetch(context, samples[0].file_ref)
    picture = await asyncio.to_thread(
        images.what_i_saw, [s.input28 for s in samples], photo_bytes, [s.box for s in samples]
    )
    caption = replies.saw_caption([s.predicted for s in samples], photo_bytes is not None)
    reply_to = ReplyParameters(answer.message_id, allow_sending_without_reply=True) if answer else None
    how = keyboards.explain_keyboard(samples[0].answer) if photo_bytes is not None else None
    await context.bot.send_photo(
        chat_id, picture, caption=caption, reply_parameters=reply_to, reply_markup=how
    )


async def show_how_i_read(
    update: Update, context: ContextTypes.DEFAULT_TYPE, samples: Sequence[Sample]
) -> None:
    """Read the photo again with every stage kept, and send the strip of stages."""
    query = update.callback_query
    assert query is not None
    photo_bytes = await _refetch(context, samples[0].file_ref)
    if photo_bytes is None:
        await query.answer(replies.PHOTO_GONE, show_alert=True)
        return
    await query.answer()
    answer = query.message
    chat_id = answer.chat.id if answer is not None else query.from_user.id
    with contextlib.suppress(TelegramError):
        await context.bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO)
    picture = await asyncio.to_thread(images.how_i_read, services(context).recognizer, photo_bytes)
    reply_to = ReplyParameters(answer.message_id, allow_sending_without_reply=True) if answer else None
    await context.bot.send_photo(chat_id, picture, caption=replies.HOW_CAPTION, reply_parameters=reply_to)


async def _refetch(context: ContextTypes.DEFAULT_TYPE, file_ref: str | None) -> bytes | None:
    """Download the original photo again by its file id (it is never stored here)."""
    if not file_ref:
        return None
    try:
        telegram_file = await context.bot.get_file(file_ref)
        return bytes(await telegram_file.download_as_bytearray())
    except TelegramError as exc:
        log.info("Could not fetch the original photo again: %s", exc)
        return None


async def _ignore_unmodified(edit: object) -> None:
    """Await an edit, ignoring Telegram's complaint that nothing changed (a repeated tap)."""
    try:
        await edit  # type: ignore[misc]
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise


# ---------------------------------------------------------------- errors


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log any failure with its traceback and apologise to the user when there is one."""
    error = context.error
    if isinstance(error, NetworkError | TimedOut | RetryAfter) and not isinstance(error, BadRequest):
        log.warning("Telegram could not be reached (%s: %s); continuing", type(error).__name__, error)
    else:
        log.error("Unhandled error while handling an update", exc_info=error)
    if isinstance(update, Update) and update.callback_query is not None:
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer(replies.APOLOGY)
    elif isinstance(update, Update) and update.effective_message is not None:
        with contextlib.suppress(TelegramError):
            await reply(update.effective_message, replies.APOLOGY)

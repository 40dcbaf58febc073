"""Wire the bot: the python-telegram-bot Application, retries, flood control and token-safe logs."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlparse

from telegram import BotCommand, Update
from telegram.error import InvalidToken, NetworkError, TelegramError, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest, RequestData

from mnist_bot import ConfigError, Recognizer
from mnist_bot.bot import handlers
from mnist_bot.config import Settings
from mnist_bot.feedback import FeedbackStore

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)  # seconds before each retry of a failed Bot API call
# python-telegram-bot retries these itself, pausing 1 s and then 1.5 times longer each time (up to
# 30 s): start-up calls (bootstrap_retries=-1) and, while polling, getUpdates.
BOOTSTRAP_METHODS = frozenset({"getMe", "deleteWebhook", "setWebhook"})
PTB_RETRIED = BOOTSTRAP_METHODS | {"getUpdates"}
RETRY_AFTER_RETRIES = 5  # 429 answers honoured (retry_after) per call by the rate limiter
CONCURRENT_UPDATES = 64
COMMANDS = (
    ("start", "How to use this bot"),
    ("help", "Tips for a good photo"),
    ("about", "The model, its accuracy and your privacy"),
    ("forget", "Delete everything stored about you"),
)


class RetryingRequest(HTTPXRequest):
    """HTTPX transport that retries server errors and lost connections, never user errors.

    getUpdates and the start-up calls are left alone: python-telegram-bot retries them forever with
    growing pauses. Its start-up loop logs nothing above DEBUG, so the reason is logged here.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._failing_since: float | None = None  # monotonic time of the first failure in a row
        self._failures = 0

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        write_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        connect_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        pool_timeout: Any = HTTPXRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request, retrying 5xx answers and network failures with backoff."""
        # Never log `url`: it holds the bot token.
        endpoint = "file download" if "/file/bot" in url else url.rsplit("/", 1)[-1]
        retries = () if endpoint in PTB_RETRIED else RETRY_DELAYS
        for delay in (*retries, None):
            try:
                code, payload = await super().do_request(
                    url, method, request_data, read_timeout, write_timeout, connect_timeout, pool_timeout
                )
            except (NetworkError, TimedOut) as exc:
                self._count_failure(endpoint, exc)
                if delay is None:
                    raise
                log.warning("%s failed (%s); retrying in %.1fs", endpoint, type(exc).__name__, delay)
            else:
                self._failing_since, self._failures = None, 0
                if code < 500 or delay is None:
                    return code, payload
                log.warning("%s got HTTP %d; retrying in %.1fs", endpoint, code, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _count_failure(self, endpoint: str, exc: TelegramError) -> None:
        """Count failures in a row; log why a start-up call failed, and for how long it has."""
        now = time.monotonic()
        self._failing_since = self._failing_since or now
        self._failures += 1
        if endpoint in BOOTSTRAP_METHODS:
            log.warning(
                "Cannot reach Telegram (%s: %s); attempt %d failed, %.1f s after the first; "
                "retrying with growing pauses",
                endpoint,
                exc,
                self._failures,
                now - self._failing_since,
            )


class RedactingFilter(logging.Filter):
    """Replace a secret in log messages and tracebacks before any handler writes them."""

    def __init__(self, secret: str, replacement: str = "<token>") -> None:
        super().__init__()
        self.secret, self.replacement = secret, replacement

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the formatted message and any exception text; never drop the record."""
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, self.replacement), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.secret in record.exc_text:
            record.exc_text = record.exc_text.replace(self.secret, self.replacement)
        return True


class DropInvalidTokenTraceback(logging.Filter):
    """Drop python-telegram-bot's traceback for a refused token: run_bot reports it in one sentence."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but the one carrying InvalidToken."""
        return not (record.exc_info and isinstance(record.exc_info[1], InvalidToken))


def protect_token(token: str) -> None:
    """Keep the token out of logs: silence httpx's URL logging and redact every root handler."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not token:
        return  # nothing to hide; an empty pattern would match everywhere
    redactor = RedactingFilter(token)
    for handler in [*logging.getLogger().handlers, logging.lastResort]:
        if handler is not None and not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(redactor)


def add_handlers(application: Application) -> None:
    """Register one handler per kind of update."""
    application.add_handler(TypeHandler(Update, handlers.gatekeeper), group=-1)
    application.add_handler(CommandHandler(["start", "help"], handlers.start))
    application.add_handler(CommandHandler("about", handlers.about))
    application.add_handler(CommandHandler("forget", handlers.forget))
    application.add_handler(CallbackQueryHandler(handlers.button))
    application.add_handler(MessageHandler(filters.PHOTO, handlers.photo))
    application.add_handler(MessageHandler(filters.Document.ALL & ~filters.ANIMATION, handlers.document))
    application.add_handler(MessageHandler(filters.ALL & ~filters.UpdateType.EDITED, handlers.hint))
    application.add_error_handler(handlers.on_error)


async def _post_init(application: Application) -> None:
    """Publish the command list and drop answers too old to be corrected."""
    found = application.bot_data[handlers.SERVICES]
    purged = await asyncio.to_thread(found.store.purge_pending, handlers.PENDING_DAYS * 86400)
    log.info("Bot @%s ready; purged %d stale pending answers", application.bot.username, purged)
    try:
        await application.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])
    except TelegramError as exc:  # a missing command menu is cosmetic
        log.warning("Could not set the command list: %s", exc)


async def _post_shutdown(application: Application) -> None:
    """Close the feedback store."""
    application.bot_data[handlers.SERVICES].store.close()
    log.info("Bot stopped")


def build_application(
    settings: Settings,
    recognizer: Recognizer | None = None,
    store: FeedbackStore | None = None,
    flood_rate: float = 30.0,
    concurrency: int = CONCURRENT_UPDATES,
) -> Application:
    """Build the Application: handlers, retrying HTTP, flood control and concurrent updates."""
    if not settings.telegram_token:
        raise ConfigError("Set TELEGRAM_BOT_TOKEN (from @BotFather) in the environment or in .env.")
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_token)
        .request(RetryingRequest(connection_pool_size=concurrency + 8, read_timeout=15.0, pool_timeout=10.0))
        .get_updates_request(RetryingRequest(connection_pool_size=2))
        .rate_limiter(AIORateLimiter(overall_max_rate=flood_rate, max_retries=RETRY_AFTER_RETRIES))
        .concurrent_updates(concurrency)
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
    )
    if settings.telegram_api_base_url:
        api = settings.telegram_api_base_url.rstrip("/")
        builder = builder.base_url(f"{api}/bot").base_file_url(f"{api}/file/bot")
    application = builder.build()
    application.bot_data[handlers.SERVICES] = handlers.Services(
        recognizer=recognizer or Recognizer.load(settings.model_path),
        store=store or FeedbackStore(settings.db_path),
        limiter=handlers.UserLimiter(settings.rate_limit_per_minute),
        allowed_user_ids=settings.allowed_user_ids,
    )
    add_handlers(application)
    return application


def run_bot(
    settings: Settings,
    webhook_url: str | None = None,
    *,
    port: int = 8443,
    path: str | None = None,
    secret: str | None = None,
    listen: str = "0.0.0.0",  # the webhook server must be reachable from the reverse proxy
    flood_rate: float = 30.0,
    concurrency: int = CONCURRENT_UPDATES,
) -> None:
    """Run the bot until SIGINT/SIGTERM: long polling, or a webhook server when `webhook_url` is set."""
    protect_token(settings.telegram_token or "")  # before building: the Bot logs its URLs at DEBUG
    application = build_application(settings, flood_rate=flood_rate, concurrency=concurrency)
    ptb_log = logging.getLogger("telegram.ext")  # its retry loop's logger
    if not any(isinstance(f, DropInvalidTokenTraceback) for f in ptb_log.filters):
        ptb_log.addFilter(DropInvalidTokenTraceback())
    try:
        _serve(application, webhook_url, port, path, secret, listen)
    except InvalidToken as exc:
        raise ConfigError(
            "Telegram refused the bot token (401 Unauthorized): check TELEGRAM_BOT_TOKEN, "
            "or get a new token from @BotFather."
        ) from exc


def _serve(
    application: Application,
    webhook_url: str | None,
    port: int,
    path: str | None,
    secret: str | None,
    listen: str,
) -> None:
    """Poll, or serve the webhook, until SIGINT/SIGTERM; start-up calls are retried forever."""
    if webhook_url is None:
        log.info("Starting long polling")
        application.run_polling(allowed_updates=Update.ALL_TYPES, bootstrap_retries=-1)
        return
    url_path = (path if path is not None else urlparse(webhook_url).path).strip("/")
    log.info("Starting the webhook server on %s:%d/%s", listen, port, url_path)
    application.run_webhook(
        listen=listen,
        port=port,
        url_path=url_path,
        webhook_url=webhook_url,
        secret_token=secret or secrets.token_urlsafe(32),
        allowed_updates=Update.ALL_TYPES,
        bootstrap_retries=-1,
    )

"""A fake Telegram Bot API server on 127.0.0.1 speaking the real wire format, with fault injection.

The bot under test reaches it through TELEGRAM_API_BASE_URL exactly as it would reach a self-hosted
Bot API server: POST {base}/bot<token>/<method> with JSON, urlencoded or multipart bodies, and
GET {base}/file/bot<token>/<path> for downloads. Tests play the users: they queue updates (photos,
documents, texts, button taps) and read what the bot sent back.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
import secrets
import threading
import time
import urllib.request
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np
from PIL import Image

TOKEN = "123456789:AAFakeTokenForTestsOnly-abcdefghij_0123"
BOT_USER = {"id": 123456789, "is_bot": True, "first_name": "Digit reader", "username": "digit_reader_bot"}
INT_FIELDS = {
    "chat_id",
    "message_id",
    "offset",
    "limit",
    "timeout",
    "cache_time",
    "user_id",
    "max_connections",
}
BOOL_FIELDS = {"show_alert", "drop_pending_updates", "disable_notification", "protect_content"}
JSON_FIELDS = {
    "reply_markup",
    "reply_parameters",
    "allowed_updates",
    "commands",
    "entities",
    "caption_entities",
}
PHOTO_SIDES = (90, 320, 800, 1280)  # longest sides of the sizes Telegram makes of a photo
DOWNLOAD_LIMIT = 20 * 1024 * 1024


@dataclass(frozen=True)
class Call:
    """One Bot API request the bot made."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    at: float


@dataclass
class Fault:
    """A fault to inject into the next `times` calls of a method ("*" for any but getUpdates)."""

    kind: str  # "500" | "429" | "slow" | "drop"
    times: int = 1
    retry_after: int = 1
    delay: float = 1.0


@dataclass
class StoredFile:
    """A file the fake server can serve: its bytes and declared size."""

    file_id: str
    unique_id: str
    path: str
    data: bytes
    size: int


@dataclass
class _State:
    """Everything the server knows, guarded by one lock."""

    updates: deque[dict[str, Any]] = field(default_factory=deque)
    calls: list[Call] = field(default_factory=list)
    files: dict[str, StoredFile] = field(default_factory=dict)
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    faults: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))
    webhook: dict[str, Any] = field(default_factory=dict)
    stamps: dict[tuple[int, int], float] = field(default_factory=dict)  # monotonic time each message appeared
    next_update: int = 1
    next_message: int = 1
    next_callback: int = 1


class ApiError(Exception):
    """A Bot API error answer: HTTP status and description."""

    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.parameters = status, description, parameters


def _convert(key: str, value: str) -> Any:
    """Decode a form field the way the Bot API does for that parameter."""
    if key in JSON_FIELDS:
        return json.loads(value)
    if key in INT_FIELDS and value.lstrip("-").isdigit():
        return int(value)
    if key in BOOL_FIELDS:
        return value.lower() == "true"
    return value


def parse_body(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Parse a JSON, urlencoded or multipart request body into parameters and uploaded files."""
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if kind == "application/json":
        return (json.loads(body) if body else {}), {}
    if kind == "multipart/form-data":
        return _parse_multipart(content_type, body)
    return {k: _convert(k, v) for k, v in parse_qsl(body.decode(), keep_blank_values=True)}, {}


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Split a multipart/form-data body into text fields and file parts."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    params: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            files[str(name)] = payload
        else:
            params[str(name)] = _convert(str(name), payload.decode())
    return params, files


class FakeTelegram:
    """The fake Bot API server; use as a context manager or call start() and stop()."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self._state = _State()
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-telegram", daemon=True)
        self._stopping = False

    # ------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """The URL to put in TELEGRAM_API_BASE_URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeTelegram:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wake any long poll."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ users acting

    def add_file(self, data: bytes, suffix: str, declared_size: int | None = None) -> StoredFile:
        """Store a file as Telegram would, returning its ids and path."""
        with self._changed:
            n = len(self._state.files) + 1
            stored = StoredFile(
                file_id=f"F{n}_{secrets.token_urlsafe(24)}",  # long like real ids: too long for callback data
                unique_id=f"U{n}",
                path=f"photos/file_{n}{suffix}",
                data=data,
                size=declared_size if declared_size is not None else len(data),
            )
            self._state.files[stored.file_id] = stored
        return stored

    def photo_sizes(self, jpeg: bytes) -> list[dict[str, Any]]:
        """Make the PhotoSize list Telegram sends: a few downscaled copies and the original size."""
        image = Image.open(io.BytesIO(jpeg)).convert("RGB")
        sizes = []
        for side in [s for s in PHOTO_SIDES if s < max(image.size)] + [max(image.size)]:
            copy = image.copy()
            copy.thumbnail((side, side))
            out = io.BytesIO()
            copy.save(out, format="JPEG", quality=87)
            stored = self.add_file(out.getvalue(), ".jpg")
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.unique_id,
                    "width": copy.width,
                    "height": copy.height,
                    "file_size": stored.size,
                }
            )
        return sizes

    def _user(self, user_id: int) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": f"User{user_id}", "language_code": "en"}

    def _user_message(self, user_id: int, **content: Any) -> dict[str, Any]:
        """Queue a message update from a user in their private chat; return the message."""
        chat = {"id": user_id, "type": "private", "first_name": f"User{user_id}"}
        with self._changed:
            message_id = self._state.next_message
            self._state.next_message += 1
            message = {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": chat,
                "from": self._user(user_id),
            }
            message.update(content)
            self._state.messages[(user_id, message_id)] = message
            self._state.stamps[(user_id, message_id)] = time.monotonic()
            self._push({"message": message})
        return message

    def _push(self, update: dict[str, Any]) -> None:
        """Append an update (lock held) and wake the long poll or the webhook pusher."""
        update["update_id"] = self._state.next_update
        self._state.next_update += 1
        self._state.updates.append(update)
        self._changed.notify_all()
        if self._state.webhook.get("url"):
            threading.Thread(target=self._deliver_webhook, daemon=True).start()

    def send_photo(
        self,
        user_id: int,
        jpeg: bytes | None,
        caption: str | None = None,
        sizes: list[dict[str, Any]] | None = None,
    ) -> int:
        """A user sends a photo (or its sizes made earlier by photo_sizes); return its message id."""
        content: dict[str, Any] = {"photo": sizes if sizes is not None else self.photo_sizes(jpeg or b"")}
        if caption:
            content["caption"] = caption
        return int(self._user_message(user_id, **content)["message_id"])

    def send_document(
        self,
        user_id: int,
        data: bytes,
        file_name: str,
        mime_type: str,
        *,
        declared_size: int | None = None,
        size_in_message: bool = True,
    ) -> int:
        """A user sends a file (an image "as a file", a PDF, ...); return its message id."""
        stored = self.add_file(data, "." + file_name.rsplit(".", 1)[-1], declared_size)
        doc = {
            "file_id": stored.file_id,
            "file_unique_id": stored.unique_id,
            "file_name": file_name,
            "mime_type": mime_type,
        }
        if size_in_message:
            doc["file_size"] = stored.size
        return int(self._user_message(user_id, document=doc)["message_id"])

    def send_text(self, user_id: int, text: str) -> int:
        """A user sends text (a command when it starts with "/"); return its message id."""
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            content["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(text.split(maxsplit=1)[0])}
            ]
        return int(self._user_message(user_id, **content)["message_id"])

    def send_other(self, user_id: int, kind: str) -> int:
        """A user sends a sticker, voice note, video or location; return its message id."""
        stored = self.add_file(b"\x00" * 64, ".bin")
        ids = {"file_id": stored.file_id, "file_unique_id": stored.unique_id}
        content = {
            "sticker": {
                **ids,
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "type": "regular",
            },
            "voice": {**ids, "duration": 2},
            "video": {**ids, "width": 640, "height": 480, "duration": 3},
            "location": {"latitude": 52.52, "longitude": 13.40},
        }[kind]
        return int(self._user_message(user_id, **{kind: content})["message_id"])

    def press(self, user_id: int, bot_message: dict[str, Any], data: str) -> str:
        """A user taps an inline button under a bot message; return the callback query id."""
        with self._changed:
            query_id = str(self._state.next_callback)
            self._state.next_callback += 1
            current = self._state.messages.get(
                (bot_message["chat"]["id"], bot_message["message_id"]), bot_message
            )
            self._push(
                {
                    "callback_query": {
                        "id": query_id,
                        "from": self._user(user_id),
                        "chat_instance": f"ci{user_id}",
                        "message": current,
                        "data": data,
                    }
                }
            )
        return query_id

    # ------------------------------------------------------------ faults

    def inject(
        self, method: str, kind: str, times: int = 1, retry_after: int = 1, delay: float = 1.0
    ) -> None:
        """Make the next `times` calls of `method` fail: HTTP 500, 429 retry_after, slow, or dropped."""
        with self._changed:
            self._state.faults[method].append(Fault(kind, times, retry_after, delay))

    def _take_fault(self, method: str) -> Fault | None:
        """Pop the fault for this call, if one is armed (lock held)."""
        for key in (method, "*" if method != "getUpdates" else ""):
            queue = self._state.faults.get(key)
            if queue:
                fault = queue[0]
                fault.times -= 1
                if fault.times <= 0:
                    queue.popleft()
                return fault
        return None

    # ------------------------------------------------------------ observing the bot

    def calls(self, method: str | None = None) -> list[Call]:
        """Return the calls made so far, optionally of one method."""
        with self._changed:
            return [c for c in self._state.calls if method is None or c.method == method]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
        """Wait until `predicate()` returns something truthy, and return it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = predicate()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"gave up after {timeout}s; last calls: {self._state.calls[-5:]}")
                self._changed.wait(min(left, 0.2))

    def replies_to(self, chat_id: int, message_id: int) -> list[dict[str, Any]]:
        """Return the bot's messages threaded to one message, oldest first, as they are now."""
        with self._changed:
            return [
                m
                for (chat, _), m in sorted(self._state.messages.items())
                if chat == chat_id
                and m.get("from", {}).get("is_bot")
                and (m.get("reply_to_message") or {}).get("message_id") == message_id
            ]

    def wait_reply(
        self, chat_id: int, message_id: int, timeout: float = 15.0, count: int = 1
    ) -> dict[str, Any]:
        """Wait for the bot's `count`-th reply to a message and return it."""
        found = self.wait_for(
            lambda: (r := self.replies_to(chat_id, message_id)) and len(r) >= count and r, timeout
        )
        return dict(found[count - 1])

    def message(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """Return a message as it is now (after any edits)."""
        with self._changed:
            return dict(self._state.messages[(chat_id, message_id)])

    def stamp(self, chat_id: int, message_id: int) -> float:
        """Return when a message appeared (time.monotonic()), user's or bot's."""
        with self._changed:
            return self._state.stamps[(chat_id, message_id)]

    def answered(self, query_id: str) -> list[Call]:
        """Return the answerCallbackQuery calls for one tap."""
        return [
            c for c in self.calls("answerCallbackQuery") if str(c.params.get("callback_query_id")) == query_id
        ]

    def pending_updates(self) -> int:
        """Count updates the bot has not confirmed yet."""
        with self._changed:
            return len(self._state.updates)

    # ------------------------------------------------------------ the API

    def handle(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """Run one Bot API method and return its `result`."""
        if method != "getUpdates":
            with self._changed:
                self._state.calls.append(Call(method, params, files, time.time()))
                self._changed.notify_all()
        api = getattr(self, f"api_{method}", None)
        if api is None:
            raise ApiError(HTTPStatus.NOT_FOUND, "Not Found: method not found")
        return api(params, files)

    def api_getMe(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return {
            **BOT_USER,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def api_getUpdates(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        offset, limit = int(params.get("offset", 0) or 0), int(params.get("limit", 100) or 100)
        deadline = time.monotonic() + float(params.get("timeout", 0) or 0)
        with self._changed:
            # Updates below the offset are confirmed: Telegram forgets them.
            while self._state.updates and self._state.updates[0]["update_id"] < offset:
                self._state.updates.popleft()
            while not self._state.updates and not self._stopping and time.monotonic() < deadline:
                self._changed.wait(min(0.5, max(0.0, deadline - time.monotonic())))
            return list(itertools.islice(self._state.updates, limit))

    def api_getFile(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        with self._changed:
            stored = self._state.files.get(str(params.get("file_id")))
        if stored is None:
            raise ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: invalid file_id")
        if stored.size > DOWNLOAD_LIMIT:
            raise ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.unique_id,
            "file_size": stored.size,
            "file_path": stored.path,
        }

    def _bot_message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        """Store and return a message the bot sent."""
        chat_id = int(params["chat_id"])
        with self._changed:
            message_id = self._state.next_message
            self._state.next_message += 1
            message: dict[str, Any] = {
                "message_id": message_id,
                "date": int(time.time()),
                "from": BOT_USER,
                "chat": {"id": chat_id, "type": "private", "first_name": f"User{chat_id}"},
            }
            message.update(content)
            if params.get("reply_markup"):
                message["reply_markup"] = params["reply_markup"]
            replied = (params.get("reply_parameters") or {}).get("message_id") or params.get(
                "reply_to_message_id"
            )
            if replied and (chat_id, int(replied)) in self._state.messages:
                message["reply_to_message"] = self._state.messages[(chat_id, int(replied))]
            self._state.messages[(chat_id, message_id)] = message
            self._state.stamps[(chat_id, message_id)] = time.monotonic()
            self._changed.notify_all()
        return message

    def api_sendMessage(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if not str(params.get("text", "")).strip():
            raise ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: message text is empty")
        return self._bot_message(params, text=str(params["text"]))

    def api_sendPhoto(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        photo = params.get("photo")
        data = (
            files.get(photo[len("attach://") :])
            if isinstance(photo, str) and photo.startswith("attach://")
            else None
        )
        data = data if data is not None else files.get("photo")
        if data is None:
            raise ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: there is no photo in the request")
        try:
            width, height = Image.open(io.BytesIO(data)).size
        except OSError as exc:
            raise ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: IMAGE_PROCESS_FAILED") from exc
        stored = self.add_file(data, ".png")
        size = {
            "file_id": stored.file_id,
            "file_unique_id": stored.unique_id,
            "width": width,
            "height": height,
        }
        extra = {"caption": params["caption"]} if params.get("caption") else {}
        return self._bot_message(params, photo=[size], **extra)

    def api_sendChatAction(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return True

    def api_answerCallbackQuery(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return True

    def _edit(self, params: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        """Apply an edit to a stored message, refusing no-op edits like Telegram does."""
        key = (int(params["chat_id"]), int(params["message_id"]))
        with self._changed:
            message = self._state.messages.get(key)
            if message is None:
                raise ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: message to edit not found")
            if all(message.get(k) == v for k, v in changes.items()):
                raise ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: message is not modified")
            message.update(changes)
            message["edit_date"] = int(time.time())
            self._changed.notify_all()
            return dict(message)

    def api_editMessageText(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        changes = {"text": str(params["text"])}
        if "reply_markup" in params:
            changes["reply_markup"] = params["reply_markup"]
        return self._edit(params, changes)

    def api_editMessageReplyMarkup(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return self._edit(params, {"reply_markup": params.get("reply_markup") or {"inline_keyboard": []}})

    def api_setMyCommands(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return True

    def api_deleteWebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        with self._changed:
            self._state.webhook = {}
            if params.get("drop_pending_updates"):
                self._state.updates.clear()
        return True

    def api_setWebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        with self._changed:
            self._state.webhook = {"url": params["url"], "secret": params.get("secret_token")}
            pending = bool(self._state.updates)
        if pending:
            threading.Thread(target=self._deliver_webhook, daemon=True).start()
        return True

    def api_getWebhookInfo(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        with self._changed:
            return {
                "url": self._state.webhook.get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": len(self._state.updates),
            }

    def api_close(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return True

    def _deliver_webhook(self) -> None:
        """Push queued updates to the webhook one by one, as Telegram does, until it accepts them."""
        with self._changed:
            if not self._state.updates or not self._state.webhook.get("url"):
                return
            update, hook = self._state.updates.popleft(), dict(self._state.webhook)
        headers = {"Content-Type": "application/json"}
        if hook.get("secret"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret"]
        for _ in range(20):
            request = urllib.request.Request(hook["url"], json.dumps(update).encode(), headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == HTTPStatus.OK:
                        return
            except OSError:
                time.sleep(0.25)

    def file_bytes(self, path: str) -> bytes | None:
        """Return the bytes of a stored file by its download path."""
        with self._changed:
            return next((f.data for f in self._state.files.values() if f.path == path), None)

    def fault_for(self, method: str) -> Fault | None:
        """Pop the armed fault for a call of `method`, if any."""
        with self._changed:
            return self._take_fault(method)


def _handler_class(fake: FakeTelegram) -> type[BaseHTTPRequestHandler]:
    """Build the request handler class bound to one fake server."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: pytest shows the calls when a test fails."""

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (a stopped bot's long poll)

        def _error(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
            payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
            if parameters:
                payload["parameters"] = parameters
            self._send(status, json.dumps(payload).encode())

        def _drop(self) -> None:
            """Close the connection without answering."""
            self.close_connection = True
            self.connection.close()

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)  # httpx sends the token's ":" as %3A
            prefix = f"/file/bot{fake.token}/"
            if path.startswith(prefix):
                fault = fake.fault_for("download")
                if fault is not None and self._apply(fault):
                    return
                data = fake.file_bytes(path[len(prefix) :])
                if data is None:
                    self._error(HTTPStatus.NOT_FOUND, "Not Found")
                else:
                    self._send(HTTPStatus.OK, data, "application/octet-stream")
                return
            self.do_POST()

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            segments = unquote(parts.path).strip("/").split("/")
            if len(segments) != 2 or not segments[0].startswith("bot"):
                self._error(HTTPStatus.NOT_FOUND, "Not Found")
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if segments[0][3:] != fake.token:
                self._error(HTTPStatus.UNAUTHORIZED, "Unauthorized")
                return
            self._call(segments[1], body, parts.query)

        def _apply(self, fault: Fault) -> bool:
            """Apply a fault before the call; return True when the request is answered or dropped."""
            if fault.kind == "500":
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error")
            elif fault.kind == "429":
                self._error(
                    HTTPStatus.TOO_MANY_REQUESTS,
                    f"Too Many Requests: retry after {fault.retry_after}",
                    {"retry_after": fault.retry_after},
                )
            elif fault.kind == "slow":
                time.sleep(fault.delay)
                return False
            elif fault.kind == "drop_before":
                self._drop()
            else:
                return False
            return True

        def _call(self, method: str, body: bytes, query: str) -> None:
            fault = fake.fault_for(method)
            if fault is not None and self._apply(fault):
                return
            try:
                params, files = parse_body(self.headers.get("Content-Type", ""), body)
                params.update({k: _convert(k, v) for k, v in parse_qsl(query)})
                result = fake.handle(method, params, files)
            except ApiError as exc:
                self._error(exc.status, exc.description, exc.parameters)
                return
            except (KeyError, ValueError) as exc:
                self._error(HTTPStatus.BAD_REQUEST, f"Bad Request: {exc}")
                return
            if fault is not None and fault.kind == "drop":
                self._drop()  # done, but the answer is lost on the way back
                return
            self._send(HTTPStatus.OK, json.dumps({"ok": True, "result": result}).encode())

    return Handler


# ---------------------------------------------------------------- what users send


def mnist_test_digits(folder: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load the 10,000 MNIST test digits: uint8 (N, 28, 28) ink=255 and labels (N,)."""
    default = Path(__file__).resolve().parents[2] / "shared" / "mnist"
    root = Path(folder or os.environ.get("MNIST_DIR") or default)
    with gzip.open(root / "t10k-images-idx3-ubyte.gz") as images:
        x = np.frombuffer(images.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(root / "t10k-labels-idx1-ubyte.gz") as labels:
        y = np.frombuffer(labels.read(), dtype=np.uint8, offset=8)
    return x, y


def paper_photo(digits28: list[np.ndarray], side: int = 220, size: tuple[int, int] = (960, 720)) -> bytes:
    """Enlarge MNIST digits side by side as dark ink on light paper, centred in a JPEG "photo"."""
    width, height = size
    photo = Image.new("L", size, 236)
    gap = side // 3
    x = (width - len(digits28) * side - (len(digits28) - 1) * gap) // 2
    for digit in digits28:
        ink = Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)
        photo.paste(Image.new("L", (side, side), 25), (x, (height - side) // 2), ink)
        x += side + gap
    out = io.BytesIO()
    photo.convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue()


def blank_photo(size: tuple[int, int] = (960, 720)) -> bytes:
    """A JPEG of empty paper with gentle shading: nothing to read."""
    ramp = np.linspace(225, 240, size[0], dtype=np.float32)[np.newaxis, :].repeat(size[1], axis=0)
    out = io.BytesIO()
    Image.fromarray(ramp.astype(np.uint8)).convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue()


def png_bytes(jpeg: bytes) -> bytes:
    """Re-encode an image as PNG, as a user sending an image "as a file" might."""
    return reencode(jpeg, "PNG")


def reencode(image: bytes, fmt: str) -> bytes:
    """Re-encode an image as PNG, WEBP, HEIF (iPhone HEIC) or JPEG."""
    if fmt == "HEIF":
        from pillow_heif import register_heif_opener

        register_heif_opener()
    out = io.BytesIO()
    Image.open(io.BytesIO(image)).convert("RGB").save(out, format=fmt)
    return out.getvalue()

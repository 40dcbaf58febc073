"""SQLite store of user corrections: the 28x28 inputs, predictions and labels, never raw photos."""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

SIDE = 28
SOURCES = frozenset({"telegram", "widget", "cli"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    answer TEXT NOT NULL,          -- random key shared by the digits of one answer
    position INTEGER NOT NULL,     -- digit index within the answer, left to right
    user_hash TEXT NOT NULL,
    source TEXT NOT NULL,
    input28 BLOB NOT NULL,         -- 784 uint8, what the model saw
    predicted INTEGER NOT NULL,
    label INTEGER,                 -- NULL while the answer is only pending a possible correction
    file_ref TEXT,                 -- front-end reference to re-fetch the original (e.g. a Telegram file_id)
    box TEXT,                      -- JSON [x, y, w, h] of the digit in the original, or NULL
    created REAL NOT NULL,
    labelled REAL,
    UNIQUE (answer, position)
);
CREATE INDEX IF NOT EXISTS feedback_user ON feedback (user_hash);
CREATE INDEX IF NOT EXISTS feedback_created ON feedback (created);
"""


@dataclass(frozen=True)
class Sample:
    """One stored digit: what the model saw, what it said, and the label if corrected."""

    id: int
    answer: str
    position: int
    input28: np.ndarray = field(repr=False)  # (28, 28) float32 in [0, 1]
    predicted: int
    label: int | None
    source: str
    file_ref: str | None
    box: tuple[int, int, int, int] | None
    created: float


def to_uint8(input28: np.ndarray) -> np.ndarray:
    """Convert a (28, 28) float image in [0, 1] (or uint8) to (28, 28) uint8."""
    array = np.asarray(input28)
    if array.shape != (SIDE, SIDE):
        raise ValueError(f"input28 must have shape (28, 28), got {array.shape}")
    if array.dtype == np.uint8:
        return array
    return np.clip(np.rint(array.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def _check_digit(name: str, value: int) -> int:
    """Return `value` as an int after checking it is a digit 0-9."""
    if not 0 <= int(value) <= 9:
        raise ValueError(f"{name} must be a digit 0-9, got {value!r}")
    return int(value)


class FeedbackStore:
    """Thread-safe SQLite store of corrections; the schema is created on first use."""

    def __init__(self, path: str | Path, salt: str | None = None) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection guarded by a lock: sqlite3 objects must not be used by two threads at once.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=10.0, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 10000")
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(_SCHEMA)
        self._salt = salt if salt is not None else self._stored_salt()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Run statements atomically under the lock."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _stored_salt(self) -> str:
        """Return the per-database salt, creating it on first use."""
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('salt', ?)", (secrets.token_hex(16),))
            row = db.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
        return str(row[0])

    def hash_user(self, user: str) -> str:
        """Return the salted sha256 of a user id, the only form in which users are stored."""
        return hashlib.sha256(f"{self._salt}:{user}".encode()).hexdigest()

    def add(self, input28: np.ndarray, predicted: int, label: int, user: str, source: str) -> int:
        """Store one labelled digit and return its row id."""
        label, now = _check_digit("label", label), time.time()
        key = self.add_pending([input28], [predicted], user, source)
        with self._transaction() as db:
            db.execute("UPDATE feedback SET label = ?, labelled = ? WHERE answer = ?", (label, now, key))
            return int(db.execute("SELECT id FROM feedback WHERE answer = ?", (key,)).fetchone()[0])

    def add_pending(
        self,
        inputs: Sequence[np.ndarray],
        predicted: Sequence[int],
        user: str,
        source: str,
        *,
        file_ref: str | None = None,
        boxes: Sequence[tuple[int, int, int, int] | None] | None = None,
    ) -> str:
        """Store the digits of one answer without labels; return the answer key for later corrections."""
        if not inputs or len(inputs) != len(predicted):
            raise ValueError("inputs and predicted must be non-empty and the same length")
        if source not in SOURCES:
            raise ValueError(f"source must be one of {sorted(SOURCES)}, got {source!r}")
        boxes = boxes if boxes is not None else [None] * len(inputs)
        key, now, user_hash = secrets.token_urlsafe(9), time.time(), self.hash_user(user)
        rows = [
            (key, i, user_hash, source, to_uint8(x).tobytes(), _check_digit("predicted", p), file_ref,
             json.dumps([int(v) for v in box]) if box is not None else None, now)
            for i, (x, p, box) in enumerate(zip(inputs, predicted, boxes, strict=True))
        ]  # fmt: skip
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO feedback (answer, position, user_hash, source, input28, predicted, file_ref,"
                " box, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return key

    def correct(self, answer: str, position: int, label: int, user: str) -> bool:
        """Label one digit of an answer owned by `user`; return False if there is no such digit."""
        label = _check_digit("label", label)
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE feedback SET label = ?, labelled = ?"
                " WHERE answer = ? AND position = ? AND user_hash = ?",
                (label, time.time(), answer, int(position), self.hash_user(user)),
            )
        return cursor.rowcount > 0

    def samples(self, answer: str) -> list[Sample]:
        """Return the digits stored for one answer, left to right (empty if unknown or forgotten)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, answer, position, input28, predicted, label, source, file_ref, box, created"
                " FROM feedback WHERE answer = ? ORDER BY position",
                (answer,),
            ).fetchall()
        return [_sample(row) for row in rows]

    def forget(self, user: str) -> int:
        """Delete every row stored for `user`, pending or labelled; return how many."""
        with self._transaction() as db:
            return db.execute("DELETE FROM feedback WHERE user_hash = ?", (self.hash_user(user),)).rowcount

    def purge_pending(self, older_than_s: float) -> int:
        """Delete unlabelled rows older than `older_than_s` seconds; return how many."""
        cutoff = time.time() - older_than_s
        with self._transaction() as db:
            return db.execute("DELETE FROM feedback WHERE label IS NULL AND created < ?", (cutoff,)).rowcount

    def count(self, user: str | None = None) -> int:
        """Count labelled digits, for one user or everyone."""
        query = "SELECT COUNT(*) FROM feedback WHERE label IS NOT NULL"
        args: tuple[str, ...] = ()
        if user is not None:
            query, args = query + " AND user_hash = ?", (self.hash_user(user),)
        with self._lock:
            return int(self._db.execute(query, args).fetchone()[0])

    def stats(self) -> dict[str, Any]:
        """Summarise the store: labelled and pending counts, per source, per label, model errors."""
        with self._lock:
            labelled, pending, wrong, users = self._db.execute(
                "SELECT COUNT(label), COUNT(*) - COUNT(label), SUM(label IS NOT NULL AND label != predicted),"
                " COUNT(DISTINCT CASE WHEN label IS NOT NULL THEN user_hash END) FROM feedback"
            ).fetchone()
            by_source = self._db.execute(
                "SELECT source, COUNT(*) FROM feedback WHERE label IS NOT NULL GROUP BY source"
            ).fetchall()
            by_label = self._db.execute(
                "SELECT label, COUNT(*) FROM feedback WHERE label IS NOT NULL GROUP BY label"
            ).fetchall()
        return {
            "labelled": int(labelled),
            "pending": int(pending),
            "model_wrong": int(wrong or 0),
            "users": int(users),
            "by_source": {str(s): int(n) for s, n in by_source},
            "by_label": {str(label): int(n) for label, n in by_label},
        }

    def labelled(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return labelled digits as x (N, 28, 28) uint8, y (N,) uint8, predicted (N,) uint8."""
        with self._lock:
            rows = self._db.execute(
                "SELECT input28, label, predicted FROM feedback WHERE label IS NOT NULL ORDER BY id"
            ).fetchall()
        x = np.array([np.frombuffer(r[0], dtype=np.uint8).reshape(SIDE, SIDE) for r in rows], dtype=np.uint8)
        return (
            x.reshape(-1, SIDE, SIDE),
            np.array([r[1] for r in rows], dtype=np.uint8),
            np.array([r[2] for r in rows], dtype=np.uint8),
        )

    def export(self, out_path: str | Path) -> int:
        """Write labelled digits to an .npz (x (N,28,28) uint8 MNIST polarity, y (N,) uint8); return N."""
        x, y, predicted = self.labelled()
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as handle:  # a file object keeps np.savez from appending ".npz" to the name
            np.savez_compressed(handle, x=x, y=y, predicted=predicted)
        return len(y)


def _sample(row: tuple[Any, ...]) -> Sample:
    """Build a Sample from a database row."""
    ident, answer, position, blob, predicted, label, source, file_ref, box, created = row
    pixels = np.frombuffer(blob, dtype=np.uint8).reshape(SIDE, SIDE).astype(np.float32) / 255.0
    return Sample(
        id=int(ident),
        answer=str(answer),
        position=int(position),
        input28=pixels,
        predicted=int(predicted),
        label=None if label is None else int(label),
        source=str(source),
        file_ref=file_ref,
        box=tuple(json.loads(box)) if box else None,
        created=float(created),
    )

"""Tests of the feedback store on both backends: real SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from mnist_bot.cli import main
from mnist_bot.config import default_db_path
from mnist_bot.errors import ConfigError
from mnist_bot.feedback import MIGRATIONS, FeedbackStore, Migration, describe, to_uint8
from tests.servers import PostgresServer, pg_url, postgres_server

__all__ = ["pg_url", "postgres_server"]  # fixtures, imported for pytest

Target = Path | str  # a SQLite file or a postgresql:// URL


def _digit(value: float = 0.5) -> np.ndarray:
    """Return a (28, 28) float32 image with a bright square, like a prepared digit."""
    image = np.zeros((28, 28), dtype=np.float32)
    image[8:20, 10:18] = value
    return image


@pytest.fixture(params=["sqlite", "postgresql"])
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Target]:
    """Return a factory of fresh, empty databases of one backend."""
    if request.param == "sqlite":
        numbers = itertools.count()
        return lambda: tmp_path / f"feedback{next(numbers)}.db"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database


@pytest.fixture
def target(new_database: Callable[[], Target]) -> Target:
    return new_database()


@pytest.fixture
def store(target: Target) -> Iterator[FeedbackStore]:
    with FeedbackStore(target) as opened:
        yield opened


def _rows(target: Target, query: str) -> list[tuple[object, ...]]:
    """Run one query straight on the database, bypassing the store."""
    if isinstance(target, Path):
        with sqlite3.connect(target) as db:
            return db.execute(query).fetchall()
    import psycopg

    with psycopg.connect(target) as db:
        return db.execute(query).fetchall()


def _tables(target: Target) -> set[str]:
    """Return the names of the tables in a database."""
    if isinstance(target, Path):
        return {str(r[0]) for r in _rows(target, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {str(r[0]) for r in _rows(target, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_add_stores_a_labelled_digit_and_counts_it(store: FeedbackStore) -> None:
    row = store.add(_digit(), predicted=3, label=5, user="42", source="widget")
    assert row >= 1
    assert store.count() == 1
    assert store.count("42") == 1
    assert store.count("43") == 0


def test_users_are_stored_only_as_salted_hashes(new_database: Callable[[], Target]) -> None:
    target, other_target = new_database(), new_database()
    with FeedbackStore(target) as store:
        store.add(_digit(), 1, 7, "123456789", "telegram")
    dump = repr(_rows(target, "SELECT * FROM feedback")) + repr(_rows(target, "SELECT * FROM meta"))
    assert "123456789" not in dump
    with FeedbackStore(other_target) as other, FeedbackStore(target) as same:
        assert other.hash_user("123456789") != same.hash_user("123456789")
        assert same.count("123456789") == 1  # the salt survives reopening


def test_pending_answer_is_corrected_only_by_its_owner(store: FeedbackStore) -> None:
    key = store.add_pending(
        [_digit(), _digit(0.9)], [2, 0], "7", "telegram", file_ref="f1", boxes=[(1, 2, 3, 4), None]
    )
    assert store.count() == 0
    assert not store.correct(key, 1, 8, user="8")
    assert store.correct(key, 1, 8, user="7")
    samples = store.samples(key)
    assert [(s.position, s.predicted, s.label) for s in samples] == [(0, 2, None), (1, 0, 8)]
    assert samples[0].box == (1, 2, 3, 4) and samples[0].file_ref == "f1"
    assert np.allclose(samples[1].input28, _digit(0.9), atol=1 / 255)
    assert store.count("7") == 1


def test_correcting_twice_keeps_the_last_label(store: FeedbackStore) -> None:
    key = store.add_pending([_digit()], [4], "7", "telegram")
    store.correct(key, 0, 9, "7")
    store.correct(key, 0, 1, "7")
    assert store.samples(key)[0].label == 1
    assert store.count() == 1


def test_unknown_answer_has_no_samples_and_cannot_be_corrected(store: FeedbackStore) -> None:
    assert store.samples("nope") == []
    assert not store.correct("nope", 0, 3, "7")


def test_forget_deletes_pending_and_labelled_rows_of_one_user(store: FeedbackStore) -> None:
    store.add(_digit(), 1, 2, "a", "widget")
    key = store.add_pending([_digit(), _digit()], [1, 2], "a", "telegram")
    store.add(_digit(), 3, 3, "b", "widget")
    assert store.forget("a") == 3
    assert store.samples(key) == []
    assert store.count() == 1 and store.count("b") == 1
    assert store.forget("a") == 0


def test_export_writes_labelled_digits_as_mnist_style_npz(store: FeedbackStore, tmp_path: Path) -> None:
    store.add(_digit(1.0), 3, 5, "a", "widget")
    store.add_pending([_digit()], [6], "a", "telegram")  # pending rows are not training data
    key = store.add_pending([_digit(0.5)], [6], "b", "telegram")
    store.correct(key, 0, 6, "b")
    out = tmp_path / "out" / "extra.npz"
    assert store.export(out) == 2
    data = np.load(out)
    assert data["x"].shape == (2, 28, 28) and data["x"].dtype == np.uint8
    assert data["y"].dtype == np.uint8 and data["y"].tolist() == [5, 6]
    assert data["x"][0].max() == 255 and data["x"][1].max() == 128


def test_export_of_an_empty_store_writes_empty_arrays(store: FeedbackStore, tmp_path: Path) -> None:
    assert store.export(tmp_path / "empty.npz") == 0
    data = np.load(tmp_path / "empty.npz")
    assert data["x"].shape == (0, 28, 28) and data["y"].shape == (0,)


def test_stats_summarise_sources_labels_and_model_errors(store: FeedbackStore) -> None:
    store.add(_digit(), 3, 5, "a", "widget")
    store.add(_digit(), 7, 7, "b", "telegram")
    store.add_pending([_digit()], [1], "c", "telegram")
    stats = store.stats()
    assert stats == {
        "labelled": 2,
        "pending": 1,
        "model_wrong": 1,
        "users": 2,
        "by_source": {"telegram": 1, "widget": 1},
        "by_label": {"5": 1, "7": 1},
    }


def test_purge_pending_removes_only_old_unlabelled_rows(store: FeedbackStore) -> None:
    store.add(_digit(), 1, 1, "a", "widget")
    key = store.add_pending([_digit()], [1], "a", "telegram")
    assert store.purge_pending(older_than_s=3600) == 0
    assert store.purge_pending(older_than_s=-1) == 1
    assert store.samples(key) == [] and store.count() == 1


def test_concurrent_writers_lose_nothing(store: FeedbackStore) -> None:
    def write(user: str) -> None:
        for i in range(25):
            store.add(_digit(), i % 10, (i + 1) % 10, user, "telegram")

    threads = [threading.Thread(target=write, args=(str(n),)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.count() == 100
    assert store.count("2") == 25


def test_two_stores_on_one_database_see_each_others_rows(target: Target) -> None:
    with FeedbackStore(target) as bot, FeedbackStore(target) as widget:
        key = bot.add_pending([_digit()], [4], "u", "telegram")
        widget.add(_digit(), 1, 2, "u", "widget")
        assert bot.count("u") == 1
        assert widget.correct(key, 0, 9, "u")
        assert bot.count() == 2


def test_two_replicas_writing_at_once_lose_nothing(target: Target) -> None:
    with FeedbackStore(target) as first, FeedbackStore(target) as second:

        def write(store: FeedbackStore, user: str) -> None:
            for i in range(20):
                key = store.add_pending([_digit(), _digit()], [i % 10, 1], user, "telegram")
                assert store.correct(key, 1, 7, user)

        replicas = itertools.product((first, second), range(3))
        threads = [threading.Thread(target=write, args=(s, f"{id(s)}-{n}")) for s, n in replicas]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert first.count() == second.count() == 120
        assert first.stats()["pending"] == 120


@pytest.mark.parametrize(
    ("inputs", "predicted", "source"),
    [([], [], "telegram"), ([np.zeros((28, 28))], [1, 2], "telegram"), ([np.zeros((28, 28))], [1], "email")],
)
def test_add_pending_rejects_bad_arguments(
    store: FeedbackStore, inputs: list[np.ndarray], predicted: list[int], source: str
) -> None:
    with pytest.raises(ValueError):
        store.add_pending(inputs, predicted, "u", source)


def test_labels_and_shapes_are_validated(store: FeedbackStore) -> None:
    with pytest.raises(ValueError):
        store.add(_digit(), 1, 10, "u", "widget")
    with pytest.raises(ValueError):
        store.add(np.zeros((28, 27)), 1, 2, "u", "widget")
    assert store.count() == 0


def test_to_uint8_scales_floats_and_keeps_uint8() -> None:
    assert to_uint8(np.full((28, 28), 1.0))[0, 0] == 255
    assert to_uint8(np.full((28, 28), 2.0))[0, 0] == 255
    raw = np.full((28, 28), 17, dtype=np.uint8)
    assert to_uint8(raw) is raw


@pytest.mark.slow
def test_the_export_is_accepted_by_training_as_extra_data(store: FeedbackStore, tmp_path: Path) -> None:
    from mnist_bot.training.train import load_extra  # imports TensorFlow: slow

    store.add(_digit(1.0), 3, 5, "a", "widget")
    store.add(_digit(0.5), 7, 7, "b", "telegram")
    store.export(tmp_path / "extra.npz")
    split = load_extra(tmp_path / "extra.npz")
    assert split.images.shape == (2, 28, 28) and split.labels.tolist() == [5, 7]


# ---------------------------------------------------------------- schema migrations

# The schema of the release before migrations were versioned: no schema_version table.
UNVERSIONED_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, answer TEXT NOT NULL, position INTEGER NOT NULL,
    user_hash TEXT NOT NULL, source TEXT NOT NULL, input28 BLOB NOT NULL, predicted INTEGER NOT NULL,
    label INTEGER, file_ref TEXT, box TEXT, created REAL NOT NULL, labelled REAL, UNIQUE (answer, position)
);
CREATE INDEX feedback_user ON feedback (user_hash);
CREATE INDEX feedback_created ON feedback (created);
"""
LATER = (
    Migration(3, "a note per answer", ("ALTER TABLE feedback ADD COLUMN note TEXT",)),
    Migration(2, "a table of models", ("CREATE TABLE models (id {id}, name TEXT NOT NULL, trained {real})",)),
)


def test_a_new_database_gets_every_migration_once(store: FeedbackStore, target: Target) -> None:
    assert store.schema_version == MIGRATIONS[-1].version == 1
    assert {"meta", "feedback", "schema_version"} <= _tables(target)
    assert [r[0] for r in _rows(target, "SELECT version FROM schema_version")] == [1]


def test_later_migrations_apply_in_order_and_only_once(target: Target) -> None:
    with FeedbackStore(target) as first:
        key = first.add_pending([_digit()], [3], "u", "widget")
    with FeedbackStore(target, migrations=MIGRATIONS + LATER) as upgraded:
        assert upgraded.schema_version == 3
        assert upgraded.samples(key)[0].predicted == 3  # rows survive the upgrade
    # Reopening must not rerun them: migration 2's CREATE TABLE would fail the second time.
    with FeedbackStore(target, migrations=MIGRATIONS + LATER) as again:
        assert again.schema_version == 3
    versions = _rows(target, "SELECT version, description FROM schema_version ORDER BY version")
    assert versions == [(1, MIGRATIONS[0].description), (2, "a table of models"), (3, "a note per answer")]
    assert "models" in _tables(target)


def test_an_older_release_still_opens_a_newer_database(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    with FeedbackStore(target, migrations=MIGRATIONS + LATER):
        pass
    with caplog.at_level(logging.WARNING), FeedbackStore(target) as old:  # a rolling deploy's old replica
        assert old.schema_version == 3
        old.add(_digit(), 1, 2, "u", "telegram")
        assert old.count() == 1
    assert "newer than this release knows" in caplog.text


def test_a_failing_migration_changes_nothing(target: Target) -> None:
    broken = Migration(2, "half done", ("CREATE TABLE models (name TEXT)", "ALTER TABLE nowhere ADD x TEXT"))
    with FeedbackStore(target) as store:
        store.add(_digit(), 1, 2, "u", "widget")
    with pytest.raises(Exception, match="nowhere"):
        FeedbackStore(target, migrations=(*MIGRATIONS, broken))
    assert "models" not in _tables(target)  # the whole migration rolled back, DDL included
    with FeedbackStore(target) as store:
        assert store.schema_version == 1 and store.count("u") == 1


def test_an_unversioned_file_from_an_older_release_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_user = hashlib.sha256(b"old-salt:42").hexdigest()  # how every release hashes user ids
    with sqlite3.connect(path) as old:
        old.executescript(UNVERSIONED_SCHEMA)
        old.execute("INSERT INTO meta VALUES ('salt', 'old-salt')")
        old.execute(
            "INSERT INTO feedback (answer, position, user_hash, source, input28, predicted, label, created)"
            " VALUES ('k', 0, ?, 'telegram', ?, 4, 9, 1.0)",
            (old_user, bytes(784)),
        )
    with FeedbackStore(path) as store:
        assert store.schema_version == 1
        assert store.count("42") == 1  # the old salt is kept, so old users are still recognised
        assert store.samples("k")[0].label == 9
        store.add(_digit(), 1, 2, "42", "widget")
        assert store.count("42") == 2


def test_replicas_opening_a_new_database_at_once_agree(target: Target) -> None:
    stores: list[FeedbackStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            stores.append(FeedbackStore(target))
        except BaseException as exc:  # reported below: a thread's exception would be lost
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not errors, errors
        assert len({s.hash_user("7") for s in stores}) == 1  # one salt for all
        assert _rows(target, "SELECT COUNT(*) FROM schema_version") == [(1,)]
    finally:
        for opened in stores:
            opened.close()


# ---------------------------------------------------------------- PostgreSQL specifics


def test_postgres_store_recovers_when_the_server_drops_its_connections(
    postgres_server: PostgresServer, pg_url: str
) -> None:
    import psycopg

    with FeedbackStore(pg_url) as store:
        store.add(_digit(), 1, 2, "u", "telegram")
        with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid != pg_backend_pid()",
                (pg_url.rsplit("/", 1)[1],),
            )
        assert store.count("u") == 1  # the pool checked its connection and opened a new one


def test_an_unreachable_postgres_is_a_clear_error_without_the_password() -> None:
    pytest.importorskip("psycopg")
    from tests.servers import free_port

    url = f"postgresql://bot:s3cret-pw@127.0.0.1:{free_port()}/feedback"
    with pytest.raises(ConfigError) as failed:
        FeedbackStore(url)
    assert "Cannot connect to the feedback database" in str(failed.value)
    assert "s3cret-pw" not in str(failed.value) and "bot:***@127.0.0.1" in str(failed.value)


def test_describe_hides_only_the_password() -> None:
    assert describe("postgresql://bot:pw@db:5432/fb") == "postgresql://bot:***@db:5432/fb"
    assert describe("postgresql://db/fb") == "postgresql://db/fb"
    assert describe(Path("/data/feedback.db")) == "/data/feedback.db"


# ---------------------------------------------------------------- `mnist-bot feedback`


def _stats(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    """Run `mnist-bot feedback stats --json` and return its JSON."""
    assert main(["feedback", "stats", "--json", *args]) == 0
    result: dict[str, object] = json.loads(capsys.readouterr().out)
    return result


def test_stats_on_a_fresh_install_report_zero_and_create_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    stats = _stats(capsys)
    assert stats["labelled"] == 0 and stats["pending"] == 0 and stats["by_label"] == {}
    assert stats["database"] == str(default_db_path())
    assert not default_db_path().exists()
    assert main(["feedback", "stats"]) == 0
    assert "labelled: 0" in capsys.readouterr().out


def test_the_default_database_is_shared_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bot").mkdir()
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "bot")
    with FeedbackStore(default_db_path()) as bot:  # what the bot and the widget open by default
        bot.add(_digit(), 3, 5, "a", "telegram")
    monkeypatch.chdir(tmp_path / "notebooks")
    assert _stats(capsys)["labelled"] == 1
    assert main(["feedback", "export", "out.npz"]) == 0
    assert np.load(tmp_path / "notebooks" / "out.npz")["y"].tolist() == [5]


def test_stats_read_the_database_named_by_db_or_the_environment(
    target: Target, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FeedbackStore(target) as store:
        store.add(_digit(), 3, 5, "a", "widget")
        store.add(_digit(), 7, 7, "b", "telegram")
    assert _stats(capsys, "--db", str(target))["model_wrong"] == 1
    monkeypatch.setenv("MNIST_BOT_DB", str(target))
    stats = _stats(capsys)
    assert stats["labelled"] == 2 and stats["by_source"] == {"telegram": 1, "widget": 1}


def test_export_on_a_fresh_install_writes_an_empty_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feedback", "export", "empty.npz"]) == 0
    assert "wrote 0 labelled digits" in capsys.readouterr().out
    assert np.load("empty.npz")["x"].shape == (0, 28, 28)

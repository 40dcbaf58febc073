"""Tests of the SQLite feedback store, on real database files."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mnist_bot.feedback import FeedbackStore, to_uint8


def _digit(value: float = 0.5) -> np.ndarray:
    """Return a (28, 28) float32 image with a bright square, like a prepared digit."""
    image = np.zeros((28, 28), dtype=np.float32)
    image[8:20, 10:18] = value
    return image


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeedbackStore]:
    with FeedbackStore(tmp_path / "feedback.db") as opened:
        yield opened


def test_add_stores_a_labelled_digit_and_counts_it(store: FeedbackStore) -> None:
    row = store.add(_digit(), predicted=3, label=5, user="42", source="widget")
    assert row >= 1
    assert store.count() == 1
    assert store.count("42") == 1
    assert store.count("43") == 0


def test_users_are_stored_only_as_salted_hashes(tmp_path: Path) -> None:
    path = tmp_path / "feedback.db"
    with FeedbackStore(path) as store:
        store.add(_digit(), 1, 7, "123456789", "telegram")
    dump = "\n".join(sqlite3.connect(path).iterdump())
    assert "123456789" not in dump
    with FeedbackStore(tmp_path / "other.db") as other, FeedbackStore(path) as same:
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


def test_two_stores_on_one_file_see_each_others_rows(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with FeedbackStore(path) as bot, FeedbackStore(path) as widget:
        key = bot.add_pending([_digit()], [4], "u", "telegram")
        widget.add(_digit(), 1, 2, "u", "widget")
        assert bot.count("u") == 1
        assert widget.correct(key, 0, 9, "u")
        assert bot.count() == 2


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

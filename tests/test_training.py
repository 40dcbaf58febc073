"""Tests of training: smoke runs of every architecture, reproducibility, augmentation, extra data."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mnist_bot.data import Mnist, Split
from mnist_bot.errors import DatasetError, ModelLoadError
from mnist_bot.feedback import FeedbackStore
from mnist_bot.recognizer import Recognizer
from mnist_bot.training.architectures import ARCHITECTURES, build
from mnist_bot.training.augment import AugmentConfig, augment_batch
from mnist_bot.training.train import TrainConfig, load_extra, make_dataset, train_model, training_split
from tests.conftest import draw_digit

METADATA_KEYS = {
    "name", "architecture", "parameters", "command", "epochs", "batch_size", "seed", "validation_split",
    "limit", "augment", "bn_momentum", "extra_data", "init_from", "data_source", "data_sha256", "versions",
    "date", "training_seconds", "machine", "history", "test_accuracy", "test_loss", "test_n",
    "tflite_agreement",
}  # fmt: skip
SMALL_TEST = 2000  # the smoke runs measure on part of the test set to stay quick on two cores


@pytest.fixture(scope="module")
def small_mnist(mnist: Mnist) -> Mnist:
    """Return the real MNIST with the test set cut to its first SMALL_TEST images."""
    test = Split(mnist.test.images[:SMALL_TEST], mnist.test.labels[:SMALL_TEST])
    return Mnist(mnist.train, test, mnist.source, mnist.checksums)


def synthetic_digits(count: int = 16) -> np.ndarray:
    """Draw MNIST-like float32 (count, 28, 28, 1) digits in [0, 1]: light ink on black."""
    digits = []
    for i in range(count):
        image = draw_digit(
            (1, 7, 4, 0)[i % 4], size=100, width=12, ink=255, paper=0, scale=0.7, offset=(15, 15)
        )
        digits.append(np.asarray(image.resize((28, 28), Image.Resampling.BILINEAR), dtype=np.float32) / 255)
    return np.stack(digits)[..., np.newaxis]


def fake_mnist(n_train: int = 100, value: int = 0) -> Mnist:
    """Return a tiny in-memory Mnist whose training images are all `value`."""
    train = Split(np.full((n_train, 28, 28), value, np.uint8), (np.arange(n_train) % 10).astype(np.uint8))
    test = Split(np.zeros((10, 28, 28), np.uint8), np.arange(10, dtype=np.uint8))
    return Mnist(train, test, "memory", {})


# --- architectures ------------------------------------------------------------------------------


@pytest.mark.parametrize(("arch", "parameters"), [("dense", 7850), ("mlp", 79510), ("mlp2", 109386)])
def test_tutorial_baselines_have_the_published_sizes(arch: str, parameters: int) -> None:
    model = build(arch)
    assert model.count_params() == parameters
    assert model.output_shape == (None, 10)


def test_cnn_maps_digits_to_probabilities() -> None:
    model = build("cnn")
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)
    out = np.asarray(model(synthetic_digits(4), training=False))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_unknown_architecture_is_rejected() -> None:
    with pytest.raises(ValueError, match="Unknown architecture 'resnet'"):
        build("resnet")
    assert set(ARCHITECTURES) == {"dense", "mlp", "mlp2", "cnn"}


# --- augmentation -------------------------------------------------------------------------------


def test_augmentation_keeps_shape_and_range_and_changes_images() -> None:
    tf.random.set_seed(3)
    batch = synthetic_digits(32)
    out = augment_batch(tf.constant(batch), AugmentConfig(probability=1.0)).numpy()
    assert out.shape == batch.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    changed = np.abs(out - batch).reshape(32, -1).max(axis=1) > 0.1
    assert changed.all()
    ink_ratio = out.reshape(32, -1).sum(axis=1) / batch.reshape(32, -1).sum(axis=1)
    assert (ink_ratio > 0.3).all() and (ink_ratio < 3.0).all()  # distorted, not erased or smeared


def test_augmentation_default_leaves_some_images_clean() -> None:
    tf.random.set_seed(4)
    batch = synthetic_digits(64)
    out = augment_batch(tf.constant(batch)).numpy()
    same = np.all(out == batch, axis=(1, 2, 3))
    assert 0 < same.sum() < 64  # probability 0.85: mostly distorted, a few clean


def test_augmentation_with_probability_zero_is_the_identity() -> None:
    batch = synthetic_digits(8)
    np.testing.assert_array_equal(
        augment_batch(tf.constant(batch), AugmentConfig(probability=0.0)).numpy(), batch
    )


def test_make_dataset_scales_batches_and_keeps_labels() -> None:
    split = Split((synthetic_digits(10)[..., 0] * 255).astype(np.uint8), np.arange(10, dtype=np.uint8))
    for augment in (False, True):
        batches = list(make_dataset(split, 4, augment=augment, shuffle_seed=None))
        assert [tuple(x.shape) for x, _ in batches] == [(4, 28, 28, 1), (4, 28, 28, 1), (2, 28, 28, 1)]
        x = np.concatenate([b[0].numpy() for b in batches])
        assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
        assert np.concatenate([b[1].numpy() for b in batches]).tolist() == list(range(10))
    clean = np.concatenate([b[0].numpy() for b in make_dataset(split, 4, False, None)])
    np.testing.assert_allclose(clean[..., 0], split.images / 255.0, atol=1e-6)


# --- extra data ---------------------------------------------------------------------------------


def test_load_extra_reads_x_and_y(tmp_path: Path) -> None:
    x = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "extra.npz", x=x, y=np.array([1, 2, 9]))
    extra = load_extra(tmp_path / "extra.npz")
    np.testing.assert_array_equal(extra.images, x)
    assert extra.labels.tolist() == [1, 2, 9] and extra.labels.dtype == np.uint8


@pytest.mark.parametrize(
    "arrays",
    [
        {"x": np.zeros((2, 28, 28), np.uint8)},
        {"x": np.zeros((2, 28, 27), np.uint8), "y": np.zeros(2, np.uint8)},
        {"x": np.zeros((2, 28, 28), np.uint8), "y": np.zeros(3, np.uint8)},
        {"x": np.zeros((2, 28, 28), np.uint8), "y": np.array([1, 10], np.uint8)},
    ],
    ids=["no-labels", "wrong-size", "count-mismatch", "label-10"],
)
def test_load_extra_rejects_bad_files(tmp_path: Path, arrays: dict[str, Any]) -> None:
    np.savez(tmp_path / "extra.npz", **arrays)
    with pytest.raises(DatasetError, match=re.escape("extra.npz")):
        load_extra(tmp_path / "extra.npz")


def test_load_extra_rejects_a_file_that_is_not_npz(tmp_path: Path) -> None:
    (tmp_path / "extra.npz").write_text("x,y\n1,2\n")
    with pytest.raises(DatasetError, match=re.escape("not an extra-data .npz")):
        load_extra(tmp_path / "extra.npz")


def test_feedback_export_is_valid_extra_data(tmp_path: Path) -> None:
    digit = np.zeros((28, 28), np.float32)
    digit[6:22, 12:16] = 1.0
    with FeedbackStore(tmp_path / "feedback.db") as store:
        store.add(digit, predicted=7, label=1, user="42", source="telegram")
        store.add(digit * 0.5, predicted=1, label=4, user="43", source="widget")
        assert store.export(tmp_path / "corrections.npz") == 2
    extra = load_extra(tmp_path / "corrections.npz")
    assert extra.images.shape == (2, 28, 28) and extra.labels.tolist() == [1, 4]
    assert extra.images[0].max() == 255 and extra.images[0, 0, 0] == 0  # MNIST polarity: ink is bright


def test_training_split_adds_extra_data(tmp_path: Path) -> None:
    np.savez(tmp_path / "extra.npz", x=np.full((20, 28, 28), 200, np.uint8), y=np.full(20, 3, np.uint8))
    mnist = fake_mnist(100)
    cfg = TrainConfig(arch="dense", extra_data=(tmp_path / "extra.npz",), validation_split=0.1)
    train, val = training_split(mnist, cfg)
    assert val is not None
    assert len(train.images) + len(val.images) == 120 and len(val.images) == 12
    everything = np.concatenate([train.images, val.images])
    assert int((everything[:, 0, 0] == 200).sum()) == 20  # every extra image is in, once
    train_again, _ = training_split(mnist, cfg)
    np.testing.assert_array_equal(train.labels, train_again.labels)  # the seed fixes the shuffle


def test_training_split_limit_and_no_validation() -> None:
    train, val = training_split(fake_mnist(100), TrainConfig(arch="dense", limit=30, validation_split=0.0))
    assert val is None and len(train.images) == 30
    other, _ = training_split(
        fake_mnist(100), TrainConfig(arch="dense", limit=30, validation_split=0, seed=2)
    )
    assert other.labels.tolist() != train.labels.tolist()


# --- training runs (real MNIST) -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arch", "epochs", "limit", "batch_size"),
    [("dense", 2, 3000, 128), ("mlp", 2, 3000, 128), ("mlp2", 2, 3000, 128), ("cnn", 2, 2000, 32)],
)
def test_smoke_training_writes_model_files_and_metadata(
    *, arch: str, epochs: int, limit: int, batch_size: int, small_mnist: Mnist, tmp_path: Path
) -> None:
    # A short run needs a fast batch-norm momentum, or the CNN's running statistics never settle.
    cfg = TrainConfig(arch=arch, epochs=epochs, limit=limit, batch_size=batch_size, out_dir=tmp_path,
                      bn_momentum=0.9, command=f"mnist-bot train --arch {arch}")  # fmt: skip
    result = train_model(cfg, small_mnist, verbose=0)
    assert result.keras_path == tmp_path / f"{arch}.keras" and result.keras_path.stat().st_size > 1000
    assert result.tflite_path == tmp_path / f"{arch}.tflite" and result.tflite_path.stat().st_size > 1000
    metadata = json.loads(result.metadata_path.read_text())
    assert metadata == result.metadata
    assert set(metadata) == METADATA_KEYS
    assert metadata["architecture"] == arch and metadata["name"] == arch
    assert metadata["command"] == f"mnist-bot train --arch {arch}"
    assert (
        metadata["epochs"] == epochs and metadata["limit"] == limit and metadata["augment"] == (arch == "cnn")
    )
    assert metadata["data_sha256"] == small_mnist.checksums and len(metadata["data_sha256"]) == 4
    assert set(metadata["versions"]) == {"python", "tensorflow", "keras", "numpy"}
    assert metadata["versions"]["tensorflow"] == tf.__version__
    assert dt.datetime.fromisoformat(metadata["date"]).tzinfo is not None
    assert metadata["training_seconds"] > 0
    assert metadata["parameters"] == build(arch).count_params()
    history = metadata["history"]
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == epochs for values in history.values())
    assert history["loss"][-1] < history["loss"][0]
    assert metadata["test_n"] == SMALL_TEST
    assert metadata["tflite_agreement"] >= 0.99
    assert metadata["bn_momentum"] == 0.9
    assert metadata["test_accuracy"] > 0.5  # chance is 0.1
    assert history["val_accuracy"][-1] > 0.5


@pytest.mark.slow
def test_tflite_file_answers_like_the_keras_file(small_mnist: Mnist, tmp_path: Path) -> None:
    import keras

    result = train_model(
        TrainConfig(arch="mlp", epochs=1, limit=1000, out_dir=tmp_path), small_mnist, verbose=0
    )
    x = small_mnist.test.images[:300].astype(np.float32) / 255
    from_keras = np.asarray(keras.models.load_model(result.keras_path)(x[..., np.newaxis], training=False))
    recognizer = Recognizer.load(result.tflite_path)
    assert recognizer.runtime.name == "litert"
    assert recognizer.metadata == result.metadata
    np.testing.assert_allclose(recognizer.classify28(x), from_keras, atol=1e-4)


def test_init_from_goes_on_training_the_given_model(small_mnist: Mnist, tmp_path: Path) -> None:
    import keras

    first_cfg = TrainConfig(arch="mlp", epochs=1, limit=1000, out_dir=tmp_path / "first")
    first = train_model(first_cfg, small_mnist, verbose=0)
    cfg = replace(first_cfg, init_from=first.keras_path, out_dir=tmp_path / "tuned")
    tuned = train_model(cfg, small_mnist, verbose=0)
    assert tuned.metadata["init_from"] == str(first.keras_path)
    # Fine-tuning starts from the first model's weights: its loss begins where that run ended.
    assert tuned.metadata["history"]["loss"][0] < first.metadata["history"]["loss"][0]
    before = keras.models.load_model(first.keras_path).get_weights()
    after = keras.models.load_model(tuned.keras_path).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_init_from_a_file_that_is_no_model_is_a_clear_error(small_mnist: Mnist, tmp_path: Path) -> None:
    (tmp_path / "broken.keras").write_bytes(b"not a model")
    cfg = TrainConfig(arch="mlp", epochs=1, limit=100, init_from=tmp_path / "broken.keras", out_dir=tmp_path)
    with pytest.raises(ModelLoadError, match="not a Keras model"):
        train_model(cfg, small_mnist, verbose=0)


@pytest.mark.slow
def test_same_seed_gives_the_same_model(small_mnist: Mnist, tmp_path: Path) -> None:
    import keras

    runs = [
        train_model(TrainConfig(arch="dense", epochs=2, limit=1000, seed=seed, out_dir=tmp_path / name),
                    small_mnist, verbose=0).metadata
        for name, seed in (("first", 7), ("again", 7), ("other", 8))
    ]  # fmt: skip
    first, again, other = runs
    assert first["history"] == again["history"]
    assert first["test_accuracy"] == again["test_accuracy"] and first["test_loss"] == again["test_loss"]
    first_weights = keras.models.load_model(tmp_path / "first" / "dense.keras").get_weights()
    again_weights = keras.models.load_model(tmp_path / "again" / "dense.keras").get_weights()
    for a, b in zip(first_weights, again_weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert other["history"] != first["history"]

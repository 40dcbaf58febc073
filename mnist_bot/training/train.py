"""Train a model on MNIST and write `.keras`, `.tflite` and `.json` files."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mnist_bot.data import Mnist, Split, load_mnist
from mnist_bot.errors import DatasetError, ModelLoadError
from mnist_bot.training.architectures import BN_MOMENTUM, build
from mnist_bot.training.augment import augment_batch

log = logging.getLogger(__name__)

DEFAULT_EPOCHS = {"dense": 10, "mlp": 10, "mlp2": 10, "cnn": 15}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run."""

    arch: str
    epochs: int | None = None  # None: the architecture's default
    batch_size: int = 128
    seed: int = 1
    validation_split: float = 0.1
    limit: int | None = None  # train on the first N images only (smoke runs)
    augment: bool | None = None  # None: on for the CNN, off for the tutorial baselines
    learning_rate: float | None = None
    bn_momentum: float = BN_MOMENTUM  # 0.9 for short runs, so batch norm statistics settle
    extra_data: tuple[Path, ...] = ()
    init_from: Path | None = None  # a .keras model to go on training (fine-tuning) instead of fresh weights
    out_dir: Path = Path("models")
    name: str | None = None
    command: str = field(default_factory=lambda: " ".join(["mnist-bot", *sys.argv[1:]]))

    @property
    def model_name(self) -> str:
        """Return the file stem for this run's outputs."""
        return self.name or self.arch


@dataclass(frozen=True)
class TrainResult:
    """Paths written by a training run and the test metrics."""

    keras_path: Path
    tflite_path: Path
    metadata_path: Path
    metadata: dict[str, Any]


def load_extra(path: Path) -> Split:
    """Load an extra-data `.npz` (x (N, 28, 28) uint8, y (N,) uint8), e.g. a feedback export."""
    try:
        with np.load(path) as npz:
            images, labels = npz["x"].astype(np.uint8), npz["y"].astype(np.uint8)
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"{path} is not an extra-data .npz with arrays x and y.") from exc
    if images.shape[1:] != (28, 28) or len(images) != len(labels) or (labels.size and labels.max() > 9):
        raise DatasetError(f"{path} must hold x of shape (N, 28, 28) and N labels in 0-9.")
    return Split(images, labels)


def training_split(mnist: Mnist, cfg: TrainConfig) -> tuple[Split, Split | None]:
    """Cut the training set (plus extra data) into shuffled train and validation parts."""
    images, labels = mnist.train.images, mnist.train.labels
    for extra in (load_extra(path) for path in cfg.extra_data):
        images, labels = np.concatenate([images, extra.images]), np.concatenate([labels, extra.labels])
    order = np.random.default_rng(cfg.seed).permutation(len(images))
    if cfg.limit:
        order = order[: cfg.limit]
    n_val = int(len(order) * cfg.validation_split)
    train = Split(images[order[n_val:]], labels[order[n_val:]])
    val = Split(images[order[:n_val]], labels[order[:n_val]]) if n_val else None
    return train, val


def make_dataset(split: Split, batch_size: int, augment: bool, shuffle_seed: int | None) -> tf.data.Dataset:
    """Build a batched float32 (B, 28, 28, 1) pipeline, augmenting whole batches."""
    ds = tf.data.Dataset.from_tensor_slices((split.images[..., np.newaxis], split.labels))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(split.images), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y))
    if augment:
        ds = ds.map(lambda x, y: (augment_batch(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def compile_model(model: keras.Model, cfg: TrainConfig, steps_per_epoch: int, epochs: int) -> None:
    """Compile with Adam; the CNN decays its learning rate on a cosine to settle its weights."""
    base_lr = cfg.learning_rate or (2e-3 if cfg.arch == "cnn" else 1e-3)
    lr: Any = base_lr
    if cfg.arch == "cnn":
        lr = keras.optimizers.schedules.CosineDecay(base_lr, decay_steps=steps_per_epoch * epochs, alpha=0.01)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def convert_to_tflite(model: keras.Model, path: Path) -> None:
    """Convert to a float32 `.tflite` with a dynamic batch dimension, via a SavedModel."""
    # Converting a traced Keras 3 call directly produced NaNs; the SavedModel route is exact.
    with tempfile.TemporaryDirectory() as saved_model:
        model.export(saved_model, format="tf_saved_model", verbose=False)
        path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(saved_model).convert())


def tflite_agreement(model: keras.Model, tflite_path: Path, images: np.ndarray) -> float:
    """Return the share of test images where LiteRT and Keras pick the same digit."""
    from mnist_bot.runtime import LiteRtRuntime

    x = images.astype(np.float32) / 255.0
    keras_digits = np.argmax(model.predict(x[..., np.newaxis], batch_size=1000, verbose=0), axis=1)
    runtime = LiteRtRuntime(tflite_path)
    lite_digits = np.concatenate([np.argmax(runtime.predict(b), axis=1) for b in np.array_split(x, 10)])
    return float(np.mean(keras_digits == lite_digits))


def _versions() -> dict[str, str]:
    """Record the library versions that produced a model."""
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def _metadata(
    cfg: TrainConfig,
    model: keras.Model,
    mnist: Mnist,
    history: dict[str, list[float]],
    seconds: float,
    epochs: int,
) -> dict[str, Any]:
    """Describe a run so that anyone can tell how a model file was made."""
    return {
        "name": cfg.model_name,
        "architecture": cfg.arch,
        "parameters": int(model.count_params()),
        "command": cfg.command,
        "epochs": epochs,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "validation_split": cfg.validation_split,
        "bn_momentum": cfg.bn_momentum,
        "limit": cfg.limit,
        "augment": _augment(cfg),
        "extra_data": [str(p) for p in cfg.extra_data],
        "init_from": str(cfg.init_from) if cfg.init_from else None,
        "data_source": mnist.source,
        "data_sha256": mnist.checksums,
        "versions": _versions(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "training_seconds": round(seconds, 1),
        "machine": f"{platform.machine()}, {_cpu_count()} CPU cores",
        "history": {key: [round(float(v), 5) for v in values] for key, values in history.items()},
    }


def _cpu_count() -> int:
    """Count the CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _augment(cfg: TrainConfig) -> bool:
    """Resolve the augmentation default: on for the CNN only."""
    return cfg.arch == "cnn" if cfg.augment is None else cfg.augment


def _test_metrics(model: keras.Model, mnist: Mnist, tflite_path: Path) -> dict[str, float]:
    """Measure the finished model on the MNIST test set, through Keras and LiteRT."""
    x = mnist.test.images[..., np.newaxis].astype(np.float32) / 255.0
    loss, accuracy = model.evaluate(x, mnist.test.labels, batch_size=1000, verbose=0)
    agreement = tflite_agreement(model, tflite_path, mnist.test.images)
    return {
        "test_accuracy": round(float(accuracy), 5),
        "test_loss": round(float(loss), 5),
        "test_n": len(mnist.test.labels),
        "tflite_agreement": round(agreement, 5),
    }


def _initial_model(cfg: TrainConfig) -> keras.Model:
    """Return fresh weights for the architecture, or the model to fine-tune."""
    if cfg.init_from is None:
        return build(cfg.arch, cfg.bn_momentum)
    try:
        return keras.models.load_model(cfg.init_from)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{cfg.init_from} is not a Keras model to go on training.") from exc


def train_model(cfg: TrainConfig, mnist: Mnist | None = None, verbose: int | str = "auto") -> TrainResult:
    """Train, convert and document one model; returns where the files went."""
    keras.utils.set_random_seed(cfg.seed)
    mnist = mnist or load_mnist()
    train, val = training_split(mnist, cfg)
    epochs = cfg.epochs or DEFAULT_EPOCHS.get(cfg.arch, 10)
    model = _initial_model(cfg)
    compile_model(model, cfg, steps_per_epoch=-(-len(train.images) // cfg.batch_size), epochs=epochs)
    train_ds = make_dataset(train, cfg.batch_size, _augment(cfg), shuffle_seed=cfg.seed)
    val_ds = make_dataset(val, 1000, augment=False, shuffle_seed=None) if val else None
    started = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=verbose)
    seconds = time.perf_counter() - started
    return _save(cfg, model, mnist, history.history, seconds, epochs)


def _save(
    cfg: TrainConfig,
    model: keras.Model,
    mnist: Mnist,
    history: dict[str, list[float]],
    seconds: float,
    epochs: int,
) -> TrainResult:
    """Write the model files and metadata."""
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    stem = cfg.out_dir / cfg.model_name
    keras_path, tflite_path, meta_path = (stem.with_suffix(s) for s in (".keras", ".tflite", ".json"))
    model.save(keras_path)
    convert_to_tflite(model, tflite_path)
    metadata = _metadata(cfg, model, mnist, history, seconds, epochs) | _test_metrics(
        model, mnist, tflite_path
    )
    meta_path.write_text(json.dumps(metadata, indent=2) + "\n")
    log.info("Wrote %s, %s and %s", keras_path, tflite_path, meta_path)
    return TrainResult(keras_path, tflite_path, meta_path, metadata)

"""Model architectures: the Keras tutorial baselines and our CNN."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import layers

INPUT_SHAPE = (28, 28, 1)
BN_MOMENTUM = 0.99  # Keras' default, used by the shipped CNN


def dense() -> keras.Model:
    """Build the tutorial's single softmax layer (multinomial logistic regression)."""
    return keras.Sequential(
        [keras.Input(INPUT_SHAPE), layers.Flatten(), layers.Dense(10, activation="softmax")], name="dense"
    )


def mlp() -> keras.Model:
    """Build the tutorial's one hidden layer of 100 ReLU units."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            layers.Flatten(),
            layers.Dense(100, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ],
        name="mlp",
    )


def mlp2() -> keras.Model:
    """Build the tutorial's two hidden layers of 128 and 64 ReLU units."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(64, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ],
        name="mlp2",
    )


def reject() -> keras.Model:
    """Build the "is it a digit at all" model: two small conv stages and one sigmoid, about 60k weights."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            layers.Conv2D(16, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dropout(0.3),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="reject",
    )


def _conv_block(x: Any, filters: int, bn_momentum: float) -> Any:
    """Apply conv, batch norm and ReLU; bias is redundant before batch norm."""
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=bn_momentum)(x)
    return layers.ReLU()(x)


def cnn(bn_momentum: float = BN_MOMENTUM) -> keras.Model:
    """Build our CNN: three VGG-style stages, small enough to train on two CPU cores.

    Batch norm's running statistics settle slowly at the default momentum: runs of a few
    hundred steps (tutorials, smoke tests) should pass bn_momentum=0.9.
    """
    inputs = keras.Input(INPUT_SHAPE)
    x = _conv_block(inputs, 32, bn_momentum)
    x = _conv_block(x, 32, bn_momentum)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.1)(x)
    x = _conv_block(x, 64, bn_momentum)
    x = _conv_block(x, 64, bn_momentum)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.2)(x)
    x = _conv_block(x, 128, bn_momentum)
    x = layers.MaxPooling2D()(x)  # 3x3x128 keeps the dense layer small
    x = layers.Flatten()(x)
    x = layers.Dense(128, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=bn_momentum)(x)
    x = layers.ReLU()(x)
    x = layers.Dropout(0.4)(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="cnn")


ARCHITECTURES: dict[str, Callable[[], keras.Model]] = {"dense": dense, "mlp": mlp, "mlp2": mlp2, "cnn": cnn}

# The tutorials' published test accuracy for each baseline, for the README table.
PUBLISHED_ACCURACY = {
    "dense": "about 92% (TensorFlow 'MNIST for beginners', softmax regression)",
    "mlp": "about 97-98% (one hidden layer of 100 units)",
    "mlp2": "about 97.5-98% (128-64 MLP tutorials)",
    "cnn": "about 99.2% (keras.io simple MNIST convnet)",
}


def build(arch: str, bn_momentum: float = BN_MOMENTUM) -> keras.Model:
    """Build an uncompiled model by architecture name."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}.")
    return cnn(bn_momentum) if arch == "cnn" else ARCHITECTURES[arch]()

"""Train-time augmentation that mimics what real photos and drawings look like after preprocessing.

The serving pipeline re-centres every input into MNIST's 20x20 box, so augmentation only needs the
residual variation: slant, rotation, scale, small shifts, pen thickness, blur and sensor noise.
All ops work on a whole batch (float32 (B, 28, 28, 1) in [0, 1]) inside tf.data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

CENTRE = 13.5  # pixel centres run 0..27


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random distortions; each is drawn per image."""

    probability: float = 0.85  # share of images distorted; the rest stay clean MNIST
    max_rotation_deg: float = 15.0
    max_shear: float = 0.3
    scale_range: tuple[float, float] = (0.8, 1.15)
    max_aspect_change: float = 0.12
    max_shift_px: float = 2.5
    dilate_probability: float = 0.25
    erode_probability: float = 0.15
    blur_probability: float = 0.3
    noise_probability: float = 0.3
    max_noise_std: float = 0.06


def _affine_transforms(batch: tf.Tensor, cfg: AugmentConfig) -> tf.Tensor:
    """Draw one inverse affine map per image in the (B, 8) projective format."""
    n = tf.shape(batch)[0]
    angle = tf.random.uniform([n], -1.0, 1.0) * math.radians(cfg.max_rotation_deg)
    shear = tf.random.uniform([n], -cfg.max_shear, cfg.max_shear)
    scale = tf.random.uniform([n], *cfg.scale_range)
    aspect = 1.0 + tf.random.uniform([n], -cfg.max_aspect_change, cfg.max_aspect_change)
    sx, sy = 1.0 / (scale * aspect), 1.0 / (scale / aspect)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # M = R(angle) @ [[1, shear], [0, 1]] @ diag(sx, sy) maps output offsets to input offsets.
    m00, m01 = cos * sx, (cos * shear - sin) * sy
    m10, m11 = sin * sx, (sin * shear + cos) * sy
    shift_x = tf.random.uniform([n], -cfg.max_shift_px, cfg.max_shift_px)
    shift_y = tf.random.uniform([n], -cfg.max_shift_px, cfg.max_shift_px)
    a2 = CENTRE - (m00 + m01) * CENTRE - shift_x
    b2 = CENTRE - (m10 + m11) * CENTRE - shift_y
    zeros = tf.zeros([n])
    return tf.stack([m00, m01, a2, m10, m11, b2, zeros, zeros], axis=1)


def _warp(batch: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    """Apply per-image affine maps with bilinear sampling and a black fill."""
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=batch,
        transforms=transforms,
        output_shape=tf.shape(batch)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def _pick(mask_probability: float, n: tf.Tensor) -> tf.Tensor:
    """Return a (B, 1, 1, 1) float mask that is 1 with the given probability."""
    return tf.cast(tf.random.uniform([n, 1, 1, 1]) < mask_probability, tf.float32)


def _thickness(batch: tf.Tensor, cfg: AugmentConfig) -> tf.Tensor:
    """Thicken some strokes (grey dilation) and thin others (grey erosion)."""
    n = tf.shape(batch)[0]
    dilated = tf.nn.max_pool2d(batch, 2, 1, "SAME")
    eroded = -tf.nn.max_pool2d(-batch, 2, 1, "SAME")
    roll = tf.random.uniform([n, 1, 1, 1])
    use_dilated = tf.cast(roll < cfg.dilate_probability, tf.float32)
    use_eroded = tf.cast(roll > 1.0 - cfg.erode_probability, tf.float32)
    keep = 1.0 - use_dilated - use_eroded
    return keep * batch + use_dilated * dilated + use_eroded * eroded


def _blur(batch: tf.Tensor, cfg: AugmentConfig) -> tf.Tensor:
    """Blend some images with a 3x3 Gaussian blur of random strength."""
    n = tf.shape(batch)[0]
    kernel_1d = tf.constant([0.25, 0.5, 0.25])
    kernel = tf.reshape(tf.tensordot(kernel_1d, kernel_1d, axes=0), [3, 3, 1, 1])
    blurred = tf.nn.conv2d(batch, kernel, 1, "SAME")
    strength = _pick(cfg.blur_probability, n) * tf.random.uniform([n, 1, 1, 1])
    return (1.0 - strength) * batch + strength * blurred


def _noise(batch: tf.Tensor, cfg: AugmentConfig) -> tf.Tensor:
    """Add Gaussian noise of random strength to some images."""
    n = tf.shape(batch)[0]
    std = _pick(cfg.noise_probability, n) * tf.random.uniform([n, 1, 1, 1], 0.0, cfg.max_noise_std)
    return batch + std * tf.random.normal(tf.shape(batch))


def augment_batch(batch: tf.Tensor, cfg: AugmentConfig | None = None) -> tf.Tensor:
    """Distort a batch of float32 (B, 28, 28, 1) digits; returns the same shape in [0, 1]."""
    cfg = cfg or AugmentConfig()
    distorted = _warp(batch, _affine_transforms(batch, cfg))
    distorted = _noise(_blur(_thickness(distorted, cfg), cfg), cfg)
    distorted = tf.clip_by_value(distorted, 0.0, 1.0)
    apply = _pick(cfg.probability, tf.shape(batch)[0])
    return apply * distorted + (1.0 - apply) * batch

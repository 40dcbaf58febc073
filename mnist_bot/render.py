"""Render stage: a digit's cut-out mask drawn as MNIST draws its digits.

MNIST digits are bright ink on black, fit into a 20x20 box keeping their aspect ratio, with a
pen of MNIST's width and soft edges, and centred by centre of mass in a 28x28 field.
"""

from __future__ import annotations

import cv2
import numpy as np

from mnist_bot.blobs import stroke_width

SIZE = 28
BOX = 20
CENTRE = 14.0  # where MNIST digits have their centre of mass, in pixel-index coordinates
STROKE_IN_BOX = 2.4  # MNIST's median pen width, in pixels of the 20x20 box


def normalise_stroke(mask: np.ndarray, box_side: int) -> np.ndarray:
    """Thicken or thin the pen so that it matches MNIST's width once scaled into the box."""
    target = STROKE_IN_BOX * box_side / BOX
    width = stroke_width(mask)
    if 0.75 * target <= width <= 1.5 * target:
        return mask
    if width < target:
        size = max(2, round(target - width))
        return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    size = max(2, round((width - target) / 1.5))
    thinned = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    return thinned if thinned.sum() > 0.25 * mask.sum() else mask


def fit_box(digit: np.ndarray) -> np.ndarray:
    """Scale a cropped float32 digit into the 20x20 box, keeping its aspect ratio, in 28x28."""
    h, w = digit.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(digit, size, interpolation=cv2.INTER_AREA)
    out = np.zeros((SIZE, SIZE), np.float32)
    top, left = (SIZE - size[1]) // 2, (SIZE - size[0]) // 2
    out[top : top + size[1], left : left + size[0]] = small
    return out


def centre_by_mass(image28: np.ndarray) -> np.ndarray:
    """Shift a 28x28 digit so its centre of mass sits where MNIST's does."""
    total = float(image28.sum())
    if total <= 0:
        return image28
    rows, cols = np.indices(image28.shape)
    cy, cx = float((rows * image28).sum() / total), float((cols * image28).sum() / total)
    shift = np.array([[1, 0, CENTRE - cx], [0, 1, CENTRE - cy]], dtype=np.float32)
    return np.asarray(cv2.warpAffine(image28, shift, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderValue=0))


def render28(mask: np.ndarray) -> np.ndarray:
    """Render a cropped binary digit as MNIST does: soft edges, 20x20 box, centred."""
    side = max(mask.shape)
    crisp = normalise_stroke(np.pad(mask, 2), side).astype(np.float32)
    sigma = 0.5 * side / BOX  # half a box pixel of softening, like MNIST's anti-aliasing
    soft = cv2.GaussianBlur(crisp, (0, 0), sigma) if sigma > 0.3 else crisp
    rows, cols = np.nonzero(soft > 0.05)
    image28 = fit_box(soft[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])
    image28 = centre_by_mass(image28)
    return np.clip(image28 / max(float(image28.max()), 1e-6), 0, 1).astype(np.float32)

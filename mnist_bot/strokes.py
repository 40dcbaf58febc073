"""Draw pen strokes as ink coverage: the one rasteriser behind the widget's pad, synthetic canvases and tests.

A browser canvas draws strokes anti-aliased with round caps and joins; OpenCV's anti-aliased thick
polylines are round too, so the model sees a drawing the way the page showed it.
Coordinates are OpenCV's: pixel (col, row) has its centre at x = col, y = row.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

SUBPIXEL_BITS = 4  # OpenCV's fixed-point shift: points keep 1/16 px accuracy

Points = np.ndarray | Iterable[tuple[float, float]]  # (n, 2) x, y with y pointing down
PenStroke = tuple[Points, float]  # a stroke's points and its pen width in pixels


def draw_stroke(alpha: np.ndarray, points: Points, width: float, ink: int = 255) -> None:
    """Draw one anti-aliased polyline `width` px wide with round caps and joins into uint8 (H, W) `alpha`."""
    one = 1 << SUBPIXEL_BITS
    fixed = np.round(np.asarray(points, dtype=np.float64).reshape(-1, 2) * one).astype(np.int32)
    if len(fixed) == 0:
        return
    if len(fixed) == 1 or np.all(fixed == fixed[0]):  # a tap: a dot as wide as the pen
        centre = (int(fixed[0][0]), int(fixed[0][1]))
        cv2.circle(alpha, centre, int(width / 2 * one), ink, -1, cv2.LINE_AA, shift=SUBPIXEL_BITS)
        return
    thickness = max(1, round(width))
    cv2.polylines(alpha, [fixed], False, ink, thickness, cv2.LINE_AA, shift=SUBPIXEL_BITS)


def rasterise(strokes: Iterable[PenStroke], size: tuple[int, int]) -> np.ndarray:
    """Return the ink coverage of (points, width) strokes as uint8 (H, W), 255 = ink; `size` is (W, H)."""
    alpha = np.zeros((size[1], size[0]), dtype=np.uint8)
    for points, width in strokes:
        draw_stroke(alpha, points, width)
    return alpha


def ink_on_paper(mask: np.ndarray, ink: int, paper: int) -> np.ndarray:
    """Turn a uint8 (H, W) coverage mask into grey uint8 (H, W): `paper` where 0, `ink` where 255."""
    coverage = mask.astype(np.float32) / 255
    return np.round(paper + (ink - paper) * coverage).astype(np.uint8)

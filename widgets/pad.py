"""The drawing pad: strokes recorded in Python from mouse, pen and touch events, mirrored on a canvas."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from ipycanvas import Canvas, hold_canvas
from ipywidgets import Layout

from widgets.raster import DEFAULT_PEN_WIDTH, PAD_SIZE, Point, Stroke, stroke_mask

INK = "#111111"
PAPER = "#ffffff"
MIN_STEP = 1.0  # pad pixels; finer moves add points without changing the raster


class StrokeRecorder:
    """Turn pen-down, move and pen-up events into finished strokes, with undo and clear."""

    def __init__(self) -> None:
        self._done: list[Stroke] = []
        self._current: list[Point] | None = None
        self._width = float(DEFAULT_PEN_WIDTH)

    @property
    def drawing(self) -> bool:
        """Whether the pen is down."""
        return self._current is not None

    @property
    def strokes(self) -> tuple[Stroke, ...]:
        """Return every stroke so far, the one being drawn included."""
        if self._current is None:
            return tuple(self._done)
        return (*self._done, Stroke(tuple(self._current), self._width))

    def pen_down(self, point: Point, width: float) -> None:
        """Start a stroke at `point` (ending any stroke left open)."""
        self.pen_up()
        self._current = [point]
        self._width = float(width)

    def pen_move(self, point: Point) -> Point | None:
        """Extend the open stroke; return the previous point when `point` was added, else None."""
        if self._current is None:
            return None
        last = self._current[-1]
        if math.dist(last, point) < MIN_STEP:
            return None
        self._current.append(point)
        return last

    def pen_up(self) -> bool:
        """Finish the open stroke; return whether there was one."""
        if self._current is None:
            return False
        self._done.append(Stroke(tuple(self._current), self._width))
        self._current = None
        return True

    def undo(self) -> bool:
        """Drop the last stroke (the open one first); return whether one was dropped."""
        if self._current is not None:
            self._current = None
            return True
        if self._done:
            self._done.pop()
            return True
        return False

    def clear(self) -> None:
        """Drop every stroke."""
        self._done.clear()
        self._current = None


class DrawingPad:
    """A canvas that records strokes from mouse, pen and touch, and redraws them on demand."""

    def __init__(self, size: int = PAD_SIZE, pen_width: float = DEFAULT_PEN_WIDTH) -> None:
        self.size = size
        self.pen_width = float(pen_width)
        self.recorder = StrokeRecorder()
        self.canvas = Canvas(width=size, height=size, layout=_canvas_layout(size))
        # Called with True when a stroke ends and False while it grows; set by the owner.
        self.on_change: Callable[[bool], None] = _ignore
        self.on_enter: Callable[[], None] = _ignore
        self._wire_events()
        self.redraw()

    @property
    def strokes(self) -> tuple[Stroke, ...]:
        """Return every stroke on the pad."""
        return self.recorder.strokes

    def ink_mask(self) -> np.ndarray:
        """Rasterise the strokes: (size, size) uint8 ink coverage, as the model's input starts."""
        return stroke_mask(self.strokes, (self.size, self.size))

    def _wire_events(self) -> None:
        """Connect the canvas's mouse (and pen, which browsers report as mouse), touch and key events."""
        canvas = self.canvas
        canvas.on_mouse_down(lambda x, y: self.pen_down((x, y)))
        canvas.on_mouse_move(lambda x, y: self.pen_move((x, y)))
        canvas.on_mouse_up(lambda x, y: self.pen_up())
        canvas.on_mouse_out(lambda x, y: self.pen_up())
        canvas.on_touch_start(lambda touches: self._first_touch(touches, self.pen_down))
        canvas.on_touch_move(lambda touches: self._first_touch(touches, self.pen_move))
        canvas.on_touch_end(lambda touches: self.pen_up())
        canvas.on_touch_cancel(lambda touches: self.pen_up())
        canvas.on_key_down(self._key_down)
        canvas.on_client_ready(self.redraw)

    @staticmethod
    def _first_touch(touches: Sequence[Point], handler: Callable[[Point], None]) -> None:
        """Follow the first finger only; a second finger resting on the screen must not draw."""
        if touches:
            handler((float(touches[0][0]), float(touches[0][1])))

    def _key_down(self, key: str, shift: bool, ctrl: bool, meta: bool) -> None:
        """Treat Enter on the focused pad as Send."""
        if key == "Enter":
            self.on_enter()

    def pen_down(self, point: Point) -> None:
        """Start a stroke and show a dot where the pen landed."""
        self.recorder.pen_down(point, self.pen_width)
        with hold_canvas():
            self.canvas.line_width = self.pen_width
            self.canvas.fill_circle(point[0], point[1], self.pen_width / 2)
        self.on_change(False)

    def pen_move(self, point: Point) -> None:
        """Extend the open stroke and draw the new segment."""
        previous = self.recorder.pen_move(point)
        if previous is None:
            return
        self.canvas.stroke_line(previous[0], previous[1], point[0], point[1])
        self.on_change(False)

    def pen_up(self) -> None:
        """Finish the open stroke, if any."""
        if self.recorder.pen_up():
            self.on_change(True)

    def undo(self) -> bool:
        """Remove the last stroke; return whether there was one."""
        removed = self.recorder.undo()
        self.redraw()
        return removed

    def clear(self) -> None:
        """Remove every stroke."""
        self.recorder.clear()
        self.redraw()

    def redraw(self) -> None:
        """Repaint the canvas from the recorded strokes in one batch."""
        canvas = self.canvas
        with hold_canvas():
            canvas.clear()
            canvas.fill_style = PAPER
            canvas.fill_rect(0, 0, self.size, self.size)
            canvas.fill_style = INK
            canvas.stroke_style = INK
            canvas.line_cap = "round"
            canvas.line_join = "round"
            for stroke in self.strokes:
                _paint(canvas, stroke)
            canvas.line_width = self.pen_width


def _paint(canvas: Canvas, stroke: Stroke) -> None:
    """Paint one stroke as `mnist_bot.strokes` rasterises it: a dot, or a round-capped polyline."""
    canvas.line_width = stroke.width
    if len(stroke.points) == 1:
        x, y = stroke.points[0]
        canvas.fill_circle(x, y, stroke.width / 2)
    else:
        canvas.stroke_lines(stroke.points)


def _canvas_layout(size: int) -> Layout:
    """Fix the pad's on-screen size so page zoom and CSS do not stretch it."""
    return Layout(width=f"{size}px", height=f"{size}px", border="1px solid #9aa0a6", flex="0 0 auto")


def _ignore(*_args: object) -> None:
    """Do nothing: the default hook."""

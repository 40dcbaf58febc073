"""Execute the demo and tutorial notebooks headlessly in a real kernel, as a user would run them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from mnist_bot.config import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
WIDGETS = ROOT / "widgets"
# Read at import, before the isolation fixture clears the environment.
MODEL = Path(os.environ.get("MNIST_BOT_MODEL") or DEFAULT_MODEL)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

pytestmark = pytest.mark.slow


def execute(path: Path, timeout_s: int, extra_cells: Sequence[str] = ()) -> nbformat.NotebookNode:
    """Run every cell of a notebook (plus `extra_cells`) in a fresh python3 kernel started in its folder."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.extend(nbformat.v4.new_code_cell(source) for source in extra_cells)
    client = NotebookClient(
        notebook, timeout=timeout_s, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> list[Any]:
    """Return every output of every code cell."""
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def text_of(notebook: nbformat.NotebookNode) -> str:
    """Return the printed text of all cells."""
    return "".join(o.get("text", "") for o in outputs(notebook) if o.output_type == "stream")


def test_demo_notebook_shows_the_widget_and_answers_with_the_shipped_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert MODEL.is_file(), f"the demo needs a model at {MODEL}: run `mnist-bot train --arch cnn` first"
    monkeypatch.setenv("MNIST_BOT_MODEL", str(MODEL))
    monkeypatch.setenv("MNIST_BOT_DB", str(tmp_path / "feedback.db"))
    # After the demo's own cells: draw a 7 through the pad's event handlers and send it.
    drive = (
        "for points in [[(60, 50), (210, 50), (180, 110), (140, 180), (115, 245)]]:\n"
        "    chat.pad.pen_down(points[0])\n"
        "    for point in points[1:]:\n"
        "        chat.pad.pen_move(point)\n"
        "    chat.pad.pen_up()\n"
        "chat.send_button.click()\n"
        "print('REPLY', chat.messages[-1].kind, chat.messages[-1].text)"
    )
    notebook = execute(WIDGETS / "demo.ipynb", timeout_s=180, extra_cells=[drive])

    views = [o for o in outputs(notebook) if o.output_type == "execute_result" and WIDGET_VIEW in o.data]
    assert len(views) == 1
    assert "REPLY answer It's a 7" in text_of(notebook)


def test_tutorial_notebook_runs_the_whole_lesson_on_a_small_subset(
    monkeypatch: pytest.MonkeyPatch, mnist_dir: Path
) -> None:
    monkeypatch.setenv("MNIST_DIR", str(mnist_dir))
    monkeypatch.setenv("TUTORIAL_LIMIT", "3000")
    monkeypatch.setenv("TUTORIAL_EPOCHS", "2")
    monkeypatch.setenv("TUTORIAL_TEST_LIMIT", "2000")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    notebook = execute(WIDGETS / "tutorial.ipynb", timeout_s=600)

    text = text_of(notebook)
    images = [o for o in outputs(notebook) if "image/png" in o.get("data", {})]
    assert "training on 3000 images for 2 epochs" in text
    assert "train: (60000, 28, 28) uint8" in text
    for arch in ("dense", "mlp", "cnn"):
        assert f"{arch}: test accuracy" in text
    assert "errors on 2000 test digits" in text
    # digits, class counts, confusion matrix, curves comparison, CNN curves, misclassified
    assert len(images) >= 6
    assert any(o.output_type == "execute_result" and WIDGET_VIEW in o.data for o in outputs(notebook))
    accuracy = float(text.split("   cnn: accuracy ")[1].split("%")[0])
    assert accuracy > 85.0  # even 2 epochs on 3000 images must teach a CNN most digits

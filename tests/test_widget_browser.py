"""End to end: JupyterLab 4 and Notebook 7 on 127.0.0.1, headless Chromium, real mouse strokes on the pad."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

from mnist_bot.config import DEFAULT_MODEL
from mnist_bot.feedback import FeedbackStore

ROOT = Path(__file__).resolve().parent.parent
# Read at import, before the isolation fixture clears the environment; handed to the kernel explicitly.
MODEL = Path(os.environ.get("MNIST_BOT_MODEL") or DEFAULT_MODEL)
REPORTS = ROOT / "reports"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A 7 and a 3 in pad pixels (the pad is 280x280), drawn as a person would: one stroke each.
SEVEN = [(70, 60), (120, 58), (170, 56), (212, 58), (196, 95), (172, 140), (150, 190), (135, 240)]
THREE = [
    (80, 70), (115, 45), (160, 42), (195, 65), (195, 100), (165, 130), (130, 138),
    (170, 145), (205, 175), (205, 215), (170, 245), (120, 248), (80, 225),
]  # fmt: skip

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@dataclass(frozen=True)
class Lab:
    """A running Jupyter server: where it listens, its token, the demo's page and the kernel's SQLite file."""

    url: str
    token: str
    notebook_path: str  # "/lab/tree/demo.ipynb" (JupyterLab 4) or "/notebooks/demo.ipynb" (Notebook 7)
    db: Path
    root: Path  # the folder the server serves: a test may add its own notebook there

    def api(self, path: str) -> Any:
        """GET a REST endpoint of the server and decode its JSON."""
        with urllib.request.urlopen(f"{self.url}{path}?token={self.token}", timeout=5) as response:
            return json.loads(response.read())


def free_port() -> int:
    """Ask the OS for a free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(lab: Lab, process: subprocess.Popen[bytes], timeout_s: float = 90) -> None:
    """Poll the server's status API until it answers."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Jupyter server exited with {process.returncode}")
        try:
            lab.api("/api/status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise TimeoutError("the Jupyter server did not start")


def wait_for_kernel(lab: Lab, timeout_s: float = 120) -> None:
    """Wait until the page's kernel is started, idle and connected to the browser, whatever the UI."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        kernels = [session["kernel"] for session in lab.api("/api/sessions")]
        if any(k["execution_state"] == "idle" and k["connections"] > 0 for k in kernels):
            return
        time.sleep(0.5)
    raise TimeoutError("the notebook's kernel did not become ready")


def write_lab_settings(folder: Path) -> None:
    """Start the notebook's kernel without asking, and fetch no news (no network, no pop-ups)."""
    settings = {
        "notebook-extension/tracker": '{"autoStartDefaultKernel": true}',
        "apputils-extension/notification": '{"fetchNews": "false", "checkForUpdates": false}',
    }
    for name, content in settings.items():
        path = folder / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


FRONT_ENDS = {"jupyterlab": "/lab/tree/demo.ipynb", "notebook": "/notebooks/demo.ipynb"}


@pytest.fixture(params=sorted(FRONT_ENDS))
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lab]:
    """Serve a copy of the demo notebook (so autosave never touches the repository) on 127.0.0.1."""
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(ROOT / "widgets" / "demo.ipynb", root / "demo.ipynb")
    write_lab_settings(tmp_path / "settings")
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
        "MNIST_BOT_DB": str(tmp_path / "feedback.db"),
        "MNIST_BOT_MODEL": str(MODEL),
    }
    command = [
        sys.executable, "-m", request.param, "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        "--ServerApp.allow_root=True",  # CI containers run as root
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",  # no network from the test
    ]  # fmt: skip
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    lab = Lab(f"http://127.0.0.1:{port}", token, FRONT_ENDS[request.param], tmp_path / "feedback.db", root)
    try:
        wait_until_up(lab, process)
        yield lab
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def draw(page: Page, canvas: Locator, points: Sequence[tuple[float, float]]) -> None:
    """Press the mouse on the canvas and drag it through `points` (pad pixels) with real mouse moves."""
    canvas.scroll_into_view_if_needed()  # the transcript grows above the pad and pushes it down
    box = canvas.bounding_box()
    assert box is not None
    scale = box["width"] / 280

    def at(point: tuple[float, float]) -> tuple[float, float]:
        return box["x"] + point[0] * scale, box["y"] + point[1] * scale

    page.mouse.move(*at(points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*at(point), steps=6)
    page.mouse.up()


def open_demo(page: Page, lab: Lab, notebook_path: str | None = None) -> Locator:
    """Open the demo (or another notebook), run its first code cell as a user would, return the pad."""
    page.goto(f"{lab.url}{notebook_path or lab.notebook_path}?token={lab.token}")
    page.locator(".jp-Notebook").first.wait_for()
    wait_for_kernel(lab)
    page.locator(".jp-CodeCell .jp-InputArea-editor").first.click()
    page.keyboard.press("Shift+Enter")
    canvas = page.locator(".jp-OutputArea-output canvas").first
    canvas.wait_for(state="visible")
    expect(page.locator(".digitchat-hint").first).to_contain_text("Draw a digit")
    return canvas


def use_the_widget(page: Page, canvas: Locator) -> None:
    """Draw two digits (Send button, then Enter), correct one answer, and draw in live mode."""
    # The transcript lists the newest message first in the DOM (CSS shows it at the bottom).
    answers = page.locator(".digitchat-answer")
    draw(page, canvas, SEVEN)
    page.locator(".widget-button", has_text="Send").first.click()
    expect(answers.first).to_have_attribute("data-digit", "7")
    expect(answers.first).to_contain_text("It's a 7")

    draw(page, canvas, THREE)
    page.keyboard.press("Enter")  # the pad has the focus after drawing
    expect(answers).to_have_count(2)
    expect(answers.first).to_have_attribute("data-digit", "3")
    expect(answers.first).to_contain_text("It's a 3")

    page.locator(".widget-button", has_text="Wrong?").first.click()
    page.get_by_role("button", name="8", exact=True).click()
    expect(page.locator(".digitchat-thanks").first).to_contain_text("saved this drawing as an 8")

    page.locator(".widget-toggle-button", has_text="live").first.click()
    draw(page, canvas, SEVEN)
    expect(page.locator(".digitchat-live")).to_contain_text("live: It's a 7")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Return Debian's Chromium, or skip saying how to get it; CI, which must run this test, fails instead."""
    found = shutil.which("chromium")
    if found:
        return found
    reason = (
        "Chromium is not installed: `make test` installs it when run as root or with password-less sudo; "
        "or install it yourself: sudo apt-get install chromium"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the browser tests)")
    pytest.skip(reason)


def run_in_chromium(chromium: str, name: str, use: Callable[[Page], None]) -> None:
    """Drive a headless Chromium page with `use`, screenshot it to reports/<name>.png, check for errors."""
    assert MODEL.is_file(), f"the demo needs a model at {MODEL}: run `mnist-bot train --arch cnn` first"
    REPORTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(120_000)
        page.on("pageerror", lambda exc: errors.append(f"{exc} {exc.stack}"))
        try:
            use(page)
            page.screenshot(path=REPORTS / f"{name}.png")
        except Exception:
            page.screenshot(path=REPORTS / f"{name}_failure.png")
            raise
        finally:
            browser.close()

    # Only the widget stack's own scripts count: Notebook 7.6 itself throws a settings error while starting.
    assert not [e for e in errors if "@jupyter-widgets" in e or "ipycanvas" in e], errors


# `chromium` comes first so that a missing browser skips before a Jupyter server is started.
def test_draw_digits_in_jupyterlab_and_get_them_named_in_the_chat(chromium: str, lab: Lab) -> None:
    front_end = "jupyterlab" if lab.notebook_path.startswith("/lab") else "notebook"
    run_in_chromium(chromium, f"widget_{front_end}", lambda page: use_the_widget(page, open_demo(page, lab)))
    with FeedbackStore(lab.db) as store:  # the correction went from the browser to the kernel's SQLite file
        assert store.count() == 1
        assert store.labelled()[1].tolist() == [8]


# A notebook cell that composes the chat in a layout and reacts to each answer through the trait.
LAYOUT_CELL = """\
from ipywidgets import HTML, HBox
from widgets import DigitChat

chat = DigitChat()
seen = HTML("no answer yet", _dom_classes=["observed-reading"])
chat.observe(lambda change: setattr(seen, "value", f"observed {change['new'].digit}"), "reading")
HBox([chat, seen])
"""


@pytest.mark.parametrize("lab", ["jupyterlab"], indirect=True)  # the composition is the same in Notebook 7
def test_a_chat_inside_an_hbox_renders_answers_and_notifies_observers(chromium: str, lab: Lab) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LAYOUT_CELL)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, lab.root / "layout.ipynb")

    def use(page: Page) -> None:
        canvas = open_demo(page, lab, "/lab/tree/layout.ipynb")
        row = page.locator(".jp-OutputArea-output .widget-hbox").first
        expect(row.locator(".observed-reading")).to_contain_text("no answer yet")
        assert row.locator("canvas").count() == 1  # the chat is inside the HBox, beside the label
        pad, seen = canvas.bounding_box(), row.locator(".observed-reading").bounding_box()
        assert pad is not None and seen is not None and seen["x"] > pad["x"] + pad["width"]  # side by side
        draw(page, canvas, SEVEN)
        row.locator(".widget-button", has_text="Send").first.click()
        expect(row.locator(".digitchat-answer").first).to_contain_text("It's a 7")
        expect(row.locator(".observed-reading")).to_contain_text("observed 7")

    run_in_chromium(chromium, "widget_hbox_jupyterlab", use)


def page_png(folder: Path) -> Path:
    """Write a photo-like PNG of two rows of sevens (three, then two) for the upload button."""
    from widgets.raster import Stroke, mask_to_png, stroke_mask

    seven = [(x * 0.6, y * 0.6) for x, y in SEVEN]
    strokes = [
        Stroke(tuple((x + 130 * i, y + 40 + 200 * row) for x, y in seven), 12)
        for row, count in enumerate([3, 2])
        for i in range(count)
    ]
    path = folder / "page.png"
    path.write_bytes(mask_to_png(stroke_mask(strokes, (440, 460))))
    return path


@pytest.mark.parametrize("lab", ["jupyterlab"], indirect=True)  # the upload is the same in Notebook 7
def test_an_uploaded_page_shows_its_lines_and_the_annotated_picture(
    chromium: str, lab: Lab, tmp_path: Path
) -> None:
    photo = page_png(tmp_path)

    def use(page: Page) -> None:
        open_demo(page, lab)
        with page.expect_file_chooser() as chooser:  # ipywidgets keeps its file input out of the DOM
            page.locator(".widget-upload", has_text="photo").first.click()
        chooser.value.set_files(str(photo))
        reply = page.locator(".digitchat-page").first
        expect(reply).to_have_attribute("data-lines", "2")
        expect(reply.locator(".digitchat-page-text")).to_have_text("777\n77")
        picture = reply.locator("img")
        expect(picture).to_have_count(1)
        assert picture.evaluate("img => img.complete && img.naturalWidth") > 300  # the picture, decoded

    run_in_chromium(chromium, "widget_page_jupyterlab", use)

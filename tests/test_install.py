"""A serving install in a fresh virtualenv: no TensorFlow, and predict, the bot and the widget still work."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import draw_digit

ROOT = Path(__file__).resolve().parent.parent
# What a wheel of the project is built from; the rest (environments, caches, training files) stays out.
NOT_PACKAGED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "reports", "*.egg-info", "__pycache__", ".*_cache", "*.keras", "*.db"
)

pytestmark = pytest.mark.slow


def run(*command: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command of the fresh environment and capture its output."""
    # Without PYTHONPATH, which would import the source tree instead of what was installed.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    done = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=900,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def serving_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install the project as `pip install mnist-bot` would, without extras, into a new virtualenv."""
    folder = tmp_path_factory.mktemp("install")
    source = folder / "source"
    shutil.copytree(ROOT, source, ignore=NOT_PACKAGED)
    venv = folder / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=folder)
    run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", source, cwd=folder)
    shutil.rmtree(source)  # the install must stand on its own, models included
    return venv


def test_serving_install_has_no_tensorflow(serving_venv: Path, tmp_path: Path) -> None:
    for module in ("tensorflow", "keras", "matplotlib"):
        done = run(serving_venv / "bin" / "python", "-c", f"import {module}", cwd=tmp_path, check=False)
        assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr, module


def test_predict_works_from_any_folder_with_the_shipped_model(serving_venv: Path, tmp_path: Path) -> None:
    seven = tmp_path / "seven.png"
    draw_digit(7).save(seven)
    done = run(serving_venv / "bin" / "mnist-bot", "predict", "--json", seven, cwd=tmp_path)
    assert json.loads(done.stdout)["digit"] == 7
    assert done.stderr == ""  # a quiet start


def test_the_bot_and_the_widget_import_without_tensorflow(serving_venv: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "import mnist_bot.bot, widgets\n"
        "from mnist_bot.bot import build_application\n"
        "from widgets import DigitChat\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(loaded & {'tensorflow', 'keras', 'telegram', 'ipywidgets'}))\n"
        "print(mnist_bot.__file__)\n"
    )
    done = run(serving_venv / "bin" / "python", "-c", code, cwd=tmp_path)
    modules, location = done.stdout.splitlines()[-2:]
    assert modules == "['ipywidgets', 'telegram']"
    assert Path(location).is_relative_to(serving_venv)  # the installed copy, not the source tree


def test_training_says_which_extra_to_install(serving_venv: Path, tmp_path: Path) -> None:
    done = run(serving_venv / "bin" / "mnist-bot", "train", "--arch", "dense", cwd=tmp_path, check=False)
    assert done.returncode == 1
    assert 'pip install "mnist-bot[train]"' in done.stderr and "Traceback" not in done.stderr

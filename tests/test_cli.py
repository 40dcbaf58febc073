"""Tests of the `mnist-bot` command line through `main([...])`, with a fake and with real models."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mnist_bot.cli import build_parser, main
from mnist_bot.config import DEFAULT_MODEL
from mnist_bot.data import IDX_NAMES, IMAGE_MAGIC, LABEL_MAGIC, Mnist
from mnist_bot.recognizer import Recognizer
from mnist_bot.runtime import FakeRuntime
from tests.conftest import draw_digit, encode, mnist_photo
from tests.fake_telegram import FakeTelegram

PREDICTION_FIELDS = {"path", "text", "lines", "digit", "confidence", "probabilities", "unsure"}
PAGE_FIELDS = {"path", "text", "lines", "unsure", "confidence", "digits", "rotation"}
DIGIT_FIELDS = {"digit", "confidence", "probabilities", "unsure", "box"}


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> list[Path | None]:
    """Make `Recognizer.load` return the fake runtime; record the paths it was asked for."""
    asked: list[Path | None] = []

    def load(cls: type[Recognizer], path: str | Path | None = None) -> Recognizer:
        asked.append(None if path is None else Path(path))
        return cls(FakeRuntime(), {"name": "fake"})

    monkeypatch.setattr(Recognizer, "load", classmethod(load))
    return asked


def json_lines(text: str) -> list[dict[str, Any]]:
    """Parse one JSON object per output line."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def write_image(path: Path, image: Image.Image, fmt: str = "PNG") -> Path:
    """Save an image to `path` and return the path."""
    path.write_bytes(encode(image, fmt))
    return path


def two_digits(left: int, right: int) -> Image.Image:
    """Draw two digits side by side on white paper."""
    canvas = Image.new("L", (220, 100), 255)
    canvas.paste(draw_digit(left), (0, 0))
    canvas.paste(draw_digit(right), (120, 0))
    return canvas


def idx(array: np.ndarray, magic: int) -> bytes:
    """Encode a uint8 array as an IDX file."""
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()


def tiny_mnist_folder(folder: Path) -> Path:
    """Write a tiny raw-IDX MNIST whose test images the fake runtime reads as 0-9 (label 9 is wrong once)."""
    folder.mkdir()
    # FakeRuntime answers int(mean * 10) % 10: a uniform grey of 25 k + 12 reads as k.
    images = np.stack([np.full((28, 28), 25 * (k % 10) + 12, np.uint8) for k in range(12)])
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 9], np.uint8)  # image 11 reads as 1, labelled 9
    for key, array in {
        "train_images": images,
        "train_labels": labels,
        "test_images": images,
        "test_labels": labels,
    }.items():
        (folder / IDX_NAMES[key]).write_bytes(
            idx(array, IMAGE_MAGIC if key.endswith("images") else LABEL_MAGIC)
        )
    return folder


# --- predict, with the fake runtime ------------------------------------------------------------------


def test_predict_json_prints_one_object_per_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_model: list[Path | None]
) -> None:
    paths = [
        write_image(tmp_path / "seven.png", draw_digit(7)),
        write_image(tmp_path / "one.jpg", draw_digit(1), "JPEG"),
    ]
    assert main(["predict", "--json", *map(str, paths)]) == 0
    results = json_lines(capsys.readouterr().out)
    assert [r["path"] for r in results] == [str(p) for p in paths]
    expected = Recognizer(FakeRuntime())
    for result, path in zip(results, paths, strict=True):
        assert set(result) == PREDICTION_FIELDS
        direct = expected.predict(path)
        assert result["digit"] == direct.digit
        assert result["confidence"] == pytest.approx(direct.confidence, abs=1e-6)
        assert len(result["probabilities"]) == 10 and sum(result["probabilities"]) == pytest.approx(
            1, abs=1e-5
        )
        assert result["confidence"] == max(result["probabilities"])
        assert isinstance(result["unsure"], bool)
    assert fake_model == [None]  # one model load for all images, the default model


def test_predict_reports_unreadable_inputs_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_model: list[Path | None]
) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(encode(draw_digit(7))[:60])
    garbage = tmp_path / "notes.jpg"
    garbage.write_bytes(b"this is not an image")
    blank = write_image(tmp_path / "blank.png", Image.new("L", (100, 100), 255))
    good = write_image(tmp_path / "good.png", draw_digit(4))
    missing = tmp_path / "missing.png"
    paths = [corrupt, garbage, blank, missing, good]
    assert main(["predict", "--json", *map(str, paths)]) == 1  # any unread input: exit 1, for scripts
    results = json_lines(capsys.readouterr().out)
    assert [r["path"] for r in results] == [str(p) for p in paths]
    for result in results[:4]:
        assert set(result) == {"path", "error"}
        assert isinstance(result["error"], str) and result["error"]
        assert "Traceback" not in result["error"]
    assert set(results[4]) == PREDICTION_FIELDS


def test_predict_without_json_prints_a_sentence_per_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_model: list[Path | None]
) -> None:
    good = write_image(tmp_path / "good.png", draw_digit(0))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    assert main(["predict", str(good), str(bad)]) == 1
    lines = capsys.readouterr().out.splitlines()
    digit = Recognizer(FakeRuntime()).predict(good).digit
    assert lines[0].startswith(f"{good}: {digit}, ") and "% sure" in lines[0]
    assert lines[1].startswith(f"{bad}: ") and len(lines) == 2


def test_predict_number_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_model: list[Path | None]
) -> None:
    path = write_image(tmp_path / "number.png", two_digits(1, 7))
    assert main(["predict", "--number", "--json", str(path)]) == 0
    (result,) = json_lines(capsys.readouterr().out)
    assert set(result) == PAGE_FIELDS
    assert len(result["digits"]) == 2 and len(result["text"]) == 2
    assert result["text"] == "".join(str(d["digit"]) for d in result["digits"])
    assert result["lines"] == [{"text": result["text"], "digits": result["digits"]}]
    for digit in result["digits"]:
        assert set(digit) == DIGIT_FIELDS
        x, y, w, h = digit["box"]
        assert 0 <= x < 220 and 0 <= y < 100 and w > 0 and h > 0
    assert result["digits"][0]["box"][0] < result["digits"][1]["box"][0]
    product = result["digits"][0]["confidence"] * result["digits"][1]["confidence"]
    assert result["confidence"] == pytest.approx(product, abs=1e-5)


def test_predict_passes_the_model_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_model: list[Path | None]
) -> None:
    path = write_image(tmp_path / "seven.png", draw_digit(7))
    assert main(["predict", "--model", "other.tflite", str(path)]) == 0
    assert fake_model == [Path("other.tflite")]


def test_missing_model_is_an_error_message_and_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_image(tmp_path / "seven.png", draw_digit(7))
    assert main(["predict", "--model", str(tmp_path / "none.tflite"), str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: No model file at") and "Traceback" not in captured.err


def test_model_that_is_not_a_model_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "broken.tflite"
    fake.write_bytes(b"not a flatbuffer at all" * 10)
    assert main(["evaluate", "--model", str(fake)]) == 1
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["predict"],
        ["predict", "--json"],
        ["fly"],
        ["train", "--arch", "resnet"],
        ["train", "--epochs", "many"],
        ["evaluate", "--bogus"],
    ],
    ids=[
        "nothing",
        "predict-no-images",
        "predict-json-only",
        "unknown-command",
        "bad-arch",
        "bad-epochs",
        "unknown-option",
    ],
)
def test_usage_errors_exit_with_code_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "usage: mnist-bot" in capsys.readouterr().err


def test_help_exits_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for command in ("train", "evaluate", "predict"):
        assert command in out


# --- the parser: version, help for every argument, no internal names ------------------------------


def test_version_is_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"mnist-bot {importlib.metadata.version('mnist-bot')}"


def every_action(parser: argparse.ArgumentParser, where: str = "mnist-bot") -> Iterator[tuple[str, Any]]:
    """Yield (command, action) for every argument and subcommand of the parser, recursively."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from ((where, choice) for choice in action._choices_actions)
            for name, sub in action.choices.items():
                yield from every_action(sub, f"{where} {name}")
        else:
            yield where, action


def test_every_argument_and_command_has_help() -> None:
    actions = list(every_action(build_parser()))
    assert len(actions) > 50
    assert [f"{where}: {a.option_strings or a.dest}" for where, a in actions if not a.help] == []


@pytest.mark.parametrize(
    ("argv", "named"),
    [([], "COMMAND"), (["feedback"], "ACTION"), (["predict"], "IMAGE"), (["feedback", "export"], "NPZ")],
)
def test_usage_errors_name_what_to_type_not_internal_variables(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    assert f"the following arguments are required: {named}" in capsys.readouterr().err


def test_usage_lines_show_no_variable_names() -> None:
    # argparse's default placeholder is the variable's name (--mnist-dir MNIST_DIR, --batch-size BATCH_SIZE).
    usages = [build_parser().format_usage()]
    for _, action in every_action(build_parser()):
        if isinstance(action, argparse._SubParsersAction):
            usages += [sub.format_usage() for sub in action.choices.values()]
    for usage in usages:
        assert not re.search(r"\b[A-Z]+_[A-Z_]+\b", usage), usage


def test_verbose_is_accepted_before_and_after_the_command(
    tmp_path: Path, fake_model: list[Path | None]
) -> None:
    seven = write_image(tmp_path / "seven.png", draw_digit(7))
    assert main(["--verbose", "predict", str(seven)]) == 0
    assert main(["predict", str(seven), "-v"]) == 0
    assert build_parser().parse_args(["-v", "predict", "x.png"]).verbose is True
    assert build_parser().parse_args(["predict", "x.png"]).verbose is False


# --- without the training extra: a sentence naming it, not a traceback -------------------------------


def test_train_without_tensorflow_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("tensorflow", "keras"):  # None in sys.modules makes `import name` fail, as if not installed
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "mnist_bot.training.train", raising=False)
    monkeypatch.delitem(sys.modules, "mnist_bot.training.architectures", raising=False)
    assert main(["train", "--arch", "dense", "--limit", "10"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: This command needs ") and 'pip install "mnist-bot[train]"' in err
    assert "Traceback" not in err


def test_evaluate_report_without_matplotlib_names_the_extra(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fake_model: list[Path | None],
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.delitem(sys.modules, "mnist_bot.training.report", raising=False)
    folder = tiny_mnist_folder(tmp_path / "mnist")
    assert main(["evaluate", "--mnist-dir", str(folder), "--report", str(tmp_path / "report")]) == 1
    assert "needs matplotlib" in capsys.readouterr().err and not (tmp_path / "report").exists()


# --- evaluate, with the fake runtime and a tiny MNIST -----------------------------------------------


def test_evaluate_json_and_report_on_a_tiny_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_model: list[Path | None]
) -> None:
    folder = tiny_mnist_folder(tmp_path / "mnist")
    report = tmp_path / "report"
    args = [
        "evaluate",
        "--model",
        "fake.tflite",
        "--mnist-dir",
        str(folder),
        "--json",
        "--report",
        str(report),
    ]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "fake.tflite" and result["runtime"] == "fake"
    assert result["n"] == 12 and result["errors"] == 1
    assert result["accuracy"] == round(11 / 12, 5)
    assert result["report"] == [
        str(report / name)
        for name in ("confusion_matrix.png", "misclassified.png", "reliability.png", "metrics.json")
    ]
    assert all(Path(p).stat().st_size > 0 for p in result["report"])


def test_evaluate_text_report_uses_mnist_dir(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fake_model: list[Path | None],
) -> None:
    monkeypatch.setenv("MNIST_DIR", str(tiny_mnist_folder(tmp_path / "mnist")))
    monkeypatch.setenv("MNIST_BOT_MODEL", str(tmp_path / "chosen.tflite"))
    assert main(["evaluate"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("model chosen.tflite: accuracy 91.6667% on 12 test images")
    assert "confusion (rows: true digit, columns: predicted)" in out


def test_evaluate_finds_mnist_in_the_keras_cache(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fake_model: list[Path | None],
) -> None:
    # No MNIST_DIR (the isolation fixture removed it): the next place is where keras.datasets saves it.
    images = np.stack([np.full((28, 28), 25 * (k % 10) + 12, np.uint8) for k in range(7)])
    labels = np.arange(7, dtype=np.uint8)
    cache = tmp_path / "home" / ".keras" / "datasets"
    cache.mkdir(parents=True)
    np.savez(cache / "mnist.npz", x_train=images, y_train=labels, x_test=images, y_test=labels)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert main(["evaluate", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 7 and result["accuracy"] == 1.0


def test_evaluate_without_mnist_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_model: list[Path | None]
) -> None:
    assert main(["evaluate", "--mnist-dir", str(tmp_path / "nowhere")]) == 1
    assert "MNIST_DIR" in capsys.readouterr().err


# --- with the real shipped model and the real MNIST --------------------------------------------------


@pytest.mark.slow
def test_predict_with_the_real_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mnist: Mnist
) -> None:
    index = int(np.flatnonzero(mnist.test.labels == 3)[0])
    paths = [
        write_image(tmp_path / "seven.png", draw_digit(7)),
        write_image(tmp_path / "four.jpg", draw_digit(4, width=10), "JPEG"),
        write_image(tmp_path / "three.jpg", mnist_photo(mnist.test.images[index]), "JPEG"),
    ]
    assert main(["predict", "--json", *map(str, paths)]) == 0
    results = json_lines(capsys.readouterr().out)
    assert [r["digit"] for r in results] == [7, 4, 3]
    assert all(set(r) == PREDICTION_FIELDS for r in results)


@pytest.mark.slow
def test_read_a_number_with_the_real_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_image(tmp_path / "number.png", two_digits(1, 7))
    assert main(["predict", "--number", "--json", "--model", str(DEFAULT_MODEL), str(path)]) == 0
    (result,) = json_lines(capsys.readouterr().out)
    assert result["text"] == "17"


def test_predict_number_is_a_no_op_kept_for_old_scripts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_model: list[Path | None]
) -> None:
    path = write_image(tmp_path / "number.png", two_digits(1, 7))
    assert main(["predict", "--json", str(path)]) == 0
    assert main(["predict", "--json", "--number", str(path)]) == 0
    without, with_number = json_lines(capsys.readouterr().out)
    assert without == with_number


def test_annotate_one_image_writes_that_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_model: list[Path | None]
) -> None:
    path = write_image(tmp_path / "number.png", two_digits(1, 7))
    out = tmp_path / "new" / "marked.png"
    assert main(["predict", "--annotate", str(out), str(path)]) == 0
    with Image.open(out) as marked:
        assert marked.format == "PNG" and marked.size == (220, 100)
        assert len(set(marked.convert("RGB").getdata())) > 2  # coloured boxes on the grey drawing


def test_annotate_several_images_writes_a_folder_or_a_pattern(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_model: list[Path | None]
) -> None:
    paths = [write_image(tmp_path / f"{n}.png", draw_digit(n)) for n in (1, 7)]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["predict", "--annotate", str(tmp_path / "marked"), *map(str, paths), str(bad)]) == 1
    assert sorted(f.name for f in (tmp_path / "marked").iterdir()) == ["1.png", "7.png"]
    assert main(["predict", "--annotate", str(tmp_path / "p" / "{stem}-read.png"), *map(str, paths)]) == 0
    assert sorted(f.name for f in (tmp_path / "p").iterdir()) == ["1-read.png", "7-read.png"]


def test_annotate_into_an_unwritable_place_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_model: list[Path | None]
) -> None:
    path = write_image(tmp_path / "one.png", draw_digit(1))
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert main(["predict", "--annotate", str(blocker / "out.png"), str(path)]) == 1
    out = capsys.readouterr().out  # an input entry like any other that could not be done, no traceback
    assert out.startswith(f"{path}: Cannot write the annotated image") and "Traceback" not in out


@pytest.mark.slow
def test_read_a_page_with_the_real_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mnist: Mnist
) -> None:
    from tests.test_layout import clear_digits, page_of

    rows = ["3141", "59265", "358"]
    path = write_image(tmp_path / "page.png", Image.fromarray(page_of(rows, clear_digits(mnist))))
    assert main(["predict", "--model", str(DEFAULT_MODEL), str(path)]) == 0
    head, *lines = capsys.readouterr().out.splitlines()
    assert head.startswith(f"{path}: 3 lines, ") and lines == rows
    assert main(["predict", "--json", "--model", str(DEFAULT_MODEL), str(path)]) == 0
    (result,) = json_lines(capsys.readouterr().out)
    assert set(result) == PAGE_FIELDS and result["text"] == "\n".join(rows)
    assert [line["text"] for line in result["lines"]] == rows
    assert [len(line["digits"]) for line in result["lines"]] == [4, 5, 3]
    tops = [line["digits"][0]["box"][1] for line in result["lines"]]
    assert tops == sorted(tops)  # boxes in the page's pixels, lines top to bottom


@pytest.mark.slow
def test_evaluate_the_real_model_with_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mnist_dir: Path
) -> None:
    report = tmp_path / "report"
    args = [
        "evaluate",
        "--model",
        str(DEFAULT_MODEL),
        "--mnist-dir",
        str(mnist_dir),
        "--json",
        "--report",
        str(report),
    ]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "cnn.tflite" and result["runtime"] == "litert"
    assert result["n"] == 10000
    assert result["accuracy"] >= 0.99
    assert result["errors"] == round((1 - result["accuracy"]) * 10000)
    names = {Path(p).name for p in result["report"]}
    assert names == {
        "confusion_matrix.png",
        "misclassified.png",
        "reliability.png",
        "training_curves.png",
        "metrics.json",
    }
    assert json.loads((report / "metrics.json").read_text())["accuracy"] == result["accuracy"]


@pytest.mark.slow
def test_train_a_small_dense_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mnist_dir: Path
) -> None:
    extra = tmp_path / "extra.npz"
    np.savez(extra, x=np.zeros((5, 28, 28), np.uint8), y=np.arange(5, dtype=np.uint8))
    out = tmp_path / "models"
    args = [
        "train",
        "--arch",
        "dense",
        "--epochs",
        "1",
        "--limit",
        "1000",
        "--out",
        str(out),
        "--mnist-dir",
        str(mnist_dir),
        "--extra-data",
        str(extra),
        "--name",
        "tiny",
    ]
    assert main(args) == 0
    summary, wrote = capsys.readouterr().out.splitlines()[-2:]  # after Keras's progress bar
    assert summary.startswith("tiny: test accuracy 0.") and "7,850 parameters" in summary
    assert wrote == f"wrote {out / 'tiny.keras'}, {out / 'tiny.tflite'}, {out / 'tiny.json'}"
    metadata = json.loads((out / "tiny.json").read_text())
    assert metadata["architecture"] == "dense" and metadata["epochs"] == 1 and metadata["limit"] == 1000
    assert metadata["extra_data"] == [str(extra)]
    assert metadata["command"] == "mnist-bot " + " ".join(args)
    assert metadata["test_accuracy"] > 0.2  # 8 Adam steps of softmax regression: measured 0.34, chance 0.1
    assert Recognizer.load(out / "tiny.tflite").metadata == metadata


# --- real processes: a quiet start, no TensorFlow, and the bot against Telegram that refuses or is away --


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `mnist-bot ARGS` in a fresh interpreter and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "mnist_bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=180,
        check=False,
    )


def bot_env(base_url: str, token: str, folder: Path) -> dict[str, str]:
    """Return the environment of a bot talking to `base_url` with `token`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MNIST_BOT_"))}
    return env | {
        "TELEGRAM_BOT_TOKEN": token,
        "TELEGRAM_API_BASE_URL": base_url,
        "MNIST_BOT_DB": str(folder / "feedback.db"),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.mark.slow
def test_predict_writes_nothing_on_stderr_unless_verbose(tmp_path: Path) -> None:
    seven = write_image(tmp_path / "seven.png", draw_digit(7))
    quiet = run_cli("predict", str(seven), cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stdout.startswith(f"{seven}: 7, ")
    assert quiet.stderr == ""
    verbose = run_cli("predict", str(seven), "--verbose", cwd=tmp_path)
    assert verbose.returncode == 0 and "XNNPACK" in verbose.stderr  # LiteRT's own line, let through


@pytest.mark.slow
def test_predict_and_the_front_ends_never_import_tensorflow(tmp_path: Path) -> None:
    seven = write_image(tmp_path / "seven.png", draw_digit(7))
    code = (
        "import json, sys\n"
        "from mnist_bot.cli import main\n"
        f"status = main(['predict', '--json', {str(seven)!r}])\n"
        "import mnist_bot.bot, widgets\n"
        "heavy = {m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'matplotlib'}\n"
        "print(json.dumps({'status': status, 'heavy': sorted(heavy)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=180, check=True
    )
    prediction, result = map(json.loads, done.stdout.strip().splitlines()[-2:])
    assert prediction["digit"] == 7
    assert result == {"status": 0, "heavy": []}


@pytest.mark.slow
@pytest.mark.e2e
def test_bot_with_a_token_telegram_refuses_stops_with_a_clear_message(tmp_path: Path) -> None:
    with FakeTelegram() as fake:  # it answers 401 Unauthorized to any other token, as Telegram does
        done = run_cli("bot", cwd=tmp_path, env=bot_env(fake.base_url, "42:refused-token", tmp_path))
        assert [call.method for call in fake.calls()] == []  # refused before any method ran
    assert done.returncode == 1
    assert "error: Telegram refused the bot token (401 Unauthorized)" in done.stderr
    assert "Traceback" not in done.stderr and "refused-token" not in done.stderr
    assert "XNNPACK" not in done.stderr and "TensorFlow" not in done.stderr  # a quiet start


def closed_port() -> int:
    """Return a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.e2e
def test_bot_logs_why_telegram_is_unreachable_on_each_retry_with_growing_pauses(tmp_path: Path) -> None:
    token = "42:unreachable-token"
    env = bot_env(f"http://127.0.0.1:{closed_port()}", token, tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_bot.cli", "bot"],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    killer = threading.Timer(120, process.kill)  # a bot that never retries must not hang the suite
    killer.start()
    seen: list[str] = []
    retries: list[str] = []
    assert process.stderr is not None
    for line in process.stderr:
        seen.append(line)
        retries += [line] if "Cannot reach Telegram" in line else []
        if len(retries) == 4:
            break
    process.send_signal(signal.SIGTERM)
    seen += process.communicate(timeout=60)[1].splitlines()
    killer.cancel()
    assert process.returncode == 0, "".join(seen)  # SIGTERM while retrying is a clean stop
    assert len(retries) == 4, "".join(seen)
    found = [
        re.search(r"\(getMe: (.+)\); attempt (\d) failed, ([\d.]+) s after the first", line)
        for line in retries
    ]
    assert all(found), retries
    assert all("ConnectError" in m.group(1) for m in found if m)  # the reason, not just "failed"
    assert [int(m.group(2)) for m in found if m] == [1, 2, 3, 4]
    gaps = np.diff([float(m.group(3)) for m in found if m])
    assert gaps[2] > gaps[0]  # python-telegram-bot's pauses grow: 1.5 s, 2.25 s, 3.4 s
    assert token not in "".join(seen)

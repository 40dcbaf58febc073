"""Tests of the `mnist-bot` command line through `main([...])`, with a fake and with real models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mnist_bot.cli import main
from mnist_bot.config import DEFAULT_MODEL
from mnist_bot.data import IDX_NAMES, IMAGE_MAGIC, LABEL_MAGIC, Mnist
from mnist_bot.recognizer import Recognizer
from mnist_bot.runtime import FakeRuntime
from tests.conftest import draw_digit, encode, mnist_photo

PREDICTION_FIELDS = {"path", "digit", "confidence", "probabilities", "unsure"}


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
    assert main(["predict", "--json", *map(str, paths)]) == 0
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
    assert main(["predict", str(good), str(bad)]) == 0
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
    assert set(result) == {"path", "text", "unsure", "confidence", "digits"}
    assert len(result["digits"]) == 2 and len(result["text"]) == 2
    assert result["text"] == "".join(str(d["digit"]) for d in result["digits"])
    for digit in result["digits"]:
        assert set(digit) == {"digit", "confidence", "probabilities", "unsure"}
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
        str(report / name) for name in ("confusion_matrix.png", "misclassified.png", "metrics.json")
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
    assert names == {"confusion_matrix.png", "misclassified.png", "training_curves.png", "metrics.json"}
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

"""Tests of the model runtimes' edges: a missing training extra, the Keras fallback, quiet native logs."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_bot import ModelLoadError
from mnist_bot.config import DEFAULT_MODEL
from mnist_bot.runtime import MAX_BATCH, KerasRuntime, LiteRtRuntime, load_runtime, native_logs_muted


def without_keras(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `import keras` fail as in a serving install (None in sys.modules blocks the import)."""
    for name in ("keras", "tensorflow"):
        monkeypatch.setitem(sys.modules, name, None)


def test_a_keras_model_without_the_training_extra_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_keras(monkeypatch)
    model = tmp_path / "cnn.keras"
    model.write_bytes(b"zip")
    with pytest.raises(ModelLoadError, match=r'pip install "mnist-bot\[train\]"'):
        KerasRuntime(model)
    with pytest.raises(ModelLoadError, match="TensorFlow and Keras"):
        load_runtime(model)


def test_a_broken_tflite_beside_a_keras_file_reports_the_tflite_problem_without_keras(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_keras(monkeypatch)
    (tmp_path / "cnn.tflite").write_bytes(b"not a flatbuffer" * 8)
    (tmp_path / "cnn.keras").write_bytes(b"zip")
    with pytest.raises(ModelLoadError, match=r"not a valid \.tflite model"):
        load_runtime(tmp_path / "cnn.tflite")


def test_native_stderr_is_muted_unless_the_runtime_logs_at_debug(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with native_logs_muted():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"  # muted inside the block only, stderr restored after
    caplog.set_level(logging.DEBUG, logger="mnist_bot.runtime")
    with native_logs_muted():
        os.write(2, b"shown\n")
    assert capfd.readouterr().err == "shown\n"


@pytest.mark.slow
def test_loading_the_shipped_model_writes_nothing_on_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    runtime = load_runtime(DEFAULT_MODEL)
    assert runtime.name == "litert"
    assert capfd.readouterr().err == ""


def test_a_batch_bigger_than_one_call_reads_as_one_call_would() -> None:
    """A form's thousand digits run in fixed chunks: the same probabilities, in the same order."""
    runtime = LiteRtRuntime(DEFAULT_MODEL)
    batch = np.random.default_rng(0).random((MAX_BATCH + 7, 28, 28), dtype=np.float32)
    chunked = runtime.predict(batch)
    alone = np.concatenate([runtime.predict(batch[i : i + 1]) for i in (0, MAX_BATCH, MAX_BATCH + 6)])
    assert chunked.shape == (MAX_BATCH + 7, 10)
    np.testing.assert_allclose(chunked[[0, MAX_BATCH, MAX_BATCH + 6]], alone, atol=1e-5)

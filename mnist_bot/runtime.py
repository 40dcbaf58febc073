"""Model runtimes behind one small protocol: LiteRT, Keras, and a fake for tests."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mnist_bot.errors import ModelLoadError

log = logging.getLogger(__name__)

NUM_CLASSES = 10
TRAIN_EXTRA = 'pip install "mnist-bot[train]"'


class Runtime(Protocol):
    """Turn a batch of model inputs into class probabilities."""

    name: str

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Map float32 (N, 28, 28) in [0, 1] to float32 (N, 10) probabilities."""
        ...

    def predict_with_digitness(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Return (N, 10) probabilities and, from a model with a reject head, float32 (N,) P(digit)."""
        ...


MAX_BATCH = 256  # digits per interpreter call: a page's batch beyond this runs in chunks


class LiteRtRuntime:
    """Run a `.tflite` model with the LiteRT interpreter (no TensorFlow import)."""

    name = "litert"

    def __init__(self, path: Path) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise ModelLoadError("The LiteRT runtime (ai-edge-litert) is not installed.") from exc
        self._batch = 0
        # The interpreter is not thread-safe; the bot calls it from worker threads.
        self._lock = threading.Lock()
        try:
            self._interpreter = Interpreter(model_path=str(path), num_threads=1)
            self._input = self._interpreter.get_input_details()[0]
            # A model with a reject head has a second output, P(digit), of one value per input.
            outputs = self._interpreter.get_output_details()
            self._output = next(o for o in outputs if o["shape"][-1] == NUM_CLASSES)
            self._digitness = next((o for o in outputs if o["shape"][-1] == 1), None)
            # The first allocation applies XNNPACK, which LiteRT announces on stderr: do it now, muted.
            with native_logs_muted():
                self._resize(1)
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(
                f"Cannot load the model file {path.name}: it is not a valid .tflite model."
            ) from exc

    def _resize(self, batch_size: int) -> None:
        """Resize the input tensor when the batch size changes."""
        if batch_size != self._batch:
            shape = [batch_size, *self._input["shape"][1:]]
            self._interpreter.resize_tensor_input(self._input["index"], shape)
            self._interpreter.allocate_tensors()
            self._batch = batch_size

    @property
    def has_digitness(self) -> bool:
        """Whether the model answers P(digit) beside the ten probabilities."""
        return self._digitness is not None

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Run the batch's probabilities (see `predict_with_digitness`)."""
        return self.predict_with_digitness(batch)[0]

    def predict_with_digitness(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Run the batch in one interpreter call, or a big one (a form's) in calls of MAX_BATCH.

        Returns the probabilities and, when the model has a reject head, P(digit). The
        interpreter's buffers grow with the batch (a 2,000-digit form took 400 MB of them);
        chunks of one fixed size keep them small and are allocated once.
        """
        with self._lock:
            if len(batch) <= MAX_BATCH:
                return self._invoke(batch)
            chunks = [batch[i : i + MAX_BATCH] for i in range(0, len(batch), MAX_BATCH)]
            last = len(chunks[-1])
            chunks[-1] = np.concatenate(
                [chunks[-1], np.zeros((MAX_BATCH - last, *batch.shape[1:]), batch.dtype)]
            )
            parts = [self._invoke(chunk) for chunk in chunks]
            probabilities = np.concatenate([p for p, _ in parts])[: len(batch)]
            if self._digitness is None:
                return probabilities, None
            return probabilities, np.concatenate([d for _, d in parts if d is not None])[: len(batch)]

    def _invoke(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Run one interpreter call (the lock held): probabilities and P(digit) when the model has it."""
        self._resize(len(batch))
        model_input = batch.reshape([len(batch), *self._input["shape"][1:]]).astype(np.float32)
        self._interpreter.set_tensor(self._input["index"], model_input)
        self._interpreter.invoke()
        probabilities = np.array(self._interpreter.get_tensor(self._output["index"]), dtype=np.float32)
        if self._digitness is None:
            return probabilities, None
        digitness = self._interpreter.get_tensor(self._digitness["index"])
        return probabilities, np.array(digitness, dtype=np.float32).reshape(len(batch))


class KerasRuntime:
    """Run a `.keras` model with Keras (imports TensorFlow; a fallback only)."""

    name = "keras"

    def __init__(self, path: Path) -> None:
        try:
            import keras

            self._model: Any = keras.models.load_model(path, compile=False)
        except ImportError as exc:
            raise ModelLoadError(
                f"A .keras model needs TensorFlow and Keras, which serving does without: {TRAIN_EXTRA}, "
                "or use the .tflite model."
            ) from exc
        except Exception as exc:  # Keras raises many types for a bad file.
            raise ModelLoadError(f"Cannot load the model file {path.name}.") from exc

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Call the model directly; `model.predict` is far slower for small batches."""
        return np.asarray(self._model(batch[..., np.newaxis], training=False), dtype=np.float32)

    def predict_with_digitness(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Return the probabilities; the `.keras` digit model has no reject head."""
        return self.predict(batch), None


class FakeRuntime:
    """A deterministic stand-in for tests: scores come from a plain function."""

    name = "fake"

    def __init__(
        self,
        score: Callable[[np.ndarray], np.ndarray] | None = None,
        digitness: Callable[[np.ndarray], float] | None = None,
    ) -> None:
        self._score = score or _ink_fraction_scores
        self._digitness = digitness  # P(digit) of one input, as a reject head answers it
        self.calls = 0

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Return softmax-normalised scores for each input."""
        return self.predict_with_digitness(batch)[0]

    def predict_with_digitness(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Return softmax-normalised scores and, given a digitness function, P(digit) of each input."""
        self.calls += 1
        logits = np.stack([self._score(image) for image in batch]).astype(np.float32)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = exp / exp.sum(axis=1, keepdims=True)
        if self._digitness is None:
            return probabilities, None
        return probabilities, np.array([self._digitness(image) for image in batch], np.float32)


def _ink_fraction_scores(image: np.ndarray) -> np.ndarray:
    """Favour the digit equal to the ink fraction's first decimal, so answers vary with input."""
    scores = np.zeros(NUM_CLASSES, dtype=np.float32)
    scores[int(float(image.mean()) * 10) % NUM_CLASSES] = 5.0
    return scores


def load_runtime(path: Path) -> Runtime:
    """Pick the runtime for a model file: LiteRT for `.tflite`, Keras for `.keras`."""
    if not path.is_file():
        raise ModelLoadError(
            f"No model file at {path}. Train one with `mnist-bot train` or set MNIST_BOT_MODEL."
        )
    if path.suffix == ".tflite":
        return _tflite_or_keras(path)
    if path.suffix in {".keras", ".h5"}:
        return KerasRuntime(path)
    raise ModelLoadError(f"Unknown model type {path.suffix!r}: use a .tflite or .keras file.")


def _tflite_or_keras(path: Path) -> Runtime:
    """Prefer LiteRT; fall back to the sibling `.keras` file when LiteRT cannot load the model."""
    try:
        return LiteRtRuntime(path)
    except ModelLoadError as litert_error:
        keras_path = path.with_suffix(".keras")
        if not keras_path.is_file():
            raise
        log.warning("LiteRT cannot load %s; falling back to Keras for %s", path.name, keras_path.name)
        try:
            return KerasRuntime(keras_path)
        except ModelLoadError:
            raise litert_error from litert_error.__cause__  # the .tflite is what to fix, not a missing extra


@contextlib.contextmanager
def native_logs_muted() -> Iterator[None]:
    """Silence what C++ libraries write to stderr for the block, unless this module logs at DEBUG.

    LiteRT logs "Created TensorFlow Lite XNNPACK delegate" with no switch to turn it off; writes of
    other threads to stderr during the block are lost too, so keep it to loading.
    """
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to mute
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)

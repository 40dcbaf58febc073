"""Speed and memory benchmark: our serving path beside the tutorial's `model.predict`, in one run.

Ours: the LiteRT interpreter on the `.tflite` model through `Recognizer` (preprocessing included
end to end). The tutorial's: `keras.models.load_model(...).predict(x[None])` on one image, with
the naive preprocessing (resize the whole image to 28x28). Cold start and peak memory are
measured on fresh subprocesses from outside. TensorFlow is imported here only after every
measurement of our path, so it cannot slow ours down.

    python benchmarks/speed.py --json-out speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mnist_bot import Recognizer
from mnist_bot.config import DEFAULT_MODEL
from mnist_bot.data import load_mnist
from mnist_bot.recognizer import prepared_mnist
from mnist_bot.training import synthetic as syn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robustness import _mnist_dir, naive28  # a sibling script, not a package

PHOTO_FRAME = (960, 1280)  # H, W: a 1280x960 phone photo
TARGETS = {"photo_p50_ms": 15.0, "canvas_p50_ms": 3.0, "cold_start_s": 1.0, "peak_memory_mb": 150.0}
MIN_SPEEDUP = 100.0
MIN_MNIST28_SPEEDUP = 50.0  # a whole Recognizer.predict of a 28x28 MNIST digit against model.predict
BENCH_DIR = Path(__file__).resolve().parent

# Peak memory is VmHWM, the high-water mark of this process's own memory map. ru_maxrss would not
# do: Linux carries it over exec from the forked parent, so a child of a big benchmark process
# reports the parent's size.
PEAK_MB = """
def peak_mb():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

OUR_CHILD = """
import json, resource, sys
from mnist_bot import Recognizer
rec = Recognizer.load(sys.argv[1])
first = rec.predict(sys.argv[2])
print("answered", flush=True)
rec.predict(sys.argv[3])
print(json.dumps({"digit": first.digit, "runtime": rec.runtime.name,
                  "tensorflow": "tensorflow" in sys.modules, "peak_mb": peak_mb()}))
"""

KERAS_CHILD = """
import json, resource, sys
sys.path.insert(0, sys.argv[4])
import keras
import numpy as np
from robustness import naive28
from PIL import Image
model = keras.models.load_model(sys.argv[1])
canvas = np.asarray(Image.open(sys.argv[2]))
first = model.predict(naive28(canvas)[None, ..., None], verbose=0)
print("answered", flush=True)
model.predict(naive28(open(sys.argv[3], "rb").read())[None, ..., None], verbose=0)
print(json.dumps({"digit": int(first.argmax()), "runtime": "keras",
                  "tensorflow": "tensorflow" in sys.modules, "peak_mb": peak_mb()}))
"""


@dataclass(frozen=True)
class Inputs:
    """What every measurement runs on: MNIST test digits as 28x28, canvases and photos."""

    digits28: np.ndarray  # (N, 28, 28) float32 in [0, 1]
    canvases: list[np.ndarray]  # (280, 280, 4) uint8 RGBA
    photos: list[bytes]  # 1280x960 JPEG


def make_inputs(mnist_dir: Path | None, count: int, seed: int) -> Inputs:
    """Build `count` canvases and photos, and 256+ digits, from MNIST test digits."""
    test = load_mnist(mnist_dir, download=False).test
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(test.images), max(count, 256), replace=False)
    digits = test.images[chosen]
    return Inputs(
        digits28=digits.astype(np.float32) / 255,
        canvases=[syn.canvas_of_digit(d, rng) for d in digits[:count]],
        photos=[syn.photo_of_digit(d, rng, frame=PHOTO_FRAME) for d in digits[:count]],
    )


def timings_ms(call: Callable[[int], object], repeats: int, warmup: int = 3) -> dict[str, float]:
    """Call `call(i)` `repeats` times after a warm-up; return wall p50 and p99, and CPU p50, in ms."""
    for i in range(warmup):
        call(i)
    times, cpu = [], []
    for i in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        call(i)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    # CPU time (all threads of this process) barely depends on what else the machine runs; wall time does.
    return {
        "p50_ms": float(np.percentile(times, 50)),
        "p99_ms": float(np.percentile(times, 99)),
        "cpu_p50_ms": float(np.percentile(cpu, 50)),
        "n": repeats,
    }


def throughput(call: Callable[[], object], images: int, repeats: int = 5) -> float:
    """Return images per second of the best of a few runs of a batch call."""
    call()
    best = min(_seconds(call) for _ in range(repeats))
    return images / best


def _seconds(call: Callable[[], object]) -> float:
    """Time one call in seconds."""
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


# ---------------------------------------------------------------- our path


def measure_ours(rec: Recognizer, inputs: Inputs, repeats: int) -> dict[str, Any]:
    """Measure our serving path in this process (TensorFlow not imported yet)."""
    digits, canvases, photos = inputs.digits28, inputs.canvases, inputs.photos
    batch = digits[:256]
    return {
        "runtime": rec.runtime.name,
        "model_only": timings_ms(lambda i: rec.classify28(digits[i % len(digits)][None]), repeats * 5),
        # The whole public call on a raw MNIST digit: the fast path, which skips the photo pipeline.
        "mnist28": timings_ms(lambda i: rec.predict(digits[i % len(digits)]), repeats * 5),
        "mnist28_fast_share": float(np.mean([prepared_mnist(d) is not None for d in digits])),
        "canvas": timings_ms(lambda i: rec.predict(canvases[i % len(canvases)]), repeats),
        "photo": timings_ms(lambda i: rec.predict(photos[i % len(photos)]), repeats),
        "batch_images_per_s": throughput(lambda: rec.classify28(batch), len(batch)),
        "batch_canvases_per_s": throughput(lambda: rec.predict_batch(canvases[:64]), 64, repeats=2),
    }


def cold_start(code: str, args: Sequence[str], runs: int) -> dict[str, Any]:
    """Start fresh processes: wall time to the first answer (median) and the child's own report."""
    walls, report = [], {}
    for _ in range(runs):
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-c", PEAK_MB + code, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        first = child.stdout.readline()
        walls.append(time.perf_counter() - started)
        rest, errors = child.communicate(timeout=300)
        if first.strip() != "answered" or child.returncode != 0:
            raise RuntimeError(f"cold-start child failed: {first}{rest}{errors[-2000:]}")
        report = json.loads(rest.strip().splitlines()[-1])
    return {"cold_start_s": float(np.median(walls)), "runs": runs, **report}


# ---------------------------------------------------------------- the tutorial's path


def measure_keras(keras_path: Path, inputs: Inputs, repeats: int) -> dict[str, Any]:
    """Measure `model.predict` on one image, as the tutorial serves it (imports TensorFlow)."""
    import keras

    model = keras.models.load_model(keras_path)
    digits, canvases, photos = inputs.digits28, inputs.canvases, inputs.photos

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(x[None, ..., None], verbose=0))

    batch = digits[:256, ..., None]
    return {
        "runtime": "keras model.predict",
        "model_only": timings_ms(lambda i: predict(digits[i % len(digits)]), repeats),
        "canvas": timings_ms(lambda i: predict(naive28(canvases[i % len(canvases)])), repeats),
        "photo": timings_ms(lambda i: predict(naive28(photos[i % len(photos)])), repeats),
        "batch_images_per_s": throughput(lambda: model.predict(batch, verbose=0), len(batch)),
    }


# ---------------------------------------------------------------- report


def _fmt(value: float | None, unit: str, digits: int = 2) -> str:
    """Format a number with its unit, or a dash."""
    return "—" if value is None else f"{value:.{digits}f} {unit}"


def _check(ok: bool | None) -> str:
    """Mark a target as met or missed."""
    return "" if ok is None else (" ✓" if ok else " ✗")


def _latency(side: dict[str, Any] | None, key: str) -> str:
    """Format p50 / p99 of one latency measurement."""
    if side is None:
        return "—"
    timing = side[key]
    return f"{timing['p50_ms']:.2f} / {timing['p99_ms']:.2f} ms (CPU p50 {timing['cpu_p50_ms']:.2f})"


def _at_most(value: float, limit: float, unit: str) -> str:
    """State an upper-bound target and whether it is met."""
    return f"<= {limit:g} {unit}{_check(value <= limit)}"


def rows(ours: dict[str, Any], keras_side: dict[str, Any] | None) -> list[tuple[str, str, str, str]]:
    """Return (measure, ours, tutorial, target) rows for the in-process measurements."""
    speedup = keras_side["model_only"]["p50_ms"] / ours["model_only"]["p50_ms"] if keras_side else None
    faster = f">= {MIN_SPEEDUP:g}x faster: {_fmt(speedup, 'x', 0)}"
    faster += _check(None if speedup is None else speedup >= MIN_SPEEDUP)
    k = keras_side or {}
    return [
        ("model-only latency per image, p50 / p99", _latency(ours, "model_only"),
         _latency(keras_side, "model_only"), faster),
        (f"28x28 MNIST digit: Recognizer.predict (fast path: {ours['mnist28_fast_share']:.0%}) "
         "against model.predict, p50 / p99", _latency(ours, "mnist28"), _latency(keras_side, "model_only"),
         _mnist28_target(ours, keras_side)),
        ("end-to-end 280x280 canvas, p50 / p99", _latency(ours, "canvas"), _latency(keras_side, "canvas"),
         "p50 " + _at_most(ours["canvas"]["p50_ms"], TARGETS["canvas_p50_ms"], "ms")),
        ("end-to-end 1280x960 JPEG photo, p50 / p99", _latency(ours, "photo"), _latency(keras_side, "photo"),
         "p50 " + _at_most(ours["photo"]["p50_ms"], TARGETS["photo_p50_ms"], "ms")),
        ("batch throughput, 256 prepared 28x28 in one call", _fmt(ours["batch_images_per_s"], "img/s", 0),
         _fmt(k.get("batch_images_per_s"), "img/s", 0), ""),
        ("batch throughput, 64 canvases end to end (predict_batch)",
         _fmt(ours["batch_canvases_per_s"], "img/s", 0), "—", ""),
    ]  # fmt: skip


def _mnist28_target(ours: dict[str, Any], keras_side: dict[str, Any] | None) -> str:
    """State the fast path's target: a whole predict of a 28x28 digit against the tutorial's model.predict."""
    speedup = keras_side["model_only"]["p50_ms"] / ours["mnist28"]["p50_ms"] if keras_side else None
    target = f">= {MIN_MNIST28_SPEEDUP:g}x faster: {_fmt(speedup, 'x', 0)}"
    return target + _check(None if speedup is None else speedup >= MIN_MNIST28_SPEEDUP)


def process_rows(ours: dict[str, Any], keras_side: dict[str, Any] | None) -> list[tuple[str, str, str, str]]:
    """Return the fresh-process rows: cold start, peak memory, TensorFlow imported."""
    k = keras_side or {}
    return [
        ("cold start: import + load + first answer (fresh process)", _fmt(ours["cold_start_s"], "s"),
         _fmt(k.get("cold_start_s"), "s"), _at_most(ours["cold_start_s"], TARGETS["cold_start_s"], "s")),
        ("peak memory of that process after a canvas and a photo (VmHWM)", _fmt(ours["peak_mb"], "MB", 0),
         _fmt(k.get("peak_mb"), "MB", 0), _at_most(ours["peak_mb"], TARGETS["peak_memory_mb"], "MB")),
        ("tensorflow imported by the serving process", str(ours["tensorflow"]), str(k.get("tensorflow", "—")),
         f"False{_check(not ours['tensorflow'])}"),
    ]  # fmt: skip


def markdown(table: list[tuple[str, str, str, str]]) -> str:
    """Render rows as a Markdown table."""
    lines = [
        "| measure | ours (LiteRT + preprocessing) | tutorial (Keras model.predict) | target |",
        "|---|---:|---:|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in table]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="our .tflite model")
    parser.add_argument(
        "--keras-model", type=Path, default=None, help="the tutorial's .keras (default: beside it)"
    )
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per latency of our path")
    parser.add_argument("--keras-repeats", type=int, default=40, help="timed model.predict calls per latency")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh processes per cold start")
    parser.add_argument("--mnist-dir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every measurement, print a Markdown table and one JSON line."""
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter, here and in children
    keras_path = args.keras_model or args.model.with_suffix(".keras")
    inputs = make_inputs(_mnist_dir(args.mnist_dir), 20, args.seed)
    ours = measure_ours(Recognizer.load(args.model), inputs, args.repeats)
    with tempfile.TemporaryDirectory() as folder:
        canvas, photo = Path(folder) / "canvas.png", Path(folder) / "photo.jpg"
        Image.fromarray(inputs.canvases[0]).save(canvas)
        photo.write_bytes(inputs.photos[0])
        files = [str(canvas), str(photo)]
        ours |= cold_start(OUR_CHILD, [str(args.model), *files], args.cold_runs)
        keras_side = None
        if keras_path.is_file():
            keras_side = cold_start(KERAS_CHILD, [str(keras_path), *files, str(BENCH_DIR)], args.cold_runs)
            keras_side |= measure_keras(keras_path, inputs, args.keras_repeats)
    table = rows(ours, keras_side) + process_rows(ours, keras_side)
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    table.append(
        (
            f"machine: {os.cpu_count()} CPUs, load average 1 / 5 / 15 min",
            load,
            "",
            "timings need a quiet machine",
        )
    )
    report = {
        "benchmark": "speed",
        "model": str(args.model),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "ours": ours,
        "tutorial": keras_side,
        "targets": TARGETS,
    }
    print(markdown(table))
    print(json.dumps(report))
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

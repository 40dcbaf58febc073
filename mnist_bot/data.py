"""Load MNIST from IDX (.gz or raw) or Keras .npz files, offline first."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_bot.errors import DatasetError

log = logging.getLogger(__name__)

IMAGE_MAGIC = 0x00000803
LABEL_MAGIC = 0x00000801
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
KERAS_CACHE = Path("~/.keras/datasets/mnist.npz")


@dataclass(frozen=True)
class Split:
    """Images (N, 28, 28) uint8, 0 = background, and labels (N,) uint8 in 0-9."""

    images: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class Mnist:
    """The standard train and test splits and where they came from."""

    train: Split
    test: Split
    source: str
    checksums: dict[str, str]


def _open_bytes(path: Path) -> bytes:
    """Read a file, gunzipping it when its name ends in .gz."""
    try:
        return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # zlib.error: corrupt deflate data
        raise DatasetError(f"Cannot read {path.name}: {exc}.") from exc


def parse_idx(raw: bytes, expected_magic: int, name: str = "IDX file") -> np.ndarray:
    """Parse IDX bytes (big-endian header, then uint8 values) into an array."""
    if len(raw) < 8:
        raise DatasetError(f"{name} is too short to be an IDX file.")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise DatasetError(f"{name} has magic number {magic:#010x}, expected {expected_magic:#010x}.")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if len(raw) != header + int(np.prod(dims)):
        raise DatasetError(f"{name} holds {len(raw) - header} values but its header promises {dims}.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    """Find `stem` or `stem.gz` in `folder`."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _verify_checksums(folder: Path, paths: list[Path]) -> dict[str, str]:
    """Check the files against SHA256SUMS when the folder has one; return their digests."""
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    sums = folder / "SHA256SUMS"
    if sums.is_file():
        pairs = (line.split(maxsplit=1) for line in sums.read_text().splitlines() if line.strip())
        # `sha256sum -b` marks names with "*"; without stripping it those files would go unchecked.
        expected = {name.strip().lstrip("*"): digest for digest, name in pairs}
        for name, digest in digests.items():
            if name in expected and expected[name] != digest:
                raise DatasetError(f"{name} does not match SHA256SUMS: the file is corrupt or was changed.")
    return digests


def _split(images: np.ndarray, labels: np.ndarray, what: str) -> Split:
    """Validate shapes, dtypes and label range of one split."""
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DatasetError(f"{what} images have shape {images.shape}, expected (N, 28, 28).")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(f"{what} has {len(images)} images but labels of shape {labels.shape}.")
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise DatasetError(f"{what} arrays must be uint8, got {images.dtype} and {labels.dtype}.")
    if labels.size and labels.max() > 9:
        raise DatasetError(f"{what} labels must be 0-9, found {int(labels.max())}.")
    return Split(images, labels)


def read_idx_folder(folder: Path) -> Mnist | None:
    """Read the four IDX files from `folder`, or return None when they are not there."""
    paths = {key: _find_idx(folder, stem) for key, stem in IDX_NAMES.items()}
    found = {key: path for key, path in paths.items() if path is not None}
    if not found:
        return None
    if len(found) < len(paths):
        missing = sorted(IDX_NAMES[key] for key in paths.keys() - found.keys())
        raise DatasetError(f"{folder} has some MNIST files but not {', '.join(missing)}.")
    checksums = _verify_checksums(folder, list(found.values()))
    arrays = {
        key: parse_idx(_open_bytes(path), IMAGE_MAGIC if key.endswith("images") else LABEL_MAGIC, path.name)
        for key, path in found.items()
    }
    train = _split(arrays["train_images"], arrays["train_labels"], "Training")
    test = _split(arrays["test_images"], arrays["test_labels"], "Test")
    return Mnist(train, test, str(folder), checksums)


def read_npz(path: Path) -> Mnist:
    """Read a Keras-format `mnist.npz` (x_train, y_train, x_test, y_test)."""
    try:
        with np.load(path) as npz:
            arrays = {key: npz[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"{path.name} is not a Keras MNIST .npz file: {exc}.") from exc
    train = _split(arrays["x_train"], arrays["y_train"], "Training")
    test = _split(arrays["x_test"], arrays["y_test"], "Test")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Mnist(train, test, str(path), {path.name: digest})


def _read_location(location: Path) -> Mnist | None:
    """Read a folder of IDX files or of `mnist.npz`, or an `.npz` file itself."""
    if location.is_file():
        return read_npz(location)
    if not location.is_dir():
        raise DatasetError(f"The MNIST location {location} does not exist; check MNIST_DIR.")
    found = read_idx_folder(location)
    if found is None and (location / "mnist.npz").is_file():
        found = read_npz(location / "mnist.npz")
    return found


def _download_with_keras() -> Mnist:
    """Fetch MNIST through Keras (needs the internet) into the Keras cache."""
    try:
        import keras

        keras.datasets.mnist.load_data()
    except Exception as exc:  # Keras raises several types when offline.
        raise DatasetError(
            "MNIST not found. Set MNIST_DIR to a folder with the four IDX files "
            "(train-images-idx3-ubyte.gz, ...) or mnist.npz; the download through Keras failed too."
        ) from exc
    return read_npz(KERAS_CACHE.expanduser())


def load_mnist(folder: str | Path | None = None, *, download: bool = True) -> Mnist:
    """Load MNIST from `folder`, then MNIST_DIR, then the Keras cache, then a Keras download."""
    for location in (folder, os.environ.get("MNIST_DIR") or None):
        if location is not None:
            found = _read_location(Path(location).expanduser())
            if found is None:
                raise DatasetError(f"No MNIST files in {location}: expected the four IDX files or mnist.npz.")
            return found
    if KERAS_CACHE.expanduser().is_file():
        return read_npz(KERAS_CACHE.expanduser())
    if not download:
        raise DatasetError("MNIST not found. Set MNIST_DIR to the folder with the MNIST IDX files.")
    log.info("MNIST not found locally; trying a download through Keras")
    return _download_with_keras()

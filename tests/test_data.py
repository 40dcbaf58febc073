"""Tests of the MNIST loader on tiny IDX and npz files written here, and on the real MNIST."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mnist_bot import data
from mnist_bot.data import IDX_NAMES, IMAGE_MAGIC, LABEL_MAGIC, load_mnist, parse_idx, read_npz
from mnist_bot.errors import DatasetError, RecognizerError

N_TRAIN, N_TEST = 6, 4


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """Encode a uint8 array as IDX: big-endian magic, one uint32 per dimension, then the values."""
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def tiny_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Return small random train/test arrays keyed like IDX_NAMES."""
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "train_labels": np.arange(N_TRAIN, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "test_labels": np.array([9, 8, 7, 6], dtype=np.uint8),
    }


def write_idx_folder(
    folder: Path,
    arrays: dict[str, np.ndarray] | None = None,
    gz: bool = True,
    raw: dict[str, bytes] | None = None,
) -> dict[str, np.ndarray]:
    """Write the four IDX files (gzipped or raw) into `folder`; `raw` replaces a file's bytes."""
    arrays = arrays or tiny_arrays()
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in IDX_NAMES.items():
        payload = (raw or {}).get(key)
        if payload is None:
            payload = idx_bytes(arrays[key], IMAGE_MAGIC if key.endswith("images") else LABEL_MAGIC)
        (folder / (f"{stem}.gz" if gz else stem)).write_bytes(gzip.compress(payload) if gz else payload)
    return arrays


def write_npz(
    path: Path, arrays: dict[str, np.ndarray] | None = None, replace: dict[str, np.ndarray] | None = None
) -> dict[str, Any]:
    """Write a Keras-format mnist.npz (x_train, y_train, x_test, y_test); `replace` swaps arrays."""
    arrays = arrays or tiny_arrays()
    content: dict[str, Any] = {
        "x_train": arrays["train_images"],
        "y_train": arrays["train_labels"],
        "x_test": arrays["test_images"],
        "y_test": arrays["test_labels"],
    } | (replace or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **content)
    return content


def assert_same(mnist: data.Mnist, arrays: dict[str, np.ndarray]) -> None:
    """Check a loaded Mnist holds exactly `arrays`."""
    np.testing.assert_array_equal(mnist.train.images, arrays["train_images"])
    np.testing.assert_array_equal(mnist.train.labels, arrays["train_labels"])
    np.testing.assert_array_equal(mnist.test.images, arrays["test_images"])
    np.testing.assert_array_equal(mnist.test.labels, arrays["test_labels"])


@pytest.fixture
def no_keras_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point HOME at an empty folder so that no real Keras cache is found."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


# --- parse_idx -----------------------------------------------------------------------------------


def test_parse_idx_reads_header_and_values() -> None:
    images = np.arange(2 * 28 * 28, dtype=np.uint32).reshape(2, 28, 28).astype(np.uint8)
    parsed = parse_idx(idx_bytes(images, IMAGE_MAGIC), IMAGE_MAGIC)
    assert parsed.shape == (2, 28, 28) and parsed.dtype == np.uint8
    np.testing.assert_array_equal(parsed, images)
    labels = parse_idx(idx_bytes(np.array([3, 1, 4], np.uint8), LABEL_MAGIC), LABEL_MAGIC)
    assert labels.tolist() == [3, 1, 4]


def test_parse_idx_rejects_the_wrong_magic_number() -> None:
    labels_file = idx_bytes(np.zeros(3, np.uint8), LABEL_MAGIC)
    with pytest.raises(DatasetError, match="magic number 0x00000801, expected 0x00000803"):
        parse_idx(labels_file, IMAGE_MAGIC, "train-images")


@pytest.mark.parametrize("cut", [1, 28, 28 * 28])
def test_parse_idx_rejects_truncated_data(cut: int) -> None:
    raw = idx_bytes(np.zeros((3, 28, 28), np.uint8), IMAGE_MAGIC)
    with pytest.raises(DatasetError, match="header promises"):
        parse_idx(raw[:-cut], IMAGE_MAGIC)


def test_parse_idx_rejects_more_data_than_the_header_promises() -> None:
    raw = idx_bytes(np.zeros((3, 28, 28), np.uint8), IMAGE_MAGIC)
    with pytest.raises(DatasetError, match=r"promises \[3, 28, 28\]"):
        parse_idx(raw + bytes(28 * 28), IMAGE_MAGIC)


@pytest.mark.parametrize("raw", [b"", b"\x00\x00\x08", b"\x00\x00\x08\x03\x00\x00\x00\x02"])
def test_parse_idx_rejects_files_too_short_for_their_header(raw: bytes) -> None:
    with pytest.raises(DatasetError):
        parse_idx(raw, IMAGE_MAGIC)


# --- reading folders and npz files ---------------------------------------------------------------


def test_reads_gzipped_idx_folder_with_checksums(tmp_path: Path) -> None:
    arrays = write_idx_folder(tmp_path / "mnist")
    mnist = load_mnist(tmp_path / "mnist")
    assert_same(mnist, arrays)
    assert mnist.source == str(tmp_path / "mnist")
    expected = {
        f"{stem}.gz": hashlib.sha256((tmp_path / "mnist" / f"{stem}.gz").read_bytes()).hexdigest()
        for stem in IDX_NAMES.values()
    }
    assert mnist.checksums == expected


def test_reads_raw_idx_folder(tmp_path: Path) -> None:
    arrays = write_idx_folder(tmp_path / "mnist", gz=False)
    mnist = load_mnist(tmp_path / "mnist")
    assert_same(mnist, arrays)
    assert set(mnist.checksums) == set(IDX_NAMES.values())


def test_reads_keras_npz_file_and_folder_holding_one(tmp_path: Path) -> None:
    arrays = tiny_arrays(seed=3)
    write_npz(tmp_path / "keras" / "mnist.npz", arrays)
    from_file = load_mnist(tmp_path / "keras" / "mnist.npz")
    from_folder = load_mnist(tmp_path / "keras")
    for mnist in (from_file, from_folder):
        assert_same(mnist, arrays)
        assert mnist.source == str(tmp_path / "keras" / "mnist.npz")
        assert list(mnist.checksums) == ["mnist.npz"]


def test_idx_files_win_over_npz_in_the_same_folder(tmp_path: Path) -> None:
    idx_arrays = write_idx_folder(tmp_path / "both", tiny_arrays(seed=1))
    write_npz(tmp_path / "both" / "mnist.npz", tiny_arrays(seed=2))
    assert_same(load_mnist(tmp_path / "both"), idx_arrays)


def test_matching_sha256sums_are_accepted(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    arrays = write_idx_folder(folder)
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in sorted(folder.iterdir())]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    assert_same(load_mnist(folder), arrays)


def test_sha256sums_mismatch_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    write_idx_folder(folder)
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in sorted(folder.iterdir())]
    lines[0] = "0" * 64 + lines[0][64:]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match="does not match SHA256SUMS"):
        load_mnist(folder)


def test_changed_file_no_longer_matches_its_checksum(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    write_idx_folder(folder)
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in sorted(folder.iterdir())]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    # A valid file with other content: the structure checks pass, only the checksum can catch it.
    write_idx_folder(folder, tiny_arrays() | {"test_images": tiny_arrays(seed=9)["test_images"]})
    with pytest.raises(DatasetError, match=re.escape("t10k-images-idx3-ubyte.gz does not match SHA256SUMS")):
        load_mnist(folder)


def test_sha256sums_in_binary_mode_format_are_checked_too(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    write_idx_folder(folder)
    # `sha256sum -b` writes "digest *name"; a loader that ignored such lines would verify nothing.
    lines = [f"{'0' * 64} *{p.name}" for p in sorted(folder.iterdir())]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match="does not match SHA256SUMS"):
        load_mnist(folder)


@pytest.mark.parametrize("missing", ["train_labels", "test_images"])
def test_only_some_of_the_four_files_is_an_error_naming_the_missing(tmp_path: Path, missing: str) -> None:
    folder = tmp_path / "mnist"
    write_idx_folder(folder)
    (folder / f"{IDX_NAMES[missing]}.gz").unlink()
    with pytest.raises(DatasetError, match=IDX_NAMES[missing]):
        load_mnist(folder)


def test_bad_magic_in_a_file_is_an_error(tmp_path: Path) -> None:
    swapped = idx_bytes(np.zeros(N_TRAIN, np.uint8), IMAGE_MAGIC)  # labels written with the images magic
    write_idx_folder(tmp_path / "mnist", raw={"train_labels": swapped})
    with pytest.raises(DatasetError, match=re.escape("train-labels-idx1-ubyte.gz has magic number")):
        load_mnist(tmp_path / "mnist")


def test_truncated_idx_file_is_an_error(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    whole = idx_bytes(arrays["test_images"], IMAGE_MAGIC)
    write_idx_folder(tmp_path / "mnist", arrays, raw={"test_images": whole[:-100]})
    with pytest.raises(DatasetError, match="header promises"):
        load_mnist(tmp_path / "mnist")


def test_header_count_that_disagrees_with_the_data_is_an_error(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    lying = bytearray(idx_bytes(arrays["train_images"], IMAGE_MAGIC))
    lying[4:8] = (N_TRAIN + 1).to_bytes(4, "big")
    write_idx_folder(tmp_path / "mnist", arrays, raw={"train_images": bytes(lying)})
    with pytest.raises(DatasetError, match=f"promises \\[{N_TRAIN + 1}, 28, 28\\]"):
        load_mnist(tmp_path / "mnist")


def test_truncated_gzip_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    write_idx_folder(folder)
    path = folder / f"{IDX_NAMES['train_images']}.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DatasetError, match=re.escape("Cannot read train-images-idx3-ubyte.gz")):
        load_mnist(folder)


@pytest.mark.parametrize(
    "garbage",
    [b"not gzip at all", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\xff" * 64],
    ids=["no-gzip-header", "corrupt-deflate-data"],
)
def test_corrupt_gzip_is_an_error(tmp_path: Path, garbage: bytes) -> None:
    folder = tmp_path / "mnist"
    write_idx_folder(folder)
    (folder / f"{IDX_NAMES['test_labels']}.gz").write_bytes(garbage)
    with pytest.raises(DatasetError, match=re.escape("Cannot read t10k-labels-idx1-ubyte.gz")):
        load_mnist(folder)


def test_image_and_label_counts_must_match(tmp_path: Path) -> None:
    arrays = tiny_arrays() | {"train_labels": np.arange(N_TRAIN - 1, dtype=np.uint8)}
    write_idx_folder(tmp_path / "mnist", arrays)
    with pytest.raises(DatasetError, match=f"Training has {N_TRAIN} images but labels of shape"):
        load_mnist(tmp_path / "mnist")


def test_labels_above_nine_are_an_error(tmp_path: Path) -> None:
    arrays = tiny_arrays() | {"test_labels": np.array([1, 2, 10, 3], np.uint8)}
    write_idx_folder(tmp_path / "mnist", arrays)
    with pytest.raises(DatasetError, match="labels must be 0-9, found 10"):
        load_mnist(tmp_path / "mnist")


def test_images_that_are_not_28_by_28_are_an_error(tmp_path: Path) -> None:
    arrays = tiny_arrays() | {"train_images": np.zeros((N_TRAIN, 28, 27), np.uint8)}
    write_idx_folder(tmp_path / "mnist", arrays)
    with pytest.raises(DatasetError, match=r"shape \(6, 28, 27\), expected \(N, 28, 28\)"):
        load_mnist(tmp_path / "mnist")


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        ({"x_test": np.zeros((N_TEST, 32, 32), np.uint8)}, "expected \\(N, 28, 28\\)"),
        ({"x_train": np.zeros((N_TRAIN, 28, 28), np.float32)}, "must be uint8"),
        ({"y_train": np.full(N_TRAIN, 11, np.uint8)}, "0-9"),
        ({"y_test": np.zeros(N_TEST + 2, np.uint8)}, "labels of shape"),
    ],
)
def test_bad_npz_contents_are_errors(tmp_path: Path, replace: dict[str, np.ndarray], message: str) -> None:
    write_npz(tmp_path / "mnist.npz", replace=replace)
    with pytest.raises(DatasetError, match=message):
        read_npz(tmp_path / "mnist.npz")


def test_npz_without_the_keras_keys_is_an_error(tmp_path: Path) -> None:
    np.savez(tmp_path / "mnist.npz", x=np.zeros((2, 28, 28), np.uint8), y=np.zeros(2, np.uint8))
    with pytest.raises(DatasetError, match=re.escape("not a Keras MNIST .npz")):
        load_mnist(tmp_path / "mnist.npz")


def test_file_that_is_not_an_npz_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "mnist.npz").write_bytes(b"this is not a zip file")
    with pytest.raises(DatasetError, match=re.escape("not a Keras MNIST .npz")):
        load_mnist(tmp_path / "mnist.npz")


# --- where the data comes from ---------------------------------------------------------------


def test_explicit_folder_beats_mnist_dir_beats_keras_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_keras_cache: Path
) -> None:
    explicit = write_idx_folder(tmp_path / "explicit", tiny_arrays(seed=1))
    env = write_idx_folder(tmp_path / "env", tiny_arrays(seed=2))
    cached = write_npz(no_keras_cache / ".keras" / "datasets" / "mnist.npz", tiny_arrays(seed=3))
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "env"))
    assert_same(load_mnist(tmp_path / "explicit"), explicit)
    assert_same(load_mnist(), env)
    monkeypatch.delenv("MNIST_DIR")
    from_cache = load_mnist()
    np.testing.assert_array_equal(from_cache.train.images, cached["x_train"])
    assert from_cache.source == str(no_keras_cache / ".keras" / "datasets" / "mnist.npz")


def test_empty_mnist_dir_is_ignored_like_an_unset_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_keras_cache: Path
) -> None:
    cached = write_npz(no_keras_cache / ".keras" / "datasets" / "mnist.npz")
    monkeypatch.setenv("MNIST_DIR", "")
    np.testing.assert_array_equal(load_mnist().test.labels, cached["y_test"])


def test_keras_cache_location_can_be_patched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_keras_cache: Path
) -> None:
    cached = write_npz(tmp_path / "elsewhere" / "mnist.npz", tiny_arrays(seed=5))
    monkeypatch.setattr(data, "KERAS_CACHE", tmp_path / "elsewhere" / "mnist.npz")
    np.testing.assert_array_equal(load_mnist(download=False).train.images, cached["x_train"])


def test_mnist_dir_that_does_not_exist_names_mnist_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="MNIST_DIR"):
        load_mnist()


def test_folder_without_mnist_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("nothing here")
    with pytest.raises(DatasetError, match="No MNIST files in"):
        load_mnist(tmp_path / "empty")


def test_nothing_found_without_download_is_an_error(no_keras_cache: Path) -> None:
    with pytest.raises(DatasetError, match="MNIST_DIR") as caught:
        load_mnist(download=False)
    assert isinstance(caught.value, RecognizerError)


def test_nothing_found_and_keras_download_failing_names_mnist_dir(
    monkeypatch: pytest.MonkeyPatch, no_keras_cache: Path
) -> None:
    import keras

    calls: list[str] = []

    def offline(*args: object, **kwargs: object) -> None:
        calls.append("load_data")
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DatasetError, match="Set MNIST_DIR") as caught:
        load_mnist()
    assert calls == ["load_data"]
    assert isinstance(caught.value.__cause__, OSError)


def test_successful_keras_download_is_read_from_the_cache(
    monkeypatch: pytest.MonkeyPatch, no_keras_cache: Path
) -> None:
    import keras

    arrays = tiny_arrays(seed=7)

    def download(*args: object, **kwargs: object) -> None:
        write_npz(no_keras_cache / ".keras" / "datasets" / "mnist.npz", arrays)

    monkeypatch.setattr(keras.datasets.mnist, "load_data", download)
    assert_same(load_mnist(), arrays)


# --- the real MNIST ------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_mnist_has_the_standard_shapes_and_verified_checksums(mnist_dir: Path) -> None:
    mnist = load_mnist(mnist_dir)
    assert mnist.train.images.shape == (60000, 28, 28)
    assert mnist.test.images.shape == (10000, 28, 28)
    assert mnist.train.labels.shape == (60000,) and mnist.test.labels.shape == (10000,)
    for array in (mnist.train.images, mnist.train.labels, mnist.test.images, mnist.test.labels):
        assert array.dtype == np.uint8
    assert set(np.unique(mnist.train.labels)) == set(range(10))
    assert set(np.unique(mnist.test.labels)) == set(range(10))
    assert mnist.train.images.max() == 255 and mnist.train.images.min() == 0
    sums = mnist_dir / "SHA256SUMS"
    assert sums.is_file(), "the shared MNIST folder ships SHA256SUMS"
    published = {line.split()[1]: line.split()[0] for line in sums.read_text().splitlines() if line.strip()}
    assert mnist.checksums == published
    # Test-set label counts of the standard split.
    assert np.bincount(mnist.test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

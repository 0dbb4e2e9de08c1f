from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
from conftest import HAS_FASHION_SAMPLE, SHARED_CACHE, needs_fashion_sample, needs_mnist_sample

from tfpvae.io import datasets as data
from tfpvae.io.datasets import (
    CACHE_ENV,
    DatasetUnavailableError,
    class_names,
    load_dataset,
    prepare,
)
from tfpvae.io.idx import IdxFormatError, read_idx


def test_digits_is_offline_with_a_fixed_split(digits) -> None:
    (x_train, y_train), (x_test, _) = digits
    assert x_train.shape == (1438, 8, 8) and x_test.shape == (359, 8, 8)
    assert x_train.dtype == np.uint8 and x_train.max() == 255 and x_train.min() == 0
    assert set(np.unique(y_train)) == set(range(10))
    (x_again, _), (x_test_again, _) = load_dataset("digits")
    np.testing.assert_array_equal(x_again, x_train)
    np.testing.assert_array_equal(x_test_again, x_test)


def test_prepare_open_interval_is_the_course_dequantisation() -> None:
    x = np.array([[0, 128, 255]], np.uint8)
    for name in ("beta", "continuous_bernoulli"):
        out = prepare(x, name)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, [[0.5 / 256, 128.5 / 256, 255.5 / 256]])
        assert out.min() > 0 and out.max() < 1


def test_prepare_bernoulli_threshold_and_sampling() -> None:
    x = np.array([[0, 127, 128, 255]], np.uint8)
    np.testing.assert_array_equal(prepare(x, "bernoulli"), [[0, 0, 1, 1]])
    grey = np.full((200, 200), 64, np.uint8)  # p = 64/255
    sampled = prepare(grey, "bernoulli", binarize="sample", seed=1)
    p = 64 / 255
    assert set(np.unique(sampled)) == {0.0, 1.0}
    assert abs(sampled.mean() - p) < 4 * np.sqrt(p * (1 - p) / grey.size)
    np.testing.assert_array_equal(sampled, prepare(grey, "bernoulli", binarize="sample", seed=1))
    with pytest.raises(ValueError, match="binarize must be"):
        prepare(x, "bernoulli", binarize="round")


@pytest.mark.parametrize(
    "bad",
    [
        np.array([[0.1, 0.5]], np.float32),
        np.array([[-1, 3]]),
        np.array([[0, 300]]),
        np.zeros((0, 2), np.uint8),
    ],
)
def test_prepare_rejects_non_pixel_input(bad) -> None:
    with pytest.raises(ValueError, match=r"prepare expects raw integer pixels in 0\.\.255"):
        prepare(bad, "beta")


def test_class_names() -> None:
    assert class_names("fashion_mnist")[9] == "Ankle boot"
    assert len(class_names("digits")) == 10
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")


def test_failed_download_says_how_to_point_at_a_cache(monkeypatch, tmp_path) -> None:
    def offline(cache_dir=None):
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(data.tfk.datasets.fashion_mnist, "load_data", offline)
    with pytest.raises(DatasetUnavailableError, match=f"cache_dir=.*{CACHE_ENV}.*'digits'"):
        load_dataset("fashion_mnist", cache_dir=tmp_path)


def test_cache_dir_defaults_to_the_environment(monkeypatch, tmp_path) -> None:
    seen = {}

    def fake(cache_dir=None):
        seen["cache_dir"] = cache_dir
        return (np.zeros((1, 28, 28), np.uint8), np.zeros(1)), (np.zeros((1, 28, 28)), np.zeros(1))

    monkeypatch.setattr(data.tfk.datasets.mnist, "load_data", fake)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    load_dataset("mnist")
    assert seen["cache_dir"] == str(tmp_path)


@needs_fashion_sample
def test_real_fashion_mnist_sample_loads_offline(monkeypatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(SHARED_CACHE))
    (x_train, y_train), (x_test, y_test) = load_dataset("fashion_mnist")
    assert x_train.shape == (1600, 28, 28) and x_test.shape == (400, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.shape == (1600,)
    assert set(np.unique(y_test)) == set(range(10))


def _snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every path under ``root`` with its size, mtime and content hash."""
    found = {}
    for path in sorted(root.rglob("*")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        stat = path.stat()
        found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns, digest)
    return found


def _write_idx(path: Path, array: np.ndarray) -> None:
    """Writes ``array`` (uint8) in MNIST's gzipped idx format."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.tobytes())


def _fake_fashion_cache(root: Path) -> Path:
    """A tiny cache in Keras's layout, so this check runs without the shared sample."""
    folder = root / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("t10k", 5)):
        _write_idx(folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, np.uint8))
        images = rng.integers(0, 256, (n, 28, 28), np.uint8)
        _write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
    return root


@pytest.mark.parametrize("which", ["fake", "shared"])
def test_loading_never_writes_into_the_cache_the_user_pointed_at(tmp_path, which) -> None:
    if which == "shared" and not HAS_FASHION_SAMPLE:
        pytest.skip(f"Fashion-MNIST sample not present at {SHARED_CACHE}")
    cache = _fake_fashion_cache(tmp_path / "cache") if which == "fake" else SHARED_CACHE
    before = _snapshot(cache)
    (x_train, _), (x_test, _) = load_dataset("fashion_mnist", str(cache))
    assert x_train.shape[1:] == (28, 28) and len(x_test) > 0
    assert _snapshot(cache) == before


def _fake_mnist_cache(root: Path, n_train: int = 6, n_test: int = 3) -> tuple[Path, dict]:
    """A cache with MNIST as IDX files only (the shared sample's layout), and what it holds."""
    folder = root / "datasets" / "mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        arrays[split] = (
            rng.integers(0, 256, (n, 28, 28), np.uint8),
            rng.integers(0, 10, n, np.uint8),
        )
        _write_idx(folder / f"{split}-images-idx3-ubyte.gz", arrays[split][0])
        _write_idx(folder / f"{split}-labels-idx1-ubyte.gz", arrays[split][1])
    return root, arrays


def test_mnist_reads_idx_files_when_there_is_no_npz(tmp_path, monkeypatch) -> None:
    def no_keras(cache_dir=None):
        raise AssertionError("Keras's loader must not be called when only IDX files are cached")

    monkeypatch.setattr(data.tfk.datasets.mnist, "load_data", no_keras)
    cache, arrays = _fake_mnist_cache(tmp_path)
    (x_train, y_train), (x_test, y_test) = load_dataset("mnist", cache)
    np.testing.assert_array_equal(x_train, arrays["train"][0])
    np.testing.assert_array_equal(y_train, arrays["train"][1])
    np.testing.assert_array_equal(x_test, arrays["t10k"][0])
    np.testing.assert_array_equal(y_test, arrays["t10k"][1])
    assert x_train.dtype == np.uint8 and x_train.flags["C_CONTIGUOUS"]


def test_mnist_npz_in_the_cache_goes_to_keras(tmp_path, monkeypatch) -> None:
    cache, _ = _fake_mnist_cache(tmp_path)
    (cache / "datasets" / "mnist.npz").write_bytes(b"")
    seen = {}

    def keras(cache_dir=None):
        seen["cache_dir"] = cache_dir
        return (np.zeros((1, 28, 28), np.uint8), np.zeros(1)), (np.zeros((1, 28, 28)), np.zeros(1))

    monkeypatch.setattr(data.tfk.datasets.mnist, "load_data", keras)
    (x_train, _), _ = load_dataset("mnist", cache)
    assert seen["cache_dir"] == str(cache) and len(x_train) == 1


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda raw: raw[:-5], "holds .* bytes, but its header says"),
        (lambda raw: b"\x00\x01" + raw[2:], "is not an IDX file"),
        (lambda raw: raw[:2] + b"\x42" + raw[3:], "is not an IDX file"),
    ],
)
def test_corrupt_idx_files_say_which_and_why(tmp_path, damage, message) -> None:
    cache, _ = _fake_mnist_cache(tmp_path)
    path = cache / "datasets" / "mnist" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(damage(gzip.decompress(path.read_bytes()))))
    with pytest.raises(IdxFormatError, match=f"t10k-images.*{message}"):
        load_dataset("mnist", cache)


def test_broken_gzip_is_reported(tmp_path) -> None:
    path = tmp_path / "x-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]))[:-6])
    with pytest.raises(IdxFormatError, match="corrupt gzip"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 1, 2, 3, 4]))  # plain, int16, big-endian
    np.testing.assert_array_equal(read_idx(path), [258, 772])


@needs_mnist_sample
def test_real_mnist_sample_loads_offline_from_idx(monkeypatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(SHARED_CACHE))
    (x_train, y_train), (x_test, y_test) = load_dataset("mnist")
    assert x_train.shape == (7000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.shape == (7000,) and y_test.shape == (1000,)
    assert set(np.unique(y_train)) == set(range(10)) and set(np.unique(y_test)) == set(range(10))
    assert x_train.max() == 255 and x_train.min() == 0

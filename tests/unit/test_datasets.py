"""xvae.datasets: digits, MNIST from the shared IDX files, IDX validation, binarize."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from xvae import DataError, datasets

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
T10K = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")



def idx_gz(path: Path, magic: int, dims: tuple[int, ...], payload: bytes | None = None) -> Path:
    """Write a gzip IDX file; `payload` defaults to zeros of the right length."""
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    body = bytes(int(np.prod(dims))) if payload is None else payload
    path.write_bytes(gzip.compress(header + body))
    return path


# --- digits --------------------------------------------------------------------------------


@pytest.mark.parametrize(("split", "n"), [("train", 1500), ("test", 297), ("all", 1797)])
def test_digits_splits(split: str, n: int) -> None:
    d = datasets.load("digits", split=split)
    assert (d.x.shape, d.y.shape, len(d)) == ((n, 64), (n,), n)
    assert d.x.dtype == np.float32 and d.y.dtype == np.int64
    assert (d.name, d.split, d.image_shape) == ("digits", split, (8, 8))
    assert d.x.min() == 0.0 and d.x.max() == 1.0
    assert set(np.unique(d.y)) == set(range(10))


def test_digits_raw_and_split_order() -> None:
    raw = datasets.load("digits", split="all", scale=False)
    assert raw.x.max() == 16.0 and raw.x.dtype == np.float32
    train, test = datasets.load("digits", "train"), datasets.load("digits", "test")
    np.testing.assert_array_equal(np.concatenate([train.x, test.x]) * 16, raw.x)
    np.testing.assert_array_equal(np.concatenate([train.y, test.y]), raw.y)


def test_subset() -> None:
    d = datasets.load("digits", "test")
    s = d.subset(slice(0, 10))
    assert (s.x.shape, s.y.shape, s.name, s.image_shape) == ((10, 64), (10,), "digits", (8, 8))
    np.testing.assert_array_equal(d.subset(np.array([3, 1])).y, d.y[[3, 1]])
    with pytest.raises(DataError, match="slice or an index array"):
        d.subset(0)


def test_unknown_name_and_split() -> None:
    with pytest.raises(DataError, match=r"unknown dataset 'cifar'.*digits, mnist, fashion_mnist"):
        datasets.load("cifar")
    with pytest.raises(DataError, match=r"unknown split 'valid'.*train, test, all"):
        datasets.load("digits", split="valid")
    with pytest.raises(DataError, match=r"unknown split 'all' for mnist.*train, test"):
        datasets.load("mnist", split="all")


# --- data_dir ------------------------------------------------------------------------------


def test_data_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XVAE_DATA_DIR", raising=False)
    assert datasets.data_dir() == Path.home() / ".cache" / "xvae"
    monkeypatch.setenv("XVAE_DATA_DIR", str(tmp_path / "env"))
    assert datasets.data_dir() == tmp_path / "env"
    assert datasets.data_dir(tmp_path / "arg") == tmp_path / "arg"


# --- MNIST from the shared files -----------------------------------------------------------


def check_mnist_test(d: datasets.Dataset) -> None:
    assert d.x.shape == (10000, 784) and d.x.dtype == np.float32
    assert d.y.shape == (10000,) and d.y.dtype == np.int64
    assert (d.name, d.split, d.image_shape) == ("mnist", "test", (28, 28))
    assert d.x.min() == 0.0 and d.x.max() == 1.0
    assert np.bincount(d.y, minlength=10).tolist() == MNIST_TEST_COUNTS


def test_mnist_via_data_dir(mnist_dir: Path) -> None:
    check_mnist_test(datasets.load("mnist", split="test", data_dir=mnist_dir, download=False))


def test_mnist_via_env(mnist_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XVAE_DATA_DIR", str(mnist_dir))
    check_mnist_test(datasets.load("mnist", split="test", download=False))


def test_mnist_in_named_subfolder(mnist_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "mnist").mkdir()
    for f in T10K:
        (tmp_path / "mnist" / f).symlink_to(mnist_dir / f)
    check_mnist_test(datasets.load("mnist", split="test", data_dir=tmp_path, download=False))


def test_mnist_raw(mnist_dir: Path) -> None:
    d = datasets.load("mnist", split="test", data_dir=mnist_dir, scale=False, download=False)
    assert d.x.max() == 255.0 and d.x.dtype == np.float32
    scaled = datasets.load("mnist", split="test", data_dir=mnist_dir, download=False)
    np.testing.assert_array_equal(scaled.x, d.x / np.float32(255))


def test_mnist_train_missing(mnist_dir: Path) -> None:
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz not found") as info:
        datasets.load("mnist", split="train", data_dir=mnist_dir, download=False)
    assert str(mnist_dir) in str(info.value) and "XVAE_DATA_DIR" in str(info.value)


def test_wrong_dataset_files_fail_checksum(mnist_dir: Path) -> None:
    with pytest.raises(DataError, match="checksum mismatch.*expected.*got"):
        datasets.load("fashion_mnist", split="test", data_dir=mnist_dir, download=False)


# --- corrupted files -----------------------------------------------------------------------


def test_not_gzip(tmp_path: Path) -> None:
    (tmp_path / T10K[0]).write_bytes(b"<html>404</html>")
    with pytest.raises(DataError, match="not a readable gzip file"):
        datasets.load("mnist", "test", data_dir=tmp_path, download=False)


def test_truncated_gzip(mnist_dir: Path, tmp_path: Path) -> None:
    blob = (mnist_dir / T10K[0]).read_bytes()
    (tmp_path / T10K[0]).write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="not a readable gzip file"):
        datasets.load("mnist", "test", data_dir=tmp_path, download=False)


def test_bad_magic(tmp_path: Path) -> None:
    idx_gz(tmp_path / T10K[0], 2049, (10, 28, 28))
    with pytest.raises(DataError, match=r"t10k-images.*bad IDX magic number \(expected 2051, got 2049\)"):
        datasets.load("mnist", "test", data_dir=tmp_path, download=False)


@pytest.mark.parametrize("delta", [-1, 1])
def test_payload_length_mismatch(tmp_path: Path, delta: int) -> None:
    idx_gz(tmp_path / T10K[0], 2051, (10, 28, 28), bytes(10 * 784 + delta))
    with pytest.raises(DataError, match=r"payload length .* does not match .*\(10, 28, 28\)"):
        datasets.load("mnist", "test", data_dir=tmp_path, download=False)


def test_truncated_header(tmp_path: Path) -> None:
    (tmp_path / T10K[0]).write_bytes(gzip.compress((2051).to_bytes(4, "big") + b"\0\0\0\1"))
    with pytest.raises(DataError, match="truncated IDX header"):
        datasets.load("mnist", "test", data_dir=tmp_path, download=False)


def test_valid_idx_with_wrong_content_fails_checksum(tmp_path: Path) -> None:
    idx_gz(tmp_path / T10K[0], 2051, (10, 28, 28))
    with pytest.raises(DataError, match=r"checksum mismatch.*delete the file") as info:
        datasets.load("mnist", "test", data_dir=tmp_path, download=False)
    assert info.value.path == str(tmp_path / T10K[0])


def test_image_label_count_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images = idx_gz(tmp_path / T10K[0], 2051, (3, 28, 28))
    labels = idx_gz(tmp_path / T10K[1], 2049, (2,))
    md5 = {p.name: frozenset({hashlib.md5(p.read_bytes()).hexdigest()}) for p in (images, labels)}
    monkeypatch.setitem(datasets._SOURCES, "mnist", datasets._SOURCES["mnist"]._replace(md5=md5))
    with pytest.raises(DataError, match="3 images but 2 labels"):
        datasets.load("mnist", "test", data_dir=tmp_path, download=False)


# --- binarize ------------------------------------------------------------------------------


def test_binarize_static() -> None:
    x = np.array([[0.0, 0.5, 0.5001, 1.0], [0.2, 0.8, 0.49, 0.51]], dtype=np.float32)
    out = datasets.binarize(x, "static")
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_array_equal(out, [[0, 0, 1, 1], [0, 1, 0, 1]])


def test_binarize_dynamic_draw_contract() -> None:
    x = np.random.default_rng(0).random((50, 30), dtype=np.float32)
    out = datasets.binarize(x, "dynamic", np.random.default_rng(7))
    rng = np.random.default_rng(7)
    expected = (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(datasets.binarize(x, "dynamic", np.random.default_rng(7)), out)
    assert not np.array_equal(datasets.binarize(x, "dynamic", np.random.default_rng(8)), out)
    # the generator advanced by exactly one float32 draw of x.shape
    gen = np.random.default_rng(7)
    datasets.binarize(x, "dynamic", gen)
    assert gen.random() == rng.random()


def test_binarize_dynamic_extremes() -> None:
    x = np.array([0.0, 1.0] * 500, dtype=np.float32)
    np.testing.assert_array_equal(datasets.binarize(x, "dynamic", np.random.default_rng(1)), x)


def test_binarize_errors() -> None:
    x = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(DataError, match="needs rng"):
        datasets.binarize(x, "dynamic")
    with pytest.raises(DataError, match=r"unknown binarize mode 'soft'.*static.*dynamic"):
        datasets.binarize(x, "soft")

"""Shared test fixtures: where the real MNIST test set lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

T10K = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def mnist_folder() -> Path:
    """$XVAE_TEST_MNIST_DIR, else the shared folder beside the checkout (../shared/data/mnist)."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    return Path(os.environ.get("XVAE_TEST_MNIST_DIR") or default)


def has_mnist() -> bool:
    return all((mnist_folder() / f).is_file() for f in T10K)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST test files; skipped with the reason when they are not on this machine."""
    if not has_mnist():
        pytest.skip(f"MNIST test files not found in {mnist_folder()} (set XVAE_TEST_MNIST_DIR)")
    return mnist_folder()

"""The seed-000 experiment on real MNIST: every backend learns, and they agree to one example.

Raw 0..255 pixels saturate float32 sigmoids; a BCE on probabilities dies there (the hand-
written JAX loop stays at the majority class), while xvae's BCE from logits keeps learning.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _example():
    spec = importlib.util.spec_from_file_location("jax_vs_keras_bce", ROOT / "examples" / "jax_vs_keras_bce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLE = _example()


@pytest.fixture(scope="module")
def setup(mnist_dir):
    x, y = EXAMPLE.load_data(str(mnist_dir))
    w = EXAMPLE.initial_weights()
    return x, y, w, EXAMPLE.run_xvae("numpy", x, y, w)


def test_backend_matches_float64_reference_within_one_example(backend, setup):
    x, y, w, reference = setup
    got = EXAMPLE.run_xvae(backend, x, y, w)
    assert abs(got["correct"] - reference["correct"]) <= 1, (got, reference)
    majority = max(y.mean(), 1 - y.mean())
    assert got["accuracy"] > majority + 0.2, f"{backend} fell into the saturated-loss trap: {got}"
    assert np.isfinite(got["final_loss"])


def test_naive_bce_on_probabilities_falls_into_the_trap(setup):
    pytest.importorskip("jax", reason="the naive baseline is hand-written in JAX")
    x, y, w, reference = setup
    naive = EXAMPLE._jax_naive(x, y, w, None)
    clipped = EXAMPLE._jax_naive(x, y, w, 1e-7)
    assert naive["accuracy"] < reference["accuracy"] - 0.2
    assert clipped["accuracy"] < reference["accuracy"] - 0.2

"""The float64 references against hand-computed values and the naive formulas."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xvae import losses


def test_bce_hand_values():
    assert losses.binary_cross_entropy(0.0, 1.0) == pytest.approx(math.log(2))
    assert losses.binary_cross_entropy(2.0, 1.0) == pytest.approx(math.log(1 + math.exp(-2)))
    assert losses.binary_cross_entropy(2.0, 0.0) == pytest.approx(2 + math.log(1 + math.exp(-2)))
    assert losses.binary_cross_entropy(-3.0, 0.25) == pytest.approx(
        -(0.25 * math.log(1 / (1 + math.exp(3))) + 0.75 * math.log(1 - 1 / (1 + math.exp(3)))))
    assert losses.binary_cross_entropy(1e9, 0.0) == 1e9
    assert losses.binary_cross_entropy(-1e9, 1.0) == 1e9
    assert losses.binary_cross_entropy(1e9, 1.0) == 0.0


logits = st.floats(-1e4, 1e4, allow_nan=False)
labels = st.sampled_from([0.0, 1.0]) | st.floats(0, 1)


@settings(max_examples=300, deadline=None)
@given(logits, labels)
def test_bce_finite_and_equal_to_naive_where_naive_is_finite(x, y):
    got = float(losses.binary_cross_entropy(x, y))
    assert math.isfinite(got) and got >= -1e-12
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = 1.0 / (1.0 + np.exp(-np.float64(x)))
        naive = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    if np.isfinite(naive) and 1e-12 < p < 1 - 1e-12:
        assert got == pytest.approx(float(naive), rel=1e-6, abs=1e-9)


def test_kl_hand_values():
    assert losses.kl_divergence([[0.0, 0.0]], [[0.0, 0.0]]) == pytest.approx([0.0])
    # KL(N(1, e^0) || N(0,1)) = 0.5 * m^2 = 0.5 per latent
    assert losses.kl_divergence([[1.0, 1.0]], [[0.0, 0.0]]) == pytest.approx([1.0])
    v = math.log(4.0)  # variance 4: 0.5 * (4 - 1 - ln 4)
    assert losses.kl_divergence([[0.0]], [[v]]) == pytest.approx([0.5 * (4 - 1 - v)])


@settings(max_examples=100, deadline=None)
@given(st.floats(-50, 50), st.floats(-30, 30))
def test_kl_nonnegative(m, v):
    assert losses.kl_divergence([[m]], [[v]])[0] >= -1e-9


def test_elbo_is_reconstruction_plus_beta_kl():
    rng = np.random.default_rng(0)
    logits, x = rng.normal(size=(3, 5)), (rng.random((3, 5)) > 0.5) * 1.0
    mean, logvar = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    loss, recon, kl = losses.negative_elbo(logits, x, mean, logvar, beta=0.3)
    np.testing.assert_allclose(recon, losses.binary_cross_entropy(logits, x).sum(axis=1))
    np.testing.assert_allclose(loss, recon + 0.3 * kl)
    np.testing.assert_allclose(losses.elbo(logits, x, mean, logvar, 0.3), -loss)


def test_categorical_cross_entropy():
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]])
    got = losses.categorical_cross_entropy(logits, [2, 1])
    assert got[0] == pytest.approx(-math.log(math.exp(3) / (math.exp(1) + math.exp(2) + math.exp(3))))
    assert got[1] == pytest.approx(1000.0)  # finite where a naive softmax overflows


def test_masked_mean_ignores_padding():
    assert losses.masked_mean([1.0, 2.0, 99.0], [1, 1, 0]) == pytest.approx(1.5)


def test_loss_for_spec():
    import xvae

    assert isinstance(losses.loss_for(xvae.VAESpec(input_dim=3, latents=1)), losses.BernoulliELBO)
    assert isinstance(losses.loss_for(xvae.ClassifierSpec(3)), losses.BinaryCrossEntropy)
    assert isinstance(losses.loss_for(xvae.ClassifierSpec(3, outputs=4)), losses.CategoricalCrossEntropy)

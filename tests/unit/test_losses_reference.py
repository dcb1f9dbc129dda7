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


# -- likelihoods of issue 11: float64 references at extreme values --------------------------

CB_LOGITS = [0.0, 1e-8, -1e-4, 0.05, -0.0999, 0.1, 0.1001, -0.5, 3.0, -30.0, 88.0, 200.0, -1e4]


@pytest.mark.parametrize("eta", CB_LOGITS)
def test_continuous_bernoulli_log_norm_matches_high_precision(eta):
    mp = pytest.importorskip("mpmath", reason="mpmath gives the 50-digit reference values")
    mp.mp.dps = 50
    e = mp.mpf(eta)
    want = mp.log(2) if eta == 0 else mp.log(e / mp.tanh(e / 2))
    got = losses.continuous_bernoulli_log_norm(eta)
    assert np.isfinite(got) and abs(got - float(want)) <= 1e-14 * max(1.0, abs(float(want)))
    mean = 0.5 if eta == 0 else 0.5 + 1 / (2 * mp.tanh(e / 2)) - 1 / e
    assert abs(losses.continuous_bernoulli_mean(eta) - float(mean)) <= 1e-14
    dwant = 0 if eta == 0 else 1 / e - 1 / mp.sinh(e)
    # the derivative's series is cut after eta^7: ~1e-11 relative at |eta| = 0.1
    assert abs(losses._cb_log_norm_grad(eta) - float(dwant)) <= 1e-11 * max(1e-3, abs(float(dwant)))


def test_continuous_bernoulli_density_integrates_to_one():
    x = (np.arange(200000) + 0.5) / 200000  # midpoint rule on [0, 1]
    for eta in (-20.0, -1.0, 0.0, 0.03, 2.0, 40.0):
        density = np.exp(-losses.continuous_bernoulli_nll(eta, x))
        assert density.mean() == pytest.approx(1.0, rel=1e-6), eta
        assert (density * x).mean() == pytest.approx(losses.continuous_bernoulli_mean(eta), rel=1e-6), eta


def test_gaussian_nll_is_the_normal_log_density_at_extremes():
    from scipy.stats import norm

    for mu, x, log_sigma in [(0.0, 0.0, 0.0), (1e4, -1e4, 0.0), (0.3, 0.31, -20.0), (5.0, 0.0, 30.0)]:
        want = -norm.logpdf(x, loc=mu, scale=np.exp(log_sigma))
        assert losses.gaussian_nll(mu, x, log_sigma) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "continuous_bernoulli"])
def test_decoder_mean_and_reconstruction_dispatch(likelihood):
    out = np.array([[-50.0, -1e-6, 0.0, 3.0]])
    x = np.array([[0.0, 0.5, 1.0, 0.2]])
    mean = losses.decoder_mean(likelihood, out)
    want = {"bernoulli": 1 / (1 + np.exp(-out)), "gaussian": out,
            "continuous_bernoulli": losses.continuous_bernoulli_mean(out)}[likelihood]
    np.testing.assert_allclose(mean, want, rtol=1e-12, atol=1e-16)  # sigmoid(-50) ~ 2e-22 reads as 0
    nll = {"bernoulli": losses.binary_cross_entropy(out, x), "gaussian": losses.gaussian_nll(out, x),
           "continuous_bernoulli": losses.continuous_bernoulli_nll(out, x)}[likelihood]
    np.testing.assert_allclose(losses.reconstruction_nll(likelihood, out, x), nll.sum(-1), rtol=1e-12)


def test_backend_series_below_the_cut_matches_the_reference():
    """The float32 backends use CB_SERIES below |eta| = CB_TAYLOR_BELOW: its truncation error
    (evaluated here in float64) is far below float32's 6e-8, value and derivative."""
    eta = np.linspace(-losses.CB_TAYLOR_BELOW, losses.CB_TAYLOR_BELOW, 2001)
    u2 = eta * eta / 4
    series = np.log(2.0) + sum(c * u2 ** (k + 1) for k, c in enumerate(losses.CB_SERIES))
    dseries = sum(c * (k + 1) * u2 ** k * eta / 2 for k, c in enumerate(losses.CB_SERIES))
    assert np.max(np.abs(series - losses.continuous_bernoulli_log_norm(eta))) < 5e-10
    assert np.max(np.abs(dseries - losses._cb_log_norm_grad(eta))) < 5e-9

"""IWAE_k log-likelihood (`VAE.log_likelihood`, `xvae.importance`) on the float64 reference.

The properties the issue names: the figure is independent of batching; IWAE_1 is the
one-sample Monte Carlo ELBO with the same noise; its mean over noise is `evaluate`'s
analytic-KL ELBO; IWAE_k grows with k; on a linear Gaussian VAE, whose log p(x) is known in
closed form, it converges to the truth (and equals it with the exact posterior).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import xvae
from xvae import importance


def _binary_data(n: int = 24, d: int = 16, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, d)) > 0.5).astype(np.float32)


def _vae(likelihood: str = "bernoulli", seed: int = 3, d: int = 16, **dec) -> xvae.VAE:
    spec = xvae.VAESpec(encoder=xvae.EncoderSpec(input_dim=d, hidden=(8,), latents=3),
                        decoder=xvae.DecoderSpec(latents=3, hidden=(8,), output_dim=d,
                                                 likelihood=likelihood, **dec))
    return xvae.VAE(spec, backend="numpy", seed=seed)


def test_batch_size_and_chunking_do_not_change_the_figure() -> None:
    vae, x = _vae(), _binary_data()
    ref = vae.log_likelihood(x, k=37, seed=5, batch_size=10_000)  # one call, every sample
    for bs in (1, 7, 37, 50, 100):  # chunks of k, examples per call, padding of both
        # float64 throughout; only BLAS's summation order can differ with the shapes
        np.testing.assert_allclose(vae.log_likelihood(x, k=37, seed=5, batch_size=bs), ref, rtol=1e-12)
    # a subset keeps each example's noise (keyed by row index, so only a prefix is comparable)
    np.testing.assert_allclose(vae.log_likelihood(x[:5], k=37, seed=5), ref[:5], rtol=1e-12)
    assert not np.allclose(vae.log_likelihood(x, k=37, seed=6), ref)  # the seed matters


def test_chunks_split_k_evenly_and_bound_the_pairs_per_call() -> None:
    assert importance.chunks(5000, 1024) == (1000, 1)
    assert importance.chunks(1000, 1024) == (1000, 1)
    assert importance.chunks(10, 1024) == (10, 102)
    for k in (1, 3, 999, 1000, 5000):
        chunk, rows = importance.chunks(k, 256)
        assert chunk * rows <= 256 and chunk * -(-k // chunk) - k < -(-k // 256)


def _log_bernoulli(logits: np.ndarray, x: np.ndarray) -> np.ndarray:
    # written independently of xvae.losses: log sigmoid(l) = -logaddexp(0, -l)
    return np.sum(-x * np.logaddexp(0.0, -logits) - (1 - x) * np.logaddexp(0.0, logits), axis=-1)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_iwae_1_is_the_one_sample_monte_carlo_elbo_with_the_same_noise(likelihood: str) -> None:
    vae = _vae(likelihood, sigma=0.7) if likelihood == "gaussian" else _vae()
    x = _binary_data()
    got = vae.log_likelihood(x, k=1, seed=11)
    mean, logvar = (a.astype(np.float64) for a in vae.encode(x))
    eps = importance.example_noise(11, np.arange(len(x)), 0, 1, 3)[:, 0].astype(np.float64)
    std = np.exp(0.5 * logvar)
    z = mean + std * eps
    out = vae.decode(z.astype(np.float32), logits=True).astype(np.float64)
    if likelihood == "gaussian":
        log_px = np.sum(stats.norm.logpdf(x, loc=out, scale=0.7), axis=-1)
    else:
        log_px = _log_bernoulli(out, x)
    log_pz = np.sum(stats.norm.logpdf(z), axis=-1)
    log_qz = np.sum(stats.norm.logpdf(z, loc=mean, scale=std), axis=-1)
    # decode's float32 round trip of z and the logits: 1e-6 relative is float32's share
    np.testing.assert_allclose(got, log_px + log_pz - log_qz, rtol=1e-6)


def test_iwae_1_averaged_over_noise_is_evaluates_analytic_kl_elbo() -> None:
    vae, x = _vae(), _binary_data(n=8)
    draws = np.stack([vae.log_likelihood(x, k=1, seed=s) for s in range(400)])  # (seeds, n)
    per_draw = draws.mean(axis=1)
    standard_error = per_draw.std(ddof=1) / np.sqrt(len(per_draw))
    analytic = -vae.evaluate(x, seed=0, n_samples=400)["loss"]  # MC reconstruction + analytic KL
    # two Monte Carlo estimates of the same expectation: 5 standard errors (of the noisier one)
    assert abs(per_draw.mean() - analytic) < 5 * standard_error, (per_draw.mean(), analytic, standard_error)


def test_iwae_k_grows_with_k_in_expectation() -> None:
    vae, x = _vae(), _binary_data(n=16)
    means = {k: np.mean([vae.log_likelihood(x, k=k, seed=s).mean() for s in range(20)]) for k in (1, 10, 100)}
    assert means[1] < means[10] < means[100], means
    # the gain is not noise: every seed's IWAE_100 beats the seed-mean of IWAE_1 here
    assert min(vae.log_likelihood(x, k=100, seed=s).mean() for s in range(5)) > means[1]


def _linear_gaussian(exact_posterior: bool) -> tuple[xvae.VAE, np.ndarray, np.ndarray]:
    """x = W z + b + sigma e, z ~ N(0, I2), W with orthogonal columns: the posterior is then a
    diagonal Gaussian the encoder can represent exactly. Returns (vae, x, true log p(x))."""
    d, latents, sigma = 6, 2, 0.5
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((d, latents)))
    w = q * np.array([1.5, 0.8])  # columns orthogonal: W^T W = diag(2.25, 0.64)
    b = rng.standard_normal(d) * 0.3
    x = (rng.standard_normal((40, latents)) @ w.T + b + sigma * rng.standard_normal((40, d))).astype(np.float32)
    truth = stats.multivariate_normal(mean=b, cov=w @ w.T + sigma**2 * np.eye(d)).logpdf(x.astype(np.float64))
    precision = 1.0 + np.sum(w * w, axis=0) / sigma**2  # diagonal of I + W^T W / sigma^2
    mean_kernel = (w / sigma**2) / precision  # posterior mean = (x - b) @ mean_kernel
    if not exact_posterior:  # a plausible but wrong proposal
        mean_kernel = mean_kernel * 0.8
    spec = xvae.VAESpec(encoder=xvae.EncoderSpec(input_dim=d, hidden=(), latents=latents),
                        decoder=xvae.DecoderSpec(latents=latents, hidden=(), output_dim=d,
                                                 likelihood="gaussian", sigma=sigma))
    vae = xvae.VAE(spec, backend="numpy")
    logvar_bias = -np.log(precision) + (0.0 if exact_posterior else 0.5)
    vae.set_weights({k: np.asarray(v, np.float32) for k, v in {
        "encoder.mean.kernel": mean_kernel, "encoder.mean.bias": -b @ mean_kernel,
        "encoder.logvar.kernel": np.zeros((d, latents)), "encoder.logvar.bias": logvar_bias,
        "decoder.output.kernel": w.T, "decoder.output.bias": b}.items()})
    return vae, x, truth


def test_linear_gaussian_vae_with_the_exact_posterior_gives_the_true_log_likelihood() -> None:
    vae, x, truth = _linear_gaussian(exact_posterior=True)
    # the exact posterior makes every importance weight p(x): one sample suffices; the
    # weights went through float32 (1e-7 relative) and truth is ~10 nats
    np.testing.assert_allclose(vae.log_likelihood(x, k=1, seed=0), truth, rtol=1e-5, atol=1e-5)


def test_linear_gaussian_vae_estimate_converges_to_the_true_log_likelihood() -> None:
    vae, x, truth = _linear_gaussian(exact_posterior=False)
    gaps = {k: float(np.mean([truth - vae.log_likelihood(x, k=k, seed=s) for s in range(8)]))
            for k in (1, 3, 1000)}  # expectations over 8 seeds x 40 examples
    assert gaps[1] > gaps[3] > gaps[1000], gaps  # a lower bound that tightens
    assert gaps[1] > 0.2 and abs(gaps[1000]) < 0.01, gaps  # and reaches log p(x)


@pytest.mark.parametrize("k", [0, -3, 1.5, 10.0, True, "100", None])
def test_bad_k_is_a_config_error_naming_k(k: object) -> None:
    vae = _vae()
    with pytest.raises(xvae.ConfigError, match=r"\bk\b"):
        vae.log_likelihood(_binary_data(n=2), k=k)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "name"), [({"seed": None}, "seed"), ({"seed": -1}, "seed"),
                                              ({"batch_size": 0}, "batch_size")])
def test_bad_seed_or_batch_size_names_the_argument(kwargs: dict, name: str) -> None:
    with pytest.raises(xvae.ConfigError, match=name):
        _vae().log_likelihood(_binary_data(n=2), k=2, **kwargs)


def test_bad_x_is_a_data_error() -> None:
    with pytest.raises(xvae.DataError):
        _vae().log_likelihood(np.zeros((2, 5), np.float32), k=2)


def test_backend_calls_never_exceed_batch_size_pairs_whatever_k() -> None:
    """Peak memory is independent of k: every log_weights call holds <= batch_size
    (example, sample) pairs, and k = 5,000 is split into equal chunks."""
    vae, x = _vae(), _binary_data(n=3)
    seen: list[tuple[int, ...]] = []
    run = vae._program.run

    def spy(fn, **inputs):
        seen.append(inputs["noise"].shape)
        return run(fn, **inputs)

    vae._program.run = spy
    for k in (10, 5000):
        seen.clear()
        vae.log_likelihood(x, k=k, batch_size=256)
        assert max(b * c for b, c, _ in seen) <= 256
        assert sum(c for b, c, _ in seen) * seen[0][0] >= k * len(x)
    assert {s[1] for s in seen} == {250}  # 5,000 = 20 chunks of 250, not 19 of 256 and a padded one

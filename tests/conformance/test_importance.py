"""IWAE_k log-likelihood in every backend against the float64 reference (the "log_weights"
seam function, through `VAE.log_likelihood`), for every likelihood and a conv VAE."""

from __future__ import annotations

import numpy as np
import pytest

import xvae

from cases import LOSS_RTOL
from test_layers import CASES, _cancelled, _weights

SPECS = {
    "mlp-z20": xvae.VAESpec(input_dim=32, hidden=(64,), latents=20),
    **{name: CASES[name] for name in ("bernoulli-conv", "gaussian-fixed", "gaussian-per-output",
                                      "continuous_bernoulli", "dropout-vae")},
}


def _data(spec: xvae.VAESpec, n: int = 11) -> np.ndarray:
    rng = np.random.default_rng(7)
    x = rng.random((n, spec.input_dim), dtype=np.float32)
    return (x < 0.4).astype(np.float32) if spec.decoder.likelihood == "bernoulli" else x


def _model(backend: str, spec: xvae.VAESpec) -> xvae.VAE:
    vae = xvae.VAE(spec, backend=backend)
    vae.set_weights(_weights(spec))
    return vae


@pytest.mark.parametrize("case", SPECS)
def test_log_likelihood_matches_the_float64_reference(backend: str, case: str) -> None:
    spec = SPECS[case]
    x = _data(spec)
    want = _model("numpy", spec).log_likelihood(x, k=40, seed=3, batch_size=64)
    got_model = _model(backend, spec)
    got = got_model.log_likelihood(x, k=40, seed=3, batch_size=64)
    assert got.shape == want.shape == (len(x),) and got.dtype == np.float64
    # each log-weight is an ELBO-sized float32 sum (LOSS_RTOL, DESIGN §6); the log-sum-exp
    # over samples is float64 on the host and adds nothing
    np.testing.assert_allclose(got, want, rtol=LOSS_RTOL, atol=_cancelled(spec))
    # another chunking: the same draws, float32 rounding of other batch shapes only
    other = got_model.log_likelihood(x, k=40, seed=3, batch_size=7)
    np.testing.assert_allclose(other, got, rtol=LOSS_RTOL, atol=_cancelled(spec))


def test_log_weights_seam_function_shapes(backend: str) -> None:
    spec = SPECS["mlp-z20"]
    from xvae.backend import CompileOptions
    from xvae.losses import loss_for

    program = xvae.backends.get(backend).compile(spec, loss_for(spec), None, CompileOptions())
    program.set_state(_weights(spec))
    noise = np.random.default_rng(0).standard_normal((3, 5, 20), dtype=np.float32)
    out = program.run("log_weights", x=_data(spec, 3), noise=noise)
    assert set(out) == {"log_weights"} and out["log_weights"].shape == (3, 5)
    assert out["log_weights"].dtype == np.float32 and np.isfinite(out["log_weights"]).all()

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


# -- the IWAE training objective (fit(loss="iwae", k=...)) ------------------------------------
from xvae.backend import CompileOptions  # noqa: E402
from xvae.losses import IWAEBound  # noqa: E402

from cases import GRAD_RTOL, TRAJ_RTOL, rel_l2  # noqa: E402

OBJECTIVE_CASES = {"mlp-z20-k5": ("mlp-z20", 5), "mlp-z20-k1": ("mlp-z20", 1), "conv-k3": ("bernoulli-conv", 3),
                   "gaussian-per-output-k4": ("gaussian-per-output", 4),
                   "continuous_bernoulli-k4": ("continuous_bernoulli", 4),
                   # dropout: each example's mask shared by its k samples (encoder and decoder)
                   "dropout-vae-k3": ("dropout-vae", 3)}


def _iwae_program(backend: str, spec: xvae.VAESpec, k: int, optimizer=None):
    program = xvae.backends.get(backend).compile(spec, IWAEBound(spec.decoder.likelihood, k), optimizer,
                                                 CompileOptions())
    program.set_state(_weights(spec))
    return program


def _iwae_batch(spec: xvae.VAESpec, k: int, rng: np.random.Generator, size: int = 12, pad: int = 3) -> dict:
    mask = np.ones(size, np.float32)
    mask[size - pad:] = 0.0
    from xvae.layers.towers import draw_dropout
    from xvae.naming import towers

    batch = {"x": _data(spec, size), "noise": rng.standard_normal((size, k, spec.latents), dtype=np.float32),
             "mask": mask, "beta": np.float32(0.8)}
    masks = draw_dropout(lambda units: rng.random((size, units), dtype=np.float32), towers(spec))  # None without Dropout
    return batch if masks is None else {**batch, "dropout": masks}


@pytest.mark.parametrize("case", OBJECTIVE_CASES)
def test_iwae_loss_and_gradients_match_the_reference(backend: str, case: str) -> None:
    name, k = OBJECTIVE_CASES[case]
    spec = SPECS[name]
    batch = _iwae_batch(spec, k, np.random.default_rng(4))
    want_m, want_g = _iwae_program("numpy", spec, k).loss_and_grads(batch)
    got_m, got_g = _iwae_program(backend, spec, k).loss_and_grads(batch)
    for metric, value in want_m.items():  # ELBO-sized float32 sums (DESIGN §6)
        assert got_m[metric] == pytest.approx(value, rel=LOSS_RTOL, abs=_cancelled(spec)), (case, metric)
    for weight, g in want_g.items():  # backprop through <= 3 float32 layers, weighted by softmax(log w)
        assert rel_l2(got_g[weight], g) <= GRAD_RTOL, (case, weight, rel_l2(got_g[weight], g))


@pytest.mark.parametrize("case", ["mlp-z20-k5", "conv-k3", "dropout-vae-k3"])
def test_iwae_fit_trajectory_matches_the_reference(backend: str, case: str) -> None:
    """fit(loss="iwae") end to end: core-drawn (n, k, latents) noise, 2 epochs x 3 steps, fused
    and single steps; per-epoch losses within TRAJ_RTOL of the reference."""
    name, k = OBJECTIVE_CASES[case]
    spec = SPECS[name]
    x = _data(spec, 30)
    runs = {}
    for which, steps_per_call in (("numpy", 1), (backend, 1), (backend, 3)):
        vae = _model(which, spec)
        hist = vae.fit(x, epochs=2, batch_size=10, seed=1, loss="iwae", k=k, progress=False,
                       optimizer=xvae.optim.Adam(3e-3), steps_per_call=steps_per_call, validation_data=x[:7])
        runs[(which, steps_per_call)] = np.array(hist.history["loss"] + hist.history["val_loss"])
    want = runs[("numpy", 1)]
    for key in ((backend, 1), (backend, 3)):
        np.testing.assert_allclose(runs[key], want, rtol=TRAJ_RTOL, err_msg=str(key))

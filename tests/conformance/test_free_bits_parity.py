"""Free bits (the ELBO specs' `free_bits`) in every backend against the float64 reference."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import xvae
from xvae.backend import CompileOptions
from xvae.losses import kl_per_latent, loss_for

from cases import GRAD_RTOL, LOSS_RTOL, rel_l2
from test_importance_parity import SPECS, _data
from test_layers import _cancelled, _weights


@pytest.mark.parametrize("case", ["mlp-z20", "gaussian-per-output", "continuous_bernoulli"])
def test_free_bits_loss_and_gradients_match_the_reference(backend: str, case: str) -> None:
    spec = SPECS[case]
    w = _weights(spec)
    rng = np.random.default_rng(2)
    batch = {"x": _data(spec, 10), "noise": rng.standard_normal((10, spec.latents), dtype=np.float32),
             "mask": np.r_[np.ones(8), np.zeros(2)].astype(np.float32), "beta": np.float32(0.9)}
    ref0 = xvae.backends.get("numpy").compile(spec, loss_for(spec), None, CompileOptions())
    ref0.set_state(w)
    mean, logvar = ref0._encode(batch["x"].astype(np.float64))
    free = float(np.median(kl_per_latent(mean, logvar)))  # half the (example, latent) pairs clamped
    loss = dataclasses.replace(loss_for(spec), free_bits=free)
    results = {}
    for name in ("numpy", backend):
        prog = xvae.backends.get(name).compile(spec, loss, None, CompileOptions())
        prog.set_state(w)
        results[name] = prog.loss_and_grads(batch)
    (want_m, want_g), (got_m, got_g) = results["numpy"], results[backend]
    for metric, value in want_m.items():  # float32 sums of ELBO size (DESIGN §6)
        assert got_m[metric] == pytest.approx(value, rel=LOSS_RTOL, abs=_cancelled(spec)), metric
    for weight, g in want_g.items():
        assert rel_l2(got_g[weight], g) <= GRAD_RTOL, (weight, rel_l2(got_g[weight], g))

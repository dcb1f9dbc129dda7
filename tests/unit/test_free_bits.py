"""Free bits (`fit(free_bits=...)`, the ELBO specs' `free_bits`): the reference's loss and
hand-written gradient, and the fit arguments."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import xvae
from xvae.backend import CompileOptions
from xvae.losses import kl_per_latent, loss_for


def _spec() -> xvae.VAESpec:
    return xvae.VAESpec(encoder=xvae.EncoderSpec(input_dim=6, hidden=(5,), latents=3, activation="tanh"),
                        decoder=xvae.DecoderSpec(latents=3, hidden=(4,), output_dim=6, activation="tanh"))


def _setup():
    spec = _spec()
    rng = np.random.default_rng(0)
    w = {n: (v + rng.normal(0, 0.3, v.shape)).astype(np.float32) for n, v in xvae.init.initialize(spec, rng).items()}
    batch = {"x": (rng.random((5, 6)) > 0.5).astype(np.float32), "noise": rng.standard_normal((5, 3)).astype(np.float32),
             "mask": np.array([1, 1, 1, 1, 0], np.float32), "beta": np.float32(1.0)}
    return spec, w, batch


def _program(spec, free_bits, w):
    loss = dataclasses.replace(loss_for(spec), free_bits=free_bits)
    prog = xvae.backends.get("numpy").compile(spec, loss, None, CompileOptions())
    prog.set_state(w)
    return prog


def test_loss_charges_the_allowance_for_latents_below_it() -> None:
    spec, w, batch = _setup()
    prog = _program(spec, 0.0, w)
    mean, logvar = prog._encode(batch["x"].astype(np.float64))
    kl_d = kl_per_latent(mean, logvar)[:4]
    free = float(np.median(kl_d))  # some latents below, some above
    plain = prog._loss_and_grads(batch, need_grads=False)[0]
    freed = _program(spec, free, w)._loss_and_grads(batch, need_grads=False)[0]
    extra = np.mean(np.sum(np.maximum(kl_d, free) - kl_d, axis=1))
    assert freed["loss"] == pytest.approx(plain["loss"] + extra, rel=1e-12)
    assert freed["kl"] == plain["kl"] and freed["reconstruction"] == plain["reconstruction"]


def test_reference_gradient_matches_finite_differences() -> None:
    spec, w, batch = _setup()
    prog0 = _program(spec, 0.0, w)
    mean, logvar = prog0._encode(batch["x"].astype(np.float64))
    free = float(np.median(kl_per_latent(mean, logvar)[:4]))
    prog = _program(spec, free, w)
    _, grads = prog._loss_and_grads(batch)
    w64 = {n: v.astype(np.float64) for n, v in w.items()}
    for name, value in w64.items():
        for i in range(min(value.size, 4)):
            losses = []
            for step in (1e-6, -1e-6):
                moved = dict(w64)
                moved[name] = value.copy().ravel()
                moved[name][i] += step
                moved[name] = moved[name].reshape(value.shape)
                prog.weights = moved
                losses.append(prog._loss_and_grads(batch, need_grads=False)[0]["loss"])
            fd = (losses[0] - losses[1]) / 2e-6  # float64 central differences (max is smooth off the kink)
            assert grads[name].ravel()[i] == pytest.approx(fd, rel=1e-5, abs=1e-8), (name, i)
        prog.weights = w64


def test_fit_takes_free_bits_and_keeps_it() -> None:
    x = (np.random.default_rng(0).random((20, 6)) > 0.5).astype(np.float32)
    vae = xvae.VAE(_spec(), backend="numpy", seed=0)
    vae.fit(x, epochs=1, batch_size=10, progress=False, free_bits=0.5)
    assert vae._compiled_loss == dataclasses.replace(loss_for(vae.spec), free_bits=0.5)
    vae.fit(x, epochs=1, batch_size=10, progress=False)  # None keeps it
    assert vae._compiled_loss.free_bits == 0.5
    vae.fit(x, epochs=1, batch_size=10, progress=False, free_bits=0)
    assert vae._compiled_loss == loss_for(vae.spec)


@pytest.mark.parametrize(("kwargs", "name"), [({"free_bits": -0.1}, "free_bits"), ({"free_bits": "1"}, "free_bits"),
                                              ({"free_bits": float("inf")}, "free_bits"), ({"free_bits": True}, "free_bits"),
                                              ({"free_bits": 0.5, "loss": "iwae", "k": 2}, "free_bits")])
def test_bad_free_bits_trains_nothing(kwargs: dict, name: str) -> None:
    vae = xvae.VAE(_spec(), backend="numpy", seed=0)
    before = vae.get_weights()
    with pytest.raises(xvae.ConfigError, match=name):
        vae.fit(np.zeros((4, 6), np.float32), progress=False, **kwargs)
    assert vae.step == 0 and all(np.array_equal(v, before[n]) for n, v in vae.get_weights().items())

"""Weights travel: get/set, save/load and .to() are bit-exact, within and across backends."""

from __future__ import annotations

import numpy as np
import pytest

import xvae
from xvae.naming import optimizer_slots, weight_shapes

from cases import SPECS, assert_close_outputs, weights

X = np.random.default_rng(0).random((40, 32), dtype=np.float32)


def _assert_same(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        # canonical dtypes: float32 arrays, and an integer step counter
        assert b[name].dtype == (np.int64 if name == "opt.step" else np.float32), name


@pytest.mark.parametrize("case", SPECS)
def test_get_set_weights_exact(backend, case):
    spec = SPECS[case]
    model = (xvae.VAE if isinstance(spec, xvae.VAESpec) else xvae.Classifier)(spec, backend=backend, seed=3)
    w = weights(spec, seed=11)
    model.set_weights(w)
    got = model.get_weights()
    _assert_same(w, got)
    assert list(got) == list(weight_shapes(spec)) or set(got) == set(weight_shapes(spec))


def test_initial_weights_identical_across_backends(backend):
    spec = SPECS["vae-h2-z20"]
    _assert_same(xvae.VAE(spec, backend="numpy", seed=5).get_weights(),
                 xvae.VAE(spec, backend=backend, seed=5).get_weights())


def _trained_vae(backend: str) -> xvae.VAE:
    vae = xvae.VAE(SPECS["vae-h1-z20"], backend=backend, seed=0)
    vae.fit(X, epochs=2, batch_size=16, progress=False)
    return vae


def test_save_load_same_backend_bit_exact(backend, tmp_path):
    vae = _trained_vae(backend)
    vae.save(tmp_path / "run.xvae")
    back = xvae.load(tmp_path / "run.xvae", backend=backend)
    _assert_same(vae.get_weights(), back.get_weights())
    _assert_same(vae.get_optimizer_state(), back.get_optimizer_state())
    assert set(back.get_optimizer_state()) == set(optimizer_slots(vae.spec, ("m", "v")))
    assert (back.epoch, back.step) == (vae.epoch, vae.step) == (2, 6)
    np.testing.assert_array_equal(vae.reconstruct(X), back.reconstruct(X))  # bit-exact predictions


def test_weights_travel_between_backends(backend_pair, tmp_path):
    a, b = backend_pair
    vae = _trained_vae(a)
    moved = vae.to(b)
    assert moved.backend == b
    _assert_same(vae.get_weights(), moved.get_weights())
    _assert_same(vae.get_optimizer_state(), moved.get_optimizer_state())
    back = moved.to(a)
    _assert_same(vae.get_weights(), back.get_weights())
    np.testing.assert_array_equal(vae.reconstruct(X), back.reconstruct(X))
    assert_close_outputs(moved.reconstruct(X), vae.reconstruct(X), f"{a}->{b} reconstruct")
    vae.save(tmp_path / "a.xvae")
    loaded = xvae.load(tmp_path / "a.xvae", backend=b)
    _assert_same(vae.get_weights(), loaded.get_weights())
    _assert_same(vae.get_optimizer_state(), loaded.get_optimizer_state())


def test_checkpoint_resumes_in_another_backend(backend_pair, tmp_path):
    """Train 1 epoch in a, resume to epoch 2 in b: the same numbers as 2 epochs in b (to float32)."""
    a, b = backend_pair
    spec = SPECS["vae-h1-z20"]
    straight = xvae.VAE(spec, backend=b, seed=1)
    h = straight.fit(X, epochs=2, batch_size=16, progress=False)
    first = xvae.VAE(spec, backend=a, seed=1)
    first.fit(X, epochs=1, batch_size=16, progress=False)
    first.save(tmp_path / "e1.xvae")
    resumed = xvae.load(tmp_path / "e1.xvae", backend=b)
    h2 = resumed.fit(X, epochs=2, batch_size=16, progress=False, resume=True)
    assert h2.epoch == [2]
    # one epoch in a, one in b vs two in b: float32 rounding differs between frameworks
    # in the first epoch only (DESIGN §6 trajectory tolerance)
    assert h2.history["loss"][0] == pytest.approx(h.history["loss"][1], rel=1e-4)

"""The float64 reference backend: its hand-written gradients against central differences."""

from __future__ import annotations

import numpy as np
import pytest

import xvae
from xvae import layers as L
from xvae._reference import ReferenceBackend
from xvae.backend import CompileOptions
from xvae.init import initialize
from xvae.layers.towers import draw_dropout
from xvae.losses import loss_for
from xvae.naming import towers

SPECS = {
    "vae-h2-gelu": xvae.VAESpec(input_dim=6, hidden=(5, 4), latents=2, activation="gelu"),
    "vae-h0": xvae.VAESpec(input_dim=5, latents=3),
    "clf-o1-elu": xvae.ClassifierSpec(5, (4,), 1, "elu"),
    "clf-o3-tanh": xvae.ClassifierSpec(5, (4, 3), 3, "tanh"),
    "clf-o2-softplus": xvae.ClassifierSpec(4, (3,), 2, "softplus"),
    "clf-o1-sigmoid": xvae.ClassifierSpec(4, (3,), 1, "sigmoid"),
    "vae-conv-gaussian-per-output": xvae.VAESpec(
        encoder=xvae.EncoderSpec(input_shape=(6, 6, 1), latents=2, layers=[
            L.Conv2D(2, 3, stride=2, activation="tanh"), L.LayerNorm(), L.Flatten()]),
        decoder=xvae.DecoderSpec(latents=2, output_shape=(6, 6, 1), likelihood="gaussian",
                                 sigma="learned_per_output", layers=[
            L.Dense(18, "tanh"), L.Reshape((3, 3, 2)), L.Conv2DTranspose(1, 3, stride=2)])),
    "vae-gaussian-global-sigma": xvae.VAESpec(
        encoder=xvae.EncoderSpec(5, 2, (4,), "tanh"),
        decoder=xvae.DecoderSpec(2, 5, (4,), "tanh", likelihood="gaussian", sigma="learned")),
    "vae-gaussian-fixed-sigma": xvae.VAESpec(
        encoder=xvae.EncoderSpec(5, 2), decoder=xvae.DecoderSpec(2, 5, likelihood="gaussian", sigma=0.3)),
    "vae-continuous-bernoulli-dropout": xvae.VAESpec(
        encoder=xvae.EncoderSpec(input_shape=(5,), latents=2, layers=[L.Dense(4, "elu"), L.Dropout(0.3)]),
        decoder=xvae.DecoderSpec(latents=2, output_shape=(5,), likelihood="continuous_bernoulli",
                                 layers=[L.Dense(3, "tanh"), L.Dropout(0.5), L.Dense(5)])),
    "clf-conv-pool-dropout": xvae.ClassifierSpec(input_shape=(6, 7, 2), outputs=3, layers=[
        L.Conv2D(3, (2, 3), padding="valid", activation="elu"), L.MaxPool2D(2), L.AvgPool2D((1, 2), stride=1),
        L.Flatten(), L.Dropout(0.5), L.Dense(3)]),
}


def _batch(spec, rng, size=7, pad=2):
    mask = np.r_[np.ones(size - pad), np.zeros(pad)]
    b = {"x": rng.random((size, spec.input_dim)), "mask": mask}
    if isinstance(spec, xvae.VAESpec):
        if spec.decoder.likelihood == "bernoulli":
            b["x"] = (b["x"] > 0.5) * 1.0
        b.update(noise=rng.standard_normal((size, spec.latents)), beta=0.7)
    elif spec.outputs == 1:
        b["y"] = rng.integers(0, 2, size).astype(float)
    else:
        b["y"] = rng.integers(0, spec.outputs, size)
    masks = draw_dropout(lambda units: rng.random((size, units), dtype=np.float32), towers(spec))
    if masks is not None:
        b["dropout"] = masks
    return b


@pytest.mark.parametrize("case", SPECS)
def test_gradients_equal_central_differences(case):
    spec = SPECS[case]
    rng = np.random.default_rng(0)
    prog = ReferenceBackend().compile(spec, loss_for(spec), None, CompileOptions())
    prog.set_state(initialize(spec, rng, "torch_default"))
    b = _batch(spec, rng)
    _, grads = prog._loss_and_grads(b)
    h = 1e-6  # float64: truncation h^2 ~ 1e-12, rounding 1e-16/h ~ 1e-10
    for name, w in prog.weights.items():
        fd = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            old = w[idx]
            w[idx] = old + h
            up = prog._loss_and_grads(b, need_grads=False)[0]["loss"]
            w[idx] = old - h
            down = prog._loss_and_grads(b, need_grads=False)[0]["loss"]
            w[idx] = old
            fd[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(grads[name], fd, rtol=1e-6, atol=1e-8, err_msg=name)


def test_float32_reference_is_close_to_float64():
    spec = SPECS["vae-h2-gelu"]
    rng = np.random.default_rng(1)
    w = initialize(spec, rng)
    b = _batch(spec, rng)
    out = {}
    for dtype in (np.float64, np.float32):
        prog = ReferenceBackend(dtype).compile(spec, loss_for(spec), None, CompileOptions())
        prog.set_state(w)
        out[dtype] = prog.loss_and_grads(b)[0]["loss"]
    assert out[np.float32] == pytest.approx(out[np.float64], rel=1e-6)
    assert out[np.float32] != out[np.float64]  # really computed in float32


def test_state_round_trip_is_exact():
    spec = SPECS["clf-o3-tanh"]
    prog = ReferenceBackend().compile(spec, loss_for(spec), xvae.optim.Adam(), CompileOptions())
    w = initialize(spec, np.random.default_rng(2))
    prog.set_state(w)
    got, state = prog.get_state()
    assert all(np.array_equal(got[k], w[k]) for k in w)
    assert state["opt.step"].shape == () and state["opt.step"].dtype == np.int64  # an integer counter


@pytest.mark.parametrize("case", ["vae-h0", "clf-o3-tanh"])
def test_incomplete_batch_names_the_missing_key(case):
    """The reference follows the seam's BATCH_KEYS like the framework backends (conformance)."""
    spec = SPECS[case]
    prog = ReferenceBackend().compile(spec, loss_for(spec), xvae.optim.SGD(0.1), CompileOptions())
    prog.set_state(initialize(spec, np.random.default_rng(0)))
    full = _batch(spec, np.random.default_rng(1))
    kind = "vae" if isinstance(spec, xvae.VAESpec) else "classifier"
    for key in xvae.backend.BATCH_KEYS[kind]:
        partial = {k: v for k, v in full.items() if k != key}
        for call in (prog.train_step, prog.eval_step, prog.loss_and_grads):
            with pytest.raises(xvae.ConfigError, match=f"Missing: {key}"):
                call(partial)

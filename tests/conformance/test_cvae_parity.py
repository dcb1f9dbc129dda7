"""The conditional VAE (issue 12, item 3) in every backend against the float64 reference:
forward functions with y, ELBO and IWAE losses and gradients, one optimizer step, a 50-step
trajectory (single and fused steps), fit end to end, and weights through save/load/.to()."""

from __future__ import annotations

import numpy as np
import pytest

import xvae
from xvae.backend import CompileOptions
from xvae.layers import Conv2D, Conv2DTranspose, Dense, Flatten, Reshape
from xvae.losses import loss_for, objective_for
from xvae.naming import weight_shapes

from cases import FUSED_RTOL, GRAD_RTOL, LOSS_RTOL, STEP_RTOL, TRAJ_RTOL, assert_close_outputs, rel_l2, weights

CLASSES = 5
SPECS = {
    # the condition joins x (flat trunk) and z
    "flat": xvae.VAESpec(input_dim=32, hidden=(64,), latents=8, conditions=CLASSES),
    # the condition joins the conv trunk's flat output (before the heads) and z
    "conv": xvae.VAESpec(
        encoder=xvae.EncoderSpec(input_shape=(8, 8, 1), latents=4,
                                 layers=[Conv2D(4, 3, stride=2, activation="relu"), Flatten()]),
        decoder=xvae.DecoderSpec(latents=4, output_shape=(8, 8, 1),
                                 layers=[Dense(64, "relu"), Reshape((4, 4, 4)), Conv2DTranspose(1, 3, stride=2)]),
        conditions=CLASSES),
}


def _batch(spec, rng, size=12, pad=3, k=None):
    real = size - pad
    mask = np.r_[np.ones(real), np.zeros(pad)].astype(np.float32)
    x = np.zeros((size, spec.input_dim), np.float32)
    x[:real] = rng.random((real, spec.input_dim)) < 0.4
    y = np.zeros((size, CLASSES), np.float32)
    y[np.arange(real), rng.integers(0, CLASSES, real)] = 1.0  # padding rows: no class at all
    noise = rng.standard_normal((size, *((k,) if k else ()), spec.latents), dtype=np.float32)
    return {"x": x, "y": y, "noise": noise, "mask": mask, "beta": np.float32(1.0), "lr": np.float32(1e-3)}


def _program(name, spec, loss=None, optimizer=None):
    prog = xvae.backends.get(name).compile(spec, loss or loss_for(spec), optimizer, CompileOptions())
    prog.set_state(weights(spec))
    return prog


@pytest.mark.parametrize("case", SPECS)
def test_forward_functions_take_the_condition(backend, case):
    spec = SPECS[case]
    rng = np.random.default_rng(1)
    y = np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, 9)]
    inputs = {"encode": {"x": rng.random((9, spec.input_dim), dtype=np.float32), "y": y},
              "decode": {"z": rng.standard_normal((9, spec.latents), dtype=np.float32), "y": y},
              "log_weights": {"x": (rng.random((9, spec.input_dim)) < 0.4).astype(np.float32), "y": y,
                              "noise": rng.standard_normal((9, 6, spec.latents), dtype=np.float32)}}
    ref, got = _program("numpy", spec), _program(backend, spec)
    for fn, args in inputs.items():
        want, out = ref.run(fn, **args), got.run(fn, **args)
        for key in want:
            assert out[key].dtype == np.float32 and out[key].shape == want[key].shape
            assert_close_outputs(out[key], want[key], f"{backend} {case} {fn}.{key}")  # DESIGN §6
    with pytest.raises(xvae.ConfigError, match="'?y'?"):  # the condition is a required input
        got.run("encode", x=inputs["encode"]["x"])


@pytest.mark.parametrize("objective", ["elbo", "iwae-k4"])
@pytest.mark.parametrize("case", SPECS)
def test_losses_and_gradients_match_the_reference(backend, case, objective):
    spec = SPECS[case]
    k = 4 if objective == "iwae-k4" else None
    loss = objective_for(spec, "iwae", k, 0.0) if k else loss_for(spec)
    b = _batch(spec, np.random.default_rng(3), k=k)
    want_m, want_g = _program("numpy", spec, loss).loss_and_grads(b)
    got_m, got_g = _program(backend, spec, loss).loss_and_grads(b)
    for name, value in want_m.items():  # ELBO-sized float32 sums (DESIGN §6)
        assert got_m[name] == pytest.approx(value, rel=LOSS_RTOL), (case, objective, name)
    assert set(got_g) == set(weight_shapes(spec))
    for name, g in want_g.items():  # backprop through <= 3 float32 layers (DESIGN §6)
        assert rel_l2(got_g[name], g) <= GRAD_RTOL, (case, objective, name, rel_l2(got_g[name], g))
    prog = _program(backend, spec, loss)
    with pytest.raises(xvae.ConfigError, match="Missing: y"):
        prog.loss_and_grads({key: v for key, v in b.items() if key != "y"})


@pytest.mark.parametrize("case", SPECS)
def test_one_step_and_a_50_step_trajectory(backend, case):
    """One SGD step (weights vs the float64 step; the update is lr * a gradient that agrees to
    GRAD_RTOL, a change of ~1e-7 of the weights' norm, below STEP_RTOL), then 50 Adam steps
    single and fused (TRAJ_RTOL / FUSED_RTOL, DESIGN §6)."""
    spec = SPECS[case]
    rng = np.random.default_rng(7)
    b = _batch(spec, rng)
    sgd = xvae.optim.SGD(0.05)
    ref, got = _program("numpy", spec, optimizer=sgd), _program(backend, spec, optimizer=sgd)
    ref.train_step({**b, "lr": np.float32(0.05)})
    got.train_step({**b, "lr": np.float32(0.05)})
    want_w, got_w = ref.get_state()[0], got.get_state()[0]
    for name in want_w:
        assert rel_l2(got_w[name], want_w[name]) <= STEP_RTOL, (case, name, rel_l2(got_w[name], want_w[name]))

    adam = xvae.optim.Adam(1e-3)
    batches = [_batch(spec, rng) for _ in range(50)]
    losses = {}
    for which, fused in (("numpy", 0), (backend, 0), (backend, 10)):
        prog = _program(which, spec, optimizer=adam)
        if fused:
            out = []
            for lo in range(0, 50, fused):
                group = batches[lo:lo + fused]
                stacked = {key: np.stack([g[key] for g in group]) for key in group[0]}
                out += np.asarray(prog.to_numpy(prog.train_steps(stacked))["loss"]).tolist()
        else:
            out = [float(prog.to_numpy(prog.train_step(g))["loss"]) for g in batches]
        losses[(which, fused)] = np.array(out)
    want = losses[("numpy", 0)]
    worst = float(np.max(np.abs(losses[(backend, 0)] - want) / np.abs(want)))
    assert worst <= TRAJ_RTOL, f"{backend} {case}: max relative loss difference {worst:.2e}"
    np.testing.assert_allclose(losses[(backend, 10)], losses[(backend, 0)], rtol=FUSED_RTOL)


def test_fit_end_to_end_and_weights_round_trip(backend, tmp_path):
    """fit(x, y) with core-drawn order and noise (labels permuted with x), validation on
    (x_val, y_val), evaluate and log_likelihood with labels: within TRAJ_RTOL / LOSS_RTOL of
    the reference; then save/load/.to() carry the weights bit for bit."""
    spec = SPECS["conv"]
    rng = np.random.default_rng(5)
    x = (rng.random((40, spec.input_dim)) < 0.4).astype(np.float32)
    y = rng.integers(0, CLASSES, 40)
    results = {}
    for which in ("numpy", backend):
        vae = xvae.VAE(spec, backend=which, seed=2)
        hist = vae.fit(x, y, epochs=2, batch_size=16, progress=False, validation_data=(x[:9], y[:9]))
        results[which] = (np.array(hist.history["loss"] + hist.history["val_loss"]),
                          vae.evaluate(x, y)["loss"], vae.log_likelihood(x[:6], y=y[:6], k=16, seed=1), vae)
    (want_h, want_e, want_ll, _), (got_h, got_e, got_ll, model) = results["numpy"], results[backend]
    np.testing.assert_allclose(got_h, want_h, rtol=TRAJ_RTOL)
    assert got_e == pytest.approx(want_e, rel=TRAJ_RTOL)
    np.testing.assert_allclose(got_ll, want_ll, rtol=TRAJ_RTOL)
    w = model.get_weights()
    model.save(tmp_path / "c.xvae")
    for loaded in (xvae.load(tmp_path / "c.xvae", backend=backend), model.to("numpy").to(backend)):
        assert loaded.spec == spec
        back = loaded.get_weights()
        assert all(np.array_equal(back[name], w[name]) for name in w)  # bit for bit
    np.testing.assert_array_equal(xvae.load(tmp_path / "c.xvae", backend=backend).sample(3, seed=0, y=1),
                                  model.sample(3, seed=0, y=1))

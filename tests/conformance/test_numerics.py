"""Every backend against the float64 NumPy reference: forward, losses, gradients, steps.

Identical weights, data and noise go in; DESIGN §6's tolerances bound what comes out.
"""

from __future__ import annotations

import numpy as np
import pytest

import xvae
from xvae.naming import weight_shapes

from cases import (ARTICLE, FUSED_RTOL, GRAD_RTOL, LOSS_RTOL, OPTIMIZERS, SPECS, STEP_RTOL, TRAJ_RTOL,
                   assert_close_outputs, batch, program, rel_l2, weights)

ALL_SPECS = {**SPECS, **ARTICLE}


def _functions(spec, rng):
    if isinstance(spec, xvae.VAESpec):
        return {"encode": {"x": rng.random((9, spec.input_dim), dtype=np.float32)},
                "decode": {"z": rng.standard_normal((9, spec.latents), dtype=np.float32)}}
    return {"classify": {"x": rng.random((9, spec.input_dim), dtype=np.float32)}}


@pytest.mark.parametrize("case", ALL_SPECS)
def test_forward(backend, case):
    spec = ALL_SPECS[case]
    ref, got = program("numpy", spec), program(backend, spec)
    for fn, inputs in _functions(spec, np.random.default_rng(1)).items():
        want = ref.run(fn, **inputs)
        out = got.run(fn, **inputs)
        assert set(out) == set(want), f"{backend} {fn} returned {set(out)}"
        for key in want:
            assert out[key].dtype == np.float32 and out[key].shape == want[key].shape
            assert_close_outputs(out[key], want[key], f"{backend} {case} {fn}.{key}")


@pytest.mark.parametrize("activation", xvae._specs.ACTIVATIONS)
def test_activations(backend, activation):
    spec = xvae.ClassifierSpec(input_dim=8, hidden=(16,), outputs=3, activation=activation)
    x = {"x": np.random.default_rng(2).normal(0, 3, (10, 8)).astype(np.float32)}
    want = program("numpy", spec).run("classify", **x)["logits"]
    assert_close_outputs(program(backend, spec).run("classify", **x)["logits"], want,
                         f"{backend} {activation}")


@pytest.mark.parametrize("case", ALL_SPECS)
def test_losses_and_grads(backend, case):
    spec = ALL_SPECS[case]
    b = batch(spec, np.random.default_rng(3))
    want_m, want_g = program("numpy", spec).loss_and_grads(b)
    got_m, got_g = program(backend, spec).loss_and_grads(b)
    for name, value in want_m.items():
        if name == "accuracy":
            assert got_m[name] == pytest.approx(value, abs=1e-6), f"{backend} accuracy"
        else:
            assert got_m[name] == pytest.approx(value, rel=LOSS_RTOL, abs=1e-7), f"{backend} {name}"
    assert set(got_g) == set(weight_shapes(spec))
    for name, g in want_g.items():
        assert got_g[name].shape == g.shape and got_g[name].dtype == np.float32, name
        assert rel_l2(got_g[name], g) <= GRAD_RTOL, f"{backend} {case} grad {name}: {rel_l2(got_g[name], g):.2e}"


@pytest.mark.parametrize("case", SPECS)
def test_eval_step_matches_loss(backend, case):
    spec = SPECS[case]
    b = batch(spec, np.random.default_rng(4))
    prog = program(backend, spec)
    got = prog.to_numpy(prog.eval_step(b))
    want, _ = program("numpy", spec).loss_and_grads(b)
    assert set(got) == set(want)
    for name in want:  # the scalars and the (latents,) "kl_per_latent"
        np.testing.assert_allclose(got[name], want[name], rtol=LOSS_RTOL, atol=1e-6, err_msg=name)


def test_padding_rows_do_not_count(backend):
    """The masked mean of a padded batch equals the loss of the real rows alone."""
    spec = SPECS["vae-h1-z20"]
    b = batch(spec, np.random.default_rng(5), size=24, pad=5)
    real = {k: (v[:19] if np.ndim(v) else v) for k, v in b.items()}
    prog = program(backend, spec)
    padded, g_pad = prog.loss_and_grads(b)
    unpadded, g_real = prog.loss_and_grads(real)
    assert padded["loss"] == pytest.approx(unpadded["loss"], rel=LOSS_RTOL)
    for name in g_pad:
        assert rel_l2(g_pad[name], g_real[name]) <= GRAD_RTOL


SATURATED = np.array([0.0, 1e-9, -1e-9, 20.0, -20.0, 88.0, -88.0, 104.0, -104.0, 1e9, -1e9], np.float32)


@pytest.mark.parametrize("label", [0.0, 1.0])
def test_bce_saturated_logits(backend, label):
    """BCE and its gradient stay exact where float32 sigmoid(x) rounds to 0 or 1 (the seed-000 trap)."""
    spec = xvae.ClassifierSpec(input_dim=1, outputs=1)
    w = {"output.kernel": np.ones((1, 1), np.float32), "output.bias": np.zeros(1, np.float32)}
    prog = program(backend, spec, w=w)
    want = xvae.losses.binary_cross_entropy(SATURATED.astype(np.float64), label)
    for i, logit in enumerate(SATURATED):
        mask = np.zeros(len(SATURATED), np.float32)
        mask[i] = 1.0  # the masked mean picks out one example
        b = {"x": SATURATED[:, None], "y": np.full(len(SATURATED), label, np.float32), "mask": mask}
        metrics, grads = prog.loss_and_grads(b)
        assert np.isfinite(metrics["loss"]), f"{backend}: BCE({logit}, {label}) = {metrics['loss']}"
        assert metrics["loss"] == pytest.approx(want[i], rel=1e-6, abs=1e-7), f"{backend} logit={logit}"
        sig = 0.5 * (1 + np.tanh(0.5 * np.float64(logit)))
        assert grads["output.bias"][0] == pytest.approx(sig - label, abs=1e-6), f"{backend} grad at {logit}"


def test_vae_reconstruction_saturated(backend):
    """The VAE's reconstruction term is the stable BCE too: decoder logits set to saturated values."""
    spec = xvae.VAESpec(input_dim=len(SATURATED), latents=1)
    w = {k: np.zeros(s, np.float32) for k, s in weight_shapes(spec).items()}
    w["decoder.output.bias"] = SATURATED.copy()  # z = 0 (mean 0, noise 0): logits = bias
    x = np.array([[0.0, 1.0] * 5 + [1.0]], np.float32)
    b = {"x": x, "noise": np.zeros((1, 1), np.float32), "mask": np.ones(1, np.float32), "beta": np.float32(1)}
    metrics, _ = program(backend, spec, w=w).loss_and_grads(b)
    want = xvae.losses.binary_cross_entropy(SATURATED.astype(np.float64), x[0]).sum()
    assert metrics["reconstruction"] == pytest.approx(want, rel=1e-6)
    assert metrics["kl"] == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("case", ["vae-h1-z20", "clf-h1-o10"])
def test_optimizer_steps_from_identical_gradients(backend, case, opt):
    """Three updates from the same gradient arrays: weights and state match the float64 equations.

    The rate is the spec's `lr_at(opt.step)` (apply_gradients without lr): a schedule's
    position follows each backend's own step counter.
    """
    spec, optimizer = SPECS[case], OPTIMIZERS[opt]
    rng = np.random.default_rng(6)
    ref, got = program("numpy", spec, optimizer), program(backend, spec, optimizer)
    for _ in range(3):
        grads = {k: rng.normal(0, 1e-2, s).astype(np.float32) for k, s in weight_shapes(spec).items()}
        if optimizer.clip_norm is not None:  # the case must exercise the clipping
            assert np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values())) > optimizer.clip_norm
        ref.apply_gradients(grads)
        got.apply_gradients(grads)
    (rw, rs), (gw, gs) = ref.get_state(), got.get_state()
    assert set(gs) == set(rs), f"{backend} optimizer state names {sorted(gs)[:4]}..."
    for name in rw:
        assert rel_l2(gw[name], rw[name]) <= STEP_RTOL, f"{backend} {opt} {name}: {rel_l2(gw[name], rw[name]):.2e}"
    for name in rs:
        assert rel_l2(gs[name], rs[name]) <= STEP_RTOL, f"{backend} {opt} state {name}"


def _trajectory(name, spec, optimizer, batches, fused=0):
    prog = program(name, spec, optimizer)
    lrs = optimizer.lr_at(np.arange(len(batches))).astype(np.float32)  # the core's per-step rates
    batches = [{**b, "lr": lr} for b, lr in zip(batches, lrs)]
    if fused:
        losses = []
        for lo in range(0, len(batches), fused):
            group = batches[lo:lo + fused]
            stacked = {k: np.stack([b[k] for b in group]) for k in group[0] if k != "beta"}  # lr: (K,)
            if "beta" in group[0]:
                stacked["beta"] = np.float32(1.0)
            losses.extend(np.asarray(prog.to_numpy(prog.train_steps(stacked))["loss"]).tolist())
        return np.array(losses), prog
    return np.array([float(prog.to_numpy(prog.train_step(b))["loss"]) for b in batches]), prog


@pytest.mark.parametrize("opt", ["sgd-m0.9", "adam", "adamw-cosine-clip"])
@pytest.mark.parametrize("case", ["vae-h1-z20", "clf-h2-o1", "clf-h1-o10"])
def test_50_step_trajectory(backend, case, opt):
    spec, optimizer = SPECS[case], OPTIMIZERS[opt]
    rng = np.random.default_rng(7)
    batches = [batch(spec, rng) for _ in range(50)]
    want, _ = _trajectory("numpy", spec, optimizer, batches)
    got, _ = _trajectory(backend, spec, optimizer, batches)
    worst = float(np.max(np.abs(got - want) / np.abs(want)))
    assert worst <= TRAJ_RTOL, f"{backend} {case} {opt}: max relative loss difference {worst:.2e}"


@pytest.mark.parametrize("opt", ["adam", "adamw-cosine-clip"])
@pytest.mark.parametrize("case", ["vae-h1-z20", "clf-h1-o10"])
def test_fused_steps_equal_single_steps(backend, case, opt):
    """train_steps(K) gives the numbers of K train_step calls (DESIGN §1: fusion changes nothing),
    with a per-step learning rate of shape (K,) too."""
    spec, optimizer = SPECS[case], OPTIMIZERS[opt]
    rng = np.random.default_rng(8)
    batches = [batch(spec, rng) for _ in range(20)]
    single, p1 = _trajectory(backend, spec, optimizer, batches)
    fused, p2 = _trajectory(backend, spec, optimizer, batches, fused=10)
    # Same float32 operations in the same order; XLA may fuse the loop body differently
    # from the single step, so allow float32 rounding (a few ulps), not algorithmic drift.
    np.testing.assert_allclose(fused, single, rtol=FUSED_RTOL)
    w1, w2 = p1.get_state()[0], p2.get_state()[0]
    for name in w1:
        assert rel_l2(w2[name], w1[name]) <= FUSED_RTOL, name


def test_no_optimizer_means_no_training(backend):
    spec = SPECS["clf-h0-o1"]
    prog = program(backend, spec)
    assert prog.get_state()[1] == {}
    with pytest.raises(xvae.ConfigError, match="optimizer"):
        prog.train_step(batch(spec, np.random.default_rng(0)))


@pytest.mark.parametrize("case", ["vae-h1-z20", "clf-h1-o10"])
def test_incomplete_batch_is_the_same_error_everywhere(backend, case):
    """Every key of BATCH_KEYS is required by every backend, in every batch-taking call, and
    TRAIN_KEYS ("lr") by the training calls."""
    spec = SPECS[case]
    prog = program(backend, spec, xvae.optim.Adam(1e-3))
    full = batch(spec, np.random.default_rng(0))
    stacked = {k: (v if np.ndim(v) == 0 else np.stack([v, v])) for k, v in full.items()}
    calls = (("train_step", prog.train_step, full), ("train_steps", prog.train_steps, stacked),
             ("eval_step", prog.eval_step, full), ("loss_and_grads", prog.loss_and_grads, full))
    for key in xvae.backend.BATCH_KEYS["vae" if isinstance(spec, xvae.VAESpec) else "classifier"]:
        for name, call, b in calls:
            with pytest.raises(xvae.ConfigError, match=f"Missing: {key}"):
                call({k: v for k, v in b.items() if k != key})
    for key in xvae.backend.TRAIN_KEYS:
        for name, call, b in calls[:2]:
            with pytest.raises(xvae.ConfigError, match=f"training batch .* Missing: {key}"):
                call({k: v for k, v in b.items() if k != key})
        for name, call, b in calls[2:]:  # evaluation has no learning rate
            call({k: v for k, v in b.items() if k != key})
    before = prog.get_state()[0]
    assert all(np.array_equal(before[k], v) for k, v in weights(spec).items()), "a refused batch changed weights"


def test_unknown_function(backend):
    with pytest.raises(xvae.ConfigError, match="classify"):
        program(backend, SPECS["clf-h0-o1"]).run("encode", x=np.zeros((1, 16), np.float32))


def test_info(backend):
    info = xvae.backends.get(backend).info()
    assert info["version"] and info["device"]



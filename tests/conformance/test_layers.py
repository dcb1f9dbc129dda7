"""Every layer type and likelihood in every backend against the float64 reference:
forward, losses, gradients, optimizer steps and 50-step trajectories (DESIGN §6), plus
padding corner cases, flax#3137 and bit-exact weight round trips of conv models.

Models are tiny (8x8 images) so the suite stays fast; tolerances are cases.py's.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import xvae
from xvae import layers as L
from xvae.layers.towers import draw_dropout
from xvae.naming import towers, weight_shapes

from cases import GRAD_RTOL, LOSS_RTOL, STEP_RTOL, TRAJ_RTOL, assert_close_outputs, program, rel_l2


def _vae(enc_layers, dec_layers, shape=(8, 8, 1), latents=3, **decoder):
    return xvae.VAESpec(encoder=xvae.EncoderSpec(input_shape=shape, latents=latents, layers=enc_layers),
                        decoder=xvae.DecoderSpec(latents=latents, output_shape=shape, layers=dec_layers, **decoder))


def _clf(shape, layers, outputs=3):
    return xvae.ClassifierSpec(input_shape=shape, outputs=outputs, layers=layers)


CONV_ENCODER = [L.Conv2D(4, 3, stride=2, activation="relu"), L.Flatten()]
CONV_DECODER = [L.Dense(4 * 4 * 4, "relu"), L.Reshape((4, 4, 4)), L.Conv2DTranspose(1, 3, stride=2)]

#: One model per layer type (the type under test appears several times, with its options).
CASES = {
    "dense": _clf((12,), [L.Dense(8, "gelu"), L.Dense(6, "elu"), L.Dense(3)]),
    "conv2d": _clf((8, 8, 2), [L.Conv2D(4, 3, stride=2, activation="relu"),
                               L.Conv2D(3, (2, 3), padding="valid", activation="tanh"),
                               L.Conv2D(2, 2, padding=1), L.Flatten(), L.Dense(3)]),
    # "same" with even kernels and odd inputs: uneven totals, the extra zero after (TF/Flax rule)
    "conv2d-same-uneven": _clf((7, 7, 1), [L.Conv2D(3, 4, activation="tanh"), L.Conv2D(2, (2, 3), stride=2),
                                           L.Flatten(), L.Dense(3)]),
    "conv2d_transpose": _vae(CONV_ENCODER, [L.Dense(2 * 2 * 4, "relu"), L.Reshape((2, 2, 4)),
                                            L.Conv2DTranspose(4, 3, stride=2, activation="relu"),
                                            L.Conv2DTranspose(2, (2, 3), stride=2, activation="tanh"),
                                            L.Conv2DTranspose(1, 3)]),
    # valid + output_padding, explicit int padding, and "same" with kernel < stride
    "conv2d_transpose-padding": _vae(CONV_ENCODER, [
        L.Dense(2 * 2 * 3, "tanh"), L.Reshape((2, 2, 3)),
        L.Conv2DTranspose(3, (2, 3), stride=2, padding="valid", output_padding=1, activation="tanh"),  # 5x6
        L.Conv2DTranspose(2, 4, stride=2, padding=(1), activation="tanh"),  # 10x12
        L.Conv2DTranspose(2, 2, stride=3),  # 30x36
        L.Conv2D(1, (23, 29), padding="valid")]),  # back to 8x8
    "max_pool2d": _clf((8, 8, 2), [L.Conv2D(4, 3, activation="tanh"), L.MaxPool2D(2), L.MaxPool2D(3, stride=1),
                                   L.Flatten(), L.Dense(3)]),
    "avg_pool2d": _clf((8, 8, 2), [L.Conv2D(4, 3, activation="tanh"), L.AvgPool2D(2),
                                   L.AvgPool2D((2, 3), stride=(1, 2)), L.Flatten(), L.Dense(3)]),
    "reshape-flatten": _clf((16,), [L.Reshape((4, 4, 1)), L.Conv2D(2, 3, activation="elu"), L.Flatten(),
                                    L.Dense(6, "tanh"), L.Reshape((2, 3, 1)), L.Flatten(), L.Dense(3)]),
    "layer_norm": _clf((8, 8, 2), [L.Conv2D(4, 3, stride=2), L.LayerNorm(), L.Flatten(), L.Dense(8),
                                   L.LayerNorm(epsilon=1e-3), L.Dense(3)]),
    "dropout": _clf((8, 8, 1), [L.Conv2D(4, 3, activation="relu"), L.Dropout(0.25), L.Flatten(),
                                L.Dense(8, "relu"), L.Dropout(0.5), L.Dense(3)]),
    "dropout-vae": _vae([L.Flatten(), L.Dense(16, "tanh"), L.Dropout(0.3)], [L.Dense(16, "tanh"), L.Dropout(0.2),
                                                                             L.Dense(64), L.Reshape((8, 8, 1))]),
    "bernoulli-conv": _vae(CONV_ENCODER, CONV_DECODER),
    "gaussian-fixed": _vae(CONV_ENCODER, CONV_DECODER, likelihood="gaussian", sigma=0.5),
    "gaussian-learned": _vae(CONV_ENCODER, CONV_DECODER, likelihood="gaussian", sigma="learned"),
    "gaussian-per-output": _vae(CONV_ENCODER, CONV_DECODER, likelihood="gaussian", sigma="learned_per_output"),
    "continuous_bernoulli": _vae(CONV_ENCODER, CONV_DECODER, likelihood="continuous_bernoulli"),
}

BATCH, PAD = 16, 3


#: The Adam learning rate of the trajectories, carried by every batch (the seam's "lr" input).
TRAJ_LR = 3e-3


def make_batch(spec, rng, size=BATCH, pad=PAD, train=True):
    """A padded batch in the seam's format, with dropout masks drawn as the core draws them."""
    real = size - pad
    mask = np.r_[np.ones(real), np.zeros(pad)].astype(np.float32)
    x = np.zeros((size, spec.input_dim), np.float32)
    x[:real] = rng.random((real, spec.input_dim), dtype=np.float32)
    out = {"mask": mask, "lr": np.float32(TRAJ_LR)}
    if isinstance(spec, xvae.VAESpec):
        if spec.decoder.likelihood == "bernoulli":
            x = (x > 0.6).astype(np.float32)
        noise = np.zeros((size, spec.latents), np.float32)
        noise[:real] = rng.standard_normal((real, spec.latents), dtype=np.float32)
        out.update(noise=noise, beta=np.float32(1.0))
    else:
        y = np.zeros(size, np.int32)
        y[:real] = rng.integers(0, spec.outputs, real)
        out["y"] = y
    out["x"] = x
    masks = draw_dropout(lambda units: rng.random((size, units), dtype=np.float32), towers(spec)) if train else None
    if masks is not None:
        out["dropout"] = masks
    return out


def _functions(spec, rng):
    if isinstance(spec, xvae.VAESpec):
        return {"encode": {"x": rng.random((5, spec.input_dim), dtype=np.float32)},
                "decode": {"z": rng.standard_normal((5, spec.latents), dtype=np.float32)}}
    return {"classify": {"x": rng.random((5, spec.input_dim), dtype=np.float32)}}


def _weights(spec):
    """glorot kernels; biases, LayerNorm and log_sigma nudged off their constants so every
    parameter's gradient path is exercised."""
    rng = np.random.default_rng(0)
    w = xvae.init.initialize(spec, rng)
    return {k: (v if k.endswith(".kernel") else v + rng.normal(0, 0.1, v.shape).astype(np.float32))
            for k, v in w.items()}


@pytest.mark.parametrize("case", CASES)
def test_forward(backend, case):
    spec = CASES[case]
    w = _weights(spec)
    ref, got = program("numpy", spec, w=w), program(backend, spec, w=w)
    for fn, inputs in _functions(spec, np.random.default_rng(1)).items():
        want, out = ref.run(fn, **inputs), got.run(fn, **inputs)
        for key in want:
            assert out[key].shape == want[key].shape and out[key].dtype == np.float32
            assert_close_outputs(out[key], want[key], f"{backend} {case} {fn}.{key}")


def _assert_metrics(got, want, what, spec):
    for name, value in want.items():
        if name == "accuracy":
            assert got[name] == pytest.approx(value, abs=1e-6), f"{what} accuracy"
        elif name in ("loss", "reconstruction"):
            assert got[name] == pytest.approx(value, rel=LOSS_RTOL, abs=_cancelled(spec)), f"{what} {name}"
        else:
            assert got[name] == pytest.approx(value, rel=LOSS_RTOL, abs=1e-7), f"{what} {name}"


def _cancelled(spec):
    """Absolute slack for a continuous Bernoulli reconstruction: per pixel BCE - log C, two
    terms of ~log 2 each near lambda = 0.5 that cancel to ~1e-3, so the sum over d pixels is
    small while its float32 rounding scales with the terms (d * 2 log 2 * 6e-8 ~ 7e-6 for
    d = 64). 1e-6 of the terms' magnitude leaves the 50-step drift room; 1e-7 otherwise."""
    if isinstance(spec, xvae.VAESpec) and spec.decoder.likelihood == "continuous_bernoulli":
        return 1e-6 * spec.decoder.output_dim * 2 * np.log(2.0)
    return 1e-7


@pytest.mark.parametrize("case", CASES)
def test_losses_and_gradients(backend, case):
    spec = CASES[case]
    w = _weights(spec)
    b = make_batch(spec, np.random.default_rng(3))
    want_m, want_g = program("numpy", spec, w=w).loss_and_grads(b)
    got_m, got_g = program(backend, spec, w=w).loss_and_grads(b)
    _assert_metrics(got_m, want_m, f"{backend} {case}", spec)
    assert list(got_g) == list(weight_shapes(spec)) or set(got_g) == set(weight_shapes(spec))
    for name, g in want_g.items():
        assert got_g[name].shape == g.shape and got_g[name].dtype == np.float32, name
        err = rel_l2(got_g[name], g)
        assert err <= GRAD_RTOL, f"{backend} {case} grad {name}: {err:.2e}"


@pytest.mark.parametrize("case", ["conv2d", "conv2d_transpose", "layer_norm", "gaussian-per-output"])
def test_one_adam_step_from_identical_gradients(backend, case):
    spec = CASES[case]
    w = _weights(spec)
    ref = program("numpy", spec, xvae.optim.Adam(1e-2), w=w)
    got = program(backend, spec, xvae.optim.Adam(1e-2), w=w)
    rng = np.random.default_rng(6)
    grads = {k: rng.normal(0, 1e-2, s).astype(np.float32) for k, s in weight_shapes(spec).items()}
    ref.apply_gradients(grads)
    got.apply_gradients(grads)
    (rw, rs), (gw, gs) = ref.get_state(), got.get_state()
    for name in rw:
        assert rel_l2(gw[name], rw[name]) <= STEP_RTOL, f"{backend} {case} {name}"
    for name in rs:
        assert rel_l2(gs[name], rs[name]) <= STEP_RTOL, f"{backend} {case} state {name}"


@functools.lru_cache(maxsize=None)
def _batches(case, steps):
    rng = np.random.default_rng(7)
    return [make_batch(CASES[case], rng) for _ in range(steps)]


def _trajectory(name, case, steps):
    spec = CASES[case]
    prog = program(name, spec, xvae.optim.Adam(TRAJ_LR), w=_weights(spec))
    losses = [float(prog.to_numpy(prog.train_step(b))["loss"]) for b in _batches(case, steps)]
    return np.array(losses), prog.get_state()[0]


_reference_trajectory = functools.lru_cache(maxsize=None)(lambda case, steps: _trajectory("numpy", case, steps))


@pytest.mark.parametrize("case", CASES)
def test_50_step_trajectory(backend, case):
    """Per-step losses of 50 Adam steps within TRAJ_RTOL of the reference (dropout masks,
    noise and data identical); weights compared by norms (DESIGN §6: Adam turns float32
    noise in near-zero gradients into ±lr steps, so element-wise maxima are meaningless)."""
    want, want_w = _reference_trajectory(case, 50)
    got, got_w = _trajectory(backend, case, 50)
    worst = float(np.max(np.abs(got - want) / (np.abs(want) + _cancelled(CASES[case]) / TRAJ_RTOL)))
    assert worst <= TRAJ_RTOL, f"{backend} {case}: max relative loss difference {worst:.2e}"
    for name in want_w:
        assert rel_l2(got_w[name], want_w[name]) <= 1e-2, f"{backend} {case} weights {name}"


@pytest.mark.parametrize("case", ["conv2d", "conv2d_transpose", "max_pool2d"])
def test_forward_agrees_between_backends(backend_pair, case):
    spec = CASES[case]
    w = _weights(spec)
    first, second = (program(name, spec, w=w) for name in backend_pair)
    for fn, inputs in _functions(spec, np.random.default_rng(2)).items():
        a, b = first.run(fn, **inputs), second.run(fn, **inputs)
        for key in a:
            # each is within FORWARD_RTOL of the reference; the two together within twice that
            assert rel_l2(a[key], b[key]) <= 2e-5, f"{backend_pair} {case} {fn}.{key}"


def test_asymmetric_transposed_kernel_is_the_adjoint(backend):
    """flax#3137: Flax's ConvTranspose without transpose_kernel=True is not the adjoint of
    Conv; with a kernel asymmetric in space and channels a wrong reading cannot agree."""
    spec = _clf((3, 2, 2), [L.Conv2DTranspose(3, (2, 3), stride=(2, 1)), L.Flatten(), L.Dense(2)], outputs=2)
    w = xvae.init.initialize(spec, np.random.default_rng(0))
    w["layers.0.kernel"] = np.arange(2 * 3 * 3 * 2, dtype=np.float32).reshape(2, 3, 3, 2) / 10
    w["layers.2.kernel"] = np.eye(w["layers.2.kernel"].shape[0], 2, dtype=np.float32)
    x = np.random.default_rng(1).random((2, 12), dtype=np.float32)
    want = program("numpy", spec, w=w).run("classify", x=x)["logits"]
    assert_close_outputs(program(backend, spec, w=w).run("classify", x=x)["logits"], want, backend)
    # a mutation check: the reference itself distinguishes the flipped/swapped reading
    flipped = dict(w, **{"layers.0.kernel": np.ascontiguousarray(w["layers.0.kernel"][::-1, ::-1])})
    assert not np.allclose(program("numpy", spec, w=flipped).run("classify", x=x)["logits"], want)


@pytest.mark.parametrize("case", ["conv2d_transpose", "gaussian-per-output", "layer_norm"])
def test_conv_weights_round_trip_bit_exact(backend, case, tmp_path):
    spec = CASES[case]
    model_cls = xvae.VAE if isinstance(spec, xvae.VAESpec) else xvae.Classifier
    model = model_cls(spec, backend=backend, seed=3)
    w = _weights(spec)
    model.set_weights(w)
    got = model.get_weights()
    assert all(np.array_equal(got[k], w[k]) for k in w)
    model.save(tmp_path / "m.xvae")
    loaded = xvae.load(tmp_path / "m.xvae")
    assert all(np.array_equal(loaded.get_weights()[k], w[k]) for k in w)
    for other in ("numpy", backend):
        moved = model.to(other)
        assert all(np.array_equal(moved.get_weights()[k], w[k]) for k in w), other
        assert all(np.array_equal(moved.to(backend).get_weights()[k], w[k]) for k in w), other


def test_fit_with_dropout_and_images_matches_reference(backend):
    """fit() draws the masks in the core: the same epoch losses in every backend."""
    spec = CASES["dropout"]
    x = np.random.default_rng(0).random((40, 8, 8, 1), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 3, 40)
    want = xvae.Classifier(spec, backend="numpy", seed=4).fit(x, y, epochs=2, batch_size=16, progress=False)
    got = xvae.Classifier(spec, backend=backend, seed=4).fit(x, y, epochs=2, batch_size=16, progress=False)
    np.testing.assert_allclose(got.history["loss"], want.history["loss"], rtol=TRAJ_RTOL)
    # evaluation applies no dropout: predict is deterministic
    clf = xvae.Classifier(spec, backend=backend, seed=4)
    np.testing.assert_array_equal(clf.predict(x[:5]), clf.predict(x[:5]))


def test_fused_steps_with_dropout_equal_single_steps(backend):
    """steps_per_call stacks the dropout masks with the batches: the same numbers."""
    spec = CASES["dropout"]
    x = np.random.default_rng(0).random((48, 64), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 3, 48)
    one = xvae.Classifier(spec, backend=backend, seed=5).fit(x, y, epochs=1, batch_size=8, progress=False)
    fused = xvae.Classifier(spec, backend=backend, seed=5).fit(x, y, epochs=1, batch_size=8, progress=False,
                                                               steps_per_call=3)
    np.testing.assert_allclose(fused.history["loss"], one.history["loss"], rtol=1e-5)


EXTREME = np.array([0.0, 1e-8, -1e-4, 0.05, -0.0999, 0.1, 0.1001, -0.5, 3.0, -30.0, 88.0, 200.0, -1e4],
                   np.float32)


@pytest.mark.parametrize("likelihood", ["continuous_bernoulli", "gaussian"])
def test_likelihoods_at_extreme_outputs(backend, likelihood):
    """Decoder outputs pinned to extreme values (z = 0, output = bias): per-pixel loss and
    its gradient vs the float64 reference, finite everywhere, η = 0 and both sides of the
    continuous Bernoulli's Taylor cut included."""
    kwargs = {"sigma": "learned_per_output"} if likelihood == "gaussian" else {}
    spec = xvae.VAESpec(encoder=xvae.EncoderSpec(len(EXTREME), 1),
                        decoder=xvae.DecoderSpec(1, len(EXTREME), likelihood=likelihood, **kwargs))
    w = {k: np.zeros(s, np.float32) for k, s in weight_shapes(spec).items()}
    w["decoder.output.bias"] = EXTREME.copy()
    if likelihood == "gaussian":
        w["decoder.log_sigma"] = np.linspace(-3, 3, len(EXTREME)).astype(np.float32)
    x = np.linspace(0, 1, len(EXTREME)).astype(np.float32)[None]
    b = {"x": x, "noise": np.zeros((1, 1), np.float32), "mask": np.ones(1, np.float32), "beta": np.float32(1)}
    want_m, want_g = program("numpy", spec, w=w).loss_and_grads(b)
    got_m, got_g = program(backend, spec, w=w).loss_and_grads(b)
    assert all(np.isfinite(v).all() for v in got_g.values()), f"{backend}: non-finite gradient"
    # a sum of 13 float32 terms up to 1e4 (Gaussian: 0.5 (1e4 e^-3)^2 ~ 1e6): float32 relative rounding
    assert got_m["reconstruction"] == pytest.approx(want_m["reconstruction"], rel=1e-6, abs=1e-5)
    for name in ("decoder.output.bias", "decoder.log_sigma"):
        if name in want_g:
            # element-wise: each pixel's gradient is one float32 expression of one value
            np.testing.assert_allclose(got_g[name], want_g[name], rtol=2e-6, atol=1e-6, err_msg=f"{backend} {name}")

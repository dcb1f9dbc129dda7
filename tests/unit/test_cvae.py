"""The conditional VAE (issue 12, item 3) on the float64 reference: the spec, where the
condition joins the towers, hand-written gradients, the public API's labels and its errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import xvae
from xvae._reference import ReferenceProgram
from xvae.layers import Conv2D, Conv2DTranspose, Dense, Flatten, Reshape
from xvae.losses import loss_for, objective_for
from xvae.naming import condition_site, towers, weight_shapes

FLAT = xvae.VAESpec(input_dim=12, hidden=(7,), latents=3, conditions=4)
CONV = xvae.VAESpec(
    encoder=xvae.EncoderSpec(input_shape=(6, 6, 1), latents=3,
                             layers=[Conv2D(2, 3, stride=2, activation="relu"), Flatten()]),
    decoder=xvae.DecoderSpec(latents=3, output_shape=(6, 6, 1),
                             layers=[Dense(18, "relu"), Reshape((3, 3, 2)), Conv2DTranspose(1, 3, stride=2)]),
    conditions=4)
RNG = np.random.default_rng(0)
X = (RNG.random((30, 12)) < 0.4).astype(np.float32)
Y = RNG.integers(0, 4, 30)


def test_spec_field_round_trip_and_describe():
    assert xvae.spec_from_json(FLAT.to_json()) == FLAT and xvae.spec_from_json(CONV.to_json()) == CONV
    assert FLAT.to_dict()["conditions"] == 4
    plain = xvae.VAESpec(input_dim=12, hidden=(7,), latents=3)
    assert "conditions" not in plain.to_dict() and plain.conditions == 0  # old checkpoints' spec JSON unchanged
    assert "conditions: 4 classes, one-hot, concatenated to x and to z" in FLAT.describe()
    assert "concatenated to the encoder trunk's output and to z" in CONV.describe()
    for bad in (-1, 1.5, "3", True, None, np.timedelta64(2)):
        with pytest.raises(xvae.SpecError, match="conditions"):
            xvae.VAESpec(input_dim=12, hidden=(7,), latents=3, conditions=bad)


def test_where_the_condition_joins():
    """Flat trunks read concat(x, y); image trunks' heads read concat(trunk(x), y); the
    decoder reads concat(z, y). The condition's weights are the last C kernel rows."""
    assert condition_site(FLAT) == "input" and condition_site(CONV) == "trunk"
    assert condition_site(dataclasses.replace(FLAT, conditions=0)) is None
    shapes = weight_shapes(FLAT)
    assert shapes["encoder.layers.0.kernel"] == (12 + 4, 7) and shapes["decoder.layers.0.kernel"] == (3 + 4, 7)
    shapes = weight_shapes(CONV)
    assert shapes["encoder.layers.0.kernel"] == (3, 3, 1, 2)  # the conv trunk is untouched
    assert shapes["encoder.mean.kernel"] == (18 + 4, 3) and shapes["decoder.layers.0.kernel"] == (3 + 4, 18)
    assert [p.input_shape for p in towers(CONV)["heads"]] == [(22,), (22,)]
    # the decoder must take (latents + C,): a decoder that reshapes z itself cannot
    with pytest.raises(xvae.SpecError, match="conditions=2: the towers cannot take"):
        xvae.VAESpec(encoder=xvae.EncoderSpec(input_dim=4, latents=4),
                     decoder=xvae.DecoderSpec(latents=4, output_shape=(2, 2, 1), layers=[Reshape((2, 2, 1))]),
                     conditions=2)


def _fd_check(spec, loss, noise_shape, rng):
    prog = ReferenceProgram(spec, None, np.float64, loss)
    # zero biases put relu's kink at every all-zero patch (a central difference straddles it): jitter them
    prog.set_state({k: v + rng.normal(0, 0.05, v.shape).astype(np.float32)
                    for k, v in xvae.init.initialize(spec, rng).items()})
    n = 5
    b = {"x": (rng.random((n, spec.input_dim)) < 0.4).astype(np.float32),
         "y": np.eye(spec.conditions, dtype=np.float32)[rng.integers(0, spec.conditions, n)],
         "noise": rng.standard_normal((n, *noise_shape)).astype(np.float32),
         "mask": np.array([1, 1, 1, 1, 0], np.float32), "beta": np.float32(0.7)}
    _, grads = prog._loss_and_grads(b)
    base = {k: v.copy() for k, v in prog.weights.items()}
    for name, g in grads.items():
        # the condition's rows of the kernels that read y, and one ordinary entry
        for index in {np.unravel_index(np.argmax(np.abs(g)), g.shape), tuple(s - 1 for s in g.shape)}:
            values = []
            for step in (1e-6, -1e-6):
                w = {k: v.copy() for k, v in base.items()}
                w[name][index] += step
                prog.weights = w
                values.append(prog._loss_and_grads(b, need_grads=False)[0]["loss"])
            prog.weights = base
            fd = (values[0] - values[1]) / 2e-6
            assert g[index] == pytest.approx(fd, rel=1e-5, abs=1e-8), f"{name}{index}"  # float64 central difference


@pytest.mark.parametrize("spec", [FLAT, CONV], ids=["flat", "conv"])
def test_reference_gradients_are_the_derivative(spec):
    """The hand-written float64 backprop (y's columns sliced off dz and dh) against central differences."""
    _fd_check(spec, loss_for(spec), (spec.latents,), np.random.default_rng(1))
    _fd_check(spec, objective_for(spec, "iwae", 3, 0.0), (3, spec.latents), np.random.default_rng(2))


def test_the_condition_changes_the_decoder():
    vae = xvae.VAE(FLAT, backend="numpy", seed=0)
    z = np.zeros((4, 3), np.float32)
    out = vae.decode(z, np.arange(4))
    assert len({row.tobytes() for row in out}) == 4  # one image per class from the same z
    np.testing.assert_array_equal(vae.sample(5, seed=3, y=2), vae.sample(5, seed=3, y=[2] * 5))
    assert vae.sample(5, y=np.arange(5) % 4).shape == (5, 12)


def test_fit_and_every_method_take_labels():
    vae = xvae.VAE(FLAT, backend="numpy", seed=0)
    hist = vae.fit(X, Y, epochs=2, batch_size=8, progress=False, validation_data=(X[:6], Y[:6]))
    assert hist.history["loss"][1] < hist.history["loss"][0] and "val_loss" in hist.history
    assert len(hist.vectors["kl_per_latent"][-1]) == 3
    mean, logvar = vae.encode(X, Y)
    # chunked with its labels; float64 to 1e-12, not bit for bit: BLAS picks other kernels (and
    # summation orders) for a 7-row block than for a padded 1024-row one, depending on the CPU
    np.testing.assert_allclose(vae.encode(X, Y, batch_size=7)[0], mean, rtol=1e-12, atol=1e-15)
    assert vae.reconstruct(X, Y).shape == X.shape
    assert set(vae.evaluate(X, Y)) == {"loss", "reconstruction", "kl"}
    ll = vae.log_likelihood(X, y=Y, k=20)
    np.testing.assert_allclose(vae.log_likelihood(X, y=Y, k=20, batch_size=7), ll, rtol=1e-12)
    assert np.all(ll > -vae.evaluate(X, Y, n_samples=50)["loss"] - 1.0)  # a bound at least as tight, roughly
    assert 0 <= vae.active_units(X, y=Y) <= 3
    assert vae.kl_per_latent(X, y=Y).shape == (3,)
    # labels as integral floats are class ids too
    np.testing.assert_array_equal(vae.encode(X, Y.astype(np.float64))[0], mean)


def test_save_load_and_to_keep_the_spec_and_weights(tmp_path):
    vae = xvae.VAE(CONV, backend="numpy", seed=0)
    vae.fit(RNG.random((10, 36)).astype(np.float32), Y[:10], epochs=1, batch_size=4, progress=False)
    vae.save(tmp_path / "m.xvae")
    meta = json.loads((tmp_path / "m.xvae" / "xvae.json").read_text())
    assert meta["spec"]["conditions"] == 4
    back = xvae.load(tmp_path / "m.xvae")
    assert back.spec == CONV
    w, w2 = vae.get_weights(), back.get_weights()
    assert all(np.array_equal(w[k], w2[k]) for k in w)


MISSING = [
    ("fit", lambda m: m.fit(X, epochs=1, progress=False)),
    ("encode", lambda m: m.encode(X)),
    ("decode", lambda m: m.decode(np.zeros((2, 3)))),
    ("reconstruct", lambda m: m.reconstruct(X)),
    ("sample", lambda m: m.sample(3)),
    ("evaluate", lambda m: m.evaluate(X)),
    ("log_likelihood", lambda m: m.log_likelihood(X, k=2)),
    ("active_units", lambda m: m.active_units(X)),
]


@pytest.mark.parametrize("call", [c for _, c in MISSING], ids=[n for n, _ in MISSING])
def test_a_cvae_without_labels_says_so(call):
    vae = xvae.VAE(FLAT, backend="numpy", seed=0)
    with pytest.raises(xvae.ConfigError, match=r"conditional VAE \(conditions=4\) needs class labels: pass y="):
        call(vae)
    assert vae.step == 0


def test_a_cvae_validates_on_labelled_data():
    vae = xvae.VAE(FLAT, backend="numpy", seed=0)
    with pytest.raises(xvae.ConfigError, match=r"pass validation_data=\(x_val, y_val\)"):
        vae.fit(X, Y, epochs=1, batch_size=8, progress=False, validation_data=X[:4])


@pytest.mark.parametrize("call", [
    lambda m: m.encode(X, Y), lambda m: m.decode(np.zeros((2, 2)), [0, 1]), lambda m: m.sample(2, y=1),
    lambda m: m.log_likelihood(X, y=Y, k=2), lambda m: m.reconstruct(X, Y)], ids=["encode", "decode", "sample",
                                                                                  "log_likelihood", "reconstruct"])
def test_a_plain_vae_with_labels_says_so(call):
    vae = xvae.VAE(xvae.VAESpec(input_dim=12, hidden=(7,), latents=2), backend="numpy", seed=0)
    # fit, evaluate and log_likelihood share fit's message ("drop the y argument")
    with pytest.raises(xvae.ConfigError, match="y= was given, but this VAE has no conditions|drop the y argument"):
        call(vae)
    with pytest.raises(xvae.ConfigError, match="A VAE trains and validates on x alone: drop the y argument"):
        vae.fit(X, Y, epochs=1, progress=False)


BAD_LABELS = [
    ("above", np.full(30, 4), r"class ids in 0\.\.3 \(the spec's conditions=4\)\. Received 4"),
    ("negative", np.r_[Y[:-1], -1], r"Received -1"),
    ("fraction", np.r_[Y[:-1], 1.5].astype(np.float64), r"non-integer values such as 1\.5"),
    ("nan", np.r_[Y[:-1], np.nan], "NaN or infinite"),
    ("length", Y[:-1], r"shape \(30,\).*Received shape \(29,\)"),
    ("one-hot", np.eye(4)[Y], r"One-hot labels\? Pass y\.argmax\(axis=1\)"),
    ("bool", Y > 1, "not booleans"),
    ("strings", np.array(["a"] * 30), "numeric array"),
]


@pytest.mark.parametrize("labels,message", [(b, m) for _, b, m in BAD_LABELS], ids=[n for n, _, _ in BAD_LABELS])
def test_bad_labels_train_and_write_nothing(tmp_path, labels, message):
    vae = xvae.VAE(FLAT, backend="numpy", seed=0)
    before = vae.get_weights()
    with pytest.raises(xvae.DataError, match=message):
        vae.fit(X, labels, epochs=1, progress=False, checkpoint_dir=tmp_path / "ckpt")
    assert vae.step == 0 and not (tmp_path / "ckpt").exists()
    assert all(np.array_equal(before[k], v) for k, v in vae.get_weights().items())
    with pytest.raises(xvae.DataError, match=message):
        vae.encode(X, labels)
    with pytest.raises(xvae.DataError, match="validation_data y"):
        vae.fit(X, Y, epochs=1, batch_size=8, progress=False, validation_data=(X, labels))

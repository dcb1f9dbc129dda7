"""The IWAE training objective (`fit(loss="iwae", k=...)`, `xvae.losses.IWAEBound`) on the
float64 reference: its hand-written gradient, its k = 1 relation to the ELBO step, the noise
draw order, and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

import xvae
from xvae import _training
from xvae.backend import CompileOptions
from xvae.losses import IWAEBound, kl_divergence, loss_for


def _spec(likelihood: str = "bernoulli", **dec) -> xvae.VAESpec:
    return xvae.VAESpec(encoder=xvae.EncoderSpec(input_dim=6, hidden=(5,), latents=2, activation="tanh"),
                        decoder=xvae.DecoderSpec(latents=2, hidden=(4,), output_dim=6, likelihood=likelihood,
                                                 activation="tanh", **dec))


def _program(spec, loss, w):
    prog = xvae.backends.get("numpy").compile(spec, loss, None, CompileOptions())
    prog.set_state(w)
    return prog


def _setup(spec, k, seed=0):
    rng = np.random.default_rng(seed)
    w = {n: (v + rng.normal(0, 0.1, v.shape)).astype(np.float32) for n, v in xvae.init.initialize(spec, rng).items()}
    batch = {"x": rng.random((4, 6)).astype(np.float32), "noise": rng.standard_normal((4, k, 2)).astype(np.float32),
             "mask": np.array([1, 1, 1, 0], np.float32), "beta": np.float32(0.7)}
    return w, batch


@pytest.mark.parametrize(("likelihood", "dec"), [("bernoulli", {}), ("gaussian", {"sigma": "learned_per_output"}),
                                                 ("continuous_bernoulli", {})])
def test_reference_gradient_matches_finite_differences(likelihood: str, dec: dict) -> None:
    spec = _spec(likelihood, **dec)
    w, batch = _setup(spec, k=3)
    prog = _program(spec, IWAEBound(likelihood, 3), w)
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
            fd = (losses[0] - losses[1]) / 2e-6
            # central differences in float64: truncation ~1e-12, rounding ~1e-10 / 1e-6
            assert grads[name].ravel()[i] == pytest.approx(fd, rel=1e-5, abs=1e-8), (name, i)
        prog.weights = w64


def test_k1_is_the_elbo_step_with_the_kl_estimated_from_the_same_sample() -> None:
    spec = _spec()
    w, batch = _setup(spec, k=1)
    elbo_batch = {**batch, "noise": batch["noise"][:, 0]}
    iwae_m, iwae_g = _program(spec, IWAEBound("bernoulli", 1), w)._loss_and_grads(batch)
    elbo_m, elbo_g = _program(spec, loss_for(spec), w)._loss_and_grads(elbo_batch)
    # the same sample: the same reconstruction, the same analytic KL diagnostic ...
    assert iwae_m["reconstruction"] == pytest.approx(elbo_m["reconstruction"], rel=1e-12)
    assert iwae_m["kl"] == pytest.approx(elbo_m["kl"], rel=1e-12)
    # ... and the decoder sees only the reconstruction: identical decoder gradients
    for name in elbo_g:
        if name.startswith("decoder."):
            np.testing.assert_allclose(iwae_g[name], elbo_g[name], rtol=1e-10, atol=1e-14)
    # the loss differs from the ELBO by beta (one-sample KL - analytic KL), computed here
    prog = _program(spec, loss_for(spec), w)
    mean, logvar = prog._encode(batch["x"].astype(np.float64))
    eps = batch["noise"][:, 0].astype(np.float64)
    z = mean + np.exp(0.5 * logvar) * eps
    kl_one_sample = 0.5 * np.sum(z * z - eps * eps - logvar, axis=1)  # log q(z|x) - log p(z)
    mask = batch["mask"]
    gap = np.sum(mask * (kl_one_sample - kl_divergence(mean, logvar))) / mask.sum()
    assert iwae_m["loss"] == pytest.approx(elbo_m["loss"] + float(np.float32(0.7)) * gap, rel=1e-12)


def test_more_samples_tighten_the_bound_in_expectation() -> None:
    spec = _spec()
    w, batch = _setup(spec, k=1)
    rng = np.random.default_rng(5)
    means = {}
    for k in (1, 8):
        prog = _program(spec, IWAEBound("bernoulli", k), w)
        means[k] = np.mean([prog.eval_step({**batch, "beta": np.float32(1.0),
                                            "noise": rng.standard_normal((4, k, 2)).astype(np.float32)})["loss"]
                            for _ in range(200)])
    assert means[8] < means[1]


def test_noise_of_k_samples_extends_the_draw_order() -> None:
    x = np.zeros((5, 3), np.float32)
    plain = _training.draw_epoch(x, None, seed=1, epoch=1, shuffle=True, binarize=None, latents=4)
    one = _training.draw_epoch(x, None, seed=1, epoch=1, shuffle=True, binarize=None, latents=(1, 4))
    three = _training.draw_epoch(x, None, seed=1, epoch=1, shuffle=True, binarize=None, latents=(3, 4))
    assert one.noise.shape == (5, 1, 4) and three.noise.shape == (5, 3, 4)
    np.testing.assert_array_equal(one.noise[:, 0], plain.noise)  # k = 1: the ELBO's noise
    # keyed: sample j's latent l of an example is its element j * latents + l, so sample 0 of
    # the k samples is the ELBO's noise of the same example, and the others extend it
    np.testing.assert_array_equal(three.noise[:, 0], plain.noise)
    assert not np.array_equal(three.noise[:, 1], three.noise[:, 0])


def test_fit_trains_the_bound_and_evaluate_stays_the_elbo() -> None:
    spec = _spec()
    x = np.random.default_rng(0).random((20, 6)).astype(np.float32)
    vae = xvae.VAE(spec, backend="numpy", seed=0)
    hist = vae.fit(x, epochs=15, batch_size=8, loss="iwae", k=5, progress=False, optimizer=xvae.optim.Adam(1e-2))
    assert np.mean(hist.history["loss"][-3:]) < np.mean(hist.history["loss"][:3]) - 0.1
    twin = xvae.VAE(spec, backend="numpy")
    twin.set_weights(vae.get_weights())
    assert vae.evaluate(x) == twin.evaluate(x)  # an ELBO program, whatever fit trained
    # fit() without loss= continues the IWAE objective; loss="elbo" switches back
    assert isinstance(vae._compiled_loss, IWAEBound) and vae._compiled_loss.k == 5
    vae.fit(x, epochs=1, batch_size=8, progress=False)
    assert vae._compiled_loss == IWAEBound("bernoulli", 5)
    vae.fit(x, epochs=1, batch_size=8, progress=False, loss="elbo")
    assert vae._compiled_loss == loss_for(spec)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"loss": "iwae", "k": 0}, "k"), ({"loss": "iwae", "k": 2.0}, "k"), ({"loss": "iwae", "k": True}, "k"),
    ({"loss": "kl"}, "loss"), ({"loss": "elbo", "k": 3}, "k"), ({"k": "5"}, "k")])
def test_bad_objective_arguments_train_nothing(kwargs: dict, name: str) -> None:
    vae = xvae.VAE(_spec(), backend="numpy", seed=0)
    before = vae.get_weights()
    with pytest.raises(xvae.ConfigError, match=name):
        vae.fit(np.zeros((4, 6), np.float32), epochs=1, progress=False, **kwargs)
    assert vae.step == 0 and vae._objective is None
    for n, v in vae.get_weights().items():
        np.testing.assert_array_equal(v, before[n])


def test_a_failed_fit_keeps_the_previous_objective() -> None:
    vae = xvae.VAE(_spec(), backend="numpy", seed=0)
    with pytest.raises(xvae.DataError):
        vae.fit(np.zeros((4, 7), np.float32), epochs=1, progress=False, loss="iwae", k=3)
    assert vae._objective is None and vae._compiled_loss == loss_for(vae.spec)


def _dropout_setup(k: int, seed: int = 0):
    from xvae import layers as L
    from xvae.layers.towers import draw_dropout
    from xvae.naming import towers

    spec = xvae.VAESpec(
        encoder=xvae.EncoderSpec(input_shape=(6,), latents=2, layers=[L.Dense(5, "tanh"), L.Dropout(0.4)]),
        decoder=xvae.DecoderSpec(latents=2, output_shape=(6,), layers=[L.Dense(4, "tanh"), L.Dropout(0.3), L.Dense(6)]))
    w, batch = _setup(spec, k, seed)
    rng = np.random.default_rng(seed + 1)
    batch["dropout"] = draw_dropout(lambda units: rng.random((4, units), dtype=np.float32), towers(spec))
    return spec, w, batch


def test_iwae_with_dropout_shares_each_examples_mask_over_its_k_samples() -> None:
    """Dropout + IWAE: the mask is drawn per example (as for the ELBO); the encoder runs once
    per example with it, and the decoder scores all k samples with it. So k copies of one
    noise sample give exactly the k = 1 bound (per-sample masks would not), and the float64
    gradient is the derivative (central differences)."""
    spec, w, batch = _dropout_setup(k=1)
    one = _program(spec, IWAEBound("bernoulli", 1), w).loss_and_grads(batch)[0]["loss"]
    copies = {**batch, "noise": np.repeat(batch["noise"], 5, axis=1)}
    same = _program(spec, IWAEBound("bernoulli", 5), w).loss_and_grads(copies)[0]["loss"]
    assert same == pytest.approx(one, rel=1e-12)
    no_mask = {k: v for k, v in batch.items() if k != "dropout"}
    assert _program(spec, IWAEBound("bernoulli", 1), w).loss_and_grads(no_mask)[0]["loss"] != pytest.approx(one)

    spec, w, batch = _dropout_setup(k=3, seed=4)
    loss = IWAEBound("bernoulli", 3)
    prog = xvae.backends.get("numpy").compile(spec, loss, None, CompileOptions())
    prog.set_state(w)
    _, grads = prog._loss_and_grads(batch)
    base = {k: v.copy() for k, v in prog.weights.items()}
    for name, g in grads.items():
        index = np.unravel_index(np.argmax(np.abs(g)), g.shape)
        values = []
        for step in (1e-6, -1e-6):
            prog.weights = {k: v.copy() for k, v in base.items()}
            prog.weights[name][index] += step
            values.append(prog._loss_and_grads(batch, need_grads=False)[0]["loss"])
        prog.weights = base
        assert g[index] == pytest.approx((values[0] - values[1]) / 2e-6, rel=1e-6), name


def test_iwae_fit_with_dropout_trains() -> None:
    spec, _, _ = _dropout_setup(k=1)
    x = np.random.default_rng(0).random((24, 6)).astype(np.float32)
    vae = xvae.VAE(spec, backend="numpy", seed=0)
    hist = vae.fit(x, epochs=3, batch_size=8, loss="iwae", k=4, progress=False, optimizer=xvae.optim.Adam(1e-2))
    assert hist.history["loss"][-1] < hist.history["loss"][0]


def test_validation_of_an_iwae_fit_reports_the_elbo_and_the_bound() -> None:
    spec = _spec()
    x = np.random.default_rng(0).random((20, 6)).astype(np.float32)
    vae = xvae.VAE(spec, backend="numpy", seed=0)
    hist = vae.fit(x, epochs=2, batch_size=8, loss="iwae", k=4, progress=False, validation_data=x[:6])
    twin = xvae.VAE(spec, backend="numpy")
    twin.set_weights(vae.get_weights())
    # val_loss: the negative ELBO of the epoch's final weights, noise keyed by seed 0, epoch 0, as evaluate(seed=0)
    assert hist.history["val_loss"][-1] == pytest.approx(twin.evaluate(x[:6])["loss"], rel=1e-12)
    # val_objective: the 4-sample bound, tighter than the ELBO in expectation
    assert hist.history["val_objective"][-1] < hist.history["val_loss"][-1] + 1.0
    assert hist.history["val_objective"][-1] != hist.history["val_loss"][-1]


def test_a_diverging_iwae_fit_rolls_back_to_the_elbo_program() -> None:
    """Issue 16's rollback also restores the objective: the model evaluates and trains as before."""
    spec = _spec()
    x = np.random.default_rng(0).random((16, 6)).astype(np.float32)
    vae = xvae.VAE(spec, backend="numpy", seed=0)
    before = vae.get_weights()
    with pytest.raises(xvae.XVAEError):
        vae.fit(x, epochs=3, batch_size=8, loss="iwae", k=3, optimizer=xvae.optim.SGD(1e6), progress=False)
    assert vae._compiled_loss == loss_for(spec) and vae._objective is None and vae.step == 0
    assert all(np.array_equal(v, before[n]) for n, v in vae.get_weights().items())
    vae.fit(x, epochs=1, batch_size=8, progress=False)  # trains the ELBO again


def test_checkpoints_keep_the_objective_and_resume_continues_it(tmp_path) -> None:
    """The objective (loss, k, free_bits) is saved: load + fit(resume=True) without loss=
    continues the IWAE bound, giving the straight run's numbers; checkpoints without the
    field (every older one) load with the spec's ELBO; a corrupted field is a CheckpointError."""
    import json

    spec = _spec()
    x = np.random.default_rng(0).random((20, 6)).astype(np.float32)
    straight = xvae.VAE(spec, backend="numpy", seed=0).fit(x, epochs=3, batch_size=8, loss="iwae", k=3,
                                                            progress=False).history["loss"]
    first = xvae.VAE(spec, backend="numpy", seed=0)
    first.fit(x, epochs=1, batch_size=8, loss="iwae", k=3, progress=False)
    first.save(tmp_path / "iwae.xvae")
    assert json.loads((tmp_path / "iwae.xvae" / "xvae.json").read_text())["objective"] == {"loss": "iwae", "k": 3}
    resumed = xvae.load(tmp_path / "iwae.xvae")
    assert resumed._objective == IWAEBound("bernoulli", 3)
    rest = resumed.fit(x, epochs=3, batch_size=8, resume=True, progress=False).history["loss"]
    # the checkpoint holds float32 weights and moments; the reference trains in float64, so
    # resuming from their float32 rounding moves the losses by ~1e-8 relative (measured 5e-9)
    np.testing.assert_allclose(rest, straight[1:], rtol=1e-6)
    elbo = xvae.load(tmp_path / "iwae.xvae").fit(x, epochs=3, batch_size=8, resume=True, loss="elbo",
                                                 progress=False).history["loss"]
    assert np.min(np.abs(np.subtract(elbo, straight[1:]))) > 1e-3  # another objective would show

    bits = xvae.VAE(spec, backend="numpy", seed=0)
    bits.fit(x, epochs=1, batch_size=8, free_bits=0.1, progress=False)
    bits.save(tmp_path / "bits.xvae")
    assert xvae.load(tmp_path / "bits.xvae")._objective == xvae.losses.objective_for(spec, "elbo", 1, 0.1)

    plain = xvae.VAE(spec, backend="numpy", seed=0)
    plain.fit(x, epochs=1, batch_size=8, progress=False)
    plain.save(tmp_path / "plain.xvae")
    meta = json.loads((tmp_path / "plain.xvae" / "xvae.json").read_text())
    assert "objective" not in meta  # the plain ELBO: the file is what it always was
    assert xvae.load(tmp_path / "plain.xvae")._objective is None

    for bad in ({"loss": "iwae", "k": 0}, {"loss": "gan"}, ["iwae"], {"loss": "elbo", "beta": 2}):
        meta["objective"] = bad
        (tmp_path / "plain.xvae" / "xvae.json").write_text(json.dumps(meta))
        with pytest.raises(xvae.CheckpointError, match="invalid training objective"):
            xvae.load(tmp_path / "plain.xvae")

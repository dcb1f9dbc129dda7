"""fit() through every backend: same draws, same numbers; resume equals straight training;
learning rates and beta per step, with the optimizer's state kept across changes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import xvae
from xvae.schedules import CosineDecay, LinearWarmup

from cases import SPECS, TRAJ_RTOL, assert_close_outputs

X = np.random.default_rng(0).random((70, 32), dtype=np.float32)
Y10 = np.random.default_rng(1).integers(0, 10, 70)


#: AdamW with a per-step warm-up + cosine rate and clipping, and a KL warm-up over steps:
#: 70 rows / batch 16 = 5 steps per epoch, so both schedules change within and across epochs.
SCHEDULED = {"optimizer": xvae.optim.AdamW(CosineDecay(peak=1e-2, decay_steps=15, warmup_steps=3), clip_norm=1.0),
             "beta": LinearWarmup(peak=1.0, warmup_steps=8)}


@pytest.mark.parametrize("schedules", [False, True], ids=["adam", "adamw-cosine-clip-beta-warmup"])
@pytest.mark.parametrize("binarize", [None, "dynamic"])
def test_fit_matches_reference(backend, binarize, schedules):
    spec = SPECS["vae-h1-z20"]
    kw = dict(epochs=3, batch_size=16, binarize=binarize, progress=False, **(SCHEDULED if schedules else {}))
    want = xvae.VAE(spec, backend="numpy", seed=4).fit(X, **kw)
    got = xvae.VAE(spec, backend=backend, seed=4).fit(X, **kw, steps_per_call=2 if schedules else 1)
    for name in ("loss", "reconstruction", "kl"):
        np.testing.assert_allclose(got.history[name], want.history[name], rtol=TRAJ_RTOL, err_msg=name)
    assert got.history["lr"] == want.history["lr"]  # the core's float32 rates, identical


@pytest.mark.parametrize("k", [4, 5])
def test_steps_per_call_changes_nothing(backend, k):
    """70 rows / batch 16 = 4 full batches + a padded tail; K=4 fuses them, K=5 cannot."""
    spec = SPECS["clf-h1-o10"]
    one = xvae.Classifier(spec, backend=backend, seed=2).fit(X, Y10, epochs=2, batch_size=16, progress=False)
    fused = xvae.Classifier(spec, backend=backend, seed=2).fit(X, Y10, epochs=2, batch_size=16,
                                                               progress=False, steps_per_call=k)
    np.testing.assert_allclose(fused.history["loss"], one.history["loss"], rtol=1e-5)


@pytest.mark.parametrize("schedules", [False, True], ids=["adam", "adamw-cosine-clip-beta-warmup"])
def test_resume_equals_straight(backend, tmp_path, schedules):
    """A checkpoint keeps the schedules' position (the step): resuming continues them exactly."""
    spec = SPECS["vae-h1-z20"]
    kw = dict(batch_size=16, binarize="dynamic", progress=False)
    opt = SCHEDULED["optimizer"] if schedules else None
    beta = SCHEDULED["beta"] if schedules else None
    straight = xvae.VAE(spec, backend=backend, seed=9)
    h = straight.fit(X, epochs=2, optimizer=opt, beta=beta, **kw)
    first = xvae.VAE(spec, backend=backend, seed=9)
    first.fit(X, epochs=1, optimizer=opt, beta=beta, **kw)
    first.save(tmp_path / "e1.xvae")
    resumed = xvae.load(tmp_path / "e1.xvae")
    assert resumed.backend == backend and resumed.optimizer == (opt or xvae.optim.Adam(1e-3))
    h2 = resumed.fit(X, epochs=2, beta=beta, resume=True, **kw)
    assert h2.history["lr"] == h.history["lr"][1:]
    # Same backend, same arrays, same operations: float32 rounding at most (bit-exact on CPU in practice).
    assert h2.history["loss"][0] == pytest.approx(h.history["loss"][1], rel=1e-6)
    for name, w in straight.get_weights().items():
        np.testing.assert_allclose(resumed.get_weights()[name], w, rtol=1e-6, atol=1e-7, err_msg=name)


def test_public_api(backend):
    vae = xvae.VAE(SPECS["vae-h1-z20"], backend=backend, seed=0)
    mean, logvar = vae.encode(X)
    assert mean.shape == logvar.shape == (70, 20)
    assert vae.decode(mean).shape == (70, 32) and vae.decode(mean).min() >= 0
    # chunked calls may round differently (BLAS blocks by row count): float32 tolerance
    assert_close_outputs(vae.decode(mean, logits=True, batch_size=16), vae.decode(mean, logits=True), "chunked")
    np.testing.assert_array_equal(vae.reconstruct(X), vae.decode(mean))
    s = vae.sample(5, seed=1, binary=True)
    assert s.shape == (5, 32) and set(np.unique(s)) <= {0.0, 1.0}
    ev = vae.evaluate(X, seed=0, n_samples=2)
    assert set(ev) == {"loss", "reconstruction", "kl"} and ev["loss"] > 0
    ref = xvae.VAE(SPECS["vae-h1-z20"], backend="numpy", seed=0).evaluate(X, seed=0, n_samples=2)
    assert ev["loss"] == pytest.approx(ref["loss"], rel=1e-5)
    clf = xvae.Classifier(SPECS["clf-h1-o10"], backend=backend, seed=0)
    p = clf.predict(X)
    assert p.shape == (70, 10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert set(clf.evaluate(X, Y10)) == {"loss", "accuracy"}


def test_construction_error_is_immediate():
    with pytest.raises(xvae.BackendNotFoundError, match="Known backends"):
        xvae.VAE(SPECS["vae-h0-z2"], backend="caffe")


def test_lr_change_keeps_state_and_recompiles_nothing(backend):
    """Issue 10.4: fit(Adam(1e-3)) then fit(Adam(5e-4)) keeps Adam's moments and step (8, not 4)."""
    spec = SPECS["vae-h1-z20"]
    kw = dict(epochs=1, batch_size=16, progress=False)  # 5 steps per epoch
    vae = xvae.VAE(spec, backend=backend, seed=5)
    ref = xvae.VAE(spec, backend="numpy", seed=5)
    for model in (vae, ref):
        model.fit(X, optimizer=xvae.optim.Adam(1e-3), **kw)
    program = vae._program
    for model in (vae, ref):
        h = model.fit(X, optimizer=xvae.optim.Adam(5e-4), **kw)
    assert vae._program is program, "a new learning rate must not recompile"
    assert int(vae.get_optimizer_state()["opt.step"]) == 10 and h.history["lr"] == [np.float32(5e-4)]
    np.testing.assert_allclose(vae.fit(X, **kw).history["loss"], ref.fit(X, **kw).history["loss"], rtol=TRAJ_RTOL)


def test_hyperparameters_of_the_same_kind_keep_the_state(backend):
    """b1, weight decay, clip_norm: a recompile, with the step and moments carried over."""
    spec = SPECS["clf-h1-o10"]
    clf = xvae.Classifier(spec, backend=backend, seed=1)
    clf.fit(X, Y10, epochs=1, batch_size=16, optimizer=xvae.optim.AdamW(1e-3), progress=False)
    before = clf.get_optimizer_state()
    clf._prepare_training(xvae.optim.AdamW(1e-3, b1=0.8, weight_decay=0.2, clip_norm=1.0))
    after = clf.get_optimizer_state()
    assert set(after) == set(before)
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)  # carried bit for bit
    with pytest.warns(UserWarning, match=r"changed kind, from adamw to sgd: its state \(step count 5, "
                                         r"per-weight slots m, v\) starts fresh"):
        clf._prepare_training(xvae.optim.SGD(0.1, momentum=0.9))
    assert int(clf.get_optimizer_state()["opt.step"]) == 0
    clf.fit(X, Y10, epochs=1, batch_size=16, progress=False)
    clf._prepare_training(xvae.optim.SGD(0.1))  # momentum off: same kind, the "u" slot goes
    assert set(clf.get_optimizer_state()) == {"opt.step"} and int(clf.get_optimizer_state()["opt.step"]) == 5


def test_a_callback_changes_the_rate_for_the_next_epoch(backend):
    """model.optimizer = replace(..., lr=...) in on_epoch_end: the next epoch runs at that rate,
    with the optimizer's state kept and nothing recompiled, as the reference does."""

    class Halve(xvae.callbacks.Callback):
        def on_epoch_end(self, model, epoch, logs):
            model.optimizer = dataclasses.replace(model.optimizer, lr=model.optimizer.lr / 2)

    spec = SPECS["vae-h1-z20"]
    kw = dict(epochs=3, batch_size=16, progress=False, optimizer=xvae.optim.Adam(4e-3), callbacks=[Halve()])
    vae = xvae.VAE(spec, backend=backend, seed=6)
    vae.fit(X, epochs=1, batch_size=16, progress=False, optimizer=xvae.optim.Adam(4e-3))
    program = vae._program
    got = vae.fit(X, **kw)
    ref = xvae.VAE(spec, backend="numpy", seed=6)
    ref.fit(X, epochs=1, batch_size=16, progress=False, optimizer=xvae.optim.Adam(4e-3))
    want = ref.fit(X, **kw)
    assert got.history["lr"] == [np.float32(4e-3), np.float32(2e-3), np.float32(1e-3)]
    assert vae._program is program and vae.learning_rate == pytest.approx(5e-4)
    assert int(vae.get_optimizer_state()["opt.step"]) == vae.step == 20
    np.testing.assert_allclose(got.history["loss"], want.history["loss"], rtol=TRAJ_RTOL)


def test_step_counter_is_exact_past_float32(backend):
    """opt.step is an integer: 2**24 + 1 survives set/get and counts on (float32 would stick at 2**24)."""
    spec = SPECS["clf-h0-o1"]
    clf = xvae.Classifier(spec, backend=backend, seed=0)
    clf._prepare_training(xvae.optim.Adam(1e-3))
    w, state = clf._program.get_state()
    clf._program.set_state(w, {**state, "opt.step": np.int64(2**24 + 1)})
    assert int(clf.get_optimizer_state()["opt.step"]) == 2**24 + 1
    clf._program.apply_gradients({k: np.ones_like(v) for k, v in w.items()}, lr=1e-3)
    step = clf.get_optimizer_state()["opt.step"]
    assert step.dtype == np.int64 and int(step) == 2**24 + 2


def test_evaluate_is_the_negative_elbo_whatever_beta(backend):
    """Issue 10.3: with beta=4, evaluate()["loss"] is reconstruction + kl, not reconstruction + 4 kl;
    fit's val_loss is that -ELBO, val_objective the training objective."""
    spec = dataclasses.replace(SPECS["vae-h1-z20"], beta=4.0)
    vae = xvae.VAE(spec, backend=backend, seed=2)
    h = vae.fit(X, epochs=2, batch_size=16, progress=False, validation_data=X[:30])
    ev = vae.evaluate(X[:30])
    assert ev["loss"] == pytest.approx(ev["reconstruction"] + ev["kl"], rel=1e-6)
    assert h.history["val_loss"][-1] == pytest.approx(ev["loss"], rel=1e-5)  # same noise (keyed: seed 0, epoch 0)
    assert h.history["val_objective"][-1] == pytest.approx(ev["reconstruction"] + 4 * ev["kl"], rel=1e-5)
    ref = xvae.VAE(spec, backend="numpy", seed=2)
    ref.fit(X, epochs=2, batch_size=16, progress=False)
    assert ev["loss"] == pytest.approx(ref.evaluate(X[:30])["loss"], rel=TRAJ_RTOL)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_rolls_back_bit_exactly(backend):
    """A diverged fit puts back weights and optimizer state exactly (float32 host copies), and trains on."""
    vae = xvae.VAE(SPECS["vae-h1-z20"], backend=backend, seed=3)
    vae.fit(X, epochs=1, batch_size=16, progress=False)
    weights, opt = vae.get_weights(), vae.get_optimizer_state()
    with pytest.raises(xvae.TrainingDivergedError, match="diverged"):
        vae.fit(X, epochs=2, batch_size=16, optimizer=xvae.optim.SGD(1e8), progress=False)
    for want, got in ((weights, vae.get_weights()), (opt, vae.get_optimizer_state())):
        assert want.keys() == got.keys()
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert (vae.epoch, vae.step, vae.optimizer) == (1, 5, xvae.optim.Adam(1e-3))
    hist = vae.fit(X, epochs=1, batch_size=16, progress=False)
    assert np.isfinite(hist.history["loss"]).all() and np.isfinite(vae.evaluate(X)["loss"])

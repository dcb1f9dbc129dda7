"""ReduceLROnPlateau and LearningRateScheduler (issue 16, item 4), on issue 10's contract: fit reads
`model.optimizer` at the start of every epoch, so a callback that replaces it with another lr
changes the next epoch's rate, with the optimizer's state kept and nothing recompiled."""

from __future__ import annotations

import numpy as np
import pytest

import xvae
from xvae.callbacks import Callback, LearningRateScheduler, ReduceLROnPlateau

X = np.random.default_rng(0).random((32, 6), dtype=np.float32)
SPEC = xvae.VAESpec(input_dim=6, hidden=(8,), latents=2)


def _vae():
    return xvae.VAE(SPEC, backend="numpy", seed=0)


def _by_hand(rates):
    """One fit call per epoch with the given SGD rates: what the callbacks must reproduce."""
    vae, losses = _vae(), []
    for lr in rates:
        losses += vae.fit(X, epochs=1, batch_size=8, optimizer=xvae.optim.SGD(lr), verbose=0).history["loss"]
    return vae, losses


class _Rates(Callback):
    """Records the rate each epoch trained with (read at epoch end: what the epoch used)."""

    def __init__(self):
        self.rates = []

    def on_epoch_end(self, model, epoch, logs):
        self.rates.append(model.optimizer.lr)


def test_reduce_lr_on_plateau_lowers_the_next_epochs_rate():
    seen = _Rates()
    cb = ReduceLROnPlateau("loss", factor=0.5, patience=1, min_delta=1e9, min_lr=0.03)  # never improves
    vae = _vae()
    hist = vae.fit(X, epochs=4, batch_size=8, optimizer=xvae.optim.SGD(0.1), callbacks=[seen, cb], verbose=0)
    # epoch 1 sets the best; 2 has waited `patience`: 0.05 from epoch 3; then 0.03 (min_lr) from epoch 4
    assert seen.rates == [0.1, 0.1, 0.05, 0.03] and vae.optimizer.lr == 0.03
    twin, losses = _by_hand([0.1, 0.1, 0.05, 0.03])
    np.testing.assert_allclose(hist.history["loss"], losses, rtol=1e-12)
    for name, w in twin.get_weights().items():
        np.testing.assert_array_equal(vae.get_weights()[name], w, err_msg=name)


def test_reduce_lr_on_plateau_waits_for_patience_and_cooldown():
    seen = _Rates()
    cb = ReduceLROnPlateau("loss", factor=0.5, patience=2, cooldown=2, min_delta=1e9)
    _vae().fit(X, epochs=7, batch_size=8, optimizer=xvae.optim.SGD(0.08), callbacks=[seen, cb], verbose=0)
    # Keras' counting: reductions after epochs 3 and 6 (2 epochs without improvement; epoch 4
    # cools down, and the last cooldown epoch (5) already counts towards the patience)
    assert seen.rates == [0.08, 0.08, 0.08, 0.04, 0.04, 0.04, 0.02]


def test_learning_rate_scheduler_sets_each_epochs_rate_with_1_based_epochs():
    calls = []

    def schedule(epoch, lr):
        calls.append((epoch, lr))
        return 0.1 / epoch

    seen = _Rates()
    vae = _vae()
    hist = vae.fit(X, epochs=3, batch_size=8, optimizer=xvae.optim.SGD(1.0),
                   callbacks=[LearningRateScheduler(schedule), seen], verbose=0)
    assert calls == [(1, 1.0), (2, 0.1), (3, 0.05)] and seen.rates == [0.1, 0.05, 0.1 / 3]
    _, losses = _by_hand([0.1, 0.05, 0.1 / 3])
    np.testing.assert_allclose(hist.history["loss"], losses, rtol=1e-12)
    vae.fit(X, epochs=4, batch_size=8, resume=True, callbacks=[LearningRateScheduler(schedule)], verbose=0)
    assert calls[-1] == (4, 0.1 / 3)  # epochs count across resumed fits


def test_bad_settings_and_schedules_are_refused():
    for kw, field in (({"factor": 1.0}, "factor"), ({"factor": 0}, "factor"), ({"min_lr": -1}, "min_lr"),
                      ({"patience": -1}, "patience"), ({"cooldown": 1.5}, "cooldown")):
        with pytest.raises(xvae.ConfigError, match=f"ReduceLROnPlateau.{field}"):
            ReduceLROnPlateau(**kw)
    with pytest.raises(xvae.ConfigError, match="must be a function"):
        LearningRateScheduler(0.1)
    vae = _vae()
    vae.fit(X, epochs=1, batch_size=8, verbose=0)
    before = vae.get_weights()
    with pytest.raises(xvae.ConfigError, match=r"returned -1 for epoch 3; it must return a finite number >= 0"):
        vae.fit(X, epochs=2, batch_size=8, verbose=0,
                callbacks=[LearningRateScheduler(lambda epoch, lr: -1 if epoch == 3 else lr)])
    assert vae.epoch == 1 and all(np.array_equal(w, before[k]) for k, w in vae.get_weights().items())


def test_a_reduced_rate_keeps_the_optimizer_state():
    cb = ReduceLROnPlateau("loss", factor=0.5, patience=0, min_delta=1e9)
    vae = _vae()
    vae.fit(X, epochs=1, batch_size=8, optimizer=xvae.optim.Adam(1e-3), verbose=0)
    program = vae._program
    hist = vae.fit(X, epochs=3, batch_size=8, callbacks=[cb], verbose=0)
    assert hist.history["lr"] == [np.float32(1e-3), np.float32(1e-3), np.float32(5e-4)]
    assert vae.optimizer.lr == 2.5e-4 and vae._program is program  # nothing recompiled
    assert int(vae.get_optimizer_state()["opt.step"]) == vae.step == 16  # Adam's step count never restarted

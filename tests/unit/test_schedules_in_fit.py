"""Schedules inside fit (float64 reference backend): per-step lr and beta, history, resume,
and bad schedules refused before anything changes."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

import xvae
from xvae import _training
from xvae.schedules import CosineDecay, ExponentialDecay, LinearWarmup, PiecewiseConstant, Schedule

X = np.random.default_rng(0).random((50, 6), dtype=np.float32)
SPEC = xvae.VAESpec(input_dim=6, hidden=(8,), latents=3)
FIT = dict(batch_size=16, progress=False)  # 4 steps per epoch (the last one padded)


def test_batches_hand_each_step_its_values():
    data = _training.EpochData(X, None, np.zeros((50, 3), np.float32))
    lr = np.arange(7, dtype=np.float32)  # 50 rows / 8: 6 full batches + a tail = 7 steps
    beta = np.linspace(0, 1, 7, dtype=np.float32)
    out = list(_training.batches(data, 8, 3, beta, lr))
    assert [np.asarray(b["lr"]).tolist() for b, _ in out] == [[0, 1, 2], [3, 4, 5], 6]
    np.testing.assert_array_equal(np.concatenate([np.atleast_1d(b["beta"]) for b, _ in out]), beta)


def test_the_rate_of_every_step_follows_the_schedule():
    sched = PiecewiseConstant(boundaries=[3, 6], values=[0.1, 0.01, 0.001])
    vae = xvae.VAE(SPEC, backend="numpy", seed=0)
    seen = []
    h = vae.fit(X, epochs=3, optimizer=xvae.optim.SGD(sched), **FIT)
    # history "lr": the rate of each epoch's last step (steps 3, 7, 11)
    assert h.history["lr"] == [np.float32(0.01), np.float32(0.001), np.float32(0.001)]
    assert vae.learning_rate == pytest.approx(0.001) and vae.step == 12
    # the same run by hand: SGD at schedule(step) from the reference's own equations
    ref = xvae.VAE(SPEC, backend="numpy", seed=0)
    ref._prepare_training(xvae.optim.SGD(0.0))
    prog = ref._program
    for epoch in range(3):
        data = _training.draw_epoch(X, None, seed=ref.seed, epoch=epoch + 1, shuffle=True, binarize=None, latents=3)
        for i, (batch, _) in enumerate(_training.batches(data, 16, 1, 1.0)):
            seen.append(sched(4 * epoch + i))
            prog.train_step({**batch, "lr": np.float32(sched(4 * epoch + i))})
    assert seen[:4] == [0.1, 0.1, 0.1, 0.01]
    for name, w in ref.get_weights().items():
        np.testing.assert_allclose(vae.get_weights()[name], w, rtol=1e-6, atol=1e-7, err_msg=name)


def test_beta_per_step_kl_warmup():
    """beta=LinearWarmup(...) is a function of the step: beta = step / 8 over the first 8 steps."""
    vae = xvae.VAE(SPEC, backend="numpy", seed=1)
    h = vae.fit(X, epochs=2, beta=LinearWarmup(peak=1.0, warmup_steps=8), **FIT)
    # loss = reconstruction + beta * kl per step, so an epoch's mean loss lies between
    # reconstruction + min(beta) kl and reconstruction + max(beta) kl of its 4 steps
    for epoch, betas in ((1, [0, 1 / 8, 2 / 8, 3 / 8]), (2, [4 / 8, 5 / 8, 6 / 8, 7 / 8])):
        loss, rec, kl = (h.history[k][epoch - 1] for k in ("loss", "reconstruction", "kl"))
        assert rec + min(betas) * kl - 1e-9 <= loss <= rec + max(betas) * kl + 1e-9
        assert not loss == pytest.approx(rec + kl)  # not the constant spec.beta = 1
    same = xvae.VAE(SPEC, backend="numpy", seed=1)
    fused = same.fit(X, epochs=2, beta=LinearWarmup(peak=1.0, warmup_steps=8), steps_per_call=3, **FIT)
    np.testing.assert_allclose(fused.history["loss"], h.history["loss"], rtol=1e-12)  # float64: same numbers


def test_resume_continues_the_schedule_exactly(tmp_path):
    opt = xvae.optim.AdamW(CosineDecay(peak=1e-2, decay_steps=12, warmup_steps=2), clip_norm=0.5)
    straight = xvae.VAE(SPEC, backend="numpy", seed=2)
    h = straight.fit(X, epochs=3, optimizer=opt, beta=LinearWarmup(1.0, 6), **FIT)
    first = xvae.VAE(SPEC, backend="numpy", seed=2)
    first.fit(X, epochs=1, optimizer=opt, beta=LinearWarmup(1.0, 6), **FIT)
    first.save(tmp_path / "e1.xvae")
    back = xvae.load(tmp_path / "e1.xvae")
    assert back.optimizer == opt and back.learning_rate == pytest.approx(opt.lr_at(4))
    h2 = back.fit(X, epochs=3, resume=True, beta=LinearWarmup(1.0, 6), **FIT)
    assert h2.history["lr"] == h.history["lr"][1:]
    # the checkpoint holds float32 state (float64 here): float32 rounding, no more
    np.testing.assert_allclose(h2.history["loss"], h.history["loss"][1:], rtol=1e-6)


class _NaNAt(Schedule):
    """A user schedule that breaks at one step."""

    kind = "nan_at"

    def __init__(self, step: int, value: float = float("nan")) -> None:
        self.step, self.value = step, value

    def evaluate(self, steps):
        return np.where(steps == self.step, self.value, 1e-3)

    def __repr__(self) -> str:
        return f"_NaNAt({self.step})"


def _snapshot(model):
    return (model.get_weights(), model.get_optimizer_state(), model.step, model.epoch, model.optimizer,
            model.seed)


def _assert_unchanged(model, before):
    after = _snapshot(model)
    for a, b in zip(before[:2], after[:2]):
        assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)
    assert before[2:] == after[2:]


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"optimizer": xvae.optim.Adam(_NaNAt(9))}, r"Adam.lr is nan at step 9 \(_NaNAt\(9\)\); it must be a finite number >= 0"),
    ({"optimizer": xvae.optim.SGD(_NaNAt(5, -1.0))}, r"SGD.lr is -1.0 at step 5"),
    # 10 ** (step / 10) overflows float32 (3.4e38) at step 386: beyond the first epoch
    ({"optimizer": xvae.optim.Adam(ExponentialDecay(1.0, rate=10.0, decay_steps=10)), "epochs": 200},
     r"Adam.lr is .* at step 386"),
    ({"beta": _NaNAt(6)}, r"beta is nan at step 6"),
])
def test_bad_schedules_are_refused_before_any_work(tmp_path, kwargs, pattern):
    vae = xvae.VAE(SPEC, backend="numpy", seed=3)
    vae.fit(X, epochs=1, optimizer=xvae.optim.Adam(1e-3), **FIT)
    before = _snapshot(vae)
    kw = {"epochs": 3, **FIT, "checkpoint_dir": tmp_path / "ck", **kwargs}
    with pytest.raises(xvae.ConfigError, match=pattern):
        vae.fit(X, **kw)
    _assert_unchanged(vae, before)
    assert not (tmp_path / "ck").exists() or not any((tmp_path / "ck").iterdir())  # nothing written


def test_a_schedule_broken_only_beyond_this_fit_is_fine():
    vae = xvae.VAE(SPEC, backend="numpy", seed=3)
    vae.fit(X, epochs=2, optimizer=xvae.optim.Adam(_NaNAt(8)), **FIT)  # steps 0..7
    with pytest.raises(xvae.ConfigError, match="at step 8"):
        vae.fit(X, epochs=1, **FIT)


def test_a_callback_that_sets_a_bad_rate_is_named():
    class Bad(xvae.callbacks.Callback):
        def on_epoch_end(self, model, epoch, logs):
            model.optimizer = dataclasses.replace(model.optimizer, lr=ExponentialDecay(1.0, 1e300, 1))

    vae = xvae.VAE(SPEC, backend="numpy", seed=3)
    with pytest.raises(xvae.ConfigError, match=r"Adam.lr is inf at step 4"):
        vae.fit(X, epochs=3, callbacks=[Bad()], **FIT)
    assert vae.epoch == 0 and vae.optimizer is None  # issue 16: a failed fit rolls the whole call back


def test_learning_rate_property():
    vae = xvae.VAE(SPEC, backend="numpy", seed=0)
    assert vae.learning_rate is None
    vae.fit(X, epochs=1, optimizer=xvae.optim.Adam(LinearWarmup(1e-3, 8)), **FIT)
    assert vae.learning_rate == pytest.approx(0.5e-3)


def test_an_unregistered_schedule_is_refused_at_save_not_at_load(tmp_path):
    vae = xvae.VAE(SPEC, backend="numpy", seed=0)
    vae.fit(X, epochs=1, optimizer=xvae.optim.Adam(_NaNAt(10**9)), **FIT)  # finite for this fit
    with pytest.raises(xvae.CheckpointError, match=r"would not load back"):
        vae.save(tmp_path / "m.xvae")
    assert not (tmp_path / "m.xvae").exists()


"""The core training loop: draw order, batches, padding, weighted means, resume, fusion."""

from __future__ import annotations

import numpy as np
import pytest

import xvae
from xvae import _training

X = np.random.default_rng(0).random((50, 6), dtype=np.float32)
SPEC = xvae.VAESpec(input_dim=6, hidden=(8,), latents=3)


def test_draws_are_the_contract():
    """Keyed (DESIGN §1, docs/randomness.md): the permutation of (seed, epoch); dynamic
    binarization and noise (n, latents) of each row's ORIGINAL id, in permuted order."""
    from xvae import keyed

    data = _training.draw_epoch(X, None, seed=5, epoch=4, shuffle=True, binarize="dynamic", latents=3)
    order = keyed.permutation(5, 4, 50)
    x = (keyed.uniform(5, 4, keyed.BINARIZE, order, 6) < X[order]).astype(np.float32)
    noise = keyed.normal(5, 4, keyed.NOISE, order, 3)
    np.testing.assert_array_equal(data.x, x)
    np.testing.assert_array_equal(data.noise, noise)
    assert not np.array_equal(order, np.arange(50))


def test_epoch_scratch_is_reused_without_changing_the_draws():
    """fit gathers every epoch after the first into the first one's array; the draws are unchanged."""
    y = np.arange(50)
    kw = dict(shuffle=True, binarize=None, latents=3)
    fresh = [_training.draw_epoch(X, y, seed=7, epoch=e, **kw) for e in (1, 2)]
    scratch: dict = {}
    first = _training.draw_epoch(X, y, seed=7, epoch=1, scratch=scratch, **kw)
    kept = scratch["x"]
    assert first.x is kept
    np.testing.assert_array_equal(first.x, fresh[0].x)
    second = _training.draw_epoch(X, y, seed=7, epoch=2, scratch=scratch, **kw)
    assert second.x is kept  # written in place
    for got, want in ((second, fresh[1]),):
        np.testing.assert_array_equal(got.x, want.x)
        np.testing.assert_array_equal(got.y, want.y)
        np.testing.assert_array_equal(got.noise, want.noise)
    other = _training.draw_epoch(X[:49], None, seed=7, epoch=1, scratch=scratch, **kw)
    assert other.x is not kept and scratch["x"] is other.x  # another shape: a new array, kept instead


def test_batches_pad_and_mask_the_tail():
    data = _training.EpochData(X, None, np.zeros((50, 3), np.float32))
    out = list(_training.batches(data, 16, 1, 1.0))
    assert [float(r) for _, r in out] == [16, 16, 16, 2]
    tail, _ = out[-1]
    assert tail["x"].shape == (16, 6) and tail["mask"].sum() == 2 and not tail["x"][2:].any()
    np.testing.assert_array_equal(tail["x"][:2], X[48:])
    assert all(b["x"].shape == (16, 6) for b, _ in out)  # one shape: one compilation


def test_batches_fuse_groups_without_copying():
    data = _training.EpochData(X, None, np.zeros((50, 3), np.float32))
    out = list(_training.batches(data, 8, 3, 1.0))  # 6 full batches: 2 groups of 3, then the tail
    shapes = [b["x"].shape for b, _ in out]
    assert shapes == [(3, 8, 6), (3, 8, 6), (8, 6)]
    assert np.shares_memory(out[0][0]["x"], X)


def test_epoch_means_weight_batches_by_rows():
    """Keras' convention: the epoch value is the mean over examples, not over batches."""
    vae = xvae.VAE(SPEC, backend="numpy", seed=1)
    h = vae.fit(X, epochs=1, batch_size=16, shuffle=False, progress=False, optimizer=xvae.optim.SGD(0.0))
    per_example = vae.evaluate(X, seed=0)["loss"]
    # lr = 0: weights never change, so the epoch mean is the mean of per-example losses
    # under the epoch's noise; recompute it directly with the same draws
    noise = xvae.keyed.normal(1, 1, xvae.keyed.NOISE, np.arange(50), 3)  # seed 1, epoch 1, unshuffled
    prog = vae._program
    b = {"x": X, "noise": noise, "mask": np.ones(50, np.float32), "beta": np.float32(1.0)}
    assert h.history["loss"][0] == pytest.approx(prog.loss_and_grads(b)[0]["loss"], rel=1e-12)
    assert per_example > 0


def test_same_seed_same_history_and_resume(tmp_path):
    a = xvae.VAE(SPEC, backend="numpy", seed=3).fit(X, epochs=3, batch_size=16, progress=False)
    b = xvae.VAE(SPEC, backend="numpy", seed=3).fit(X, epochs=3, batch_size=16, progress=False)
    assert a.history == b.history
    vae = xvae.VAE(SPEC, backend="numpy", seed=3)
    vae.fit(X, epochs=1, batch_size=16, progress=False)
    assert vae.fit(X, epochs=2, batch_size=16, progress=False, seed=None).history["loss"] == \
        pytest.approx(a.history["loss"][1:], rel=1e-6)  # seed=None continues the keyed draws (seed 3, epochs 2, 3)
    assert vae.epoch == 3 and vae.step == 12


def test_resume_counts_total_epochs(tmp_path):
    vae = xvae.VAE(SPEC, backend="numpy", seed=3)
    vae.fit(X, epochs=1, batch_size=16, progress=False)
    vae.save(tmp_path / "e1.xvae")
    back = xvae.load(tmp_path / "e1.xvae")
    h = back.fit(X, epochs=2, batch_size=16, progress=False, resume=True)
    assert h.epoch == [2] and back.epoch == 2
    with pytest.raises(xvae.ConfigError, match="total"):
        back.fit(X, epochs=1, batch_size=16, resume=True, progress=False)


def test_fused_calls_give_the_same_numbers():
    one = xvae.VAE(SPEC, backend="numpy", seed=4).fit(X, epochs=2, batch_size=8, progress=False)
    fused = xvae.VAE(SPEC, backend="numpy", seed=4).fit(X, epochs=2, batch_size=8, progress=False,
                                                        steps_per_call=4)
    np.testing.assert_allclose(fused.history["loss"], one.history["loss"], rtol=1e-12)


def test_beta_schedule_and_validation():
    vae = xvae.VAE(SPEC, backend="numpy", seed=0)
    seen = []
    h = vae.fit(X, epochs=3, batch_size=25, progress=False, beta=lambda e: (e - 1) / 2,
                validation_data=X[:10],
                callbacks=[xvae.callbacks.LambdaCallback(lambda m, e, logs: seen.append(e))])
    assert seen == [1, 2, 3] and len(h.history["val_loss"]) == 3
    # with beta = 0 in epoch 1 the loss is the reconstruction term alone
    assert h.history["loss"][0] == pytest.approx(h.history["reconstruction"][0])


def test_a_classifier_learns_digits():
    """Issue 2: a classifier on digits (digit >= 5) reaches > 90% training accuracy."""
    d = xvae.datasets.load("digits", split="all")
    y = (d.y >= 5).astype(np.float32)
    clf = xvae.Classifier(xvae.ClassifierSpec(64, (32,), 1), backend="numpy", seed=0)
    h = clf.fit(d.x, y, epochs=10, batch_size=64, optimizer=xvae.optim.Adam(1e-2), progress=False)
    assert h.history["accuracy"][-1] > 0.9
    assert clf.evaluate(d.x, y)["accuracy"] > 0.9


def test_a_vae_lowers_its_loss_on_digits():
    d = xvae.datasets.load("digits")
    vae = xvae.VAE(xvae.VAESpec(input_dim=64, hidden=(64,), latents=4), backend="numpy", seed=0)
    h = vae.fit(d.x, epochs=3, batch_size=128, progress=False)
    assert h.history["loss"][2] < h.history["loss"][0]

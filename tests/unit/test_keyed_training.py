"""The training loop's draws are keyed (issue 13, items 1 and 3): every epoch's order,
binarization, noise and dropout masks are functions of (seed, epoch, example id), so a
resumed run continues the same stream, and checkpoints from before still load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import xvae
from xvae import _training, checkpoint, keyed
from xvae import layers as L
from xvae.naming import towers

FIXTURES = Path(__file__).parent / "fixtures"
X = np.random.default_rng(0).random((30, 6), dtype=np.float32)
SPEC = xvae.VAESpec(encoder=xvae.EncoderSpec(input_shape=(6,), latents=2, layers=[L.Dense(5), L.Dropout(0.3)]),
                    decoder=xvae.DecoderSpec(latents=2, output_shape=(6,), layers=[L.Dense(6)]))
FIT = {"batch_size": 8, "binarize": "dynamic", "progress": False}
# The float64 reference keeps float64 state; a checkpoint holds it rounded to float32, so a
# resumed run differs from a straight one by float32 rounding carried through two epochs
# (as tests/unit/test_checkpoint.py: measured ~1e-7 relative).
RESUME_RTOL = 1e-6


def test_draw_epoch_is_keyed_by_the_original_example_id() -> None:
    model = xvae.VAE(SPEC, backend="numpy", seed=9)
    data = _training.draw_epoch(X, None, seed=9, epoch=3, shuffle=True, binarize="dynamic", latents=2,
                                dropout=model._dropout_towers)
    order = keyed.permutation(9, 3, len(X))
    np.testing.assert_array_equal(data.x, keyed.binarize(X[order], 9, 3, order))
    # row at position p is example order[p]: its draws are those of its id, wherever it lands
    for pos in (0, 7, 29):
        i = order[pos:pos + 1]
        np.testing.assert_array_equal(data.x[pos], (keyed.uniform(9, 3, keyed.BINARIZE, i, 6)[0] < X[i[0]]))
        np.testing.assert_array_equal(data.noise[pos], keyed.normal(9, 3, keyed.NOISE, i, 2)[0])
        u = keyed.uniform(9, 3, keyed.DROPOUT, i, 5)[0]
        np.testing.assert_array_equal(data.dropout[pos], np.where(u >= np.float32(0.3), np.float32(1 / 0.7), 0))
    # without shuffling, the same example gets the same draws
    plain = _training.draw_epoch(X, None, seed=9, epoch=3, shuffle=False, binarize="dynamic", latents=2,
                                 dropout=model._dropout_towers)
    np.testing.assert_array_equal(plain.x[order], data.x)
    np.testing.assert_array_equal(plain.noise[order], data.noise)
    np.testing.assert_array_equal(plain.dropout[order], data.dropout)
    assert towers is not None  # the masks' layout comes from the model's towers


def test_fit_four_epochs_equals_two_saved_loaded_and_resumed(tmp_path: Path) -> None:
    straight = xvae.VAE(SPEC, backend="numpy", seed=2**40 + 3)
    h4 = straight.fit(X, epochs=4, optimizer=xvae.optim.Adam(1e-2), **FIT)
    first = xvae.VAE(SPEC, backend="numpy", seed=2**40 + 3)
    h2 = first.fit(X, epochs=2, optimizer=xvae.optim.Adam(1e-2), **FIT)
    assert h2.history["loss"] == h4.history["loss"][:2]  # the same first two epochs, exactly
    first.save(tmp_path / "e2.xvae")
    assert json.loads((tmp_path / "e2.xvae" / "xvae.json").read_text())["seed"] == 2**40 + 3
    back = xvae.load(tmp_path / "e2.xvae")
    assert (back.seed, back.epoch) == (2**40 + 3, 2)
    h = back.fit(X, epochs=4, resume=True, **FIT)
    assert h.epoch == [3, 4]
    np.testing.assert_allclose(h.history["loss"], h4.history["loss"][2:], rtol=RESUME_RTOL)
    for name, w in straight.get_weights().items():
        np.testing.assert_allclose(back.get_weights()[name], w, rtol=RESUME_RTOL, atol=RESUME_RTOL, err_msg=name)


def test_seed_is_kept_by_copies_reset_by_fit_and_drawn_when_none() -> None:
    vae = xvae.VAE(SPEC, backend="numpy", seed=4)
    vae.fit(X, epochs=1, optimizer=xvae.optim.SGD(0.1), **FIT)
    assert vae.to("numpy").seed == 4 and vae.to("numpy").epoch == 1
    vae.fit(X, epochs=1, seed=11, **FIT)
    assert vae.seed == 11 and vae.epoch == 2
    a, b = xvae.VAE(SPEC, backend="numpy", seed=None), xvae.VAE(SPEC, backend="numpy", seed=None)
    assert a.seed != b.seed and 0 <= a.seed < 2**63
    # weights are still drawn by numpy's default_rng(seed), once: seeds give the old init
    ref = xvae.init.initialize(SPEC, np.random.default_rng(4))
    for name, w in xvae.VAE(SPEC, backend="numpy", seed=4).get_weights().items():
        np.testing.assert_array_equal(w, ref[name], err_msg=name)


def test_format_2_checkpoint_loads_and_resumes_with_its_derived_seed() -> None:
    """tests/unit/fixtures/v2-vae.xvae was written by main at fac62ba (format 2, a PCG64 state)."""
    path = FIXTURES / "v2-vae.xvae"
    meta = json.loads((path / "xvae.json").read_text())
    assert meta["format_version"] == 2 and "seed" not in meta
    want = np.load(FIXTURES / "v2-expected.npz")
    back = xvae.load(path)
    for name, w in back.get_weights().items():
        np.testing.assert_array_equal(w, want[f"w/{name}"], err_msg=name)
    for name, s in back.get_optimizer_state().items():
        np.testing.assert_array_equal(s, want[f"o/{name}"], err_msg=name)
    bitgen = np.random.PCG64()
    bitgen.state = {**meta["rng"], "state": meta["rng"]["state"]}
    assert back.seed == int(np.random.Generator(bitgen).integers(0, 2**63))
    assert back.seed == xvae.load(path).seed  # deterministic: a reload resumes the same way
    assert back.epoch == 1 and back.step == 3
    h = back.fit(want["x"], epochs=2, resume=True, batch_size=8, binarize="dynamic", progress=False)
    assert h.epoch == [2] and np.isfinite(h.history["loss"][0])


def test_checkpoint_format_version() -> None:
    assert checkpoint.FORMAT_VERSION == 3

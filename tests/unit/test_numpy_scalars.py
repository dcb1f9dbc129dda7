"""NumPy scalars are numbers wherever a Python number is, stored as Python numbers (issue 16, item 3)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import xvae
from xvae._numbers import integer, real

X = np.random.default_rng(0).random((8, 4), dtype=np.float32)


@pytest.mark.parametrize("value, want", [(np.float32(1e-3), 0.001), (np.float64(0.25), 0.25), (np.float16(0.5), 0.5),
                                         (np.int64(3), 3.0), (2, 2.0), (0.5, 0.5)])
def test_real_accepts_python_and_numpy_reals(value, want):
    got = real(value)
    assert type(got) is float and got == want


@pytest.mark.parametrize("value", [True, np.bool_(False), "1", 1j, np.complex64(1), np.array([1.0]), None, 10**400])
def test_real_refuses_what_is_not_a_real_number(value):
    assert real(value) is None


def test_integer_accepts_numpy_integers_only():
    assert type(integer(np.int32(7))) is int and integer(np.uint8(255)) == 255
    assert integer(np.float64(2.0)) is None and integer(True) is None and integer(2.5) is None


def test_optimizers_take_numpy_scalars_and_store_python_floats():
    adam = xvae.optim.Adam(np.float32(1e-3), b1=np.float64(0.8))
    sgd = xvae.optim.SGD(np.float32(0.1), momentum=np.float32(0.9))
    assert adam == xvae.optim.Adam(1e-3, b1=0.8) and sgd == xvae.optim.SGD(0.1, momentum=0.9)
    for spec in (adam, sgd):
        assert not any(isinstance(v, np.generic) for v in spec.to_dict().values())
        assert type(spec.lr) is float
        assert xvae.optim.optimizer_from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    with pytest.raises(xvae.SpecError, match="lr=np.float32"):
        xvae.optim.Adam(np.float32(-1))


def test_specs_take_numpy_scalars_and_store_python_numbers():
    y = np.array([0, 2, 1])
    spec = xvae.VAESpec(input_dim=np.int64(4), hidden=np.array([3]), latents=np.int32(2), beta=np.float32(0.5))
    assert spec == xvae.VAESpec(input_dim=4, hidden=(3,), latents=2, beta=0.5)
    assert type(spec.beta) is float and type(spec.encoder.input_dim) is int
    assert all(type(w) is int for w in spec.encoder.hidden + spec.decoder.hidden)
    clf = xvae.ClassifierSpec(input_dim=X.shape[1], outputs=y.max() + 1)  # y.max() is np.int64
    assert type(clf.outputs) is int and clf.outputs == 3
    assert xvae.spec_from_json(spec.to_json()) == spec and xvae.spec_from_json(clf.to_json()) == clf
    with pytest.raises(xvae.SpecError, match="beta"):
        xvae.VAESpec(input_dim=4, latents=2, beta=np.float32("inf"))


def test_fit_callbacks_and_plots_take_numpy_scalars(tmp_path):
    vae = xvae.VAE(xvae.VAESpec(input_dim=4, latents=2), backend="numpy")
    stop = xvae.callbacks.EarlyStopping("loss", patience=np.int64(2), min_delta=np.float32(0.01))
    assert type(stop.min_delta) is float and type(stop.patience) is int
    hist = vae.fit(X, epochs=np.int64(2), batch_size=np.int32(4), beta=np.int64(1), seed=np.uint8(3),
                   callbacks=[stop], verbose=0)
    assert len(hist.history["loss"]) == 2
    from xvae import plots

    plots.image_grid(X, tmp_path / "grid.png", cols=np.int64(2), image_shape=(2, 2))
    assert (tmp_path / "grid.png").is_file()


def test_schedules_adamw_and_clip_norm_take_numpy_scalars_and_store_python_numbers():
    from xvae.schedules import CosineDecay, PiecewiseConstant

    cosine = CosineDecay(peak=np.float32(1e-3), decay_steps=np.int64(100))
    piecewise = PiecewiseConstant(boundaries=(np.int64(10),), values=(np.float32(0.1), np.float64(0.01)))
    assert cosine == CosineDecay(peak=1e-3, decay_steps=100)
    assert piecewise == PiecewiseConstant(boundaries=(10,), values=(0.1, 0.01))
    adamw = xvae.optim.AdamW(cosine, weight_decay=np.float32(1e-4), clip_norm=np.float32(1.0))
    assert adamw == xvae.optim.AdamW(CosineDecay(peak=1e-3, decay_steps=100), weight_decay=1e-4, clip_norm=1.0)
    text = json.dumps(adamw.to_dict())  # a NumPy scalar anywhere would make this raise
    assert xvae.optim.optimizer_from_dict(json.loads(text)) == adamw
    assert type(piecewise.values[0]) is float and type(piecewise.boundaries[0]) is int

"""A failed fit leaves the model as it was before the call (issue 16, item 1)."""

from __future__ import annotations

import numpy as np
import pytest

import xvae

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # float64 overflow while diverging

X = np.random.default_rng(0).random((48, 6), dtype=np.float32)
SPEC = xvae.VAESpec(input_dim=6, hidden=(8,), latents=2)


def _state(model):
    weights, opt = model._program.get_state()
    return weights, opt, model.step, model.epoch, model.optimizer, model.seed


def _assert_same(before, after):
    for want, got in zip(before[:2], after[:2]):
        assert want.keys() == got.keys()
        for name in want:  # restored from host copies: bit for bit
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert before[2:] == after[2:]


def _trained():
    vae = xvae.VAE(SPEC, backend="numpy", seed=1)
    vae.fit(X, epochs=1, batch_size=16, optimizer=xvae.optim.Adam(1e-3), progress=False)
    return vae


def test_divergence_rolls_back_and_the_model_trains_again():
    vae = _trained()
    before = _state(vae)
    with pytest.raises(xvae.TrainingDivergedError) as info:
        vae.fit(X, epochs=3, batch_size=16, optimizer=xvae.optim.SGD(1e4), progress=False)
    assert "rolled the model back" in "\n".join(info.value.__notes__)
    _assert_same(before, _state(vae))
    # the retry continues exactly as if the failed call had never happened
    twin = _trained()
    hist = vae.fit(X, epochs=2, batch_size=16, progress=False)
    want = twin.fit(X, epochs=2, batch_size=16, progress=False)
    # The numpy backend trains in float64 but the seam's state is canonical float32, so the
    # restored weights are the float32 rounding of the saved ones (relative 6e-8): 1e-6 is ample.
    for name, values in want.history.items():
        np.testing.assert_allclose(hist.history[name], values, rtol=1e-6, err_msg=name)
    assert vae.step == twin.step == 9 and vae.epoch == 3
    assert np.isfinite(vae.evaluate(X)["loss"])


class _Raise(xvae.callbacks.Callback):
    def __init__(self, error, at_epoch):
        self.error, self.at_epoch = error, at_epoch

    def on_epoch_end(self, model, epoch, logs):
        if epoch == self.at_epoch:
            raise self.error


@pytest.mark.parametrize("error", [RuntimeError("callback bug"), KeyboardInterrupt()], ids=["error", "interrupt"])
def test_any_exception_inside_fit_rolls_back(error):
    vae = _trained()
    before = _state(vae)
    with pytest.raises(type(error)) as info:
        vae.fit(X, epochs=3, batch_size=16, seed=5, optimizer=xvae.optim.SGD(0.1, momentum=0.5),
                callbacks=[_Raise(error, at_epoch=3)], progress=False)
    assert "rolled the model back to its state before this fit call (epoch 1, step 3" in "\n".join(info.value.__notes__)
    _assert_same(before, _state(vae))
    assert vae.optimizer == xvae.optim.Adam(1e-3) and not vae.stop_training


def test_a_fresh_model_rolls_back_to_no_optimizer():
    vae = xvae.VAE(SPEC, backend="numpy", seed=1)
    before = _state(vae)
    with pytest.raises(xvae.TrainingDivergedError):
        vae.fit(X, epochs=2, batch_size=16, optimizer=xvae.optim.SGD(1e6), progress=False)
    _assert_same(before, _state(vae))
    assert vae.optimizer is None and vae.get_optimizer_state() == {}
    vae.fit(X, epochs=1, batch_size=16, progress=False)
    assert np.isfinite(vae.evaluate(X)["loss"])

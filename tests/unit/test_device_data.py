"""The core side of device-resident data (xvae._device_data): the epoch's calls, the options'
checks, and the host path that backends without resident data (numpy, plugins) keep."""

from __future__ import annotations

import numpy as np
import pytest

import xvae
from xvae import _device_data
from xvae.backend import DeviceDraws, Program

X = np.random.default_rng(0).random((70, 12), dtype=np.float32)
Y = np.random.default_rng(1).integers(0, 3, 70)
CLF = xvae.ClassifierSpec(input_dim=12, hidden=(8,), outputs=3)


@pytest.mark.parametrize("k, shapes", [(1, [(1, 16)] * 5), (2, [(2, 16), (2, 16), (1, 16)]),
                                       (5, [(5, 16)]), ("epoch", [(5, 16)]), (9, [(1, 16)] * 5)])
def test_calls_cover_every_example_once_with_a_masked_tail(k, shapes):
    """70 rows / batch 16 = 5 steps, the last one 6 real rows + 10 masked padding rows."""
    order = np.random.default_rng(2).permutation(70)
    calls = list(_device_data.calls(order, 16, k))
    assert [ids.shape for ids, _ in calls] == shapes
    ids = np.concatenate([i for i, _ in calls]).reshape(-1)
    mask = np.concatenate([m for _, m in calls]).reshape(-1)
    assert ids.dtype == np.int32 and mask.dtype == np.float32
    np.testing.assert_array_equal(ids[mask == 1], order)  # every example once, in the epoch's order
    assert mask.sum() == 70 and np.all(mask[70:] == 0)
    assert set(ids[mask == 0]) <= set(order)  # padding repeats a real id: nothing out of range


def test_draws_describe_binarization_noise_and_dropout_columns():
    spec = xvae.ClassifierSpec(input_shape=(12,), outputs=3, layers=[
        xvae.layers.Dense(8, "relu"), xvae.layers.Dropout(0.25), xvae.layers.Dense(6, "relu"),
        xvae.layers.Dropout(0.5), xvae.layers.Dense(3)])
    model = xvae.Classifier(spec, backend="numpy")
    draws = _device_data.draws("dynamic", (3, 4), model._dropout_towers)
    assert draws == DeviceDraws(binarize=True, noise=(3, 4), dropout=((0, 8, 0.25), (8, 14, 0.5)))
    assert draws.units == 14
    assert _device_data.draws(None, 5, None) == DeviceDraws(noise=(5,))


@pytest.mark.parametrize("value", ["epochs", "", 0, -1, 2.5, True, None])
def test_bad_steps_per_call_is_refused(value):
    with pytest.raises(xvae.ConfigError, match="steps_per_call"):
        xvae.Classifier(CLF, backend="numpy").fit(X, Y, batch_size=16, steps_per_call=value, verbose=0)


@pytest.mark.parametrize("value", [-0.1, 1.5, "half", True, float("nan"), None])
def test_bad_device_data_is_refused(value):
    with pytest.raises(xvae.ConfigError, match="device_data") as err:
        xvae.Classifier(CLF, backend="numpy").fit(X, Y, batch_size=16, device_data=value, verbose=0)
    assert repr(value)[:10] in str(err.value)


class PerBatch(xvae.callbacks.Callback):
    def on_batch_end(self, model, batch, logs):  # a Keras-style per-step hook
        pass


def test_epoch_calls_refuse_a_callback_with_per_step_hooks():
    model = xvae.Classifier(CLF, backend="numpy")
    with pytest.raises(xvae.ConfigError, match=r"callbacks\[1\] \(PerBatch\) defines on_batch_end") as err:
        model.fit(X, Y, batch_size=16, steps_per_call="epoch", callbacks=[xvae.callbacks.EarlyStopping("loss"), PerBatch()],
                  verbose=0)
    assert "steps_per_call=1" in str(err.value)
    assert model.epoch == 0  # refused before any step
    model.fit(X, Y, batch_size=16, steps_per_call=2, callbacks=[PerBatch()], verbose=0)  # K steps: allowed, as before


def test_the_host_path_is_the_base_class_fallback():
    """numpy (and any plugin) keeps no data on a device: steps_per_call="epoch" runs the host
    loop, every full batch in one train_steps call, then the padded tail."""
    assert type(xvae.backends.get("numpy")).compile is not None
    assert Program.place_data.__qualname__ == "Program.place_data"
    calls: list[tuple[str, tuple[int, ...]]] = []
    model = xvae.Classifier(CLF, backend="numpy", seed=3)
    program_type = type(model._program)
    assert program_type.place_data is Program.place_data
    one = xvae.Classifier(CLF, backend="numpy", seed=3).fit(X, Y, epochs=2, batch_size=16, verbose=0)
    original_steps, original_step = program_type.train_steps, program_type.train_step

    depth = [0]  # the reference's train_steps may loop over train_step: count the loop's calls only

    def spy(name, original):
        def call(self, batch):
            if not depth[0]:
                calls.append((name, batch["x"].shape))
            depth[0] += 1
            try:
                return original(self, batch)
            finally:
                depth[0] -= 1
        return call

    steps, step = spy("steps", original_steps), spy("step", original_step)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(program_type, "train_steps", steps)
        mp.setattr(program_type, "train_step", step)
        fused = model.fit(X, Y, epochs=2, batch_size=16, steps_per_call="epoch", verbose=0)
    assert calls == [("steps", (4, 16, 12)), ("step", (16, 12))] * 2
    # float64 reference: the same operations in the same order
    np.testing.assert_allclose(fused.history["loss"], one.history["loss"], rtol=1e-12)


def test_cli_steps_per_call_takes_epoch():
    import argparse

    from xvae.cli import _steps_per_call

    assert _steps_per_call("epoch") == "epoch" and _steps_per_call("4") == 4
    for bad in ("0", "epochs", "-2", ""):
        with pytest.raises(argparse.ArgumentTypeError, match='positive integer or "epoch"'):
            _steps_per_call(bad)


def test_auto_is_the_default_and_resolves_per_device():
    """"auto" passes validation as None (resolved by `place`: 0.5 on an accelerator, 0 on a
    CPU); the base Program is no accelerator, so the reference backend streams."""
    assert _device_data.fraction("auto") is None and _device_data.fraction(0.25) == 0.25
    assert xvae.backend.Program.accelerator(object()) is False  # the base class's answer
    with pytest.raises(xvae.ConfigError, match='"auto"'):
        _device_data.fraction("always")


def test_resident_labels_keep_the_host_batches_representation():
    """A conditional VAE's condition stays the core's one-hot float32 (n, conditions) (each
    step gathers its rows, like x's); a classifier's labels become the loss's dtype, (n,)."""
    onehot = np.eye(4, dtype=np.float32)[[2, 0, 3]]
    kept = _device_data.labels(onehot, "vae", None)
    assert kept.dtype == np.float32 and kept.shape == (3, 4)
    np.testing.assert_array_equal(kept, onehot)
    ids = _device_data.labels(np.array([2, 0, 3], np.int64), "classifier", np.int32)
    assert ids.dtype == np.int32 and ids.tolist() == [2, 0, 3]
    binary = _device_data.labels(np.array([[1.0], [0.0]]), "classifier", np.float32)
    assert binary.dtype == np.float32 and binary.shape == (2,)


def test_a_conditional_vaes_one_hot_condition_counts_in_the_device_budget():
    """place() bounds x plus the condition's n x conditions float32s (not 4 bytes a row)."""

    class Device:  # a program that keeps data on its device, with 1000 bytes free
        def device_memory(self):
            return 1000

        def place_data(self, x, y):
            return {"x": x, "y": y}

    x = np.zeros((10, 8), np.float32)  # 320 bytes
    four, five = (np.eye(c, dtype=np.float32)[np.arange(10) % c] for c in (4, 5))  # 160, 200 bytes
    assert _device_data.place(Device(), x, four, 0.5)["y"] is four  # 480 bytes <= 0.5 x 1000
    with pytest.warns(UserWarning, match=r"The training set \(520 bytes\) is more than device_data=0.5"):
        assert _device_data.place(Device(), x, five, 0.5) is None

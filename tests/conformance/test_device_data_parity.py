"""Device-resident data (`fit(device_data=...)`, `steps_per_call="epoch"`): the host loop's numbers.

On the device path each compiled call receives only example ids and gathers its batches on
the device, drawing binarization, noise and dropout masks there with the keyed generator
(`xvae_<backend>._random`), keyed by the ORIGINAL example id. So it must give the host
loop's trajectory (and the float64 reference's), for any steps_per_call, and a batch size
must change nothing but rounding.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import xvae
from xvae import layers as L

from cases import FUSED_RTOL, LOSS_RTOL, SPECS, TRAJ_RTOL, rel_l2

X = np.random.default_rng(0).random((70, 32), dtype=np.float32)
Y10 = np.random.default_rng(1).integers(0, 10, 70)

DROPOUT_VAE = xvae.VAESpec(
    encoder=xvae.EncoderSpec(input_shape=(32,), latents=4, layers=[L.Dense(24, "tanh"), L.Dropout(0.3)]),
    decoder=xvae.DecoderSpec(latents=4, output_shape=(32,), layers=[L.Dense(24, "tanh"), L.Dropout(0.2), L.Dense(32)]))
DROPOUT_CLF = xvae.ClassifierSpec(input_shape=(32,), outputs=10,
                                  layers=[L.Dense(24, "relu"), L.Dropout(0.25), L.Dense(10)])
#: a conditional VAE: Y10's classes, one-hot "y" resident beside x and gathered by example id
CVAE = xvae.VAESpec(input_dim=32, hidden=(24,), latents=4, conditions=10)
#: shuffle and dynamic binarization always; dropout masks; the IWAE bound's (k, latents) noise; a condition
CASES = {
    "vae-dropout": (DROPOUT_VAE, {}),
    "vae-iwae-k3": (SPECS["vae-h1-z20"], {"loss": "iwae", "k": 3}),
    "cvae": (CVAE, {}),
    "classifier-dropout": (DROPOUT_CLF, {}),
}


def fit(backend, spec, epochs=2, batch_size=16, **kw):
    if spec.kind == "vae":
        model = xvae.VAE(spec, backend=backend, seed=5)
        labels = (Y10,) if spec.conditions else ()  # a CVAE's class ids; the core one-hots them
        return model, model.fit(X, *labels, epochs=epochs, batch_size=batch_size, binarize="dynamic", verbose=0, **kw)
    model = xvae.Classifier(spec, backend=backend, seed=5)
    return model, model.fit(X, Y10, epochs=epochs, batch_size=batch_size, verbose=0, **kw)


@pytest.fixture
def resident_calls(backend, monkeypatch):
    """The S of every train_resident call of `backend`'s program class (S steps per call)."""
    program = type(xvae.Classifier(SPECS["clf-h0-o1"], backend=backend)._program)
    calls: list[int] = []
    original = program.train_resident

    def spy(self, data, ids, *args, **kwargs):
        calls.append(len(ids))
        return original(self, data, ids, *args, **kwargs)

    monkeypatch.setattr(program, "train_resident", spy)
    return calls


@pytest.mark.parametrize("case", CASES)
def test_device_path_gives_the_host_trajectory(backend, case, resident_calls):
    """70 rows / batch 16 = 5 steps an epoch (the last padded): K=1, K=3 (3 + 1 + 1) and one
    call per epoch. Against the same backend's host loop: the same rows and the same uniforms
    (binarization, dropout), normals equal to float32 rounding (the device computes
    Box-Muller in float32, the host in float64 rounded once) and XLA's fusion choices: a few
    ulps per step, within FUSED_RTOL over 10 steps. Against the float64 reference: TRAJ_RTOL."""
    spec, kw = CASES[case]
    metrics = ("loss", "reconstruction", "kl") if spec.kind == "vae" else ("loss", "accuracy")
    _, want = fit("numpy", spec, **kw)
    _, host = fit(backend, spec, device_data=0, **kw)
    assert resident_calls == []
    for k, calls in ((1, [1] * 5), (3, [3, 1, 1]), ("epoch", [5])):
        del resident_calls[:]
        _, got = fit(backend, spec, device_data=0.5, steps_per_call=k, **kw)
        assert resident_calls == calls * 2, k  # the device path ran, every epoch
        for name in metrics:
            np.testing.assert_allclose(got.history[name], host.history[name], rtol=FUSED_RTOL, err_msg=f"{name} K={k}")
            np.testing.assert_allclose(got.history[name], want.history[name], rtol=TRAJ_RTOL, err_msg=f"{name} K={k}")
        if spec.kind == "vae":  # the steps' per-latent KL (history vectors), on the resident data
            np.testing.assert_allclose(got.vectors["kl_per_latent"], host.vectors["kl_per_latent"], rtol=TRAJ_RTOL)


def test_a_conditional_vae_keeps_its_one_hot_condition_on_the_device(backend, resident_calls, monkeypatch):
    """A CVAE's "y" is resident as the host batches carry it, one-hot float32 (n, conditions)
    (one representation, `xvae._device_data.labels`), and every step gathers its rows by
    example id like x's: the host loop's losses and final weights, K=1 and one call per
    epoch. The same rows, uniforms and float32 operations, normals to float32 rounding and
    XLA's fusion choices (see above): a few ulps per step, so FUSED_RTOL over 10 steps, as
    relative L2 per weight (the per-element relative error of a weight near zero says nothing)."""
    program = type(xvae.VAE(CVAE, backend=backend)._program)
    placed = []
    original = program.place_data

    def spy(self, x, y):
        placed.append(original(self, x, y))
        return placed[-1]

    monkeypatch.setattr(program, "place_data", spy)
    host_model, host = fit(backend, CVAE, device_data=0)
    assert placed == [] and resident_calls == []
    want = host_model.get_weights()
    for k, calls in ((1, [1] * 5), ("epoch", [5])):
        del placed[:], resident_calls[:]
        model, got = fit(backend, CVAE, device_data=0.5, steps_per_call=k)
        assert resident_calls == calls * 2, "the device path ran, every epoch"
        y = np.asarray(placed[0]["y"])
        assert y.dtype == np.float32 and y.shape == (len(X), 10)
        np.testing.assert_array_equal(y, np.eye(10, dtype=np.float32)[Y10])
        for name in ("loss", "reconstruction", "kl"):
            np.testing.assert_allclose(got.history[name], host.history[name], rtol=FUSED_RTOL, err_msg=f"{name} K={k}")
        for name, w in model.get_weights().items():
            assert rel_l2(w, want[name]) <= FUSED_RTOL, (k, name, rel_l2(w, want[name]))


def test_auto_keeps_the_data_on_the_host_on_a_cpu_and_on_the_device_on_an_accelerator(backend, resident_calls):
    """device_data="auto" (the default): the host loop on a CPU (there residency saves only the
    epoch's draw, and XLA's compiled loops over conv steps are 4-30x slower), the resident
    path on an accelerator; an explicit fraction opts a CPU device in."""
    spec, kw = CASES["vae-dropout"]
    model, _ = fit(backend, spec, epochs=1, **kw)
    if model._program.accelerator():
        assert resident_calls, "auto keeps the data on an accelerator"
    else:
        assert resident_calls == []
        fit(backend, spec, epochs=1, device_data=0.5, **kw)
        assert resident_calls, "an explicit device_data=0.5 keeps the data on the CPU device"


@pytest.mark.parametrize("batch_size", [16, 35, 70])
def test_batch_size_changes_nothing_but_rounding(backend, batch_size):
    """With lr = 0 the weights stay put, so an epoch's mean loss is the mean over examples of
    each example's loss under ITS draws (keyed by example id): any batch size or call
    grouping gives the same number to float32 rounding of the sums (LOSS_RTOL), and the
    float64 reference's."""
    spec, kw = CASES["vae-dropout"]
    still = {"optimizer": xvae.optim.SGD(0.0), **kw}
    _, want = fit("numpy", spec, batch_size=16, **still)
    _, got = fit(backend, spec, batch_size=batch_size, steps_per_call="epoch", device_data=0.5, **still)
    np.testing.assert_allclose(got.history["loss"], want.history["loss"], rtol=LOSS_RTOL)
    assert got.history["loss"][0] != pytest.approx(got.history["loss"][1], rel=1e-3)  # epochs draw anew


def test_too_large_for_the_device_streams_with_one_warning(backend, resident_calls, monkeypatch):
    """A training set beyond device_data x the device's free memory stays on the host: one
    warning per fit, the host loop's numbers, never an out-of-memory error."""
    spec, kw = CASES["vae-dropout"]
    _, host = fit(backend, spec, epochs=3, device_data=0, **kw)
    program = type(xvae.Classifier(SPECS["clf-h0-o1"], backend=backend)._program)
    monkeypatch.setattr(program, "device_memory", lambda self: 1000)  # bytes free: X needs 8960
    with pytest.warns(UserWarning, match=r"\(8.75 KiB\) is more than device_data=0.5 of the device's free memory "
                                         r"\(1000 bytes\): fit streams it from the host") as caught:
        _, got = fit(backend, spec, epochs=3, steps_per_call="epoch", device_data=0.5, **kw)
    assert len([w for w in caught if "streams it" in str(w.message)]) == 1
    assert resident_calls == []
    np.testing.assert_allclose(got.history["loss"], host.history["loss"], rtol=FUSED_RTOL)


def test_a_device_that_refuses_the_data_streams_with_one_warning(backend, resident_calls, monkeypatch):
    """place_data's MemoryError (the framework's out-of-memory error, translated) -> the host loop."""
    program = type(xvae.Classifier(SPECS["clf-h0-o1"], backend=backend)._program)

    def refuse(self, x, y):
        raise MemoryError("RESOURCE_EXHAUSTED: out of memory allocating 8960 bytes")

    monkeypatch.setattr(program, "place_data", refuse)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, h = fit(backend, CASES["classifier-dropout"][0], epochs=2, device_data=0.5)
    refused = [w for w in caught if "The device refused the training set" in str(w.message)]
    assert len(refused) == 1 and "RESOURCE_EXHAUSTED" in str(refused[0].message)
    assert resident_calls == [] and model.epoch == 2 and np.all(np.isfinite(h.history["loss"]))

"""The core's data-parallel switch: `devices=` values, device selection, row padding."""

from __future__ import annotations

import numpy as np
import pytest

import xvae
from xvae import distribute


@pytest.mark.parametrize("given, want", [(None, None), (1, None), (2, 2), (np.int64(3), 3), ("all", "all"),
                                         (["gpu:0", "gpu:1"], ("gpu:0", "gpu:1"))])
def test_devices_normalize(given, want):
    assert distribute.normalize(given) == want


@pytest.mark.parametrize("bad, words", [(0, "devices must be >= 1"), (-2, "devices must be >= 1"),
                                        (True, "Received: devices=True"), ("gpu", "device='gpu'"),
                                        ([], "non-empty list"), (["cpu:0", "cpu:0"], "twice"),
                                        (2.0, "Received: devices=2.0")])
def test_bad_devices_are_config_errors_naming_the_value(bad, words):
    with pytest.raises(xvae.ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        distribute.normalize(bad)


def test_select_names_the_devices_available():
    names = ["gpu:0", "gpu:1"]
    assert distribute.select(2, names, "jax") == [0, 1]
    assert distribute.select("all", names, "jax") == [0, 1]
    assert distribute.select(("gpu:1",), names, "jax") == [1]
    with pytest.raises(xvae.ConfigError, match=r"devices=4 asks for more devices than the jax backend has: "
                                               r"2 available \(gpu:0, gpu:1\)"):
        distribute.select(4, names, "jax")
    with pytest.raises(xvae.ConfigError, match=r"no device gpu:7\. Available: gpu:0, gpu:1"):
        distribute.select(("gpu:7",), names, "jax")


def test_pad_rows_pads_with_masked_zero_rows_and_leaves_scalars():
    batch = {"x": np.ones((5, 3), np.float32), "noise": np.ones((5, 2), np.float32),
             "mask": np.ones(5, np.float32), "beta": np.float32(0.5), "lr": np.float32(1e-3)}
    out = distribute.pad_rows(batch, 2)
    assert out["x"].shape == (6, 3) and out["noise"].shape == (6, 2)
    assert out["mask"].tolist() == [1, 1, 1, 1, 1, 0]
    assert not out["x"][5].any() and out["beta"] == np.float32(0.5) and out["lr"] == np.float32(1e-3)
    stacked = {"x": np.ones((4, 3, 2), np.float32), "mask": np.float32(1.0), "beta": np.full(4, 1, np.float32)}
    out = distribute.pad_rows(stacked, 2, axis=1)
    assert out["x"].shape == (4, 4, 2) and out["mask"].shape == (4, 4) and out["beta"].shape == (4,)
    assert out["mask"][:, 3].sum() == 0 and out["mask"][:, :3].all()
    assert distribute.pad_rows(batch, 5)["x"].shape == (5, 3)  # already a multiple: unchanged


def test_the_numpy_reference_has_one_device_and_says_so():
    model = xvae.VAE(xvae.VAESpec(input_dim=4, hidden=(3,), latents=2), backend="numpy")
    x = np.random.default_rng(0).random((6, 4)).astype(np.float32)
    before = model.get_weights()
    with pytest.raises(xvae.ConfigError, match=r"devices=2 asks for more devices than the numpy backend has: "
                                               r"1 available \(cpu\)"):
        model.fit(x, devices=2, progress=False)
    assert all(np.array_equal(before[k], v) for k, v in model.get_weights().items())  # nothing trained
    model.fit(x, devices="all", progress=False, batch_size=6)  # all = its one device
    assert model.step == 1 and distribute.is_chief(model)

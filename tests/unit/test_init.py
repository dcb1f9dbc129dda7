import numpy as np
import pytest

import xvae
from xvae.init import initialize
from xvae.naming import weight_shapes

SPEC = xvae.VAESpec(input_dim=784, hidden=(500,), latents=20)


def test_names_shapes_dtypes():
    w = initialize(SPEC, np.random.default_rng(0))
    assert {k: v.shape for k, v in w.items()} == weight_shapes(SPEC)
    assert all(v.dtype == np.float32 and v.flags.c_contiguous for v in w.values())
    assert set(w) == {
        "encoder.layers.0.kernel", "encoder.layers.0.bias", "encoder.mean.kernel", "encoder.mean.bias",
        "encoder.logvar.kernel", "encoder.logvar.bias", "decoder.layers.0.kernel", "decoder.layers.0.bias",
        "decoder.output.kernel", "decoder.output.bias"}
    clf = weight_shapes(xvae.ClassifierSpec(784, (1000,), 1))
    assert clf == {"layers.0.kernel": (784, 1000), "layers.0.bias": (1000,),
                   "output.kernel": (1000, 1), "output.bias": (1,)}


def test_glorot_uniform_bounds_and_determinism():
    w = initialize(SPEC, np.random.default_rng(0))
    limit = np.sqrt(6 / (784 + 500))
    k = w["encoder.layers.0.kernel"]
    assert k.max() <= limit and k.min() >= -limit and k.max() > 0.99 * limit
    assert abs(k.std() - limit / np.sqrt(3)) < 1e-3
    assert not w["encoder.layers.0.bias"].any()
    again = initialize(SPEC, np.random.default_rng(0))
    assert all(np.array_equal(w[n], again[n]) for n in w)


def test_lecun_normal_and_torch_default():
    w = initialize(SPEC, np.random.default_rng(1), "lecun_normal")
    k = w["encoder.layers.0.kernel"]
    assert abs(k.std() - np.sqrt(1 / 784)) < 2e-3 and np.abs(k).max() < 2 * np.sqrt(1 / 784) / 0.8796 + 1e-6
    t = initialize(SPEC, np.random.default_rng(1), "torch_default")
    bound = 1 / np.sqrt(784)
    assert np.abs(t["encoder.layers.0.bias"]).max() <= bound and t["encoder.layers.0.bias"].any()


def test_unknown_initializer():
    with pytest.raises(xvae.SpecError, match="glorot_uniform"):
        initialize(SPEC, np.random.default_rng(0), "orthogonal")

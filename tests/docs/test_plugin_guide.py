"""The plugin guide's example, installed the way pip would install it, then used.

examples/plugin_example is an out-of-tree distribution. The `numpy32` fixture (conftest.py)
makes it a fake installed one: its package is copied onto a temporary sys.path entry beside
a *.dist-info whose entry_points.txt is generated from the example's own pyproject.toml, so
the test exercises exactly the entry point the guide tells plugin authors to write.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import xvae
from xvae import backends
from xvae.backend import Backend, Program

# float32 arithmetic against the float64 reference: per-step losses over a few epochs of
# a small model drift by float32 rounding only (DESIGN §6 allows 1e-4 over 50 steps).
TRAJ_RTOL = 1e-4
PACKAGE = "xvae_numpy32"


def test_entry_point_is_declared_in_pyproject(numpy32):
    assert numpy32 == {"numpy32": "xvae_numpy32.plugin"}


def test_registry_finds_the_plugin_without_importing_its_backend(numpy32):
    assert "numpy32" in backends.known()
    assert backends.canonical_name("float32-numpy") == "numpy32"
    assert f"{PACKAGE}._backend" not in sys.modules  # declared, not imported yet
    assert backends.why_unavailable("numpy32") is None  # not available(): that imports every framework
    assert "xvae_numpy32.plugin" not in str(backends.broken())


def test_plugin_implements_the_whole_seam(numpy32):
    backend = backends.get("numpy32")
    assert isinstance(backend, Backend) and backend.name == "numpy32"
    assert backend.info()["version"] == np.__version__
    program_cls = type(backend.compile(xvae.ClassifierSpec(input_dim=2), xvae.losses.BinaryCrossEntropy(), None,
                                       xvae.backend.CompileOptions()))
    assert issubclass(program_cls, Program) and not program_cls.__abstractmethods__


def test_trains_a_vae_like_the_reference(numpy32, tmp_path):
    """Same seed in both backends: the same data order, noise and weights, float32 rounding apart."""
    x = xvae.datasets.load("digits").x[:300]
    spec = xvae.VAESpec(input_dim=64, hidden=(32,), latents=2)
    runs = {}
    for name in ("numpy32", "numpy"):
        vae = xvae.VAE(spec, backend=name, seed=0)
        hist = vae.fit(x, epochs=3, batch_size=64, optimizer=xvae.optim.Adam(1e-2), progress=False)
        runs[name] = (vae, np.array(hist.history["loss"]))
    (vae, got), (_, want) = runs["numpy32"], runs["numpy"]
    assert got[-1] < got[0], f"the loss did not go down: {got}"
    np.testing.assert_allclose(got, want, rtol=TRAJ_RTOL)
    assert vae.sample(4, seed=0).shape == (4, 64)
    vae.save(tmp_path / "run.xvae")  # any backend loads any save
    back = xvae.load(tmp_path / "run.xvae", backend="numpy")
    for key, value in vae.get_weights().items():
        np.testing.assert_array_equal(back.get_weights()[key], value, err_msg=key)


def test_trains_a_classifier(numpy32):
    data = xvae.datasets.load("digits")
    clf = xvae.Classifier(xvae.ClassifierSpec(input_dim=64, hidden=(32,), outputs=10), backend="numpy32", seed=0)
    clf.fit(data.x[:500], data.y[:500], epochs=3, batch_size=50, optimizer=xvae.optim.SGD(0.1, momentum=0.9),
            progress=False)
    assert clf.evaluate(data.x[:500], data.y[:500])["accuracy"] > 0.8


def test_every_activation_matches_the_reference(numpy32):
    x = {"x": np.random.default_rng(2).normal(0, 3, (10, 8)).astype(np.float32)}
    for activation in xvae._specs.ACTIVATIONS:
        spec = xvae.ClassifierSpec(input_dim=8, hidden=(16,), outputs=3, activation=activation)
        got, want = (xvae.Classifier(spec, backend=name, seed=0).predict(x["x"], logits=True)
                     for name in ("numpy32", "numpy"))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max(), err_msg=activation)


def test_unsupported_activation_is_refused_at_construction(numpy32, monkeypatch):
    """An activation the plugin lacks (say, one a newer xvae adds) fails early, naming the choices."""
    module = sys.modules.get(f"{PACKAGE}._backend") or __import__(f"{PACKAGE}._backend", fromlist=["_"])
    monkeypatch.delitem(module.ACTIVATIONS, "gelu")
    with pytest.raises(xvae.SpecError, match="numpy32 backend supports activations"):
        xvae.VAE(xvae.VAESpec(input_dim=4, latents=2, hidden=(3,), activation="gelu"), backend="numpy32")

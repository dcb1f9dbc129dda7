"""fit() through every backend: same draws, same numbers; resume equals straight training."""

from __future__ import annotations

import numpy as np
import pytest

import xvae

from cases import SPECS, TRAJ_RTOL, assert_close_outputs

X = np.random.default_rng(0).random((70, 32), dtype=np.float32)
Y10 = np.random.default_rng(1).integers(0, 10, 70)


@pytest.mark.parametrize("binarize", [None, "dynamic"])
def test_fit_matches_reference(backend, binarize):
    spec = SPECS["vae-h1-z20"]
    want = xvae.VAE(spec, backend="numpy", seed=4).fit(X, epochs=3, batch_size=16, binarize=binarize,
                                                       progress=False)
    got = xvae.VAE(spec, backend=backend, seed=4).fit(X, epochs=3, batch_size=16, binarize=binarize,
                                                      progress=False)
    for name in ("loss", "reconstruction", "kl"):
        np.testing.assert_allclose(got.history[name], want.history[name], rtol=TRAJ_RTOL, err_msg=name)


@pytest.mark.parametrize("k", [4, 5])
def test_steps_per_call_changes_nothing(backend, k):
    """70 rows / batch 16 = 4 full batches + a padded tail; K=4 fuses them, K=5 cannot."""
    spec = SPECS["clf-h1-o10"]
    one = xvae.Classifier(spec, backend=backend, seed=2).fit(X, Y10, epochs=2, batch_size=16, progress=False)
    fused = xvae.Classifier(spec, backend=backend, seed=2).fit(X, Y10, epochs=2, batch_size=16,
                                                               progress=False, steps_per_call=k)
    np.testing.assert_allclose(fused.history["loss"], one.history["loss"], rtol=1e-5)


def test_resume_equals_straight(backend, tmp_path):
    spec = SPECS["vae-h1-z20"]
    straight = xvae.VAE(spec, backend=backend, seed=9)
    h = straight.fit(X, epochs=2, batch_size=16, binarize="dynamic", progress=False)
    first = xvae.VAE(spec, backend=backend, seed=9)
    first.fit(X, epochs=1, batch_size=16, binarize="dynamic", progress=False)
    first.save(tmp_path / "e1.xvae")
    resumed = xvae.load(tmp_path / "e1.xvae")
    assert resumed.backend == backend
    h2 = resumed.fit(X, epochs=2, batch_size=16, binarize="dynamic", progress=False, resume=True)
    # Same backend, same arrays, same operations: float32 rounding at most (bit-exact on CPU in practice).
    assert h2.history["loss"][0] == pytest.approx(h.history["loss"][1], rel=1e-6)
    for name, w in straight.get_weights().items():
        np.testing.assert_allclose(resumed.get_weights()[name], w, rtol=1e-6, atol=1e-7, err_msg=name)


def test_public_api(backend):
    vae = xvae.VAE(SPECS["vae-h1-z20"], backend=backend, seed=0)
    mean, logvar = vae.encode(X)
    assert mean.shape == logvar.shape == (70, 20)
    assert vae.decode(mean).shape == (70, 32) and vae.decode(mean).min() >= 0
    # chunked calls may round differently (BLAS blocks by row count): float32 tolerance
    assert_close_outputs(vae.decode(mean, logits=True, batch_size=16), vae.decode(mean, logits=True), "chunked")
    np.testing.assert_array_equal(vae.reconstruct(X), vae.decode(mean))
    s = vae.sample(5, seed=1, binary=True)
    assert s.shape == (5, 32) and set(np.unique(s)) <= {0.0, 1.0}
    ev = vae.evaluate(X, seed=0, n_samples=2)
    assert set(ev) == {"loss", "reconstruction", "kl"} and ev["loss"] > 0
    ref = xvae.VAE(SPECS["vae-h1-z20"], backend="numpy", seed=0).evaluate(X, seed=0, n_samples=2)
    assert ev["loss"] == pytest.approx(ref["loss"], rel=1e-5)
    clf = xvae.Classifier(SPECS["clf-h1-o10"], backend=backend, seed=0)
    p = clf.predict(X)
    assert p.shape == (70, 10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert set(clf.evaluate(X, Y10)) == {"loss", "accuracy"}


def test_construction_error_is_immediate():
    with pytest.raises(xvae.BackendNotFoundError, match="Known backends"):
        xvae.VAE(SPECS["vae-h0-z2"], backend="caffe")

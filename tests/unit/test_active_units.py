"""Posterior-collapse diagnostics: `VAE.latent_activity` and `VAE.active_units` (Burda et al. 2016)."""

from __future__ import annotations

import numpy as np
import pytest

import xvae


def _vae() -> xvae.VAE:
    spec = xvae.VAESpec(encoder=xvae.EncoderSpec(input_dim=4, hidden=(), latents=3),
                        decoder=xvae.DecoderSpec(latents=3, hidden=(), output_dim=4))
    return xvae.VAE(spec, backend="numpy")


def test_activity_is_the_variance_of_the_posterior_mean_over_x() -> None:
    vae = _vae()
    w = vae.get_weights()
    kernel = np.zeros((4, 3), np.float32)
    kernel[0, 0] = 1.0   # latent 0 follows x0: variance of x0
    kernel[1, 1] = 0.05  # latent 1 barely moves: 0.05^2 * var(x1)
    w["encoder.mean.kernel"], w["encoder.mean.bias"] = kernel, np.array([0.0, 0.0, 3.0], np.float32)  # latent 2: constant
    vae.set_weights(w)
    x = np.random.default_rng(0).standard_normal((500, 4)).astype(np.float32)
    activity = vae.latent_activity(x)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(activity, [x64[:, 0].var(), 0.0025 * x64[:, 1].var(), 0.0], rtol=1e-5, atol=1e-12)
    assert vae.active_units(x) == 1  # 0.0025 * ~1 < 0.01 < ~1
    assert vae.active_units(x, threshold=1e-3) == 2


@pytest.mark.parametrize("threshold", [0, -1.0, "0.01", True, None])
def test_bad_threshold_names_it(threshold: object) -> None:
    with pytest.raises(xvae.ConfigError, match="threshold"):
        _vae().active_units(np.zeros((3, 4), np.float32), threshold=threshold)  # type: ignore[arg-type]


def test_one_example_has_no_variance() -> None:
    with pytest.raises(xvae.DataError, match="2 examples"):
        _vae().latent_activity(np.zeros((1, 4), np.float32))


def test_kl_per_latent_sums_to_evaluates_kl_and_is_recorded_per_epoch() -> None:
    x = (np.random.default_rng(0).random((30, 4)) > 0.5).astype(np.float32)
    vae = _vae()
    per_latent = vae.kl_per_latent(x)
    assert per_latent.shape == (3,) and (per_latent >= 0).all()
    assert per_latent.sum() == pytest.approx(vae.evaluate(x)["kl"], rel=1e-6)  # float32 encoder outputs
    before = vae.kl_per_latent(x > 0.5)
    one = vae.fit(x, epochs=1, batch_size=30, progress=False, binarize="static")  # one full-batch step
    # the step's own per-latent KL: its batch at the weights before its update (the float64
    # step against `encode`'s float32 means and log-variances: float32 rounding, ~6e-8 relative)
    np.testing.assert_allclose(one.vectors["kl_per_latent"][0], before, rtol=1e-6)
    hist = vae.fit(x, epochs=3, batch_size=10, progress=False, binarize="static")
    rows = hist.vectors["kl_per_latent"]
    assert len(rows) == 3 and all(len(r) == 3 for r in rows)
    # like "kl", a mean over the epoch's steps: each epoch's vector sums to its "kl" (float64 sums)
    np.testing.assert_allclose(np.sum(rows, axis=1), hist.history["kl"], rtol=1e-12)
    again = xvae.History.from_json(hist.to_json())
    assert again == hist and again.vectors["kl_per_latent"] == rows


def test_a_classifier_history_has_no_vectors() -> None:
    clf = xvae.Classifier(xvae.ClassifierSpec(input_dim=4, outputs=2), backend="numpy")
    hist = clf.fit(np.zeros((6, 4), np.float32), np.array([0, 1] * 3), epochs=1, batch_size=6, progress=False)
    assert hist.vectors == {} and "vectors" not in hist.to_dict()

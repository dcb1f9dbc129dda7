"""Inputs are checked against the decoder's likelihood before any step runs (issue 16, item 2)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import xvae
from xvae import _validate

X = np.random.default_rng(0).random((40, 6), dtype=np.float32)
SPEC = xvae.VAESpec(input_dim=6, hidden=(8,), latents=2)


def _vae():
    return xvae.VAE(SPEC, backend="numpy", seed=0)


@pytest.mark.parametrize("bad, hint", [
    ((X * 255).astype(np.uint8), r"x / 255 for 8-bit images"),
    (X * 255, r"x / 255 for 8-bit images"),
    (X * 2 - 1, r"\(x \+ 1\) / 2"),
    (X * 1000 - 3, r"x.min\(\)"),
], ids=["uint8", "float-255", "minus1-1", "other"])
def test_fit_refuses_values_a_bernoulli_decoder_cannot_score(bad, hint):
    vae = _vae()
    before = vae.get_weights()
    with pytest.raises(xvae.DataError, match=r"x must hold values in \[0, 1\].*Received values in \[") as info:
        vae.fit(bad, epochs=1, batch_size=8, progress=False)
    assert re.search(hint, str(info.value))
    assert vae.epoch == 0 and all(np.array_equal(w, before[k]) for k, w in vae.get_weights().items())


def test_validation_data_and_evaluate_are_checked_too():
    vae = _vae()
    with pytest.raises(xvae.DataError, match=r"validation_data must hold values in \[0, 1\]"):
        vae.fit(X, validation_data=X * 255, epochs=1, batch_size=8, progress=False)
    with pytest.raises(xvae.DataError, match=r"Received values in \[.*254.*\].*x / 255"):
        vae.evaluate(X * 255)


def test_values_in_range_pass_including_the_bounds_and_bools():
    vae = _vae()
    edge = X.copy()
    edge[0, 0], edge[0, 1] = 0.0, 1.0
    vae.fit(edge, epochs=1, batch_size=8, progress=False)
    vae.fit(X > 0.5, epochs=1, batch_size=8, progress=False)
    assert np.isfinite(vae.evaluate(edge)["loss"])


def test_the_range_rule_is_a_table_keyed_by_likelihood():
    assert _validate.LIKELIHOOD_RANGES["bernoulli"][:2] == (0.0, 1.0)
    wide = X * 10
    np.testing.assert_array_equal(_validate.features(wide, 6), wide)  # no likelihood: any finite value
    with pytest.raises(xvae.DataError, match="Bernoulli"):
        _validate.features(wide, 6, likelihood="bernoulli")


def test_classifier_inputs_have_no_range_rule():
    clf = xvae.Classifier(xvae.ClassifierSpec(input_dim=6), backend="numpy")
    clf.fit(X * 255, np.arange(40) % 2, epochs=1, batch_size=8, progress=False)

"""The optimizer equations of DESIGN §5, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xvae
from xvae import optim

W = {"a": np.array([1.0, -2.0], np.float32)}
G = {"a": np.array([0.5, -0.25], np.float32)}


def test_sgd():
    w, s = optim.SGD(0.1).update_reference(W, G, optim.SGD(0.1).init_state(W))
    np.testing.assert_allclose(w["a"], [0.95, -1.975])
    assert float(s["opt.step"]) == 1 and set(s) == {"opt.step"}


def test_sgd_momentum_pytorch_form():
    opt = optim.SGD(0.1, momentum=0.9)
    state = opt.init_state(W)
    w, state = opt.update_reference(W, G, state)
    w, state = opt.update_reference(w, G, state)
    u = 0.9 * 0.5 + 0.5  # u1 = g; u2 = 0.9 u1 + g
    assert state["opt.u.a"][0] == pytest.approx(u)
    assert w["a"][0] == pytest.approx(1.0 - 0.1 * 0.5 - 0.1 * u)


def test_sgd_nesterov_pytorch_form():
    opt = optim.SGD(0.1, momentum=0.9, nesterov=True)
    w, state = opt.update_reference(W, G, opt.init_state(W))
    assert w["a"][0] == pytest.approx(1.0 - 0.1 * (0.5 + 0.9 * 0.5))


def test_adam_two_steps_by_hand():
    opt = optim.Adam(0.01, b1=0.9, b2=0.999, eps=1e-8)
    w, s = opt.update_reference(W, G, opt.init_state(W))
    assert w["a"][0] == pytest.approx(1.0 - 0.01 * 0.5 / (0.5 + 1e-8))  # first step: lr * sign(g)
    g2 = {"a": np.array([0.1, 0.0], np.float32)}
    w, s = opt.update_reference(w, g2, s)
    m = 0.9 * 0.05 + 0.1 * 0.1
    v = 0.999 * 0.001 * 0.25 + 0.001 * 0.01
    step = 0.01 * (m / (1 - 0.81)) / (math.sqrt(v / (1 - 0.999**2)) + 1e-8)
    assert w["a"][0] == pytest.approx(1.0 - 0.01 * 0.5 / (0.5 + 1e-8) - step)
    assert float(s["opt.step"]) == 2


def test_adam_eps_placement_differs_from_keras():
    """Keras: w -= lr_t * m / (sqrt(v) + eps) with lr_t = lr sqrt(1-b2^t)/(1-b1^t): eps is not bias-corrected."""
    g = {"a": np.array([1e-7, -1e-7], np.float32)}
    opt = optim.Adam(1e-3, eps=1e-8)
    ours, _ = opt.update_reference(W, g, opt.init_state(W))
    lr_t = 1e-3 * math.sqrt(1 - 0.999) / (1 - 0.9)
    keras = 1.0 - lr_t * (0.1 * 1e-7) / (math.sqrt(0.001 * 1e-14) + 1e-8)
    assert abs(float(ours["a"][0]) - keras) > 1e-5  # a visible difference at small gradients


@pytest.mark.parametrize("build", [lambda: optim.Adam(-1.0), lambda: optim.Adam(b1=1.0),
                                   lambda: optim.SGD(0.1, momentum=1.5), lambda: optim.SGD(float("nan")),
                                   lambda: optim.SGD(0.1, nesterov=True), lambda: optim.Adam(lr="fast")])
def test_bad_hyperparameters(build):
    with pytest.raises(xvae.SpecError):
        build()


def test_round_trip_and_unknown():
    for opt in (optim.SGD(0.3, momentum=0.5, nesterov=True), optim.Adam(2e-3, eps=1e-7)):
        assert optim.optimizer_from_dict(opt.to_dict()) == opt
    with pytest.raises(xvae.SpecError, match="Known optimizers: sgd, adam"):
        optim.optimizer_from_dict({"kind": "lbfgs"})

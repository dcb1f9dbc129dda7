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
    with pytest.raises(xvae.SpecError, match="Known optimizers: sgd, adam, adamw"):
        optim.optimizer_from_dict({"kind": "lbfgs"})
    old = {"kind": "adam", "lr": 1e-3, "b1": 0.9, "b2": 0.999, "eps": 1e-8}  # a format-1 checkpoint's
    assert optim.optimizer_from_dict(old) == optim.Adam(1e-3)


def test_sgd_weight_decay_pytorch_form():
    """g <- g + wd * w before momentum (torch.optim.SGD(weight_decay=))."""
    opt = optim.SGD(0.1, momentum=0.9, weight_decay=0.2)
    w, s = opt.update_reference(W, G, opt.init_state(W))
    u = 0.5 + 0.2 * 1.0
    assert s["opt.u.a"][0] == pytest.approx(u) and w["a"][0] == pytest.approx(1.0 - 0.1 * u)


def test_adamw_decoupled_decay_by_hand():
    """w <- w - lr * (m̂/(sqrt(v̂)+eps) + wd * w) = torch's w *= 1 - lr wd, then the Adam step."""
    opt = optim.AdamW(0.01, weight_decay=0.5)
    w, s = opt.update_reference(W, G, opt.init_state(W))
    adam_step = 0.5 / (0.5 + 1e-8)  # first step: m̂ = g, sqrt(v̂) = |g|
    assert w["a"][0] == pytest.approx(1.0 - 0.01 * (adam_step + 0.5 * 1.0))
    torch_order = 1.0 * (1 - 0.01 * 0.5) - 0.01 * adam_step
    assert w["a"][0] == pytest.approx(torch_order, rel=1e-15)
    plain, _ = optim.Adam(0.01).update_reference(W, G, optim.Adam(0.01).init_state(W))
    assert set(s) == {"opt.step", "opt.m.a", "opt.v.a"} and np.all(np.abs(w["a"]) < np.abs(plain["a"]))


def test_clip_by_global_norm_by_hand():
    grads = {"a": np.array([3.0, 0.0], np.float32), "b": np.array([4.0], np.float32)}  # |g| = 5
    clipped = optim.clip_by_global_norm_reference(grads, 1.0)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0])
    np.testing.assert_allclose(clipped["b"], [0.8])
    same = optim.clip_by_global_norm_reference(grads, 10.0)  # below the threshold: unchanged
    np.testing.assert_array_equal(same["a"], grads["a"])
    w = {"a": np.zeros(2, np.float32), "b": np.zeros(1, np.float32)}
    new_w, _ = optim.SGD(1.0, clip_norm=1.0).update_reference(w, grads, optim.SGD(1.0).init_state(w))
    np.testing.assert_allclose(new_w["a"], [-0.6, 0.0])  # clipping comes before the update


def test_step_counter_is_an_integer_past_float32s_range():
    opt = optim.SGD(0.1)
    big = 2**24 + 1  # float32 cannot hold it: 2**24 + 1 rounds to 2**24
    _, s = opt.update_reference(W, G, {"opt.step": np.int64(big)})
    assert s["opt.step"].dtype == np.int64 and int(s["opt.step"]) == big + 1
    assert opt.init_state(W)["opt.step"].dtype == np.int64
    assert optim.step_count(np.float32(7)) == 7  # format-1 checkpoints hold float32
    with pytest.raises(xvae.ConfigError, match="whole number of steps"):
        optim.step_count(np.float32(2.5))


def test_lr_argument_and_schedule_position():
    """update_reference takes the step's rate; without it, lr_at(opt.step) of a schedule."""
    sched = optim.SGD(xvae.schedules.PiecewiseConstant([1], [0.1, 0.01]))
    w1, s1 = sched.update_reference(W, G, sched.init_state(W))
    w2, _ = sched.update_reference(w1, G, s1)
    assert w1["a"][0] == pytest.approx(1.0 - 0.1 * 0.5) and w2["a"][0] == pytest.approx(w1["a"][0] - 0.01 * 0.5)
    w3, _ = sched.update_reference(W, G, sched.init_state(W), lr=0.5)
    assert w3["a"][0] == pytest.approx(1.0 - 0.5 * 0.5)

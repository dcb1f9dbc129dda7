"""Schedules: float64 references checked by hand, JSON round trips, and bad values named."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import xvae
from xvae import schedules as S

STEPS = np.arange(0, 300)


def test_constant():
    assert S.Constant(0.5)(7) == 0.5
    np.testing.assert_array_equal(S.Constant(0.5)(STEPS), np.full(len(STEPS), 0.5))


def test_linear_warmup_by_hand():
    s = S.LinearWarmup(peak=1.0, warmup_steps=4, init=0.2)
    assert [s(t) for t in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    assert S.LinearWarmup(peak=0.3, warmup_steps=0)(0) == 0.3  # no ramp: the peak at once


def test_cosine_decay_by_hand():
    s = S.CosineDecay(peak=1.0, decay_steps=10, warmup_steps=2, init=0.0, final=0.1)
    assert s(0) == 0.0 and s(1) == pytest.approx(0.5) and s(2) == pytest.approx(1.0)
    # halfway through the 8 decay steps: final + (peak - final) * (1 + cos(pi/2)) / 2
    assert s(6) == pytest.approx(0.1 + 0.9 * 0.5)
    assert s(7) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 5 / 8)))
    assert s(10) == pytest.approx(0.1) and s(1000) == pytest.approx(0.1)
    values = S.CosineDecay(peak=1e-3, decay_steps=100)(STEPS)
    assert values[0] == pytest.approx(1e-3) and np.all(np.diff(values[:101]) <= 0)


def test_exponential_decay_by_hand():
    s = S.ExponentialDecay(init=1.0, rate=0.5, decay_steps=10)
    assert s(0) == 1.0 and s(10) == pytest.approx(0.5) and s(5) == pytest.approx(0.5**0.5)
    stairs = S.ExponentialDecay(init=1.0, rate=0.5, decay_steps=10, staircase=True)
    assert [stairs(t) for t in (0, 9, 10, 19, 20)] == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_piecewise_constant_by_hand():
    s = S.PiecewiseConstant(boundaries=[100, 200], values=[1e-3, 1e-4, 1e-5])
    assert [s(t) for t in (0, 99, 100, 199, 200, 10**9)] == [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5]
    assert s.boundaries == (100, 200)  # lists become tuples: specs are hashable
    hash(s)


def test_schedules_take_arrays_and_return_float64():
    for s in (S.Constant(1.0), S.LinearWarmup(1.0, 10), S.CosineDecay(1.0, 50, 5), S.ExponentialDecay(1.0, 0.9, 7),
              S.PiecewiseConstant([3], [1.0, 2.0])):
        values = s(STEPS)
        assert values.dtype == np.float64 and values.shape == STEPS.shape
        assert values[17] == s(17) and isinstance(s(17), float)


@pytest.mark.parametrize("schedule", [
    S.Constant(0.1), S.LinearWarmup(1.0, 10, init=0.1), S.CosineDecay(1e-3, 100, 10, init=1e-5, final=1e-6),
    S.ExponentialDecay(1e-2, 0.96, 1000, staircase=True), S.PiecewiseConstant([10, 20], [3.0, 2.0, 1.0]),
])
def test_json_round_trip(schedule):
    data = json.loads(json.dumps(schedule.to_dict()))
    back = S.schedule_from_dict(data)
    assert back == schedule and type(back) is type(schedule)
    np.testing.assert_array_equal(back(STEPS), schedule(STEPS))


def test_optimizer_with_a_schedule_round_trips():
    opt = xvae.optim.AdamW(S.CosineDecay(1e-3, 500, 50), weight_decay=0.05, clip_norm=1.0)
    data = json.loads(json.dumps(opt.to_dict()))
    assert data["lr"]["kind"] == "cosine_decay"
    assert xvae.optim.optimizer_from_dict(data) == opt
    assert opt.lr_at(50) == pytest.approx(1e-3) and opt.lr_at(0) == 0.0
    assert opt.without_lr() == xvae.optim.AdamW(0.0, weight_decay=0.05, clip_norm=1.0)


@pytest.mark.parametrize(("make", "pattern"), [
    (lambda: S.Constant(-1.0), r"Constant.value must be a finite number >= 0.0. Received: value=-1.0"),
    (lambda: S.Constant(float("nan")), r"Constant.value must be a finite number"),
    (lambda: S.LinearWarmup(1.0, warmup_steps=2.5), r"LinearWarmup.warmup_steps must be a whole number"),
    (lambda: S.CosineDecay(1.0, decay_steps=10, warmup_steps=10), r"CosineDecay.decay_steps must be a whole number of steps >= 11"),
    (lambda: S.ExponentialDecay(1.0, rate=0.0, decay_steps=1), r"ExponentialDecay.rate must be a finite number > 0"),
    (lambda: S.PiecewiseConstant([5, 5], [1.0, 2.0, 3.0]), r"boundaries must be strictly increasing"),
    (lambda: S.PiecewiseConstant([5], [1.0]), r"one more value than boundaries"),
    (lambda: S.PiecewiseConstant([5], [1.0, -2.0]), r"PiecewiseConstant.values\[1\] must be"),
    (lambda: S.schedule_from_dict({"kind": "cyclic"}), r"Unknown schedule 'cyclic'. Known schedules: constant"),
    (lambda: S.schedule_from_dict({"kind": "constant", "value": 1, "oops": 2}), r"Bad constant schedule fields"),
    (lambda: xvae.optim.optimizer_from_dict({"kind": "adam", "lr": {"kind": "cyclic"}}), r"Unknown schedule 'cyclic'"),
    (lambda: xvae.optim.Adam(lr="cosine"), r"Adam.lr must be a finite number >= 0 \(or an xvae.schedules schedule, e.g.*Received: lr=.cosine."),
    (lambda: xvae.optim.AdamW(1e-3, weight_decay=-0.1), r"AdamW.weight_decay must be a finite number >= 0.0\. Received: weight_decay=-0.1"),
    (lambda: xvae.optim.SGD(0.1, weight_decay=-1), r"SGD.weight_decay must be"),
    (lambda: xvae.optim.Adam(clip_norm=0.0), r"Adam.clip_norm must be a finite number > 0, or None.* Received: clip_norm=0.0"),
    (lambda: xvae.optim.SGD(clip_norm=-1.0), r"SGD.clip_norm must be a finite number > 0"),
])
def test_bad_values_name_the_field(make, pattern):
    with pytest.raises(xvae.SpecError, match=pattern):
        make()

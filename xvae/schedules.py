"""Schedules: a value (learning rate, KL weight beta) as a function of the training step.

A schedule is a frozen spec, like an optimizer: it round-trips through JSON
(`to_dict` / `schedule_from_dict`) and is evaluated in float64 NumPy, in the core, once per
step; backends receive the value as a float32 step input ("lr", "beta"), so a schedule never
recompiles a step and every backend sees the same number (DESIGN §8).

The step is the number of updates taken before the one the value is for: the first update
of a fresh model uses ``schedule(0)``, as optax evaluates ``schedule(count)``. In `fit` the
step is `Model.step`, which checkpoints store, so a resumed run continues the schedule
exactly where it stopped. (It is the model's step, not the optimizer's counter: a change of
optimizer kind, which resets the optimizer's state, does not restart a warm-up.)

A schedule of your own subclasses `Schedule` as a frozen dataclass with a `kind` and
`evaluate`; to save it in checkpoints, add it to `SCHEDULES` (a model refuses to save an
optimizer that would not load back).

The shapes follow optax (`optax.linear_schedule`, `optax.warmup_cosine_decay_schedule`,
`optax.exponential_decay`); tests/conformance/test_jax_specific.py checks them against optax.

Examples:
    >>> s = CosineDecay(peak=1e-3, decay_steps=100, warmup_steps=10)
    >>> [round(s(t), 6) for t in (0, 5, 10, 55, 100, 200)]
    [0.0, 0.0005, 0.001, 0.0005, 0.0, 0.0]
    >>> schedule_from_dict(s.to_dict()) == s
    True
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Mapping

import numpy as np
from numpy.typing import NDArray

from xvae._errors import SpecError
from xvae._numbers import PlainNumbers

__all__ = ["Schedule", "Constant", "LinearWarmup", "CosineDecay", "ExponentialDecay",
           "PiecewiseConstant", "schedule_from_dict", "SCHEDULES"]


def _number(owner: str, name: str, value: Any, low: float = 0.0, *, strict: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_, np.timedelta64))
    try:
        ok = ok and math.isfinite(float(value)) and (float(value) > low if strict else float(value) >= low)
    except OverflowError:
        ok = False
    if not ok:
        bound = f"> {low}" if strict else f">= {low}"
        raise SpecError(f"{owner}.{name} must be a finite number {bound}. Received: {name}={value!r:.100}")
    return float(value)


def _steps(owner: str, name: str, value: Any, low: int = 0) -> int:
    if isinstance(value, (bool, np.bool_, np.timedelta64)) or not isinstance(value, (int, np.integer)) or value < low:
        raise SpecError(f"{owner}.{name} must be a whole number of steps >= {low}. Received: {name}={value!r:.100}")
    return int(value)


def steps_array(where: str, step: Any) -> NDArray[np.float64]:
    """`step` (an int or an array of them) as float64, or a ConfigError/DataError naming `where`."""
    from xvae import _memory, _validate

    arr = _validate._numeric(step, where, "() or (n,)")
    _memory.require(8 * 4 * arr.size, f"{where} for {arr.size:,} steps", "evaluate fewer steps at a time")
    with np.errstate(over="ignore", invalid="ignore"):
        return arr.astype(np.float64)


class Schedule(PlainNumbers):
    """Base of schedules: `evaluate(steps)` maps float64 steps to float64 values.

    Subclasses are frozen dataclasses; `__call__` accepts an int (-> float) or an integer
    array (-> float64 array of the same shape).
    """

    kind: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every subclass's `evaluate` gets its steps checked first (a public entry point too)."""
        super().__init_subclass__(**kwargs)
        evaluate = cls.__dict__.get("evaluate")
        if evaluate is not None:
            @functools.wraps(evaluate)
            def checked(self: Schedule, steps: Any) -> NDArray[np.float64]:
                return evaluate(self, steps_array(f"{cls.__name__}.evaluate", steps))

            cls.evaluate = checked  # type: ignore[method-assign]

    def evaluate(self, steps: NDArray[np.float64]) -> NDArray[np.float64]:
        """The schedule at each step (float64 in, float64 out, same shape)."""
        raise NotImplementedError

    def __call__(self, step: Any) -> Any:
        s = steps_array(f"{type(self).__name__}(step)", step)
        out = np.asarray(self.evaluate(s), np.float64)
        return float(out) if out.ndim == 0 else out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data with the schedule's "kind"; `schedule_from_dict` rebuilds it."""
        data: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            data[f.name] = list(value) if isinstance(value, tuple) else value
        return data


@dataclass(frozen=True)
class Constant(Schedule):
    """value at every step.

    Args:
        value: the constant, >= 0.
    """

    kind: ClassVar[str] = "constant"
    value: float

    def __post_init__(self) -> None:
        _number("Constant", "value", self.value)

    def evaluate(self, steps: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.full(np.shape(steps), float(self.value))


@dataclass(frozen=True)
class LinearWarmup(Schedule):
    """init + (peak - init) * min(step, warmup_steps) / warmup_steps; peak from then on.

    `optax.linear_schedule(init, peak, warmup_steps)`. The common KL warm-up for beta is
    ``LinearWarmup(peak=1.0, warmup_steps=N)``.

    Args:
        peak: the value reached at `warmup_steps` and kept, >= 0.
        warmup_steps: steps of the linear ramp, >= 0 (0: peak from the first step).
        init: the value at step 0, >= 0.
    """

    kind: ClassVar[str] = "linear_warmup"
    peak: float
    warmup_steps: int
    init: float = 0.0

    def __post_init__(self) -> None:
        _number("LinearWarmup", "peak", self.peak)
        _steps("LinearWarmup", "warmup_steps", self.warmup_steps)
        _number("LinearWarmup", "init", self.init)

    def evaluate(self, steps: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.warmup_steps == 0:
            return np.full(np.shape(steps), float(self.peak))
        frac = np.clip(steps, 0, self.warmup_steps) / self.warmup_steps
        return self.init + (self.peak - self.init) * frac


@dataclass(frozen=True)
class CosineDecay(Schedule):
    """Linear warm-up from init to peak, then a half cosine from peak down to final.

    For step < warmup_steps: init + (peak - init) * step / warmup_steps. Then, with
    t = min(step, decay_steps) - warmup_steps and T = decay_steps - warmup_steps:
    final + (peak - final) * (1 + cos(pi * t / T)) / 2; `final` after `decay_steps`.
    `optax.warmup_cosine_decay_schedule(init, peak, warmup_steps, decay_steps, final)`:
    `decay_steps` is the whole schedule's length, warm-up included.

    Args:
        peak: the value after warm-up, >= 0.
        decay_steps: the step at which `final` is reached, > warmup_steps.
        warmup_steps: steps of linear warm-up, >= 0.
        init: the value at step 0, >= 0.
        final: the value from `decay_steps` on, >= 0.
    """

    kind: ClassVar[str] = "cosine_decay"
    peak: float
    decay_steps: int
    warmup_steps: int = 0
    init: float = 0.0
    final: float = 0.0

    def __post_init__(self) -> None:
        _number("CosineDecay", "peak", self.peak)
        _steps("CosineDecay", "warmup_steps", self.warmup_steps)
        _steps("CosineDecay", "decay_steps", self.decay_steps, low=self.warmup_steps + 1)
        _number("CosineDecay", "init", self.init)
        _number("CosineDecay", "final", self.final)

    def evaluate(self, steps: NDArray[np.float64]) -> NDArray[np.float64]:
        warm = self.warmup_steps
        t = np.clip(steps, warm, self.decay_steps) - warm
        cosine = self.final + (self.peak - self.final) * 0.5 * (1.0 + np.cos(np.pi * t / (self.decay_steps - warm)))
        if warm == 0:
            return cosine
        ramp = self.init + (self.peak - self.init) * np.clip(steps, 0, warm) / warm
        return np.where(steps < warm, ramp, cosine)


@dataclass(frozen=True)
class ExponentialDecay(Schedule):
    """init * rate ** (step / decay_steps); with staircase, the exponent is floored.

    `optax.exponential_decay(init, decay_steps, rate, staircase=staircase)`. A rate above 1
    grows without bound: `fit` checks the value at every step it will take and refuses a
    run whose schedule overflows.

    Args:
        init: the value at step 0, >= 0.
        rate: the factor per `decay_steps` steps, > 0.
        decay_steps: steps per factor of `rate`, >= 1.
        staircase: decay in whole steps of `decay_steps` (a step function).
    """

    kind: ClassVar[str] = "exponential_decay"
    init: float
    rate: float
    decay_steps: int
    staircase: bool = False

    def __post_init__(self) -> None:
        _number("ExponentialDecay", "init", self.init)
        _number("ExponentialDecay", "rate", self.rate, strict=True)
        _steps("ExponentialDecay", "decay_steps", self.decay_steps, low=1)
        if not isinstance(self.staircase, bool):
            raise SpecError(f"ExponentialDecay.staircase must be True or False. Received: {self.staircase!r:.100}")

    def evaluate(self, steps: NDArray[np.float64]) -> NDArray[np.float64]:
        p = np.asarray(steps, np.float64) / self.decay_steps
        if self.staircase:
            p = np.floor(p)
        with np.errstate(over="ignore"):
            return self.init * np.power(float(self.rate), p)


@dataclass(frozen=True)
class PiecewiseConstant(Schedule):
    """values[i] for boundaries[i-1] <= step < boundaries[i]: the number of boundaries <= step
    picks the value (`len(values) == len(boundaries) + 1`).

    Examples:
        >>> PiecewiseConstant(boundaries=(100, 200), values=(1e-3, 1e-4, 1e-5))([0, 99, 100, 250]).tolist()
        [0.001, 0.001, 0.0001, 1e-05]

    Args:
        boundaries: strictly increasing steps >= 1, where the value changes.
        values: one more value than boundaries, each >= 0.
    """

    kind: ClassVar[str] = "piecewise_constant"
    boundaries: tuple[int, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        for name in ("boundaries", "values"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)):
                raise SpecError(f"PiecewiseConstant.{name} must be a list. Received: {name}={value!r:.100}")
            object.__setattr__(self, name, tuple(value))  # hashable and frozen, as specs are
        for i, b in enumerate(self.boundaries):
            _steps("PiecewiseConstant", f"boundaries[{i}]", b, low=1)
        if any(later <= earlier for earlier, later in zip(self.boundaries, self.boundaries[1:])):
            raise SpecError("PiecewiseConstant.boundaries must be strictly increasing. "
                            f"Received: boundaries={list(self.boundaries)}")
        for i, v in enumerate(self.values):
            _number("PiecewiseConstant", f"values[{i}]", v)
        if len(self.values) != len(self.boundaries) + 1:
            raise SpecError(f"PiecewiseConstant needs one more value than boundaries. Received "
                            f"{len(self.boundaries)} boundaries and {len(self.values)} values.")

    def evaluate(self, steps: NDArray[np.float64]) -> NDArray[np.float64]:
        index = np.searchsorted(np.asarray(self.boundaries, np.float64), steps, side="right")
        return np.asarray(self.values, np.float64)[index]


#: kind -> schedule class; `schedule_from_dict` reads from this table only.
SCHEDULES: dict[str, type[Schedule]] = {
    cls.kind: cls for cls in (Constant, LinearWarmup, CosineDecay, ExponentialDecay, PiecewiseConstant)
}


def schedule_from_dict(data: Mapping[str, Any]) -> Schedule:
    """Rebuild a schedule from `to_dict()` output.

    Raises:
        SpecError: unknown kind, unknown or missing field, or an invalid value.
    """
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind not in SCHEDULES:
        raise SpecError(f"Unknown schedule {kind!r}. Known schedules: {', '.join(SCHEDULES)}.")
    fields_ = {k: v for k, v in data.items() if k != "kind"}
    try:
        return SCHEDULES[kind](**fields_)  # type: ignore[call-arg]
    except TypeError as err:
        raise SpecError(f"Bad {kind} schedule fields {fields_!r}: {err}") from None

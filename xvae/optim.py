"""Optimizer specs with their exact equations and float64 NumPy reference updates.

Each backend implements these equations exactly (DESIGN §5); the references below are the
oracle. The optimizer state has canonical names: `opt.step`, and per weight `opt.m.<w>`,
`opt.v.<w>` (Adam) or `opt.u.<w>` (momentum).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Mapping

import numpy as np
from numpy.typing import NDArray

from xvae._errors import SpecError
from xvae.naming import STEP, slot_name

__all__ = ["OptimizerSpec", "SGD", "Adam", "optimizer_from_dict"]

Arrays = dict[str, NDArray[Any]]


def _check(owner: str, name: str, value: Any, low: float, high: float | None = None) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    try:
        ok = ok and math.isfinite(float(value)) and low <= value and (high is None or value < high)
    except OverflowError:  # an int beyond float64
        ok = False
    if not ok:
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise SpecError(f"{owner}.{name} must be a finite number {bound}. Received: {name}={value!r}")
    return float(value)


class OptimizerSpec:
    """Base of optimizer specs. `slots` names the per-weight state arrays.

    Specs are frozen dataclasses: they say *which* equations to run; each backend runs
    them in its framework, and `update_reference` runs them in float64 NumPy.
    """

    kind: ClassVar[str]
    slots: ClassVar[tuple[str, ...]]
    lr: float

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready data with its "kind"; `optimizer_from_dict` rebuilds it."""
        return {"kind": self.kind, **asdict(self)}  # type: ignore[call-overload]

    def init_state(self, weights: Mapping[str, NDArray[Any]]) -> Arrays:
        """Zero state in canonical names (float32), as every backend starts.

        Args:
            weights: canonical weights (name -> array); only their names and shapes are used.

        Returns:
            {"opt.step": float32 0-d zero} plus a float32 zero array of each weight's shape
            per slot, named `opt.<slot>.<weight>`.
        """
        state: Arrays = {STEP: np.zeros((), np.float32)}
        for slot in self.slots:
            for name, w in weights.items():
                state[slot_name(slot, name)] = np.zeros(np.shape(w), np.float32)
        return state

    def update_reference(
        self, weights: Mapping[str, NDArray[Any]], grads: Mapping[str, NDArray[Any]],
        state: Mapping[str, NDArray[Any]],
    ) -> tuple[Arrays, Arrays]:
        """One step in float64 NumPy; returns (new weights, new state).

        Args:
            weights: canonical weights, name -> array.
            grads: gradients of the loss, same names and shapes.
            state: optimizer state as from `init_state` (or a previous call).

        Returns:
            (new weights, new state), float64 arrays in canonical names; "opt.step" counts
            the updates taken.
        """
        raise NotImplementedError


@dataclass(frozen=True)
class SGD(OptimizerSpec):
    """w -= lr * g. With momentum (PyTorch form): u = momentum*u + g; w -= lr*u.

    Nesterov (PyTorch form): u = momentum*u + g; w -= lr * (g + momentum*u).
    Keras' SGD keeps lr inside its momentum buffer (u = momentum*u - lr*g), which differs
    when lr changes between steps; xvae follows PyTorch on every backend.

    Args:
        lr: learning rate, >= 0.
        momentum: in [0, 1); 0 is plain SGD (no state but the step counter).
        nesterov: Nesterov momentum (needs momentum > 0).

    Examples:
        >>> SGD(0.1, momentum=0.9).slots
        ('u',)
    """

    kind: ClassVar[str] = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        _check("SGD", "lr", self.lr, 0.0)
        _check("SGD", "momentum", self.momentum, 0.0, 1.0)
        if not isinstance(self.nesterov, bool):
            raise SpecError(f"SGD.nesterov must be True or False. Received: nesterov={self.nesterov!r:.100}")
        if self.nesterov and self.momentum == 0.0:
            raise SpecError("SGD.nesterov=True needs momentum > 0. Received: momentum=0.0")

    @property
    def slots(self) -> tuple[str, ...]:  # type: ignore[override]
        """("u",) with momentum (the velocity per weight), () without."""
        return ("u",) if self.momentum else ()

    def update_reference(self, weights, grads, state):  # type: ignore[no-untyped-def]
        new_w: Arrays = {}
        new_s: Arrays = {STEP: np.asarray(state[STEP], np.float64) + 1}
        for name, w in weights.items():
            g = np.asarray(grads[name], np.float64)
            if self.momentum:
                u = self.momentum * np.asarray(state[slot_name("u", name)], np.float64) + g
                new_s[slot_name("u", name)] = u
                g = g + self.momentum * u if self.nesterov else u
            new_w[name] = np.asarray(w, np.float64) - self.lr * g
        return new_w, new_s


@dataclass(frozen=True)
class Adam(OptimizerSpec):
    """m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w -= lr m̂ / (sqrt(v̂) + eps).

    m̂ = m / (1 - b1^t), v̂ = v / (1 - b2^t). This is optax's and PyTorch's form. Keras' Adam
    adds eps to sqrt(v) *before* the bias correction ("epsilon hat",
    keras/src/optimizers/adam.py) and defaults to eps=1e-7, so the TF backend writes this
    update by hand instead of using Keras' optimizer.

    Args:
        lr: learning rate, >= 0.
        b1: decay of the first moment m, in [0, 1).
        b2: decay of the second moment v, in [0, 1).
        eps: added to sqrt(v̂), >= 0 (1e-8, the optax/PyTorch default; Keras uses 1e-7).

    Examples:
        >>> Adam(1e-3).to_dict()
        {'kind': 'adam', 'lr': 0.001, 'b1': 0.9, 'b2': 0.999, 'eps': 1e-08}
    """

    kind: ClassVar[str] = "adam"
    slots: ClassVar[tuple[str, ...]] = ("m", "v")
    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        _check("Adam", "lr", self.lr, 0.0)
        _check("Adam", "b1", self.b1, 0.0, 1.0)
        _check("Adam", "b2", self.b2, 0.0, 1.0)
        _check("Adam", "eps", self.eps, 0.0)

    def update_reference(self, weights, grads, state):  # type: ignore[no-untyped-def]
        t = np.asarray(state[STEP], np.float64) + 1
        new_w: Arrays = {}
        new_s: Arrays = {STEP: t}
        for name, w in weights.items():
            g = np.asarray(grads[name], np.float64)
            m = self.b1 * np.asarray(state[slot_name("m", name)], np.float64) + (1 - self.b1) * g
            v = self.b2 * np.asarray(state[slot_name("v", name)], np.float64) + (1 - self.b2) * g * g
            m_hat = m / (1 - self.b1**t)
            v_hat = v / (1 - self.b2**t)
            new_w[name] = np.asarray(w, np.float64) - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
            new_s[slot_name("m", name)] = m
            new_s[slot_name("v", name)] = v
        return new_w, new_s


_KINDS: dict[str, type[OptimizerSpec]] = {"sgd": SGD, "adam": Adam}


def optimizer_from_dict(data: Mapping[str, Any]) -> OptimizerSpec:
    """Rebuild an optimizer spec from `to_dict()` output.

    Args:
        data: a mapping with "kind" ("sgd" or "adam") and the spec's fields.

    Returns:
        The `SGD` or `Adam` spec.

    Raises:
        SpecError: unknown kind, unknown field, or an invalid value.
    """
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind not in _KINDS:
        raise SpecError(f"Unknown optimizer {kind!r}. Known optimizers: {', '.join(_KINDS)}.")
    fields = {k: v for k, v in data.items() if k != "kind"}
    try:
        return _KINDS[kind](**fields)  # type: ignore[arg-type]
    except TypeError as err:
        raise SpecError(f"Bad {kind} optimizer fields {fields!r}: {err}") from None

"""Optimizer specs with their exact equations and float64 NumPy reference updates.

Each backend implements these equations exactly (DESIGN §5); the references below are the
oracle. The optimizer state has canonical names: `opt.step` (an integer: float32 stops
counting exactly at 2^24 steps), and per weight `opt.m.<w>`, `opt.v.<w>` (Adam, AdamW) or
`opt.u.<w>` (momentum).

Every optimizer applies, in this order, to the gradients g of one step:

1. ``clip_norm=c`` (optional): global-norm clipping, ``g <- (g / |g|) * c`` when
   ``|g| >= c``, |g| = sqrt(sum over all weights of sum(g^2)), in float32 in every backend
   (optax.clip_by_global_norm's form; torch's `clip_grad_norm_` adds 1e-6 to |g|, so the
   torch backend writes this by hand);
2. the optimizer's own equations (below), with weight decay where the spec has it.

The learning rate is not compiled into a step: it is a step input ("lr", float32), evaluated
in the core for every step from `lr`, a number or an `xvae.schedules.Schedule` of the step
(DESIGN §8). Changing it never recompiles, and never resets the optimizer's state.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Mapping

import numpy as np
from numpy.typing import NDArray

from xvae import _memory, _validate
from xvae._errors import ConfigError, SpecError
from xvae._numbers import PlainNumbers, real
from xvae.naming import STEP, slot_name
from xvae.schedules import Schedule, schedule_from_dict, steps_array

__all__ = ["OptimizerSpec", "SGD", "Adam", "AdamW", "optimizer_from_dict", "STEP_DTYPE", "step_count",
           "clip_by_global_norm_reference"]

Arrays = dict[str, NDArray[Any]]

#: The dtype of the canonical step counter `opt.step` (checkpoints written before it was an
#: integer hold float32; `step_count` reads both).
STEP_DTYPE = np.dtype(np.int64)


def step_count(value: Any) -> int:
    """The canonical `opt.step` as a Python int (an integer array, or a legacy float32 one).

    Raises:
        ConfigError: the value is not a whole number >= 0.
    """
    try:
        arr = np.asarray(value)
        ok = arr.shape == () and (np.issubdtype(arr.dtype, np.integer) or
                                  (np.issubdtype(arr.dtype, np.floating) and float(arr).is_integer()))
        ok = ok and int(arr) >= 0
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ConfigError(f"optimizer state {STEP!r} must be a whole number of steps >= 0 (a 0-d array). "
                          f"Received {value!r:.100}.")
    return int(arr)


def clip_by_global_norm_reference(grads: Mapping[str, NDArray[Any]], clip_norm: float | None) -> Arrays:
    """float64 global-norm clipping: g * c / |g| when |g| >= c (unchanged below, or without c)."""
    arrays = _arrays("clip_by_global_norm_reference", "grads", grads)
    _check_clip("clip_by_global_norm_reference", clip_norm)
    _memory.require(16 * sum(v.size for v in arrays.values()), "clip_by_global_norm_reference", "pass smaller arrays")
    g = {k: np.asarray(v, np.float64) for k, v in arrays.items()}
    if clip_norm is None:
        return g
    norm = math.sqrt(sum(float(np.sum(v * v)) for v in g.values()))
    if norm < clip_norm:
        return g
    return {k: v / norm * clip_norm for k, v in g.items()}


def _check(owner: str, name: str, value: Any, low: float, high: float | None = None) -> float:
    """A finite real (Python or NumPy) in [low, high), as a Python float."""
    number = real(value)
    if number is None or not (math.isfinite(number) and low <= number and (high is None or number < high)):
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise SpecError(f"{owner}.{name} must be a finite number {bound}. Received: {name}={value!r}")
    return number


def _check_lr(owner: str, value: Any) -> None:
    if isinstance(value, Schedule):
        return
    try:
        _check(owner, "lr", value, 0.0)
    except SpecError:
        raise SpecError(f"{owner}.lr must be a finite number >= 0 (or an xvae.schedules schedule, e.g. "
                        f"xvae.schedules.CosineDecay(peak=1e-3, decay_steps=10000)). Received: lr={value!r:.100}"
                        ) from None


def _check_clip(owner: str, value: Any) -> None:
    if value is not None:
        number = real(value)
        if number is None or not (math.isfinite(number) and number > 0):
            raise SpecError(f"{owner}.clip_norm must be a finite number > 0, or None for no clipping. "
                            f"Received: clip_norm={value!r:.100}")


def _arrays(where: str, name: str, value: Any, like: Mapping[str, NDArray[Any]] | None = None,
            names: Any = None) -> Arrays:
    """A mapping name -> real array (shaped as in `like` where given), or ConfigError/DataError."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: {name} must be a dict of name -> array. Received: {value!r:.200}")
    out = {str(k): _validate._numeric(v, f"{name}[{k!r}]", "like the weight") for k, v in value.items()}
    for key in names if names is not None else (like or {}):
        if key not in out:
            raise ConfigError(f"{where}: {name} lacks {key!r}. Received names: {sorted(out)[:5]}")
        if like is not None and key in like and out[key].shape != np.shape(like[key]):
            raise ConfigError(f"{where}: {name}[{key!r}] has shape {out[key].shape}; the weight has "
                              f"{np.shape(like[key])}.")
    return out


class OptimizerSpec(PlainNumbers):
    """Base of optimizer specs. `slots` names the per-weight state arrays.

    Specs are frozen dataclasses: they say *which* equations to run; each backend runs
    them in its framework, and `update_reference` runs them in float64 NumPy. `lr` is a
    number or an `xvae.schedules.Schedule` of the step; it reaches a backend as a step
    input, so a compiled step depends only on `without_lr()`.
    """

    kind: ClassVar[str]
    slots: ClassVar[tuple[str, ...]]
    lr: float | Schedule
    clip_norm: float | None

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready data with its "kind"; `optimizer_from_dict` rebuilds it."""
        data = {"kind": self.kind, **asdict(self)}  # type: ignore[call-overload]
        if isinstance(self.lr, Schedule):
            data["lr"] = self.lr.to_dict()
        return data

    def lr_at(self, step: Any) -> Any:
        """The learning rate of the update taken at `step` (0 = a fresh model's first update).

        Args:
            step: an int, or an integer array of steps.

        Returns:
            float64: a float for an int, an array for an array.
        """
        if isinstance(self.lr, Schedule):
            return self.lr(step)
        value = float(self.lr)
        steps = steps_array(f"{type(self).__name__}.lr_at", step)
        return value if steps.ndim == 0 else np.full(steps.shape, value)

    def without_lr(self) -> "OptimizerSpec":
        """This spec with lr=0: all a compiled step depends on (lr is a step input)."""
        return dataclasses.replace(self, lr=0.0)  # type: ignore[type-var]

    def init_state(self, weights: Mapping[str, NDArray[Any]]) -> Arrays:
        """Zero state in canonical names (float32), as every backend starts.

        Args:
            weights: canonical weights (name -> array); only their names and shapes are used.

        Returns:
            {"opt.step": int64 0-d zero} plus a float32 zero array of each weight's shape
            per slot, named `opt.<slot>.<weight>`.
        """
        weights = _arrays(f"{type(self).__name__}.init_state", "weights", weights)
        _memory.require(4 * len(self.slots) * sum(w.size for w in weights.values()),
                        f"{type(self).__name__}.init_state for {len(weights)} weights", "pass smaller weights")
        state: Arrays = {STEP: np.zeros((), STEP_DTYPE)}
        for slot in self.slots:
            for name, w in weights.items():
                state[slot_name(slot, name)] = np.zeros(np.shape(w), np.float32)
        return state

    def update_reference(
        self, weights: Mapping[str, NDArray[Any]], grads: Mapping[str, NDArray[Any]],
        state: Mapping[str, NDArray[Any]], lr: float | None = None,
    ) -> tuple[Arrays, Arrays]:
        """One step in float64 NumPy (clipping, then the update); returns (new weights, new state).

        Args:
            weights: canonical weights, name -> array.
            grads: gradients of the loss, same names and shapes.
            state: optimizer state as from `init_state` (or a previous call).
            lr: this step's learning rate; None: `lr_at(opt.step)`.

        Returns:
            (new weights, new state), float64 arrays in canonical names; "opt.step" (int64)
            counts the updates taken.
        """
        weights, grads, state = self._checked(weights, grads, state)
        if lr is not None and (isinstance(lr, (bool, np.bool_)) or not isinstance(lr, (int, float, np.integer, np.floating))
                               or not 0 <= lr < math.inf):
            raise ConfigError(f"{type(self).__name__}.update_reference: lr must be a finite number >= 0 or None. "
                              f"Received: lr={lr!r:.100}")
        t = step_count(state[STEP])
        rate = float(self.lr_at(t)) if lr is None else float(lr)
        g = clip_by_global_norm_reference(grads, self.clip_norm)
        w = {k: np.asarray(v, np.float64) for k, v in weights.items()}
        s = {k: np.asarray(v, np.float64) for k, v in state.items() if k != STEP}
        new_w, new_s = self._update(w, g, s, rate, t + 1)
        return new_w, {STEP: np.asarray(t + 1, STEP_DTYPE), **new_s}

    def _update(self, w: Arrays, g: Arrays, s: Arrays, lr: float, t: int) -> tuple[Arrays, Arrays]:
        """The optimizer's equations on float64 arrays; t counts this update (1 for the first)."""
        raise NotImplementedError

    def _checked(self, weights: Any, grads: Any, state: Any) -> tuple[Arrays, Arrays, Arrays]:
        """update_reference's arguments as arrays with the names and shapes they must have."""
        where = f"{type(self).__name__}.update_reference"
        weights = _arrays(where, "weights", weights)
        grads = _arrays(where, "grads", grads, like=weights)
        slots = {slot_name(slot, name): w for slot in self.slots for name, w in weights.items()}
        state = _arrays(where, "state", state, like=slots, names=[STEP, *slots])
        # float64 copies of weights, grads and each slot, and as many temporaries
        _memory.require(16 * (2 + len(self.slots)) * sum(w.size for w in weights.values()),
                        f"{where} for {len(weights)} weights", "pass smaller weights")
        return weights, grads, state


@dataclass(frozen=True)
class SGD(OptimizerSpec):
    """w -= lr * g. With momentum (PyTorch form): u = momentum*u + g; w -= lr*u.

    Nesterov (PyTorch form): u = momentum*u + g; w -= lr * (g + momentum*u).
    Weight decay (PyTorch's `SGD(weight_decay=)`, optax's `add_decayed_weights` before
    `trace`): g = g + weight_decay * w first, i.e. L2 regularisation folded into the gradient.
    Keras' SGD keeps lr inside its momentum buffer (u = momentum*u - lr*g), which differs
    when lr changes between steps; xvae follows PyTorch on every backend.

    Args:
        lr: learning rate, >= 0, or an `xvae.schedules.Schedule` of the step.
        momentum: in [0, 1); 0 is plain SGD (no state but the step counter).
        nesterov: Nesterov momentum (needs momentum > 0).
        weight_decay: L2 factor added to the gradient, >= 0.
        clip_norm: clip the gradients to this global norm first (None: no clipping).

    Examples:
        >>> SGD(0.1, momentum=0.9).slots
        ('u',)
    """

    kind: ClassVar[str] = "sgd"
    lr: float | Schedule = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    clip_norm: float | None = None

    def __post_init__(self) -> None:
        _check_lr("SGD", self.lr)
        _check("SGD", "momentum", self.momentum, 0.0, 1.0)
        _check("SGD", "weight_decay", self.weight_decay, 0.0)
        _check_clip("SGD", self.clip_norm)
        if not isinstance(self.nesterov, bool):
            raise SpecError(f"SGD.nesterov must be True or False. Received: nesterov={self.nesterov!r:.100}")
        if self.nesterov and self.momentum == 0.0:
            raise SpecError("SGD.nesterov=True needs momentum > 0. Received: momentum=0.0")

    @property
    def slots(self) -> tuple[str, ...]:  # type: ignore[override]
        """("u",) with momentum (the velocity per weight), () without."""
        return ("u",) if self.momentum else ()

    def _update(self, w: Arrays, g: Arrays, s: Arrays, lr: float, t: int) -> tuple[Arrays, Arrays]:
        new_w: Arrays = {}
        new_s: Arrays = {}
        for name, wt in w.items():
            d = g[name] + self.weight_decay * wt if self.weight_decay else g[name]
            if self.momentum:
                u = self.momentum * s[slot_name("u", name)] + d
                new_s[slot_name("u", name)] = u
                d = d + self.momentum * u if self.nesterov else u
            new_w[name] = wt - lr * d
        return new_w, new_s


@dataclass(frozen=True)
class Adam(OptimizerSpec):
    """m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w -= lr m̂ / (sqrt(v̂) + eps).

    m̂ = m / (1 - b1^t), v̂ = v / (1 - b2^t). This is optax's and PyTorch's form. Keras' Adam
    adds eps to sqrt(v) *before* the bias correction ("epsilon hat",
    keras/src/optimizers/adam.py) and defaults to eps=1e-7, so the TF backend writes this
    update by hand instead of using Keras' optimizer.

    Args:
        lr: learning rate, >= 0, or an `xvae.schedules.Schedule` of the step.
        b1: decay of the first moment m, in [0, 1).
        b2: decay of the second moment v, in [0, 1).
        eps: added to sqrt(v̂), >= 0 (1e-8, the optax/PyTorch default; Keras uses 1e-7).
        clip_norm: clip the gradients to this global norm first (None: no clipping).

    Examples:
        >>> Adam(1e-3).to_dict()
        {'kind': 'adam', 'lr': 0.001, 'b1': 0.9, 'b2': 0.999, 'eps': 1e-08, 'clip_norm': None}
    """

    kind: ClassVar[str] = "adam"
    slots: ClassVar[tuple[str, ...]] = ("m", "v")
    lr: float | Schedule = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    clip_norm: float | None = None

    def __post_init__(self) -> None:
        _check_lr(type(self).__name__, self.lr)
        _check(type(self).__name__, "b1", self.b1, 0.0, 1.0)
        _check(type(self).__name__, "b2", self.b2, 0.0, 1.0)
        _check(type(self).__name__, "eps", self.eps, 0.0)
        _check_clip(type(self).__name__, self.clip_norm)

    def _direction(self, g: Arrays, s: Arrays, t: int) -> tuple[Arrays, Arrays]:
        """Adam's m̂ / (sqrt(v̂) + eps) per weight, and the new moments."""
        out: Arrays = {}
        new_s: Arrays = {}
        for name, gn in g.items():
            m = self.b1 * s[slot_name("m", name)] + (1 - self.b1) * gn
            v = self.b2 * s[slot_name("v", name)] + (1 - self.b2) * gn * gn
            out[name] = (m / (1 - self.b1**t)) / (np.sqrt(v / (1 - self.b2**t)) + self.eps)
            new_s[slot_name("m", name)] = m
            new_s[slot_name("v", name)] = v
        return out, new_s

    def _update(self, w: Arrays, g: Arrays, s: Arrays, lr: float, t: int) -> tuple[Arrays, Arrays]:
        d, new_s = self._direction(g, s, t)
        return {name: wt - lr * d[name] for name, wt in w.items()}, new_s


@dataclass(frozen=True)
class AdamW(Adam):
    """Adam with decoupled weight decay: w -= lr * (m̂ / (sqrt(v̂) + eps) + weight_decay * w).

    The same equation as PyTorch's `AdamW` (``w *= 1 - lr*weight_decay`` before the Adam
    step, torch/optim/adamw.py) and optax's `adamw` (`add_decayed_weights` after
    `scale_by_adam`, then the learning rate): the decay is scaled by the learning rate (so a
    schedule decays it too) but not by Adam's normalisation, unlike `SGD(weight_decay=)`'s
    L2 term in the gradient. Moments and bias corrections are Adam's.

    Args:
        lr: learning rate, >= 0, or an `xvae.schedules.Schedule` of the step.
        b1: as in `Adam`.
        b2: as in `Adam`.
        eps: as in `Adam`.
        weight_decay: decoupled decay factor, >= 0 (PyTorch's default 0.01; optax's is 1e-4).
        clip_norm: clip the gradients to this global norm first (None: no clipping).

    Examples:
        >>> AdamW(1e-3, weight_decay=0.05).slots
        ('m', 'v')
    """

    kind: ClassVar[str] = "adamw"
    weight_decay: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        _check("AdamW", "weight_decay", self.weight_decay, 0.0)

    def _update(self, w: Arrays, g: Arrays, s: Arrays, lr: float, t: int) -> tuple[Arrays, Arrays]:
        d, new_s = self._direction(g, s, t)
        return {name: wt - lr * (d[name] + self.weight_decay * wt) for name, wt in w.items()}, new_s


_KINDS: dict[str, type[OptimizerSpec]] = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def optimizer_from_dict(data: Mapping[str, Any]) -> OptimizerSpec:
    """Rebuild an optimizer spec from `to_dict()` output.

    Args:
        data: a mapping with "kind" ("sgd", "adam" or "adamw") and the spec's fields; "lr"
            may be a schedule's `to_dict()`.

    Returns:
        The `SGD`, `Adam` or `AdamW` spec.

    Raises:
        SpecError: unknown kind, unknown field, or an invalid value.
    """
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if not isinstance(kind, str) or kind not in _KINDS:
        raise SpecError(f"Unknown optimizer {kind!r:.100}. Known optimizers: {', '.join(_KINDS)}.")
    fields = {k: v for k, v in data.items() if k != "kind"}
    if not all(isinstance(k, str) for k in fields):
        raise SpecError(f"Bad {kind} optimizer fields: names must be strings. Received: {sorted(map(repr, fields))}")
    if isinstance(fields.get("lr"), Mapping):
        fields["lr"] = schedule_from_dict(fields["lr"])
    try:
        return _KINDS[kind](**fields)  # type: ignore[arg-type]
    except TypeError as err:
        raise SpecError(f"Bad {kind} optimizer fields {fields!r}: {err}") from None

"""The optimizer specs of `xvae.optim` as optax transformations (DESIGN §5).

Checked against optax 0.2.8's source and the float64 references (`update_reference`):

* SGD = `optax.sgd(lr, momentum, nesterov)` = trace + scale_by_learning_rate, used as is.
  optax's `trace` is ``u = g + momentum * u`` and, with nesterov, the update
  ``g + momentum * u`` with the *new* u: exactly PyTorch's form (dampening 0), not Keras'
  lr-in-the-buffer form. momentum=0 passes None, so no buffer is kept (no "u" slot then).
* Adam: `optax.adam(lr, b1, b2, eps)` has DESIGN's form (eps outside the square root, after
  the bias correction; not Keras' eps-hat), but it computes the bias correction as
  ``1 - b2**t`` in float32. b2 = 0.999 is not a float32 number, and the subtraction
  cancels: ``1 - float32(0.999)`` is 1.3e-5 off, so every update is ~7e-6 off (sqrt) for
  thousands of steps, 7x DESIGN §6's 1e-6 step tolerance (measured: a bias after 3 steps
  differs from the float64 reference by 7.0e-6; PyTorch does this in float64 and agrees).
  `scale_by_adam` below is optax's transformation with ``1 - b^t = -expm1(t * log b)``,
  log b taken in float64 on the host: 2e-7 relative, and the same equations otherwise.

The learning rate is an argument of `Optimizer.update` (the batch's "lr", a traced
float32 scalar), never baked into the transformation: ``w <- w - lr * update`` after the
chain, so a new rate or a schedule never retraces, and the chain's state does not change
shape when the rate does (what `optax.inject_hyperparams` achieves by storing it in the
state; here the core owns the schedule, so an argument suffices).

* ``clip_norm``: `optax.clip_by_global_norm` first in the chain: ``g / |g| * c`` when not
  ``|g| < c``, |g| the float32 global norm: DESIGN's equation as is (xvae/optim.py).
* SGD ``weight_decay``: `optax.add_decayed_weights` before `optax.trace`: g + wd * w, then
  momentum: PyTorch's SGD(weight_decay=).
* AdamW: `scale_by_adam` below, then `optax.add_decayed_weights`: ``m̂/(sqrt(v̂)+eps) + wd*w``,
  times lr: `optax.adamw`'s chain, which is PyTorch's ``w *= 1 - lr*wd`` then the Adam step
  written as one update.

State in canonical names: ``opt.step`` is the int32 ``count`` (Adam's, or a `count_steps`
counter chained in front of SGD, which has none); slots ``m``/``v`` are Adam's ``mu``/``nu``
(optax's `ScaleByAdamState`) and ``u`` is SGD's ``trace``. `export` / `restore` read and
write them by field name with `optax.tree.get` / `optax.tree.set`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax

from xvae.optim import SGD, Adam, AdamW, OptimizerSpec

__all__ = ["OPTIMIZERS", "Optimizer", "build"]

Params = Any
STEP_FIELD = "count"


class StepCount(NamedTuple):
    """The step counter SGD lacks in optax (named like optax's own `count` fields)."""

    count: jax.Array  # int32, shape ()


def count_steps() -> optax.GradientTransformation:
    """Counts updates; leaves them unchanged."""

    def init_fn(params: Params) -> StepCount:
        del params
        return StepCount(jnp.zeros([], jnp.int32))

    def update_fn(updates: Params, state: StepCount, params: Params = None) -> tuple[Params, StepCount]:
        del params
        return updates, StepCount(optax.safe_increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)


def _one_minus_power(b: float, t: jax.Array) -> jax.Array:
    """``1 - b**t`` without cancellation: ``-expm1(t * log b)``, log b in float64 on the host."""
    log_b = math.log(b) if b > 0 else -math.inf  # b = 0: b**t = 0 for t >= 1
    return -jnp.expm1(t.astype(jnp.float32) * jnp.float32(log_b))


def scale_by_adam(b1: float, b2: float, eps: float) -> optax.GradientTransformation:
    """optax.scale_by_adam (eps_root=0, no nesterov) with accurate bias corrections.

    ``m = (1-b1) g + b1 m; v = (1-b2) g^2 + b2 v; t += 1;
    update = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.
    """

    def init_fn(params: Params) -> optax.ScaleByAdamState:
        # Two separate trees: the step donates the state, and a buffer cannot be donated twice.
        return optax.ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=optax.tree.zeros_like(params),
                                      nu=optax.tree.zeros_like(params))

    def update_fn(updates: Params, state: optax.ScaleByAdamState, params: Params = None
                  ) -> tuple[Params, optax.ScaleByAdamState]:
        del params
        mu = jax.tree.map(lambda g, m: (1 - b1) * g + b1 * m, updates, state.mu)
        nu = jax.tree.map(lambda g, v: (1 - b2) * jnp.square(g) + b2 * v, updates, state.nu)
        count = optax.safe_increment(state.count)
        c1, c2 = _one_minus_power(b1, count), _one_minus_power(b2, count)
        updates = jax.tree.map(lambda m, v: (m / c1) / (jnp.sqrt(v / c2) + eps), mu, nu)
        return updates, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)


class Optimizer(NamedTuple):
    """An optax transformation plus the map from canonical slots to its state fields."""

    tx: optax.GradientTransformation
    fields: Mapping[str, str]  # canonical slot ("m", "v", "u") -> optax state field

    def update(self, params: Params, state: Any, grads: Params, lr: jax.Array) -> tuple[Params, Any]:
        """One step at learning rate `lr` (float32 scalar): the same code for train_step,
        train_steps and apply_gradients."""
        updates, state = self.tx.update(grads, state, params)
        updates = jax.tree.map(lambda u: -lr * u, updates)
        return optax.apply_updates(params, updates), state

    def export(self, state: Any) -> tuple[jax.Array, dict[str, Params]]:
        """(step counter, {slot: params-shaped tree})."""
        slots = {slot: optax.tree.get(state, field) for slot, field in self.fields.items()}
        return optax.tree.get(state, STEP_FIELD), slots

    def restore(self, params: Params, step: Any, slots: Mapping[str, Params]) -> Any:
        """A state with the given counter and slots; `slots={}` and step 0 is the fresh state."""
        state = self.tx.init(params)
        values = {self.fields[slot]: tree for slot, tree in slots.items()}
        return optax.tree.set(state, **{STEP_FIELD: jnp.asarray(step, jnp.int32)}, **values)


def _clip(spec: OptimizerSpec) -> list[optax.GradientTransformation]:
    return [] if spec.clip_norm is None else [optax.clip_by_global_norm(spec.clip_norm)]


def _sgd(spec: SGD) -> Optimizer:
    parts = [*_clip(spec), count_steps()]
    if spec.weight_decay:
        parts.append(optax.add_decayed_weights(spec.weight_decay))
    if spec.momentum:
        parts.append(optax.trace(decay=spec.momentum, nesterov=spec.nesterov))
    return Optimizer(optax.chain(*parts), {"u": "trace"} if spec.momentum else {})


def _adam(spec: Adam) -> Optimizer:
    tx = optax.chain(*_clip(spec), scale_by_adam(spec.b1, spec.b2, spec.eps))
    return Optimizer(tx, {"m": "mu", "v": "nu"})


def _adamw(spec: AdamW) -> Optimizer:
    tx = optax.chain(*_clip(spec), scale_by_adam(spec.b1, spec.b2, spec.eps),
                     optax.add_decayed_weights(spec.weight_decay))
    return Optimizer(tx, {"m": "mu", "v": "nu"})


#: Optimizer spec type -> optax form (the learning rate is applied by `Optimizer.update`).
OPTIMIZERS: dict[type[OptimizerSpec], Callable[[Any], Optimizer]] = {SGD: _sgd, Adam: _adam, AdamW: _adamw}


def build(spec: OptimizerSpec, weights: Mapping[str, Any] | None, device: Any) -> Optimizer:
    """The optax form of `spec`. `weights` and `device` are part of every backend's signature;
    optax keeps no state of its own (`Optimizer.restore` makes it from a params tree), so
    they are unused here."""
    del weights, device
    try:
        make = OPTIMIZERS[type(spec)]
    except KeyError:
        raise NotImplementedError(f"{type(spec).__name__} is not implemented by the jax backend") from None
    opt = make(spec)
    assert tuple(opt.fields) == tuple(spec.slots), (opt.fields, spec.slots)
    return opt

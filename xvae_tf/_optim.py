"""DESIGN §5's optimizer equations, written out with `tf.Variable.assign`.

Keras' optimizers are *not* used, on purpose:

- `keras.optimizers.Adam` uses the "epsilon hat" form, ``alpha_t = lr sqrt(1-b2^t)/(1-b1^t);
  w -= alpha_t m / (sqrt(v) + eps)`` (keras/src/optimizers/adam.py), i.e. eps is added
  before the bias correction, and defaults to eps=1e-7. Where |g| is comparable to eps
  (small gradients, early steps) the two forms give visibly different steps;
  tests/conformance/test_tf_specific.py measures it.
- `keras.optimizers.SGD` keeps lr inside its momentum buffer (``u = momentum u - lr g;
  w += u``), which differs from PyTorch's form whenever lr changes.

The learning rate is an argument of `apply` (the batch's "lr", a float32 tensor input of the
step's tf.function), so a new rate or a schedule never retraces. Global-norm clipping
(``clip_norm``) runs first, written as optax.clip_by_global_norm computes it:
``|g| = sqrt(sum of sum(g^2))`` in float32, ``g / |g| * c`` unless ``|g| < c``.
Weight decay: SGD adds ``wd * w`` to the gradient (PyTorch's SGD); AdamW subtracts
``lr * wd * w`` beside the Adam step (PyTorch's AdamW, optax's adamw).

Dispatch is by optimizer-spec type (`OPTIMIZERS`). Every optimizer owns its state as
variables under canonical names (`opt.step`, `opt.<slot>.<weight>`), so `_weights.opt_state_from_canonical`
and `_weights.opt_state_to_canonical` move it exactly like the weights. `apply` is traced inside the step's
tf.function; its Python loop over weights runs at trace time only, and under XLA each
weight's update fuses into one elementwise kernel.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before tensorflow is imported

from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from xvae.naming import STEP, slot_name
from xvae.optim import SGD, Adam, AdamW, OptimizerSpec

__all__ = ["OPTIMIZERS", "Optimizer", "build"]


def clip_by_global_norm(grads: Sequence[tf.Tensor], clip_norm: float | None) -> list[tf.Tensor]:
    """g / |g| * c unless |g| < c, |g| the float32 global norm (optax.clip_by_global_norm's form)."""
    if clip_norm is None:
        return list(grads)
    norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads]))
    c = tf.constant(clip_norm, tf.float32)
    return [tf.where(norm < c, g, g / norm * c) for g in grads]


class Optimizer:
    """State variables under canonical names plus one traced update."""

    def __init__(self, spec: OptimizerSpec, weights: Mapping[str, tf.Variable]) -> None:
        self.spec = spec
        self.names = list(weights)
        self.step = tf.Variable(tf.zeros((), tf.int64), name=STEP)  # an integer: exact past 2^24
        self.slots: dict[str, list[tf.Variable]] = {
            slot: [tf.Variable(tf.zeros_like(w), name=slot_name(slot, n)) for n, w in weights.items()]
            for slot in spec.slots
        }

    def state(self) -> dict[str, tf.Variable]:
        """Canonical name -> variable: exactly the keys of `spec.init_state(weights)`."""
        out = {STEP: self.step}
        for slot, variables in self.slots.items():
            out.update({slot_name(slot, n): v for n, v in zip(self.names, variables)})
        return out

    def apply(self, weights: Sequence[tf.Variable], grads: Sequence[tf.Tensor], lr: tf.Tensor) -> None:
        """One update of `weights` (canonical order) from `grads` at rate `lr` (float32
        scalar): clipping, then the optimizer's equations; increments opt.step."""
        self._update(weights, clip_by_global_norm(grads, self.spec.clip_norm), lr)

    def _update(self, weights: Sequence[tf.Variable], grads: Sequence[tf.Tensor], lr: tf.Tensor) -> None:
        raise NotImplementedError


def _bias_correction(decay: float, t: tf.Tensor) -> tf.Tensor:
    """1 - decay^t, computed in float64 and rounded once to float32.

    In float32, b2 = 0.999 rounds to 0.99900001, so ``1 - b2**t`` is off by 1.3e-5 relative at
    t=1 (6e-6 in the step): more than DESIGN §6's 1e-6 for one step. Two float64 scalars per
    step cost nothing and keep the step within float32 rounding of the reference.
    """
    power = tf.pow(tf.constant(decay, tf.float64), tf.cast(t, tf.float64))
    return tf.cast(1.0 - power, tf.float32)


class TFAdam(Optimizer):
    """m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w -= lr (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps).

    t is opt.step after the increment. This is optax's / PyTorch's form (DESIGN §5).
    """

    #: AdamW's decoupled weight decay; 0 for Adam.
    decay = 0.0

    def _update(self, weights: Sequence[tf.Variable], grads: Sequence[tf.Tensor], lr: tf.Tensor) -> None:
        s: Any = self.spec
        t = self.step + 1
        self.step.assign(t, read_value=False)
        bc1, bc2 = _bias_correction(s.b1, t), _bias_correction(s.b2, t)
        for w, g, m, v in zip(weights, grads, self.slots["m"], self.slots["v"]):
            m_new = s.b1 * m + (1.0 - s.b1) * g
            v_new = s.b2 * v + (1.0 - s.b2) * tf.square(g)
            m.assign(m_new, read_value=False)
            v.assign(v_new, read_value=False)
            update = (m_new / bc1) / (tf.sqrt(v_new / bc2) + s.eps)
            if self.decay:
                update = update + self.decay * w
            w.assign_sub(lr * update, read_value=False)


class TFAdamW(TFAdam):
    """Adam with decoupled weight decay: w -= lr (m̂ / (sqrt(v̂) + eps) + weight_decay w)."""

    def __init__(self, spec: OptimizerSpec, weights: Mapping[str, tf.Variable]) -> None:
        super().__init__(spec, weights)
        self.decay = float(spec.weight_decay)  # type: ignore[attr-defined]


class TFSGD(Optimizer):
    """g += weight_decay w; w -= lr g; momentum (PyTorch form): u = momentum u + g, w -= lr u;
    nesterov: u = momentum u + g, w -= lr (g + momentum u)."""

    def _update(self, weights: Sequence[tf.Variable], grads: Sequence[tf.Tensor], lr: tf.Tensor) -> None:
        s: Any = self.spec
        self.step.assign_add(1, read_value=False)
        if s.weight_decay:
            grads = [g + s.weight_decay * w for w, g in zip(weights, grads)]
        if not s.momentum:
            for w, g in zip(weights, grads):
                w.assign_sub(lr * g, read_value=False)
            return
        for w, g, u in zip(weights, grads, self.slots["u"]):
            u_new = s.momentum * u + g
            u.assign(u_new, read_value=False)
            w.assign_sub(lr * (g + s.momentum * u_new if s.nesterov else u_new), read_value=False)


#: optimizer-spec type -> its TensorFlow implementation.
OPTIMIZERS: dict[type, type[Optimizer]] = {Adam: TFAdam, AdamW: TFAdamW, SGD: TFSGD}


def build(spec: OptimizerSpec, weights: Mapping[str, tf.Variable], device: str | None) -> Optimizer:
    """The TensorFlow optimizer for `spec`, with zero state beside `weights` (on `device` if given)."""
    try:
        cls = OPTIMIZERS[type(spec)]
    except KeyError:
        raise NotImplementedError(f"{type(spec).__name__} is not implemented by the tf backend") from None
    if device is None:
        return cls(spec, weights)
    with tf.device(device):
        return cls(spec, weights)

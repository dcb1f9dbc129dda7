"""The float64 NumPy reference backend: forward, hand-written backprop, optimizer equations.

It implements the same seam as the framework backends and is the conformance suite's
oracle. It is registered as the backend "numpy" (alias "reference"): slow, exact, always
available. `ReferenceBackend(dtype=np.float32)` runs the same code in float32, which
separates "float32 rounding" from "wrong formula" when a tolerance is justified.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from xvae import losses as L
from xvae._errors import ConfigError
from xvae._specs import ModelSpec, VAESpec
from xvae.backend import (
    FUNCTIONS,
    Backend,
    Batch,
    CompileOptions,
    Metrics,
    OptState,
    Program,
    Weights,
    check_batch,
)
from xvae.naming import STEP, Dense, dense_layers
from xvae.optim import STEP_DTYPE, OptimizerSpec, step_count

__all__ = ["ReferenceBackend", "ReferenceProgram", "ACTIVATIONS"]

Array = NDArray[Any]


def _sigmoid(x: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _erf(x: Array) -> Array:
    from scipy.special import erf  # scipy ships with scikit-learn, a core dependency

    return erf(x)


def _gelu(x: Array) -> tuple[Array, Array]:
    cdf = 0.5 * (1.0 + _erf(x / np.sqrt(2.0)))
    return x * cdf, cdf + x * np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


#: activation name -> x -> (f(x), f'(x))
ACTIVATIONS: dict[str, Callable[[Array], tuple[Array, Array]]] = {
    "linear": lambda x: (x, np.ones_like(x)),
    "relu": lambda x: (np.maximum(x, 0.0), (x > 0).astype(x.dtype)),
    "tanh": lambda x: (np.tanh(x), 1.0 - np.tanh(x) ** 2),
    "sigmoid": lambda x: (_sigmoid(x), _sigmoid(x) * (1.0 - _sigmoid(x))),
    "elu": lambda x: (np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
                      np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0)))),
    "gelu": _gelu,
    "softplus": lambda x: (np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x))), _sigmoid(x)),
    "leaky_relu": lambda x: (np.where(x > 0, x, 0.01 * x), np.where(x > 0, 1.0, 0.01)),
}


def _forward(tower: list[Dense], w: dict[str, Array], x: Array) -> tuple[Array, list[tuple[Array, Array]]]:
    """Run dense layers; the cache holds (layer input, activation derivative) per layer."""
    cache = []
    for layer in tower:
        pre = x @ w[f"{layer.name}.kernel"] + w[f"{layer.name}.bias"]
        out, deriv = ACTIVATIONS[layer.activation](pre)
        cache.append((x, deriv))
        x = out
    return x, cache


def _backward(tower: list[Dense], w: dict[str, Array], cache: list[tuple[Array, Array]],
              dout: Array, grads: dict[str, Array]) -> Array:
    """Backprop dL/d(output) through the tower, accumulating into `grads`; returns dL/d(input)."""
    for layer, (x, deriv) in zip(reversed(tower), reversed(cache)):
        dpre = dout * deriv
        grads[f"{layer.name}.kernel"] = x.T @ dpre
        grads[f"{layer.name}.bias"] = dpre.sum(axis=0)
        dout = dpre @ w[f"{layer.name}.kernel"].T
    return dout


class ReferenceProgram(Program):
    """A model as plain arrays; every step is written out by hand."""

    def __init__(self, spec: ModelSpec, optimizer: OptimizerSpec | None, dtype: Any) -> None:
        self.spec = spec
        self.optimizer = optimizer
        self.dtype = np.dtype(dtype)
        self.towers = dense_layers(spec)
        self.kind = "vae" if isinstance(spec, VAESpec) else "classifier"
        self.weights: dict[str, Array] = {}
        self.opt_state: dict[str, Array] = {}

    # -- state -------------------------------------------------------------------------
    def set_state(self, weights: Weights, opt_state: OptState | None = None) -> None:
        self.weights = {k: np.array(v, dtype=self.dtype) for k, v in weights.items()}
        if self.optimizer is None:
            self.opt_state = {}
        else:
            state = self.optimizer.init_state(weights) if opt_state is None else opt_state
            self.opt_state = {k: (np.asarray(step_count(v), STEP_DTYPE) if k == STEP else np.array(v, dtype=self.dtype))
                              for k, v in state.items()}

    def get_state(self) -> tuple[Weights, OptState]:
        f32 = lambda d: {k: (np.array(v, dtype=STEP_DTYPE) if k == STEP else np.array(v, dtype=np.float32, order="C"))  # noqa: E731
                         for k, v in d.items()}
        return f32(self.weights), f32(self.opt_state)

    # -- inference ---------------------------------------------------------------------
    def _encode(self, x: Array) -> tuple[Array, Array, Array, list[Any]]:
        h, cache = _forward(self.towers["encoder"], self.weights, x)
        mean_layer, logvar_layer = self.towers["heads"]
        mean = h @ self.weights[f"{mean_layer.name}.kernel"] + self.weights[f"{mean_layer.name}.bias"]
        logvar = h @ self.weights[f"{logvar_layer.name}.kernel"] + self.weights[f"{logvar_layer.name}.bias"]
        return mean, logvar, h, cache

    def run(self, fn: str, **inputs: Array) -> dict[str, NDArray[np.float32]]:
        if fn not in FUNCTIONS[self.kind]:
            raise ConfigError(
                f"Unknown function {fn!r} for a {self.kind}. Known: {', '.join(FUNCTIONS[self.kind])}."
            )
        if fn == "encode":
            mean, logvar, _, _ = self._encode(np.asarray(inputs["x"], self.dtype))
            out = {"mean": mean, "logvar": logvar}
        elif fn == "decode":
            out = {"logits": _forward(self.towers["decoder"], self.weights, np.asarray(inputs["z"], self.dtype))[0]}
        else:
            out = {"logits": _forward(self.towers["classify"], self.weights, np.asarray(inputs["x"], self.dtype))[0]}
        return {k: v.astype(np.float32) for k, v in out.items()}

    # -- loss and gradients ------------------------------------------------------------
    def _loss_and_grads(self, batch: Batch, need_grads: bool = True) -> tuple[dict[str, float], dict[str, Array]]:
        check_batch(batch, self.kind)
        x = np.asarray(batch["x"], self.dtype)
        mask = np.asarray(batch["mask"], self.dtype)
        wts = mask / mask.sum()  # d(masked mean)/d(per-example value)
        grads: dict[str, Array] = {}
        if self.kind == "vae":
            return self._vae(x, batch, wts, grads, need_grads)
        logits, cache = _forward(self.towers["classify"], self.weights, x)
        if self.spec.outputs == 1:  # type: ignore[union-attr]
            y = np.asarray(batch["y"], self.dtype).reshape(-1)
            per = L.binary_cross_entropy(logits[:, 0], y)
            correct = ((logits[:, 0] > 0) == (y > 0.5))
            dlogits = ((_sigmoid(logits[:, 0]) - y) * wts)[:, None]
        else:
            y = np.asarray(batch["y"]).astype(np.int64).reshape(-1)
            per = L.categorical_cross_entropy(logits, y)
            correct = np.argmax(logits, axis=-1) == y
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            probs = shifted / shifted.sum(axis=-1, keepdims=True)
            probs[np.arange(len(y)), y] -= 1.0
            dlogits = probs * wts[:, None]
        metrics = {"loss": float(np.sum(wts * per)), "accuracy": float(np.sum(wts * correct))}
        if need_grads:
            _backward(self.towers["classify"], self.weights, cache, dlogits.astype(self.dtype), grads)
        return metrics, grads

    def _vae(self, x: Array, batch: Batch, wts: Array, grads: dict[str, Array],
             need_grads: bool) -> tuple[dict[str, float], dict[str, Array]]:
        beta = float(np.asarray(batch["beta"]))
        eps = np.asarray(batch["noise"], self.dtype)
        mean, logvar, h, enc_cache = self._encode(x)
        std = np.exp(0.5 * logvar)
        z = mean + std * eps
        logits, dec_cache = _forward(self.towers["decoder"], self.weights, z)
        loss, recon, kl = L.negative_elbo(logits, x, mean, logvar, beta)
        metrics = {name: float(np.sum(wts * v)) for name, v in
                   (("loss", loss), ("reconstruction", recon), ("kl", kl))}
        if not need_grads:
            return metrics, grads
        dlogits = ((_sigmoid(logits) - x) * wts[:, None]).astype(self.dtype)
        dz = _backward(self.towers["decoder"], self.weights, dec_cache, dlogits, grads)
        dmean = dz + beta * wts[:, None] * mean
        dlogvar = dz * 0.5 * std * eps + beta * wts[:, None] * 0.5 * (np.exp(logvar) - 1.0)
        dh = np.zeros_like(h)
        for layer, d in zip(self.towers["heads"], (dmean, dlogvar)):
            grads[f"{layer.name}.kernel"] = h.T @ d
            grads[f"{layer.name}.bias"] = d.sum(axis=0)
            dh += d @ self.weights[f"{layer.name}.kernel"].T
        _backward(self.towers["encoder"], self.weights, enc_cache, dh, grads)
        return metrics, grads

    def loss_and_grads(self, batch: Batch) -> tuple[dict[str, float], Weights]:
        metrics, grads = self._loss_and_grads(batch)
        return metrics, {k: grads[k].astype(np.float32) for k in self.weights}

    # -- training ----------------------------------------------------------------------
    def apply_gradients(self, grads: Weights, lr: float | None = None) -> None:
        if self.optimizer is None:
            raise ConfigError("This program was compiled without an optimizer: pass optimizer= to fit().")
        if lr is None:
            lr = self.optimizer.lr_at(step_count(self.opt_state[STEP]))
        # The rate is a float32 step input in every backend: the reference takes the same number.
        rate = float(np.float32(lr))
        new_w, new_s = self.optimizer.update_reference(self.weights, grads, self.opt_state, lr=rate)
        self.weights = {k: v.astype(self.dtype) for k, v in new_w.items()}
        self.opt_state = {k: (v if k == STEP else np.asarray(v, self.dtype)) for k, v in new_s.items()}

    def train_step(self, batch: Batch) -> Metrics:
        if self.optimizer is None:
            raise ConfigError("This program was compiled without an optimizer: pass optimizer= to fit().")
        check_batch(batch, self.kind, train=True)
        metrics, grads = self._loss_and_grads(batch)
        self.apply_gradients(grads, lr=float(np.asarray(batch["lr"], np.float32)))
        return {k: np.asarray(v) for k, v in metrics.items()}

    def train_steps(self, batches: Batch) -> Metrics:
        check_batch(batches, self.kind, train=True)
        k = len(batches["x"])
        steps = []
        for i in range(k):
            one = {n: (v if n in ("beta", "lr") and np.ndim(v) == 0 else v[i]) for n, v in batches.items()}
            steps.append(self.train_step(one))
        return {n: np.stack([s[n] for s in steps]) for n in steps[0]}

    def eval_step(self, batch: Batch) -> Metrics:
        metrics, _ = self._loss_and_grads(batch, need_grads=False)
        return {k: np.asarray(v) for k, v in metrics.items()}

    def to_numpy(self, metrics: Metrics) -> dict[str, NDArray[Any]]:
        return {k: np.asarray(v) for k, v in metrics.items()}


class ReferenceBackend(Backend):
    """Float64 NumPy; the oracle of the conformance suite."""

    name = "numpy"

    def __init__(self, dtype: Any = np.float64) -> None:
        self.dtype = dtype

    def info(self) -> dict[str, str]:
        return {"version": np.__version__, "device": f"cpu ({np.dtype(self.dtype).name} reference)"}

    def compile(self, spec, loss, optimizer, options: CompileOptions) -> ReferenceProgram:  # type: ignore[no-untyped-def]
        return ReferenceProgram(spec, optimizer, self.dtype)

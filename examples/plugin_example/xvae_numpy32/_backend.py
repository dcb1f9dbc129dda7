"""The numpy32 backend: xvae's dense models in float32 NumPy, written out by hand.

"The framework" here is NumPy: forward passes, backprop and the update run in float32 on
the CPU. A real plugin puts its framework's modules, autodiff and compiler where these
methods are; the contract around them (canonical names, masks, metrics) stays the same.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xvae import ConfigError, SpecError, distribute
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
from xvae.optim import step_count

F32 = np.float32


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))


def _bce(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """BCE from logits, the stable form: max(x, 0) - x*y + log1p(exp(-|x|))."""
    return np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))


_erf = np.vectorize(math.erf, otypes=[np.float32])  # exact GELU needs erf; NumPy has none


def _gelu(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cdf = 0.5 * (1 + _erf(x / np.sqrt(2, dtype=F32)))
    return x * cdf, cdf + x * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi, dtype=F32)


#: activation -> (f, f') of the pre-activation; a spec using another one is refused.
ACTIVATIONS = {
    "linear": (lambda x: x, np.ones_like),
    "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(F32)),
    "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * (1 - _sigmoid(x))),
    "elu": (lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
            lambda x: np.where(x > 0, 1, np.exp(np.minimum(x, 0))).astype(F32)),
    "softplus": (lambda x: np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))), _sigmoid),
    "leaky_relu": (lambda x: np.where(x > 0, x, 0.01 * x), lambda x: np.where(x > 0, 1, 0.01).astype(F32)),
    "gelu": (lambda x: _gelu(x)[0], lambda x: _gelu(x)[1]),
}


class Numpy32Program(Program):
    """One model: canonical float32 weights and optimizer state in a dict, used as they are."""

    def __init__(self, spec: Any, optimizer: Any) -> None:
        self.spec, self.optimizer = spec, optimizer
        self.towers = dense_layers(spec)  # the layers in forward order, canonical names
        self.kind = "vae" if "encoder" in self.towers else "classifier"
        self.weights: Weights = {}
        self.opt_state: OptState = {}

    # -- state: canonical arrays in, canonical arrays out, bit for bit ------------------
    def set_state(self, weights: Weights, opt_state: OptState | None = None) -> None:
        self.weights = {k: np.array(v, F32) for k, v in weights.items()}
        if self.optimizer is None:
            self.opt_state = {}
        else:
            state = self.optimizer.init_state(weights) if opt_state is None else opt_state
            # "opt.step" is an integer (xvae.optim.step_count reads old float32 ones too)
            self.opt_state = {k: np.array(step_count(v) if k == STEP else v, np.int64 if k == STEP else F32)
                              for k, v in state.items()}

    def get_state(self) -> tuple[Weights, OptState]:
        return ({k: v.copy() for k, v in self.weights.items()},
                {k: v.copy() for k, v in self.opt_state.items()})

    # -- the model ----------------------------------------------------------------------
    def _forward(self, tower: list[Dense], x: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        cache = []
        for layer in tower:
            pre = x @ self.weights[f"{layer.name}.kernel"] + self.weights[f"{layer.name}.bias"]
            cache.append((x, pre))
            x = ACTIVATIONS[layer.activation][0](pre)
        return x, cache

    def _backward(self, tower: list[Dense], cache: list[Any], d: np.ndarray, grads: Weights) -> np.ndarray:
        for layer, (x, pre) in zip(reversed(tower), reversed(cache)):
            d = d * ACTIVATIONS[layer.activation][1](pre)
            grads[f"{layer.name}.kernel"] = x.T @ d
            grads[f"{layer.name}.bias"] = d.sum(axis=0)
            d = d @ self.weights[f"{layer.name}.kernel"].T
        return d

    def run(self, fn: str, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        if fn not in FUNCTIONS[self.kind]:
            raise ConfigError(f"Unknown function {fn!r} for a {self.kind}. "
                              f"Known: {', '.join(FUNCTIONS[self.kind])}.")
        if fn == "encode":
            h, _ = self._forward(self.towers["encoder"], np.asarray(inputs["x"], F32))
            mean, logvar = (self._forward([head], h)[0] for head in self.towers["heads"])
            return {"mean": mean, "logvar": logvar}
        tower, key = ("decoder", "z") if fn == "decode" else ("classify", "x")
        return {"logits": self._forward(self.towers[tower], np.asarray(inputs[key], F32))[0]}

    def _metrics(self, batch: Batch, grads: Weights | None) -> dict[str, np.ndarray]:
        """The step's metrics; fills `grads` (canonical names) when it is a dict."""
        check_batch(batch, self.kind)  # every key present, or the seam's ConfigError
        x = np.asarray(batch["x"], F32)
        mask = np.asarray(batch["mask"], F32)
        w = mask / mask.sum()  # masked mean: padded rows weigh 0
        if self.kind == "classifier":
            logits, cache = self._forward(self.towers["classify"], x)
            if self.spec.outputs == 1:
                y = np.asarray(batch["y"], F32).reshape(-1, 1)
                per, correct, dlogits = _bce(logits, y)[:, 0], (logits > 0) == (y > 0.5), _sigmoid(logits) - y
            else:
                y = np.asarray(batch["y"]).astype(np.int64)
                shifted = logits - logits.max(axis=1, keepdims=True)
                log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
                per, correct = -log_probs[np.arange(len(y)), y], logits.argmax(axis=1) == y
                dlogits = np.exp(log_probs)
                dlogits[np.arange(len(y)), y] -= 1
            if grads is not None:
                self._backward(self.towers["classify"], cache, dlogits * w[:, None], grads)
            return {"loss": per @ w, "accuracy": correct.reshape(-1).astype(F32) @ w}
        beta, eps = F32(batch["beta"]), np.asarray(batch["noise"], F32)
        h, enc_cache = self._forward(self.towers["encoder"], x)
        (mean, mean_cache), (logvar, logvar_cache) = (self._forward([hd], h) for hd in self.towers["heads"])
        std = np.exp(0.5 * logvar)
        logits, dec_cache = self._forward(self.towers["decoder"], mean + std * eps)  # z
        recon = _bce(logits, x).sum(axis=1)
        kl = -0.5 * (1 + logvar - mean**2 - np.exp(logvar)).sum(axis=1)
        if grads is not None:
            dz = self._backward(self.towers["decoder"], dec_cache, (_sigmoid(logits) - x) * w[:, None], grads)
            dmean = dz + beta * w[:, None] * mean
            dlogvar = dz * 0.5 * std * eps + beta * w[:, None] * 0.5 * (np.exp(logvar) - 1)
            mean_head, logvar_head = self.towers["heads"]
            dh = (self._backward([mean_head], mean_cache, dmean, grads)
                  + self._backward([logvar_head], logvar_cache, dlogvar, grads))
            self._backward(self.towers["encoder"], enc_cache, dh, grads)
        return {"loss": (recon + beta * kl) @ w, "reconstruction": recon @ w, "kl": kl @ w}

    # -- training -----------------------------------------------------------------------
    def loss_and_grads(self, batch: Batch) -> tuple[dict[str, float], Weights]:
        grads: Weights = {}
        metrics = self._metrics(batch, grads)
        return {k: float(v) for k, v in metrics.items()}, {k: grads[k].astype(F32) for k in self.weights}

    def apply_gradients(self, grads: Weights, lr: float | None = None) -> None:
        if self.optimizer is None:
            raise ConfigError("This program was compiled without an optimizer: pass optimizer= to fit().")
        if lr is None:  # the spec's rate (or schedule) at this program's step
            lr = self.optimizer.lr_at(step_count(self.opt_state[STEP]))
        # The optimizer's exact equations (xvae.optim), evaluated in float64, stored in float32;
        # the rate is the float32 step input every backend receives.
        new_w, new_s = self.optimizer.update_reference(self.weights, grads, self.opt_state, lr=float(F32(lr)))
        self.weights = {k: np.asarray(v, F32) for k, v in new_w.items()}
        self.opt_state = {k: (v if k == STEP else np.asarray(v, F32)) for k, v in new_s.items()}

    def train_step(self, batch: Batch) -> Metrics:
        check_batch(batch, self.kind, train=True)  # a training batch also carries "lr"
        metrics, grads = self.loss_and_grads(batch)
        self.apply_gradients(grads, lr=float(batch["lr"]))
        return metrics

    def train_steps(self, batches: Batch) -> Metrics:
        k = len(batches["x"])  # K stacked batches; "beta" and "lr" may be one scalar for all K
        steps = [self.train_step({n: v if np.ndim(v) == 0 else v[i] for n, v in batches.items()})
                 for i in range(k)]
        return {n: np.array([s[n] for s in steps], F32) for n in steps[0]}

    def eval_step(self, batch: Batch) -> Metrics:
        return self._metrics(batch, None)

    def to_numpy(self, metrics: Metrics) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in metrics.items()}


class Numpy32Backend(Backend):
    """The plugin object `xvae.backends.get("numpy32")` returns (one per process)."""

    name = "numpy32"

    def info(self) -> dict[str, str]:
        return {"version": np.__version__, "device": "cpu (float32 NumPy)"}

    def compile(self, spec: Any, loss: Any, optimizer: Any, options: CompileOptions) -> Numpy32Program:
        # The loss follows from the spec (xvae.losses.loss_for); refuse what we cannot run.
        for tower in dense_layers(spec).values():
            for layer in tower:
                if layer.activation not in ACTIVATIONS:
                    raise SpecError(f"The numpy32 backend supports activations {', '.join(ACTIVATIONS)}. "
                                    f"Received: activation={layer.activation!r}")
        if options.devices is not None:  # one device: say which, if more are asked for
            distribute.select(options.devices, ["cpu"], self.name)
        return Numpy32Program(spec, optimizer)

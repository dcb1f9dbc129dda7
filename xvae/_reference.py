"""The float64 NumPy reference backend: forward, hand-written backprop, optimizer equations.

It implements the same seam as the framework backends and is the conformance suite's
oracle. It is registered as the backend "numpy" (alias "reference"): slow, exact, always
available. `ReferenceBackend(dtype=np.float32)` runs the same code in float32, which
separates "float32 rounding" from "wrong formula" when a tolerance is justified.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from xvae import distribute
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
from xvae.layers import Placed
from xvae.layers.activations import ACTIVATIONS
from xvae.naming import LOG_SIGMA, STEP, condition_site, towers
from xvae.optim import STEP_DTYPE, OptimizerSpec, step_count

__all__ = ["ReferenceBackend", "ReferenceProgram", "ACTIVATIONS"]

Array = NDArray[Any]


def _sigmoid(x: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _vae_metrics(row_weights: Array, loss: Array, recon: Array, kl: Array, kl_d: Array) -> dict[str, Any]:
    """A VAE step's metrics: the row-weighted sums (the masked means) of the per-example
    values; "kl_per_latent" keeps its latents axis."""
    metrics: dict[str, Any] = {name: float(np.sum(row_weights * v)) for name, v in
                               (("loss", loss), ("reconstruction", recon), ("kl", kl))}
    metrics["kl_per_latent"] = row_weights @ kl_d
    return metrics


def _params(placed: Placed, w: dict[str, Array]) -> dict[str, Array]:
    return {p: w[f"{placed.name}.{p}"] for p in placed.param_shapes()}


def _forward(tower: list[Placed], w: dict[str, Array], x: Array,
             dropout: Array | None = None) -> tuple[Array, list[Any]]:
    """Run a tower of placed layers; the cache holds each layer's own cache."""
    cache = []
    for placed in tower:
        mask = None
        if placed.masks is not None and dropout is not None:
            mask = dropout[:, placed.masks[0]:placed.masks[1]]
        x, c = placed.layer._forward(_params(placed, w), x, mask)
        cache.append(c)
    return x, cache


def _joined(a: Array, y: Array | None) -> Array:
    """concat(a, y) on the last axis: a conditional VAE's one-hot y joins x, h or z."""
    return a if y is None else np.concatenate([a, y.astype(a.dtype)], axis=-1)


def _backward(tower: list[Placed], w: dict[str, Array], cache: list[Any],
              dout: Array, grads: dict[str, Array]) -> Array:
    """Backprop dL/d(output) through the tower, accumulating into `grads`; returns dL/d(input)."""
    for placed, c in zip(reversed(tower), reversed(cache)):
        dout, g = placed.layer._backward(_params(placed, w), c, dout)
        for p, v in g.items():
            grads[f"{placed.name}.{p}"] = v
    return dout


class ReferenceProgram(Program):
    """A model as plain arrays; every step is written out by hand."""

    def __init__(self, spec: ModelSpec, optimizer: OptimizerSpec | None, dtype: Any,
                 loss: L.LossSpec | None = None) -> None:
        self.spec = spec
        self.loss = loss
        self.optimizer = optimizer
        self.dtype = np.dtype(dtype)
        self.towers = towers(spec)
        self.kind = "vae" if isinstance(spec, VAESpec) else "classifier"
        self.site = condition_site(spec)  # where a CVAE's y joins the encoder: "input", "trunk" or None
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
    def _y(self, source: Any) -> Array | None:
        """A CVAE's one-hot "y" from a batch or the inputs of `run` (None for a plain VAE)."""
        if self.site is None:
            return None
        if source.get("y") is None:
            raise ConfigError(f"This conditional VAE (conditions={self.spec.conditions}) needs \"y\", float32 "  # type: ignore[union-attr]
                              "(B, conditions) one-hot, in its batch / inputs.")
        return np.asarray(source["y"], self.dtype)

    def _trunk(self, x: Array, y: Array | None, dropout: Array | None = None) -> tuple[Array, list[Any]]:
        """The encoder trunk's output as the heads read it (with a CVAE's y joined where it goes)."""
        h, cache = _forward(self.towers["encoder"], self.weights, _joined(x, y) if self.site == "input" else x, dropout)
        return (_joined(h, y) if self.site == "trunk" else h), cache

    def _backward_trunk(self, cache: list[Any], dh: Array, grads: dict[str, Array]) -> None:
        if self.site == "trunk":  # the y columns the heads read are inputs, not the trunk's
            dh = dh[:, : dh.shape[1] - self.spec.conditions]  # type: ignore[union-attr]
        _backward(self.towers["encoder"], self.weights, cache, dh, grads)

    def _encode(self, x: Array, y: Array | None = None) -> tuple[Array, Array]:
        h, _ = self._trunk(x, y)
        mean_layer, logvar_layer = self.towers["heads"]
        mean = mean_layer.layer._forward(_params(mean_layer, self.weights), h, None)[0]
        logvar = logvar_layer.layer._forward(_params(logvar_layer, self.weights), h, None)[0]
        return mean, logvar

    def run(self, fn: str, **inputs: Array) -> dict[str, NDArray[np.float32]]:
        if fn not in FUNCTIONS[self.kind]:
            raise ConfigError(
                f"Unknown function {fn!r} for a {self.kind}. Known: {', '.join(FUNCTIONS[self.kind])}."
            )
        y = self._y(inputs) if self.kind == "vae" else None
        if fn == "encode":
            mean, logvar = self._encode(np.asarray(inputs["x"], self.dtype), y)
            out = {"mean": mean, "logvar": logvar}
        elif fn == "decode":
            z = _joined(np.asarray(inputs["z"], self.dtype), y)
            out = {"logits": _forward(self.towers["decoder"], self.weights, z)[0]}
        elif fn == "log_weights":
            out = {"log_weights": self._log_weights(np.asarray(inputs["x"], self.dtype),
                                                    np.asarray(inputs["noise"], self.dtype), y)}
        else:
            out = {"logits": _forward(self.towers["classify"], self.weights, np.asarray(inputs["x"], self.dtype))[0]}
        return {k: v.astype(np.float32) for k, v in out.items()}

    def _log_weights(self, x: Array, eps: Array, y: Array | None = None) -> Array:
        """log p(x, z_k) - log q(z_k | x) per (example, sample): `FUNCTIONS["vae"]["log_weights"]`."""
        mean, logvar = self._encode(x, y)
        n, k, latents = eps.shape
        z = mean[:, None, :] + np.exp(0.5 * logvar)[:, None, :] * eps
        rows_y = None if y is None else np.repeat(y, k, axis=0)
        out = _forward(self.towers["decoder"], self.weights, _joined(z.reshape(n * k, latents), rows_y))[0]
        likelihood = self.spec.decoder.likelihood  # type: ignore[union-attr]
        nll = L.reconstruction_nll(likelihood, out, np.repeat(x, k, axis=0), self._log_sigma()).reshape(n, k)
        return -nll - 0.5 * np.sum(z * z, axis=-1) + 0.5 * np.sum(eps * eps + logvar[:, None, :], axis=-1)

    # -- loss and gradients ------------------------------------------------------------
    def _loss_and_grads(self, batch: Batch, need_grads: bool = True) -> tuple[dict[str, float], dict[str, Array]]:
        check_batch(batch, self.kind, spec=self.spec)
        x = np.asarray(batch["x"], self.dtype)
        mask = np.asarray(batch["mask"], self.dtype)
        wts = mask / mask.sum()  # d(masked mean)/d(per-example value)
        grads: dict[str, Array] = {}
        if self.kind == "vae":
            if isinstance(self.loss, L.IWAEBound):
                return self._iwae(x, batch, wts, grads, need_grads)
            return self._vae(x, batch, wts, grads, need_grads)
        logits, cache = _forward(self.towers["classify"], self.weights, x, self._dropout(batch))
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

    def _dropout(self, batch: Batch) -> Array | None:
        return None if batch.get("dropout") is None else np.asarray(batch["dropout"], self.dtype)

    def _log_sigma(self) -> Array:
        """log sigma of a Gaussian decoder, broadcastable to flat (n, output_dim) rows."""
        dec = self.spec.decoder  # type: ignore[union-attr]
        if LOG_SIGMA in self.weights:
            return self.weights[LOG_SIGMA].reshape(1, -1)
        return np.asarray(np.log(dec.sigma) if dec.likelihood == "gaussian" else 0.0, self.dtype)

    def _vae(self, x: Array, batch: Batch, wts: Array, grads: dict[str, Array],
             need_grads: bool) -> tuple[dict[str, float], dict[str, Array]]:
        beta = float(np.asarray(batch["beta"]))
        eps = np.asarray(batch["noise"], self.dtype)
        dropout = self._dropout(batch)
        y = self._y(batch)
        h, enc_cache = self._trunk(x, y, dropout)
        mean_layer, logvar_layer = self.towers["heads"]
        mean, mean_cache = mean_layer.layer._forward(_params(mean_layer, self.weights), h, None)
        logvar, logvar_cache = logvar_layer.layer._forward(_params(logvar_layer, self.weights), h, None)
        std = np.exp(0.5 * logvar)
        z = mean + std * eps
        out, dec_cache = _forward(self.towers["decoder"], self.weights, _joined(z, y), dropout)
        likelihood = self.spec.decoder.likelihood  # type: ignore[union-attr]
        log_sigma = self._log_sigma()
        recon = L.reconstruction_nll(likelihood, out, x, log_sigma)
        kl = L.kl_divergence(mean, logvar)
        kl_d = L.kl_per_latent(mean, logvar)
        free_bits = getattr(self.loss, "free_bits", 0.0)
        # free bits: the loss charges max(KL_d, free_bits) per latent; no gradient below it
        charged = (kl_d > free_bits) if free_bits else np.ones_like(mean)
        penalty = np.sum(np.maximum(kl_d, free_bits), axis=-1) if free_bits else kl
        loss = recon + beta * penalty
        metrics = _vae_metrics(wts, loss, recon, kl, kl_d)
        if not need_grads:
            return metrics, grads
        dout = self._nll_grads(out, x, wts, grads)
        dz = _backward(self.towers["decoder"], self.weights, dec_cache, dout, grads)[:, : z.shape[1]]
        dmean = dz + beta * wts[:, None] * mean * charged
        dlogvar = dz * 0.5 * std * eps + beta * wts[:, None] * 0.5 * (np.exp(logvar) - 1.0) * charged
        dh = np.zeros_like(h)
        for placed, cache, d in ((mean_layer, mean_cache, dmean), (logvar_layer, logvar_cache, dlogvar)):
            dx, g = placed.layer._backward(_params(placed, self.weights), cache, d)
            grads.update({f"{placed.name}.{p}": v for p, v in g.items()})
            dh += dx
        self._backward_trunk(enc_cache, dh, grads)
        return metrics, grads

    def _nll_grads(self, out: Array, x: Array, row_weights: Array, grads: dict[str, Array]) -> Array:
        """d(sum_rows row_weight * nll(x | out))/d out; a learned log sigma's gradient goes to `grads`."""
        likelihood = self.spec.decoder.likelihood  # type: ignore[union-attr]
        if likelihood == "gaussian":
            log_sigma = self._log_sigma()
            inv_var = np.exp(-2.0 * log_sigma)
            dout = (out - x) * inv_var
            if LOG_SIGMA in self.weights:
                dls = (1.0 - (x - out) ** 2 * inv_var) * row_weights[:, None]
                shape = self.weights[LOG_SIGMA].shape
                grads[LOG_SIGMA] = (dls.sum() * np.ones(shape) if shape == (1,)
                                    else dls.sum(axis=0).reshape(shape))
        elif likelihood == "continuous_bernoulli":
            dout = _sigmoid(out) - x - L._cb_log_norm_grad(out)
        else:
            dout = _sigmoid(out) - x
        return (dout * row_weights[:, None]).astype(self.dtype)

    def _iwae(self, x: Array, batch: Batch, wts: Array, grads: dict[str, Array],
              need_grads: bool) -> tuple[dict[str, float], dict[str, Array]]:
        """`IWAEBound`: loss = log k - logsumexp_i log w_i, its gradient by hand (float64).

        log w_i = -nll_i - beta (|z_i|^2 - |eps_i|^2 - sum logvar) / 2; d loss / d log w_i is
        minus the normalised weight w~_i, so each sample's rows backprop like an ELBO row
        weighted by w~_i; the prior/proposal term adds beta w~_i z_i to dz_i and
        -beta / 2 to d logvar.
        """
        beta = float(np.asarray(batch["beta"]))
        eps = np.asarray(batch["noise"], self.dtype)
        n, k, latents = eps.shape
        y = self._y(batch)
        dropout = self._dropout(batch)  # one mask per example: the encoder's, and the decoder's for all k samples
        h, enc_cache = self._trunk(x, y, dropout)
        mean_layer, logvar_layer = self.towers["heads"]
        mean, mean_cache = mean_layer.layer._forward(_params(mean_layer, self.weights), h, None)
        logvar, logvar_cache = logvar_layer.layer._forward(_params(logvar_layer, self.weights), h, None)
        std = np.exp(0.5 * logvar)
        z = mean[:, None, :] + std[:, None, :] * eps
        rows_y = None if y is None else np.repeat(y, k, axis=0)
        rows_dropout = None if dropout is None else np.repeat(dropout, k, axis=0)
        out, dec_cache = _forward(self.towers["decoder"], self.weights, _joined(z.reshape(n * k, latents), rows_y),
                                  rows_dropout)
        rows_x = np.repeat(x, k, axis=0)
        nll = L.reconstruction_nll(self.spec.decoder.likelihood, out, rows_x,  # type: ignore[union-attr]
                                   self._log_sigma()).reshape(n, k)
        log_w = -nll - beta * 0.5 * (np.sum(z * z - eps * eps, axis=-1) - np.sum(logvar, axis=-1)[:, None])
        peak = log_w.max(axis=1, keepdims=True)
        unnorm = np.exp(log_w - peak)
        loss = np.log(k) - (peak[:, 0] + np.log(unnorm.sum(axis=1)))
        metrics = _vae_metrics(wts, loss, nll.mean(axis=1), L.kl_divergence(mean, logvar),
                               L.kl_per_latent(mean, logvar))
        if not need_grads:
            return metrics, grads
        g = unnorm / unnorm.sum(axis=1, keepdims=True) * wts[:, None]  # (n, k): w~_i times the row weight
        dout = self._nll_grads(out, rows_x, g.reshape(-1), grads)
        dz = _backward(self.towers["decoder"], self.weights, dec_cache, dout, grads)[:, :latents].reshape(n, k, latents)
        dz = dz + beta * g[..., None] * z
        dmean = dz.sum(axis=1)
        dlogvar = np.sum(dz * 0.5 * std[:, None, :] * eps, axis=1) - beta * 0.5 * wts[:, None]
        dh = np.zeros_like(h)
        for placed, cache, d in ((mean_layer, mean_cache, dmean), (logvar_layer, logvar_cache, dlogvar)):
            dx, gr = placed.layer._backward(_params(placed, self.weights), cache, d.astype(self.dtype))
            grads.update({f"{placed.name}.{p}": v for p, v in gr.items()})
            dh += dx
        self._backward_trunk(enc_cache, dh, grads)
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
        check_batch(batch, self.kind, train=True, spec=self.spec)
        metrics, grads = self._loss_and_grads(batch)
        self.apply_gradients(grads, lr=float(np.asarray(batch["lr"], np.float32)))
        return {k: np.asarray(v) for k, v in metrics.items()}

    def train_steps(self, batches: Batch) -> Metrics:
        check_batch(batches, self.kind, train=True, spec=self.spec)
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
        if options.devices is not None:  # the reference has one device: the host CPU
            distribute.select(options.devices, ["cpu"], self.name)
        return ReferenceProgram(spec, optimizer, self.dtype, loss)

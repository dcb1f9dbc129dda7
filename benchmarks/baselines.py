"""Hand-written, idiomatic training loops: what an expert would write in each framework.

Each does exactly the work of `xvae.VAE(VAESpec(input_dim=784, hidden=(H,), latents=20)).fit(
x, batch_size=B, optimizer=Adam(1e-3))` on full batches:

- model: encoder 784-H (relu) with linear mean and logvar heads (H-20 each), decoder 20-H
  (relu)-784 logits; z = mean + exp(logvar / 2) * eps;
- loss per example: sum over pixels of BCE on logits + KL(N(mean, e^logvar) || N(0, 1)),
  averaged over the batch; metrics loss, reconstruction and kl kept per step and pulled to
  the host once per epoch;
- Adam(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8) in the optax / PyTorch form (DESIGN §5);
- input work per epoch, in NumPy, from one Generator, as xvae's core does it: permutation,
  permuted copy of the binarized data, float32 N(0, 1) noise (n, 20); batches are views.

Variants (the best of each framework, as measured in issue 5, plus the runner-ups):

==================  ===================================================================
flax-step           flax.linen + optax, `jax.jit(step, donate_argnums=0)`, one call a step
flax-scan           the same step under `jax.lax.scan` over K batches, one call per K steps
torch-fused         eager PyTorch, `torch.optim.Adam(fused=True)`
torch-foreach       eager PyTorch, `torch.optim.Adam(foreach=True)` (PyTorch's default)
torch-compile       `torch.compile` of forward + loss, fused Adam (slow to compile on CPU)
tf-xla-step         `tf.function(jit_compile=True)` step, hand-written Adam with `assign`
tf-step             the same without XLA (`jit_compile=False`)
tf-xla-loop         K steps in one `tf.function(jit_compile=True)` (`tf.range` loop)
==================  ===================================================================

TensorFlow's Adam is written by hand (DESIGN §5 form, on `tf.Variable`s, inside the compiled
function): Keras' `Adam` puts eps inside the bias correction ("epsilon-hat") and would not
do the same arithmetic; the cost is the same handful of fused element-wise ops either way.

API: `make(variant, problem, x)` returns an object with `epoch() -> mean loss` (one epoch,
input work included, synchronised), `compute_only(steps) -> seconds` (the compiled step
alone on inputs already staged on the device: no host work at all) and `steps_per_call`.
`run(variant, steps, batch, hidden, data)` is the one-call convenience.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from benchmarks._common import (
    B1,
    B2,
    EPS,
    LATENTS,
    LR,
    KeyedDraws,
    Problem,
    draw_epoch,
    init_weights,
)

__all__ = ["BEST_FUSED", "BEST_STEP", "FRAMEWORK", "VARIANTS", "make", "run"]


class Baseline:
    """Common driver: epoch arrays from xvae's keyed draws, then the framework's loop."""

    variant = ""
    fused = False

    def __init__(self, p: Problem, x: NDArray[np.float32]) -> None:
        self.p = p
        self.x = x
        self.rng = KeyedDraws(p.seed)
        self.steps_per_call = p.k if self.fused else 1
        if self.fused and p.steps_per_epoch % p.k:
            raise ValueError(f"{self.variant}: steps_per_epoch={p.steps_per_epoch} must be a multiple "
                             f"of k={p.k}")

    def epoch(self) -> float:
        xs, noise = draw_epoch(self.x, self.rng)
        return self._epoch(xs, noise)

    def _epoch(self, xs: NDArray[np.float32], noise: NDArray[np.float32]) -> float:
        raise NotImplementedError

    def compute_only(self, steps: int) -> float:
        raise NotImplementedError

    def _groups(self, a: NDArray[np.float32]) -> NDArray[np.float32]:
        """(n, d) -> (calls, K, B, d) for fused variants, (calls, B, d) otherwise: a view."""
        p = self.p
        shape = (p.steps_per_epoch // p.k, p.k, p.batch) if self.fused else (p.steps_per_epoch, p.batch)
        return a.reshape(*shape, a.shape[-1])


# --------------------------------------------------------------------------- JAX / Flax
class _Flax(Baseline):
    def __init__(self, p: Problem, x: NDArray[np.float32]) -> None:
        super().__init__(p, x)
        import flax.linen as nn
        import jax
        import jax.numpy as jnp
        import optax

        self.jax, self.jnp = jax, jnp
        hidden = p.hidden

        class Encoder(nn.Module):
            @nn.compact
            def __call__(self, x: Any) -> Any:
                h = nn.relu(nn.Dense(hidden, name="layers_0")(x))
                return nn.Dense(LATENTS, name="mean")(h), nn.Dense(LATENTS, name="logvar")(h)

        class Decoder(nn.Module):
            @nn.compact
            def __call__(self, z: Any) -> Any:
                h = nn.relu(nn.Dense(hidden, name="layers_0")(z))
                return nn.Dense(x.shape[1], name="output")(h)

        class VAE(nn.Module):
            def setup(self) -> None:
                self.encoder = Encoder()
                self.decoder = Decoder()

            def __call__(self, x: Any, eps: Any) -> Any:
                mean, logvar = self.encoder(x)
                z = mean + jnp.exp(0.5 * logvar) * eps
                return self.decoder(z), mean, logvar

        model = VAE()
        w = init_weights(hidden, p.seed)

        def dense(name: str) -> dict[str, Any]:
            return {"kernel": w[f"{name}.kernel"], "bias": w[f"{name}.bias"]}

        params = {"encoder": {"layers_0": dense("encoder.layers.0"), "mean": dense("encoder.mean"),
                              "logvar": dense("encoder.logvar")},
                  "decoder": {"layers_0": dense("decoder.layers.0"), "output": dense("decoder.output")}}
        tx = optax.adam(LR, b1=B1, b2=B2, eps=EPS)
        precision = "highest" if p.precision == "highest" else "default"

        def loss_fn(params: Any, x: Any, eps: Any) -> Any:
            logits, mean, logvar = model.apply({"params": params}, x, eps)
            bce = jnp.maximum(logits, 0) - logits * x + jnp.log1p(jnp.exp(-jnp.abs(logits)))
            rec = jnp.sum(bce, axis=-1)
            kl = -0.5 * jnp.sum(1.0 + logvar - mean**2 - jnp.exp(logvar), axis=-1)
            return jnp.mean(rec + kl), (jnp.mean(rec), jnp.mean(kl))

        def train_step(state: Any, x: Any, eps: Any) -> Any:
            params, opt_state = state
            with jax.default_matmul_precision(precision):
                (loss, (rec, kl)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, eps)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), jnp.stack([loss, rec, kl])

        self.device = _jax_device(jax, p.device)
        params = jax.device_put(params, self.device)
        self.state = (params, jax.device_put(tx.init(params), self.device))
        self.train_step = train_step
        self.step = self._compile(train_step)

    def _compile(self, train_step: Callable[..., Any]) -> Any:
        raise NotImplementedError

    def _epoch(self, xs: NDArray[np.float32], noise: NDArray[np.float32]) -> float:
        metrics = []
        step = self.step
        for xb, nb in zip(self._groups(xs), self._groups(noise)):
            self.state, m = step(self.state, xb, nb)
            metrics.append(m)
        host = self.jax.device_get(metrics)  # the one host sync of the epoch
        return float(np.mean([np.mean(np.atleast_2d(h)[:, 0]) for h in host]))

    def compute_only(self, steps: int) -> float:
        jax = self.jax
        xs, noise = draw_epoch(self.x, self.rng)
        staged = [jax.device_put((xb, nb), self.device)
                  for xb, nb in zip(self._groups(xs), self._groups(noise))]
        self.state, m = self.step(self.state, *staged[0])  # device-resident inputs: may compile anew
        jax.block_until_ready((self.state, m))
        calls = max(1, steps // self.steps_per_call)
        start = time.perf_counter()
        m = None
        for i in range(calls):
            xb, nb = staged[i % len(staged)]
            self.state, m = self.step(self.state, xb, nb)
        jax.block_until_ready((self.state, m))
        return time.perf_counter() - start


def _jax_device(jax: Any, device: str) -> Any:
    kind = "cpu" if device == "cpu" else "gpu"
    return jax.devices(kind)[0]


class FlaxStep(_Flax):
    variant = "flax-step"

    def _compile(self, train_step: Callable[..., Any]) -> Any:
        return self.jax.jit(train_step, donate_argnums=0)


class FlaxScan(_Flax):
    variant = "flax-scan"
    fused = True

    def _compile(self, train_step: Callable[..., Any]) -> Any:
        jax = self.jax

        def train_steps(state: Any, xs: Any, noise: Any) -> Any:
            return jax.lax.scan(lambda s, inp: train_step(s, *inp), state, (xs, noise))

        return jax.jit(train_steps, donate_argnums=0)


# --------------------------------------------------------------------------- PyTorch
class _Torch(Baseline):
    adam_kind = "fused"
    compiled = False

    def __init__(self, p: Problem, x: NDArray[np.float32]) -> None:
        super().__init__(p, x)
        import torch
        import torch.nn.functional as F
        from torch import nn

        self.torch = torch
        self.device = torch.device(_torch_device(torch, p.device))
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = p.precision == "fast"
            torch.backends.cudnn.allow_tf32 = p.precision == "fast"
        w = init_weights(p.hidden, p.seed)

        def linear(name: str) -> nn.Linear:
            fan_in, fan_out = w[f"{name}.kernel"].shape
            layer = nn.Linear(fan_in, fan_out)
            with torch.no_grad():  # torch stores (out, in); canonical kernels are (in, out)
                layer.weight.copy_(torch.from_numpy(w[f"{name}.kernel"].T.copy()))
                layer.bias.copy_(torch.from_numpy(w[f"{name}.bias"]))
            return layer

        class VAE(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.enc = linear("encoder.layers.0")
                self.mean = linear("encoder.mean")
                self.logvar = linear("encoder.logvar")
                self.dec = linear("decoder.layers.0")
                self.out = linear("decoder.output")

            def forward(self, x: Any, eps: Any) -> Any:
                h = F.relu(self.enc(x))
                mean, logvar = self.mean(h), self.logvar(h)
                z = mean + torch.exp(0.5 * logvar) * eps
                return self.out(F.relu(self.dec(z))), mean, logvar

        self.model = VAE().to(self.device)
        batch = p.batch

        def loss_fn(x: Any, eps: Any) -> Any:
            logits, mean, logvar = self.model(x, eps)
            rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / batch
            kl = -0.5 * torch.sum(1.0 + logvar - mean.square() - logvar.exp()) / batch
            return rec + kl, rec, kl

        self.loss_fn = torch.compile(loss_fn) if self.compiled else loss_fn
        kwargs = {"fused": True} if self.adam_kind == "fused" else {"foreach": True}
        self.opt = torch.optim.Adam(self.model.parameters(), lr=LR, betas=(B1, B2), eps=EPS, **kwargs)

    def _step(self, xb: Any, nb: Any) -> Any:
        loss, rec, kl = self.loss_fn(xb, nb)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return torch_stack3(self.torch, loss, rec, kl)

    def _epoch(self, xs: NDArray[np.float32], noise: NDArray[np.float32]) -> float:
        torch = self.torch
        # Staged once per epoch (a no-op on CPU: from_numpy shares the memory); batches are views.
        xt = torch.from_numpy(xs).to(self.device, non_blocking=True)
        nt = torch.from_numpy(noise).to(self.device, non_blocking=True)
        b = self.p.batch
        metrics = [self._step(xt[lo:lo + b], nt[lo:lo + b]) for lo in range(0, self.p.n, b)]
        return float(torch.stack(metrics)[:, 0].mean().item())  # the one host sync

    def compute_only(self, steps: int) -> float:
        torch = self.torch
        xs, noise = draw_epoch(self.x, self.rng)
        b = self.p.batch
        staged = [(torch.from_numpy(xs[lo:lo + b]).to(self.device), torch.from_numpy(noise[lo:lo + b]).to(self.device))
                  for lo in range(0, self.p.n, b)]
        self._step(*staged[0]).cpu()  # warm-up (allocator, fused-Adam state on a new device)
        self._sync()
        start = time.perf_counter()
        m = None
        for i in range(steps):
            m = self._step(*staged[i % len(staged)])
        if m is not None:
            m.cpu()
        self._sync()
        return time.perf_counter() - start

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()


def torch_stack3(torch: Any, a: Any, b: Any, c: Any) -> Any:
    return torch.stack([a.detach(), b.detach(), c.detach()])


def _torch_device(torch: Any, device: str) -> str:
    if device in ("gpu", "cuda"):
        return "cuda"
    return device


class TorchFused(_Torch):
    variant = "torch-fused"


class TorchForeach(_Torch):
    variant = "torch-foreach"
    adam_kind = "foreach"


class TorchCompile(_Torch):
    variant = "torch-compile"
    compiled = True


# --------------------------------------------------------------------------- TensorFlow
class _TF(Baseline):
    xla = True

    def __init__(self, p: Problem, x: NDArray[np.float32]) -> None:
        super().__init__(p, x)
        import tensorflow as tf

        self.tf = tf
        gpu = p.device != "cpu"
        self.device = "/GPU:0" if gpu else "/CPU:0"
        # TensorFlow's TF32 switch is process-global (DESIGN §5).
        tf.config.experimental.enable_tensor_float_32_execution(p.precision == "fast")
        w = init_weights(p.hidden, p.seed)
        with tf.device(self.device):
            self.w = {k: tf.Variable(v, name=k.replace(".", "_")) for k, v in w.items()}
            self.m = {k: tf.Variable(tf.zeros_like(v)) for k, v in w.items()}
            self.v = {k: tf.Variable(tf.zeros_like(v)) for k, v in w.items()}
            self.t = tf.Variable(0.0)
        names = sorted(self.w)
        W = self.w

        def loss_fn(x: Any, eps: Any) -> Any:
            h = tf.nn.relu(x @ W["encoder.layers.0.kernel"] + W["encoder.layers.0.bias"])
            mean = h @ W["encoder.mean.kernel"] + W["encoder.mean.bias"]
            logvar = h @ W["encoder.logvar.kernel"] + W["encoder.logvar.bias"]
            z = mean + tf.exp(0.5 * logvar) * eps
            d = tf.nn.relu(z @ W["decoder.layers.0.kernel"] + W["decoder.layers.0.bias"])
            logits = d @ W["decoder.output.kernel"] + W["decoder.output.bias"]
            rec = tf.reduce_mean(tf.reduce_sum(
                tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), axis=-1))
            kl = tf.reduce_mean(-0.5 * tf.reduce_sum(1.0 + logvar - mean**2 - tf.exp(logvar), axis=-1))
            return rec + kl, rec, kl

        def train_step(x: Any, eps: Any) -> Any:
            with tf.GradientTape() as tape:
                loss, rec, kl = loss_fn(x, eps)
            grads = tape.gradient(loss, [W[k] for k in names])
            t = self.t.assign_add(1.0)
            c1 = 1.0 - tf.pow(B1, t)
            c2 = 1.0 - tf.pow(B2, t)
            for k, g in zip(names, grads):  # DESIGN §5 Adam (optax / PyTorch form)
                m = self.m[k].assign(B1 * self.m[k] + (1.0 - B1) * g)
                v = self.v[k].assign(B2 * self.v[k] + (1.0 - B2) * tf.square(g))
                W[k].assign_sub(LR * (m / c1) / (tf.sqrt(v / c2) + EPS))
            return tf.stack([loss, rec, kl])

        self.train_step = train_step
        self.step = self._compile(train_step)

    def _compile(self, train_step: Callable[..., Any]) -> Any:
        raise NotImplementedError

    def _epoch(self, xs: NDArray[np.float32], noise: NDArray[np.float32]) -> float:
        tf = self.tf
        metrics = []
        with tf.device(self.device):
            for xb, nb in zip(self._groups(xs), self._groups(noise)):
                metrics.append(self.step(xb, nb))  # NumPy views in: converted at the call
            host = [m.numpy() for m in metrics]  # the host sync
        return float(np.mean([np.mean(np.atleast_2d(h)[:, 0]) for h in host]))

    def compute_only(self, steps: int) -> float:
        tf = self.tf
        xs, noise = draw_epoch(self.x, self.rng)
        with tf.device(self.device):
            staged = [(tf.constant(xb), tf.constant(nb))
                      for xb, nb in zip(self._groups(xs), self._groups(noise))]
            self.step(*staged[0]).numpy()  # warm-up: tensors (not NumPy) in may retrace
            calls = max(1, steps // self.steps_per_call)
            start = time.perf_counter()
            m = None
            for i in range(calls):
                m = self.step(*staged[i % len(staged)])
            if m is not None:
                m.numpy()
            return time.perf_counter() - start


class TFXlaStep(_TF):
    variant = "tf-xla-step"

    def _compile(self, train_step: Callable[..., Any]) -> Any:
        return self.tf.function(train_step, jit_compile=self.xla, reduce_retracing=True)


class TFStep(TFXlaStep):
    variant = "tf-step"
    xla = False


class TFXlaLoop(_TF):
    variant = "tf-xla-loop"
    fused = True

    def _compile(self, train_step: Callable[..., Any]) -> Any:
        tf = self.tf
        k = self.p.k

        def train_steps(xs: Any, noise: Any) -> Any:
            out = tf.TensorArray(tf.float32, size=k)
            for i in tf.range(k):  # AutoGraph: a while loop inside the one compiled call
                out = out.write(i, train_step(xs[i], noise[i]))
            return out.stack()

        return tf.function(train_steps, jit_compile=self.xla, reduce_retracing=True)


class TFLoop(TFXlaLoop):
    variant = "tf-loop"
    xla = False


VARIANTS: dict[str, type[Baseline]] = {
    c.variant: c for c in (FlaxStep, FlaxScan, TorchFused, TorchForeach, TorchCompile,
                           TFXlaStep, TFStep, TFXlaLoop, TFLoop)
}
#: The framework each variant needs (the xvae backend name it is compared with).
FRAMEWORK = {"flax-step": "jax", "flax-scan": "jax", "torch-fused": "torch", "torch-foreach": "torch",
             "torch-compile": "torch", "tf-xla-step": "tf", "tf-step": "tf", "tf-xla-loop": "tf",
             "tf-loop": "tf"}
#: The reference of the ratio per backend: the best per-step and the best fused loop (issue 5).
#: PyTorch has no fused loop on CPU short of torch.compile; its best per-step loop is the bar.
BEST_STEP = {"jax": "flax-step", "torch": "torch-fused", "tf": "tf-xla-step"}
BEST_FUSED = {"jax": "flax-scan", "torch": "torch-fused", "tf": "tf-xla-loop"}


def make(variant: str, p: Problem, x: NDArray[np.float32]) -> Baseline:
    """Build a baseline (not yet warmed up)."""
    try:
        cls = VARIANTS[variant]
    except KeyError:
        raise ValueError(f"Unknown baseline {variant!r}; known: {sorted(VARIANTS)}") from None
    return cls(p, x)


def run(variant: str, steps: int, batch: int = 128, hidden: int = 500,
        data: NDArray[np.float32] | None = None, k: int = 50, warmup_epochs: int = 2) -> dict[str, float]:
    """Build, warm up and time `variant` for about `steps` steps.

    Returns {"steps_per_s", "compile_s" (build + first epoch), "first_epoch_s"}.
    """
    from benchmarks._common import make_data

    spe = max(k, -(-min(steps, 100) // k) * k)
    p = Problem(batch=batch, hidden=hidden, steps_per_epoch=spe, k=k)
    x = make_data(p) if data is None else np.ascontiguousarray(data[: p.n], dtype=np.float32)
    if len(x) < p.n:
        raise ValueError(f"data has {len(x)} rows; {p.n} needed")
    start = time.perf_counter()
    b = make(variant, p, x)
    b.epoch()
    first = time.perf_counter() - start
    for _ in range(warmup_epochs - 1):
        b.epoch()
    epochs = max(1, round(steps / spe))
    start = time.perf_counter()
    for _ in range(epochs):
        b.epoch()
    wall = time.perf_counter() - start
    return {"steps_per_s": epochs * spe / wall, "compile_s": first, "first_epoch_s": first}

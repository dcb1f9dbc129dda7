"""The conv VAE of issue 11: xvae's `fit` against hand-written loops of the same model.

Model (docs/architectures.md, examples/conv_vae_mnist.py): encoder Conv(32, 3, s2, relu) ->
Conv(64, 3, s2, relu) -> Flatten -> (mean, logvar) of 20; decoder Dense(7*7*32, relu) ->
Reshape -> ConvT(64, 3, s2, relu) -> ConvT(32, 3, s2, relu) -> ConvT(1, 3) logits; Bernoulli
negative ELBO, Adam(1e-3), batch 128.

    python -m benchmarks.conv_vae                          # all backends, ~15-20 minutes on 2 busy cores
    python -m benchmarks.conv_vae --backends tf --budget 60 --no-memory   # a quick look

The method is `benchmarks/run.py`'s same-process pair, extended to both modes:

* Speed: one process per backend (only xvae and that framework imported) holds four
  variants: xvae's `fit` per step (`steps_per_call=1`), xvae fused (`steps_per_call=K`, one
  call per epoch), the framework's best hand-written per-step loop and its best fused loop
  (`benchmarks.baselines.BEST_STEP` / `BEST_FUSED`: Flax jitted step / `lax.scan`;
  `tf.function(jit_compile=True)` step / `tf.range` loop in one compiled call; PyTorch's
  eager loop with fused Adam for both). Every variant starts from xvae's initial weights,
  does the same per-epoch NumPy input work (permutation, gather, float32 noise) and is
  checked once to compute the same loss as xvae's float64 reference on one batch, so the
  hand-written model is exactly xvae's (padding, kernel layouts, loss). After a warm-up
  epoch each, rounds time one epoch of every variant, in an order that rotates each round;
  rounds continue until `--budget` seconds have passed (at least `--min-rounds`, at most
  `--max-rounds`); the fused variants take part in the first `--fused-rounds` only, as
  XLA's fused conv loops are several times slower than its per-step ones on a CPU. The ratio of a mode is the median [min-max] of the per-round ratios
  (hand-written epoch time / xvae's: >= 1 means xvae is as fast), so slow drifts of a
  shared machine hit both sides of a ratio alike. The load average is recorded per backend.
* Peak memory: every variant again in a fresh process that imports xvae and the framework
  (both sides pay the same imports), runs the warm-up epoch and one more; its maximum
  resident set size.

Results: benchmarks/results/conv-vae-cpu.json; docs/scripts/performance.py turns them into
the table of docs/performance.md (tests/docs/test_numbers.py keeps the two in step).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/conv_vae.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
LATENTS, BATCH, LR, B1, B2, EPS = 20, 128, 1e-3, 0.9, 0.999, 1e-8
#: per backend: (hand-written per-step loop, hand-written fused loop), as benchmarks.baselines names them
BASELINES = {"jax": ("flax-step", "flax-scan"), "tf": ("tf-xla-step", "tf-xla-loop"),
             "torch": ("torch-fused", "torch-fused")}
MODES = {"step": ("xvae-step", 0), "fused": ("xvae-fused", 1)}  # mode -> (xvae variant, baseline index)
#: how close a hand-written loop's loss on one batch must be to xvae's float64 reference:
#: float32 sums over 784 pixels x 128 rows (~1e-6 relative each) and conv accumulations.
SAME_MODEL_RTOL = 1e-4


def _data(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 784)) < 0.13).astype(np.float32)


def _epoch_input(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """What xvae's core does per epoch: a permutation, the permuted copy, float32 noise."""
    order = rng.permutation(len(x))
    return np.take(x, order, axis=0), rng.standard_normal((len(x), LATENTS), dtype=np.float32)


def _spec() -> Any:
    from examples.conv_vae_mnist import SPEC

    return SPEC


def initial_weights() -> dict[str, np.ndarray]:
    """xvae's initial weights of the model (seed 0), canonical names and layouts."""
    import xvae

    return xvae.VAE(_spec(), backend="numpy", seed=0).get_weights()


def reference_loss(w: dict[str, np.ndarray], xb: np.ndarray, nb: np.ndarray) -> float:
    """xvae's float64 reference loss of one batch (the seam's eval_step)."""
    import xvae
    from xvae.backend import CompileOptions
    from xvae.losses import loss_for

    spec = _spec()
    prog = xvae.backends.get("numpy").compile(spec, loss_for(spec), None, CompileOptions())
    prog.set_state(w)
    batch = {"x": xb, "noise": nb, "mask": np.ones(len(xb), np.float32), "beta": np.float32(1.0)}
    return float(prog.to_numpy(prog.eval_step(batch))["loss"])


class Variant:
    """One loop: `epoch()` runs one epoch (input work included); `loss(xb, nb)` one batch's loss."""

    steps_per_call = 1

    def epoch(self) -> float:
        raise NotImplementedError

    def loss(self, xb: np.ndarray, nb: np.ndarray) -> float | None:
        return None


class XVAE(Variant):
    def __init__(self, backend: str, x: np.ndarray, k: int) -> None:
        import xvae

        self.vae = xvae.VAE(_spec(), backend=backend, seed=0)
        self.x, self.steps_per_call = x, k
        self.opt = xvae.optim.Adam(LR)

    def epoch(self) -> float:
        hist = self.vae.fit(self.x, epochs=1, batch_size=BATCH, optimizer=self.opt, progress=False,
                            steps_per_call=self.steps_per_call)
        return float(hist.history["loss"][-1])


class Flax(Variant):
    def __init__(self, x: np.ndarray, w: dict[str, np.ndarray], fused: bool) -> None:
        import flax.linen as nn
        import jax
        import jax.numpy as jnp
        import optax

        self.jax, self.x, self.rng = jax, x, np.random.default_rng(0)
        self.steps_per_call = len(x) // BATCH if fused else 1
        same2 = ((0, 1), (0, 1))  # "same", stride 2, 3x3 on even sizes: the extra zero after
        up2 = ((2, 1), (2, 1))  # its transpose: out = 2 * in, position i*2 + j (no crop before)

        class VAE(nn.Module):
            @nn.compact
            def __call__(self, x: Any, eps: Any) -> Any:
                h = x.reshape(-1, 28, 28, 1)
                h = nn.relu(nn.Conv(32, (3, 3), (2, 2), padding=same2, name="c1")(h))
                h = nn.relu(nn.Conv(64, (3, 3), (2, 2), padding=same2, name="c2")(h)).reshape(x.shape[0], -1)
                mean, logvar = nn.Dense(LATENTS, name="mean")(h), nn.Dense(LATENTS, name="logvar")(h)
                z = mean + jnp.exp(0.5 * logvar) * eps
                d = nn.relu(nn.Dense(7 * 7 * 32, name="d0")(z)).reshape(-1, 7, 7, 32)
                d = nn.relu(nn.ConvTranspose(64, (3, 3), (2, 2), padding=up2, transpose_kernel=True, name="t1")(d))
                d = nn.relu(nn.ConvTranspose(32, (3, 3), (2, 2), padding=up2, transpose_kernel=True, name="t2")(d))
                logits = nn.ConvTranspose(1, (3, 3), padding=((1, 1), (1, 1)), transpose_kernel=True, name="t3")(d)
                return logits.reshape(x.shape[0], -1), mean, logvar

        names = {"c1": "encoder.layers.0", "c2": "encoder.layers.1", "mean": "encoder.mean",
                 "logvar": "encoder.logvar", "d0": "decoder.layers.0", "t1": "decoder.layers.2",
                 "t2": "decoder.layers.3", "t3": "decoder.layers.4"}
        params = {"params": {m: {"kernel": w[f"{c}.kernel"], "bias": w[f"{c}.bias"]} for m, c in names.items()}}
        model = VAE()
        tx = optax.adam(LR, b1=B1, b2=B2, eps=EPS)

        def loss_fn(p: Any, xb: Any, eb: Any) -> Any:
            logits, mean, logvar = model.apply(p, xb, eb)
            bce = jnp.maximum(logits, 0) - logits * xb + jnp.log1p(jnp.exp(-jnp.abs(logits)))
            kl = -0.5 * jnp.sum(1 + logvar - mean ** 2 - jnp.exp(logvar), axis=-1)
            return jnp.mean(jnp.sum(bce, axis=-1) + kl)

        def train_step(state: Any, xb: Any, eb: Any) -> Any:
            p, o = state
            loss, g = jax.value_and_grad(loss_fn)(p, xb, eb)
            updates, o = tx.update(g, o, p)
            return (optax.apply_updates(p, updates), o), loss

        def train_steps(state: Any, xs: Any, es: Any) -> Any:
            return jax.lax.scan(lambda s, inp: train_step(s, *inp), state, (xs, es))

        params = jax.device_put(params)
        self.state = (params, tx.init(params))
        self.step = jax.jit(train_steps if fused else train_step, donate_argnums=0)
        self._loss = jax.jit(loss_fn)

    def epoch(self) -> float:
        xs, noise = _epoch_input(self.x, self.rng)
        k = self.steps_per_call
        shape = (-1, k, BATCH) if k > 1 else (-1, BATCH)
        losses = []
        for xb, nb in zip(xs.reshape(*shape, 784), noise.reshape(*shape, LATENTS)):
            self.state, loss = self.step(self.state, xb, nb)
            losses.append(loss)
        return float(np.mean(self.jax.device_get(losses)))  # the one host sync of the epoch

    def loss(self, xb: np.ndarray, nb: np.ndarray) -> float:
        return float(self._loss(self.state[0], xb, nb))


def _nchw(a: np.ndarray, hwc: tuple[int, int, int], axis: int) -> np.ndarray:
    """Reorder `axis` of `a` from (h, w, c) flattening to (c, h, w) flattening."""
    moved = np.moveaxis(a, axis, 0)
    out = moved.reshape(*hwc, *moved.shape[1:]).transpose(2, 0, 1, *range(3, moved.ndim + 2))
    return np.ascontiguousarray(np.moveaxis(out.reshape(moved.shape), 0, axis))


class Torch(Variant):
    def __init__(self, x: np.ndarray, w: dict[str, np.ndarray]) -> None:
        import torch
        import torch.nn.functional as F
        from torch import nn

        self.torch, self.x, self.rng = torch, x, np.random.default_rng(0)

        def loss_of(m: Any, xb: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
            h = F.relu(m.c1(F.pad(xb.view(-1, 1, 28, 28), (0, 1, 0, 1))))  # "same", s2: the zero after
            h = F.relu(m.c2(F.pad(h, (0, 1, 0, 1)))).flatten(1)  # NCHW order: see _nchw below
            mean, logvar = m.mean(h), m.logvar(h)
            z = mean + torch.exp(0.5 * logvar) * eps
            d = F.relu(m.d0(z)).view(-1, 32, 7, 7)
            # transposed "same", s2: output position i*2 + j, the 15th row/column dropped
            d = F.relu(m.t1(d)[:, :, :14, :14])
            d = F.relu(m.t2(d)[:, :, :28, :28])
            logits = m.t3(d).permute(0, 2, 3, 1).flatten(1)
            bce = F.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum(-1)
            kl = -0.5 * torch.sum(1 + logvar - mean ** 2 - torch.exp(logvar), -1)
            return (bce + kl).mean()

        class VAE(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.c1, self.c2 = nn.Conv2d(1, 32, 3, 2), nn.Conv2d(32, 64, 3, 2)
                self.mean, self.logvar = nn.Linear(3136, LATENTS), nn.Linear(3136, LATENTS)
                self.d0 = nn.Linear(LATENTS, 7 * 7 * 32)
                self.t1 = nn.ConvTranspose2d(32, 64, 3, 2)
                self.t2 = nn.ConvTranspose2d(64, 32, 3, 2)
                self.t3 = nn.ConvTranspose2d(32, 1, 3, 1, padding=1)

            def forward(self, xb: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
                return loss_of(self, xb, eps)

        self.model = VAE()
        names = {"c1": "encoder.layers.0", "c2": "encoder.layers.1", "mean": "encoder.mean",
                 "logvar": "encoder.logvar", "d0": "decoder.layers.0", "t1": "decoder.layers.2",
                 "t2": "decoder.layers.3", "t3": "decoder.layers.4"}
        w = dict(w)
        # xvae flattens NHWC images; PyTorch's idiom flattens NCHW. The same model: the dense
        # weights next to a flatten/reshape get their rows / columns reordered once, here.
        for head in ("encoder.mean", "encoder.logvar"):
            w[f"{head}.kernel"] = _nchw(w[f"{head}.kernel"], (7, 7, 64), axis=0)
        w["decoder.layers.0.kernel"] = _nchw(w["decoder.layers.0.kernel"], (7, 7, 32), axis=1)
        w["decoder.layers.0.bias"] = _nchw(w["decoder.layers.0.bias"], (7, 7, 32), axis=0)
        with torch.no_grad():
            for m, c in names.items():
                kernel = w[f"{c}.kernel"]  # canonical -> torch: the last two axes, reversed, go first
                kernel = kernel.transpose(kernel.ndim - 1, kernel.ndim - 2, *range(kernel.ndim - 2))
                getattr(self.model, m).weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
                getattr(self.model, m).bias.copy_(torch.from_numpy(w[f"{c}.bias"]))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=LR, betas=(B1, B2), eps=EPS, fused=True)

    def epoch(self) -> float:
        torch = self.torch
        xs, noise = _epoch_input(self.x, self.rng)
        xt, nt = torch.from_numpy(xs), torch.from_numpy(noise)
        losses = []
        for lo in range(0, len(xs), BATCH):
            self.opt.zero_grad(set_to_none=True)
            loss = self.model(xt[lo:lo + BATCH], nt[lo:lo + BATCH])
            loss.backward()
            self.opt.step()
            losses.append(loss.detach())
        return float(torch.stack(losses).mean())

    def loss(self, xb: np.ndarray, nb: np.ndarray) -> float:
        with self.torch.no_grad():
            return float(self.model(self.torch.from_numpy(xb), self.torch.from_numpy(nb)))


class TF(Variant):
    def __init__(self, x: np.ndarray, w: dict[str, np.ndarray], fused: bool) -> None:
        import tensorflow as tf

        self.tf, self.x, self.rng = tf, x, np.random.default_rng(0)
        self.steps_per_call = k = len(x) // BATCH if fused else 1
        v = {name: tf.Variable(value) for name, value in w.items()}
        names = list(v)
        m = {name: tf.Variable(tf.zeros_like(value)) for name, value in v.items()}
        s = {name: tf.Variable(tf.zeros_like(value)) for name, value in v.items()}
        t = tf.Variable(0.0)

        def W(layer: str) -> tuple[tf.Variable, tf.Variable]:
            return v[f"{layer}.kernel"], v[f"{layer}.bias"]

        def loss_fn(xb: tf.Tensor, eb: tf.Tensor) -> tf.Tensor:
            n = tf.shape(xb)[0]
            k1, b1 = W("encoder.layers.0")
            h = tf.nn.relu(tf.nn.conv2d(tf.reshape(xb, [-1, 28, 28, 1]), k1, 2, "SAME") + b1)
            k2, b2 = W("encoder.layers.1")
            h = tf.reshape(tf.nn.relu(tf.nn.conv2d(h, k2, 2, "SAME") + b2), [n, -1])
            (km, bm), (kv, bv) = W("encoder.mean"), W("encoder.logvar")
            mean, logvar = h @ km + bm, h @ kv + bv
            z = mean + tf.exp(0.5 * logvar) * eb
            k0, b0 = W("decoder.layers.0")
            d = tf.reshape(tf.nn.relu(z @ k0 + b0), [-1, 7, 7, 32])
            for layer, size, channels, stride in (("decoder.layers.2", 14, 64, 2), ("decoder.layers.3", 28, 32, 2),
                                                  ("decoder.layers.4", 28, 1, 1)):
                kt, bt = W(layer)
                d = tf.nn.conv2d_transpose(d, kt, [n, size, size, channels], stride, "SAME") + bt
                d = tf.nn.relu(d) if channels > 1 else d
            logits = tf.reshape(d, [n, -1])
            bce = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=xb, logits=logits), -1)
            kl = -0.5 * tf.reduce_sum(1 + logvar - mean ** 2 - tf.exp(logvar), -1)
            return tf.reduce_mean(bce + kl)

        def train_step(xb: tf.Tensor, eb: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                loss = loss_fn(xb, eb)
            grads = tape.gradient(loss, [v[name] for name in names])
            step = t.assign_add(1.0)
            c1, c2 = 1.0 - tf.pow(B1, step), 1.0 - tf.pow(B2, step)
            for name, g in zip(names, grads):  # DESIGN §5 Adam (optax / PyTorch form)
                mm = m[name].assign(B1 * m[name] + (1.0 - B1) * g)
                ss = s[name].assign(B2 * s[name] + (1.0 - B2) * tf.square(g))
                v[name].assign_sub(LR * (mm / c1) / (tf.sqrt(ss / c2) + EPS))
            return loss

        def train_steps(xs: tf.Tensor, es: tf.Tensor) -> tf.Tensor:
            out = tf.TensorArray(tf.float32, size=k)
            for i in tf.range(k):  # AutoGraph: a while loop inside the one compiled call
                out = out.write(i, train_step(xs[i], es[i]))
            return out.stack()

        self.step = tf.function(train_steps if fused else train_step, jit_compile=True, reduce_retracing=True)
        self._loss = tf.function(loss_fn, jit_compile=True)

    def epoch(self) -> float:
        xs, noise = _epoch_input(self.x, self.rng)
        k = self.steps_per_call
        shape = (-1, k, BATCH) if k > 1 else (-1, BATCH)
        losses = [self.step(xb, nb) for xb, nb in zip(xs.reshape(*shape, 784), noise.reshape(*shape, LATENTS))]
        return float(np.mean([loss.numpy() for loss in losses]))

    def loss(self, xb: np.ndarray, nb: np.ndarray) -> float:
        return float(self._loss(xb, nb).numpy())


def make(backend: str, variant: str, x: np.ndarray, w: dict[str, np.ndarray]) -> Variant:
    """A variant of `backend`, not yet warmed up."""
    steps = len(x) // BATCH
    if variant.startswith("xvae-"):
        return XVAE(backend, x, steps if variant == "xvae-fused" else 1)
    if backend == "jax":
        return Flax(x, w, fused=variant == "flax-scan")
    if backend == "tf":
        return TF(x, w, fused=variant == "tf-xla-loop")
    return Torch(x, w)


def variants(backend: str) -> list[str]:
    return list(dict.fromkeys(["xvae-step", "xvae-fused", *BASELINES[backend]]))


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def pair_worker(backend: str, steps: int, budget_s: float, min_rounds: int, max_rounds: int,
                fused_rounds: int) -> dict[str, Any]:
    """Every variant of `backend` in this process; rounds of one epoch each, rotating order.
    The fused-only variants run in the first `fused_rounds` rounds only (XLA's fused conv
    loops are several times slower on a CPU than its per-step ones: see docs/performance.md)."""
    x = _data(steps * BATCH)
    w = initial_weights()
    xb, nb = x[:BATCH], np.random.default_rng(1).standard_normal((BATCH, LATENTS), dtype=np.float32)
    want = reference_loss(w, xb, nb)
    runs: dict[str, Variant] = {}
    same_model: dict[str, float] = {}
    for name in variants(backend):
        runs[name] = make(backend, name, x, w)
        got = runs[name].loss(xb, nb)
        if got is not None:  # before any step: the hand-written model is xvae's model
            same_model[name] = abs(got - want) / abs(want)
            if same_model[name] > SAME_MODEL_RTOL:
                raise AssertionError(f"{name} computes {got} on xvae's weights; xvae's reference {want}")
        runs[name].epoch()  # warm-up: compilation
    load_start = _load()
    times: dict[str, list[float]] = {name: [] for name in runs}
    per_step = {MODES["step"][0], BASELINES[backend][0]}
    start = time.perf_counter()
    budget_from = None  # the budget counts the per-step rounds only: the fused ones are few and slow
    rounds = 0
    while rounds < max_rounds and (rounds < max(min_rounds, fused_rounds) or
                                   time.perf_counter() - (budget_from or start) < budget_s):
        if rounds == fused_rounds:
            budget_from = time.perf_counter()
        order = [name for name in runs if rounds < fused_rounds or name in per_step]
        for name in order[rounds % len(order):] + order[:rounds % len(order)]:  # rotate: no fixed position
            t0 = time.perf_counter()
            runs[name].epoch()
            times[name].append(time.perf_counter() - t0)
        rounds += 1
    out: dict[str, Any] = {"backend": backend, "steps": steps, "rounds": rounds, "loadavg_start": load_start,
                           "loadavg_end": _load(), "wall_s": time.perf_counter() - start,
                           "same_model_rel_err": same_model, "times": times, "modes": {}}
    for mode, (mine, index) in MODES.items():
        base = BASELINES[backend][index]
        ratios = [b / a for a, b in zip(times[mine], times[base])]  # the same rounds: both lists start at round 0
        out["modes"][mode] = {
            "xvae": mine, "baseline": base, "k": runs[mine].steps_per_call,
            "xvae_steps_per_s": steps / statistics.median(times[mine][:len(ratios)]),
            "baseline_steps_per_s": steps / statistics.median(times[base][:len(ratios)]),
            "ratio": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios), "n": len(ratios)},
        }
    return out


def memory_worker(backend: str, variant: str, steps: int) -> dict[str, Any]:
    """Peak RSS of this fresh process: imports, the variant's warm-up epoch and one more."""
    import resource

    import xvae.backends

    xvae.backends.get(backend)  # imports the framework: both sides pay the same imports
    x = _data(steps * BATCH)
    run = make(backend, variant, x, initial_weights())
    run.epoch()
    run.epoch()
    return {"backend": backend, "variant": variant, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _child(*args: str) -> dict[str, Any]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.conv_vae", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f"conv_vae {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="jax,tf,torch")
    parser.add_argument("--steps", type=int, default=4, help="steps per epoch (= K of the fused mode)")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of timed rounds per backend")
    parser.add_argument("--min-rounds", type=int, default=5)
    parser.add_argument("--fused-rounds", type=int, default=3, help="rounds that include the fused variants")
    parser.add_argument("--max-rounds", type=int, default=40)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument("--out", default=str(RESULTS / "conv-vae-cpu.json"))
    parser.add_argument("--pair-worker", help=argparse.SUPPRESS)
    parser.add_argument("--memory-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.pair_worker:
        print(json.dumps(pair_worker(args.pair_worker, args.steps, args.budget, args.min_rounds, args.max_rounds,
                                     args.fused_rounds)))
        return
    if args.memory_worker:
        print(json.dumps(memory_worker(*args.memory_worker, args.steps)))
        return

    from benchmarks._common import machine_info

    info = machine_info()
    results: dict[str, Any] = {
        "command": "python -m benchmarks.conv_vae " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": info, "batch": BATCH, "steps_per_epoch": args.steps, "backends": {}}
    for backend in args.backends.split(","):
        common = ["--steps", str(args.steps)]
        print(f"[{backend}] timing {', '.join(variants(backend))} ...", file=sys.stderr, flush=True)
        entry = _child("--pair-worker", backend, *common, "--budget", str(args.budget),
                       "--min-rounds", str(args.min_rounds), "--max-rounds", str(args.max_rounds),
                       "--fused-rounds", str(args.fused_rounds))
        for mode, r in entry["modes"].items():
            print(f"[{backend}] {mode}: xvae {r['xvae_steps_per_s']:.2f} steps/s, {r['baseline']} "
                  f"{r['baseline_steps_per_s']:.2f}, ratio {r['ratio']['median']:.3f} "
                  f"[{r['ratio']['min']:.3f}-{r['ratio']['max']:.3f}] over {r['ratio']['n']} rounds, "
                  f"load {entry['loadavg_start']} -> {entry['loadavg_end']}", file=sys.stderr, flush=True)
        if not args.no_memory:
            entry["peak_rss_mb"] = {}
            for variant in variants(backend):
                entry["peak_rss_mb"][variant] = _child("--memory-worker", backend, variant, *common)["peak_rss_mb"]
            print(f"[{backend}] peak RSS (MB): {entry['peak_rss_mb']}", file=sys.stderr, flush=True)
        results["backends"][backend] = entry
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")  # after each backend: nothing lost
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

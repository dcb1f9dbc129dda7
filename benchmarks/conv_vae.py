"""The conv VAE of issue 11: an xvae training step against a hand-written loop, same process.

Model (docs/architectures.md): encoder Conv(32, 3, s2, relu) -> Conv(64, 3, s2, relu) ->
Flatten -> (mean, logvar) of 20; decoder Dense(7*7*32, relu) -> Reshape -> ConvT(64, 3,
s2, relu) -> ConvT(32, 3, s2, relu) -> ConvT(1, 3) logits; Bernoulli negative ELBO,
Adam(1e-3), batch 128. Each round times one epoch of `steps` full batches through
`VAE.fit` (input work included: permutation, noise) and the same epoch of a hand-written
loop (the same NumPy input work, then the framework's idiomatic compiled step), alternating,
after a warm-up epoch each; the ratio is the baseline's median epoch time over xvae's
(>= 1: xvae as fast as the hand-written loop).

    python -m benchmarks.conv_vae --backends jax,tf,torch --steps 20 --rounds 5
    python -m benchmarks.conv_vae --memory

`--memory` measures peak RSS instead: each variant in a fresh process that imports xvae
and the framework (so both pay the same imports) and runs two epochs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any, Callable

import numpy as np

LATENTS, BATCH, LR = 20, 128, 1e-3


def _data(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 784)) < 0.13).astype(np.float32)


def _epoch_input(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """What xvae's core does per epoch: a permutation, the permuted copy, float32 noise."""
    order = rng.permutation(len(x))
    return np.take(x, order, axis=0), rng.standard_normal((len(x), LATENTS), dtype=np.float32)


def xvae_epoch(backend: str, x: np.ndarray) -> Callable[[], float]:
    import xvae

    from examples.conv_vae_mnist import SPEC

    vae = xvae.VAE(SPEC, backend=backend, seed=0)
    opt = xvae.optim.Adam(LR)

    def epoch() -> float:
        return vae.fit(x, epochs=1, batch_size=BATCH, optimizer=opt, progress=False).history["loss"][-1]

    return epoch


def flax_epoch(x: np.ndarray) -> Callable[[], float]:
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax

    same2 = ((0, 1), (0, 1))  # "same", stride 2, 3x3 on even sizes: the extra zero after

    class VAE(nn.Module):
        @nn.compact
        def __call__(self, x: Any, eps: Any) -> Any:
            h = x.reshape(-1, 28, 28, 1)
            h = nn.relu(nn.Conv(32, (3, 3), (2, 2), padding=same2)(h))
            h = nn.relu(nn.Conv(64, (3, 3), (2, 2), padding=same2)(h)).reshape(x.shape[0], -1)
            mean, logvar = nn.Dense(LATENTS)(h), nn.Dense(LATENTS)(h)
            z = mean + jnp.exp(0.5 * logvar) * eps
            d = nn.relu(nn.Dense(7 * 7 * 32)(z)).reshape(-1, 7, 7, 32)
            d = nn.relu(nn.ConvTranspose(64, (3, 3), (2, 2), padding=((2, 1), (2, 1)), transpose_kernel=True)(d))
            d = nn.relu(nn.ConvTranspose(32, (3, 3), (2, 2), padding=((2, 1), (2, 1)), transpose_kernel=True)(d))
            logits = nn.ConvTranspose(1, (3, 3), padding=((1, 1), (1, 1)), transpose_kernel=True)(d)
            return logits.reshape(x.shape[0], -1), mean, logvar

    model = VAE()
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((BATCH, 784)), jnp.zeros((BATCH, LATENTS)))
    tx = optax.adam(LR, eps=1e-8)
    state = (params, tx.init(params))

    def loss_fn(p: Any, xb: Any, eb: Any) -> Any:
        logits, mean, logvar = model.apply(p, xb, eb)
        bce = jnp.maximum(logits, 0) - logits * xb + jnp.log1p(jnp.exp(-jnp.abs(logits)))
        kl = -0.5 * jnp.sum(1 + logvar - mean ** 2 - jnp.exp(logvar), axis=-1)
        return jnp.mean(jnp.sum(bce, axis=-1) + kl)

    @jax.jit
    def step(state: Any, xb: Any, eb: Any) -> Any:
        p, o = state
        loss, g = jax.value_and_grad(loss_fn)(p, xb, eb)
        updates, o = tx.update(g, o, p)
        return (optax.apply_updates(p, updates), o), loss

    step = jax.jit(step.__wrapped__, donate_argnums=0)
    rng = np.random.default_rng(0)

    def epoch() -> float:
        nonlocal state
        xs, noise = _epoch_input(x, rng)
        losses = []
        for lo in range(0, len(xs), BATCH):
            state, loss = step(state, xs[lo:lo + BATCH], noise[lo:lo + BATCH])
            losses.append(loss)
        return float(np.mean(jax.device_get(losses)))

    return epoch


def torch_epoch(x: np.ndarray) -> Callable[[], float]:
    import torch
    import torch.nn.functional as F
    from torch import nn

    class VAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(1, 32, 3, 2), nn.Conv2d(32, 64, 3, 2)
            self.mean, self.logvar = nn.Linear(3136, LATENTS), nn.Linear(3136, LATENTS)
            self.d0 = nn.Linear(LATENTS, 7 * 7 * 32)
            self.t1 = nn.ConvTranspose2d(32, 64, 3, 2, padding=1, output_padding=1)
            self.t2 = nn.ConvTranspose2d(64, 32, 3, 2, padding=1, output_padding=1)
            self.t3 = nn.ConvTranspose2d(32, 1, 3, 1, padding=1)

        def forward(self, xb: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
            h = F.relu(self.c1(F.pad(xb.view(-1, 1, 28, 28), (0, 1, 0, 1))))
            h = F.relu(self.c2(F.pad(h, (0, 1, 0, 1)))).flatten(1)
            mean, logvar = self.mean(h), self.logvar(h)
            z = mean + torch.exp(0.5 * logvar) * eps
            d = F.relu(self.d0(z)).view(-1, 32, 7, 7)
            logits = self.t3(F.relu(self.t2(F.relu(self.t1(d))))).flatten(1)
            bce = F.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum(-1)
            kl = -0.5 * torch.sum(1 + logvar - mean ** 2 - torch.exp(logvar), -1)
            return (bce + kl).mean()

    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=LR, eps=1e-8, fused=True)
    rng = np.random.default_rng(0)

    def epoch() -> float:
        xs, noise = _epoch_input(x, rng)
        xt, nt = torch.from_numpy(xs), torch.from_numpy(noise)
        losses = []
        for lo in range(0, len(xs), BATCH):
            opt.zero_grad(set_to_none=True)
            loss = model(xt[lo:lo + BATCH], nt[lo:lo + BATCH])
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        return float(torch.stack(losses).mean())

    return epoch


def tf_epoch(x: np.ndarray) -> Callable[[], float]:
    import tensorflow as tf

    rng0 = np.random.default_rng(0)

    def var(*shape: int) -> tf.Variable:
        return tf.Variable(rng0.normal(0, 0.05, shape).astype(np.float32))

    w = {"c1": var(3, 3, 1, 32), "b1": var(32), "c2": var(3, 3, 32, 64), "b2": var(64),
         "wm": var(3136, LATENTS), "bm": var(LATENTS), "wv": var(3136, LATENTS), "bv": var(LATENTS),
         "d0": var(LATENTS, 1568), "e0": var(1568), "t1": var(3, 3, 64, 32), "u1": var(64),
         "t2": var(3, 3, 32, 64), "u2": var(32), "t3": var(3, 3, 1, 32), "u3": var(1)}
    names = list(w)
    m = {k: tf.Variable(tf.zeros_like(v)) for k, v in w.items()}
    s = {k: tf.Variable(tf.zeros_like(v)) for k, v in w.items()}
    t = tf.Variable(0.0)

    def loss_fn(xb: tf.Tensor, eb: tf.Tensor) -> tf.Tensor:
        n = tf.shape(xb)[0]
        h = tf.nn.relu(tf.nn.conv2d(tf.reshape(xb, [-1, 28, 28, 1]), w["c1"], 2, "SAME") + w["b1"])
        h = tf.reshape(tf.nn.relu(tf.nn.conv2d(h, w["c2"], 2, "SAME") + w["b2"]), [n, -1])
        mean, logvar = h @ w["wm"] + w["bm"], h @ w["wv"] + w["bv"]
        z = mean + tf.exp(0.5 * logvar) * eb
        d = tf.reshape(tf.nn.relu(z @ w["d0"] + w["e0"]), [-1, 7, 7, 32])
        d = tf.nn.relu(tf.nn.conv2d_transpose(d, w["t1"], [n, 14, 14, 64], 2, "SAME") + w["u1"])
        d = tf.nn.relu(tf.nn.conv2d_transpose(d, w["t2"], [n, 28, 28, 32], 2, "SAME") + w["u2"])
        logits = tf.reshape(tf.nn.conv2d_transpose(d, w["t3"], [n, 28, 28, 1], 1, "SAME") + w["u3"], [n, -1])
        bce = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=xb, logits=logits), -1)
        kl = -0.5 * tf.reduce_sum(1 + logvar - mean ** 2 - tf.exp(logvar), -1)
        return tf.reduce_mean(bce + kl)

    @tf.function(jit_compile=True)
    def step(xb: tf.Tensor, eb: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_fn(xb, eb)
        grads = tape.gradient(loss, [w[k] for k in names])
        t.assign_add(1.0)
        for k, g in zip(names, grads):  # DESIGN §5 Adam
            m[k].assign(0.9 * m[k] + 0.1 * g)
            s[k].assign(0.999 * s[k] + 0.001 * g * g)
            w[k].assign_sub(LR * (m[k] / (1 - 0.9 ** t)) / (tf.sqrt(s[k] / (1 - 0.999 ** t)) + 1e-8))
        return loss

    rng = np.random.default_rng(0)

    def epoch() -> float:
        xs, noise = _epoch_input(x, rng)
        losses = [step(xs[lo:lo + BATCH], noise[lo:lo + BATCH]) for lo in range(0, len(xs), BATCH)]
        return float(np.mean([v.numpy() for v in losses]))

    return epoch


BASELINES = {"jax": flax_epoch, "tf": tf_epoch, "torch": torch_epoch}


def measure(backend: str, steps: int, rounds: int) -> dict[str, Any]:
    x = _data(steps * BATCH)
    runs = {"xvae": xvae_epoch(backend, x), "hand-written": BASELINES[backend](x)}
    for fn in runs.values():
        fn()  # warm-up: compilation
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(v) for name, v in times.items()}
    return {"backend": backend, "steps": steps, "rounds": rounds,
            "xvae_steps_per_s": steps / med["xvae"], "hand_written_steps_per_s": steps / med["hand-written"],
            "ratio": med["hand-written"] / med["xvae"], "times": times}


def peak_memory(backend: str, variant: str, steps: int) -> dict[str, Any]:
    """Peak RSS (MB) of a fresh process that imports xvae and the framework (both variants
    pay the same imports), then runs a warm-up epoch and one more of `variant`."""
    import subprocess
    import sys

    code = (f"import resource, xvae, xvae.backends as b; b.get({backend!r}); "
            f"from benchmarks.conv_vae import _data, xvae_epoch, BASELINES, BATCH; "
            f"x = _data({steps} * BATCH); "
            f"fn = xvae_epoch({backend!r}, x) if {variant!r} == 'xvae' else BASELINES[{backend!r}](x); "
            f"fn(); fn(); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {"backend": backend, "variant": variant, "peak_rss_mb": float(out.stdout.strip().splitlines()[-1])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="jax,tf,torch")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--memory", action="store_true",
                        help="peak RSS of xvae and of the hand-written loop, each in a fresh process")
    args = parser.parse_args(argv)
    if args.memory:
        for backend in args.backends.split(","):
            rows = {v: peak_memory(backend, v, args.steps) for v in ("xvae", "hand-written")}
            ratio = rows["xvae"]["peak_rss_mb"] / rows["hand-written"]["peak_rss_mb"]
            print(json.dumps({"backend": backend, "peak_rss_mb": {v: r["peak_rss_mb"] for v, r in rows.items()},
                              "xvae_over_hand_written": ratio}), flush=True)
        return
    try:
        import torch  # noqa: F401  (before tensorflow in one process)
    except ImportError:
        pass
    for backend in args.backends.split(","):
        print(json.dumps(measure(backend, args.steps, args.rounds)), flush=True)


if __name__ == "__main__":
    main()

"""Adam vs AdamW + warm-up/cosine schedule + gradient clipping, in every backend, on MNIST.

The article's VAE (784-500-20, Bernoulli decoder, batch 128, 20 epochs) trained twice per
backend from the same seed: with Adam(1e-3), and with AdamW (weight decay 0.01, PyTorch's
default) whose rate warms up linearly over the first 100 steps to 1e-3 and then decays to 0
along a cosine over the remaining steps, with gradients clipped to global norm 1. Trains on
the first 9,000 images of the real MNIST test set (binarized at 0.5, as
examples/mnist_vae.py does; the 60,000 training images are not on these machines) and
reports the negative ELBO in nats on the last 1,000 (`VAE.evaluate`, one z draw per
example from Generator(0)), and the largest relative difference between backends.

Run:  python examples/mnist_schedules.py --data-dir ../shared/data/mnist --backends jax,tf,torch
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time

try:  # torch before tensorflow in one process
    import torch  # noqa: F401
except ImportError:
    pass

import xvae
from xvae.schedules import CosineDecay

SPEC = xvae.VAESpec(input_dim=784, hidden=(500,), latents=20)
BATCH, TRAIN = 128, 9000
WARMUP = 100


def optimizers(epochs: int) -> dict[str, xvae.optim.OptimizerSpec]:
    steps = epochs * -(-TRAIN // BATCH)  # 71 steps per epoch
    return {
        "Adam(1e-3)": xvae.optim.Adam(1e-3),
        "AdamW + cosine + clip_norm=1": xvae.optim.AdamW(
            CosineDecay(peak=1e-3, decay_steps=steps, warmup_steps=min(WARMUP, steps // 2)), weight_decay=0.01, clip_norm=1.0),
    }


def run(backend: str, name: str, optimizer: xvae.optim.OptimizerSpec, data_dir: str | None, epochs: int) -> dict:
    data = xvae.datasets.load("mnist", split="test", data_dir=data_dir, download=False)
    x = xvae.datasets.binarize(data.x, "static")
    train, test = x[:TRAIN], x[TRAIN:]
    vae = xvae.VAE(SPEC, backend=backend, seed=0)
    start = time.perf_counter()
    hist = vae.fit(train, epochs=epochs, batch_size=BATCH, optimizer=optimizer, verbose=0)
    seconds = time.perf_counter() - start
    result = vae.evaluate(test, seed=0)
    return {"backend": backend, "optimizer": name, "epochs": epochs, "train_loss": hist.history["loss"][-1],
            "last_lr": hist.history["lr"][-1], "test_neg_elbo": result["loss"],
            "test_reconstruction": result["reconstruction"], "test_kl": result["kl"], "seconds": round(seconds, 1)}


def table(results: list[dict]) -> str:
    names = list(dict.fromkeys(r["optimizer"] for r in results))
    backends = list(dict.fromkeys(r["backend"] for r in results))
    got = {(r["optimizer"], r["backend"]): r for r in results}
    lines = ["| optimizer | " + " | ".join(f"{b}: test -ELBO" for b in backends)
             + " | largest relative difference between backends |",
             "|---|" + "---:|" * (len(backends) + 1)]
    for name in names:
        values = [got[name, b]["test_neg_elbo"] for b in backends]
        worst = max((abs(a - b) / abs(b) for a, b in itertools.combinations(values, 2)), default=0.0)
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + f" | {worst:.1e} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("XVAE_DATA_DIR"))
    parser.add_argument("--backends", default=",".join(b for b in xvae.backends.available() if b != "numpy"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    results = []
    for name, optimizer in optimizers(args.epochs).items():
        for backend in args.backends.split(","):
            results.append(run(backend, name, optimizer, args.data_dir, args.epochs))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The article's VAE, made exact: 784-500-20, Bernoulli decoder, Adam(1e-3), batch 128.

Trains on the first 9,000 images of the real MNIST test set (binarized at 0.5; the 60,000
training images are not on these machines) and reports the negative ELBO in nats on the
last 1,000, for each backend asked for.

Run:  python examples/mnist_vae.py --data-dir ../shared/data/mnist --backends jax,tf,torch
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

try:  # torch before tensorflow in one process
    import torch  # noqa: F401
except ImportError:
    pass

import xvae

SPEC = xvae.VAESpec(input_dim=784, hidden=(500,), latents=20)


def run(backend: str, data_dir: str | None, epochs: int = 20, steps_per_call: int = 1) -> dict:
    data = xvae.datasets.load("mnist", split="test", data_dir=data_dir, download=False)
    x = xvae.datasets.binarize(data.x, "static")
    train, test = x[:9000], x[9000:]
    vae = xvae.VAE(SPEC, backend=backend, seed=0)
    start = time.perf_counter()
    hist = vae.fit(train, epochs=epochs, batch_size=128, optimizer=xvae.optim.Adam(1e-3), verbose=0,
                   steps_per_call=steps_per_call)
    seconds = time.perf_counter() - start
    result = vae.evaluate(test, seed=0)
    return {"backend": backend, "epochs": epochs, "train_loss": hist.history["loss"][-1],
            "test_neg_elbo": result["loss"], "test_reconstruction": result["reconstruction"],
            "test_kl": result["kl"], "seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("XVAE_DATA_DIR"))
    parser.add_argument("--backends", default=",".join(b for b in xvae.backends.available() if b != "numpy"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps-per-call", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    rows = [run(b, args.data_dir, args.epochs, args.steps_per_call) for b in args.backends.split(",")]
    for r in rows:
        print(json.dumps(r))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

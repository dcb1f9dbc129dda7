"""The numbers papers report, per backend (issue 12, item 5): test -ELBO, IWAE-k NLL and
active units of VAEs trained on the 9,000/1,000 split of the MNIST test set.

Models: "mlp" (784-500-20, relu, Bernoulli) and "conv" (examples/conv_vae_mnist.py's SPEC).
Data: the 10,000 MNIST test images binarized at 0.5; train on the first 9,000, report on
the last 1,000. Adam(1e-3), batch 128, seed 0, 20 epochs. Per (model, backend): the test
negative ELBO (`evaluate`, one z sample per image, Generator(0)), the IWAE-k NLL
(`-log_likelihood(x_test, k).mean()`, seed 0) and the active units (Burda et al.:
Cov_x E_q[z_d] > 0.01), then the spread between backends (max - min). Training drifts apart
by float32 rounding over 20 epochs, so the script also takes the first backend's trained
weights to every backend and reports the IWAE-k NLL of those identical weights.

    python examples/likelihood_table.py --models mlp --data-dir /path/to/mnist \\
        --out docs/results/likelihood.json     # writes the JSON, prints the table

`table(results)` renders the markdown table docs/likelihood.md quotes (a test checks it
against the committed JSON).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

import xvae

MODELS = ("mlp", "conv")


def spec(model: str) -> xvae.VAESpec:
    if model == "conv":
        from examples.conv_vae_mnist import SPEC

        return SPEC
    return xvae.VAESpec(input_dim=784, hidden=(500,), latents=20)


def same_weights(vae: xvae.VAE, backends: list[str], test: np.ndarray, k: int) -> dict[str, float]:
    """IWAE-k NLL of one trained model's weights in every backend: the seam's agreement
    (identical weights and noise), apart from training's float32 drift."""
    return {b: float(-vae.to(b).log_likelihood(test, k=k, seed=0).mean()) for b in backends}


def run(model: str, backend: str, train: np.ndarray, test: np.ndarray, *, epochs: int, k: int,
        ) -> tuple[dict[str, Any], xvae.VAE]:
    vae = xvae.VAE(spec(model), backend=backend, seed=0)
    start = time.perf_counter()
    vae.fit(train, epochs=epochs, batch_size=128, optimizer=xvae.optim.Adam(1e-3), progress=False)
    trained = time.perf_counter() - start
    elbo = vae.evaluate(test)["loss"]
    start = time.perf_counter()
    nll = float(-vae.log_likelihood(test, k=k, seed=0).mean())
    return {"model": model, "backend": backend, "test_neg_elbo": elbo, "iwae_nll": nll,
            "active_units": vae.active_units(test), "fit_s": round(trained, 1),
            "iwae_s": round(time.perf_counter() - start, 1)}, vae


def table(results: dict[str, Any]) -> str:
    """The markdown table of `results` (the JSON this script writes)."""
    k = results["k"]
    lines = [f"| model | backend | test -ELBO (nats) | IWAE-{k} NLL (nats) | active units |",
             "|---|---|---:|---:|---:|"]
    for model in results["models"]:
        rows = [r for r in results["rows"] if r["model"] == model]
        for r in rows:
            lines.append(f"| {model} | {r['backend']} | {r['test_neg_elbo']:.3f} | {r['iwae_nll']:.3f} | "
                         f"{r['active_units']} |")
        if len(rows) > 1:
            spread = {key: max(r[key] for r in rows) - min(r[key] for r in rows)
                      for key in ("test_neg_elbo", "iwae_nll", "active_units")}
            lines.append(f"| {model} | spread (max - min) | {spread['test_neg_elbo']:.3f} | "
                         f"{spread['iwae_nll']:.3f} | {spread['active_units']} |")
    for model, values in results.get("same_weights_iwae_nll", {}).items():
        first = results["backends"][0]
        spread = max(values.values()) - min(values.values())
        lines.append("")
        lines.append(f"{model}, the {first}-trained weights in every backend: IWAE-{k} NLL "
                     + ", ".join(f"{b} {v:.5f}" for b, v in values.items())
                     + f"; spread {spread:.2e} nats ({spread / abs(values[first]):.1e} relative).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,conv")
    parser.add_argument("--backends", default=None, help="comma-separated; default: every available one")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    backends = args.backends.split(",") if args.backends else [b for b in xvae.backends.available() if b != "numpy"]
    data = xvae.datasets.load("mnist", split="test", data_dir=args.data_dir)
    x = xvae.datasets.binarize(data.x, "static")
    train, test = x[:9000], x[9000:]
    rows, same = [], {}
    for model in models:
        for i, backend in enumerate(backends):
            row, vae = run(model, backend, train, test, epochs=args.epochs, k=args.k)
            rows.append(row)
            print(json.dumps(rows[-1]), flush=True)
            if i == 0:
                same[model] = same_weights(vae, backends, test, args.k)
                print(json.dumps({model: same[model]}), flush=True)
    results = {"models": models, "backends": backends, "epochs": args.epochs, "k": args.k,
               "same_weights_iwae_nll": same,
               "split": "MNIST test set binarized at 0.5: first 9,000 train, last 1,000 test",
               "optimizer": "Adam(1e-3), batch 128, seed 0", "machine": platform.platform(),
               "xvae": xvae.__version__, "rows": rows}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()

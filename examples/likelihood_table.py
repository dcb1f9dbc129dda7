"""The numbers papers report, per backend (issue 12, item 5): test -ELBO, IWAE-k NLL and
active units of VAEs trained on the 9,000/1,000 split of the MNIST test set.

Models: "mlp" (784-500-20, relu, Bernoulli), "conv" (examples/conv_vae_mnist.py's SPEC) and
"cvae" (the 784-500-20 VAE conditioned on the digit label, `conditions=10`).
Data: the 10,000 MNIST test images binarized at 0.5; train on the first 9,000, report on
the last 1,000. Adam(1e-3), batch 128, seed 0, 20 epochs. Per (model, backend): the test
negative ELBO (`evaluate`, one z sample per image, Generator(0)), the IWAE-k NLL
(`-log_likelihood(x_test, k).mean()`, seed 0) and the active units (Burda et al.:
Cov_x E_q[z_d] > 0.01), then the spread between backends (max - min). Training drifts apart
by float32 rounding over 20 epochs, so `--same-weights` also takes this run's trained
weights to other backends and reports the IWAE-k NLL of those identical weights.

Each row records the commit and settings that produced it; `--out` merges into an existing
JSON (a row of the same model and backend is replaced), so one model/backend can run at a
time:

    python examples/likelihood_table.py --models mlp --data-dir /path/to/mnist \\
        --out docs/results/likelihood.json     # writes/merges the JSON, prints the table
    python examples/likelihood_table.py --models conv --backends jax --same-weights jax,tf,torch \\
        --same-weights-n 100 --data-dir /path/to/mnist --out docs/results/likelihood.json

`table(results)` renders the markdown table docs/likelihood.md quotes (a test checks it
against the committed JSON).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

import xvae

MODELS = ("mlp", "conv", "cvae")
ROOT = Path(__file__).resolve().parent.parent
BATCH_SIZE, LEARNING_RATE, SEED = 128, 1e-3, 0


def spec(model: str) -> xvae.VAESpec:
    if model == "conv":
        from examples.conv_vae_mnist import SPEC

        return SPEC
    if model == "cvae":
        return xvae.VAESpec(input_dim=784, hidden=(500,), latents=20, conditions=10)
    return xvae.VAESpec(input_dim=784, hidden=(500,), latents=20)


def provenance(commit: str | None) -> dict[str, Any]:
    """Where a row came from: the commit (and whether the tree differed from it), the host,
    the versions. Rows are reproducible at their commit: the core's random stream may change
    between commits."""
    dirty = None
    if commit is None:
        try:
            commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                    text=True, check=True).stdout.strip()
            dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "xvae",
                                         "xvae_jax", "xvae_tf", "xvae_torch", "examples"],
                                        capture_output=True, text=True, check=True).stdout.strip())
        except (OSError, subprocess.CalledProcessError):
            commit = "unknown"
    return {"commit": commit, "uncommitted_changes": dirty, "machine": platform.platform(),
            "python": platform.python_version(), "xvae": xvae.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")}


def settings(epochs: int, k: int) -> dict[str, Any]:
    return {"epochs": epochs, "k": k, "batch_size": BATCH_SIZE, "optimizer": f"Adam({LEARNING_RATE:g})",
            "seed": SEED, "split": "MNIST test set binarized at 0.5: first 9,000 train, last 1,000 test",
            "evaluate_seed": 0, "log_likelihood_seed": 0}


def same_weights(vae: xvae.VAE, backends: list[str], test: np.ndarray, labels: np.ndarray | None,
                 k: int) -> dict[str, float]:
    """IWAE-k NLL of one trained model's weights in every backend: the seam's agreement
    (identical weights and noise), apart from training's float32 drift."""
    extra = {} if labels is None else {"y": labels}
    return {b: float(-vae.to(b).log_likelihood(test, k=k, seed=0, **extra).mean()) for b in backends}


def run(model: str, backend: str, data: tuple[np.ndarray, ...], *, epochs: int, k: int,
        ) -> tuple[dict[str, Any], xvae.VAE]:
    train, test, train_y, test_y = data
    labelled = model == "cvae"
    fit_y, test_extra = ({"y": train_y}, {"y": test_y}) if labelled else ({}, {})
    vae = xvae.VAE(spec(model), backend=backend, seed=SEED)
    start = time.perf_counter()
    vae.fit(train, epochs=epochs, batch_size=BATCH_SIZE, optimizer=xvae.optim.Adam(LEARNING_RATE),
            progress=False, **fit_y)
    trained = time.perf_counter() - start
    elbo = vae.evaluate(test, seed=0, **test_extra)["loss"]
    start = time.perf_counter()
    nll = float(-vae.log_likelihood(test, k=k, seed=0, **test_extra).mean())
    return {"model": model, "backend": backend, "test_neg_elbo": elbo, "iwae_nll": nll,
            "active_units": vae.active_units(test, **test_extra), "fit_s": round(trained, 1),
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
    for model in results["models"]:
        same = results.get("same_weights_iwae_nll", {}).get(model)
        if not same:
            continue
        values = same["nll"]
        spread = max(values.values()) - min(values.values())
        lines.append("")
        lines.append(f"{model}, the {same['trained_in']}-trained weights in every backend, first "
                     f"{same['examples']:,} test images: IWAE-{same['k']} NLL "
                     + ", ".join(f"{b} {v:.5f}" for b, v in values.items())
                     + f"; spread {spread:.2e} nats ({spread / abs(values[same['trained_in']]):.1e} relative).")
    return "\n".join(lines)


def merge(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """`new`'s rows replace `old`'s rows of the same (model, backend); the rest are kept."""
    if old is None:
        return new
    if old["k"] != new["k"]:
        raise SystemExit(f"--k {new['k']} differs from the k={old['k']} of the JSON's rows: one table, one k")
    replaced = {(r["model"], r["backend"]) for r in new["rows"]}
    rows = [r for r in old["rows"] if (r["model"], r["backend"]) not in replaced] + new["rows"]
    models = [m for m in MODELS if any(r["model"] == m for r in rows)]
    backends = [b for b in ("jax", "tf", "torch", "numpy") if any(r["backend"] == b for r in rows)]
    order = {m: i for i, m in enumerate(models)}
    rows.sort(key=lambda r: (order[r["model"]], backends.index(r["backend"])))
    same = {**old.get("same_weights_iwae_nll", {}), **new["same_weights_iwae_nll"]}
    return {**old, **new, "models": models, "backends": backends, "rows": rows, "same_weights_iwae_nll": same}


def write(path: Path, results: dict[str, Any]) -> None:
    """Atomically (a crash never leaves half a JSON)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,conv,cvae")
    parser.add_argument("--backends", default=None, help="comma-separated; default: every available one")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--same-weights", default=None,
                        help="comma-separated backends that evaluate the first backend's trained weights")
    parser.add_argument("--same-weights-n", type=int, default=1000, help="test images for --same-weights")
    parser.add_argument("--commit", default=None, help="recorded in each row (default: git HEAD of this checkout)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=None, help="JSON to write; rows of other models/backends in it are kept")
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise SystemExit(f"--models: unknown {unknown}; choose from {list(MODELS)}")
    backends = args.backends.split(",") if args.backends else [b for b in xvae.backends.available() if b != "numpy"]
    same_backends = args.same_weights.split(",") if args.same_weights else []
    data = xvae.datasets.load("mnist", split="test", data_dir=args.data_dir)
    x = xvae.datasets.binarize(data.x, "static")
    split = (x[:9000], x[9000:], data.y[:9000], data.y[9000:])
    origin, setup = provenance(args.commit), settings(args.epochs, args.k)
    rows, same = [], {}
    for model in models:
        for i, backend in enumerate(backends):
            row, vae = run(model, backend, split, epochs=args.epochs, k=args.k)
            rows.append({**row, **origin, **setup})
            print(json.dumps(rows[-1]), flush=True)
            if i == 0 and same_backends:
                n = args.same_weights_n
                labels = split[3][:n] if model == "cvae" else None
                same[model] = {"trained_in": backend, "examples": n, "k": args.k, **origin,
                               "nll": same_weights(vae, same_backends, split[1][:n], labels, args.k)}
                print(json.dumps({model: same[model]}), flush=True)
    results = {"models": models, "backends": backends, "epochs": args.epochs, "k": args.k,
               "same_weights_iwae_nll": same, "split": setup["split"],
               "optimizer": f"{setup['optimizer']}, batch {BATCH_SIZE}, seed {SEED}", "rows": rows}
    if args.out:
        out = Path(args.out)
        results = merge(json.loads(out.read_text()) if out.exists() else None, results)
        write(out, results)
    print(table(results))


if __name__ == "__main__":
    main()

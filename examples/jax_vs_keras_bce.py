"""The seed experiment: why the same MLP reached 91% in Keras and 50-80% in hand-written JAX.

Classifier 784-1000-1 on the first 1,000 real MNIST test images, raw 0..255 pixels (no
scaling), label "digit >= 5", identical glorot-uniform initial weights from seed 0, ten
full-batch SGD(0.01) steps. Raw pixels make the logits huge, so float32 sigmoid(logit)
rounds to exactly 0 or 1 and a BCE written on *probabilities* saturates:

* naive  -mean(y log p + (1-y) log(1-p)):  log(0) = -inf, the gradient is NaN or 0;
* clipped p in [1e-7, 1-1e-7] (Keras on the JAX and torch backends): finite loss, but the
  clip's gradient is 0 wherever it is active, so saturated examples stop learning;
* Keras on TensorFlow recovers the logits from the sigmoid op and computes the stable form;
* xvae computes max(x,0) - x*y + log1p(exp(-|x|)) from the logits in every backend.

Run:  python examples/jax_vs_keras_bce.py --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable

import numpy as np

try:  # torch before tensorflow in one process (duplicate OpenMP runtimes otherwise)
    import torch  # noqa: F401
except ImportError:
    pass

import xvae

SPEC = xvae.ClassifierSpec(input_dim=784, hidden=(1000,), outputs=1)
LR, STEPS, N = 0.01, 10, 1000


def load_data(data_dir: str | None, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    data = xvae.datasets.load("mnist", split="test", data_dir=data_dir, scale=False, download=False)
    return data.x[:n], (data.y[:n] >= 5).astype(np.float32)


def initial_weights(seed: int = 0) -> dict[str, np.ndarray]:
    return xvae.Classifier(SPEC, backend="numpy", seed=seed).get_weights()


def _accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((np.asarray(logits).reshape(-1) > 0) == (y > 0.5)))


def run_xvae(backend: str, x: np.ndarray, y: np.ndarray, w: dict[str, np.ndarray]) -> dict[str, Any]:
    clf = xvae.Classifier(SPEC, backend=backend, seed=0)
    clf.set_weights(w)
    hist = clf.fit(x, y, epochs=STEPS, batch_size=len(x), optimizer=xvae.optim.SGD(LR), shuffle=False,
                   verbose=0)
    logits = clf.predict(x, logits=True)
    return {"accuracy": _accuracy(logits, y), "correct": int(round(_accuracy(logits, y) * len(y))),
            "final_loss": hist.history["loss"][-1]}


def _jax_naive(x: np.ndarray, y: np.ndarray, w: dict[str, np.ndarray], clip: float | None) -> dict[str, Any]:
    """A hand-written JAX loop with BCE on sigmoid probabilities (naive, or clipped as Keras does)."""
    import jax
    import jax.numpy as jnp

    def forward(p, x):
        h = jax.nn.relu(x @ p["layers.0.kernel"] + p["layers.0.bias"])
        return h @ p["output.kernel"] + p["output.bias"]

    def loss(p, x, y):
        prob = jax.nn.sigmoid(forward(p, x))[:, 0]
        if clip is not None:
            prob = jnp.clip(prob, clip, 1 - clip)
        return -jnp.mean(y * jnp.log(prob) + (1 - y) * jnp.log(1 - prob))

    @jax.jit
    def step(p, x, y):
        value, g = jax.value_and_grad(loss)(p, x, y)
        return jax.tree_util.tree_map(lambda a, b: a - LR * b, p, g), value

    with jax.default_matmul_precision("float32"):
        p = {k: jnp.asarray(v) for k, v in w.items()}
        for _ in range(STEPS):
            p, value = step(p, x, y)
        logits = np.asarray(forward(p, x))
    return {"accuracy": _accuracy(logits, y), "correct": int(round(_accuracy(logits, y) * len(y))),
            "final_loss": float(value)}


def _torch_naive(x: np.ndarray, y: np.ndarray, w: dict[str, np.ndarray]) -> dict[str, Any]:
    """The same naive BCE on probabilities, hand-written in PyTorch."""
    import torch

    p = {k: torch.tensor(v, requires_grad=True) for k, v in w.items()}
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def forward():
        h = torch.relu(xt @ p["layers.0.kernel"] + p["layers.0.bias"])
        return h @ p["output.kernel"] + p["output.bias"]

    for _ in range(STEPS):
        prob = torch.sigmoid(forward())[:, 0]
        value = -torch.mean(yt * torch.log(prob) + (1 - yt) * torch.log(1 - prob))
        for t in p.values():
            t.grad = None
        value.backward()
        with torch.no_grad():
            for t in p.values():
                t -= LR * t.grad
    with torch.no_grad():
        logits = forward().numpy()
    return {"accuracy": _accuracy(logits, y), "correct": int(round(_accuracy(logits, y) * len(y))),
            "final_loss": value.item()}


def _keras_fit(x: np.ndarray, y: np.ndarray, w: dict[str, np.ndarray]) -> dict[str, Any]:
    """Keras' own fit (TensorFlow backend): sigmoid output layer + "binary_crossentropy"."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1000, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.set_weights([w["layers.0.kernel"], w["layers.0.bias"], w["output.kernel"], w["output.bias"]])
    model.compile(optimizer=keras.optimizers.SGD(LR), loss="binary_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, batch_size=len(x), epochs=STEPS, shuffle=False, verbose=0)
    logits_sign = model.predict(x, verbose=0)[:, 0] > 0.5
    acc = float(np.mean(logits_sign == (y > 0.5)))
    return {"accuracy": acc, "correct": int(round(acc * len(y))), "final_loss": float(hist.history["loss"][-1]),
            "backend": keras.backend.backend()}


def run(data_dir: str | None = None, n: int = N) -> dict[str, dict[str, Any]]:
    """Every variant on the same data and initial weights; name -> accuracy, correct, final_loss."""
    x, y = load_data(data_dir, n)
    w = initial_weights()
    results: dict[str, dict[str, Any]] = {"xvae/numpy (float64 reference)": run_xvae("numpy", x, y, w)}
    for name in ("jax", "tf", "torch"):
        if xvae.backends.why_unavailable(name) is None:
            results[f"xvae/{name}"] = run_xvae(name, x, y, w)
    baselines: dict[str, Callable[[], dict[str, Any]]] = {
        "hand-written JAX, BCE on probabilities": lambda: _jax_naive(x, y, w, None),
        "hand-written JAX, clipped probabilities (Keras on JAX/torch)": lambda: _jax_naive(x, y, w, 1e-7),
        "hand-written PyTorch, BCE on probabilities": lambda: _torch_naive(x, y, w),
        "Keras fit (TensorFlow), sigmoid + binary_crossentropy": lambda: _keras_fit(x, y, w),
    }
    needs = {"JAX": "jax", "PyTorch": "torch", "Keras": "keras"}
    for name, fn in baselines.items():
        module = next(m for k, m in needs.items() if k in name)
        try:
            __import__(module)
        except ImportError:
            continue
        results[name] = fn()
    majority = max(np.mean(y), 1 - np.mean(y))
    results["majority class"] = {"accuracy": float(majority), "correct": int(round(majority * len(y))),
                                 "final_loss": float("nan")}
    return results


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| variant | accuracy | correct / 1000 | final loss |", "|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['accuracy']:.3f} | {r['correct']} | {r['final_loss']:.4g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("XVAE_DATA_DIR"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    results = run(args.data_dir)
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

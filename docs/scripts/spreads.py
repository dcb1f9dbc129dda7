"""Measured spreads of the parity guarantee: 50-step training trajectories, every pair.

The setup of tests/conformance/test_numerics.py::test_50_step_trajectory, reused from
tests/conformance/cases.py: for each spec ("vae-h1-z20", "clf-h2-o1", "clf-h1-o10") and
optimizer ("sgd-m0.9", "adam"), 50 padded batches drawn from Generator(7), identical
initial weights, one `train_step` per batch in every installed backend. For every pair of
backends (the float64 NumPy reference included) it prints the maximum over the 50 steps of
|loss_a - loss_b| / |loss_b| as a Markdown table, and the guarantee it is checked against.

With --data-dir (the MNIST IDX files), it also trains the article's model, the 784-500-20
VAE, for 20 Adam(1e-3) steps of 100 real MNIST test images from identical weights and noise
in every backend, and prints per pair the per-step loss spread and how far the weights
drift: relative L2 (the norm the guarantee uses) and the element-wise maximum relative to
the largest weight (which Adam inflates; the parity page explains why).

Run:  python docs/scripts/spreads.py                 # every installed backend
      python docs/scripts/spreads.py --data-dir ../shared/data/mnist
      XVAE_TEST_BACKENDS=jax,torch python docs/scripts/spreads.py
"""

from __future__ import annotations

try:  # torch before tensorflow in one process (duplicate OpenMP runtimes otherwise)
    import torch  # noqa: F401
except ImportError:
    pass

import argparse
import itertools
import os
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "conformance"))

from cases import OPTIMIZERS, SPECS, TRAJ_RTOL, batch, program

import xvae

CASES = ("vae-h1-z20", "clf-h2-o1", "clf-h1-o10")
OPTS = ("sgd-m0.9", "adam")
STEPS = 50


def trajectory(name: str, case: str, opt: str) -> np.ndarray:
    """Per-step losses of 50 train_step calls, as the conformance test runs them."""
    spec, optimizer = SPECS[case], OPTIMIZERS[opt]
    rng = np.random.default_rng(7)
    batches = [batch(spec, rng) for _ in range(STEPS)]
    prog = program(name, spec, optimizer)
    return np.array([float(prog.to_numpy(prog.train_step(b))["loss"]) for b in batches])


def backends() -> list[str]:
    """The framework backends to measure (XVAE_TEST_BACKENDS restricts), then the reference."""
    only = {n for n in os.environ.get("XVAE_TEST_BACKENDS", "").split(",") if n}
    names = [n for n in xvae.backends.known() if n != "numpy" and (not only or n in only)]
    return [n for n in names if xvae.backends.why_unavailable(n) is None] + ["numpy"]


def spreads(names: list[str]) -> dict[tuple[str, str], dict[str, float]]:
    """(case, opt) -> "a vs b" -> max relative per-step loss difference."""
    out = {}
    for case, opt in itertools.product(CASES, OPTS):
        runs = {name: trajectory(name, case, opt) for name in names}
        out[(case, opt)] = {f"{a} vs {b}": float(np.max(np.abs(runs[a] - runs[b]) / np.abs(runs[b])))
                            for a, b in itertools.combinations(names, 2)}
    return out


def table(result: dict[tuple[str, str], dict[str, float]]) -> str:
    """Markdown: one row per (case, optimizer), one column per pair, and the worst per pair."""
    pairs = list(next(iter(result.values())))
    lines = ["| case | optimizer | " + " | ".join(pairs) + " |", "|---|---|" + "---:|" * len(pairs)]
    for (case, opt), row in result.items():
        lines.append(f"| {case} | {opt} | " + " | ".join(f"{row[p]:.1e}" for p in pairs) + " |")
    worst = {p: max(row[p] for row in result.values()) for p in pairs}
    lines.append("| **worst** | | " + " | ".join(f"**{worst[p]:.1e}**" for p in pairs) + " |")
    return "\n".join(lines)


def article_drift(names: list[str], data_dir: str, steps: int = 20, size: int = 100) -> str:
    """The 784-500-20 VAE, `steps` Adam steps on MNIST in every backend: losses and weight drift."""
    x = xvae.datasets.load("mnist", split="test", data_dir=data_dir, download=False).x[: steps * size]
    spec, optimizer = xvae.VAESpec(input_dim=784, hidden=(500,), latents=20), xvae.optim.Adam(1e-3)
    noise = np.random.default_rng(0).standard_normal((len(x), 20), dtype=np.float32)
    batches = [{"x": x[i:i + size], "noise": noise[i:i + size], "mask": np.ones(size, np.float32),
                "beta": np.float32(1.0)} for i in range(0, len(x), size)]
    runs = {}
    for name in names:
        prog = program(name, spec, optimizer)
        losses = np.array([float(prog.to_numpy(prog.train_step(b))["loss"]) for b in batches])
        runs[name] = (prog.get_state()[0], losses)
    head = (f"| pair | per-step loss, max relative difference ({steps} steps) "
            "| weights: relative L2, worst tensor | weights: max abs difference / max abs weight |")
    lines = [head, "|---|---:|---:|---:|"]
    for a, b in itertools.combinations(names, 2):
        (wa, la), (wb, lb) = runs[a], runs[b]
        f64 = {k: (wa[k].astype(np.float64), wb[k].astype(np.float64)) for k in wb}
        rel_l2 = max(float(np.linalg.norm(u - v) / np.linalg.norm(v)) for u, v in f64.values())
        max_abs = max(float(np.max(np.abs(u - v)) / np.max(np.abs(v))) for u, v in f64.values())
        loss = float(np.max(np.abs(la - lb) / np.abs(lb)))
        lines.append(f"| {a} vs {b} | {loss:.1e} | {rel_l2:.1e} | {max_abs:.1e} |")
    return "\n".join(lines)


def environment(names: list[str]) -> str:
    """One line per backend: framework version and device, plus Python and the machine."""
    rows = [f"- {n}: {xvae.backends.get(n).info()['version']} on {xvae.backends.get(n).info()['device']}"
            for n in names]
    python = f"- Python {platform.python_version()} on {platform.machine()} ({os.cpu_count()} CPUs)"
    return "\n".join([python, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="MNIST IDX folder: also measure the 784-500-20 VAE")
    parser.add_argument("--skip-trajectories", action="store_true")
    args = parser.parse_args(argv)
    names = backends()
    if not args.skip_trajectories:
        print(table(spreads(names)))
        print(f"\nGuarantee (tests/conformance/cases.py TRAJ_RTOL): {TRAJ_RTOL:.0e}.\n")
    if args.data_dir:
        print(article_drift(names, args.data_dir))
        print()
    print("Measured with:\n")
    print(environment(names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

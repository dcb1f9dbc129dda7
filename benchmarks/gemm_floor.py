"""The GEMM floor: the time of one training step's matrix products alone, on the fastest library.

A VAE step 784-H-20 at batch B is 14 GEMMs (x @ W convention, W stored (in, out)):

- forward, 5: (B,784)@(784,H), (B,H)@(H,20) twice (mean, logvar), (B,20)@(20,H), (B,H)@(H,784);
- weight gradients, 5: dW = input^T @ d_output for every layer, (in,B)@(B,out);
- input gradients, 4: d_input = d_output @ W^T for every layer but the first (no gradient
  flows into the data), (B,out)@(out,in).

Everything else in a step (bias adds, relu, exp, the loss, Adam's element-wise update) is
memory-bound and small at these shapes, so `1000 / floor_ms` steps/s is a ceiling no
framework can beat on this machine with this library. Measured with preallocated outputs,
the operands laid out as the backward pass sees them (transposed views, no copies), as the
median of whole 14-GEMM sequences (`sequence_ms`, the floor) and per GEMM (`per_gemm_ms`).

Libraries: torch (`torch.mm(out=)`, MKL/oneDNN on x86), numpy (`np.matmul(out=)`, its
BLAS), jax (the 14 products in one jitted function: XLA's CPU dot), tf (`tf.linalg.matmul`
eagerly). Each runs in its own process so thread pools do not mix.

Run: `python -m benchmarks.gemm_floor --batch 128 --hidden 500`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from typing import Any

import numpy as np

from benchmarks._common import INPUT, LATENTS

__all__ = ["LIBS", "gemm_shapes", "measure", "measure_all"]

LIBS = ("torch", "numpy", "jax", "tf")


def gemm_shapes(batch: int, hidden: int) -> list[tuple[str, tuple[int, int], tuple[int, int], str]]:
    """(name, A shape, B shape, layout) of the step's 14 GEMMs; layout "nn", "tn" (A^T) or "nt" (B^T).

    Shapes are of the stored operands: "tn" computes A.T @ B with A stored (B, in), "nt"
    computes A @ B.T with B stored (in, out).
    """
    layers = [("enc0", INPUT, hidden), ("mean", hidden, LATENTS), ("logvar", hidden, LATENTS),
              ("dec0", LATENTS, hidden), ("out", hidden, INPUT)]
    out = []
    for name, i, o in layers:
        out.append((f"fwd {name}", (batch, i), (i, o), "nn"))
    for name, i, o in layers:
        out.append((f"dW {name}", (batch, i), (batch, o), "tn"))
    for name, i, o in layers[1:]:
        out.append((f"dX {name}", (batch, o), (i, o), "nt"))
    return out


def flops(batch: int, hidden: int) -> float:
    """Floating-point operations of the 14 GEMMs: 2 * M * K * N each."""
    total = 0
    for _, a, b, lay in gemm_shapes(batch, hidden):
        m, k = (a[1], a[0]) if lay == "tn" else a
        n = b[0] if lay == "nt" else b[1]
        total += 2 * m * k * n
    return float(total)


def _operands(batch: int, hidden: int, seed: int = 0) -> list[tuple[str, np.ndarray, np.ndarray, str]]:
    rng = np.random.default_rng(seed)
    return [(name, rng.standard_normal(a, dtype=np.float32), rng.standard_normal(b, dtype=np.float32), lay)
            for name, a, b, lay in gemm_shapes(batch, hidden)]


def _time(fn: Any, reps: int, inner: int, sync: Any = None) -> list[float]:
    """Median-ready list of per-call milliseconds, each averaged over `inner` back-to-back calls."""
    for _ in range(max(2, inner // 4)):
        fn()
    if sync:
        sync()
    out = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        if sync:
            sync()
        out.append((time.perf_counter() - start) * 1e3 / inner)
    return out


def measure(lib: str, batch: int = 128, hidden: int = 500, reps: int = 7, inner: int = 20,
            device: str = "cpu") -> dict[str, Any]:
    """The floor with one library, in this process."""
    ops = _operands(batch, hidden)
    per: dict[str, float] = {}
    sync = None
    if lib == "torch":
        import torch

        dev = torch.device("cuda" if device in ("gpu", "cuda") else device)
        if dev.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False
            sync = torch.cuda.synchronize
        calls = []
        for name, a, b, lay in ops:
            ta, tb = torch.from_numpy(a).to(dev), torch.from_numpy(b).to(dev)
            A = ta.t() if lay == "tn" else ta
            B = tb.t() if lay == "nt" else tb
            out = torch.empty(A.shape[0], B.shape[1], device=dev)
            calls.append((name, lambda A=A, B=B, out=out: torch.mm(A, B, out=out)))
        version, threads = torch.__version__, torch.get_num_threads()
    elif lib == "numpy":
        calls = []
        for name, a, b, lay in ops:
            A = a.T if lay == "tn" else a
            B = b.T if lay == "nt" else b
            out = np.empty((A.shape[0], B.shape[1]), np.float32)
            calls.append((name, lambda A=A, B=B, out=out: np.matmul(A, B, out=out)))
        version, threads = np.__version__, None
    elif lib == "jax":
        import jax

        def prod(a: Any, b: Any, lay: str) -> Any:
            with jax.default_matmul_precision("highest"):
                return (a.T @ b) if lay == "tn" else (a @ b.T) if lay == "nt" else (a @ b)

        dev_ops = [(name, jax.device_put(a), jax.device_put(b), lay) for name, a, b, lay in ops]
        calls = []
        for name, a, b, lay in dev_ops:
            f = jax.jit(lambda a, b, lay=lay: prod(a, b, lay))
            calls.append((name, lambda f=f, a=a, b=b: f(a, b).block_until_ready()))
        lays = tuple(lay for *_, lay in dev_ops)
        whole = jax.jit(lambda pairs: [prod(a, b, lay) for (a, b), lay in zip(pairs, lays)])
        pairs = [(a, b) for _, a, b, _ in dev_ops]
        version, threads = jax.__version__, None
    elif lib == "tf":
        import tensorflow as tf

        calls = []
        for name, a, b, lay in ops:
            ta, tb = tf.constant(a), tf.constant(b)
            calls.append((name, lambda ta=ta, tb=tb, lay=lay: tf.linalg.matmul(
                ta, tb, transpose_a=lay == "tn", transpose_b=lay == "nt").numpy()))
        version, threads = tf.__version__, None
    else:
        raise ValueError(f"Unknown library {lib!r}; known: {LIBS}")

    for name, fn in calls:
        per[name] = float(np.median(_time(fn, reps, inner, sync)))
    if lib == "jax":
        seq = _time(lambda: jax.block_until_ready(whole(pairs)), reps, inner)
    else:
        def sequence() -> None:
            for _, fn in calls:
                fn()
        seq = _time(sequence, reps, inner, sync)
    floor = float(np.median(seq))
    return {"lib": lib, "version": version, "threads": threads, "batch": batch, "hidden": hidden,
            "sequence_ms": floor, "sequence_ms_min": float(min(seq)), "sequence_ms_max": float(max(seq)),
            "sum_per_gemm_ms": float(sum(per.values())), "per_gemm_ms": per,
            "ceiling_steps_per_s": 1e3 / floor, "gflops": flops(batch, hidden) / floor / 1e6}


def _child(conn: Any, lib: str, kwargs: dict[str, Any]) -> None:
    try:
        conn.send(("ok", [measure(lib, **kw) for kw in kwargs["configs"]]))
    except Exception as err:  # noqa: BLE001 -- reported, not raised: a missing library is not a failure
        conn.send(("error", f"{type(err).__name__}: {err}"))
    conn.close()


def measure_all(libs: tuple[str, ...] = ("torch", "numpy"), configs: list[dict[str, Any]] | None = None,
                ) -> dict[str, Any]:
    """Each library in its own spawned process; returns {lib: [result per config] or error}."""
    configs = configs or [{"batch": 128, "hidden": 500}]
    ctx = mp.get_context("spawn")
    out: dict[str, Any] = {}
    for lib in libs:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_child, args=(child, lib, {"configs": configs}))
        proc.start()
        status, value = parent.recv()
        proc.join()
        out[lib] = value if status == "ok" else {"error": value}
    return out


def best(results: dict[str, Any], index: int = 0) -> dict[str, Any] | None:
    """The fastest library's result for config `index` (lowest sequence_ms)."""
    ok = [r[index] for r in results.values() if isinstance(r, list)]
    return min(ok, key=lambda r: r["sequence_ms"]) if ok else None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=500)
    ap.add_argument("--libs", default="torch,numpy")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--json", action="store_true", help="also print the full results as JSON")
    args = ap.parse_args(argv)
    res = measure_all(tuple(args.libs.split(",")),
                      [{"batch": args.batch, "hidden": args.hidden, "reps": args.reps}])
    for lib, r in res.items():
        if isinstance(r, dict):
            print(f"{lib:6s} {r['error']}")
            continue
        r = r[0]
        print(f"{lib:6s} floor {r['sequence_ms']:.3f} ms (min {r['sequence_ms_min']:.3f}, sum of GEMMs "
              f"{r['sum_per_gemm_ms']:.3f}) -> ceiling {r['ceiling_steps_per_s']:.0f} steps/s, "
              f"{r['gflops']:.1f} GFLOP/s")
    if args.json:
        print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

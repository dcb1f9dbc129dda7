"""Samples/s of data-parallel `fit` on 1 and N devices, per backend, each run in its own process.

    python -m benchmarks.data_parallel                        # this CPU: 1 and 2 devices
    python -m benchmarks.data_parallel --devices 1,2,4,8      # a multi-GPU host
    python -m benchmarks.data_parallel --backends jax --batch 1024 --hidden 2000

On a CPU, N "devices" are N XLA host devices (jax), N logical CPU devices (tf) or N gloo
processes launched by torchrun (torch): they share the same cores, so the figure measures
the engines' overhead, not a speed-up. On a GPU host every backend uses the GPUs (torch:
one process per GPU, nccl). Results: benchmarks/results/data-parallel-<name>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def worker(argv: list[str]) -> int:
    """One timed fit (run in its own process, under torchrun for torch with N > 1)."""
    p = argparse.ArgumentParser()
    p.add_argument("--backend")
    p.add_argument("--devices", type=int)
    p.add_argument("--rows", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--hidden", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--out")
    a = p.parse_args(argv)
    if a.backend == "tf" and a.devices > 1:
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * a.devices)
    import numpy as np

    import xvae

    x = (np.random.default_rng(0).random((a.rows, 784)) > 0.5).astype(np.float32)
    model = xvae.VAE(xvae.VAESpec(input_dim=784, hidden=(a.hidden,), latents=20), backend=a.backend, seed=0)
    marks: list[float] = []
    clock = xvae.callbacks.LambdaCallback(on_epoch_end=lambda *_: marks.append(time.perf_counter()))
    model.fit(x, epochs=a.epochs, batch_size=a.batch, progress=False, callbacks=[clock],
              devices=a.devices if a.devices > 1 else 1)
    if xvae.distribute.is_chief(model):
        seconds = marks[-1] - marks[0]  # the first epoch (compilation) is not timed
        Path(a.out).write_text(json.dumps({"samples_per_s": a.rows * (a.epochs - 1) / seconds,
                                           "seconds": seconds, "timed_epochs": a.epochs - 1}))
    return 0


def run_one(backend: str, devices: int, args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        common = ["--backend", backend, "--devices", str(devices), "--rows", str(args.rows), "--batch",
                  str(args.batch), "--hidden", str(args.hidden), "--epochs", str(args.epochs), "--out", str(out)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        if backend == "torch" and devices > 1:
            torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
            cmd = [torchrun, "--nnodes=1", f"--nproc-per-node={devices}", __file__, "--worker", *common]
        else:
            cmd = [sys.executable, __file__, "--worker", *common]
            if backend == "jax" and devices > 1 and args.cpu:
                env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
        subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        return json.loads(out.read_text())["samples_per_s"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return worker(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="jax,tf,torch")
    p.add_argument("--devices", default="1,2", help="comma-separated device counts")
    p.add_argument("--rows", type=int, default=8192)
    p.add_argument("--batch", type=int, default=256, help="the global batch")
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--epochs", type=int, default=3, help="the first is not timed")
    p.add_argument("--reps", type=int, default=2, help="interleaved repetitions; the best is kept")
    p.add_argument("--gpu", dest="cpu", action="store_false", help="a GPU host: use the real devices")
    p.add_argument("--name", default=None)
    a = p.parse_args(argv)
    counts = [int(c) for c in a.devices.split(",")]
    backends = a.backends.split(",")
    best: dict[str, dict[int, float]] = {b: {} for b in backends}
    for _ in range(a.reps):
        for backend in backends:
            for n in counts:
                rate = run_one(backend, n, a)
                best[backend][n] = max(best[backend].get(n, 0.0), rate)
                print(f"{backend} devices={n}: {rate:,.0f} samples/s", flush=True)
    name = a.name or ("cpu" if a.cpu else "gpu")
    record = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
              "settings": {k: getattr(a, k) for k in ("rows", "batch", "hidden", "epochs", "reps")},
              "samples_per_s": best}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"data-parallel-{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = ["| backend | " + " | ".join(f"{n} device{'s' * (n > 1)}" for n in counts) + " | ratio |",
             "|---|" + "---:|" * (len(counts) + 1)]
    for backend in backends:
        row = best[backend]
        lines.append(f"| {backend} | " + " | ".join(f"{row[n]:,.0f}" for n in counts)
                     + f" | {row[counts[-1]] / row[counts[0]]:.2f} |")
    (RESULTS / f"data-parallel-{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

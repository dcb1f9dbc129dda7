"""Shared pieces of the benchmarks: the problem, its data, the input work, timing helpers.

Framework-free. Every baseline and xvae's `fit` see the same work per epoch, drawn from one
`numpy.random.Generator` exactly as xvae's core does it (DESIGN §1, xvae/_training.py):
(1) a permutation of the n examples, (2) the permuted copy of the (already binarized) data,
(3) float32 N(0, 1) noise of shape (n, latents). Batches are views of those arrays.
"""

from __future__ import annotations

import gzip
import os
import platform
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

INPUT = 784
LATENTS = 20
LR = 1e-3
B1, B2, EPS = 0.9, 0.999, 1e-8


@dataclass(frozen=True)
class Problem:
    """One benchmark configuration (the VAE input-hidden-latents, batch, steps, fusion).

    n = batch * steps_per_epoch examples, so every step is a full batch (no padding, no mask
    needed) and, when steps_per_epoch % k == 0, fused execution runs only K-step calls.
    """

    batch: int = 128
    hidden: int = 500
    steps_per_epoch: int = 100
    k: int = 50
    device: str = "cpu"
    precision: str = "highest"
    data_dir: str | None = None
    seed: int = 0

    @property
    def n(self) -> int:
        return self.batch * self.steps_per_epoch

    def dict(self) -> dict[str, Any]:
        return asdict(self)


def make_data(p: Problem) -> NDArray[np.float32]:
    """Binarized inputs, float32 (n, 784), values 0/1.

    Synthetic by default: Bernoulli(0.13) pixels (MNIST's mean ink), seeded. With
    `data_dir`, the MNIST images there (t10k or train IDX files), statically binarized
    (x > 0.5), repeated or cut to n rows. The speed of a dense VAE does not depend on the
    values, only on the shapes; real data is offered so nobody has to take that on trust.
    """
    if p.data_dir is None:
        rng = np.random.default_rng(1234 + p.seed)
        return (rng.random((p.n, INPUT), dtype=np.float32) < 0.13).astype(np.float32)
    images = _read_mnist_images(Path(p.data_dir))
    x = (images.astype(np.float32) / 255.0 > 0.5).astype(np.float32)
    reps = -(-p.n // len(x))
    return np.ascontiguousarray(np.concatenate([x] * reps)[: p.n])


def _read_mnist_images(root: Path) -> NDArray[np.uint8]:
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        for candidate in (root / name, root / (name + ".gz")):
            if candidate.exists():
                raw = candidate.read_bytes()
                if candidate.suffix == ".gz":
                    raw = gzip.decompress(raw)
                count = int.from_bytes(raw[4:8], "big")
                return np.frombuffer(raw, np.uint8, offset=16).reshape(count, INPUT)
    raise FileNotFoundError(f"No MNIST image IDX file (train-images-idx3-ubyte[.gz] or "
                            f"t10k-images-idx3-ubyte[.gz]) in {root}")


def layer_shapes(hidden: int) -> dict[str, tuple[int, int]]:
    """The VAE's dense layers as (in, out): the canonical names of DESIGN §4."""
    return {
        "encoder.layers.0": (INPUT, hidden),
        "encoder.mean": (hidden, LATENTS),
        "encoder.logvar": (hidden, LATENTS),
        "decoder.layers.0": (LATENTS, hidden),
        "decoder.output": (hidden, INPUT),
    }


def init_weights(hidden: int, seed: int = 0) -> dict[str, NDArray[np.float32]]:
    """Glorot-uniform kernels (in, out) and zero biases, as xvae's default init."""
    rng = np.random.default_rng(seed)
    out: dict[str, NDArray[np.float32]] = {}
    for name, (fan_in, fan_out) in layer_shapes(hidden).items():
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        out[f"{name}.kernel"] = rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)
        out[f"{name}.bias"] = np.zeros(fan_out, np.float32)
    return out


class KeyedDraws:
    """The epochs 1, 2, ... of xvae's keyed draws for `seed` (`xvae.keyed`): a baseline
    given KeyedDraws(seed) sees the draws of `VAE(seed=seed).fit`."""

    def __init__(self, seed: int) -> None:
        self.seed, self.epoch = seed, 0


def draw_epoch(x: NDArray[np.float32], draws: KeyedDraws
               ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The per-epoch input work, vectorised, as xvae draws it: the keyed permutation, the
    gather, the keyed noise of each example (by its original id)."""
    from xvae import keyed

    draws.epoch += 1
    order = keyed.permutation(draws.seed, draws.epoch, len(x))
    xs = x[order]
    noise = keyed.normal(draws.seed, draws.epoch, keyed.NOISE, order, LATENTS)
    return xs, noise


def sync_clock() -> float:
    return time.perf_counter()


def maxrss_mb() -> float:
    """Peak resident set size of this process, in MiB.

    Linux's VmHWM (the high-water mark of this process' own address space). Not
    `getrusage().ru_maxrss`: that one survives fork and exec, so a spawned worker would
    report its parent's peak when the parent was bigger.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb() -> float:
    """Current resident set size of this process."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, OS and library versions: what the numbers depend on."""
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpu_count": os.cpu_count()}
    try:
        info["affinity_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        text = Path("/proc/cpuinfo").read_text()
        models = [ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")]
        flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
        info["cpu_model"] = models[0] if models else platform.processor()
        info["cpu_flags"] = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    except OSError:
        info["cpu_model"] = platform.processor()
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()
        info["memory_gb"] = round(int(mem[1]) / 2**20, 1)
    except (OSError, IndexError, ValueError):
        pass
    try:
        info["loadavg_at_start"] = os.getloadavg()
    except OSError:
        pass
    versions: dict[str, str] = {}
    import importlib.metadata as md

    for dist in ("numpy", "xvae", "jax", "jaxlib", "flax", "optax", "tensorflow", "tensorflow-cpu",
                 "keras", "torch"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    info["versions"] = versions
    return info


def summarize(values: list[float]) -> dict[str, float]:
    """Median and min-max of repeated measurements."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": float(np.median(arr)), "min": float(arr.min()), "max": float(arr.max()),
            "n": int(arr.size)}


@dataclass
class Timing:
    """What one timed repetition returns."""

    wall_s: float
    steps: int
    cpu_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_s

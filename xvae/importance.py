"""Importance-weighted log-likelihood (IWAE_k, Burda et al. 2016): the figure papers report.

    log p(x) >= IWAE_k(x) = log (1/k) sum_i p(x, z_i) / q(z_i | x),  z_i ~ q(z | x)

with the encoder as the proposal. The backend computes the log-weights of a chunk of
samples (`xvae.backend.FUNCTIONS["vae"]["log_weights"]`); the core draws the noise and
reduces the weights with a streaming, max-shifted log-sum-exp in float64 on the host.

The noise is keyed, not streamed (`xvae.keyed`): sample j's latent l of example i (its row
index) is element j * latents + l of ``keyed.normal(seed, 0, IMPORTANCE, [i], .)``, float32.
Chunking over k takes consecutive element ranges of that row, so neither `batch_size` nor
the chunk size changes a single draw: the figure depends on (weights, x, k, seed) only.

Memory: one backend call sees at most `batch_size` (example, sample) pairs, so peak memory
is independent of k (and of n).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xvae import _validate

__all__ = ["log_likelihood", "example_noise", "chunks", "IMPORTANCE_BATCH"]

#: (example, sample) pairs per backend call when batch_size is not given.
IMPORTANCE_BATCH = 1024


def example_noise(seed: int, examples: Any, first: int, count: int, latents: int) -> NDArray[np.float32]:
    """Samples first .. first+count-1 of `examples` (row indices): float32 (len(examples),
    count, latents), keyed by (seed, IMPORTANCE, example, sample, latent)."""
    from xvae import keyed

    draws = keyed.normal(seed, 0, keyed.IMPORTANCE, examples, count * latents, first=first * latents)
    return draws.reshape(len(draws), count, latents)


def chunks(k: int, batch_size: int) -> tuple[int, int]:
    """(samples per chunk, examples per call) for k samples and `batch_size` pairs per call.

    The chunk is k split into equal parts of at most batch_size (k = 5,000 with 1,024 pairs:
    five chunks of 1,000, not four of 1,024 and a padded one); the examples per call fill the
    remaining room.
    """
    parts = math.ceil(k / batch_size)
    chunk = math.ceil(k / parts)
    return chunk, max(1, batch_size // chunk)


def check_k(k: Any) -> int:
    """k as an int >= 1; ConfigError naming k otherwise (a float, a bool, 0, a string)."""
    return _validate.positive_int(k, "k")


def log_likelihood(program: Any, x: NDArray[np.float32], *, k: int, seed: int, latents: int,
                   batch_size: int, y: NDArray[np.float32] | None = None) -> NDArray[np.float64]:
    """IWAE_k per example, float64 (n,), in nats (see the module docstring).

    Args:
        program: a VAE `Program` (its "log_weights" function).
        x: validated flat float32 rows (n, input_dim).
        k: importance samples per example, >= 1.
        seed: keys the noise (with each example's row index).
        latents: the spec's latent width.
        batch_size: (example, sample) pairs per backend call.
        y: a conditional VAE's one-hot rows (n, conditions), or None.
    """
    n = len(x)
    chunk, rows = chunks(k, batch_size)
    rows = min(rows, n)
    out = np.empty(n, np.float64)
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        inputs = {"x": x[lo:hi]} if y is None else {"x": x[lo:hi], "y": y[lo:hi]}
        if hi - lo < rows:  # one compiled shape: pad the last call with zero rows
            inputs = {name: np.concatenate([a, np.zeros((rows - (hi - lo), a.shape[1]), np.float32)])
                      for name, a in inputs.items()}
        ids = np.arange(lo, hi, dtype=np.int64)
        peak = np.full(hi - lo, -np.inf)
        total = np.zeros(hi - lo)
        for start in range(0, k, chunk):
            take = min(chunk, k - start)
            noise = np.zeros((rows, chunk, latents), np.float32)
            noise[: hi - lo, :take] = example_noise(seed, ids, start, take, latents)
            lw = program.run("log_weights", noise=noise, **inputs)["log_weights"][: hi - lo, :take].astype(np.float64)
            new_peak = np.maximum(peak, lw.max(axis=1))
            shift = np.where(np.isfinite(new_peak), new_peak, 0.0)
            total = total * np.exp(np.where(np.isfinite(peak), peak - shift, -np.inf)) + np.exp(lw - shift[:, None]).sum(axis=1)
            peak = new_peak
        out[lo:hi] = np.where(np.isfinite(peak), peak, 0.0) + np.log(total) - math.log(k)
    return out

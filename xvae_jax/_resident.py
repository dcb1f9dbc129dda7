"""Device-resident batches for JAX: gather the step's rows and draw their randomness in the jit.

`xvae._device_data` describes the path; `xvae.backend.DeviceDraws` what is drawn. Inside a
compiled step the rows ``ids`` (original example ids) are gathered from the resident x
(and y), and dynamic binarization, noise and dropout masks come from `xvae_jax._random`,
the in-graph twin of `xvae.keyed`: the numbers the host loop would have shipped.
"""

from __future__ import annotations

import math
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from xvae import keyed
from xvae.backend import DeviceDraws
from xvae_jax import _random

__all__ = ["gather", "binarized"]


def binarized(x: jax.Array, rows: jax.Array, seed: jax.Array, epoch: jax.Array, draws: DeviceDraws) -> jax.Array:
    """x's rows, dynamically binarized as the host does: float32(uniform < x)."""
    if not draws.binarize:
        return x
    u = _random.uniform(seed, epoch, keyed.BINARIZE, rows, x.shape[-1])
    return (u < x).astype(jnp.float32)


def gather(data: Mapping[str, jax.Array], call: Mapping[str, jax.Array], seed: jax.Array, epoch: jax.Array,
           draws: DeviceDraws) -> dict[str, jax.Array]:
    """One step's batch (the keys of `xvae.backend.Batch`) from resident data and the call's
    per-step inputs: "ids" int32 (B,), "mask" (B,), "lr" and "beta" scalars."""
    rows = call["ids"]
    batch = {"x": binarized(jnp.take(data["x"], rows, axis=0, mode="clip"), rows, seed, epoch, draws),
             "mask": call["mask"], "lr": call["lr"]}
    if "beta" in call:
        batch["beta"] = call["beta"]
    if "y" in data:
        batch["y"] = jnp.take(data["y"], rows, axis=0, mode="clip")
    if draws.noise is not None:
        eps = _random.normal(seed, epoch, keyed.NOISE, rows, math.prod(draws.noise))
        batch["noise"] = eps.reshape((rows.shape[0], *draws.noise))
    if draws.dropout:
        u = _random.uniform(seed, epoch, keyed.DROPOUT, rows, draws.units)
        masks = jnp.zeros_like(u)
        for lo, hi, rate in draws.dropout:
            keep = u[:, lo:hi] >= np.float32(rate)
            masks = masks.at[:, lo:hi].set(jnp.where(keep, np.float32(1.0 / (1.0 - rate)), np.float32(0.0)))
        batch["dropout"] = masks
    return batch

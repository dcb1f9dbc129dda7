"""Device-resident batches for TensorFlow: gather the step's rows and draw their randomness in the graph.

`xvae._device_data` describes the path; `xvae.backend.DeviceDraws` what is drawn. Inside a
traced step the rows ``ids`` (original example ids) of the resident x (and y) are gathered
with `tf.gather`, and dynamic binarization, noise and dropout masks come from
`xvae_tf._random`, the in-graph twin of `xvae.keyed`: the numbers the host loop would have
shipped.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import tensorflow as tf

from xvae import keyed
from xvae.backend import DeviceDraws
from xvae_tf import _random

__all__ = ["gather", "binarized"]



def binarized(x: tf.Tensor, rows: tf.Tensor, seed: tf.Tensor, epoch: tf.Tensor, draws: DeviceDraws) -> tf.Tensor:
    """x's rows, dynamically binarized as the host does: float32(uniform < x)."""
    if not draws.binarize:
        return x
    u = _random.uniform(seed, epoch, keyed.BINARIZE, rows, int(x.shape[-1]))
    return tf.cast(u < x, tf.float32)


def gather(data: Mapping[str, tf.Tensor], call: Mapping[str, tf.Tensor], seed: tf.Tensor, epoch: tf.Tensor,
           draws: DeviceDraws) -> dict[str, tf.Tensor]:
    """One step's batch (the keys of `xvae.backend.Batch`) from resident data and the call's
    per-step inputs: "ids" int32 (B,), "mask" (B,), "lr" and "beta" scalars."""
    rows = call["ids"]
    batch = {"x": binarized(tf.gather(data["x"], rows), rows, seed, epoch, draws), "mask": call["mask"],
             "lr": call["lr"]}
    if "beta" in call:
        batch["beta"] = call["beta"]
    if "y" in data:
        batch["y"] = tf.gather(data["y"], rows)
    if draws.noise is not None:
        eps = _random.normal(seed, epoch, keyed.NOISE, rows, math.prod(draws.noise))
        batch["noise"] = tf.reshape(eps, (-1, *draws.noise))
    if draws.dropout:
        u = _random.uniform(seed, epoch, keyed.DROPOUT, rows, draws.units)
        b = int(rows.shape[0])
        pieces, at = [], 0
        for lo, hi, rate in draws.dropout:
            if lo > at:
                pieces.append(tf.zeros((b, lo - at), tf.float32))
            keep = u[:, lo:hi] >= np.float32(rate)
            pieces.append(tf.where(keep, np.float32(1.0 / (1.0 - rate)), np.float32(0.0)))
            at = hi
        batch["dropout"] = tf.concat(pieces, axis=1)
    return batch

"""Device-resident batches for PyTorch: gather the step's rows and draw their randomness on the device.

`xvae._device_data` describes the path; `xvae.backend.DeviceDraws` what is drawn. Each
step gathers the rows ``ids`` (original example ids) of the resident x (and y) with
`index_select`, and draws dynamic binarization, noise and dropout masks with
`xvae_torch._random`, the on-device twin of `xvae.keyed`: the numbers the host loop would
have shipped, without a host round trip.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import torch

from xvae import keyed
from xvae.backend import DeviceDraws
from xvae_torch import _random

__all__ = ["gather", "binarized"]



def _uniform(seed: int, epoch: int, purpose: int, rows: torch.Tensor, n: int) -> torch.Tensor:
    """`xvae.keyed.uniform` of the rows: in NumPy on the CPU (its uint32 Threefry is ~100x
    faster there than int64 tensor ops; a CPU device's memory is the host's), else on the device."""
    if rows.device.type == "cpu":
        return torch.from_numpy(keyed.uniform(seed, epoch, purpose, rows.numpy(), n))
    return _random.uniform(seed, epoch, purpose, rows, n)


def _normal(seed: int, epoch: int, purpose: int, rows: torch.Tensor, n: int) -> torch.Tensor:
    """`xvae.keyed.normal` of the rows (on the CPU in NumPy, as `_uniform`)."""
    if rows.device.type == "cpu":
        return torch.from_numpy(keyed.normal(seed, epoch, purpose, rows.numpy(), n))
    return _random.normal(seed, epoch, purpose, rows, n)


def binarized(x: torch.Tensor, rows: torch.Tensor, seed: int, epoch: int, draws: DeviceDraws) -> torch.Tensor:
    """x's rows, dynamically binarized as the host does: float32(uniform < x)."""
    if not draws.binarize:
        return x
    if x.device.type == "cpu":  # the host loop's NumPy function: uniforms only where 0 < x < 1
        return torch.from_numpy(keyed.binarize(x.numpy(), seed, epoch, rows.numpy()))
    u = _uniform(seed, epoch, keyed.BINARIZE, rows, x.shape[-1])
    return (u < x).to(torch.float32)


def gather(data: Mapping[str, torch.Tensor], rows: torch.Tensor, seed: int, epoch: int,
           draws: DeviceDraws) -> dict[str, torch.Tensor]:
    """The batch keys "x", "y", "noise", "dropout" of the rows `rows` (int64 (B,))."""
    batch = {"x": binarized(data["x"].index_select(0, rows), rows, seed, epoch, draws)}
    if "y" in data:
        batch["y"] = data["y"].index_select(0, rows)
    if draws.noise is not None:
        eps = _normal(seed, epoch, keyed.NOISE, rows, math.prod(draws.noise))
        batch["noise"] = eps.reshape(rows.shape[0], *draws.noise)
    if draws.dropout:
        u = _uniform(seed, epoch, keyed.DROPOUT, rows, draws.units)
        masks = torch.zeros_like(u)
        for lo, hi, rate in draws.dropout:
            keep = u[:, lo:hi] >= float(np.float32(rate))
            masks[:, lo:hi] = torch.where(keep, torch.tensor(np.float32(1.0 / (1.0 - rate)), device=u.device),
                                          torch.tensor(np.float32(0.0), device=u.device))
        batch["dropout"] = masks
    return batch

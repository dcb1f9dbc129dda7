"""The keyed generator of `xvae.keyed` in PyTorch: the same bits, in eager or compiled code.

torch's uint32 tensors lack most arithmetic kernels, so Threefry-2x32 (20 rounds) runs on
int64 tensors holding values in [0, 2**32), masked to 32 bits after every add and rotate
(products never exceed 2**62, so nothing overflows int64). The key and counter packing are
`xvae.keyed`'s (its docstring); the conversions to floats are float32.

`seed` is a Python int (any size, folded on the host like the reference), an integer scalar
tensor (a seed < 2**32: key (seed, 0)) or a (2,) tensor `keyed.seed_key(seed)`; `epoch` an
int or integer scalar tensor; `examples` an integer tensor (B,) (its device is used); `n` a
Python int. Results are uint32 values in int64 tensors for `bits` (torch has no full uint32).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from xvae import keyed

__all__ = ["threefry_2x32", "stream_key", "bits", "uniform", "normal", "permutation", "binarize"]

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_MASK = 0xFFFFFFFF
_TWO_PI_2_24 = float(np.float32(2.0 * math.pi * 2.0**-24))  # == float32(2 pi) * 2**-24 exactly


def threefry_2x32(key: tuple[Any, Any], x0: torch.Tensor, x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Threefry-2x32, 20 rounds, of counters (x0, x1) (int64 tensors in [0, 2**32)) under
    key (two ints or int64 scalar tensors in [0, 2**32)); int64 results in [0, 2**32)."""
    k0, k1 = key
    ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA)
    x0 = (x0 + ks[0]) & _MASK
    x1 = (x1 + ks[1]) & _MASK
    for group in range(5):
        for r in _ROTATIONS[group % 2]:
            x0 = (x0 + x1) & _MASK
            x1 = ((x1 << r) & _MASK) | (x1 >> (32 - r))
            x1 = x1 ^ x0
        x0 = (x0 + ks[(group + 1) % 3]) & _MASK
        x1 = (x1 + ks[(group + 2) % 3] + (group + 1)) & _MASK
    return x0, x1


def _key_words(seed: Any, device: torch.device) -> tuple[Any, Any]:
    if isinstance(seed, (int, np.integer)):
        return keyed.seed_key(int(seed))
    s = torch.as_tensor(seed, device=device).to(torch.int64) & _MASK
    if s.dim() == 1:
        return s[0], s[1]
    return s, torch.zeros((), dtype=torch.int64, device=device)


def stream_key(seed: Any, epoch: Any, purpose: int, device: torch.device | None = None) -> tuple[Any, Any]:
    """threefry(seed_key(seed), (epoch, purpose)): two int64 scalar tensors in [0, 2**32)."""
    e = torch.as_tensor(epoch, device=device).to(torch.int64).reshape(1) & _MASK
    a, b = threefry_2x32(_key_words(seed, e.device), e, torch.full_like(e, int(purpose)))
    return a[0], b[0]


def _words(seed: Any, epoch: Any, purpose: int, examples: Any, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.as_tensor(examples).to(torch.int64)
    nb = (int(n) + 1) // 2
    x0 = ids[:, None].expand(ids.shape[0], nb)
    x1 = torch.arange(nb, dtype=torch.int64, device=ids.device)[None, :].expand(ids.shape[0], nb)
    return threefry_2x32(stream_key(seed, epoch, purpose, ids.device), x0, x1)


def _interleave(a: torch.Tensor, b: torch.Tensor, n: int) -> torch.Tensor:
    return torch.stack([a, b], dim=-1).reshape(a.shape[0], -1)[:, :n]


def bits(seed: Any, epoch: Any, purpose: int, examples: Any, n: int) -> torch.Tensor:
    """int64 (B, n) holding the uint32 values of `xvae.keyed.bits`."""
    return _interleave(*_words(seed, epoch, purpose, examples, n), n)


def uniform(seed: Any, epoch: Any, purpose: int, examples: Any, n: int) -> torch.Tensor:
    """float32 (B, n) in [0, 1): (bits >> 8) * 2**-24, equal to `xvae.keyed.uniform`."""
    return (bits(seed, epoch, purpose, examples, n) >> 8).to(torch.float32) * 2.0**-24


def normal(seed: Any, epoch: Any, purpose: int, examples: Any, n: int) -> torch.Tensor:
    """float32 (B, n) Box-Muller normals in float32; `xvae.keyed.normal` to float32 rounding."""
    w0, w1 = _words(seed, epoch, purpose, examples, n)
    u1 = ((w0 >> 8) + 1).to(torch.float32) * 2.0**-24
    theta = (w1 >> 8).to(torch.float32) * _TWO_PI_2_24
    r = torch.sqrt(-2.0 * torch.log(u1))
    return _interleave(r * torch.cos(theta), r * torch.sin(theta), n)


def permutation(seed: Any, epoch: Any, n: int, device: torch.device | None = None) -> torch.Tensor:
    """int64 (n,): the epoch's order, equal to `xvae.keyed.permutation`."""
    w = bits(seed, epoch, keyed.ORDER, torch.arange(n, dtype=torch.int64, device=device), 1)[:, 0]
    return torch.argsort(w, stable=True)


def binarize(x: torch.Tensor, seed: Any, epoch: Any, examples: Any) -> torch.Tensor:
    """float32 (B, d): uniform(seed, epoch, BINARIZE, examples, d) < x, equal to `xvae.keyed.binarize`."""
    return (uniform(seed, epoch, keyed.BINARIZE, examples, x.shape[-1]) < x).to(torch.float32)

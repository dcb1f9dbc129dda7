"""The keyed generator of `xvae.keyed` in JAX: the same bits, inside jit.

Threefry-2x32 is jax's own primitive (`jax.extend.random.threefry_2x32`, the hash under
jax.random), so a compiled step computes it with XLA's kernel on CPU, GPU or TPU. The key
and counter packing are `xvae.keyed`'s (its docstring); only this module's conversions
to floats are framework code, written in float32.

`seed` is a Python int (any size, folded on the host like the reference), a uint32/int32
scalar (a seed < 2**32: key (seed, 0)) or a uint32 (2,) array `keyed.seed_key(seed)` (any
seed, traced). `epoch` is an int or an integer scalar; `examples` an integer array (B,);
`n` a Python int.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32 as _threefry

from xvae import keyed

__all__ = ["threefry_2x32", "stream_key", "bits", "uniform", "normal", "permutation", "binarize"]

_TWO_PI_2_24 = np.float32(2.0 * math.pi * 2.0**-24)  # == float32(2 pi) * 2**-24 exactly


def _u32(value: Any) -> jax.Array:
    """uint32 of an int, a NumPy array or a traced integer array (host values converted on the
    host: JAX without x64 would refuse Python ints >= 2**31)."""
    if isinstance(value, (int, np.integer, np.ndarray, list, tuple)):
        return jnp.asarray(np.asarray(value).astype(np.uint64).astype(np.uint32))
    return jnp.asarray(value).astype(jnp.uint32)


def _key_words(seed: Any) -> tuple[jax.Array, jax.Array]:
    if isinstance(seed, (int, np.integer)):
        lo, hi = keyed.seed_key(int(seed))
        return _u32(lo), _u32(hi)
    s = _u32(seed)
    if s.ndim == 1:
        return s[0], s[1]
    return s, _u32(0)


def threefry_2x32(key: tuple[Any, Any], x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32, 20 rounds, of uint32 counters (x0, x1) under key (two uint32 scalars)."""
    return _block((_u32(key[0]), _u32(key[1])), _u32(x0), _u32(x1))


def _block(key: tuple[jax.Array, jax.Array], x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Threefry of counters (x0, x1) (uint32, one shape) under key."""
    shape = x0.shape
    out = _threefry(key, jnp.concatenate([x0.reshape(-1), x1.reshape(-1)]))
    half = out.shape[0] // 2
    return out[:half].reshape(shape), out[half:].reshape(shape)


def stream_key(seed: Any, epoch: Any, purpose: int) -> tuple[jax.Array, jax.Array]:
    """threefry(seed_key(seed), (epoch, purpose)) as two uint32 scalars."""
    e = _u32(epoch).reshape(1)
    a, b = _block(_key_words(seed), e, jnp.full((1,), purpose, jnp.uint32))
    return a[0], b[0]


def _words(seed: Any, epoch: Any, purpose: int, examples: Any, n: int) -> tuple[jax.Array, jax.Array]:
    """The (B, ceil(n/2)) blocks: word 0 and word 1."""
    ids = _u32(examples)
    nb = (int(n) + 1) // 2
    x0 = jnp.broadcast_to(ids[:, None], (ids.shape[0], nb))
    x1 = jnp.broadcast_to(jnp.arange(nb, dtype=jnp.uint32)[None, :], (ids.shape[0], nb))
    return _block(stream_key(seed, epoch, purpose), x0, x1)


def bits(seed: Any, epoch: Any, purpose: int, examples: Any, n: int) -> jax.Array:
    """uint32 (B, n), equal to `xvae.keyed.bits`."""
    w0, w1 = _words(seed, epoch, purpose, examples, n)
    return jnp.stack([w0, w1], axis=-1).reshape(w0.shape[0], -1)[:, :n]


def uniform(seed: Any, epoch: Any, purpose: int, examples: Any, n: int) -> jax.Array:
    """float32 (B, n) in [0, 1): (bits >> 8) * 2**-24, equal to `xvae.keyed.uniform`."""
    return (bits(seed, epoch, purpose, examples, n) >> 8).astype(jnp.float32) * jnp.float32(2.0**-24)


def normal(seed: Any, epoch: Any, purpose: int, examples: Any, n: int) -> jax.Array:
    """float32 (B, n) Box-Muller normals in float32; `xvae.keyed.normal` to float32 rounding."""
    w0, w1 = _words(seed, epoch, purpose, examples, n)
    u1 = ((w0 >> 8) + 1).astype(jnp.float32) * jnp.float32(2.0**-24)
    theta = (w1 >> 8).astype(jnp.float32) * _TWO_PI_2_24
    r = jnp.sqrt(jnp.float32(-2.0) * jnp.log(u1))
    return jnp.stack([r * jnp.cos(theta), r * jnp.sin(theta)], axis=-1).reshape(w0.shape[0], -1)[:, :n]


def permutation(seed: Any, epoch: Any, n: int) -> jax.Array:
    """int32 (n,) (int64 with x64 enabled): the epoch's order, equal to `xvae.keyed.permutation`."""
    w = bits(seed, epoch, keyed.ORDER, jnp.arange(n, dtype=jnp.uint32), 1)[:, 0]
    return jnp.argsort(w, stable=True)


def binarize(x: Any, seed: Any, epoch: Any, examples: Any) -> jax.Array:
    """float32 (B, d): uniform(seed, epoch, BINARIZE, examples, d) < x, equal to `xvae.keyed.binarize`."""
    return (uniform(seed, epoch, keyed.BINARIZE, examples, x.shape[-1]) < x).astype(jnp.float32)

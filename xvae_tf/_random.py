"""The keyed generator of `xvae.keyed` in TensorFlow: the same bits, inside tf.function.

Threefry-2x32 (20 rounds) written with uint32 tensor ops: AddV2, BitwiseXor/Or and the
shifts have uint32 CPU kernels in TF 2.21 (checked eagerly), and XLA (jit_compile=True)
compiles them on every device. The key and counter packing are `xvae.keyed`'s (its
docstring); the conversions to floats are float32.

`seed` is a Python int (any size, folded on the host like the reference), an integer
scalar tensor (a seed < 2**32: key (seed, 0)) or a (2,) tensor `keyed.seed_key(seed)`;
`epoch` an int or integer scalar tensor; `examples` an integer tensor (B,); `n` a Python int.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before tensorflow is imported

from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from xvae import keyed  # noqa: E402

__all__ = ["threefry_2x32", "stream_key", "bits", "uniform", "normal", "permutation", "binarize"]

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_TWO_PI_2_24 = np.float32(2.0 * math.pi * 2.0**-24)  # == float32(2 pi) * 2**-24 exactly


def _u32(value: Any) -> tf.Tensor:
    t = tf.convert_to_tensor(value)
    if t.dtype == tf.uint32:
        return t
    if t.dtype == tf.int64:  # keep the low 32 bits (uint32 is not a cast target of every path)
        t = tf.bitwise.bitwise_and(t, tf.constant(0xFFFFFFFF, tf.int64))
    return tf.cast(t, tf.uint32)


def threefry_2x32(key: tuple[Any, Any], x0: tf.Tensor, x1: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Threefry-2x32, 20 rounds, of uint32 counters (x0, x1) under key (two uint32 scalars)."""
    k0, k1 = _u32(key[0]), _u32(key[1])
    ks = (k0, k1, tf.bitwise.bitwise_xor(tf.bitwise.bitwise_xor(k0, k1), tf.constant(0x1BD11BDA, tf.uint32)))
    x0 = x0 + ks[0]
    x1 = x1 + ks[1]
    for group in range(5):
        for r in _ROTATIONS[group % 2]:
            x0 = x0 + x1
            x1 = tf.bitwise.bitwise_or(tf.bitwise.left_shift(x1, tf.constant(r, tf.uint32)),
                                       tf.bitwise.right_shift(x1, tf.constant(32 - r, tf.uint32)))
            x1 = tf.bitwise.bitwise_xor(x1, x0)
        x0 = x0 + ks[(group + 1) % 3]
        x1 = x1 + ks[(group + 2) % 3] + tf.constant(group + 1, tf.uint32)
    return x0, x1


def _key_words(seed: Any) -> tuple[tf.Tensor, tf.Tensor]:
    if isinstance(seed, (int, np.integer)):
        lo, hi = keyed.seed_key(int(seed))
        return tf.constant(lo, tf.uint32), tf.constant(hi, tf.uint32)
    s = tf.convert_to_tensor(seed)
    if s.shape.rank == 1:
        return _u32(s[0]), _u32(s[1])
    return _u32(s), tf.constant(0, tf.uint32)


def stream_key(seed: Any, epoch: Any, purpose: int) -> tuple[tf.Tensor, tf.Tensor]:
    """threefry(seed_key(seed), (epoch, purpose)) as two uint32 scalars."""
    return threefry_2x32(_key_words(seed), _u32(epoch), tf.constant(purpose, tf.uint32))


def _words(seed: Any, epoch: Any, purpose: int, examples: Any, n: int) -> tuple[tf.Tensor, tf.Tensor]:
    ids = _u32(examples)
    nb = (int(n) + 1) // 2
    shape = tf.stack([tf.shape(ids)[0], nb])
    x0 = tf.broadcast_to(ids[:, None], shape)
    x1 = tf.broadcast_to(tf.range(nb, dtype=tf.int32)[None, :], shape)
    return threefry_2x32(stream_key(seed, epoch, purpose), x0, _u32(x1))


def _interleave(a: tf.Tensor, b: tf.Tensor, n: int) -> tf.Tensor:
    return tf.reshape(tf.stack([a, b], axis=-1), tf.stack([tf.shape(a)[0], -1]))[:, :n]


def bits(seed: Any, epoch: Any, purpose: int, examples: Any, n: int) -> tf.Tensor:
    """uint32 (B, n), equal to `xvae.keyed.bits`."""
    return _interleave(*_words(seed, epoch, purpose, examples, n), n)


def uniform(seed: Any, epoch: Any, purpose: int, examples: Any, n: int) -> tf.Tensor:
    """float32 (B, n) in [0, 1): (bits >> 8) * 2**-24, equal to `xvae.keyed.uniform`."""
    b = tf.bitwise.right_shift(bits(seed, epoch, purpose, examples, n), tf.constant(8, tf.uint32))
    return tf.cast(b, tf.float32) * tf.constant(2.0**-24, tf.float32)


def normal(seed: Any, epoch: Any, purpose: int, examples: Any, n: int) -> tf.Tensor:
    """float32 (B, n) Box-Muller normals in float32; `xvae.keyed.normal` to float32 rounding."""
    w0, w1 = _words(seed, epoch, purpose, examples, n)
    eight = tf.constant(8, tf.uint32)
    u1 = tf.cast(tf.bitwise.right_shift(w0, eight) + tf.constant(1, tf.uint32), tf.float32) * 2.0**-24
    theta = tf.cast(tf.bitwise.right_shift(w1, eight), tf.float32) * tf.constant(_TWO_PI_2_24)
    r = tf.sqrt(tf.constant(-2.0, tf.float32) * tf.math.log(u1))
    return _interleave(r * tf.cos(theta), r * tf.sin(theta), n)


def permutation(seed: Any, epoch: Any, n: int) -> tf.Tensor:
    """int64 (n,): the epoch's order, equal to `xvae.keyed.permutation`."""
    w = bits(seed, epoch, keyed.ORDER, tf.range(n, dtype=tf.int64), 1)[:, 0]
    # stable argsort of int64 (uint32 values are exact there; sort kernels cover int64 everywhere)
    return tf.cast(tf.argsort(tf.cast(w, tf.int64), stable=True), tf.int64)


def binarize(x: Any, seed: Any, epoch: Any, examples: Any) -> tf.Tensor:
    """float32 (B, d): uniform(seed, epoch, BINARIZE, examples, d) < x, equal to `xvae.keyed.binarize`."""
    x = tf.convert_to_tensor(x, tf.float32)
    return tf.cast(uniform(seed, epoch, keyed.BINARIZE, examples, int(x.shape[-1])) < x, tf.float32)

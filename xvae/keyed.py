"""Keyed randomness: every random number is a pure function of where it is used.

A training run needs random numbers for the epoch's order, dynamic binarization,
reparameterisation noise, dropout masks and the importance samples of `log_likelihood`.
They are not drawn from a stream in order but computed by a counter-based generator,
**Threefry-2x32 with 20 rounds** (Salmon et al. 2011, "Parallel random numbers: as easy as
1, 2, 3"; the generator jax.random uses), from

    (seed, epoch, purpose, example id, element index)

so any subset can be computed anywhere, in any order, on any device, in any framework, and
comes out the same: a batch size, device count or number of steps per compiled call cannot
change a draw. This module is the NumPy reference; ``xvae_jax._random``, ``xvae_tf._random``
and ``xvae_torch._random`` compute the same functions with 32-bit integer operations inside
compiled code (tests/conformance/test_keyed_random.py compares 10^6 draws of each).

Packing (every word is 32 bits; ``threefry(key, counter)`` maps two words to two words):

* ``seed_key = (seed mod 2**32, (seed >> 32) mod 2**32)``: seeds 0 <= seed < 2**64 are
  distinct keys; a larger seed is first folded to 64 bits by XOR of its 64-bit limbs.
* ``stream_key = threefry(seed_key, (epoch, purpose))``: one key per (seed, epoch, purpose).
  For a fixed key Threefry is a bijection of its 64-bit counter, so two different (epoch,
  purpose) pairs of one seed never share a stream key. Limits: 0 <= epoch < 2**32,
  0 <= purpose < 2**32.
* element ``j`` of example ``i``: ``threefry(stream_key, (i, j // 2))``, word ``j % 2``. So
  one Threefry block yields two consecutive elements, and ``bits(..., n)[:, :m]`` equals
  ``bits(..., m)`` (a prefix does not depend on n). Limits: 0 <= i < 2**32 examples,
  0 <= j < 2**33 elements per example.

Conversions (float32, the same bits in every framework):

* uniform in [0, 1): ``(bits >> 8) * 2**-24`` (24 bits, exact in float32);
* normal: Box-Muller on the element pair of one block, ``u1 = ((w0 >> 8) + 1) * 2**-24`` in
  (0, 1] and ``u2 = (w1 >> 8) * 2**-24``: ``r = sqrt(-2 log u1)``, element 2b is ``r cos(2 pi
  u2)``, element 2b+1 is ``r sin(2 pi u2)``. The reference computes it in float64 and rounds
  once to float32; the backends compute in float32 and agree to float32 rounding (|z| <= 5.8).
* permutation(n): the stable argsort of word 0 of ``threefry(stream_key(seed, epoch,
  ORDER), (i, 0))`` over i = 0..n-1 (equal keys keep index order).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xvae._errors import ConfigError

__all__ = ["ORDER", "BINARIZE", "NOISE", "DROPOUT", "IMPORTANCE", "SAMPLE", "PURPOSES", "MAX_EXAMPLES",
           "MAX_EPOCH", "threefry_2x32", "seed_key", "stream_key", "bits", "uniform", "normal",
           "permutation", "binarize", "random_seed"]

#: Purposes: part of the stream key, so two uses of one (seed, epoch) never share numbers.
ORDER = 0  # the epoch's permutation
BINARIZE = 1  # dynamic binarization: uniform(..., d) < x
NOISE = 2  # reparameterisation noise: element j*latents + l is sample j's latent l (IWAE: k samples)
DROPOUT = 3  # dropout masks: uniform(..., units) >= rate keeps a unit
IMPORTANCE = 4  # log_likelihood's k samples per example (epoch 0)
SAMPLE = 5  # Model.sample: the latent draws (elements 0..latents-1) and the output Bernoulli draws
PURPOSES = {"order": ORDER, "binarize": BINARIZE, "noise": NOISE, "dropout": DROPOUT,
            "importance": IMPORTANCE, "sample": SAMPLE}

#: Example ids must be below this (they are one 32-bit counter word).
MAX_EXAMPLES = 2**32
#: Epochs must be below this (one 32-bit counter word of the stream key).
MAX_EPOCH = 2**32

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA
_MASK = 0xFFFFFFFF
#: Threefry blocks computed at once: 3 uint32 arrays of 32,768 words stay in a core's L2 cache
#: (measured on the 2-core EPYC: 2-3x faster than whole-array passes over 23.5M blocks).
_CHUNK = 32768


def threefry_2x32(key: tuple[int, int], x0: NDArray[np.uint32], x1: NDArray[np.uint32]
                  ) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
    """Threefry-2x32, 20 rounds, of counters (x0, x1) under `key`; uint32 arrays, same shapes.

    The inputs are not modified. Equal to ``jax.extend.random.threefry_2x32`` bit for bit.
    """
    a = np.array(x0, dtype=np.uint32, copy=True)
    b = np.array(x1, dtype=np.uint32, copy=True)
    _threefry_inplace(key, a, b, np.empty_like(b))
    return a, b


def _threefry_inplace(key: tuple[int, int], x0: NDArray[np.uint32], x1: NDArray[np.uint32],
                      tmp: NDArray[np.uint32]) -> None:
    """Threefry-2x32 of (x0, x1) written back into them; `tmp` is scratch of the same shape."""
    k0, k1 = int(key[0]) & _MASK, int(key[1]) & _MASK
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    u32 = np.uint32
    x0 += u32(ks[0])
    x1 += u32(ks[1])
    for group in range(5):
        for r in _ROTATIONS[group % 2]:
            x0 += x1
            np.right_shift(x1, u32(32 - r), out=tmp)
            x1 <<= u32(r)
            x1 |= tmp
            x1 ^= x0
        x0 += u32(ks[(group + 1) % 3])
        x1 += u32((ks[(group + 2) % 3] + group + 1) & _MASK)


def _scalar_block(key: tuple[int, int], c0: int, c1: int) -> tuple[int, int]:
    a, b = threefry_2x32(key, np.array([c0 & _MASK], np.uint32), np.array([c1 & _MASK], np.uint32))
    return int(a[0]), int(b[0])


def seed_key(seed: int) -> tuple[int, int]:
    """The 64-bit Threefry key of `seed` (an int >= 0): (low word, high word).

    Seeds >= 2**64 are folded by XOR of their 64-bit limbs first (documented collision).
    """
    s = int(seed)
    if s < 0:
        raise ConfigError(f"seed must be an integer >= 0. Received: seed={seed!r:.100}")
    folded = 0
    while True:
        folded ^= s & 0xFFFFFFFFFFFFFFFF
        s >>= 64
        if not s:
            break
    return folded & _MASK, folded >> 32


def stream_key(seed: int, epoch: int, purpose: int) -> tuple[int, int]:
    """The key of one (seed, epoch, purpose) stream: threefry(seed_key(seed), (epoch, purpose))."""
    if not 0 <= int(epoch) < MAX_EPOCH:
        raise ConfigError(f"epoch must be an integer in [0, 2**32) (one 32-bit counter word). Received: epoch={epoch!r:.100}")
    if not 0 <= int(purpose) < 2**32:
        raise ConfigError(f"purpose must be an integer in [0, 2**32). Received: purpose={purpose!r:.100}")
    return _scalar_block(seed_key(seed), int(epoch), int(purpose))


def _examples(examples: Any) -> NDArray[np.uint32]:
    ids = np.asarray(examples)
    if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
        raise ConfigError(f"examples must be a 1-D integer array of example ids. Received: shape {ids.shape}, dtype {ids.dtype}")
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= MAX_EXAMPLES):
        raise ConfigError(f"example ids must be in [0, 2**32) (one 32-bit counter word). Received ids from {int(ids.min())} to {int(ids.max())}; split a larger data set.")
    return ids.astype(np.uint32)


def _for_blocks(seed: int, epoch: int, purpose: int, examples: Any, n: int, emit: Any,
                interleave: bool = False, first: int = 0) -> None:
    """Compute the blocks holding elements [first, first + n) of `examples` in cache-sized
    row chunks: blocks first // 2 to (first + n - 1) // 2, nb of them. For each chunk, call
    ``emit(rows: slice, w0: uint32 (r, nb), w1: uint32 (r, nb))``, or with `interleave`
    ``emit(rows, w: uint32 (r, 2 nb))`` in element order (w0, w1 of the first block, then
    the next, ...; element first is column first % 2). The arrays passed are scratch, reused
    for the next chunk (emit may modify them)."""
    key = stream_key(seed, epoch, purpose)
    ids = _examples(examples)
    first, n = int(first), int(n)
    if first < 0 or first + n > 2**33:
        raise ConfigError(f"elements must lie in [0, 2**33). Received: first={first}, n={n}")
    nb = (first + n + 1) // 2 - first // 2 if n else 0
    if not len(ids) or not nb:
        return
    rows = max(1, _CHUNK // nb)
    cols = np.arange(first // 2, first // 2 + nb, dtype=np.uint64).astype(np.uint32)
    buf0 = np.empty(min(rows, len(ids)) * nb, np.uint32)
    buf1, tmp = np.empty_like(buf0), np.empty_like(buf0)
    # interleaving through one uint64 per block (low word = element 2b on little-endian
    # machines) is 3 contiguous passes; strided uint32 writes measured ~4x slower.
    wide = np.empty(len(buf0), np.uint64) if interleave else None
    low, high = (buf0, buf1) if sys.byteorder == "little" else (buf1, buf0)
    for start in range(0, len(ids), rows):
        chunk = ids[start:start + rows]
        r = len(chunk)
        size = r * nb
        w0 = buf0[:size].reshape(r, nb)
        w1 = buf1[:size].reshape(r, nb)
        w0[...] = chunk[:, None]
        w1[...] = cols
        _threefry_inplace(key, w0, w1, tmp[:size].reshape(r, nb))
        if wide is None:
            emit(slice(start, start + r), w0, w1)
        else:
            w = wide[:size]
            w[...] = high[:size]
            w <<= np.uint64(32)
            w |= low[:size]
            emit(slice(start, start + r), w.view(np.uint32).reshape(r, 2 * nb))


def bits(seed: int, epoch: int, purpose: int, examples: Any, n: int, *, first: int = 0) -> NDArray[np.uint32]:
    """uint32 (len(examples), n): elements first .. first+n-1 of each example (the packing is
    in the module docstring); `first` lets a consumer take a long row in pieces.

    Example:
        >>> bits(0, 1, NOISE, [0, 1], 3).shape
        (2, 3)
    """
    n = int(n)
    out = np.empty((len(np.asarray(examples)), n), np.uint32)

    skip = int(first) % 2

    def emit(rows: slice, w: NDArray[np.uint32]) -> None:
        out[rows] = w[:, skip:skip + n]

    _for_blocks(seed, epoch, purpose, examples, n, emit, interleave=True, first=first)
    return out


def uniform(seed: int, epoch: int, purpose: int, examples: Any, n: int, *, first: int = 0) -> NDArray[np.float32]:
    """float32 (len(examples), n) in [0, 1): ``(bits >> 8) * 2**-24``, the same bits everywhere."""
    n = int(n)
    out = np.empty((len(np.asarray(examples)), n), np.float32)
    scale = np.float32(2.0**-24)
    skip = int(first) % 2

    def emit(rows: slice, w: NDArray[np.uint32]) -> None:
        w >>= np.uint32(8)
        part = out[rows]
        part[...] = w[:, skip:skip + n]  # exact: < 2**24
        part *= scale

    _for_blocks(seed, epoch, purpose, examples, n, emit, interleave=True, first=first)
    return out


def normal(seed: int, epoch: int, purpose: int, examples: Any, n: int, *, first: int = 0) -> NDArray[np.float32]:
    """float32 (len(examples), n) standard normals by Box-Muller on each block's two words.

    Computed in float64 and rounded once, so it is the float32 rounding of the exact value up
    to float64 error; |z| <= sqrt(2 * 24 * ln 2) = 5.77 (u1 >= 2**-24). `first`: as in `bits`.
    """
    n = int(n)
    out = np.empty((len(np.asarray(examples)), n), np.float32)
    two_pi = 2.0 * np.pi
    skip = int(first) % 2

    def emit(rows: slice, w0: NDArray[np.uint32], w1: NDArray[np.uint32]) -> None:
        u1 = ((w0 >> np.uint32(8)).astype(np.float64) + 1.0) * 2.0**-24
        theta = (w1 >> np.uint32(8)).astype(np.float64) * (2.0**-24 * two_pi)
        r = np.sqrt(-2.0 * np.log(u1))
        z = np.empty((*w0.shape, 2), np.float32)
        z[..., 0] = r * np.cos(theta)
        z[..., 1] = r * np.sin(theta)
        out[rows] = z.reshape(len(z), -1)[:, skip:skip + n]

    _for_blocks(seed, epoch, purpose, examples, n, emit, first=first)
    return out


def permutation(seed: int, epoch: int, n: int) -> NDArray[np.int64]:
    """int64 (n,): the epoch's order, a pure function of (seed, epoch, n).

    Example:
        >>> sorted(permutation(7, 1, 5).tolist())
        [0, 1, 2, 3, 4]
    """
    n = int(n)
    if n > MAX_EXAMPLES:
        raise ConfigError(f"permutation: n must be in [0, 2**32] (example ids are 32-bit). Received: n={n}")
    sort_key = bits(seed, epoch, ORDER, np.arange(n, dtype=np.int64), 1)[:, 0]
    return np.argsort(sort_key, kind="stable").astype(np.int64)


def binarize(x: NDArray[np.float32], seed: int, epoch: int, examples: Any,
             out: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
    """Dynamic binarization ``uniform(seed, epoch, BINARIZE, examples, d) < x`` as float32.

    `x` is (n, ...) with d values per row (flattened in C order), float32 out of x's shape.

    `examples` are the rows' ORIGINAL ids (their index in the training set), so a row is
    binarized the same whatever its position in the epoch. Computed chunk by chunk without
    materialising all uniforms. `out` may be `x` itself (in place).

    Example:
        >>> binarize(np.array([[0.0, 1.0, 0.5]], np.float32), 0, 1, [0]).tolist()
        [[0.0, 1.0, 1.0]]
    """
    shape = np.shape(x)
    x = np.asarray(x, np.float32).reshape(shape[0], -1)
    d = x.shape[1]
    full = np.empty(shape, np.float32) if out is None else out
    result = full.reshape(shape[0], -1)
    if not np.shares_memory(result, full):
        raise ConfigError("binarize(out=...) must be a C-contiguous float32 array of x's shape")
    scale = np.float32(2.0**-24)
    u = np.empty(0, np.float32)

    def emit(rows: slice, w: NDArray[np.uint32]) -> None:
        nonlocal u
        if u.size < w.size:
            u = np.empty(w.size, np.float32)
        w >>= np.uint32(8)
        ur = u[:w.shape[0] * d].reshape(w.shape[0], d)
        ur[...] = w[:, :d]  # exact: < 2**24
        ur *= scale
        np.less(ur, x[rows], out=result[rows])

    _for_blocks(seed, epoch, BINARIZE, examples, d, emit, interleave=True)
    return full


def random_seed() -> int:
    """A fresh seed from the OS (62 bits), for a model built with seed=None: it is then
    recorded, so the run can still be saved and resumed on the same keyed stream."""
    return int(np.random.SeedSequence().generate_state(2, np.uint32).view(np.uint64)[0] >> np.uint64(2))

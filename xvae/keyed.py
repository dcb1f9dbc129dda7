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
  u2)``, element 2b+1 is ``r sin(2 pi u2)``. The reference computes r in float64 and cos/sin of the
  exact angle to ~1e-7 (quadrant by integer bits, float32 cos/sin on [0, pi/2)), within
  ~4e-7 of the exact value; the backends compute in float32 and agree to float32 rounding
  (|z| <= 5.8).
* permutation(n): the stable argsort of word 0 of ``threefry(stream_key(seed, epoch,
  ORDER), (i, 0))`` over i = 0..n-1 (equal keys keep index order).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xvae import _memory, _validate
from xvae._errors import ConfigError, DataError
from xvae._numbers import integer

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
    if not isinstance(key, (tuple, list)) or len(key) != 2:
        raise ConfigError(f"key must be a pair of 32-bit words (k0, k1). Received: key={key!r:.100}")
    words = (_count(key[0], "key word", 2**32), _count(key[1], "key word", 2**32))
    a, b = _words32(x0, "x0"), _words32(x1, "x1")
    if a.shape != b.shape:
        raise ConfigError(f"x0 and x1 must have one shape. Received: {a.shape} and {b.shape}")
    _memory.require(a.size * 12, f"Threefry of {a.size:,} counters", "pass fewer counters per call")
    _threefry_inplace(words, a, b, np.empty_like(b))
    return a, b


def _words32(value: Any, name: str) -> NDArray[np.uint32]:
    """A copy of an integer array with values in [0, 2**32) as uint32; ConfigError otherwise."""
    try:
        arr = np.asarray(value)
    except Exception as err:  # noqa: BLE001 - ragged lists, objects numpy cannot hold
        raise ConfigError(f"{name} must be an integer array ({type(err).__name__}: {str(err)[:100]})") from None
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ConfigError(f"{name} must be an integer array of 32-bit words. Received dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= 2**32):
        raise ConfigError(f"{name} must hold values in [0, 2**32). Received [{int(arr.min())}, {int(arr.max())}]")
    return arr.astype(np.uint32)


def _count(value: Any, name: str, limit: int) -> int:
    """`value` as an int in [0, limit); ConfigError naming it otherwise."""
    number = integer(value)
    if number is None or not 0 <= number < limit:
        raise ConfigError(f"{name} must be an integer in [0, {limit}). Received: {name}={value!r:.100}")
    return number


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
    s = integer(seed)
    if s is None or s < 0:
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
    key = seed_key(seed)
    return _scalar_block(key, _count(epoch, "epoch", MAX_EPOCH), _count(purpose, "purpose", 2**32))


def _examples(examples: Any) -> NDArray[np.uint32]:
    try:
        ids = np.asarray(examples)
    except Exception as err:  # noqa: BLE001 - ragged lists, objects numpy cannot hold
        raise ConfigError(f"examples must be a 1-D integer array of example ids ({type(err).__name__}: "
                          f"{str(err)[:100]})") from None
    if ids.ndim != 1 or ids.dtype == bool or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
        raise ConfigError(f"examples must be a 1-D integer array of example ids. Received: shape {ids.shape}, dtype {ids.dtype}")
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= MAX_EXAMPLES):
        raise ConfigError(f"example ids must be in [0, 2**32) (one 32-bit counter word). Received ids from {int(ids.min())} to {int(ids.max())}; split a larger data set.")
    return ids.astype(np.uint32)


def _request(seed: Any, epoch: Any, purpose: Any, examples: Any, n: Any, first: Any
             ) -> tuple[tuple[int, int], NDArray[np.uint32], int, int]:
    """The validated (stream key, example ids, n, first) of a draw; ConfigError naming a bad one."""
    key = stream_key(seed, epoch, purpose)
    ids = _examples(examples)
    n, first = _count(n, "n", 2**33 + 1), _count(first, "first", 2**33)
    if first + n > 2**33:
        raise ConfigError(f"elements must lie in [0, 2**33). Received: first={first}, n={n}")
    _memory.require(len(ids) * n * 8, f"keyed draws of {len(ids):,} examples x {n:,} elements",
                    "draw fewer examples or elements per call")
    return key, ids, n, first


def _for_blocks(key: tuple[int, int], ids: NDArray[np.uint32], n: int, emit: Any,
                interleave: bool = False, first: int = 0) -> None:
    """Compute the blocks holding elements [first, first + n) of `examples` in cache-sized
    row chunks: blocks first // 2 to (first + n - 1) // 2, nb of them. For each chunk, call
    ``emit(rows: slice, w0: uint32 (r, nb), w1: uint32 (r, nb))``, or with `interleave`
    ``emit(rows, w: uint32 (r, 2 nb))`` in element order (w0, w1 of the first block, then
    the next, ...; element first is column first % 2). The arrays passed are scratch, reused
    for the next chunk (emit may modify them)."""
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
    key, ids, n, first = _request(seed, epoch, purpose, examples, n, first)
    out = np.empty((len(ids), n), np.uint32)
    skip = first % 2

    def emit(rows: slice, w: NDArray[np.uint32]) -> None:
        out[rows] = w[:, skip:skip + n]

    _for_blocks(key, ids, n, emit, interleave=True, first=first)
    return out


def uniform(seed: int, epoch: int, purpose: int, examples: Any, n: int, *, first: int = 0) -> NDArray[np.float32]:
    """float32 (len(examples), n) in [0, 1): ``(bits >> 8) * 2**-24``, the same bits everywhere."""
    key, ids, n, first = _request(seed, epoch, purpose, examples, n, first)
    out = np.empty((len(ids), n), np.float32)
    scale = np.float32(2.0**-24)
    skip = first % 2

    def emit(rows: slice, w: NDArray[np.uint32]) -> None:
        w >>= np.uint32(8)
        part = out[rows]
        part[...] = w[:, skip:skip + n]  # exact: < 2**24
        part *= scale

    _for_blocks(key, ids, n, emit, interleave=True, first=first)
    return out


def normal(seed: int, epoch: int, purpose: int, examples: Any, n: int, *, first: int = 0) -> NDArray[np.float32]:
    """float32 (len(examples), n) standard normals by Box-Muller on each block's two words.

    r in float64, cos/sin of the exact angle to ~1e-7 (`_cos_sin_turns`), rounded once to
    float32: within ~6e-7 of the exact value (|z| <= sqrt(2 * 24 * ln 2) = 5.77, as
    u1 >= 2**-24). `first`: as in `bits`.
    """
    key, ids, n, first = _request(seed, epoch, purpose, examples, n, first)
    out = np.empty((len(ids), n), np.float32)
    skip = first % 2

    def emit(rows: slice, w0: NDArray[np.uint32], w1: NDArray[np.uint32]) -> None:
        u1 = ((w0 >> np.uint32(8)).view(np.int32).reshape(-1).astype(np.float64) + 1.0) * 2.0**-24
        r = np.sqrt(-2.0 * np.log(u1)).reshape(w0.shape)
        c, s = _cos_sin_turns(w1 >> np.uint32(8))
        z = np.empty((*w0.shape, 2), np.float32)
        np.multiply(r, c, out=z[..., 0], casting="unsafe")
        np.multiply(r, s, out=z[..., 1], casting="unsafe")
        out[rows] = z.reshape(len(z), -1)[:, skip:skip + n]

    _for_blocks(key, ids, n, emit, first=first)
    return out


def _cos_sin_turns(m: NDArray[np.uint32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """cos and sin of 2 pi m / 2**24 for integers 0 <= m < 2**24, float32, to ~1.2e-7 absolute.

    The quadrant comes from m's top two bits exactly, so float32 cos/sin (SIMD in NumPy) only
    see an angle in [0, pi/2), computed in float64 and rounded once (error <= 6e-8); the
    quadrant's swap and signs are exact. ~30x faster than float64 cos/sin (scalar libm here).
    Works on the flattened array (short inner rows make NumPy's loops slow); same shape out.
    """
    flat = m.reshape(-1)
    quadrant = (flat >> np.uint32(22)).astype(np.int8)
    phi = ((flat & np.uint32(0x3FFFFF)).view(np.int32).astype(np.float64)
           * (2.0 * np.pi * 2.0**-24)).astype(np.float32)
    c, s = np.cos(phi), np.sin(phi)
    odd = (quadrant & 1).astype(bool)
    cos = np.where(odd, s, c)
    sin = np.where(odd, c, s)
    # quadrants 1, 2 negate the cosine; 2, 3 the sine (multiplying by -1 is exact)
    cos *= (1 - 2 * ((quadrant ^ (quadrant >> 1)) & 1)).astype(np.float32)
    sin *= (1 - 2 * (quadrant >> 1)).astype(np.float32)
    return cos.reshape(m.shape), sin.reshape(m.shape)


def permutation(seed: int, epoch: int, n: int) -> NDArray[np.int64]:
    """int64 (n,): the epoch's order, a pure function of (seed, epoch, n).

    Example:
        >>> sorted(permutation(7, 1, 5).tolist())
        [0, 1, 2, 3, 4]
    """
    n = _count(n, "n", MAX_EXAMPLES + 1)
    sort_key = bits(seed, epoch, ORDER, np.arange(n, dtype=np.int64), 1)[:, 0]
    # the stable argsort, computed as a sort of the unique 64-bit items key << 32 | index
    # (NumPy's SIMD sort: 0.4 ms for 60,000 against 8.5 ms for argsort(kind="stable"))
    items = sort_key.astype(np.uint64)
    items <<= np.uint64(32)
    items |= np.arange(n, dtype=np.uint64)
    items.sort()
    return (items & np.uint64(_MASK)).astype(np.int64)


def binarize(x: NDArray[np.float32], seed: int, epoch: int, examples: Any,
             out: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
    """Dynamic binarization ``uniform(seed, epoch, BINARIZE, examples, d) < x`` as float32.

    `x` is (n, ...) with d values per row (flattened in C order), float32 out of x's shape.
    `examples` are the rows' ORIGINAL ids (their index in the training set), so a row is
    binarized the same whatever its position in the epoch. `out` may be `x` itself (in place).

    Only values strictly between 0 and 1 need their uniform: ``u < 0`` is always false and
    ``u < 1`` always true (u < 1), so only blocks holding a value strictly inside (0, 1)
    are computed — on MNIST 22% of them. The result is the same bits as computing every
    uniform (tests/unit/test_keyed.py).

    Example:
        >>> binarize(np.array([[0.0, 1.0, 0.5]], np.float32), 0, 1, [0]).tolist()
        [[0.0, 1.0, 1.0]]
    """
    arr = _validate._numeric(x, "x", "(n, ...)")
    if arr.ndim < 1:
        raise DataError(f"binarize needs rows: x of shape (n, ...). Received a scalar of shape {arr.shape}")
    shape = arr.shape
    d = int(np.prod(shape[1:]))
    _memory.require(arr.size * 12, f"binarize of an array of shape {shape}", "binarize fewer rows at a time")
    x = np.asarray(arr, np.float32).reshape(shape[0], d)
    if out is not None and not (isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == shape
                                and out.flags.c_contiguous):
        raise ConfigError(f"binarize(out=...) must be a C-contiguous float32 array of x's shape {shape}")
    full = np.empty(shape, np.float32) if out is None else out
    result = full.reshape(shape[0], d)  # a view: full is C-contiguous
    key = stream_key(seed, epoch, BINARIZE)
    ids = _examples(examples)
    if len(ids) != len(x):
        raise ConfigError(f"binarize needs one example id per row: {len(x)} rows, {len(ids)} ids")
    n, nb = len(x), (d + 1) // 2
    if not n or not nb:
        return full
    # Row groups of ~8 cache chunks of blocks; every scratch array is allocated once (fresh
    # arrays cost page faults, measured 20+ ms per 60,000 x 784 epoch on this VM).
    rows = max(1, 8 * _CHUNK // nb)
    r0 = min(rows, n)
    bits_x = np.empty((r0, d), np.uint32)
    mid = np.zeros((r0, 2 * nb), bool)  # column 2 nb - 1 stays False when d is odd
    need = np.empty((r0, nb), bool)
    u = np.empty((r0, 2 * nb), np.float32)
    ibits = np.empty((r0, 2 * nb), np.uint32)
    little = sys.byteorder == "little"

    def low(w0: NDArray[np.uint32], w1: NDArray[np.uint32]) -> NDArray[np.uint32]:
        return w0 if little else w1

    def high(w0: NDArray[np.uint32], w1: NDArray[np.uint32]) -> NDArray[np.uint32]:
        return w1 if little else w0

    scale = np.float32(2.0**-24)
    for start in range(0, n, rows):
        xs = x[start:start + rows]
        r = len(xs)
        # A value outside the open interval (0, 1) -- 0, 1, negative, above 1, NaN -- is
        # binarized right by u = 0 whatever its uniform (u < x iff 0 < x, as u is in [0, 1)),
        # so only blocks with a value inside need Threefry. As float32 bits, 0 < x < 1 is
        # 1 <= bits <= 0x3F7FFFFF, i.e. (bits - 1) < 0x3F7FFFFF unsigned.
        bx, mr, nd, ur = bits_x[:r], mid[:r], need[:r], u[:r]
        np.subtract(xs.view(np.uint32), np.uint32(1), out=bx)
        np.less(bx, np.uint32(0x3F7FFFFF), out=mr[:, :d])
        np.not_equal(mr.view(np.uint16), 0, out=nd)
        flat = np.flatnonzero(nd)
        if flat.size > 0.6 * nd.size:  # dense data: every block, computed in place (no gather/scatter)
            sub = max(1, _CHUNK // nb)
            ib = ibits[:r]
            for lo in range(0, r, sub):
                hi = min(lo + sub, r)
                w0 = np.empty((hi - lo, nb), np.uint32)
                w0[...] = ids[start + lo:start + hi, None]
                w1 = np.empty_like(w0)
                w1[...] = np.arange(nb, dtype=np.uint32)
                _threefry_inplace(key, w0, w1, np.empty_like(w0))
                # interleave through one uint64 per block: 3 contiguous passes (strided
                # uint32 writes measured ~4x slower)
                wide = ib[lo:hi].view(np.uint64)
                wide[...] = high(w0, w1)
                wide <<= np.uint64(32)
                wide |= low(w0, w1)
            ib >>= np.uint32(8)
            ur[...] = ib  # exact: < 2**24
            ur *= scale
            np.less(ur[:, :d], xs, out=result[start:start + r], casting="unsafe")
            continue
        ur[...] = 0.0
        for piece in range(0, flat.size, 2 * _CHUNK):
            idx = flat[piece:piece + 2 * _CHUNK]
            row, col = np.divmod(idx, nb)
            w0 = ids[start + row]
            w1 = col.astype(np.uint32)
            _threefry_inplace(key, w0, w1, np.empty_like(w0))
            w0 >>= np.uint32(8)
            w1 >>= np.uint32(8)
            both = np.empty((len(idx), 2), np.float32)
            both[:, 0] = w0
            both[:, 1] = w1
            both *= scale
            # a block's two float32 uniforms as one 8-byte item: one scatter per block
            ur.view(np.uint64).reshape(-1)[idx] = both.view(np.uint64).reshape(-1)
        np.less(ur[:, :d], xs, out=result[start:start + r], casting="unsafe")
    return full


def random_seed() -> int:
    """A fresh seed from the OS (62 bits), for a model built with seed=None: it is then
    recorded, so the run can still be saved and resumed on the same keyed stream."""
    return int(np.random.SeedSequence().generate_state(2, np.uint32).view(np.uint64)[0] >> np.uint64(2))

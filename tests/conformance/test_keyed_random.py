"""Every backend's keyed generator against the NumPy reference (`xvae.keyed`), 10^6 draws each.

bits, uniforms and permutations must be identical bit for bit (integer arithmetic and an
exact conversion); normals agree to float32 rounding (bound below). Each is checked in the
backend's eager form and in its compiled form (jax.jit, tf.function(jit_compile=True),
torch.compile is not required: plain torch is the compiled step's code), with seed and epoch
passed as tensors the way a compiled step receives them.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from tests.conformance.conftest import NAMES, require
from xvae import keyed

#: 1,000 examples (ids scattered up to ~2**31) x 1,000 elements = 10^6 draws per call.
IDS = (np.arange(1000, dtype=np.int64) * 2_147_483) % (2**31 - 1)
N = 1000
#: a seed above 2**32 (passed to compiled code as its two key words) and one below.
SEEDS = (2**40 + 12345, 7)
EPOCH = 3

# Normals: Box-Muller in float32 versus the reference. Backend: theta =
# float32(m) * float32(2 pi 2**-24) is one rounding (<= 2**-22 at theta < 2 pi) plus the
# constant's (2**-24 relative, <= 4e-7 absolute); float32 cos/sin add <= 2 ulp(1) = 2.4e-7;
# so |d cos| <= ~9e-7, times r <= sqrt(2 * 24 ln 2) = 5.77 gives 5.2e-6; r's own log,
# multiply and sqrt add ~3 * 2**-24 relative (<= 1.1e-6 at r = 5.77). Reference: float32
# cos/sin of an exactly reduced angle (1 ulp(1) = 1.2e-7, times r: 7e-7) and the final
# rounding (ulp(4)/2 = 2.4e-7). Sum: 7.3e-6 (measured: 1.8e-6).
NORMAL_ATOL = 7.3e-6


def _compiled(name: str, fn, seed_arg, epoch: int):  # type: ignore[no-untyped-def]
    """fn(seed, epoch, ids) evaluated in `name`'s compiled form, seed/epoch as tensors."""
    if name == "jax":
        import jax
        import jax.numpy as jnp

        return np.asarray(jax.jit(fn)(jnp.asarray(seed_arg, jnp.uint32), jnp.int32(epoch), jnp.asarray(IDS, jnp.int32)))
    if name == "tf":
        import tensorflow as tf

        out = tf.function(fn, jit_compile=True)(tf.constant(seed_arg, tf.uint32), tf.constant(epoch, tf.int32),
                                                tf.constant(IDS, tf.int64))
        return out.numpy()
    import torch

    return fn(torch.tensor(seed_arg, dtype=torch.int64), torch.tensor(epoch), torch.tensor(IDS)).numpy()


def _eager_ids(name: str):  # type: ignore[no-untyped-def]
    if name == "torch":
        import torch

        return torch.tensor(IDS)
    return IDS


def _module(name: str):  # type: ignore[no-untyped-def]
    require(name)
    return importlib.import_module(f"xvae_{name}._random")


@pytest.fixture(params=NAMES)
def random_module(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return request.param, _module(request.param)


@pytest.mark.parametrize("seed", SEEDS)
def test_bits_and_uniform_bit_identical(random_module, seed: int) -> None:
    name, mod = random_module
    want_bits = keyed.bits(seed, EPOCH, keyed.NOISE, IDS, N)
    want_u = keyed.uniform(seed, EPOCH, keyed.BINARIZE, IDS, N)
    got_bits = np.asarray(mod.bits(seed, EPOCH, keyed.NOISE, _eager_ids(name), N)).astype(np.uint32)
    got_u = np.asarray(mod.uniform(seed, EPOCH, keyed.BINARIZE, _eager_ids(name), N))
    assert want_bits.size == 10**6
    np.testing.assert_array_equal(got_bits, want_bits)
    assert got_u.dtype == np.float32
    np.testing.assert_array_equal(got_u.view(np.uint32), want_u.view(np.uint32))
    # compiled, seed as its two key words (any seed) and epoch as a traced scalar
    key = np.asarray(keyed.seed_key(seed), np.uint32)
    got_c = _compiled(name, lambda s, e, i: mod.uniform(s, e, keyed.BINARIZE, i, N), key, EPOCH)
    np.testing.assert_array_equal(got_c.view(np.uint32), want_u.view(np.uint32))
    got_cb = _compiled(name, lambda s, e, i: mod.bits(s, e, keyed.NOISE, i, N), key, EPOCH)
    np.testing.assert_array_equal(got_cb.astype(np.uint32), want_bits)


def test_scalar_tensor_seed(random_module) -> None:
    """A seed < 2**32 may come as one integer scalar tensor (key (seed, 0))."""
    name, mod = random_module
    want = keyed.uniform(SEEDS[1], EPOCH, keyed.DROPOUT, IDS, 10)
    got = _compiled(name, lambda s, e, i: mod.uniform(s, e, keyed.DROPOUT, i, 10), SEEDS[1], EPOCH)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", SEEDS)
def test_normal_to_float32_rounding(random_module, seed: int) -> None:
    name, mod = random_module
    want = keyed.normal(seed, EPOCH, keyed.NOISE, IDS, N)
    for got in (np.asarray(mod.normal(seed, EPOCH, keyed.NOISE, _eager_ids(name), N)),
                _compiled(name, lambda s, e, i: mod.normal(s, e, keyed.NOISE, i, N),
                          np.asarray(keyed.seed_key(seed), np.uint32), EPOCH)):
        assert got.dtype == np.float32 and got.shape == (1000, N)
        np.testing.assert_allclose(got, want, rtol=0, atol=NORMAL_ATOL)
    assert np.abs(want).max() <= math.sqrt(2 * 24 * math.log(2))


def test_permutation_identical(random_module) -> None:
    name, mod = random_module
    n = 100_000
    want = keyed.permutation(SEEDS[0], EPOCH, n)
    np.testing.assert_array_equal(np.asarray(mod.permutation(SEEDS[0], EPOCH, n)), want)
    if name == "jax":
        import jax
        import jax.numpy as jnp

        got = jax.jit(lambda s, e: mod.permutation(s, e, n))(jnp.asarray(keyed.seed_key(SEEDS[0]), jnp.uint32),
                                                              jnp.int32(EPOCH))
    elif name == "tf":
        import tensorflow as tf

        got = tf.function(lambda s, e: mod.permutation(s, e, n), jit_compile=True)(
            tf.constant(keyed.seed_key(SEEDS[0]), tf.uint32), tf.constant(EPOCH))
    else:
        import torch

        got = mod.permutation(torch.tensor(keyed.seed_key(SEEDS[0])), torch.tensor(EPOCH), n)
    np.testing.assert_array_equal(np.asarray(got), want)


def test_binarize_identical(random_module) -> None:
    name, mod = random_module
    x = np.random.default_rng(0).random((len(IDS), 33), dtype=np.float32)
    x[:, :3] = (0.0, 1.0, 0.5)
    want = keyed.binarize(x, SEEDS[0], EPOCH, IDS)
    if name == "torch":
        import torch

        got = mod.binarize(torch.tensor(x), SEEDS[0], EPOCH, torch.tensor(IDS)).numpy()
    else:
        got = np.asarray(mod.binarize(x, SEEDS[0], EPOCH, IDS))
    np.testing.assert_array_equal(got, want)
    assert (want[:, 0] == 0).all() and (want[:, 1] == 1).all()


def test_threefry_2x32_itself(random_module) -> None:
    """The raw block function of each backend on random keys and counters."""
    name, mod = random_module
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2**32, (2, 4096), dtype=np.uint64)
    key = tuple(int(k) for k in rng.integers(0, 2**32, 2, dtype=np.uint64))
    want = keyed.threefry_2x32(key, x[0], x[1])
    if name == "torch":
        import torch

        got = mod.threefry_2x32(key, torch.tensor(x[0].astype(np.int64)), torch.tensor(x[1].astype(np.int64)))
    elif name == "tf":
        import tensorflow as tf

        got = mod.threefry_2x32(key, tf.constant(x[0].astype(np.uint32)), tf.constant(x[1].astype(np.uint32)))
    else:
        got = mod.threefry_2x32(key, x[0].astype(np.uint32), x[1].astype(np.uint32))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.asarray(g).astype(np.uint32), w)


def test_extreme_seed_epoch_and_ids(random_module) -> None:
    """Words with the top bit set everywhere: a seed whose key words are >= 2**31, the last
    epoch (2**32 - 1) and example ids up to 2**32 - 1 (JAX without x64 holds int32 only)."""
    name, mod = random_module
    seed, epoch = 2**63 + 2**31 + 7, 2**32 - 1
    ids = np.array([0, 2**31 - 1, 2**31, 2**32 - 1], np.int64)
    want = keyed.bits(seed, epoch, keyed.SAMPLE, ids, 9)
    arg = ids
    if name == "torch":
        import torch

        arg = torch.tensor(ids)
    np.testing.assert_array_equal(np.asarray(mod.bits(seed, epoch, keyed.SAMPLE, arg, 9)).astype(np.uint32), want)
    np.testing.assert_array_equal(np.asarray(mod.bits(np.asarray(keyed.seed_key(seed), np.uint32), epoch,
                                                      keyed.SAMPLE, arg, 9)).astype(np.uint32), want)

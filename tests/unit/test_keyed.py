"""The NumPy reference of the keyed generator (`xvae.keyed`): it is the real Threefry-2x32,
and its packing has the properties the docs promise (prefixes, purposes, ids, folding)."""

from __future__ import annotations

import numpy as np
import pytest

from xvae import ConfigError, keyed


def test_threefry_equals_jax_bit_for_bit() -> None:
    jax_random = pytest.importorskip("jax.extend.random", reason="jax not installed: the reference "
                                     "Threefry is compared with jax's own only where jax exists")
    import jax.numpy as jnp

    rng = np.random.default_rng(2026)
    for _ in range(20):
        k = rng.integers(0, 2**32, 2, dtype=np.uint64).astype(np.uint32)
        x = rng.integers(0, 2**32, (2, 4096), dtype=np.uint64).astype(np.uint32)
        a, b = keyed.threefry_2x32((int(k[0]), int(k[1])), x[0], x[1])
        want = np.asarray(jax_random.threefry_2x32((jnp.uint32(k[0]), jnp.uint32(k[1])), jnp.asarray(x.ravel())))
        np.testing.assert_array_equal(np.concatenate([a, b]), want)


def test_threefry_known_answer() -> None:
    """Random123's known-answer vector for threefry2x32_20, key and counter zero (kat_vectors)."""
    a, b = keyed.threefry_2x32((0, 0), np.zeros(1, np.uint32), np.zeros(1, np.uint32))
    assert (int(a[0]), int(b[0])) == (0x6B200159, 0x99BA4EFE)


def test_prefix_and_chunk_independence() -> None:
    ids = np.array([5, 0, 2**32 - 1, 77])
    full = keyed.bits(3, 1, keyed.NOISE, ids, 9)
    np.testing.assert_array_equal(full[:, :4], keyed.bits(3, 1, keyed.NOISE, ids, 4))
    # a row depends on its id only, not on its neighbours or position
    np.testing.assert_array_equal(full[2:3], keyed.bits(3, 1, keyed.NOISE, ids[2:3], 9))
    np.testing.assert_array_equal(full[::-1], keyed.bits(3, 1, keyed.NOISE, ids[::-1], 9))
    # many rows (several cache chunks) agree with one row at a time
    many = np.arange(400) * 3
    block = keyed.uniform(1, 2, keyed.BINARIZE, many, 300)
    np.testing.assert_array_equal(block[399], keyed.uniform(1, 2, keyed.BINARIZE, many[399:], 300)[0])


def test_streams_differ_by_seed_epoch_purpose() -> None:
    ids = np.arange(50)
    base = keyed.bits(1, 1, keyed.NOISE, ids, 8)
    for other in (keyed.bits(2, 1, keyed.NOISE, ids, 8), keyed.bits(1, 2, keyed.NOISE, ids, 8),
                  keyed.bits(1, 1, keyed.DROPOUT, ids, 8), keyed.bits(2**32 + 1, 1, keyed.NOISE, ids, 8)):
        assert (other != base).mean() > 0.99
    # stream keys of one seed are distinct for distinct (epoch, purpose): Threefry is a bijection
    keys = {keyed.stream_key(9, e, p) for e in range(200) for p in range(6)}
    assert len(keys) == 1200


def test_seed_folding() -> None:
    assert keyed.seed_key(2**63 + 5) == (5, 2**31)
    assert keyed.seed_key(2**64 + 3) == (3 ^ 1, 0)


def test_uniform_and_normal_distribution() -> None:
    u = keyed.uniform(11, 1, keyed.BINARIZE, np.arange(1000), 1000)
    assert u.dtype == np.float32 and u.min() >= 0.0 and u.max() < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.002  # sd of the mean of 10^6 uniforms: 2.9e-4
    np.testing.assert_array_equal(u, (keyed.bits(11, 1, keyed.BINARIZE, np.arange(1000), 1000) >> 8) * 2.0**-24)
    z = keyed.normal(11, 1, keyed.NOISE, np.arange(1000), 1000).astype(np.float64)
    assert abs(z.mean()) < 0.005 and abs(z.var() - 1.0) < 0.01  # sds 1e-3 and 1.4e-3
    # z pairs come from one block: element 2b and 2b+1 share r
    z1 = keyed.normal(11, 1, keyed.NOISE, np.arange(3), 5)
    assert z1.shape == (3, 5)
    np.testing.assert_array_equal(z1, keyed.normal(11, 1, keyed.NOISE, np.arange(1000), 1000)[:3, :5])


def test_permutation_and_binarize() -> None:
    p = keyed.permutation(4, 2, 1000)
    assert p.dtype == np.int64 and sorted(p.tolist()) == list(range(1000))
    assert not np.array_equal(p, keyed.permutation(4, 3, 1000))
    x = np.random.default_rng(1).random((40, 31), dtype=np.float32)
    x[0] = 0.0
    x[1] = 1.0
    ids = np.arange(100, 140)
    want = (keyed.uniform(4, 2, keyed.BINARIZE, ids, 31) < x).astype(np.float32)
    np.testing.assert_array_equal(keyed.binarize(x, 4, 2, ids), want)
    inplace = x.copy()
    assert keyed.binarize(inplace, 4, 2, ids, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, want)
    assert (want[0] == 0).all() and (want[1] == 1).all()


@pytest.mark.parametrize("call, message", [
    (lambda: keyed.bits(-1, 0, 0, [0], 1), "seed"),
    (lambda: keyed.bits(0, 2**32, 0, [0], 1), "epoch"),
    (lambda: keyed.bits(0, 0, 0, [2**32], 1), "example ids"),
    (lambda: keyed.bits(0, 0, 0, [-1], 1), "example ids"),
    (lambda: keyed.bits(0, 0, 0, [[0]], 1), "1-D integer"),
    (lambda: keyed.bits(0, 0, 0, [0.5], 1), "1-D integer"),
])
def test_bad_input(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        call()


def test_first_takes_a_row_in_pieces() -> None:
    """`first` (used by log_likelihood's chunks over k) gives the same elements as one long draw."""
    ids = np.array([4, 1, 9])
    for fn in (keyed.bits, keyed.uniform, keyed.normal):
        full = fn(3, 1, keyed.IMPORTANCE, ids, 21)
        for start in (0, 1, 2, 7):
            for count in (0, 1, 4, 21 - start):
                np.testing.assert_array_equal(fn(3, 1, keyed.IMPORTANCE, ids, count, first=start),
                                              full[:, start:start + count])


@pytest.mark.parametrize("shape", [(500, 33), (3, 1), (1, 2), (40, 5000), (7, 0), (0, 4), (2000, 7), (6, 2, 3)])
@pytest.mark.parametrize("sparse", [True, False])
def test_binarize_skipping_gives_the_same_bits(shape, sparse: bool) -> None:
    """binarize computes only the blocks with a value inside (0, 1) (sparse data: gathered;
    dense: every block): the result is exactly ``uniform < x`` for every value, 0, 1, -0.0,
    negatives, values above 1 and NaN included."""
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    flat = x.reshape(-1)
    if sparse and flat.size:
        flat[: flat.size * 3 // 4] = np.round(flat[: flat.size * 3 // 4])
        flat[::7], flat[::11], flat[::13], flat[::17] = -0.0, 2.0, np.nan, -3.0
    ids = np.arange(shape[0]) * 5 + 2
    d = int(np.prod(shape[1:]))
    want = (keyed.uniform(3, 2, keyed.BINARIZE, ids, d).reshape(shape) < x).astype(np.float32)
    got = keyed.binarize(x, 3, 2, ids)
    assert got.shape == x.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


def test_normal_is_box_muller_to_float32_rounding() -> None:
    ids = np.arange(300)
    z = keyed.normal(5, 1, keyed.NOISE, ids, 200).astype(np.float64)
    w = keyed.bits(5, 1, keyed.NOISE, ids, 200).astype(np.float64)
    u1 = (np.floor(w[:, 0::2] / 256) + 1) * 2.0**-24
    theta = np.floor(w[:, 1::2] / 256) * 2.0**-24 * 2 * np.pi
    r = np.sqrt(-2 * np.log(u1))
    # float32 cos/sin of the exactly reduced angle (1.2e-7, times r <= 5.77) and the final
    # float32 rounding (<= 2.4e-7): within 1e-6 of the float64 formula
    np.testing.assert_allclose(z[:, 0::2], r * np.cos(theta), rtol=0, atol=1e-6)
    np.testing.assert_allclose(z[:, 1::2], r * np.sin(theta), rtol=0, atol=1e-6)

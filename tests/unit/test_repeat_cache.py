"""xvae.backend.RepeatCache: converted once per distinct value, never stale."""

from __future__ import annotations

import numpy as np

from xvae.backend import RepeatCache


def _counting():
    calls = []

    def convert(a):
        calls.append(a)
        return ("converted", a)

    return calls, convert


def test_same_bytes_convert_once_and_new_values_convert_again():
    calls, convert = _counting()
    cache = RepeatCache(convert)
    ones = np.ones(8, np.float32)
    first = cache.get("mask", ones)
    assert cache.get("mask", np.ones(8, np.float32)) is first  # equal bytes, another array
    assert len(calls) == 1
    tail = np.r_[np.ones(3), np.zeros(5)].astype(np.float32)
    assert cache.get("mask", tail)[1].tolist() == tail.tolist()
    assert cache.get("beta", np.float32(0.5))[1] == 0.5
    assert cache.get("beta", np.float32(0.25))[1] == 0.25  # a schedule's next value: a new entry
    assert len(calls) == 4


def test_the_cached_copy_does_not_follow_the_callers_array():
    calls, convert = _counting()
    cache = RepeatCache(convert)
    mask = np.ones(4, np.float32)
    cached = cache.get("mask", mask)
    mask[0] = 0.0  # mutated in place: different bytes, so a different entry
    assert cached[1].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert cache.get("mask", mask)[1].tolist() == [0.0, 1.0, 1.0, 1.0]


def test_shape_and_dtype_are_part_of_the_key():
    _, convert = _counting()
    cache = RepeatCache(convert)
    a = cache.get("mask", np.ones(4, np.float32))
    assert cache.get("mask", np.ones((2, 2), np.float32)) is not a
    assert cache.get("mask", np.ones(2, np.float64)) is not a  # same 16 bytes, other dtype


def test_large_arrays_bypass_and_the_cache_stays_bounded():
    calls, convert = _counting()
    cache = RepeatCache(convert, size=3, max_bytes=64)
    big = np.ones(100, np.float32)
    cache.get("x", big)
    cache.get("x", big)
    assert len(calls) == 2  # too big to key by bytes: converted every time
    for i in range(10):
        cache.get("beta", np.float32(i))
    assert len(cache._entries) <= 3

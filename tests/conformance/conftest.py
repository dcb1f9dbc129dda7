"""Fixtures of the cross-backend conformance suite.

`backend` runs a test once per registered framework backend and `backend_pair` once per
pair; a backend whose framework is missing is skipped with the install hint as the reason.
XVAE_TEST_BACKENDS=jax,torch restricts the run; XVAE_REQUIRE_BACKENDS=jax,tf,torch (CI)
turns a missing backend into an error, so CI never goes green by skipping: that check is
in the root tests/conftest.py, the only conftest whose session hooks pytest calls.
"""

from __future__ import annotations

try:  # with torch and tensorflow in one process, import torch first (duplicate OpenMP runtimes)
    import torch  # noqa: F401
except ImportError:
    pass

import itertools
import os

import pytest

import xvae

ONLY = {n for n in os.environ.get("XVAE_TEST_BACKENDS", "").split(",") if n}
#: The framework backends; "numpy" is the float64 oracle every one is checked against.
NAMES = [n for n in xvae.backends.known() if n != "numpy" and (not ONLY or n in ONLY)]


def pytest_ignore_collect(collection_path, config):  # noqa: ARG001
    """XVAE_TEST_BACKENDS also selects the backend-specific files (test_<name>_specific.py)."""
    name = collection_path.name
    if ONLY and name.startswith("test_") and name.endswith("_specific.py"):
        return name[len("test_"):-len("_specific.py")] not in ONLY
    return None


def require(*names: str) -> None:
    for name in names:
        if reason := xvae.backends.why_unavailable(name):
            pytest.skip(reason)


@pytest.fixture(params=NAMES)
def backend(request: pytest.FixtureRequest) -> str:
    require(request.param)
    return request.param


@pytest.fixture(params=list(itertools.combinations(NAMES, 2)), ids="-".join)
def backend_pair(request: pytest.FixtureRequest) -> tuple[str, str]:
    require(*request.param)
    return request.param

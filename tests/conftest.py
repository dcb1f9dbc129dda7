"""Session checks and shared fixtures of the whole suite.

XVAE_REQUIRE_BACKENDS=jax,tf,torch (CI) turns a missing backend into a failed run: the
check lives here, in the root conftest, because pytest calls session hooks such as
`pytest_sessionstart` only from the root conftest and plugins, never from a conftest in a
subfolder (which is where it once sat, silently doing nothing).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Backends the run must have (comma-separated names or aliases); CI sets jax,tf,torch.
REQUIRE_ENV = "XVAE_REQUIRE_BACKENDS"

T10K = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def mnist_folder() -> Path:
    """$XVAE_TEST_MNIST_DIR, else the shared folder beside the checkout (../shared/data/mnist)."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    return Path(os.environ.get("XVAE_TEST_MNIST_DIR") or default)


def has_mnist() -> bool:
    return all((mnist_folder() / f).is_file() for f in T10K)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST test files; skipped with the reason when they are not on this machine."""
    if not has_mnist():
        pytest.skip(f"MNIST test files not found in {mnist_folder()} (set XVAE_TEST_MNIST_DIR)")
    return mnist_folder()


def _required() -> list[str]:
    names = [n.strip() for n in os.environ.get(REQUIRE_ENV, "").split(",") if n.strip()]
    # torch first: with torch and tensorflow in one process, torch must be imported first
    # (duplicate OpenMP runtimes; Keras' conftest does the same).
    return sorted(names, key=lambda n: n.lower() not in ("torch", "pytorch"))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail the run, before any test, when a backend named in XVAE_REQUIRE_BACKENDS is unusable."""
    required = _required()
    if not required:
        return
    import xvae

    missing = {n: reason for n in required if (reason := xvae.backends.why_unavailable(n))}
    if missing:
        lines = "\n".join(f"  {name}: {reason}" for name, reason in missing.items())
        raise pytest.UsageError(f"{REQUIRE_ENV}={os.environ[REQUIRE_ENV]} names backends this "
                                f"environment cannot use:\n{lines}\nInstall them, or drop them from "
                                f"{REQUIRE_ENV}; CI must not go green by skipping a backend.")

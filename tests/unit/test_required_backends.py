"""XVAE_REQUIRE_BACKENDS fails the run when a named backend is missing: CI cannot go green by skipping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: A small file to collect: the check must fire at session start, whatever is collected.
TINY = "tests/unit/test_init.py"


def _pytest(required: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XVAE_REQUIRE_BACKENDS": required}
    return subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", TINY],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_a_missing_required_backend_fails_the_run():
    out = _pytest("numpy,bogus")
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert "bogus" in text and "XVAE_REQUIRE_BACKENDS" in text, text
    assert "Unknown backend 'bogus'" in text, text  # the reason, from the registry


def test_available_required_backends_let_the_run_proceed():
    out = _pytest("numpy")  # the float64 reference is always there, and imports no framework
    assert out.returncode == 0, out.stdout + out.stderr
    assert "test_init.py" in out.stdout

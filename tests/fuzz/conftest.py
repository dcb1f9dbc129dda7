"""Fixtures of the fuzz suite: the backend axis, a sandbox of odd paths, the escape counts.

See tests/fuzz/fuzzkit.py for the modes (XVAE_FUZZ=full for every backend, many calls).
"""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import xvae

import fuzzkit

NOTED: set[str] = set()
#: backend -> {"calls": n, "escapes": n, "classes": Counter of "target: ErrorType"}
COUNTS: dict[str, dict[str, Any]] = {}


def record(backend: str, escapes: list[fuzzkit.Escape], calls: int, outcomes: Counter[str] | None = None) -> None:
    """Add one test's counts; `outcomes`: how its calls ended (returned / xvae error / escape)."""
    entry = COUNTS.setdefault(backend, {"calls": 0, "escapes": 0, "outcomes": Counter(), "classes": Counter()})
    entry["calls"] += calls
    entry["escapes"] += len(escapes)
    entry["outcomes"].update(outcomes or {})
    entry["classes"].update(f"{e.target}: {e.error}" for e in escapes)


def outcomes_since(before: Counter[str]) -> Counter[str]:
    return fuzzkit.OUTCOMES - before


@pytest.fixture(scope="session", autouse=True)
def fuzz_report() -> Any:
    """At the end, print the calls and escapes per backend; write them to $XVAE_FUZZ_REPORT."""
    yield
    if not COUNTS:
        return
    report = {b: {**c, "outcomes": dict(c["outcomes"]), "classes": dict(c["classes"])} for b, c in COUNTS.items()}
    print("\nfuzz: " + json.dumps({b: {k: v for k, v in c.items() if k != "classes"} for b, c in report.items()}))
    path = os.environ.get("XVAE_FUZZ_REPORT")
    if path:
        Path(path).write_text(json.dumps({"mode": "full" if fuzzkit.FULL else "ci", "backends": report}, indent=1))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fuzz_backend" in metafunc.fixturenames:
        metafunc.parametrize("fuzz_backend", fuzzkit.fuzz_backends())


@pytest.fixture
def ctx(fuzz_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Small models on the backend, and the sandbox of odd paths as the working directory.

    Downloads are pointed at a file that does not exist, so a fuzzed datasets.load never
    reaches the network; the data folder is the sandbox.
    """
    reason = xvae.backends.why_unavailable(fuzz_backend)
    if reason:
        pytest.skip(f"backend {fuzz_backend!r} unavailable: {reason}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XVAE_DATA_DIR", str(tmp_path / "data"))
    nowhere = (tmp_path / "no-mirror").as_uri() + "/"
    monkeypatch.setenv("XVAE_MNIST_URL", nowhere)
    monkeypatch.setenv("XVAE_FASHION_MNIST_URL", nowhere)
    vae = xvae.VAE(xvae.VAESpec(input_dim=fuzzkit.INPUT_DIM, hidden=fuzzkit.HIDDEN, latents=fuzzkit.LATENTS),
                   backend=fuzz_backend, seed=0)
    clf = xvae.Classifier(xvae.ClassifierSpec(input_dim=fuzzkit.INPUT_DIM, hidden=fuzzkit.HIDDEN,
                                              outputs=fuzzkit.CLASSES), backend=fuzz_backend, seed=0)
    binary = xvae.Classifier(xvae.ClassifierSpec(input_dim=fuzzkit.INPUT_DIM), backend=fuzz_backend, seed=0)
    box = fuzzkit.make_sandbox(tmp_path, vae)
    for note in box.notes:
        if note not in NOTED:
            NOTED.add(note)
            warnings.warn(f"fuzz sandbox: {note}", stacklevel=1)  # shown in pytest's warnings summary
    yield fuzzkit.Context(fuzz_backend, box, vae, clf, binary)
    fuzzkit.give_back_permissions(tmp_path)

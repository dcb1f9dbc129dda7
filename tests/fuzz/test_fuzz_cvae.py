"""Issue 12: a conditional VAE's labels (`y`) fuzzed through every method that takes them.

`test_fuzz_api` walks the public API with a plain VAE; the labelled paths (one-hot
conversion, chunking with y, the seam's "y") need a CVAE. Each call must return or raise
an xvae error, never another exception (CI: derandomized, `fuzzkit.CI_EXAMPLES` per method).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xvae

import fuzzkit

CLASSES = 3
X = np.random.default_rng(0).random((5, fuzzkit.INPUT_DIM)).astype(np.float32)
LABELS = st.one_of(st.sampled_from(fuzzkit.SCALARS), fuzzkit.arrays((1, CLASSES, 5)),
                   st.lists(st.integers(-3, 5), min_size=0, max_size=7), st.sampled_from(fuzzkit._callable_pool()))
CALLS = {
    "fit": lambda m, y: m.fit(X, y, epochs=1, batch_size=4, progress=False),
    "fit(validation_data)": lambda m, y: m.fit(X, np.arange(5) % CLASSES, epochs=1, batch_size=4, progress=False,
                                               validation_data=(X[:2], y)),
    "evaluate": lambda m, y: m.evaluate(X, y),
    "encode": lambda m, y: m.encode(X, y, batch_size=2),
    "decode": lambda m, y: m.decode(np.zeros((5, fuzzkit.LATENTS), np.float32), y, batch_size=2),
    "reconstruct": lambda m, y: m.reconstruct(X, y),
    "sample": lambda m, y: m.sample(5, y=y),
    "log_likelihood": lambda m, y: m.log_likelihood(X, y=y, k=3, batch_size=4),
    "active_units": lambda m, y: m.active_units(X, y=y),
}


@pytest.mark.parametrize("method", CALLS)
def test_cvae_labels_answer_with_xvae_errors(method: str) -> None:
    cvae = xvae.VAE(xvae.VAESpec(input_dim=fuzzkit.INPUT_DIM, hidden=fuzzkit.HIDDEN, latents=fuzzkit.LATENTS,
                                 conditions=CLASSES), backend="numpy", seed=0)
    escapes: list[Any] = []

    @settings(max_examples=fuzzkit.CI_EXAMPLES * 2, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(LABELS)
    def run(y: Any) -> None:
        escape = fuzzkit.guarded_call(f"VAE.{method}", CALLS[method], [cvae, y], {})
        if escape is not None:
            escapes.append(escape)

    run()
    assert not escapes, "\n".join(map(str, escapes[:8]))

"""Issue 15, item 2: a request whose arrays cannot fit is a ConfigError saying the size, before allocating.

"Before allocating" is measured with tracemalloc (NumPy reports its buffers to it): the
refused call allocates almost nothing. The threshold is tested with the available memory
patched down, so the same checks hold on any machine.
"""

from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pytest

import xvae
from xvae import _memory

#: What a refused call may allocate: its error message and bookkeeping, never the arrays.
REFUSED_CALL_BYTES = 1 << 20


@pytest.fixture(scope="module")
def vae():
    return xvae.VAE(xvae.VAESpec(input_dim=4, hidden=(3,), latents=2), backend="numpy")


@pytest.fixture(scope="module")
def clf():
    return xvae.Classifier(xvae.ClassifierSpec(input_dim=4, outputs=3), backend="numpy")


def huge(width: int, dtype=np.float32) -> np.ndarray:
    """10^10 rows that take no memory (a broadcast view): converting them would take 10^10 * width * 4 bytes."""
    return np.broadcast_to(np.asarray(0.5, dtype), (10**10, width))


def refused(call) -> str:
    """Run `call`, which must raise ConfigError after allocating (almost) nothing; the message."""
    tracemalloc.start()
    try:
        with pytest.raises(xvae.ConfigError) as info:
            call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < REFUSED_CALL_BYTES, f"allocated {peak} bytes before refusing"
    message = str(info.value)
    assert re.search(r"needs about ([\d.e+]+ [KMGTPE]iB|10\^\d+ bytes) of memory, but only [\d.]+ [KMGTPE]?i?B", message), message
    return message


@pytest.mark.parametrize(("what", "call"), [
    ("sample(n=1,000,000,000,000)", lambda vae, clf: vae.sample(10**12)),
    ("sample(n=10,000,000,000)", lambda vae, clf: vae.sample(10**10, binary=True)),
    ("checking z of shape (10000000000, 2)", lambda vae, clf: vae.decode(huge(2))),
    ("checking x of shape (10000000000, 4) (float64)", lambda vae, clf: vae.encode(huge(4, np.float64))),
    ("checking x of shape (10000000000, 4)", lambda vae, clf: vae.reconstruct(huge(4))),
    ("checking x of shape (10000000000, 4)", lambda vae, clf: vae.evaluate(huge(4), batch_size=10**12)),
    ("checking x of shape (10000000000, 4)", lambda vae, clf: vae.fit(huge(4), batch_size=10**12, progress=False)),
    ("checking x of shape (10000000000, 4)", lambda vae, clf: clf.predict(huge(4))),
    ("checking x of shape (10000000000, 4)", lambda vae, clf: clf.evaluate(huge(4), np.broadcast_to(np.int64(0), (10**10,)))),
    ("binarize of an array of shape (10000000000, 4)", lambda vae, clf: xvae.datasets.binarize(huge(4), "static")),
    ("binary_cross_entropy on shape (10000000000, 4)",
     lambda vae, clf: xvae.losses.binary_cross_entropy(huge(4), 0.5)),
])
def test_requests_too_large_for_memory(vae, clf, what, call):
    message = refused(lambda: call(vae, clf))
    assert message.startswith(what), message


@pytest.mark.parametrize("spec", [
    xvae.VAESpec(input_dim=784, hidden=(10**9,), latents=20),       # billions of weights
    xvae.ClassifierSpec(input_dim=10**12),                           # a trillion inputs
    xvae.VAESpec(input_dim=4, hidden=(10**30,), latents=2),          # beyond any machine
])
def test_a_model_whose_weights_cannot_fit_is_refused_before_initialising(spec):
    cls = xvae.VAE if isinstance(spec, xvae.VAESpec) else xvae.Classifier
    message = refused(lambda: cls(spec, backend="numpy"))
    assert re.match(rf"A {spec.kind} with [\d,]+ weights needs about", message), message
    assert "use smaller input_dim, hidden widths" in message


def test_the_threshold_is_the_memory_available_now(vae, monkeypatch):
    """Patch the available memory down to 100 MiB: 3 million samples (206 MiB) no longer fit, 1000 do."""
    monkeypatch.setattr(_memory, "available_bytes", lambda: 100 << 20)
    message = refused(lambda: vae.sample(3_000_000))
    # 3e6 rows x (2 latents x 4 bytes + 4 outputs x 16 bytes: chunks, concatenation, float64 sigmoid)
    assert "needs about 206 MiB" in message and "only 100 MiB is available" in message, message
    assert vae.sample(1000).shape == (1000, 4)
    monkeypatch.setattr(_memory, "available_bytes", lambda: None)  # an OS that does not say: no refusal
    assert vae.sample(1000).shape == (1000, 4)


def test_a_huge_batch_size_is_not_a_huge_allocation(vae, clf):
    """evaluate/predict clip the batch to the data: batch_size=10**12 on 3 rows is fine, and finite."""
    x = np.full((3, 4), 0.5, np.float32)
    result = vae.evaluate(x, batch_size=10**12)
    assert all(np.isfinite(v) for v in result.values()), result
    assert vae.encode(x, batch_size=10**12)[0].shape == (3, 2)
    assert clf.predict(x, batch_size=10**12).shape == (3, 3)


def test_available_bytes_reads_the_os():
    available = _memory.available_bytes()
    assert available is None or available > 0
    assert _memory.human(1536) == "1.5 KiB" and _memory.human(7.28 * 2**40) == "7.28 TiB"
    assert _memory.human(100) == "100 bytes"
    assert _memory.human(72 * 10**400) == "10^401 bytes"  # beyond float64 (sample(n=10**400))


def test_a_count_beyond_float64_is_refused_too(vae):
    """Found by the full fuzz run: the message itself overflowed for n=10**400."""
    message = refused(lambda: vae.sample(10**400))
    assert "needs about 10^4" in message, message

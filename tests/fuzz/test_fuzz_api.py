"""Issue 15: every public call answers bad input with an xvae error, never another exception, never a hang.

For each public callable (found by `fuzzkit.public_targets`: xvae.__all__, the public
submodules' __all__, the public methods of the public classes) hypothesis draws arguments
that bind to its signature from a mix of fitting and bad values, and the call must return
or raise an `xvae.XVAEError`. Anything else is an escape; all escapes of a callable are
collected and reported together (type, message, the call), so one run shows every class.

Normal suite: numpy backend, `fuzzkit.CI_EXAMPLES` calls per callable, derandomized.
Opt-in: ``XVAE_FUZZ=full python -m pytest tests/fuzz`` runs ~10,000 calls per installed
backend (``XVAE_FUZZ_BACKENDS=jax`` picks some; ``XVAE_FUZZ_REPORT=out.json`` keeps counts).
Calls that bind wrongly (a missing argument, an unknown keyword) are not drawn: Python
answers those with TypeError before any xvae code runs.
"""

from __future__ import annotations

import math
import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import xvae

import conftest
import fuzzkit

TARGETS = fuzzkit.public_targets()
#: A callable without parameters runs once (hypothesis has nothing to vary); the others share the budget.
_VARIED = sum(1 for t in TARGETS if t.signature() and t.signature().parameters) or 1
EXAMPLES = math.ceil((fuzzkit.FULL_CALLS - (len(TARGETS) - _VARIED)) / _VARIED) if fuzzkit.FULL else fuzzkit.CI_EXAMPLES
SETTINGS = settings(max_examples=EXAMPLES, derandomize=not fuzzkit.FULL, database=None, deadline=None,
                    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


def test_every_public_callable_is_fuzzed():
    """The API is discovered, not listed: the suite covers what the package exports."""
    names = {t.name for t in TARGETS}
    for must in ("VAE", "VAE.fit", "VAE.sample", "VAE.set_weights", "VAE.save", "Classifier.predict", "load",
                 "VAESpec", "spec_from_json", "datasets.load", "Adam", "SGD.update_reference",
                 "ModelCheckpoint", "EarlyStopping.on_epoch_end", "History.from_json", "backends.get"):
        assert must in names, f"{must} is not fuzzed; found {sorted(names)}"
    assert all(t.signature() is not None for t in TARGETS), [t.name for t in TARGETS if t.signature() is None]
    public = {n for n in xvae.__all__ if callable(getattr(xvae, n)) and not fuzzkit._is_error(getattr(xvae, n))}
    assert public - names <= set(fuzzkit.EXCLUDED), public - names


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_bad_input_raises_an_xvae_error(ctx, target):
    sig = target.signature()
    instance = {target.owner: fuzzkit.instance_of(target.owner, ctx)} if target.owner else {}
    fn = fuzzkit.bound(target, instance)
    read_only = target.name in fuzzkit.READ_ONLY
    escapes: list[fuzzkit.Escape] = []
    calls = 0

    @SETTINGS
    @given(call=fuzzkit.call_arguments(sig, ctx, read_only))
    def run(call):
        nonlocal calls
        calls += 1
        escape = fuzzkit.guarded_call(target.name, fn, *call)
        if escape is not None:
            escapes.append(escape)

    before = fuzzkit.OUTCOMES.copy()
    run()
    conftest.record(ctx.backend, escapes, calls, conftest.outcomes_since(before))
    distinct = {(e.error, e.message): e for e in escapes}
    assert not escapes, (f"{len(escapes)} of {calls} calls of {target.name} on {ctx.backend!r} escaped as "
                         f"non-xvae errors ({len(distinct)} distinct):\n" + "\n".join(map(str, list(distinct.values())[:12])))


# -- the examples, and the odd paths one by one ------------------------------------

@pytest.mark.parametrize("path", ["", ".", "/", "//", "run\0.xvae", 3, None, b""], ids=repr)
def test_load_of_a_path_that_cannot_be_a_checkpoint(ctx, path):
    with pytest.raises(xvae.CheckpointError) as info:
        xvae.load(path)
    assert "checkpoint" in str(info.value).lower()


def test_every_odd_path_is_a_checkpoint_error(ctx):
    """load and save of each odd path of the sandbox: a CheckpointError naming it, or success."""
    box = ctx.sandbox
    loadable = {str(box.root / "good.xvae")}
    if os.geteuid() == 0:
        loadable.add(str(box.root / "unreadable.xvae"))  # root reads through chmod 000
    either = {str(box.root / "ckpts")}  # a folder of epoch-N checkpoints: issue 16 may load its latest
    for path in box.writable + box.read_only:
        key = os.fsdecode(path)
        if key in either:
            continue
        if key in loadable:
            assert xvae.load(path).spec == ctx.vae.spec
            continue
        with pytest.raises(xvae.CheckpointError):
            xvae.load(path)
    for path in ("", "/", box.root / "file.txt", box.root / "file.txt" / "below", box.root / "loop_a",
                 box.root / ("x" * 300), "run\0.xvae"):
        with pytest.raises(xvae.CheckpointError):
            ctx.vae.save(path)


def test_unreadable_files_are_checkpoint_errors(ctx):
    """chmod 000 (as a user) or, as root, a metadata file whose read fails with EIO."""
    if os.geteuid() != 0:
        with pytest.raises(xvae.CheckpointError):
            xvae.load(ctx.sandbox.root / "unreadable.xvae")
    else:
        with pytest.raises(xvae.CheckpointError, match="Could not read|not valid JSON|No checkpoint"):
            xvae.load(ctx.sandbox.root / "unreadable_as_root.xvae")


def test_a_backend_that_is_not_a_name(ctx):
    import numpy as np

    with pytest.raises(xvae.BackendNotFoundError, match="A backend is named by a string"):
        xvae.VAE(ctx.vae.spec, backend=np.array([1, 2]))
    with pytest.raises(xvae.BackendNotFoundError, match="Unknown backend ''"):
        xvae.VAE(ctx.vae.spec, backend="")


def test_sample_beyond_memory_is_refused(ctx):
    with pytest.raises(xvae.ConfigError, match=r"sample\(n=1,000,000,000,000\) .* needs about .* TiB"):
        ctx.vae.sample(10**12)


def test_the_guard_reports_escapes_and_hangs():
    """The harness itself: an XVAEError passes, another error or a call past its deadline is an escape."""
    import time

    def raises(error):
        raise error

    assert fuzzkit.guarded_call("ok", raises, [xvae.ConfigError("bad")], {}) is None
    escape = fuzzkit.guarded_call("boom", raises, [ValueError("no")], {})
    assert escape is not None and escape.error == "ValueError" and escape.message == "no"
    hang = fuzzkit.guarded_call("sleep", time.sleep, [30], {}, timeout_s=0.2)
    assert hang is not None and hang.error == "hang" and "0.2 s" in hang.message

"""The fuzz suite's machinery: what the public API is, what to throw at it, and the guarded call.

The API is found, not listed: every name in ``xvae.__all__`` (and in the ``__all__`` of the
public submodules it names), every public method of the public classes. Arguments come from
each callable's signature: a parameter gets either a value that fits its name (``x``: rows of
the model's width; ``epochs``: 1 or 2; ``path``: a checkpoint) or one from a pool of bad and
borderline values (wrong types, NaN/inf, empty, negative and huge sizes, wrong shapes and
dtypes, odd paths). A new argument on another branch is fuzzed with the pool as soon as it
exists, and with fitting values once its name is added to `VALID`.

Modes (``XVAE_FUZZ``): unset, CI: the numpy backend, `CI_EXAMPLES` examples per callable,
derandomized (the same calls every run, so it cannot flake). ``XVAE_FUZZ=full``: every
installed backend (or ``XVAE_FUZZ_BACKENDS=jax,tf``), about `FULL_CALLS` calls per backend,
random; ``XVAE_FUZZ_REPORT=file.json`` writes the counts.
"""

from __future__ import annotations

import inspect
import math
import os
import signal
import stat
import types
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import xvae

FULL = os.environ.get("XVAE_FUZZ", "").lower() == "full"
#: Examples per callable in the normal suite: ~70 callables x 12 keeps the module near 30 s.
CI_EXAMPLES = int(os.environ.get("XVAE_FUZZ_EXAMPLES", "12"))
#: Calls per backend in the opt-in mode, spread evenly over the callables.
FULL_CALLS = int(os.environ.get("XVAE_FUZZ_CALLS", "10000"))
#: A call that takes longer is a hang (the first call of a JIT backend compiles: seconds).
CALL_TIMEOUT_S = float(os.environ.get("XVAE_FUZZ_TIMEOUT_S", "60"))

#: Small model dimensions: every valid array the fuzzer draws fits them.
INPUT_DIM, LATENTS, HIDDEN, CLASSES = 4, 2, (3,), 3

#: Public names that are not fuzzed, with the reason (shown by test_every_public_callable_is_fuzzed).
EXCLUDED = {
    "hookimpl": "pluggy's HookimplMarker, re-exported for plugin authors: not xvae code",
    "backends.reset": "forgets the registry: state management for tests, takes no arguments",
    "backends.available": "imports every installed framework: takes no arguments (called by the fixture)",
}


#: Public submodules not walked yet, with the reason (shown by the coverage test's message).
EXCLUDED_MODULES: dict[str, str] = {}


def fuzz_backends() -> list[str]:
    """numpy in CI; every installed backend (or $XVAE_FUZZ_BACKENDS) in the full mode."""
    chosen = os.environ.get("XVAE_FUZZ_BACKENDS")
    if chosen:
        return [b.strip() for b in chosen.split(",") if b.strip()]
    return xvae.backends.available() if FULL else ["numpy"]


# -- the API -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """One public callable: `owner` is a class whose instance binds it (None: call it as is)."""

    name: str
    obj: Any
    owner: type | None = None

    def signature(self) -> inspect.Signature | None:
        try:
            sig = inspect.signature(self.obj)
        except (TypeError, ValueError):
            return None
        params = list(sig.parameters.values())
        if self.owner is not None and not isinstance(inspect.getattr_static(self.owner, self.obj.__name__),
                                                     (staticmethod, classmethod)):
            params = params[1:]  # self
        return sig.replace(parameters=params)


def _is_error(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseException)


def public_targets() -> list[Target]:
    """Every public callable: names in xvae.__all__ (and submodules'), and public methods."""
    seen: set[int] = set()
    out: list[Target] = []

    def add(name: str, obj: Any, owner: type | None = None) -> None:
        key = id(obj) if owner is None else hash((id(owner), name))
        if key in seen or name in EXCLUDED:
            return
        seen.add(key)
        out.append(Target(name, obj, owner))

    def walk(prefix: str, module: types.ModuleType) -> None:
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            full = f"{prefix}{name}"
            if isinstance(obj, types.ModuleType):
                if obj.__name__.startswith("xvae.") and name not in EXCLUDED_MODULES:
                    walk(f"{name}.", obj)
                continue
            if _is_error(obj) or not callable(obj):
                continue  # error classes take any message; constants are not callable
            add(full if not isinstance(obj, type) else obj.__name__, obj)
            if isinstance(obj, type):
                for meth_name, meth in inspect.getmembers(obj):
                    if meth_name.startswith("_") or not callable(meth) or isinstance(meth, type):
                        continue
                    if not getattr(meth, "__module__", "").startswith("xvae"):
                        continue
                    add(f"{obj.__name__}.{meth_name}", meth, obj)

    walk("", xvae)
    return sorted(out, key=lambda t: t.name)


# -- the sandbox of odd paths --------------------------------------------------------------

@dataclass
class Sandbox:
    """A folder with the odd paths; the fuzz runs with it as the working directory."""

    root: Path
    #: paths safe to pass anywhere: writing to them stays inside root (the working directory)
    writable: list[Any] = field(default_factory=list)
    #: paths only passed where xvae reads: "/", "..", the process's memory file, a FIFO
    read_only: list[Any] = field(default_factory=list)
    #: why a case could not be built as intended (shown in the test output)
    notes: list[str] = field(default_factory=list)


def make_sandbox(root: Path, model: Any) -> Sandbox:
    """Build the odd paths under `root` (a checkpoint of `model` among them)."""
    box = Sandbox(root)
    (root / "file.txt").write_text("not a checkpoint\n")
    (root / "empty_dir").mkdir()
    (root / "loop_a").symlink_to(root / "loop_b")
    (root / "loop_b").symlink_to(root / "loop_a")
    model.save(root / "good.xvae")
    model.save(root / "corrupt.xvae")
    (root / "corrupt.xvae" / "weights.safetensors").write_bytes(b"\0" * 16)
    ckpts = root / "ckpts"
    ckpts.mkdir()
    model.save(ckpts / "epoch-0001.xvae")
    unreadable = root / "unreadable.xvae"
    model.save(unreadable)
    for f in unreadable.iterdir():
        f.chmod(0)
    unreadable.chmod(0)
    if os.geteuid() == 0:
        box.notes.append("running as root: chmod 000 does not stop reads, so 'unreadable' is also emulated "
                         "by a checkpoint whose xvae.json is a link to /proc/self/mem (reading it fails with EIO)")
        emulated = root / "unreadable_as_root.xvae"
        model.save(emulated)
        (emulated / "xvae.json").unlink()
        (emulated / "xvae.json").symlink_to("/proc/self/mem")
        box.read_only.append(emulated)
    box.writable += [
        "", ".", root, root / "file.txt", root / "file.txt" / "below", root / "empty_dir",
        root / "loop_a", root / "loop_a" / "below", root / "missing" / "deep" / "run.xvae", root / "new.xvae",
        root / "good.xvae", root / "corrupt.xvae", root / "ckpts", unreadable, str(root / "good.xvae"),
        os.fsencode(root / "good.xvae"), "run\0.xvae", "-", " ", "ünï©ødé.xvae", "x" * 300,
    ]
    os.mkfifo(root / "fifo")  # reading it would block: xvae must look before it reads
    box.read_only += ["/", "/proc/self/mem", "/dev/null", "//", "/proc", "..", root / "fifo"]
    return box


# -- values --------------------------------------------------------------------------------

def _callable_pool() -> list[Any]:
    """Callables that accept any arguments and never raise themselves (user code is not fuzzed)."""
    return [lambda *a, **k: None, lambda *a, **k: -1.0, lambda *a, **k: math.nan, lambda *a, **k: "0.5",
            lambda *a, **k: 0.5]


SCALARS: list[Any] = [
    None, True, False, 0, 1, -1, 2, 3, -3, 10**12, -10**12, 2**63, 10**30, -(10**30), 10**400, 0.0, -0.0, 0.5, 1.5,
    -2.5, 1e-300, 5e-324, 1e308, math.nan, math.inf, -math.inf, np.float32(np.nan), np.float64(np.inf),
    np.float16(65504), np.int64(-1), np.int8(3), np.uint64(2**64 - 1), np.bool_(True), np.int32(0),
    np.float32(0.5), 1 + 2j, np.complex64(1j), "", " ", "a", "nan", "1", "-1", "relu", "adam", "vae",
    "\0", "é", "x" * 1000, b"", b"bytes", bytearray(b"x"), Ellipsis, NotImplemented, slice(None), object(),
    type, int, np.float32, [], (), {}, set(), frozenset(), [1, 2], (1, 2), [[1]], {"a": 1}, {"kind": None},
    [None], [math.nan], range(3), iter([1, 2]), np.datetime64("2020-01-01"), np.timedelta64(1, "D"),
]
#: For names that count work (epochs, samples): no huge counts, they would really run.
_HUGE = {10**12, -(10**12), 2**63, 10**30, -(10**30), 10**400, 1e308, np.uint64(2**64 - 1)}
#: For path-like names: no small non-negative ints, which open() takes as file descriptors.
_FD_LIKE = {0, 1, 2, 3, True, False, np.int8(3), np.int32(0), np.bool_(True)}

DTYPES = [np.float32, np.float64, np.float16, np.int8, np.int64, np.uint8, np.bool_, np.complex64,
          np.dtype("U3"), np.dtype("M8[D]")]


def arrays(widths: tuple[int, ...] = (INPUT_DIM, LATENTS, 1)) -> st.SearchStrategy[Any]:
    """Arrays of every kind: any dtype, rank 0-3, empty, NaN/inf, object, huge broadcast views."""
    any_shape = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
    fitting = st.tuples(st.integers(0, 4), st.sampled_from([*widths, *(w + 1 for w in widths)]))
    shaped = st.builds(lambda dt, shape: (dt, shape), st.sampled_from(DTYPES), st.one_of(any_shape, fitting))
    regular = shaped.flatmap(lambda ds: hnp.arrays(ds[0], ds[1]))
    huge = st.builds(lambda w, v: np.broadcast_to(np.asarray(v, np.float32), (10**10, w)),
                     st.sampled_from(widths), st.sampled_from([0.0, 0.5, np.nan]))
    objects = st.sampled_from([np.array([None, 1], dtype=object), np.array([[0.1] * INPUT_DIM], dtype=object),
                               np.empty((0, INPUT_DIM)), np.zeros((2, INPUT_DIM, 1)), np.zeros((1, 0))])
    ragged = st.sampled_from([[[0.1, 0.2], [0.3]], [[0.0] * INPUT_DIM, [0.0]], [["a"] * INPUT_DIM]])
    return st.one_of(regular, huge, objects, ragged)


def junk(name: str, sandbox: Sandbox, read_only: bool) -> st.SearchStrategy[Any]:
    """Bad and borderline values for any parameter `name`."""
    scalars = [v for v in SCALARS if not (name in WORK_NAMES and _in(v, _HUGE))]
    if is_path_name(name):
        scalars = [v for v in scalars if not _in(v, _FD_LIKE)]
    paths = sandbox.writable + (sandbox.read_only if read_only else [])
    return st.one_of(st.sampled_from(scalars), arrays(), st.sampled_from(paths), st.sampled_from(_callable_pool()))


def _in(value: Any, pool: set[Any]) -> bool:
    try:
        return any(type(value) is type(p) and value == p for p in pool)
    except (TypeError, ValueError):
        return False


WORK_NAMES = {"epochs", "n_samples", "patience"}


def is_path_name(name: str) -> bool:
    return "path" in name or "dir" in name or name in ("file", "checkpoint", "out", "directory")


@dataclass
class Context:
    """What valid values depend on: the backend, the sandbox and the models under test."""

    backend: str
    sandbox: Sandbox
    vae: Any
    clf: Any
    binary_clf: Any


def valid(name: str, ctx: Context) -> st.SearchStrategy[Any] | None:
    """Values that fit a parameter called `name`, or None if the name is not known."""
    make = VALID.get(name)
    return make(ctx) if make is not None else None


def _rows(width: int, low: float = 0.0, high: float = 1.0, ints: bool = False) -> st.SearchStrategy[Any]:
    n = st.integers(1, 4)
    if ints:
        return n.flatmap(lambda k: hnp.arrays(np.int64, (k,), elements=st.integers(0, CLASSES - 1)))
    elems = st.floats(low, high, width=32)
    return n.flatmap(lambda k: st.one_of(
        hnp.arrays(np.float32, (k, width), elements=elems),
        hnp.arrays(np.float64, (k, width), elements=st.floats(low, high)),
        hnp.arrays(np.uint8, (k, width), elements=st.integers(0, 1)),
        st.just(np.full((k, width), 0.5).tolist())))


def _weights(ctx: Context) -> st.SearchStrategy[Any]:
    w = ctx.vae.get_weights()
    first = next(iter(w))
    variants = [w, {k: v.astype(np.float64) for k, v in w.items()}, {k: v for k, v in w.items() if k != first},
                {**w, "extra.kernel": w[first]}, {**w, first: w[first][:1]}, {k: np.full_like(v, np.nan) for k, v in w.items()},
                {**w, first: w[first].tolist()}, ctx.clf.get_weights(), list(w.items()),
                {**w, first: [[0.1, 0.2], [0.3]]}, {**w, first: "abc"}, {**w, first: None},
                {**w, 5: 1, (1,): 2}, {**w, first: np.broadcast_to(np.float32(0), (10**10, 3))},
                {k: v.astype(np.float16) for k, v in w.items()}, {k: v[None] for k, v in w.items()}]
    return st.sampled_from(variants)


def _spec_dicts(ctx: Context) -> st.SearchStrategy[Any]:
    base = [ctx.vae.spec.to_dict(), ctx.clf.spec.to_dict(), ctx.vae.spec.encoder.to_dict(),
            xvae.optim.Adam().to_dict(), xvae.optim.SGD(momentum=0.9).to_dict(),
            {"history": {"loss": [1.0, None]}, "epoch": [1, 2], "params": {}}]
    def mutate(d: dict[str, Any], key_index: int, value: Any) -> dict[str, Any]:
        d = dict(d)
        key = sorted(d)[key_index % len(d)]
        if value is _DROP:
            d.pop(key)
        else:
            d[key] = value
        return d
    mutated = st.builds(mutate, st.sampled_from(base), st.integers(0, 9),
                        st.one_of(st.just(_DROP), st.sampled_from(SCALARS)))
    return st.one_of(st.sampled_from(base), mutated)


_DROP = object()


def _specs(ctx: Context) -> st.SearchStrategy[Any]:
    small = [ctx.vae.spec, ctx.clf.spec, ctx.binary_clf.spec, ctx.vae.spec.encoder]
    big = [xvae.VAESpec(input_dim=10**7, hidden=(10**7,), latents=2), xvae.ClassifierSpec(input_dim=10**12),
           xvae.VAESpec(input_dim=3, hidden=(10**6, 10**6), latents=10**6)]
    return st.sampled_from(small + big)


def _backend_names(ctx: Context) -> st.SearchStrategy[Any]:
    names = {ctx.backend, xvae.backends.info(ctx.backend).name.upper(), *xvae.backends.info(ctx.backend).aliases}
    return st.sampled_from(sorted(names) + ["caffe", "", " numpy", "NUMPY", "reference"])


def _callbacks(ctx: Context) -> st.SearchStrategy[Any]:
    cb = xvae.callbacks
    root = ctx.sandbox.root
    return st.sampled_from([[], (), [cb.EarlyStopping(monitor="loss", patience=0)], [cb.Callback()],
                            [cb.CSVLogger(root / "fit.csv")], [cb.JSONLogger(root / "fit.jsonl", append=True)],
                            [cb.ModelCheckpoint(root / "fit_ckpts", keep=1)], [cb.LambdaCallback()],
                            [cb.EarlyStopping(monitor="val_loss")], [cb.Callback, cb.Callback()]])


def _optimizers(ctx: Context) -> st.SearchStrategy[Any]:
    o = xvae.optim
    return st.sampled_from([None, o.Adam(), o.Adam(1e-2), o.SGD(0.01), o.SGD(0.1, momentum=0.9, nesterov=True),
                            o.SGD(1e30), o.Adam, "adam", {"kind": "adam"}])


VALID: dict[str, Callable[[Context], st.SearchStrategy[Any]]] = {
    "x": lambda c: _rows(INPUT_DIM),
    "z": lambda c: _rows(LATENTS, -3, 3),
    "y": lambda c: _rows(1, ints=True),
    "logits": lambda c: st.one_of(st.booleans(), _rows(INPUT_DIM, -5, 5)),
    "labels": lambda c: st.one_of(_rows(INPUT_DIM), _rows(1, ints=True)),
    "targets": lambda c: _rows(INPUT_DIM),
    "mean": lambda c: _rows(LATENTS, -3, 3), "logvar": lambda c: _rows(LATENTS, -3, 3),
    "per_example": lambda c: _rows(1), "mask": lambda c: _rows(1),
    "validation_data": lambda c: st.one_of(_rows(INPUT_DIM), st.tuples(_rows(INPUT_DIM), _rows(1, ints=True))),
    "epochs": lambda c: st.integers(1, 2), "n_samples": lambda c: st.integers(1, 2),
    "batch_size": lambda c: st.sampled_from([1, 2, 3, 1024, 10**12, None]),
    "steps_per_call": lambda c: st.integers(1, 3), "n": lambda c: st.integers(1, 4),
    "seed": lambda c: st.sampled_from([None, 0, 1, 2**32, 2**64 - 1]),
    "optimizer": _optimizers,
    "binarize": lambda c: st.sampled_from([None, "static", "dynamic"]),
    "mode": lambda c: st.sampled_from(["static", "dynamic", "min", "max", "auto"]),
    "beta": lambda c: st.sampled_from([None, 0, 0.5, 1.0, 4, lambda epoch: 0.5]),
    "callbacks": _callbacks,
    "backend": _backend_names, "to": _backend_names,
    "precision": lambda c: st.sampled_from(["highest", "fast", None]),
    "init": lambda c: st.sampled_from(["glorot_uniform", "lecun_normal", "torch_default"]),
    "device": lambda c: st.sampled_from([None, "cpu", "cuda:7", "tpu", "cpu:99"]),
    "spec": _specs,
    "weights": _weights, "grads": _weights,
    "state": lambda c: st.sampled_from([xvae.optim.Adam().init_state(c.vae.get_weights()), {}]),
    "data": _spec_dicts,
    "text": lambda c: st.one_of(_spec_dicts(c).map(lambda d: __import__("json").dumps(d, default=str)),
                                st.sampled_from(["", "{", "[]", "null", "1e999", '{"kind": "vae"}'])),
    "text_or_path": lambda c: st.one_of(st.sampled_from(c.sandbox.writable + c.sandbox.read_only),
                                        st.sampled_from(['{"history": {}}', "{", "[1]"])),
    "input_dim": lambda c: st.integers(1, 5), "latents": lambda c: st.integers(1, 3),
    "output_dim": lambda c: st.integers(1, 5), "outputs": lambda c: st.integers(1, 3),
    "hidden": lambda c: st.sampled_from([(), (3,), [2, 2], 3, (10**7,)]),
    "activation": lambda c: st.sampled_from(list(xvae._specs.ACTIVATIONS)),
    "likelihood": lambda c: st.just("bernoulli"),
    "encoder": lambda c: st.sampled_from([c.vae.spec.encoder, c.vae.spec.encoder.to_dict()]),
    "decoder": lambda c: st.sampled_from([c.vae.spec.decoder, c.vae.spec.decoder.to_dict()]),
    "name": lambda c: st.sampled_from(["digits", "mnist", "fashion_mnist", "Fashion-MNIST", "numpy", "jax"]),
    "split": lambda c: st.sampled_from(["train", "test", "all"]),
    "monitor": lambda c: st.sampled_from(["loss", "val_loss", "accuracy"]),
    "patience": lambda c: st.integers(0, 2), "min_delta": lambda c: st.sampled_from([0, 0.1]),
    "every": lambda c: st.integers(1, 2), "keep": lambda c: st.integers(1, 2),
    "model": lambda c: st.sampled_from([c.vae, c.clf]),
    "epoch": lambda c: st.integers(0, 3),
    "logs": lambda c: st.sampled_from([{"loss": 1.0}, {"loss": math.nan}, {}, {"val_loss": 0.5, "loss": 1.0},
                                       {"loss": 10**400}, {"loss": "1"}, {1: 1.0}, {"loss": np.float32(2)},
                                       {"accuracy": 0.5, "loss": -math.inf}]),
    "other": lambda c: st.just(xvae.History({"loss": [1.0]}, [3])),
    "history": lambda c: st.just({"loss": [1.0, 2.0]}),
    "params": lambda c: st.just({"epochs": 1}),
    "index": lambda c: st.sampled_from([slice(0, 3), np.arange(2), np.array([True] * 3 + [False] * 7), 0, [0, 1]]),
    "rng": lambda c: st.sampled_from([np.random.default_rng(0), None]),
    "lr": lambda c: st.sampled_from([1e-3, 0.1, 0]), "momentum": lambda c: st.sampled_from([0.0, 0.9]),
    "b1": lambda c: st.just(0.9), "b2": lambda c: st.just(0.999), "eps": lambda c: st.just(1e-8),
}
for _name in ("path", "directory", "data_dir", "checkpoint_dir", "explicit"):
    VALID[_name] = lambda c: st.sampled_from(c.sandbox.writable)


def argument(param: inspect.Parameter, ctx: Context, read_only: bool) -> st.SearchStrategy[Any]:
    """A value for one parameter: half the time one that fits its name (or its default's type)."""
    fitting = valid(param.name, ctx)
    if fitting is None and isinstance(param.default, bool):
        fitting = st.booleans()
    bad = junk(param.name, ctx.sandbox, read_only)
    return bad if fitting is None else st.one_of(fitting, bad)


def call_arguments(sig: inspect.Signature, ctx: Context, read_only: bool) -> st.SearchStrategy[tuple[list[Any], dict[str, Any]]]:
    """(args, kwargs) that bind to `sig`: required parameters always, optional ones sometimes."""
    @st.composite
    def draw(draw_: Any) -> tuple[list[Any], dict[str, Any]]:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        positional = True
        for p in sig.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            required = p.default is p.empty
            if not required and not draw_(st.booleans()):
                positional = False  # a skipped optional: the rest go by keyword
                continue
            value = draw_(argument(p, ctx, read_only))
            if p.kind is p.POSITIONAL_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD and positional and draw_(st.booleans())):
                args.append(value)
            else:
                positional = p.kind is p.POSITIONAL_ONLY
                kwargs[p.name] = value
        return args, kwargs
    return draw()


# -- the guarded call ----------------------------------------------------------------------

class CallTimedOut(BaseException):
    """Raised into a call that ran past CALL_TIMEOUT_S (a BaseException: `except Exception` cannot eat it)."""


@dataclass
class Escape:
    target: str
    error: str
    message: str
    call: str

    def __str__(self) -> str:
        return f"{self.target}: {self.error}: {self.message}\n    call: {self.call}"


def describe(args: list[Any], kwargs: dict[str, Any]) -> str:
    def short(v: Any) -> str:
        if isinstance(v, np.ndarray):
            return f"ndarray(shape={v.shape}, dtype={v.dtype})"
        text = repr(v)
        return text if len(text) < 120 else text[:117] + "..."
    return ", ".join([*map(short, args), *(f"{k}={short(v)}" for k, v in kwargs.items())])


def guarded_call(target: str, fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any],
                 timeout_s: float = CALL_TIMEOUT_S) -> Escape | None:
    """Call; None if it returned or raised an XVAEError, else the Escape (another error, or a hang)."""
    def alarm(signum: int, frame: Any) -> None:
        raise CallTimedOut(f"no answer after {timeout_s} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        fn(*args, **kwargs)
    except xvae.XVAEError:
        OUTCOMES["xvae error"] += 1
        return None
    except CallTimedOut as err:
        OUTCOMES["escape"] += 1
        return Escape(target, "hang", str(err), describe(args, kwargs))
    except Exception as err:  # noqa: BLE001 - what the suite looks for
        OUTCOMES["escape"] += 1
        first = (str(err).strip().splitlines() or [""])[0][:200]
        return Escape(target, type(err).__name__, first, describe(args, kwargs))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    OUTCOMES["returned"] += 1
    return None


#: How the guarded calls ended, over the whole session (reported per backend by conftest).
OUTCOMES: Counter[str] = Counter()


def bound(target: Target, instances: dict[type, Any]) -> Callable[..., Any]:
    """The callable to fuzz: the function itself, or the method bound to a live instance."""
    if target.owner is None:
        return target.obj
    return getattr(instances[target.owner], target.obj.__name__)


def instance_of(cls: type, ctx: Context) -> Any:
    """A valid instance of a public class, to call its methods on."""
    factory = INSTANCES.get(cls.__name__)
    if factory is not None:
        return factory(ctx)
    try:
        return cls()  # classes added later (on other branches) that build from defaults
    except Exception as err:  # noqa: BLE001 - say what to do instead of a bare TypeError
        raise LookupError(f"fuzzkit.INSTANCES has no factory for {cls.__name__}, and {cls.__name__}() fails "
                          f"({type(err).__name__}: {err}): add one so its methods are fuzzed.") from err


INSTANCES: dict[str, Callable[[Context], Any]] = {
    "VAE": lambda c: c.vae, "Classifier": lambda c: c.clf,
    "VAESpec": lambda c: c.vae.spec, "ClassifierSpec": lambda c: c.clf.spec,
    "EncoderSpec": lambda c: c.vae.spec.encoder, "DecoderSpec": lambda c: c.vae.spec.decoder,
    "History": lambda c: xvae.History({"loss": [2.0, 1.0]}, [1, 2], {"epochs": 2}),
    "Dataset": lambda c: xvae.datasets.load("digits", "test").subset(slice(0, 10)),
    "ModelCheckpoint": lambda c: xvae.callbacks.ModelCheckpoint(c.sandbox.root / "cb_ckpts", keep=1),
    "CSVLogger": lambda c: xvae.callbacks.CSVLogger(c.sandbox.root / "cb.csv"),
    "JSONLogger": lambda c: xvae.callbacks.JSONLogger(c.sandbox.root / "cb.jsonl"),
    "EarlyStopping": lambda c: xvae.callbacks.EarlyStopping(monitor="loss"),
    "OptimizerSpec": lambda c: xvae.optim.Adam(), "LossSpec": lambda c: xvae.losses.BernoulliELBO(),
    "BackendInfo": lambda c: xvae.backends.info(c.backend),
    "SGD": lambda c: xvae.optim.SGD(0.1, momentum=0.9),
    "LearningRateScheduler": lambda c: xvae.callbacks.LearningRateScheduler(lambda epoch, lr: lr),
}
if hasattr(xvae, "schedules"):  # issue 10's schedules: one valid instance of each
    _S = xvae.schedules
    INSTANCES.update({
        "Schedule": lambda c: _S.CosineDecay(peak=1e-3, decay_steps=100, warmup_steps=10),
        "Constant": lambda c: _S.Constant(1e-3), "LinearWarmup": lambda c: _S.LinearWarmup(peak=1.0, warmup_steps=10),
        "CosineDecay": lambda c: _S.CosineDecay(peak=1e-3, decay_steps=100, warmup_steps=10),
        "ExponentialDecay": lambda c: _S.ExponentialDecay(1e-3, 0.5, 10),
        "PiecewiseConstant": lambda c: _S.PiecewiseConstant(boundaries=(10, 20), values=(1e-3, 1e-4, 1e-5)),
    })
    VALID.update({
        "step": lambda c: st.one_of(st.integers(0, 10**6), st.sampled_from([np.arange(5), [0, 1, 2]])),
        "peak": lambda c: st.sampled_from([1e-3, 1.0]), "warmup_steps": lambda c: st.integers(0, 10),
        "decay_steps": lambda c: st.integers(11, 100), "rate": lambda c: st.sampled_from([0.5, 0.9]),
        "boundaries": lambda c: st.sampled_from([(10, 20), [5]]), "values": lambda c: st.sampled_from([(1.0, 0.5, 0.1), [1, 2]]),
        "value": lambda c: st.sampled_from([1e-3, 0.0]),
        "lr": lambda c: st.sampled_from([1e-3, 0.1, 0, _S.CosineDecay(peak=1e-3, decay_steps=100)]),
        "beta": lambda c: st.sampled_from([None, 0, 0.5, 1.0, 4, lambda epoch: 0.5, _S.LinearWarmup(peak=1.0, warmup_steps=4)]),
    })

_L = xvae.layers  # layer specs: valid instances take INPUT_DIM-wide rows, or (6, 6, 1) images
_LAYER_X = np.linspace(0.0, 1.0, 2 * INPUT_DIM).reshape(2, INPUT_DIM)
_DENSE_PARAMS = {"kernel": np.full((INPUT_DIM, 3), 0.1), "bias": np.zeros(3)}
INSTANCES.update({
    "Layer": lambda c: _L.Dense(3), "Dense": lambda c: _L.Dense(3, "tanh"),
    "Conv2D": lambda c: _L.Conv2D(2, 3, stride=2), "Conv2DTranspose": lambda c: _L.Conv2DTranspose(2, 3, stride=2),
    "Reshape": lambda c: _L.Reshape((2, 2)), "Dropout": lambda c: _L.Dropout(0.5),
    "Placed": lambda c: _L.place("fuzz", (INPUT_DIM,), [_L.Dense(3)], ["dense"])[0],
})
VALID.update({
    "input_shape": lambda c: st.sampled_from([(INPUT_DIM,), (6, 6, 1), (2, 2), [INPUT_DIM]]),
    "params": lambda c: st.sampled_from([{"epochs": 1}, _DENSE_PARAMS, {}]),
    "cache": lambda c: st.sampled_from([_L.Dense(3).forward(_DENSE_PARAMS, _LAYER_X)[1],
                                        _L.Dense(3).forward(_DENSE_PARAMS, _LAYER_X[:1])[1]]),
    "dy": lambda c: _rows(3, -1, 1),
    "layers": lambda c: st.sampled_from([[_L.Dense(3)], [_L.Dense(3), _L.Dropout(0.5)], []]),
    "names": lambda c: st.sampled_from([["a"], ["a", "b"], []]),
    "owner": lambda c: st.sampled_from(["encoder", ""]),
})

#: Callables that only read files, by exact name: they may also get "/", /proc paths and a FIFO.
#: (Not datasets.load: it downloads into data_dir, and nothing may be created outside the sandbox.)
READ_ONLY = {"load", "spec_from_json", "History.from_json", "CSVLogger.read", "JSONLogger.read",
             "datasets.data_dir"}


def give_back_permissions(root: Path) -> None:
    """Let pytest delete the sandbox: restore the permissions the unreadable case took away."""
    for top in (root, root / "unreadable.xvae"):
        if top.exists():
            top.chmod(top.stat().st_mode | stat.S_IRWXU)
    for path in root.rglob("*"):
        try:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IRWXU)
        except OSError:
            pass

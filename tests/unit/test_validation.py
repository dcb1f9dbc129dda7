"""Bad input, clear error (issue 4.3): each case an XVAEError naming the argument and the fix,
answered by the validation layer before any backend is touched; then property-based tests
(hypothesis) that throw random shapes, dtypes and values at the public API and accept only
success or an XVAEError."""

from __future__ import annotations

import copy
import re
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import xvae
from xvae import _validate
from xvae.optim import SGD, Adam

pytestmark = pytest.mark.filterwarnings("ignore:batch_size=.* is larger than the data:UserWarning")

VAE_SPEC = xvae.VAESpec(input_dim=3, hidden=(4,), latents=2)
BIN_SPEC = xvae.ClassifierSpec(input_dim=3, hidden=(4,), outputs=1)
CAT_SPEC = xvae.ClassifierSpec(input_dim=3, hidden=(4,), outputs=3)
X = np.random.default_rng(0).random((6, 3), dtype=np.float32)
Y_BIN = np.array([0, 1, 0, 1, 1, 0])
Y_CAT = np.array([0, 1, 2, 0, 1, 2])


class BackendTouched(BaseException):
    """Raised by a guard standing in for the backend: validation let the call through."""


class Guard:
    def __getattr__(self, name: str) -> Any:
        raise BackendTouched(name)


def guarded(model: xvae.VAE | xvae.Classifier) -> Any:
    """A copy of `model` whose backend program raises BackendTouched on any use."""
    other = copy.copy(model)
    other._program = Guard()
    other._backend = Guard()
    return other


def vae() -> xvae.VAE:
    return xvae.VAE(VAE_SPEC, backend="numpy", seed=0)


def clf(spec: xvae.ClassifierSpec = CAT_SPEC) -> xvae.Classifier:
    return xvae.Classifier(spec, backend="numpy", seed=0)


# -- each bad input: its class, its message, and no backend touched ----------------------

BAD: list[tuple[str, Callable[[Any], Any], type[xvae.XVAEError], str]] = [
    # (id, call on a model, error class, message pattern: the argument and the fix)
    ("width", lambda m: m.fit(np.zeros((4, 5), np.float32)), xvae.DataError,
     r"x must have 3 columns \(the spec's input_dim\)\. Received shape \(4, 5\)"),
    ("rank-3", lambda m: m.fit(np.zeros((4, 1, 3), np.float32)), xvae.DataError,
     r"x must have rank 2, shape \(n, 3\)\. Received shape \(4, 1, 3\)\. Flatten images first: x\.reshape"),
    ("rank-1", lambda m: m.encode(np.zeros(3, np.float32)), xvae.DataError,
     r"x must have rank 2.*One example\? Use x\[None, :\]"),
    ("rank-0", lambda m: m.encode(np.float32(1)), xvae.DataError, r"x must have rank 2.*Received shape \(\)"),
    ("strings", lambda m: m.fit([["a", "b", "c"]]), xvae.DataError,
     r"x must be a numeric array of shape \(n, 3\)\. Received dtype <U1: convert it with np\.asarray"),
    ("objects", lambda m: m.fit(np.array([[1, None, 3]], dtype=object)), xvae.DataError,
     r"Received dtype object"),
    ("ragged", lambda m: m.fit([[1, 2, 3], [1, 2]]), xvae.DataError, r"could not be converted"),
    ("complex", lambda m: m.fit(np.ones((2, 3), np.complex64)), xvae.DataError, r"x must be real-valued"),
    ("nan", lambda m: m.fit(np.array([[0.0, np.nan, 1.0]])), xvae.DataError,
     r"x contains 1 NaN or infinite value\(s\): clean or impute them"),
    ("inf", lambda m: m.evaluate(np.array([[0.0, np.inf, 1.0]])), xvae.DataError, r"NaN or infinite"),
    ("float32-overflow", lambda m: m.fit(np.full((2, 3), 1e300)), xvae.DataError,
     r"beyond float32's range.*Rescale it"),
    ("empty", lambda m: m.fit(np.zeros((0, 3), np.float32)), xvae.DataError,
     r"x is empty \(shape \(0, 3\)\): pass at least one example"),
    ("batch-size-0", lambda m: m.fit(X, batch_size=0), xvae.ConfigError,
     r"batch_size must be a positive integer\. Received: batch_size=0"),
    ("batch-size-float", lambda m: m.fit(X, batch_size=32.0), xvae.ConfigError, r"batch_size must be a positive"),
    ("epochs-0", lambda m: m.fit(X, epochs=0), xvae.ConfigError, r"epochs must be a positive integer"),
    ("optimizer-string", lambda m: m.fit(X, optimizer="adam"), xvae.ConfigError,
     r"optimizer must be an xvae\.optim spec such as xvae\.optim\.Adam\(1e-3\).*Received: 'adam'"),
    ("binarize", lambda m: m.fit(X, binarize="otsu"), xvae.ConfigError,
     r"binarize must be one of None, 'static', 'dynamic'\. Received: binarize='otsu'"),
    ("binarize-array", lambda m: m.fit(X, binarize=np.array([1, 2])), xvae.ConfigError, r"binarize must be one of"),
    ("validation-width", lambda m: m.fit(X, validation_data=np.zeros((2, 4))), xvae.DataError,
     r"validation_data must have 3 columns"),
    ("z-width", lambda m: m.decode(np.zeros((2, 3))), xvae.DataError,
     r"z must have 2 columns \(the model's latents\)"),
    ("sample-n", lambda m: m.sample(0), xvae.ConfigError, r"n must be a positive integer"),
    ("n-samples", lambda m: m.evaluate(X, n_samples=-1), xvae.ConfigError, r"n_samples must be a positive integer"),
    ("inference-batch", lambda m: m.encode(X, batch_size=-2), xvae.ConfigError, r"batch_size must be a positive"),
]

BAD_CLF: list[tuple[str, Callable[[Any], Any], type[xvae.XVAEError], str]] = [
    ("binary-labels", lambda m: m.fit(X, np.array([0, 1, 2, 0, 1, 0])), xvae.DataError,
     r"y must hold binary labels 0 or 1 for a classifier with outputs=1\. Received values \[0, 1, 2\]"),
    ("binary-labels-float", lambda m: m.fit(X, np.full(6, 0.5)), xvae.DataError, r"binary labels 0 or 1"),
    ("label-count", lambda m: m.fit(X, Y_BIN[:4]), xvae.DataError,
     r"y must have shape \(6,\) or \(6, 1\) to match x\. Received shape \(4,\)"),
    ("labels-nan", lambda m: m.fit(X, np.array([0, 1, np.nan, 0, 1, 0])), xvae.DataError, r"y contains NaN"),
    ("no-labels", lambda m: m.fit(X, None), xvae.ConfigError, r"A classifier needs labels: fit takes y"),
    ("labels-strings", lambda m: m.evaluate(X, ["a"] * 6), xvae.DataError, r"y must be a numeric array"),
    ("validation-labels", lambda m: m.fit(X, Y_BIN, validation_data=(X, np.full(6, 7))), xvae.DataError,
     r"validation_data y must hold binary labels"),
]

BAD_CAT: list[tuple[str, Callable[[Any], Any], type[xvae.XVAEError], str]] = [
    ("class-ids-high", lambda m: m.fit(X, np.array([0, 1, 2, 3, 1, 0])), xvae.DataError,
     (r"y must hold integer class ids in 0\.\.2 for outputs=3\. Received values in \[0, 3\]: relabel them, "
      r"or build the ClassifierSpec with outputs=4")),
    ("class-ids-negative", lambda m: m.fit(X, np.array([0, 1, -1, 0, 1, 0])), xvae.DataError,
     r"class ids start at 0"),
    ("class-ids-fractional", lambda m: m.fit(X, np.array([0, 1, 1.5, 0, 1, 0])), xvae.DataError,
     r"non-integer values such as 1\.5"),
    ("one-hot", lambda m: m.fit(X, np.eye(3)[Y_CAT]), xvae.DataError, r"One-hot labels\? Pass y\.argmax\(axis=1\)"),
    ("predict-width", lambda m: m.predict(np.zeros((1, 2))), xvae.DataError, r"x must have 3 columns"),
]


def _ids(cases: list[Any]) -> list[str]:
    return [c[0] for c in cases]


@pytest.mark.parametrize(("name", "call", "error", "pattern"), BAD, ids=_ids(BAD))
def test_bad_vae_input(name, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(guarded(vae()))  # the guard proves no backend was touched


@pytest.mark.parametrize(("name", "call", "error", "pattern"), BAD_CLF, ids=_ids(BAD_CLF))
def test_bad_binary_classifier_input(name, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(guarded(clf(BIN_SPEC)))


@pytest.mark.parametrize(("name", "call", "error", "pattern"), BAD_CAT, ids=_ids(BAD_CAT))
def test_bad_softmax_classifier_input(name, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(guarded(clf()))


def test_errors_are_also_the_matching_builtins():
    with pytest.raises(ValueError):
        vae().fit(np.zeros((0, 3)))
    with pytest.raises(ValueError):
        vae().fit(X, batch_size=-1)
    with pytest.raises(LookupError):
        xvae.VAE(VAE_SPEC, backend="caffe")


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(xvae.BackendNotFoundError, match=r"Unknown backend 'caffe'\. Known backends: .*numpy"):
        xvae.VAE(VAE_SPEC, backend="caffe")
    with pytest.raises(xvae.BackendNotFoundError, match=r"A backend is named by a string"):
        xvae.Classifier(CAT_SPEC, backend=3)  # type: ignore[arg-type]


def test_the_error_carries_a_note_saying_what_the_call_was():
    with pytest.raises(xvae.DataError) as err:
        vae().fit(np.zeros((4, 5)))
    assert "while fitting a vae on the 'numpy' backend" in err.value.__notes__


def test_a_batch_larger_than_the_data_is_clipped_and_said_once():
    model = vae()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = model.fit(X, epochs=3, batch_size=1000, progress=False)
    said = [w for w in caught if "batch_size=1000 is larger than the data (6 examples)" in str(w.message)]
    assert len(said) == 1 and said[0].filename == __file__  # once per fit, pointing at the caller
    assert h.params["batch_size"] == 6 and h.params["steps"] == 1 and model.step == 3


# -- the validation layer itself ----------------------------------------------------------

def test_features_returns_a_float32_view_when_it_can():
    x = np.zeros((4, 3), np.float32)
    assert _validate.features(x, 3) is x or np.shares_memory(_validate.features(x, 3), x)
    assert _validate.features([[1, 2, 3]], 3).dtype == np.float32
    assert _validate.features(np.array([[True, False, True]]), 3).tolist() == [[1.0, 0.0, 1.0]]


def test_labels_normalise_shapes_and_dtypes():
    assert _validate.labels(np.array([[1], [0]]), 2, 1).tolist() == [1.0, 0.0]
    assert _validate.labels(np.array([True, False]), 2, 1).dtype == np.float32
    assert _validate.labels([2.0, 0.0], 2, 3).dtype == np.int32


@pytest.mark.parametrize("value", [0, -1, 1.5, "3", None, True, np.array([2]), [1]])
def test_positive_int_refuses(value):
    with pytest.raises(xvae.ConfigError, match="must be a positive integer"):
        _validate.positive_int(value, "epochs")


def test_choice_flag_seed_and_callbacks():
    assert _validate.choice("static", "binarize", (None, "static")) == "static"
    assert _validate.choice(None, "binarize", (None, "static")) is None
    for bad in (np.array(["static", "x"]), ["static"], 0, False):
        with pytest.raises(xvae.ConfigError, match="binarize must be one of"):
            _validate.choice(bad, "binarize", (None, "static"))
    assert _validate.flag(np.True_, "shuffle") is True and _validate.flag(0, "shuffle") is False
    with pytest.raises(xvae.ConfigError, match="shuffle must be True or False"):
        _validate.flag(np.array([1, 0]), "shuffle")
    assert _validate.seed(None) is None and _validate.seed(np.int64(3)) == 3
    for bad in (-1, 1.0, "a", True):
        with pytest.raises(xvae.ConfigError, match="seed must be None or an integer >= 0"):
            _validate.seed(bad)
    cb = xvae.callbacks.Callback()
    assert _validate.callbacks((cb,)) == [cb] and _validate.callbacks(None) == []
    with pytest.raises(xvae.ConfigError, match=r"callbacks\[1\] is not a callback"):
        _validate.callbacks([cb, print])
    with pytest.raises(xvae.ConfigError, match="callbacks must be a list"):
        _validate.callbacks(cb)


# -- property-based: random input, only success or XVAEError ------------------------------

PROPERTY = settings(max_examples=40, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

#: Every dtype family numpy has: floats (with NaN/Inf), ints, bools, complex, dates, strings, bytes.
DTYPES = st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.boolean_dtypes(), hnp.complex_number_dtypes(),
                   hnp.datetime64_dtypes(), hnp.unicode_string_dtypes(max_len=3), hnp.byte_string_dtypes(max_len=3))
SHAPES = st.one_of(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
                   st.tuples(st.integers(0, 5), st.sampled_from([2, 3, 4])))  # often the right rank and width
NOT_ARRAYS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=3), st.binary(max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.lists(st.lists(st.one_of(st.floats(), st.integers(-3, 3), st.text(max_size=1), st.none()), max_size=4), max_size=4),
    st.builds(lambda n: np.empty((n, 3), dtype=object), st.integers(0, 2)),
)
ANY_INPUT = st.one_of(hnp.arrays(DTYPES, SHAPES), NOT_ARRAYS)
#: x that pass validation, so that the later arguments get their turn.
GOOD_X = st.one_of(hnp.arrays(st.sampled_from([np.float32, np.float64]), st.tuples(st.integers(1, 5), st.just(3)),
                              elements=st.floats(0, 1, width=16)),
                   hnp.arrays(st.sampled_from([np.uint8, np.bool_]), st.tuples(st.integers(1, 5), st.just(3))))


def mostly(valid: st.SearchStrategy[Any], invalid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """valid 4 times in 5, so that calls with several arguments still often pass validation.

    (Not one_of(valid, valid, valid, invalid): one_of flattens nested one_ofs and picks a branch
    uniformly, so a wide `invalid` would win.)"""
    return st.sampled_from([True, True, True, True, False]).flatmap(lambda ok: valid if ok else invalid)


X_ANY = mostly(GOOD_X, ANY_INPUT)
BAD_COUNTS = st.one_of(st.integers(-3, 0), st.floats(-2, 4), st.none(), st.text(max_size=2), st.booleans(),
                       st.just(np.array([1, 2])))
BATCH = mostly(st.integers(1, 8) | st.integers(10**6, 10**30) | st.just(np.int64(2)), BAD_COUNTS)
EPOCHS = mostly(st.integers(1, 2) | st.just(np.int32(1)), BAD_COUNTS)
OPTIMIZERS = mostly(st.sampled_from([None, Adam(1e-2), SGD(0.1), SGD(0.1, momentum=0.9, nesterov=True)]),
                    st.sampled_from(["adam", "sgd", 0.01, object(), Adam, {"kind": "adam"}]))
BINARIZE = mostly(st.sampled_from([None, "static", "dynamic"]), st.sampled_from(["x", 1, b"static", ("static",)]))
SEED = st.one_of(st.none(), st.integers(0, 2**32))


def outcome(model: Any, call: Callable[[Any], Any]) -> str:
    """Run `call` on a guarded copy, then (if validation let it through) on the real model.

    Only XVAEErrors may come out; validation must answer before the backend is touched.
    """
    try:
        call(guarded(model))
    except xvae.XVAEError:
        event(f"refused by validation: {str(sys.exc_info()[1])[:50]}")
        return "refused by validation"
    except BackendTouched:
        pass
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            call(model)
        except xvae.XVAEError as err:
            event(f"refused by the run: {type(err).__name__}")
            return "refused by the run"
    event("ran")
    return "ok"


def model(kind: str) -> Any:
    """A fresh model per call: a diverged fit must not leave NaN weights for the next example."""
    return {"vae": vae, "binary": lambda: clf(BIN_SPEC), "softmax": clf}[kind]()


@PROPERTY
@given(x=X_ANY, epochs=EPOCHS, batch_size=BATCH, optimizer=OPTIMIZERS, seed=SEED, binarize=BINARIZE)
def test_vae_fit_takes_anything(x, epochs, batch_size, optimizer, seed, binarize):
    outcome(model("vae"), lambda m: m.fit(x, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                                          seed=seed, binarize=binarize, progress=False))


@PROPERTY
@given(x=X_ANY, data=st.data(), kind=st.sampled_from(["binary", "softmax"]), epochs=EPOCHS, batch_size=BATCH,
       optimizer=OPTIMIZERS)
def test_classifier_fit_and_evaluate_take_anything(x, data, kind, epochs, batch_size, optimizer):
    n = len(x) if isinstance(x, np.ndarray) and x.ndim else 3
    top = 1 if kind == "binary" else 2
    good_y = hnp.arrays(st.sampled_from([np.int64, np.float32, np.uint8]), st.just((n,)), elements=st.integers(0, top))
    y = data.draw(mostly(good_y, ANY_INPUT | st.lists(st.integers(-1, 3), max_size=5)), label="y")
    outcome(model(kind), lambda m: m.fit(x, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                                         progress=False))
    outcome(model(kind), lambda m: m.evaluate(x, y, batch_size=batch_size))


@PROPERTY
@given(x=X_ANY, batch_size=BATCH | st.none(), n_samples=mostly(st.integers(1, 3), BAD_COUNTS), seed=SEED,
       binarize=BINARIZE)
def test_inference_takes_anything(x, batch_size, n_samples, seed, binarize):
    outcome(model("vae"), lambda m: m.evaluate(x, seed=seed or 0, n_samples=n_samples, binarize=binarize))
    outcome(model("vae"), lambda m: m.encode(x, batch_size=batch_size))
    outcome(model("vae"), lambda m: m.reconstruct(x, batch_size=batch_size))
    outcome(model("softmax"), lambda m: m.predict(x, batch_size=batch_size))
    z = x[:, :2] if isinstance(x, np.ndarray) and x.ndim == 2 else x
    outcome(model("vae"), lambda m: m.decode(z, batch_size=batch_size))
    if isinstance(batch_size, int) and batch_size < 100:
        outcome(model("vae"), lambda m: m.sample(batch_size, seed=seed or 0))


SPEC_VALUES = st.one_of(st.integers(-2, 6), st.integers(10**3, 10**4), st.floats(), st.none(), st.booleans(),
                        st.text(max_size=4), st.sampled_from(["relu", "tanh", "elu"]),
                        st.lists(st.integers(-1, 4), max_size=3), st.tuples(st.integers(1, 4)),
                        st.just(np.int64(3)), st.just({"kind": "vae"}))


@PROPERTY
@given(st.sampled_from(["encoder", "decoder", "vae", "vae-shorthand", "classifier"]),
       st.dictionaries(st.sampled_from(["input_dim", "latents", "hidden", "activation", "outputs", "output_dim",
                                        "beta", "likelihood"]), SPEC_VALUES, max_size=5))
def test_spec_constructors_take_anything(which, fields):
    build = {"encoder": xvae.EncoderSpec, "decoder": xvae.DecoderSpec, "classifier": xvae.ClassifierSpec,
             "vae": lambda **kw: xvae.VAESpec(encoder=kw.get("input_dim"), decoder=kw.get("latents"),
                                              beta=kw.get("beta", 1.0)),
             "vae-shorthand": lambda **kw: xvae.VAESpec(**{k: v for k, v in kw.items()
                                                           if k in ("input_dim", "latents", "hidden", "beta")})}
    try:
        spec = build[which](**fields)
    except (xvae.SpecError, TypeError) as err:  # TypeError: a keyword the class does not have (Python's own)
        assert isinstance(err, xvae.SpecError) or "unexpected keyword" in str(err) or "missing" in str(err)
        return
    assert xvae.spec_from_json(spec.to_json()) == spec  # what constructs also round-trips


@PROPERTY
@given(st.sampled_from([SGD, Adam]),
       st.dictionaries(st.sampled_from(["lr", "momentum", "b1", "b2", "eps"]),
                       st.one_of(st.floats(), st.integers(-5, 5), st.none(), st.text(max_size=2), st.booleans()),
                       max_size=3),
       st.one_of(st.just(False), st.just(True)))
def test_optimizer_constructors_take_anything(cls, fields, nesterov):
    known = ("lr", "momentum") if cls is SGD else ("lr", "b1", "b2", "eps")
    fields = {k: v for k, v in fields.items() if k in known}
    if cls is SGD:
        fields["nesterov"] = nesterov
    try:
        opt = cls(**fields)
    except xvae.SpecError:
        return
    assert xvae.optim.optimizer_from_dict(opt.to_dict()) == opt


BAD_ARGUMENTS = [
    pytest.param(lambda: xvae.EncoderSpec(3, 2, activation=np.array(["relu", "tanh"])), id="activation-array"),
    pytest.param(lambda: SGD(10**400), id="lr-beyond-float64"),
    pytest.param(lambda: SGD(0.1, momentum=0.5, nesterov=np.array([1, 0])), id="nesterov-array"),
    pytest.param(lambda: xvae.VAE(VAE_SPEC, backend="numpy", init=[]), id="init-unhashable"),
    pytest.param(lambda: xvae.VAE(VAE_SPEC, backend="numpy", seed=-1), id="model-seed-negative"),
    pytest.param(lambda: vae().fit(X, seed="a", progress=False), id="fit-seed-string"),
    pytest.param(lambda: vae().evaluate(X, seed=-1), id="evaluate-seed-negative"),
    pytest.param(lambda: vae().sample(3, seed=1.5), id="sample-seed-float"),
    pytest.param(lambda: vae().fit(X, shuffle=np.array([1, 0]), progress=False), id="shuffle-array"),
    pytest.param(lambda: vae().fit(X, epochs=np.array([1, 2]), resume=True, progress=False), id="epochs-array"),
    pytest.param(lambda: vae().fit(X, callbacks=[1], progress=False), id="callbacks-not-callbacks"),
    pytest.param(lambda: clf().fit(X, Y_CAT, validation_data=(X,), progress=False), id="validation-tuple-1"),
    pytest.param(lambda: vae().fit(X, validation_data=(X, Y_CAT), progress=False), id="vae-validation-with-y"),
    pytest.param(lambda: xvae.VAESpec(input_dim=3, latents=2, beta=float("inf")), id="beta-inf"),
    pytest.param(lambda: vae().decode(np.zeros((1, 2), np.float32), logits=np.array([1, 0])), id="logits-array"),
]


@pytest.mark.parametrize("call", BAD_ARGUMENTS)
def test_bad_arguments_anywhere_raise_xvae_errors(call):
    with pytest.raises(xvae.XVAEError):
        call()


@pytest.mark.parametrize("value, why", [("", "'' is empty"), ("run\0.xvae", "contains a NUL byte"),
                                        (3, r"must be a path \(str or os.PathLike\). Received: 3 \(int\)")])
def test_every_path_argument_is_checked_by_one_helper_raising_the_callers_error(value, why, tmp_path, capsys):
    from xvae.cli import main

    with pytest.raises(xvae.DataError, match=f"data_dir {'must be a path; ' if isinstance(value, str) else ''}.*{why}"):
        xvae.datasets.data_dir(value)
    with pytest.raises(xvae.CheckpointError, match=f"A checkpoint .*{why}.*Pass a folder such as 'run.xvae'"):
        xvae.load(value)
    with pytest.raises(xvae.ConfigError, match=f"History.from_json's file .*{why}"):
        xvae.History.from_json(value)
    if isinstance(value, str):  # the CLI's arguments are text
        assert main(["sample", value]) == 2
        assert re.search(f"argument checkpoint must be a path; .*{why}", capsys.readouterr().err)
    assert xvae._validate.path_text(str(tmp_path), "out") == str(tmp_path)
    assert xvae._validate.path_text(tmp_path, "out") == str(tmp_path)  # os.PathLike

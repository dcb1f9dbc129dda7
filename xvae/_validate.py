"""Input validation: bad input is answered here, before any backend is touched.

Every check raises an `XVAEError` subclass naming the argument, what was received and
the fix; nothing here imports a framework.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xvae import _memory
from xvae._errors import ConfigError, DataError, XVAEError
from xvae._numbers import integer, real

__all__ = ["batch_size", "callbacks", "choice", "conditions", "features", "flag", "fraction", "labels", "path_text",
           "positive_int", "seed"]


#: What the columns of a named input must match, for the error message.
_WIDTH_OF = {"z": "the model's latents"}


def _numeric(x: Any, name: str, shape: str) -> NDArray[Any]:
    """np.asarray(x), refusing objects, strings, dates and complex numbers with a DataError."""
    try:
        arr = np.asarray(x)
    except Exception as err:  # noqa: BLE001 - ragged lists, objects numpy cannot hold, device tensors
        raise DataError(f"{name} must be a numeric array of shape {shape}; it could not be converted "
                        f"({type(err).__name__}: {str(err)[:200]}). Pass a NumPy array.") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataError(f"{name} must be a numeric array of shape {shape}. Received dtype {arr.dtype}: "
                        f"convert it with np.asarray({name}, dtype=np.float32).")
    if np.iscomplexobj(arr):
        raise DataError(f"{name} must be real-valued. Received dtype {arr.dtype}: pass the real part "
                        f"({name}.real) or the magnitude (abs({name})).")
    return arr


#: The values each decoder likelihood can score, by `DecoderSpec.likelihood`: (low, high)
#: inclusive and what it models. A likelihood without an entry takes any finite value.
LIKELIHOOD_RANGES: dict[str, tuple[float, float, str]] = {
    "bernoulli": (0.0, 1.0, "a Bernoulli decoder models values in [0, 1] (intensities or probabilities)"),
    "continuous_bernoulli": (0.0, 1.0, "a continuous Bernoulli decoder models values in [0, 1] (grey levels)"),
}  # "gaussian": any finite value

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _rescale_hint(name: str, lo: float, hi: float, low: float, high: float) -> str:
    """How to bring data found in [lo, hi] into [low, high] = [0, 1] (other targets: rescale)."""
    if (low, high) != (0.0, 1.0):
        return f"Rescale {name} into [{low:g}, {high:g}]."
    if lo >= 0 and hi <= 255:
        return (f"Raw pixel values? Divide by their maximum, e.g. {name} / 255 for 8-bit images "
                "(xvae.datasets.load scales to [0, 1] by default).")
    if lo >= -1 and hi <= 1:
        return f"Data in [-1, 1]? Use ({name} + 1) / 2."
    return f"Rescale it, e.g. ({name} - {name}.min()) / ({name}.max() - {name}.min())."


def features(x: Any, width: int, name: str = "x", *, likelihood: str | None = None) -> NDArray[np.float32]:
    """A finite float32 array of shape (n, width), n >= 1; a view when x already is one.

    With `likelihood`, the values must also lie in that likelihood's range
    (`LIKELIHOOD_RANGES`). One min and one max pass answer both the finiteness and the
    range question (NaN propagates through both, an infinity shows up as one of them).

    Raises:
        DataError: not numeric, complex, rank != 2, wrong width, empty, NaN/Inf, values
            beyond float32's range, or values outside the likelihood's range.
    """
    arr = _numeric(x, name, f"(n, {width})")
    if arr.ndim != 2:
        hint = f" Flatten images first: {name}.reshape(len({name}), -1)." if arr.ndim > 2 else ""
        if arr.ndim == 1:
            hint = (f" One example? Use {name}[None, :]." if arr.shape[0] == width
                    else f" Reshape it to (n, {width}).")
        raise DataError(f"{name} must have rank 2, shape (n, {width}). Received shape {arr.shape}.{hint}")
    if arr.shape[1] != width:
        of = _WIDTH_OF.get(name, "the spec's input_dim")
        raise DataError(f"{name} must have {width} columns ({of}). Received shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise DataError(f"{name} is empty (shape {arr.shape}): pass at least one example.")
    copies = not (arr.dtype == np.float32 and arr.flags.c_contiguous)  # a broadcast view is not
    _memory.require(arr.size * (1 + 4 * copies), f"checking {name} of shape {arr.shape} ({arr.dtype})",
                    "pass fewer rows per call")
    lo, hi = float(arr.min()), float(arr.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise DataError(f"{name} contains {bad} NaN or infinite value(s): clean or impute them first "
                        f"(e.g. {name}[~np.isfinite({name})] = 0).")
    if max(-lo, hi) > _FLOAT32_MAX:
        raise DataError(f"{name} holds values beyond float32's range (|value| > 3.4e38), the precision "
                        "every backend computes in. Rescale it, e.g. to [0, 1].")
    rule = LIKELIHOOD_RANGES.get(likelihood) if likelihood is not None else None
    if rule is not None and not (rule[0] <= lo and hi <= rule[1]):
        low, high, what = rule
        raise DataError(f"{name} must hold values in [{low:g}, {high:g}]: {what}. Received values in "
                        f"[{lo:.6g}, {hi:.6g}] (dtype {arr.dtype}). {_rescale_hint(name, lo, hi, low, high)}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def labels(y: Any, n: int, outputs: int, name: str = "y") -> NDArray[Any]:
    """Binary 0/1 labels as float32 (n,) for outputs=1; class ids as int32 (n,) otherwise."""
    arr = _numeric(y, name, f"({n},)")
    if outputs == 1 and arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or arr.shape[0] != n:
        want = f"({n},) or ({n}, 1)" if outputs == 1 else f"({n},) integer class ids"
        hint = ""
        if outputs > 1 and arr.ndim == 2 and arr.shape == (n, outputs):
            hint = f" One-hot labels? Pass {name}.argmax(axis=1)."
        raise DataError(f"{name} must have shape {want} to match x. Received shape {arr.shape}.{hint}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DataError(f"{name} contains NaN or infinite values: every example needs a label.")
    if outputs == 1:
        if not np.isin(arr, (0, 1)).all():
            raise DataError(f"{name} must hold binary labels 0 or 1 for a classifier with outputs=1. "
                            f"Received values {np.unique(arr)[:10].tolist()}.")
        return arr.astype(np.float32)
    fractional = arr[arr != np.round(arr)] if arr.dtype.kind == "f" else arr[:0]
    if fractional.size:
        raise DataError(f"{name} must hold integer class ids in 0..{outputs - 1} for outputs={outputs}. "
                        f"Received non-integer values such as {fractional[0].item()!r}.")
    if arr.min() < 0 or arr.max() >= outputs:
        fix = ("class ids start at 0: relabel them" if arr.min() < 0 else
               f"relabel them, or build the ClassifierSpec with outputs={int(arr.max()) + 1}")
        raise DataError(f"{name} must hold integer class ids in 0..{outputs - 1} for outputs={outputs}. "
                        f"Received values in [{arr.min()}, {arr.max()}]: {fix}.")
    return arr.astype(np.int32)


def conditions(y: Any, n: int, classes: int, name: str = "y") -> NDArray[np.float32]:
    """A conditional VAE's class labels as the seam's one-hot float32 (n, classes).

    Accepted: a 1-D array of n integer class ids in [0, classes) (integer dtype, or floats
    holding whole numbers, as labels read from a CSV are); a single integer stands for n
    copies of itself (`sample(16, y=3)`).

    Raises:
        DataError: not numeric, a bool array, not 1-D of length n (one-hot given? the
            message says to pass argmax), NaN, a fraction, or an id outside [0, classes).
    """
    if integer(y) is not None:
        y = np.full(n, integer(y), np.int64)
    arr = _numeric(y, name, f"({n},) integer class ids")
    if arr.dtype == bool:
        raise DataError(f"{name} must hold integer class ids in 0..{classes - 1}, not booleans. "
                        f"Received dtype bool: pass {name}.astype(int) if they are classes 0/1.")
    if arr.ndim != 1 or arr.shape[0] != n:
        hint = (f" One-hot labels? Pass {name}.argmax(axis=1)." if arr.ndim == 2 and arr.shape == (n, classes)
                else "")
        raise DataError(f"{name} must have shape ({n},): one integer class id per example "
                        f"(conditions={classes}). Received shape {arr.shape}.{hint}")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise DataError(f"{name} contains NaN or infinite values: every example needs a class id in "
                            f"0..{classes - 1}.")
        fractional = arr[arr != np.round(arr)]
        if fractional.size:
            raise DataError(f"{name} must hold integer class ids in 0..{classes - 1} (conditions={classes}). "
                            f"Received non-integer values such as {fractional[0].item()!r}.")
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi >= classes:
        bad = arr[(arr < 0) | (arr >= classes)][0]
        raise DataError(f"{name} must hold class ids in 0..{classes - 1} (the spec's conditions={classes}). "
                        f"Received {bad.item()!r} (values in [{lo.item()!r}, {hi.item()!r}]): relabel them, "
                        f"or build the VAESpec with conditions={max(int(hi) + 1, classes)}.")
    out = np.zeros((n, classes), np.float32)
    out[np.arange(n), arr.astype(np.int64)] = 1.0
    return out


def is_integer(value: Any) -> bool:
    """A Python or NumPy integer; never a bool, nor a np.timedelta64 (a NumPy integer subclass)."""
    return (isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.timedelta64)))


def positive_int(value: Any, name: str) -> int:
    """`value` as an int >= 1 (Python or NumPy integer; never a bool or float)."""
    number = integer(value)
    if number is None or number < 1:
        raise ConfigError(f"{name} must be a positive integer. Received: {name}={value!r:.200}")
    return number


def batch_size(value: Any, n: int) -> int:
    """A batch size in 1..n; larger values are clipped to n (the caller warns once)."""
    return min(positive_int(value, "batch_size"), n)


def choice(value: Any, name: str, options: tuple[Any, ...]) -> Any:
    """`value` if it is one of `options` (compared by type and value: arrays never match)."""
    for option in options:
        if value is option or (type(value) is type(option) and value == option):
            return option
    raise ConfigError(f"{name} must be one of {', '.join(map(repr, options))}. Received: {name}={value!r:.200}")


def flag(value: Any, name: str) -> bool:
    """A True/False argument (Python or NumPy bool; 0 and 1 too)."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and value in (0, 1)):
        return bool(value)
    raise ConfigError(f"{name} must be True or False. Received: {name}={value!r:.200}")


def callbacks(value: Any) -> list[Any]:
    """A sequence of `xvae.callbacks.Callback` objects; anything else is refused before training.

    Keras' callbacks have hooks of the same names but other arguments (and a set_model
    protocol), so they would fail only after a whole epoch: they are named here instead.
    """
    from xvae import callbacks as xcb

    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"callbacks must be a list of xvae.callbacks.Callback objects. Received: {value!r:.200}")
    for i, cb in enumerate(value):
        if isinstance(cb, xcb.Callback):
            continue
        kind = type(cb)
        what = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        if callable(cb) and not hasattr(cb, "on_epoch_end"):
            fix = ("wrap a function in xvae.callbacks.LambdaCallback(on_epoch_end=fn), "
                   "fn(model, epoch, logs)")
        elif kind.__name__ in xcb.__all__:
            fix = f"use xvae.callbacks.{kind.__name__}, which xvae calls with its own arguments"
        else:
            fix = ("subclass xvae.callbacks.Callback (hooks on_train_begin(model), on_epoch_begin(model, epoch), "
                   "on_epoch_end(model, epoch, logs), on_train_end(model))")
        raise ConfigError(f"callbacks[{i}] is not a callback xvae can call (a {what}): {fix}. Received: {cb!r:.200}")
    return list(value)


def fraction(value: Any, name: str) -> float:
    """A real number in [0, 1) (Python or NumPy), as a Python float."""
    number = real(value)
    if number is None or not 0.0 <= number < 1.0:
        raise ConfigError(f"{name} must be a number in [0, 1), e.g. 0.1 for the last 10%. Received: {name}={value!r:.200}")
    return number


def seed(value: Any, name: str = "seed") -> int | None:
    """None or an integer >= 0, as numpy.random.default_rng accepts."""
    if value is None:
        return None
    number = integer(value)
    if number is None or number < 0:
        raise ConfigError(f"{name} must be None or an integer >= 0. Received: {name}={value!r:.200}")
    return number


def path_text(value: Any, what: str, error: type[XVAEError] = ConfigError, fix: str = "") -> str:
    """`value`'s text when it can name a file or folder: a str or os.PathLike, not empty, no NUL byte.

    The one check behind every path argument (data folders, history files, checkpoints, the
    CLI's paths), so a bad path is refused by the caller's error class, not deep inside
    pathlib or the OS.

    Args:
        value: what the caller received.
        what: the argument, as the message names it ("data_dir", "The checkpoint path").
        error: the caller's error class (DataError, ConfigError, CheckpointError, ...).
        fix: a sentence telling what to pass instead, appended to the message.

    Raises:
        error: `value` is not a str or os.PathLike (bytes are decoded), is empty, or holds a NUL byte.
    """
    tail = f" {fix}" if fix else ""
    try:
        text = os.fsdecode(os.fspath(value))
    except TypeError:
        raise error(f"{what} must be a path (str or os.PathLike). Received: {value!r:.200} "
                    f"({type(value).__name__}).{tail}") from None
    if not text or "\0" in text:
        why = "is empty" if not text else "contains a NUL byte"
        raise error(f"{what} must be a path; {text!r:.200} {why}.{tail}")
    return text

"""Input validation: bad input is answered here, before any backend is touched.

Every check raises an `XVAEError` subclass naming the argument, what was received and
the fix; nothing here imports a framework.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from xvae._errors import ConfigError, DataError

__all__ = ["features", "labels", "batch_size", "positive_int", "choice"]


def features(x: Any, width: int, name: str = "x") -> NDArray[np.float32]:
    """A finite float32 array of shape (n, width), n >= 1; a view when x already is one."""
    try:
        arr = np.asarray(x)
    except Exception as err:  # ragged lists, objects numpy cannot hold
        raise DataError(f"{name} must be a numeric array of shape (n, {width}); "
                        f"it could not be converted ({type(err).__name__}: {err}).") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataError(f"{name} must be a numeric array of shape (n, {width}). "
                        f"Received dtype {arr.dtype}: convert it with np.asarray({name}, np.float32).")
    if np.iscomplexobj(arr):
        raise DataError(f"{name} must be real-valued. Received dtype {arr.dtype}.")
    if arr.ndim != 2:
        hint = f" Flatten images first: {name}.reshape(len({name}), -1)." if arr.ndim > 2 else ""
        raise DataError(f"{name} must have rank 2, shape (n, {width}). Received shape {arr.shape}.{hint}")
    if arr.shape[1] != width:
        raise DataError(f"{name} must have {width} columns (the spec's input width). "
                        f"Received shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise DataError(f"{name} is empty (shape {arr.shape}): pass at least one example.")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise DataError(f"{name} contains {bad} NaN or infinite value(s): clean or impute them first.")
    return arr


def labels(y: Any, n: int, outputs: int, name: str = "y") -> NDArray[Any]:
    """Binary 0/1 labels as float32 (n,) for outputs=1; class ids as int32 (n,) otherwise."""
    try:
        arr = np.asarray(y)
    except Exception as err:
        raise DataError(f"{name} could not be converted to an array ({type(err).__name__}: {err}).") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataError(f"{name} must be numeric labels. Received dtype {arr.dtype}.")
    if outputs == 1 and arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or arr.shape[0] != n:
        want = f"({n},) or ({n}, 1)" if outputs == 1 else f"({n},) integer class ids"
        raise DataError(f"{name} must have shape {want} to match x. Received shape {arr.shape}.")
    if not np.isfinite(arr.astype(np.float64)).all():
        raise DataError(f"{name} contains NaN or infinite values.")
    if outputs == 1:
        if not np.isin(arr, (0, 1)).all():
            raise DataError(f"{name} must hold binary labels 0 or 1 for a classifier with outputs=1. "
                            f"Received values {np.unique(arr)[:10].tolist()}.")
        return arr.astype(np.float32)
    if not np.all(arr == np.round(arr)) or arr.min() < 0 or arr.max() >= outputs:
        raise DataError(f"{name} must hold integer class ids in 0..{outputs - 1} for outputs={outputs}. "
                        f"Received values in [{arr.min()}, {arr.max()}].")
    return arr.astype(np.int32)


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer. Received: {name}={value!r}")
    return int(value)


def batch_size(value: Any, n: int) -> int:
    """A batch size in 1..n; larger values are clipped to n (the caller warns once)."""
    return min(positive_int(value, "batch_size"), n)


def choice(value: Any, name: str, options: tuple[Any, ...]) -> Any:
    if value not in options:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, options))}. Received: {name}={value!r}")
    return value

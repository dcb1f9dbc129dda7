"""What counts as a number: Python and NumPy reals alike, returned as Python int / float.

NumPy scalars turn up everywhere in real code (`y.max() + 1`, `np.float32(1e-3)`,
`x.shape[1]` of a loaded array), so every validator that takes a number asks here.
Booleans are never numbers (`True` is an int in Python, but `lr=True` is a mistake), and
what is returned is a plain Python number, so specs hold and JSON writes plain values.

Examples:
    >>> real(np.float32(1e-3)), integer(np.int64(3)), real(True), integer(2.0)
    (0.001, 3, None, None)
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["PlainNumbers", "integer", "plain", "real"]


def integer(value: Any) -> int | None:
    """`value` as a Python int if it is a Python or NumPy integer (not a bool); else None."""
    if isinstance(value, (bool, np.bool_, np.timedelta64)) or not isinstance(value, (int, np.integer)):
        return None
    return int(value)


def real(value: Any) -> float | None:
    """`value` as a Python float if it is a real Python or NumPy number (not a bool); else None.

    A float32 or float16 becomes the shortest decimal that rounds back to it, so
    `np.float32(1e-3)` gives 0.001 (what was meant), not 0.0010000000474974513.
    Integers beyond float64's range give None, as do complex numbers, strings and arrays.
    NaN and infinities are returned as they are: range checks are the caller's.
    """
    if isinstance(value, (bool, np.bool_, np.timedelta64)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None  # (np.timedelta64 is a NumPy integer type, but a duration)
    if isinstance(value, (np.float32, np.float16)):
        return float(str(value))
    try:
        return float(value)
    except OverflowError:  # an int beyond float64
        return None


def plain(value: Any) -> Any:
    """NumPy scalars (also inside tuples) as the Python bool / int / float they stand for."""
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return real(value)
    return value


class PlainNumbers:
    """Mixin for frozen dataclass specs (optimizers, schedules): NumPy scalars are stored as Python numbers.

    After a subclass's own `__post_init__` has validated its fields (its checks accept NumPy
    scalars through `real` / `integer`), every field holding a NumPy scalar is replaced by
    the Python number, so the spec equals the one built from Python numbers and `to_dict`
    is JSON-ready. Subclasses need not call anything.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__post_init__")
        if own is not None and not getattr(own, "_stores_plain_numbers", False):
            def __post_init__(self: Any) -> None:
                own(self)
                self._store_plain_numbers()

            __post_init__._stores_plain_numbers = True  # type: ignore[attr-defined]
            cls.__post_init__ = __post_init__  # type: ignore[attr-defined]

    def __post_init__(self) -> None:
        self._store_plain_numbers()

    def _store_plain_numbers(self) -> None:
        for name in getattr(self, "__dataclass_fields__", {}):
            value = getattr(self, name)
            converted = plain(value)
            if converted is not value:
                object.__setattr__(self, name, converted)

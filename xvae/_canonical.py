"""The one check every backend's `_weights.check_names` runs on canonical arrays coming in.

Weights, gradients and optimizer state reach a plugin as flat dicts of canonical names
(`xvae.naming`); before any of them is converted, the names and shapes are checked here,
so every backend refuses the same inputs with the same message and nothing is half set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from xvae._errors import ConfigError

__all__ = ["check_names"]


def check_names(expected: Mapping[str, tuple[int, ...]], arrays: Mapping[str, Any], what: str) -> None:
    """Raise unless `arrays` has exactly the `expected` canonical names, each with its shape.

    Args:
        expected: canonical name -> shape (`naming.weight_shapes` / `naming.optimizer_slots`).
        arrays: canonical name -> array-like.
        what: what the arrays are, for the message ("weights", "gradients", ...).

    Raises:
        ConfigError: a name is missing or unexpected, or a shape differs.

    Examples:
        >>> check_names({"w": (2,)}, {"w": np.zeros(2)}, "weights")
        >>> check_names({"w": (2,)}, {"w": np.zeros(3)}, "weights")
        Traceback (most recent call last):
        ...
        xvae._errors.ConfigError: weights 'w' must have shape (2,). Received: (3,)
    """
    missing = [k for k in expected if k not in arrays]
    unexpected = [k for k in arrays if k not in expected]
    if missing or unexpected:
        raise ConfigError(
            f"The {what} do not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}. "
            "Pass the canonical names of xvae.naming.weight_shapes(spec) (optimizer state: "
            f"optimizer.init_state(weights)). Expected names: {list(expected)[:5]}..."
        )
    for name, shape in expected.items():
        got = tuple(np.shape(arrays[name]))
        if got != tuple(shape):
            raise ConfigError(f"{what} {name!r} must have shape {tuple(shape)}. Received: {got}")

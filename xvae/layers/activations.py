"""Activations by name, each with its float64 derivative (the reference backend's backprop).

The names are the ones every backend implements (`xvae._specs.ACTIVATIONS`); gelu is the
exact erf form and leaky_relu has slope 0.01 in every backend.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

__all__ = ["ACTIVATIONS", "NAMES", "check_activation"]

Array = NDArray[Any]

#: Hidden-layer activations every backend implements, by name.
NAMES = ("relu", "tanh", "sigmoid", "elu", "gelu", "softplus", "leaky_relu", "linear")


def _sigmoid(x: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _gelu(x: Array) -> tuple[Array, Array]:
    from scipy.special import erf  # scipy ships with scikit-learn, a core dependency

    cdf = 0.5 * (1.0 + erf(x / np.sqrt(2.0)))
    return x * cdf, cdf + x * np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


#: activation name -> x -> (f(x), f'(x))
ACTIVATIONS: dict[str, Callable[[Array], tuple[Array, Array]]] = {
    "linear": lambda x: (x, np.ones_like(x)),
    "relu": lambda x: (np.maximum(x, 0.0), (x > 0).astype(x.dtype)),
    "tanh": lambda x: (np.tanh(x), 1.0 - np.tanh(x) ** 2),
    "sigmoid": lambda x: (_sigmoid(x), _sigmoid(x) * (1.0 - _sigmoid(x))),
    "elu": lambda x: (np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
                      np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0)))),
    "gelu": _gelu,
    "softplus": lambda x: (np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x))), _sigmoid(x)),
    "leaky_relu": lambda x: (np.where(x > 0, x, 0.01 * x), np.where(x > 0, 1.0, 0.01)),
}


def check_activation(owner: str, value: Any) -> str:
    """`value` if it names an activation, else SpecError naming `owner` and the choices."""
    from xvae._errors import SpecError

    if not isinstance(value, str) or value not in NAMES:
        raise SpecError(f"{owner}.activation must be one of {', '.join(NAMES)}. "
                        f"Received: activation={value!r}")
    return value

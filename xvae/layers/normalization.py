"""LayerNorm over the last axis (features, or channels of an image), with scale and bias.

``y = (x - mean) / sqrt(var + epsilon) * scale + bias``, var the biased (1/n) variance
computed as ``mean((x - mean)^2)`` in every backend (not ``E[x^2] - E[x]^2``, which
cancels catastrophically for large means).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from xvae._errors import SpecError
from xvae.layers._base import Array, Layer, Shape

__all__ = ["LayerNorm"]


@dataclass(frozen=True)
class LayerNorm(Layer):
    """Normalise each example over its last axis; parameters `scale` (ones) and `bias` (zeros).

    Attributes:
        epsilon: added to the variance, a number > 0 (default 1e-5, PyTorch's).

    Examples:
        >>> LayerNorm().param_shapes((7, 7, 32))
        {'scale': (32,), 'bias': (32,)}
    """

    kind: ClassVar[str] = "layer_norm"
    params: ClassVar[dict[str, str]] = {"scale": "ones", "bias": "zeros"}
    epsilon: float = 1e-5

    def __post_init__(self) -> None:
        eps = self.epsilon
        if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, (int, float, np.integer, np.floating)) \
                or not 0 < eps < float("inf"):
            raise SpecError(f"LayerNorm.epsilon must be a number > 0. Received: epsilon={eps!r}")
        object.__setattr__(self, "epsilon", float(eps))

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        return {"scale": (input_shape[-1],), "bias": (input_shape[-1],)}

    def describe(self) -> str:
        return "LayerNorm()" if self.epsilon == 1e-5 else f"LayerNorm(epsilon={self.epsilon})"

    def forward(self, params: dict[str, Array], x: Array, mask: Array | None = None) -> tuple[Array, Any]:
        centred = x - x.mean(axis=-1, keepdims=True)
        rstd = 1.0 / np.sqrt(np.mean(centred * centred, axis=-1, keepdims=True) + self.epsilon)
        xhat = centred * rstd
        return xhat * params["scale"] + params["bias"], (xhat, rstd)

    def backward(self, params: dict[str, Array], cache: Any, dy: Array) -> tuple[Array, dict[str, Array]]:
        xhat, rstd = cache
        axes = tuple(range(dy.ndim - 1))
        grads = {"scale": np.sum(dy * xhat, axis=axes), "bias": np.sum(dy, axis=axes)}
        g = dy * params["scale"]
        dx = rstd * (g - g.mean(axis=-1, keepdims=True) - xhat * np.mean(g * xhat, axis=-1, keepdims=True))
        return dx, grads

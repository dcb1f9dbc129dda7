"""Flatten and Reshape: the batch axis stays, the rest is re-viewed in C (row-major) order,
so NHWC images flatten as every framework flattens them in NHWC."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from xvae._errors import SpecError
from xvae.layers._base import Array, Layer, Shape, positive_int

__all__ = ["Flatten", "Reshape"]


@dataclass(frozen=True)
class Flatten(Layer):
    """(h, w, c) -> (h * w * c,).

    Examples:
        >>> Flatten().output_shape((7, 7, 64))
        (3136,)
    """

    kind: ClassVar[str] = "flatten"

    def output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def describe(self) -> str:
        return "Flatten()"

    def forward(self, params: dict[str, Array], x: Array, mask: Array | None = None) -> tuple[Array, Any]:
        return x.reshape(len(x), -1), x.shape

    def backward(self, params: dict[str, Array], cache: Any, dy: Array) -> tuple[Array, dict[str, Array]]:
        return dy.reshape(cache), {}


@dataclass(frozen=True)
class Reshape(Layer):
    """Re-view each example as `shape` (same number of values).

    Examples:
        >>> Reshape((7, 7, 32)).output_shape((1568,))
        (7, 7, 32)
    """

    kind: ClassVar[str] = "reshape"
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if isinstance(self.shape, np.ndarray) and (self.shape.ndim > 1 or self.shape.size > 64):
            raise SpecError(f"Reshape.shape must be a tuple of positive ints. Received an array of shape {self.shape.shape}")
        try:
            dims = tuple(self.shape)
        except TypeError:
            raise SpecError(f"Reshape.shape must be a tuple of positive ints. Received: shape={self.shape!r}") from None
        if not dims:
            raise SpecError("Reshape.shape must not be empty. Received: shape=()")
        object.__setattr__(self, "shape", tuple(positive_int("Reshape", "shape", d) for d in dims))

    def output_shape(self, input_shape: Shape) -> Shape:
        if math.prod(input_shape) != math.prod(self.shape):
            raise self._fail(input_shape, f"{math.prod(input_shape)} values cannot be reshaped to {self.shape} "
                                          f"({math.prod(self.shape)} values)")
        return self.shape

    def describe(self) -> str:
        return f"Reshape({self.shape})"

    def forward(self, params: dict[str, Array], x: Array, mask: Array | None = None) -> tuple[Array, Any]:
        return x.reshape(len(x), *self.shape), x.shape

    def backward(self, params: dict[str, Array], cache: Any, dy: Array) -> tuple[Array, dict[str, Array]]:
        return dy.reshape(cache), {}

"""Dropout whose masks the core draws (DESIGN §8): backends multiply, never draw.

During training the core hands every backend the same mask array per batch (batch key
"dropout", float32 (B, units): 0 for a dropped unit, 1 / (1 - rate) for a kept one, the
"inverted dropout" of Keras and PyTorch); without a mask (evaluation, inference) the
layer is the identity. See `xvae.layers.dropout_masks` for the draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from xvae._errors import SpecError
from xvae.layers._base import Array, Layer, Shape

__all__ = ["Dropout"]


@dataclass(frozen=True)
class Dropout(Layer):
    """Zero each unit with probability `rate` while training; scale the rest by 1 / (1 - rate).

    Examples:
        >>> Dropout(0.5).output_shape((1600,))
        (1600,)
    """

    kind: ClassVar[str] = "dropout"
    rate: float

    def __post_init__(self) -> None:
        r = self.rate
        if isinstance(r, (bool, np.bool_)) or not isinstance(r, (int, float, np.integer, np.floating)) or not 0 <= r < 1:
            raise SpecError(f"Dropout.rate must be a number in [0, 1). Received: rate={r!r}")
        object.__setattr__(self, "rate", float(r))

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def describe(self) -> str:
        return f"Dropout({self.rate})"

    def forward(self, params: dict[str, Array], x: Array, mask: Array | None = None) -> tuple[Array, Any]:
        if mask is None:
            return x, None
        mask = mask.reshape(x.shape)
        return x * mask, mask

    def backward(self, params: dict[str, Array], cache: Any, dy: Array) -> tuple[Array, dict[str, Array]]:
        return (dy if cache is None else dy * cache), {}

"""MaxPool2D and AvgPool2D over NHWC images, "valid" windows (Keras' default).

Max pooling routes the gradient to the first maximum of each window in row-major order;
frameworks may pick another of several *equal* maxima, which only matters for exact ties
(after a ReLU, ties at 0 carry no gradient further back).
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from xvae.layers._base import Array, Layer, Shape, pair

__all__ = ["MaxPool2D", "AvgPool2D"]


@dataclass(frozen=True)
class _Pool(Layer):
    size: Any = 2
    stride: Any = None

    def __post_init__(self) -> None:
        name = type(self).__name__
        size = pair(name, "size", self.size)
        object.__setattr__(self, "size", size[0] if size[0] == size[1] else size)
        if self.stride is not None:
            stride = pair(name, "stride", self.stride)
            object.__setattr__(self, "stride", stride[0] if stride[0] == stride[1] else stride)

    @property
    def window(self) -> tuple[int, int]:
        return pair("", "size", self.size)

    @property
    def strides(self) -> tuple[int, int]:
        return pair("", "stride", self.size if self.stride is None else self.stride)

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3:
            raise self._fail(input_shape, "it takes images (height, width, channels)")
        if any(n < k for n, k in zip(input_shape[:2], self.window)):
            raise self._fail(input_shape, f"the window {self.window} is larger than the input {input_shape[:2]}")
        oh, ow = ((n - k) // s + 1 for n, k, s in zip(input_shape[:2], self.window, self.strides))
        return (oh, ow, input_shape[2])

    def _work_elements(self, input_shape: Shape, output_shape: Shape) -> int:
        # MaxPool2D stacks one output-sized slice per window tap
        return super()._work_elements(input_shape, output_shape) + math.prod(self.window) * math.prod(output_shape)

    def describe(self) -> str:
        stride = "" if self.stride is None else f", stride={self.stride}"
        return f"{type(self).__name__}({self.size}{stride})"

    def _windows(self, x: Array) -> tuple[list[tuple[slice, ...]], int, int]:
        (kh, kw), (sh, sw) = self.window, self.strides
        oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
        taps = [(slice(None), slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw))
                for i in range(kh) for j in range(kw)]
        return taps, oh, ow


@dataclass(frozen=True)
class MaxPool2D(_Pool):
    """The maximum of each size x size window (stride defaults to the size).

    Examples:
        >>> MaxPool2D(2).output_shape((26, 26, 32))
        (13, 13, 32)
    """

    kind: ClassVar[str] = "max_pool2d"

    def forward(self, params: dict[str, Array], x: Array, mask: Array | None = None) -> tuple[Array, Any]:
        taps, _, _ = self._windows(x)
        stacked = np.stack([x[t] for t in taps])
        first = np.argmax(stacked, axis=0)
        return np.take_along_axis(stacked, first[None], axis=0)[0], (x.shape, first)

    def backward(self, params: dict[str, Array], cache: Any, dy: Array) -> tuple[Array, dict[str, Array]]:
        shape, first = cache
        dx = np.zeros(shape, dy.dtype)
        taps, _, _ = self._windows(dx)
        for index, t in enumerate(taps):
            dx[t] += np.where(first == index, dy, 0.0)
        return dx, {}


@dataclass(frozen=True)
class AvgPool2D(_Pool):
    """The mean of each size x size window (stride defaults to the size).

    Examples:
        >>> AvgPool2D(2, stride=1).output_shape((4, 4, 3))
        (3, 3, 3)
    """

    kind: ClassVar[str] = "avg_pool2d"

    def forward(self, params: dict[str, Array], x: Array, mask: Array | None = None) -> tuple[Array, Any]:
        taps, _, _ = self._windows(x)
        return sum(x[t] for t in taps) / len(taps), x.shape

    def backward(self, params: dict[str, Array], cache: Any, dy: Array) -> tuple[Array, dict[str, Array]]:
        dx = np.zeros(cache, dy.dtype)
        taps, _, _ = self._windows(dx)
        for t in taps:
            dx[t] += dy / len(taps)
        return dx, {}

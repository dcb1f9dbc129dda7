"""What every layer spec is: frozen data with a shape rule, parameter shapes and a float64
reference (forward and hand-written backward), kept together in the layer's own module.

Shapes exclude the batch axis: images are (height, width, channels) (NHWC with the batch),
flat rows (width,). A layer's reference works on float64 arrays with the batch axis first:

    y, cache = layer.forward(params, x)        # params: {"kernel": ..., "bias": ...}
    dx, grads = layer.backward(params, cache, dy)

`Dropout` takes its mask as `forward(params, x, mask=...)`; every other layer ignores it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from xvae._errors import SpecError

__all__ = ["Layer", "Shape", "positive_int", "pair", "LAYER_TYPES", "layer_from_dict"]

Shape = tuple[int, ...]
Array = NDArray[Any]

#: kind -> layer class; every subclass registers itself under its `kind`.
LAYER_TYPES: dict[str, type["Layer"]] = {}


def positive_int(owner: str, name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise SpecError(f"{owner}.{name} must be {what}. Received: {name}={value!r}")
    return int(value)


def pair(owner: str, name: str, value: Any, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints -> (height, width) values, each >= minimum."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise SpecError(f"{owner}.{name} must be an int or a pair (height, width). Received: {name}={value!r}")
        return (positive_int(owner, name, value[0], minimum), positive_int(owner, name, value[1], minimum))
    v = positive_int(owner, name, value, minimum)
    return (v, v)


@dataclass(frozen=True)
class Layer:
    """Base of the layer specs. Subclasses are frozen dataclasses with a `kind`."""

    kind: ClassVar[str] = ""
    #: Parameters and how they start: "kernel" and "bias" are drawn by the initialiser
    #: (xvae.init), "ones" / "zeros" are constants (LayerNorm's scale and bias).
    params: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            LAYER_TYPES[cls.kind] = cls

    # -- description -------------------------------------------------------------------
    def output_shape(self, input_shape: Shape) -> Shape:
        """The output shape for `input_shape` (no batch axis); SpecError if it cannot apply."""
        raise NotImplementedError

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        """Parameter name -> shape, in the order weights are named and drawn."""
        return {}

    def fans(self, input_shape: Shape) -> tuple[int, int]:
        """(fan_in, fan_out) of the kernel, for the initialisers (Keras' rule)."""
        return (1, 1)

    def count_params(self, input_shape: Shape) -> int:
        return sum(math.prod(s) for s in self.param_shapes(input_shape).values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus "type"; `layer_from_dict` rebuilds an equal layer."""
        out: dict[str, Any] = {"type": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def describe(self) -> str:
        """A short label for tables, e.g. "Conv2D(32, 3, stride=2, relu)"."""
        parts = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)]
        return f"{type(self).__name__}({', '.join(parts)})"

    # -- float64 reference -------------------------------------------------------------
    def forward(self, params: dict[str, Array], x: Array, mask: Array | None = None) -> tuple[Array, Any]:
        raise NotImplementedError

    def backward(self, params: dict[str, Array], cache: Any, dy: Array) -> tuple[Array, dict[str, Array]]:
        raise NotImplementedError

    # -- helpers for subclasses --------------------------------------------------------
    def _fail(self, input_shape: Shape, problem: str) -> SpecError:
        return SpecError(f"{type(self).__name__} cannot take input shape {input_shape}: {problem}")


def layer_from_dict(data: Any) -> Layer:
    """A layer from `Layer.to_dict()` output (a layer object is returned as is).

    Raises:
        SpecError: no known "type", an unknown field, or an invalid value.
    """
    if isinstance(data, Layer):
        return data
    if not isinstance(data, dict) or data.get("type") not in LAYER_TYPES:
        raise SpecError(f"A layer must be a layer spec such as xvae.layers.Dense(10) or a dict with "
                        f"'type' in {', '.join(LAYER_TYPES)}. Received: {data!r:.200}")
    cls = LAYER_TYPES[data["type"]]
    values = {k: v for k, v in data.items() if k != "type"}
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SpecError(f"{cls.__name__} has no field(s) {', '.join(unknown)}. Known: {', '.join(sorted(known))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**values)

"""What every layer spec is: frozen data with a shape rule, parameter shapes and a float64
reference (forward and hand-written backward), kept together in the layer's own module.

Shapes exclude the batch axis: images are (height, width, channels) (NHWC with the batch),
flat rows (width,). A layer's reference works on float64 arrays with the batch axis first:

    y, cache = layer.forward(params, x)        # params: {"kernel": ..., "bias": ...}
    dx, grads = layer.backward(params, cache, dy)

`Dropout` takes its mask as `forward(params, x, mask=...)`; every other layer ignores it.

The public `forward`/`backward` check their arguments first (numeric arrays of the shapes
the layer takes, the memory the call needs, a cache from this layer's `forward`): a
subclass writes `forward`/`backward` and `__init_subclass__` moves them to the unchecked
`_forward`/`_backward`, which the numpy reference backend calls per step with arrays it
built itself (the checks are for callers outside xvae).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from xvae._errors import DataError, SpecError

__all__ = ["Layer", "LayerCache", "Shape", "positive_int", "pair", "LAYER_TYPES", "layer_from_dict"]

Shape = tuple[int, ...]
Array = NDArray[Any]

#: kind -> layer class; every subclass registers itself under its `kind`.
LAYER_TYPES: dict[str, type["Layer"]] = {}


def positive_int(owner: str, name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.timedelta64)) or not isinstance(value, (int, np.integer)) or value < minimum:
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
        """Registers the kind; a subclass's own forward/backward become the unchecked
        `_forward`/`_backward` behind the base's checked public methods."""
        super().__init_subclass__(**kwargs)
        if cls.kind:
            LAYER_TYPES[cls.kind] = cls
        for public in ("forward", "backward"):
            own = cls.__dict__.get(public)
            if own is not None:
                setattr(cls, f"_{public}", own)
                delattr(cls, public)
        for shape_rule in ("output_shape", "param_shapes", "fans"):
            own = cls.__dict__.get(shape_rule)
            if own is not None:
                setattr(cls, shape_rule, _shape_checked(own))

    # -- description -------------------------------------------------------------------
    def output_shape(self, input_shape: Shape) -> Shape:
        """The output shape for `input_shape` (no batch axis); SpecError if it cannot apply."""
        raise SpecError("Layer is the base of the layer specs and takes no input: use one of them, "
                        f"e.g. xvae.layers.Dense(10). Known: {', '.join(t.__name__ for t in LAYER_TYPES.values())}")

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
    def forward(self, params: dict[str, Array], x: Array, mask: Array | None = None) -> tuple[Array, "LayerCache"]:
        """(y, cache) for a batch `x` of shape (batch, *input_shape) (float64; float32 is kept).

        Raises:
            DataError: `params`, `x` or `mask` are not numeric arrays of the shapes the layer takes.
            SpecError: the layer cannot take `x`'s trailing shape.
            ConfigError: the arrays of the call would not fit in memory.
        """
        name = type(self).__name__
        x = _floats(x, f"{name}.forward(x)", "(batch, *input_shape)")
        if x.ndim < 2:
            raise DataError(f"{name}.forward(x) must have a batch axis first: shape (batch, *input_shape). "
                            f"Received shape {x.shape}: use x[None] for one example.")
        input_shape = tuple(x.shape[1:])
        output_shape = self.output_shape(input_shape)
        params = self._checked_params(params, input_shape, "forward")
        if mask is not None:
            mask = _floats(mask, f"{name}.forward(mask)", f"{x.shape}")
            if mask.size != x.size:
                raise DataError(f"{name}.forward(mask) must have x's shape {x.shape}. Received shape {mask.shape}.")
        self._require_memory(x.shape[0], input_shape, output_shape, "forward")
        y, inner = self._forward(params, x, mask)
        return y, LayerCache(self, x.shape, tuple(y.shape), inner)

    def backward(self, params: dict[str, Array], cache: "LayerCache", dy: Array) -> tuple[Array, dict[str, Array]]:
        """(dx, grads) for `dy` = dLoss/dy of the `forward` call that returned `cache`.

        Raises:
            DataError: `cache` is not from this layer's `forward`, or `params`/`dy` do not fit it.
            ConfigError: the arrays of the call would not fit in memory.
        """
        name = type(self).__name__
        if not isinstance(cache, LayerCache) or cache.layer != self:
            raise DataError(f"{name}.backward(cache) must be the cache {name}.forward returned for the same "
                            f"layer. Received {type(cache).__name__}: {cache!r:.100}")
        input_shape = tuple(cache.x_shape[1:])
        params = self._checked_params(params, input_shape, "backward")
        dy = _floats(dy, f"{name}.backward(dy)", f"{cache.y_shape}")
        if dy.shape != cache.y_shape:
            raise DataError(f"{name}.backward(dy) must have the shape of forward's output {cache.y_shape}. "
                            f"Received shape {dy.shape}.")
        self._require_memory(cache.x_shape[0], input_shape, cache.y_shape[1:], "backward")
        return self._backward(params, cache.inner, dy)

    def _forward(self, params: dict[str, Array], x: Array, mask: Array | None) -> tuple[Array, Any]:
        raise NotImplementedError

    def _backward(self, params: dict[str, Array], cache: Any, dy: Array) -> tuple[Array, dict[str, Array]]:
        raise NotImplementedError

    def _checked_params(self, params: Any, input_shape: Shape, method: str) -> dict[str, Array]:
        """`params` as float64 arrays with exactly the names and shapes `param_shapes` gives."""
        name = type(self).__name__
        expected = self.param_shapes(input_shape)
        if not isinstance(params, dict) or set(params) != set(expected):
            got = sorted(map(str, params)) if isinstance(params, dict) else type(params).__name__
            raise DataError(f"{name}.{method}(params) must be a dict with the arrays {sorted(expected)} "
                            f"for input shape {input_shape}. Received: {got!r:.200}")
        out = {}
        for key, shape in expected.items():
            arr = _floats(params[key], f"{name}.{method}(params[{key!r}])", f"{shape}")
            if arr.shape != tuple(shape):
                raise DataError(f"{name}.{method}(params[{key!r}]) must have shape {tuple(shape)} for input "
                                f"shape {input_shape}. Received shape {arr.shape}.")
            out[key] = arr
        return out

    def _work_elements(self, input_shape: Shape, output_shape: Shape) -> int:
        """float64 elements one example's forward or backward allocates (outputs, caches,
        temporaries); layers with larger workspaces (convolutions) say more."""
        return 4 * (math.prod(input_shape) + math.prod(output_shape))

    def _require_memory(self, batch: int, input_shape: Shape, output_shape: Shape, method: str) -> None:
        from xvae import _memory

        nbytes = 8 * batch * self._work_elements(input_shape, output_shape)
        _memory.require(nbytes, f"{type(self).__name__}.{method} on a batch of {batch:,} of shape {input_shape}",
                        "pass a smaller batch or smaller images")

    # -- helpers for subclasses --------------------------------------------------------
    def _fail(self, input_shape: Shape, problem: str) -> SpecError:
        return SpecError(f"{type(self).__name__} cannot take input shape {input_shape}: {problem}")


@dataclass(frozen=True)
class LayerCache:
    """What `Layer.forward` hands to `Layer.backward`: the layer, the shapes and its own data."""

    layer: Layer
    x_shape: Shape
    y_shape: Shape
    inner: Any = field(repr=False)


def _floats(value: Any, name: str, shape: str) -> Array:
    """A numeric, real array; integers and booleans become float64 (floats are kept: the
    reference also runs in float32), anything else is a DataError."""
    from xvae import _validate

    arr = _validate._numeric(value, name, shape)
    return arr if np.issubdtype(arr.dtype, np.floating) else arr.astype(np.float64)

def input_shape_of(owner: str, value: Any) -> Shape:
    """`value` as a shape (a tuple of positive ints, no batch axis), else a SpecError."""
    if isinstance(value, (tuple, list)) and value and all(
            isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_, np.timedelta64)) and n > 0 for n in value):
        return tuple(int(n) for n in value)
    raise SpecError(f"{owner} takes an input shape: a tuple of positive ints without the batch axis, "
                    f"e.g. (28, 28, 1) or (784,). Received: {value!r:.200}")


def _shape_checked(rule: Callable[[Layer, Shape], Any]) -> Callable[[Layer, Any], Any]:
    """`rule` (output_shape, param_shapes, fans) with its input shape checked first; the
    parameter rules also need a shape the layer takes (output_shape says which)."""
    @functools.wraps(rule)
    def checked(self: Layer, input_shape: Any) -> Any:
        shape = input_shape_of(f"{type(self).__name__}.{rule.__name__}", input_shape)
        if rule.__name__ != "output_shape":
            self.output_shape(shape)
        return rule(self, shape)

    return checked


for _rule in ("output_shape", "param_shapes", "fans"):  # the base's rules too (inherited by Flatten etc.)
    setattr(Layer, _rule, _shape_checked(Layer.__dict__[_rule]))


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

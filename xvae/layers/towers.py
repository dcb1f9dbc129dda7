"""A tower (an ordered list of layer specs) placed on its input: names, shapes, masks.

`place` runs every layer's shape rule at spec construction, so a layer that cannot take
its input raises `SpecError` naming the tower, the layer's index and type and the shapes,
before any framework is imported. Backends and the reference walk the placed layers.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
from numpy.typing import NDArray

from xvae._errors import SpecError
from xvae.layers._base import Layer, Shape, input_shape_of
from xvae.layers.dropout import Dropout

__all__ = ["Placed", "place", "dropout_layout", "draw_dropout"]


class Placed(NamedTuple):
    """One layer of a model: its canonical name, spec, shapes (no batch axis) and, for
    `Dropout`, its columns [start, stop) of the "dropout" batch array."""

    name: str
    layer: Layer
    input_shape: Shape
    output_shape: Shape
    masks: tuple[int, int] | None = None

    def param_shapes(self) -> dict[str, Shape]:
        """The layer's parameters and their shapes on this input (e.g. {"kernel": ..., "bias": ...})."""
        return self.layer.param_shapes(self.input_shape)

    @property
    def activation(self) -> str:
        """The layer's activation name ("linear" for layers without one)."""
        return getattr(self.layer, "activation", "linear")


def place(owner: str, input_shape: Shape, layers: Sequence[Layer], names: Sequence[str]) -> list[Placed]:
    """Infer every layer's output shape; SpecError names `owner`, the index, type and shapes.

    Examples:
        >>> from xvae.layers import Conv2D, Flatten
        >>> [p.output_shape for p in place("enc", (8, 8, 1), [Conv2D(4, 3, stride=2), Flatten()], ["a", "b"])]
        [(4, 4, 4), (64,)]
    """
    shape = input_shape_of(f"{owner}.input_shape", input_shape)
    for what, value in (("layers", layers), ("names", names)):
        if not isinstance(value, (list, tuple)):
            raise SpecError(f"{owner}: place takes {what} as a list. Received: {value!r:.100}")
    if len(layers) != len(names):
        raise SpecError(f"{owner}: place takes one name per layer. Received {len(layers)} layers, {len(names)} names")
    placed: list[Placed] = []
    for i, (layer, name) in enumerate(zip(layers, names)):
        if not isinstance(layer, Layer):
            raise SpecError(f"{owner}.layers[{i}] must be a layer spec such as xvae.layers.Dense(10). "
                            f"Received: {layer!r:.100}")
        try:
            out = tuple(layer.output_shape(shape))
        except SpecError as err:
            raise SpecError(f"{owner}.layers[{i}] ({type(layer).__name__}): {err}") from None
        placed.append(Placed(name, layer, shape, out))
        shape = out
    return placed


def dropout_layout(towers: dict[str, list[Placed]]) -> dict[str, list[Placed]]:
    """The towers with each Dropout's mask columns filled in, in tower order."""
    start, out = 0, {}
    for tower, layers in towers.items():
        placed = []
        for p in layers:
            if isinstance(p.layer, Dropout):
                units = math.prod(p.input_shape)
                p = p._replace(masks=(start, start + units))
                start += units
            placed.append(p)
        out[tower] = placed
    return out


def dropout_columns(towers: dict[str, list[Placed]]) -> tuple[tuple[int, int, float], ...]:
    """(lo, hi, rate) of every Dropout layer's columns in an example's row of masks, in order."""
    return tuple((int(p.masks[0]), int(p.masks[1]), float(p.layer.rate))
                 for layers in towers.values() for p in layers if p.masks is not None)


def draw_dropout(uniform: Callable[[int], NDArray[np.float32]], towers: dict[str, list[Placed]]
                 ) -> NDArray[np.float32] | None:
    """The masks of an epoch's examples from ``uniform(units)``, float32 (n, units) uniforms over
    all Dropout layers' columns (the training loop passes ``keyed.uniform(seed, epoch, DROPOUT,
    ids, units)``); a unit is kept where the uniform is >= its layer's rate, and kept units
    hold float32(1 / (1 - rate)). None when the model has no Dropout (no draw at all)."""
    columns = dropout_columns(towers)
    if not columns:
        return None
    u = uniform(columns[-1][1])
    for lo, hi, rate in columns:
        keep = u[:, lo:hi] >= np.float32(rate)
        u[:, lo:hi] = np.where(keep, np.float32(1.0 / (1.0 - rate)), np.float32(0.0))
    return u

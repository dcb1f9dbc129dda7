"""Dense: ``activation(x @ kernel + bias)`` on flat rows; kernel (in, out) (DESIGN §4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from xvae.layers._base import Array, Layer, Shape, positive_int
from xvae.layers.activations import ACTIVATIONS, check_activation

__all__ = ["Dense"]


@dataclass(frozen=True)
class Dense(Layer):
    """A fully connected layer on flat rows (put `Flatten()` before it after images).

    Attributes:
        units: output width, a positive int.
        activation: one of `xvae.layers.activations.NAMES` ("linear" by default).

    Examples:
        >>> Dense(10, "relu").output_shape((784,))
        (10,)
    """

    kind: ClassVar[str] = "dense"
    params: ClassVar[dict[str, str]] = {"kernel": "kernel", "bias": "bias"}
    units: int
    activation: str = "linear"

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", positive_int("Dense", "units", self.units))
        check_activation("Dense", self.activation)

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 1:
            raise self._fail(input_shape, "Dense takes flat rows; put Flatten() before it")
        return (self.units,)

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        return {"kernel": (input_shape[0], self.units), "bias": (self.units,)}

    def fans(self, input_shape: Shape) -> tuple[int, int]:
        return (input_shape[0], self.units)

    def describe(self) -> str:
        act = "" if self.activation == "linear" else f", {self.activation}"
        return f"Dense({self.units}{act})"

    def forward(self, params: dict[str, Array], x: Array, mask: Array | None = None) -> tuple[Array, Any]:
        y, deriv = ACTIVATIONS[self.activation](x @ params["kernel"] + params["bias"])
        return y, (x, deriv)

    def backward(self, params: dict[str, Array], cache: Any, dy: Array) -> tuple[Array, dict[str, Array]]:
        x, deriv = cache
        dpre = dy * deriv
        grads = {"kernel": x.T @ dpre, "bias": dpre.sum(axis=0)}
        return dpre @ params["kernel"].T, grads

"""torch.nn modules built from a model spec's placed layers (`xvae.naming.towers`).

Layers are built through `LAYERS`, a table keyed by layer-spec type. Every layer with
weights is reachable by its canonical layer name in `module.by_name`, which is all
`_weights` needs. Parameters are created without touching torch's global RNG
(`skip_init`) and zero-filled: the weights always come from the core's NumPy initialisers
via `set_state`.

Layouts: canonical images are NHWC; torch's convolutions and pools take NCHW. A tower
keeps each tensor in the layout its last layer produced and permutes only where the next
layer needs the other one (`Layer.layout`), so a run of conv/pool layers stays NCHW.
Kernels are transposed in `_weights.py` only. "same" padding is xvae's (TF/Flax) rule,
applied with explicit `F.pad` where the split is uneven (torch's own ``padding="same"``
splits the other way and refuses strides).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from xvae import layers as L
from xvae._specs import ClassifierSpec, ModelSpec, VAESpec
from xvae.layers import Placed
from xvae.layers.conv import conv_padding, transpose_padding
from xvae.naming import LOG_SIGMA, condition_site, towers

__all__ = ["ACTIVATIONS", "LAYERS", "VAE", "Classifier", "build"]

Activation = Callable[[torch.Tensor], torch.Tensor]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


#: Hidden-layer activations by spec name; gelu is the exact erf form, leaky_relu slope 0.01.
ACTIVATIONS: dict[str, Activation] = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "elu": F.elu,
    "gelu": partial(F.gelu, approximate="none"),
    # torch's softplus returns x itself above x = 20, where log1p(exp(-x)) < 2.1e-9 is far
    # below float32's resolution at 20 (1.9e-6): the same float32 numbers as the formula.
    "softplus": F.softplus,
    "leaky_relu": partial(F.leaky_relu, negative_slope=0.01),
    "linear": _identity,
}


def _zeros(*shape: int, device: torch.device) -> nn.Parameter:
    # torch.zeros: no draw from torch's global generator (randomness is passed, never global).
    return nn.Parameter(torch.zeros(*shape, device=device))


class Layer(nn.Module):
    """A placed layer. `layout` is what its 4-D input must be: "nchw" (convolutions and
    pools), "nhwc" (everything that reads values in canonical order) or None (flat rows)."""

    layout: ClassVar[str | None] = "nhwc"

    def __init__(self, placed: Placed) -> None:
        super().__init__()
        self.placed = placed
        self.activation = ACTIVATIONS[placed.activation]


class Dense(Layer):
    def __init__(self, placed: Placed, device: torch.device) -> None:
        super().__init__(placed)
        # torch.nn.Linear's layout: weight (out, in), transposed at the edge (_weights.py).
        self.weight = _zeros(placed.layer.units, placed.input_shape[0], device=device)
        self.bias = _zeros(placed.layer.units, device=device)

    def forward(self, x: torch.Tensor, dropout: torch.Tensor | None = None) -> torch.Tensor:
        return self.activation(F.linear(x, self.weight, self.bias))


class Conv2D(Layer):
    layout = "nchw"

    def __init__(self, placed: Placed, device: torch.device) -> None:
        super().__init__(placed)
        layer = placed.layer
        kh, kw = layer.kernel_size
        self.weight = _zeros(layer.filters, placed.input_shape[2], kh, kw, device=device)  # OIHW
        self.bias = _zeros(layer.filters, device=device)
        (top, bottom), (left, right) = (conv_padding(n, k, s, layer.padding)
                                        for n, k, s in zip(placed.input_shape[:2], (kh, kw), layer.strides))
        self.stride = layer.strides
        if top == bottom and left == right:  # symmetric: the convolution pads itself
            self.pad, self.padding = None, (top, left)
        else:
            self.pad, self.padding = (left, right, top, bottom), (0, 0)

    def forward(self, x: torch.Tensor, dropout: torch.Tensor | None = None) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        return self.activation(F.conv2d(x, self.weight, self.bias, self.stride, self.padding))


class Conv2DTranspose(Layer):
    """The adjoint of Conv2D: torch's conv_transpose2d with no padding (output (n - 1) s + k),
    then rows [before, before + out) of it, zeros past its end (xvae.layers.conv)."""

    layout = "nchw"

    def __init__(self, placed: Placed, device: torch.device) -> None:
        super().__init__(placed)
        layer = placed.layer
        kh, kw = layer.kernel_size
        self.weight = _zeros(placed.input_shape[2], layer.filters, kh, kw, device=device)  # (in, out, kh, kw)
        self.bias = _zeros(layer.filters, device=device)
        self.stride = layer.strides
        full = [(n - 1) * s + k for n, k, s in zip(placed.input_shape[:2], (kh, kw), layer.strides)]
        (top, height), (left, width) = (transpose_padding(n, k, s, layer.padding, layer.output_padding)
                                        for n, k, s in zip(placed.input_shape[:2], (kh, kw), layer.strides))
        # F.pad with negative amounts crops: one call places the window [before, before + out).
        self.pad = (-left, left + width - full[1], -top, top + height - full[0])

    def forward(self, x: torch.Tensor, dropout: torch.Tensor | None = None) -> torch.Tensor:
        y = F.pad(F.conv_transpose2d(x, self.weight, None, self.stride), self.pad)
        return self.activation(y + self.bias[:, None, None])


class LayerNorm(Layer):
    def __init__(self, placed: Placed, device: torch.device) -> None:
        super().__init__(placed)
        self.weight = _zeros(placed.input_shape[-1], device=device)  # canonical "scale"
        self.bias = _zeros(placed.input_shape[-1], device=device)
        self.epsilon = placed.layer.epsilon

    def forward(self, x: torch.Tensor, dropout: torch.Tensor | None = None) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.epsilon)


class MaxPool2D(Layer):
    layout = "nchw"

    def forward(self, x: torch.Tensor, dropout: torch.Tensor | None = None) -> torch.Tensor:
        return F.max_pool2d(x, self.placed.layer.window, self.placed.layer.strides)


class AvgPool2D(Layer):
    layout = "nchw"

    def forward(self, x: torch.Tensor, dropout: torch.Tensor | None = None) -> torch.Tensor:
        return F.avg_pool2d(x, self.placed.layer.window, self.placed.layer.strides)


class Reshape(Layer):
    """Flatten and Reshape: a C-order re-view of each (NHWC) example."""

    def forward(self, x: torch.Tensor, dropout: torch.Tensor | None = None) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.placed.output_shape)


class Dropout(Layer):
    """Multiplies by the core's mask (its columns of the "dropout" batch array); identity without."""

    def forward(self, x: torch.Tensor, dropout: torch.Tensor | None = None) -> torch.Tensor:
        if dropout is None:
            return x
        lo, hi = self.placed.masks  # type: ignore[misc]
        return x * dropout[:, lo:hi].reshape(x.shape)


def _weightless(cls: type[Layer]) -> Callable[[Placed, torch.device], Layer]:
    return lambda placed, device: cls(placed)


#: Layer spec type -> builder of the torch module for it.
LAYERS: dict[type, Callable[[Placed, torch.device], Layer]] = {
    L.Dense: Dense,
    L.Conv2D: Conv2D,
    L.Conv2DTranspose: Conv2DTranspose,
    L.LayerNorm: LayerNorm,
    L.MaxPool2D: _weightless(MaxPool2D),
    L.AvgPool2D: _weightless(AvgPool2D),
    L.Flatten: _weightless(Reshape),
    L.Reshape: _weightless(Reshape),
    L.Dropout: _weightless(Dropout),
}

_TO_NCHW, _TO_NHWC = (0, 3, 1, 2), (0, 2, 3, 1)


class Tower(nn.Module):
    """Placed layers in forward order; 4-D tensors are permuted only between layers that
    want different layouts, and handed out NHWC."""

    def __init__(self, placed: list[Placed], device: torch.device) -> None:
        super().__init__()
        for p in placed:
            if type(p.layer) not in LAYERS:
                raise NotImplementedError(f"{type(p.layer).__name__} is not implemented by the torch backend")
        self.layers = nn.ModuleList(LAYERS[type(p.layer)](p, device) for p in placed)

    def forward(self, x: torch.Tensor, dropout: torch.Tensor | None = None) -> torch.Tensor:
        layout = "nhwc"
        for layer in self.layers:
            if x.ndim == 4 and layer.layout != layout:
                x = x.permute(_TO_NCHW if layer.layout == "nchw" else _TO_NHWC)
                layout = layer.layout
            x = layer(x, dropout)
        if x.ndim == 4 and layout == "nchw":
            x = x.permute(_TO_NHWC)
        return x


def _joined(a: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """concat(a, y) on the last axis: a conditional VAE's one-hot y joins x, h or z."""
    return a if y is None else torch.cat([a, y.to(a.dtype)], dim=-1)


class _Model(nn.Module):
    #: canonical layer name -> its module (layers with weights only); see `_weights`.
    by_name: dict[str, Layer]

    def _index(self, *towers_: Tower) -> None:
        # A plain dict (not a ModuleDict): canonical names contain dots.
        self.by_name = {layer.placed.name: layer for tower in towers_ for layer in tower.layers
                        if layer.placed.param_shapes()}

    def variables_by_name(self) -> dict[str, nn.Parameter]:
        """Canonical weight name -> parameter (torch layout), in `naming.weight_shapes` order
        (tf's `Model.variables_by_name`; `_weights` transposes the kernels)."""
        out: dict[str, nn.Parameter] = {}
        for name, layer in self.by_name.items():
            for param in layer.placed.param_shapes():
                out[f"{name}.{param}"] = getattr(layer, "weight" if param in ("kernel", "scale") else param)
        if getattr(self, "log_sigma", None) is not None:
            out[LOG_SIGMA] = self.log_sigma  # type: ignore[assignment]
        return out


class VAE(_Model):
    """h = encoder(x); mean, logvar = heads(h); outputs = decoder(z)."""

    def __init__(self, spec: VAESpec, device: torch.device) -> None:
        super().__init__()
        placed = towers(spec)
        self.encoder = Tower(placed["encoder"], device)
        self.heads = Tower(placed["heads"], device)  # two linear layers, applied side by side
        self.decoder = Tower(placed["decoder"], device)
        self._index(self.encoder, self.heads, self.decoder)
        dec = spec.decoder
        shape = dec.log_sigma_shape()
        self.log_sigma = None if shape is None else _zeros(*shape, device=device)
        self.fixed_log_sigma = math.log(dec.sigma) if dec.likelihood == "gaussian" and shape is None else 0.0  # type: ignore[arg-type]
        #: where a conditional VAE's one-hot y joins the encoder (`naming.condition_site`)
        self.site = condition_site(spec)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None, dropout: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, input_dim) (a CVAE's one-hot y (B, C)) -> (mean, logvar), each (B, latents)."""
        h = self.encoder(_joined(x, y) if self.site == "input" else x, dropout)
        if self.site == "trunk":  # a CVAE on images: y joins the trunk's flat output
            h = _joined(h, y)
        mean_layer, logvar_layer = self.heads.layers
        return mean_layer(h), logvar_layer(h)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None, dropout: torch.Tensor | None = None
               ) -> torch.Tensor:
        """z (B, latents) (a CVAE: concat(z, y)) -> the decoder's outputs (B, output_dim)."""
        return self.decoder(_joined(z, y), dropout)

    def decoder_log_sigma(self) -> torch.Tensor | float:
        """log sigma of a Gaussian decoder, broadcastable to flat (B, output_dim) rows."""
        return self.fixed_log_sigma if self.log_sigma is None else self.log_sigma.reshape(-1)


class Classifier(_Model):
    """logits = the tower (x)."""

    def __init__(self, spec: ClassifierSpec, device: torch.device) -> None:
        super().__init__()
        self.net = Tower(towers(spec)["classify"], device)
        self._index(self.net)

    def classify(self, x: torch.Tensor, dropout: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x, dropout)


_MODELS: dict[type, Callable[[Any, torch.device], _Model]] = {
    VAESpec: VAE,
    ClassifierSpec: Classifier,
}

def build(spec: ModelSpec, device: torch.device | None = None) -> _Model:
    """The torch module of `spec` on `device` (the CPU if None), with zero weights (set_state fills them)."""
    if type(spec) not in _MODELS:
        raise NotImplementedError(f"{type(spec).__name__} is not implemented by the torch backend")
    return _MODELS[type(spec)](spec, torch.device("cpu") if device is None else device)

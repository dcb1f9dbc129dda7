"""torch.nn modules built from a model spec: stacks of `nn.Linear` with the spec's activations.

Layers come from `naming.dense_layers(spec)` and are built through a table keyed by layer
spec type (`Dense` today; conv layers add entries, not branches). Every `nn.Linear` is
also reachable by its canonical layer name in `module.linears`, which is all `_weights`
needs. Parameters are created without touching torch's global RNG (`skip_init`) and
zero-filled: the weights always come from the core's NumPy initialisers via `set_state`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xvae._specs import ClassifierSpec, ModelSpec, VAESpec
from xvae.naming import Dense, dense_layers

__all__ = ["ACTIVATIONS", "LAYERS", "MLP", "ClassifierModule", "VAEModule", "build"]

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


def _dense(layer: Dense, device: torch.device) -> nn.Linear:
    # skip_init: no draw from torch's global generator (randomness is passed, never global).
    linear = nn.utils.skip_init(nn.Linear, layer.fan_in, layer.fan_out, device=device)
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
    return linear


#: Layer spec type -> builder of the torch module for it.
LAYERS: dict[type, Callable[[Any, torch.device], nn.Module]] = {Dense: _dense}


def _layer(layer: Any, device: torch.device) -> nn.Module:
    try:
        builder = LAYERS[type(layer)]
    except KeyError:
        raise NotImplementedError(f"{type(layer).__name__} is not implemented by the torch backend") from None
    return builder(layer, device)


class MLP(nn.Module):
    """Dense layers in forward order, each followed by its activation."""

    def __init__(self, tower: list[Dense], device: torch.device) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_layer(layer, device) for layer in tower)
        self.names = [layer.name for layer in tower]
        self.activations = [ACTIVATIONS[layer.activation] for layer in tower]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for linear, act in zip(self.layers, self.activations):
            x = act(linear(x))
        return x


class _Model(nn.Module):
    linears: dict[str, nn.Linear]

    def _index(self, *towers: MLP) -> None:
        # A plain dict (not a ModuleDict): canonical names contain dots.
        linears: dict[str, nn.Linear] = {}
        for tower in towers:
            linears.update(zip(tower.names, tower.layers))  # type: ignore[arg-type]
        self.linears = linears


class VAEModule(_Model):
    """h = encoder(x); mean, logvar = heads(h); logits = decoder(z)."""

    def __init__(self, spec: VAESpec, device: torch.device) -> None:
        super().__init__()
        towers = dense_layers(spec)
        self.encoder = MLP(towers["encoder"], device)
        self.heads = MLP(towers["heads"], device)  # two linear layers, applied side by side
        self.decoder = MLP(towers["decoder"], device)
        self._index(self.encoder, self.heads, self.decoder)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        mean_layer, logvar_layer = self.heads.layers
        return mean_layer(h), logvar_layer(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


class ClassifierModule(_Model):
    """logits = output(hidden layers(x))."""

    def __init__(self, spec: ClassifierSpec, device: torch.device) -> None:
        super().__init__()
        self.net = MLP(dense_layers(spec)["classify"], device)
        self._index(self.net)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


_MODELS: dict[type, Callable[[Any, torch.device], _Model]] = {
    VAESpec: VAEModule,
    ClassifierSpec: ClassifierModule,
}


def build(spec: ModelSpec, device: torch.device) -> _Model:
    """The torch module of `spec` on `device`, with zero weights (set_state fills them)."""
    if type(spec) not in _MODELS:
        raise NotImplementedError(f"{type(spec).__name__} is not implemented by the torch backend")
    return _MODELS[type(spec)](spec, device)

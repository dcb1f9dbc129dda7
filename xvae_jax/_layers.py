"""Flax (linen) modules for xvae's models, built from `xvae.naming.dense_layers(spec)`.

Why linen rather than nnx: the program keeps (params, optimizer state) as one pytree and
jits a pure step over it, donating the buffers. linen's ``Module.apply({"params": p}, ...)``
is exactly such a pure function of a plain dict; nnx modules are mutable objects that would
need ``nnx.split``/``nnx.merge`` at every jit boundary (or ``nnx.jit``, which walks the
object graph in Python on every call: overhead on each of thousands of steps).

Every Dense layer is named by its canonical layer name, so the params tree is flat and
readable: ``params["encoder.layers.0"]["kernel"]`` is canonical ``encoder.layers.0.kernel``,
already (in, out). `xvae_jax._weights` is the one place that maps between the two.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from xvae import naming
from xvae._specs import ClassifierSpec, ModelSpec, VAESpec

__all__ = ["ACTIVATIONS", "LAYERS", "DenseLayer", "VAE", "Classifier", "build"]

Array = jax.Array

#: Hidden-layer activations by spec name (xvae._specs.ACTIVATIONS); heads/outputs are "linear".
ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "linear": lambda x: x,
    "relu": nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": nn.sigmoid,
    "elu": nn.elu,  # alpha = 1
    "gelu": partial(nn.gelu, approximate=False),  # exact erf form, as the reference and torch
    "softplus": nn.softplus,  # logaddexp(x, 0): stable for large |x|
    "leaky_relu": partial(nn.leaky_relu, negative_slope=0.01),
}


class DenseLayer(nn.Dense):
    """``activation(x @ kernel + bias)``; kernel (in, out), as canonical weights are.

    A subclass (not a wrapper module), so kernel and bias sit directly under the layer's
    canonical name in the params tree.
    """

    activation: str = "linear"

    def __call__(self, inputs: Array) -> Array:  # type: ignore[override]
        return ACTIVATIONS[self.activation](super().__call__(inputs))


def _dense(layer: naming.Dense) -> nn.Module:
    # precision=None: the jitted functions scope jax.default_matmul_precision around the
    # trace (xvae_jax._backend), which fixes every matmul, forward and backward.
    return DenseLayer(features=layer.fan_out, activation=layer.activation, name=layer.name)


#: Layer spec type -> flax module factory. A new layer kind (Conv2D, ...) is a new entry.
LAYERS: dict[type, Callable[[Any], nn.Module]] = {naming.Dense: _dense}


def _build(layers: Sequence[Any]) -> tuple[nn.Module, ...]:
    for layer in layers:
        if type(layer) not in LAYERS:
            raise NotImplementedError(f"{type(layer).__name__} is not implemented by the jax backend")
    return tuple(LAYERS[type(layer)](layer) for layer in layers)


def _sequential(modules: Sequence[nn.Module], x: Array) -> Array:
    for module in modules:
        x = module(x)
    return x


class VAE(nn.Module):
    """Encoder trunk -> (mean, logvar) heads; z = mean + exp(logvar / 2) * noise -> decoder logits.

    Methods are the `xvae.backend.FUNCTIONS["vae"]` names; `__call__` is the training forward.
    """

    encoder: tuple[Any, ...]
    heads: tuple[Any, ...]
    decoder: tuple[Any, ...]
    #: Batch keys `__call__` takes, in order.
    inputs: ClassVar[tuple[str, ...]] = ("x", "noise")

    def setup(self) -> None:
        self.trunk = _build(self.encoder)
        self.mean, self.logvar = _build(self.heads)
        self.body = _build(self.decoder)

    def encode(self, x: Array) -> dict[str, Array]:
        h = _sequential(self.trunk, x)
        return {"mean": self.mean(h), "logvar": self.logvar(h)}

    def decode(self, z: Array) -> dict[str, Array]:
        return {"logits": _sequential(self.body, z)}

    def __call__(self, x: Array, noise: Array) -> dict[str, Array]:
        q = self.encode(x)
        z = q["mean"] + jnp.exp(0.5 * q["logvar"]) * noise  # the reparameterisation trick
        return {**self.decode(z), **q}


class Classifier(nn.Module):
    """Hidden layers -> linear output logits (n, outputs)."""

    layers: tuple[Any, ...]
    inputs: ClassVar[tuple[str, ...]] = ("x",)

    def setup(self) -> None:
        self.tower = _build(self.layers)

    def classify(self, x: Array) -> dict[str, Array]:
        return {"logits": _sequential(self.tower, x)}

    def __call__(self, x: Array) -> dict[str, Array]:
        return self.classify(x)


def build(spec: ModelSpec) -> VAE | Classifier:
    """The flax module of a model spec (unbound: weights come from `set_state`, never `init`)."""
    towers = naming.dense_layers(spec)
    if isinstance(spec, VAESpec):
        return VAE(tuple(towers["encoder"]), tuple(towers["heads"]), tuple(towers["decoder"]))
    if isinstance(spec, ClassifierSpec):
        return Classifier(tuple(towers["classify"]))
    raise NotImplementedError(f"{type(spec).__name__} is not implemented by the jax backend")

"""The model as a `tf.Module` of plain `tf.Variable`s, built from the spec's layer list.

Why `tf.Module` and not Keras layers: Keras 3 is multi-backend, so `keras.layers.Dense`
holds a *JAX* or *torch* variable when the user has set ``KERAS_BACKEND``; it creates its
variables lazily on first call, names them by its own scheme, and adds autocast / masking /
name-scope machinery to every call. A `tf.Module` holds exactly one `tf.Variable` per
canonical weight, created eagerly on the chosen device, which keeps the translation in
`_weights.py` a plain dict lookup and the traced step free of framework bookkeeping.

Layers are built through `LAYERS`, a table keyed by layer-spec type (`naming.Dense` today;
conv layers add entries, not methods). Hidden activations come from `ACTIVATIONS`.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before tensorflow is imported

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from xvae._specs import ModelSpec
from xvae.naming import Dense as DenseSpec
from xvae.naming import dense_layers

__all__ = ["ACTIVATIONS", "LAYERS", "Dense", "Model"]

#: Hidden-layer activations by spec name. gelu is the exact erf form (not the tanh
#: approximation); leaky_relu has negative slope 0.01, as the float64 reference.
ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "linear": tf.identity,
    "relu": tf.nn.relu,
    "tanh": tf.math.tanh,
    "sigmoid": tf.math.sigmoid,
    "elu": tf.nn.elu,
    "gelu": lambda x: tf.nn.gelu(x, approximate=False),
    "softplus": tf.math.softplus,
    "leaky_relu": lambda x: tf.nn.leaky_relu(x, alpha=0.01),
}


class Dense(tf.Module):
    """y = activation(x @ kernel + bias); kernel (fan_in, fan_out), as the canonical layout."""

    def __init__(self, spec: DenseSpec) -> None:
        super().__init__(name=None)
        self.spec = spec
        # Zeros until set_state: initial values are drawn by the core, in NumPy.
        self.kernel = tf.Variable(tf.zeros((spec.fan_in, spec.fan_out), tf.float32),
                                  name=f"{spec.name}.kernel")
        self.bias = tf.Variable(tf.zeros((spec.fan_out,), tf.float32), name=f"{spec.name}.bias")
        self.activation = ACTIVATIONS[spec.activation]

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        # bias_add (not `+`): Grappler's remapper fuses MatMul + BiasAdd (+ Relu) into one
        # oneDNN kernel when the step runs without XLA; the arithmetic is the same add.
        return self.activation(tf.nn.bias_add(tf.matmul(x, self.kernel), self.bias))


#: layer-spec type -> builder of the tf.Module that runs it.
LAYERS: dict[type, Callable[[Any], tf.Module]] = {DenseSpec: Dense}


def _build(spec: Any) -> tf.Module:
    try:
        builder = LAYERS[type(spec)]
    except KeyError:
        raise NotImplementedError(
            f"{type(spec).__name__} layers are not implemented by the tf backend"
        ) from None
    return builder(spec)


class Model(tf.Module):
    """Towers of layers in forward order, as `naming.dense_layers(spec)` lists them.

    A classifier has the tower "classify"; a VAE has "encoder" (trunk), "heads"
    (mean, logvar: both read the trunk's output) and "decoder".
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(name="xvae_model")
        self.spec = spec
        self.towers: dict[str, list[tf.Module]] = {
            tower: [_build(layer) for layer in layers] for tower, layers in dense_layers(spec).items()
        }

    def layers(self) -> list[tf.Module]:
        """Every layer, in the order of `naming.weight_shapes(spec)`."""
        return [layer for tower in self.towers.values() for layer in tower]

    def _tower(self, name: str, x: tf.Tensor) -> tf.Tensor:
        for layer in self.towers[name]:
            x = layer(x)
        return x

    def encode(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """x (B, input_dim) -> (mean, logvar), each (B, latents)."""
        h = self._tower("encoder", x)
        mean_head, logvar_head = self.towers["heads"]
        return mean_head(h), logvar_head(h)

    def decode(self, z: tf.Tensor) -> tf.Tensor:
        """z (B, latents) -> Bernoulli logits (B, output_dim)."""
        return self._tower("decoder", z)

    def classify(self, x: tf.Tensor) -> tf.Tensor:
        """x (B, input_dim) -> logits (B, outputs)."""
        return self._tower("classify", x)

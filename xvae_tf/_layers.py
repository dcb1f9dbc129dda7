"""The model as a `tf.Module` of plain `tf.Variable`s, built from the spec's layer list.

Why `tf.Module` and not Keras layers: Keras 3 is multi-backend, so `keras.layers.Dense`
holds a *JAX* or *torch* variable when the user has set ``KERAS_BACKEND``; it creates its
variables lazily on first call, names them by its own scheme, and adds autocast / masking /
name-scope machinery to every call. A `tf.Module` holds exactly one `tf.Variable` per
canonical weight, created eagerly on the chosen device, which keeps the translation in
`_weights.py` a plain dict lookup and the traced step free of framework bookkeeping.

Layers are built through `LAYERS`, a table keyed by layer-spec type (`xvae.layers`).
Hidden activations come from `ACTIVATIONS`. Images are NHWC and conv kernels HWIO, which
is TensorFlow's own layout: nothing is transposed.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before tensorflow is imported

import math
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from xvae import layers as L
from xvae._specs import ModelSpec, VAESpec
from xvae.layers import Placed
from xvae.layers.conv import conv_padding, transpose_padding
from xvae.naming import LOG_SIGMA, condition_site, towers

__all__ = ["ACTIVATIONS", "LAYERS", "VAE", "Classifier", "build"]

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


class _Layer(tf.Module):
    """A layer: `params` maps each canonical parameter name to its variable, in the
    order of `Layer.param_shapes` (zeros until set_state: values are drawn by the core)."""

    def __init__(self, placed: Placed) -> None:
        super().__init__(name=None)
        self.placed = placed
        self.params: dict[str, tf.Variable] = {
            param: tf.Variable(tf.zeros(shape, tf.float32), name=f"{placed.name}.{param}")
            for param, shape in placed.param_shapes().items()
        }
        self.activation = ACTIVATIONS[placed.activation]


class Dense(_Layer):
    """y = activation(x @ kernel + bias); kernel (fan_in, fan_out), as the canonical layout."""

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        # bias_add (not `+`): Grappler's remapper fuses MatMul + BiasAdd (+ Relu) into one
        # oneDNN kernel when the step runs without XLA; the arithmetic is the same add.
        return self.activation(tf.nn.bias_add(tf.matmul(x, self.params["kernel"]), self.params["bias"]))


class Conv2D(_Layer):
    """NHWC / HWIO convolution with xvae's explicit (before, after) padding."""

    def __init__(self, placed: Placed) -> None:
        super().__init__(placed)
        layer = placed.layer
        pads = [conv_padding(n, k, s, layer.padding)
                for n, k, s in zip(placed.input_shape[:2], layer.kernel_size, layer.strides)]
        # xvae's "same"/"valid" are TensorFlow's own rules: the named padding (measured
        # faster under XLA than the equal explicit list); an int p is an explicit list.
        named = layer.padding if isinstance(layer.padding, str) else None
        self.padding = named.upper() if named else [[0, 0], list(pads[0]), list(pads[1]), [0, 0]]
        self.strides = [1, *layer.strides, 1]

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        y = tf.nn.conv2d(x, self.params["kernel"], self.strides, self.padding)
        return self.activation(tf.nn.bias_add(y, self.params["bias"]))


class Conv2DTranspose(_Layer):
    """The adjoint of Conv2D, kernel (kh, kw, out, in). "valid", and "same" without
    output_padding, are TensorFlow's conv2d_transpose with that padding and the output size
    (TensorFlow defines it as this adjoint); otherwise conv2d_transpose "VALID" (output
    (n - 1) s + k), then rows [before, before + out) of it, zeros past its end
    (xvae.layers.conv)."""

    def __init__(self, placed: Placed) -> None:
        super().__init__(placed)
        layer = placed.layer
        self.strides = [1, *layer.strides, 1]
        self.full = [(n - 1) * s + k for n, k, s in zip(placed.input_shape[:2], layer.kernel_size, layer.strides)]
        self.crop = [transpose_padding(n, k, s, layer.padding, layer.output_padding)
                     for n, k, s in zip(placed.input_shape[:2], layer.kernel_size, layer.strides)]
        direct = layer.padding == "valid" or (layer.padding == "same" and layer.output_padding == 0)
        self.direct = str(layer.padding).upper() if direct else None

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        filters = self.placed.layer.filters
        if self.direct:
            shape = tf.stack([tf.shape(x)[0], *self.placed.output_shape[:2], filters])
            y = tf.nn.conv2d_transpose(x, self.params["kernel"], shape, self.strides, self.direct)
            return self.activation(tf.nn.bias_add(y, self.params["bias"]))
        shape = tf.stack([tf.shape(x)[0], self.full[0], self.full[1], filters])
        y = tf.nn.conv2d_transpose(x, self.params["kernel"], shape, self.strides, "VALID")
        (top, height), (left, width) = self.crop
        extra_h = max(top + height - self.full[0], 0)
        extra_w = max(left + width - self.full[1], 0)
        if extra_h or extra_w:
            y = tf.pad(y, [[0, 0], [0, extra_h], [0, extra_w], [0, 0]])
        y = y[:, top:top + height, left:left + width, :]
        return self.activation(tf.nn.bias_add(y, self.params["bias"]))


class LayerNorm(_Layer):
    """Over the last axis; var = mean((x - mean)^2) (tf.nn.moments' form)."""

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
        y = (x - mean) * tf.math.rsqrt(var + self.placed.layer.epsilon)
        return y * self.params["scale"] + self.params["bias"]


class MaxPool2D(_Layer):
    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        layer = self.placed.layer
        return tf.nn.max_pool2d(x, layer.window, layer.strides, "VALID")


class AvgPool2D(_Layer):
    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        layer = self.placed.layer
        return tf.nn.avg_pool2d(x, layer.window, layer.strides, "VALID")


class Reshape(_Layer):
    """Flatten and Reshape: a C-order re-view of each example (NHWC)."""

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.reshape(x, [-1, *self.placed.output_shape])


class Dropout(_Layer):
    """Multiplies by the core's mask (its columns of the "dropout" batch array); identity without."""

    def __call__(self, x: tf.Tensor, dropout: tf.Tensor | None = None) -> tf.Tensor:
        if dropout is None:
            return x
        lo, hi = self.placed.masks  # type: ignore[misc]
        return x * tf.reshape(dropout[:, lo:hi], tf.shape(x))


#: layer-spec type -> builder of the tf.Module that runs it.
LAYERS: dict[type, Callable[[Placed], _Layer]] = {
    L.Dense: Dense,
    L.Conv2D: Conv2D,
    L.Conv2DTranspose: Conv2DTranspose,
    L.LayerNorm: LayerNorm,
    L.MaxPool2D: MaxPool2D,
    L.AvgPool2D: AvgPool2D,
    L.Flatten: Reshape,
    L.Reshape: Reshape,
    L.Dropout: Dropout,
}


def _build(placed: Placed) -> _Layer:
    try:
        builder = LAYERS[type(placed.layer)]
    except KeyError:
        raise NotImplementedError(
            f"{type(placed.layer).__name__} layers are not implemented by the tf backend"
        ) from None
    return builder(placed)


def _joined(a: tf.Tensor, y: tf.Tensor | None) -> tf.Tensor:
    """concat(a, y) on the last axis: a conditional VAE's one-hot y joins x, h or z."""
    return a if y is None else tf.concat([a, tf.cast(y, a.dtype)], axis=-1)


class Model(tf.Module):
    """Towers of layers in forward order, as `naming.towers(spec)` lists them.

    A classifier has the tower "classify"; a VAE has "encoder" (trunk), "heads"
    (mean, logvar: both read the trunk's output) and "decoder"; a Gaussian decoder with a
    learned scale has the variable `log_sigma` (canonical `decoder.log_sigma`).
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(name="xvae_model")
        self.spec = spec
        self.towers: dict[str, list[_Layer]] = {
            tower: [_build(p) for p in placed] for tower, placed in towers(spec).items()
        }
        self.log_sigma: tf.Variable | None = None
        self.fixed_log_sigma = 0.0
        #: where a conditional VAE's one-hot y joins the encoder (`naming.condition_site`)
        self.site = condition_site(spec)
        if isinstance(spec, VAESpec) and spec.decoder.likelihood == "gaussian":
            shape = spec.decoder.log_sigma_shape()
            if shape is not None:
                self.log_sigma = tf.Variable(tf.zeros(shape, tf.float32), name=LOG_SIGMA)
            else:
                self.fixed_log_sigma = math.log(spec.decoder.sigma)  # type: ignore[arg-type]

    def variables_by_name(self) -> dict[str, tf.Variable]:
        """Canonical weight name -> variable, in `naming.weight_shapes(spec)` order."""
        out = {f"{layer.placed.name}.{param}": var
               for tower in self.towers.values() for layer in tower for param, var in layer.params.items()}
        if self.log_sigma is not None:
            out[LOG_SIGMA] = self.log_sigma
        return out

    def decoder_log_sigma(self) -> tf.Tensor:
        """log sigma of a Gaussian decoder, broadcastable to flat (B, output_dim) rows."""
        if self.log_sigma is None:
            return tf.constant(self.fixed_log_sigma, tf.float32)
        return tf.reshape(self.log_sigma, [-1])

    def _tower(self, name: str, x: tf.Tensor, dropout: tf.Tensor | None) -> tf.Tensor:
        for layer in self.towers[name]:
            x = layer(x, dropout) if isinstance(layer, Dropout) else layer(x)
        return x

    def encode(self, x: tf.Tensor, y: tf.Tensor | None = None, dropout: tf.Tensor | None = None
               ) -> tuple[tf.Tensor, tf.Tensor]:
        """x (B, input_dim) (a CVAE's one-hot y (B, C)) -> (mean, logvar), each (B, latents)."""
        h = self._tower("encoder", _joined(x, y) if self.site == "input" else x, dropout)
        if self.site == "trunk":  # a CVAE on images: y joins the trunk's flat output
            h = _joined(h, y)
        mean_head, logvar_head = self.towers["heads"]
        return mean_head(h), logvar_head(h)

    def decode(self, z: tf.Tensor, y: tf.Tensor | None = None, dropout: tf.Tensor | None = None) -> tf.Tensor:
        """z (B, latents) (a CVAE: concat(z, y)) -> the decoder's outputs (logits, or a Gaussian mean) (B, output_dim)."""
        return self._tower("decoder", _joined(z, y), dropout)

    def classify(self, x: tf.Tensor, dropout: tf.Tensor | None = None) -> tf.Tensor:
        """x (B, input_dim) -> logits (B, outputs)."""
        return self._tower("classify", x, dropout)


class VAE(Model):
    """A VAE's towers: `encode` and `decode` (the names the jax and torch backends use)."""


class Classifier(Model):
    """A classifier's tower: `classify`."""


def build(spec: ModelSpec, device: str | None = None) -> Model:
    """The tf.Module of `spec` with zero variables (set_state fills them), on `device` if given."""
    cls = VAE if isinstance(spec, VAESpec) else Classifier
    if device is None:
        return cls(spec)
    with tf.device(device):
        return cls(spec)

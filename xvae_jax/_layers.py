"""Flax (linen) modules for xvae's models, built from `xvae.naming.towers(spec)`.

Why linen rather than nnx: the program keeps (params, optimizer state) as one pytree and
jits a pure step over it, donating the buffers. linen's ``Module.apply({"params": p}, ...)``
is exactly such a pure function of a plain dict; nnx modules are mutable objects that would
need ``nnx.split``/``nnx.merge`` at every jit boundary (or ``nnx.jit``, which walks the
object graph in Python on every call: overhead on each of thousands of steps).

Every layer with weights is named by its canonical layer name, so the params tree is flat
and readable: ``params["encoder.layers.0"]["kernel"]`` is canonical
``encoder.layers.0.kernel``, already in the canonical layout (Dense (in, out), Conv HWIO,
ConvTranspose (kh, kw, out, in) with ``transpose_kernel=True``: without it Flax's
ConvTranspose is not the adjoint of Conv, flax#3137). `xvae_jax._weights` is the one place
that maps between the two. `LAYERS` maps each layer-spec type to its builder.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Callable, ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from xvae import layers as L
from xvae import naming
from xvae._specs import ClassifierSpec, ModelSpec, VAESpec
from xvae.layers.conv import conv_padding, transpose_padding

__all__ = ["ACTIVATIONS", "LAYERS", "VAE", "Classifier", "build"]

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


class ConvLayer(nn.Conv):
    """``activation(conv(x, kernel) + bias)``, NHWC / HWIO, explicit (before, after) padding."""

    activation: str = "linear"

    def __call__(self, inputs: Array) -> Array:  # type: ignore[override]
        return ACTIVATIONS[self.activation](super().__call__(inputs))


class ConvTransposeLayer(nn.ConvTranspose):
    """The adjoint of ConvLayer (``transpose_kernel=True``, kernel (kh, kw, out, in));
    the padding pairs place output ``i * s + j - before`` (xvae.layers.conv)."""

    activation: str = "linear"

    def __call__(self, inputs: Array) -> Array:  # type: ignore[override]
        return ACTIVATIONS[self.activation](super().__call__(inputs))


class LayerNormLayer(nn.Module):
    """LayerNorm over the last axis with var = mean((x - mean)^2) (as every backend)."""

    epsilon: float

    @nn.compact
    def __call__(self, x: Array) -> Array:
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
        bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
        centred = x - jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(centred), axis=-1, keepdims=True)
        return centred * jax.lax.rsqrt(var + self.epsilon) * scale + bias


class LogSigma(nn.Module):
    """The learned Gaussian ``log_sigma``, a module named "decoder" (-> decoder.log_sigma)."""

    shape: tuple[int, ...]

    @nn.compact
    def __call__(self) -> Array:
        return self.param("log_sigma", nn.initializers.zeros, self.shape)


def _dense(p: L.Placed) -> nn.Module:
    # precision=None: the jitted functions scope jax.default_matmul_precision around the
    # trace (xvae_jax._backend), which fixes every matmul and conv, forward and backward.
    return DenseLayer(features=p.layer.units, activation=p.layer.activation, name=p.name)


def _conv(p: L.Placed) -> nn.Module:
    layer = p.layer
    pads = [conv_padding(n, k, s, layer.padding)
            for n, k, s in zip(p.input_shape[:2], layer.kernel_size, layer.strides)]
    return ConvLayer(features=layer.filters, kernel_size=layer.kernel_size, strides=layer.strides,
                     padding=pads, activation=layer.activation, name=p.name)


def _conv_transpose(p: L.Placed) -> nn.Module:
    layer = p.layer
    pads = []
    for n, k, s in zip(p.input_shape[:2], layer.kernel_size, layer.strides):
        before, out = transpose_padding(n, k, s, layer.padding, layer.output_padding)
        # lax.conv_transpose pads the stride-dilated input: `lo` zeros before puts input i,
        # tap j at i*s + j - (k - 1 - lo); negative pads crop.
        pads.append((k - 1 - before, out - (n - 1) * s - 1 + before))
    return ConvTransposeLayer(features=layer.filters, kernel_size=layer.kernel_size, strides=layer.strides,
                              padding=pads, transpose_kernel=True, activation=layer.activation, name=p.name)


def _layer_norm(p: L.Placed) -> nn.Module:
    return LayerNormLayer(epsilon=p.layer.epsilon, name=p.name)


def _max_pool(p: L.Placed) -> Callable[[Array], Array]:
    return partial(nn.max_pool, window_shape=p.layer.window, strides=p.layer.strides, padding="VALID")


def _avg_pool(p: L.Placed) -> Callable[[Array], Array]:
    return partial(nn.avg_pool, window_shape=p.layer.window, strides=p.layer.strides, padding="VALID")


def _reshape(p: L.Placed) -> Callable[[Array], Array]:
    shape = p.output_shape
    return lambda x: jnp.reshape(x, (x.shape[0], *shape))


def _dropout(p: L.Placed) -> Callable[[Array], Array]:
    return lambda x: x  # the mask is applied by `_sequential` (it is an input, not a weight)


#: Layer spec type -> builder of the flax module (or pure function) that runs it.
LAYERS: dict[type, Callable[[L.Placed], Any]] = {
    L.Dense: _dense,
    L.Conv2D: _conv,
    L.Conv2DTranspose: _conv_transpose,
    L.LayerNorm: _layer_norm,
    L.MaxPool2D: _max_pool,
    L.AvgPool2D: _avg_pool,
    L.Flatten: _reshape,
    L.Reshape: _reshape,
    L.Dropout: _dropout,
}


def _build(placed: Sequence[L.Placed]) -> tuple[Any, ...]:
    for p in placed:
        if type(p.layer) not in LAYERS:
            raise NotImplementedError(f"{type(p.layer).__name__} is not implemented by the jax backend")
    return tuple(LAYERS[type(p.layer)](p) for p in placed)


def _joined(a: Array, y: Array | None) -> Array:
    """concat(a, y) on the last axis: a conditional VAE's one-hot y joins x, h or z."""
    return a if y is None else jnp.concatenate([a, y.astype(a.dtype)], axis=-1)


def _sequential(placed: Sequence[L.Placed], built: Sequence[Any], x: Array, dropout: Array | None) -> Array:
    for p, layer in zip(placed, built):
        if p.masks is not None:
            if dropout is not None:
                x = x * jnp.reshape(dropout[:, p.masks[0]:p.masks[1]], x.shape)
        else:
            x = layer(x)
    return x


class VAE(nn.Module):
    """Encoder trunk -> (mean, logvar) heads; z = mean + exp(logvar / 2) * noise -> decoder logits.

    Methods are the `xvae.backend.FUNCTIONS["vae"]` names; `__call__` is the training forward.
    """

    encoder: tuple[Any, ...]
    heads: tuple[Any, ...]
    decoder: tuple[Any, ...]
    #: log sigma of a Gaussian decoder: a learned weight's shape, or a fixed float.
    log_sigma: Any = None
    #: where a conditional VAE's one-hot y joins the encoder (`naming.condition_site`): "input", "trunk", None
    site: str | None = None
    #: Batch keys `__call__` takes, in order.
    inputs: ClassVar[tuple[str, ...]] = ("x", "noise")

    def setup(self) -> None:
        self.trunk = _build(self.encoder)
        self.mean, self.logvar = _build(self.heads)
        self.body = _build(self.decoder)
        if isinstance(self.log_sigma, tuple):
            self.scale = LogSigma(self.log_sigma, name="decoder")

    def encode(self, x: Array, y: Array | None = None, dropout: Array | None = None) -> dict[str, Array]:
        h = _sequential(self.encoder, self.trunk, _joined(x, y) if self.site == "input" else x, dropout)
        if self.site == "trunk":
            h = _joined(h, y)
        return {"mean": self.mean(h), "logvar": self.logvar(h)}

    def decode(self, z: Array, y: Array | None = None, dropout: Array | None = None) -> dict[str, Array]:
        return {"logits": _sequential(self.decoder, self.body, _joined(z, y), dropout)}

    def _with_log_sigma(self, out: dict[str, Array]) -> dict[str, Array]:
        if isinstance(self.log_sigma, tuple):
            out["log_sigma"] = jnp.reshape(self.scale(), (-1,))
        elif self.log_sigma is not None:
            out["log_sigma"] = jnp.float32(math.log(self.log_sigma))
        return out

    def __call__(self, x: Array, noise: Array, y: Array | None = None, dropout: Array | None = None
                 ) -> dict[str, Array]:
        q = self.encode(x, y, dropout)
        z = q["mean"] + jnp.exp(0.5 * q["logvar"]) * noise  # the reparameterisation trick
        return self._with_log_sigma({**self.decode(z, y, dropout), **q})

    def importance(self, x: Array, noise: Array, y: Array | None = None, dropout: Array | None = None
                   ) -> dict[str, Array]:
        """x (B, d), noise (B, K, latents) (a CVAE's y (B, C)) -> q's "mean"/"logvar" (B,
        latents), "z" (B, K, latents) and the decoder's outputs for the B*K codes
        (example-major rows; example b's y and dropout mask with each of its K codes)."""
        q = self.encode(x, y, dropout)
        z = q["mean"][:, None, :] + jnp.exp(0.5 * q["logvar"])[:, None, :] * noise
        k = noise.shape[1]
        rows_y = None if y is None else jnp.repeat(y, k, axis=0)
        rows_dropout = None if dropout is None else jnp.repeat(dropout, k, axis=0)
        out = self.decode(jnp.reshape(z, (-1, z.shape[-1])), rows_y, rows_dropout)
        return self._with_log_sigma({**out, **q, "z": z})


class Classifier(nn.Module):
    """Layers -> logits (n, outputs)."""

    layers: tuple[Any, ...]
    inputs: ClassVar[tuple[str, ...]] = ("x",)

    def setup(self) -> None:
        self.tower = _build(self.layers)

    def classify(self, x: Array, dropout: Array | None = None) -> dict[str, Array]:
        return {"logits": _sequential(self.layers, self.tower, x, dropout)}

    def __call__(self, x: Array, dropout: Array | None = None) -> dict[str, Array]:
        return self.classify(x, dropout)


def build(spec: ModelSpec, device: Any = None) -> VAE | Classifier:
    """The flax module of a model spec (unbound: weights come from `set_state`, never `init`;
    flax modules hold no arrays, so `device` is unused: the params tree is placed by `_weights`)."""
    towers = naming.towers(spec)
    if isinstance(spec, VAESpec):
        dec = spec.decoder
        log_sigma = dec.log_sigma_shape() or (dec.sigma if dec.likelihood == "gaussian" else None)
        return VAE(tuple(towers["encoder"]), tuple(towers["heads"]), tuple(towers["decoder"]), log_sigma,
                   naming.condition_site(spec))
    if isinstance(spec, ClassifierSpec):
        return Classifier(tuple(towers["classify"]))
    raise NotImplementedError(f"{type(spec).__name__} is not implemented by the jax backend")

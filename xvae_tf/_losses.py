"""Loss specs implemented in TensorFlow, dispatched by spec type (`LOSSES`).

Each entry maps (model, batch) to *per-example* values, one per name in `spec.metrics`
("loss" first); the program reduces them with the masked mean
``sum(mask * per_example) / sum(mask)``. Logits in, never probabilities:

- BCE is `tf.nn.sigmoid_cross_entropy_with_logits`, which computes exactly
  ``max(x, 0) - x*y + log1p(exp(-|x|))`` (DESIGN §5) and stays finite and exact at
  saturated logits (±88, ±104, ±1e9 checked against the float64 reference, eager and XLA).
- Softmax CE is `tf.nn.sparse_softmax_cross_entropy_with_logits` (log-sum-exp form).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before tensorflow is imported

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from xvae.losses import (
    BernoulliELBO,
    BinaryCrossEntropy,
    CategoricalCrossEntropy,
    LossSpec,
)

__all__ = ["LOSSES", "loss_fn", "masked_mean"]

PerExample = dict[str, tf.Tensor]


def _bce(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def _elbo(model: Any, batch: dict[str, tf.Tensor]) -> PerExample:
    """Negative ELBO per example: sum_pixels BCE(logits, x) + beta * KL, z = mean + exp(v/2) eps."""
    x = batch["x"]
    mean, logvar = model.encode(x)
    z = mean + tf.exp(0.5 * logvar) * batch["noise"]
    logits = model.decode(z)
    recon = tf.reduce_sum(_bce(logits, x), axis=-1)
    kl = -0.5 * tf.reduce_sum(1.0 + logvar - tf.square(mean) - tf.exp(logvar), axis=-1)
    return {"loss": recon + batch["beta"] * kl, "reconstruction": recon, "kl": kl}


def _binary(model: Any, batch: dict[str, tf.Tensor]) -> PerExample:
    """BCE of one logit per example against a 0/1 float label; accuracy counts logit > 0."""
    logits = model.classify(batch["x"])[:, 0]
    y = batch["y"]
    correct = tf.cast(tf.equal(logits > 0.0, y > 0.5), tf.float32)
    return {"loss": _bce(logits, y), "accuracy": correct}


def _categorical(model: Any, batch: dict[str, tf.Tensor]) -> PerExample:
    """Softmax CE against int32 class ids; accuracy is argmax == label."""
    logits = model.classify(batch["x"])
    y = batch["y"]
    per = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), y), tf.float32)
    return {"loss": per, "accuracy": correct}


#: loss-spec type -> (model, batch of tensors) -> per-example values by metric name.
LOSSES: dict[type, Callable[[Any, dict[str, tf.Tensor]], PerExample]] = {
    BernoulliELBO: _elbo,
    BinaryCrossEntropy: _binary,
    CategoricalCrossEntropy: _categorical,
}


def loss_fn(spec: LossSpec) -> Callable[[Any, dict[str, tf.Tensor]], PerExample]:
    """The implementation of `spec`, or NotImplementedError naming it."""
    try:
        return LOSSES[type(spec)]
    except KeyError:
        raise NotImplementedError(f"{type(spec).__name__} is not implemented by the tf backend") from None


def masked_mean(per_example: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """``sum(mask * per_example) / sum(mask)``: padded rows never count."""
    return tf.reduce_sum(mask * per_example) / tf.reduce_sum(mask)

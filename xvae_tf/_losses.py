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

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from xvae.losses import (
    CB_SERIES,
    CB_TAYLOR_BELOW,
    BernoulliELBO,
    ContinuousBernoulliELBO,
    GaussianELBO,
    BinaryCrossEntropy,
    CategoricalCrossEntropy,
    IWAEBound,
    ELBO_SPECS,
    LossSpec,
)

__all__ = ["LABEL_DTYPES", "LOSSES", "NLL", "continuous_bernoulli_log_norm", "kl_per_latent", "log_weights", "loss_fn",
           "masked_means", "masked_sums"]

PerExample = dict[str, tf.Tensor]


def _bce(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def _gaussian_nll(model: Any, outputs: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    log_sigma = model.decoder_log_sigma()
    r = (x - outputs) * tf.exp(-log_sigma)
    return 0.5 * tf.square(r) + log_sigma + 0.5 * math.log(2.0 * math.pi)


def _series(u2: Any) -> Any:
    """sum_k CB_SERIES[k] u2^(k+1) in Horner form: log(u coth u) below the cut."""
    acc = CB_SERIES[-1]
    for c in reversed(CB_SERIES[:-1]):
        acc = c + u2 * acc
    return u2 * acc


def continuous_bernoulli_log_norm(logits: tf.Tensor) -> tf.Tensor:
    """log C(eta) (xvae.losses.continuous_bernoulli_log_norm): closed form with expm1 for
    |eta| >= CB_TAYLOR_BELOW (1.0), the Taylor series (xvae.losses.CB_SERIES, Horner form in u^2) below; both branches see safe inputs."""
    a = tf.abs(logits)
    small = a < CB_TAYLOR_BELOW
    safe = tf.where(small, tf.ones_like(a), a)
    exact = tf.math.log(safe) - tf.math.log(-tf.math.expm1(-safe)) + tf.math.log1p(tf.exp(-safe))
    u2 = tf.square(tf.where(small, logits, tf.zeros_like(logits))) / 4.0
    series = math.log(2.0) + _series(u2)
    return tf.where(small, series, exact)


def _cb_nll(model: Any, logits: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    return _bce(logits, x) - continuous_bernoulli_log_norm(logits)


def kl_per_latent(mean: tf.Tensor, logvar: tf.Tensor) -> tf.Tensor:
    """KL(N(mean, e^logvar) || N(0, 1)) of each latent (the last axis is kept)."""
    return -0.5 * (1.0 + logvar - tf.square(mean) - tf.exp(logvar))


def _elbo_with(nll: Callable[[Any, tf.Tensor, tf.Tensor], tf.Tensor],
               free_bits: float = 0.0) -> Callable[[Any, dict[str, tf.Tensor]], PerExample]:
    def elbo(model: Any, batch: dict[str, tf.Tensor]) -> PerExample:
        """Negative ELBO per example: sum_pixels NLL(outputs, x) + beta * KL, z = mean + exp(v/2) eps
        (free bits: the loss charges sum_d max(KL_d, free_bits); "kl" stays the KL)."""
        x, y, dropout = batch["x"], batch.get("y"), batch.get("dropout")  # y: a CVAE's one-hot condition
        mean, logvar = model.encode(x, y, dropout)
        z = mean + tf.exp(0.5 * logvar) * batch["noise"]
        outputs = model.decode(z, y, dropout)
        recon = tf.reduce_sum(nll(model, outputs, x), axis=-1)
        kl = -0.5 * tf.reduce_sum(1.0 + logvar - tf.square(mean) - tf.exp(logvar), axis=-1)
        kl_d = kl_per_latent(mean, logvar)
        penalty = kl
        if free_bits:
            penalty = tf.reduce_sum(tf.maximum(kl_d, free_bits), axis=-1)
        return {"loss": recon + batch["beta"] * penalty, "reconstruction": recon, "kl": kl, "kl_per_latent": kl_d}

    return elbo


_elbo = _elbo_with(lambda model, logits, x: _bce(logits, x))


def _binary(model: Any, batch: dict[str, tf.Tensor]) -> PerExample:
    """BCE of one logit per example against a 0/1 float label; accuracy counts logit > 0."""
    logits = model.classify(batch["x"], batch.get("dropout"))[:, 0]
    y = batch["y"]
    correct = tf.cast(tf.equal(logits > 0.0, y > 0.5), tf.float32)
    return {"loss": _bce(logits, y), "accuracy": correct}


def _categorical(model: Any, batch: dict[str, tf.Tensor]) -> PerExample:
    """Softmax CE against int32 class ids; accuracy is argmax == label."""
    logits = model.classify(batch["x"], batch.get("dropout"))
    y = batch["y"]
    per = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), y), tf.float32)
    return {"loss": per, "accuracy": correct}


#: loss-spec type -> (model, batch of tensors) -> per-example values by metric name.
LOSSES: dict[type, Callable[[Any, dict[str, tf.Tensor]], PerExample]] = {
    BernoulliELBO: _elbo,
    GaussianELBO: _elbo_with(_gaussian_nll),
    ContinuousBernoulliELBO: _elbo_with(_cb_nll),
    BinaryCrossEntropy: _binary,
    CategoricalCrossEntropy: _categorical,
}

#: classifier loss-spec type -> dtype of the batch's "y" (0/1 labels, class ids).
LABEL_DTYPES: dict[type, type] = {BinaryCrossEntropy: np.float32, CategoricalCrossEntropy: np.int32}


#: VAE loss-spec type -> per-value negative log-likelihood (model, decoder outputs, x).
NLL: dict[type, Callable[[Any, tf.Tensor, tf.Tensor], tf.Tensor]] = {
    BernoulliELBO: lambda model, logits, x: _bce(logits, x),
    GaussianELBO: _gaussian_nll,
    ContinuousBernoulliELBO: _cb_nll,
}


def log_weights(model: Any, nll: Callable[[Any, tf.Tensor, tf.Tensor], tf.Tensor], x: tf.Tensor,
                noise: tf.Tensor, beta: Any = 1.0, y: tf.Tensor | None = None, dropout: tf.Tensor | None = None
                ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """(log w, nll, mean, logvar): log w = log p(x | z_k) + beta (log p(z_k) - log q(z_k | x)),
    (B, K) (beta = 1: `xvae.backend.FUNCTIONS["vae"]["log_weights"]`), nll = -log p(x | z_k);
    x (B, d), noise (B, K, latents) (a CVAE's y (B, C): example b's with each of its K codes);
    the decoder runs once on the B*K codes (with example b's dropout mask for all K of them)."""
    mean, logvar = model.encode(x, y, dropout)
    z = mean[:, None, :] + tf.exp(0.5 * logvar)[:, None, :] * noise
    b, k = tf.shape(noise)[0], tf.shape(noise)[1]
    outputs = model.decode(tf.reshape(z, [b * k, -1]), None if y is None else tf.repeat(y, k, axis=0),
                           None if dropout is None else tf.repeat(dropout, k, axis=0))
    recon = tf.reshape(tf.reduce_sum(nll(model, outputs, tf.repeat(x, k, axis=0)), axis=-1), [b, k])
    prior_minus_proposal = (-0.5 * tf.reduce_sum(tf.square(z) - tf.square(noise), axis=-1)
                            + 0.5 * tf.reduce_sum(logvar, axis=-1)[:, None])
    return -recon + beta * prior_minus_proposal, recon, mean, logvar


def _iwae_with(nll: Callable[[Any, tf.Tensor, tf.Tensor], tf.Tensor]) -> Callable[[Any, dict[str, tf.Tensor]], PerExample]:
    def bound(model: Any, batch: dict[str, tf.Tensor]) -> PerExample:
        """`IWAEBound` per example: log k - logsumexp_i log w_i over noise (B, k, latents)."""
        log_w, recon, mean, logvar = log_weights(model, nll, batch["x"], batch["noise"], batch["beta"], batch.get("y"),
                                                 batch.get("dropout"))
        k = tf.cast(tf.shape(log_w)[1], tf.float32)
        kl = -0.5 * tf.reduce_sum(1.0 + logvar - tf.square(mean) - tf.exp(logvar), axis=-1)
        return {"loss": tf.math.log(k) - tf.reduce_logsumexp(log_w, axis=1),
                "reconstruction": tf.reduce_mean(recon, axis=1), "kl": kl, "kl_per_latent": kl_per_latent(mean, logvar)}

    return bound


def loss_fn(spec: LossSpec) -> Callable[[Any, dict[str, tf.Tensor]], PerExample]:
    """The implementation of `spec`, or NotImplementedError naming it."""
    if isinstance(spec, IWAEBound):
        return _iwae_with(NLL[ELBO_SPECS[spec.likelihood]])
    if getattr(spec, "free_bits", 0.0):
        return _elbo_with(NLL[type(spec)], spec.free_bits)  # type: ignore[attr-defined]
    try:
        return LOSSES[type(spec)]
    except KeyError:
        raise NotImplementedError(f"{type(spec).__name__} is not implemented by the tf backend") from None


def masked_sums(per_example: Mapping[str, tf.Tensor], mask: tf.Tensor) -> dict[str, tf.Tensor]:
    """``sum(mask * v)`` for every metric: the sum over the real rows (a vector metric,
    (B, d), keeps its d axis)."""
    return {name: tf.reduce_sum(mask * value) if value.shape.rank == 1 else tf.linalg.matvec(value, mask, transpose_a=True)
            for name, value in per_example.items()}


def masked_means(per_example: Mapping[str, tf.Tensor], mask: tf.Tensor) -> dict[str, tf.Tensor]:
    """``sum(mask * v) / sum(mask)`` for every metric: the mean over the real rows."""
    rows = tf.reduce_sum(mask)
    return {name: total / rows for name, total in masked_sums(per_example, mask).items()}

"""Loss specs in torch, one function per spec type (same table as xvae_jax/xvae_tf).

Each entry maps (model, batch of device tensors) to (scalar loss to differentiate, metrics):
the metrics are the loss spec's `metrics` names, each a 0-d tensor holding the masked mean
``sum(mask * per_example) / sum(mask)``, so padded rows never count (xvae/losses.py).

BCE is `F.binary_cross_entropy_with_logits(reduction="none")`, which computes
``(1 - y) * x - log_sigmoid(x)`` = ``max(x, 0) - x*y + log1p(exp(-|x|))``: finite and exact
at saturated logits (±88, ±104, ±1e9; checked against the float64 reference in
tests/conformance). Softmax CE is `F.cross_entropy(reduction="none")` (log-sum-exp).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

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

Tensors = Mapping[str, torch.Tensor]
LossFn = Callable[[Any, Tensors], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def masked_sums(per_example: Mapping[str, torch.Tensor], mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """``sum(mask * v)`` for every metric: the sum over the real rows (a vector metric,
    (B, d), keeps its d axis)."""
    return {name: torch.dot(mask, v) if v.dim() == 1 else mask @ v for name, v in per_example.items()}


def masked_means(per_example: Mapping[str, torch.Tensor], mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """``sum(mask * v) / sum(mask)`` for every metric: the mean over the real rows."""
    rows = mask.sum()
    return {name: total / rows for name, total in masked_sums(per_example, mask).items()}


def kl_per_latent(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, e^logvar) || N(0, 1)) of each latent (the last axis is kept)."""
    return -0.5 * (1.0 + logvar - mean * mean - torch.exp(logvar))


def _series(u2: Any) -> Any:
    """sum_k CB_SERIES[k] u2^(k+1) in Horner form: log(u coth u) below the cut."""
    acc = CB_SERIES[-1]
    for c in reversed(CB_SERIES[:-1]):
        acc = c + u2 * acc
    return u2 * acc


def continuous_bernoulli_log_norm(logits: torch.Tensor) -> torch.Tensor:
    """log C(eta) (xvae.losses.continuous_bernoulli_log_norm): closed form with expm1 for
    |eta| >= CB_TAYLOR_BELOW (1.0), the Taylor series (xvae.losses.CB_SERIES, Horner form in u^2) below; both branches see safe inputs."""
    a = logits.abs()
    small = a < CB_TAYLOR_BELOW
    safe = torch.where(small, torch.ones_like(a), a)
    exact = torch.log(safe) - torch.log(-torch.expm1(-safe)) + torch.log1p(torch.exp(-safe))
    u2 = torch.where(small, logits, torch.zeros_like(logits)).square() / 4.0
    series = math.log(2.0) + _series(u2)
    return torch.where(small, series, exact)


def _bernoulli_nll(model: Any, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none")


def _gaussian_nll(model: Any, mean: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    log_sigma = model.decoder_log_sigma()
    r = (x - mean) * (torch.exp(-log_sigma) if isinstance(log_sigma, torch.Tensor) else math.exp(-log_sigma))
    return 0.5 * r * r + log_sigma + 0.5 * math.log(2.0 * math.pi)


def _cb_nll(model: Any, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (F.binary_cross_entropy_with_logits(logits, x, reduction="none")
            - continuous_bernoulli_log_norm(logits))


def _elbo_with(nll: Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor], free_bits: float = 0.0) -> LossFn:
    def elbo(model: Any, batch: Tensors) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Negative ELBO: sum_pixels NLL(outputs, x) + beta * KL(N(mean, e^logvar) || N(0, I))
        (free bits: the loss charges sum_d max(KL_d, free_bits); "kl" stays the KL)."""
        x, y, dropout = batch["x"], batch.get("y"), batch.get("dropout")  # y: a CVAE's one-hot condition
        mean, logvar = model.encode(x, y, dropout)
        z = mean + torch.exp(0.5 * logvar) * batch["noise"]
        outputs = model.decode(z, y, dropout)
        recon = nll(model, outputs, x).sum(dim=-1)
        kl = -0.5 * torch.sum(1.0 + logvar - mean * mean - torch.exp(logvar), dim=-1)
        kl_d = kl_per_latent(mean, logvar)
        penalty = kl
        if free_bits:
            penalty = torch.clamp(kl_d, min=free_bits).sum(dim=-1)
        metrics = masked_means(dict(loss=recon + batch["beta"] * penalty, reconstruction=recon, kl=kl,
                                    kl_per_latent=kl_d.detach()), batch["mask"])
        return metrics["loss"], metrics

    return elbo


_elbo = _elbo_with(_bernoulli_nll)


def _binary(model: Any, batch: Tensors) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One logit per example against 0/1 labels; accuracy counts (logit > 0) == label."""
    logits = model.classify(batch["x"], batch.get("dropout"))[:, 0]
    y = batch["y"].reshape(-1).to(logits.dtype)
    per = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    correct = ((logits > 0) == (y > 0.5)).to(logits.dtype)
    metrics = masked_means(dict(loss=per, accuracy=correct), batch["mask"])
    return metrics["loss"], metrics


def _categorical(model: Any, batch: Tensors) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Softmax CE against integer class ids; accuracy counts argmax == label."""
    logits = model.classify(batch["x"], batch.get("dropout"))
    y = batch["y"].reshape(-1).long()  # int64 class ids: float targets would mean probabilities
    per = F.cross_entropy(logits, y, reduction="none")
    correct = (torch.argmax(logits, dim=-1) == y).to(logits.dtype)
    metrics = masked_means(dict(loss=per, accuracy=correct), batch["mask"])
    return metrics["loss"], metrics


#: Loss spec type -> its torch implementation.
LOSSES: dict[type[LossSpec], LossFn] = {
    BernoulliELBO: _elbo,
    GaussianELBO: _elbo_with(_gaussian_nll),
    ContinuousBernoulliELBO: _elbo_with(_cb_nll),
    BinaryCrossEntropy: _binary,
    CategoricalCrossEntropy: _categorical,
}


#: classifier loss-spec type -> dtype of the batch's "y" (0/1 labels; class ids, int64 as F.cross_entropy wants).
LABEL_DTYPES: dict[type, type] = {BinaryCrossEntropy: np.float32, CategoricalCrossEntropy: np.int64}


#: VAE loss-spec type -> per-value negative log-likelihood (model, decoder outputs, x).
NLL: dict[type[LossSpec], Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    BernoulliELBO: _bernoulli_nll,
    GaussianELBO: _gaussian_nll,
    ContinuousBernoulliELBO: _cb_nll,
}


def log_weights(model: Any, nll: Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
                noise: torch.Tensor, beta: Any = 1.0, y: torch.Tensor | None = None,
                dropout: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """(log w, nll, mean, logvar): log w = log p(x | z_k) + beta (log p(z_k) - log q(z_k | x)),
    (B, K) (beta = 1: `xvae.backend.FUNCTIONS["vae"]["log_weights"]`), nll = -log p(x | z_k);
    x (B, d), noise (B, K, latents) (a CVAE's y (B, C): example b's with each of its K codes);
    the decoder runs once on the B*K codes (with example b's dropout mask for all K of them)."""
    mean, logvar = model.encode(x, y, dropout)
    z = mean[:, None, :] + torch.exp(0.5 * logvar)[:, None, :] * noise
    b, k, latents = noise.shape
    outputs = model.decode(z.reshape(b * k, latents), None if y is None else y.repeat_interleave(k, dim=0),
                           None if dropout is None else dropout.repeat_interleave(k, dim=0))
    recon = nll(model, outputs, x.repeat_interleave(k, dim=0)).sum(dim=-1).reshape(b, k)
    prior_minus_proposal = -0.5 * (z * z - noise * noise).sum(dim=-1) + 0.5 * logvar.sum(dim=-1)[:, None]
    return -recon + beta * prior_minus_proposal, recon, mean, logvar


def _iwae_with(nll: Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor]) -> LossFn:
    def bound(model: Any, batch: Tensors) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`IWAEBound`: log k - logsumexp_i log w_i per example, over noise (B, k, latents)."""
        log_w, recon, mean, logvar = log_weights(model, nll, batch["x"], batch["noise"], batch["beta"], batch.get("y"),
                                                 batch.get("dropout"))
        kl = -0.5 * torch.sum(1.0 + logvar - mean * mean - torch.exp(logvar), dim=-1)
        loss = math.log(log_w.shape[1]) - torch.logsumexp(log_w, dim=1)
        metrics = masked_means(dict(loss=loss, reconstruction=recon.mean(dim=1), kl=kl,
                                    kl_per_latent=kl_per_latent(mean, logvar).detach()), batch["mask"])
        return metrics["loss"], metrics

    return bound


def loss_fn(spec: LossSpec) -> LossFn:
    """The torch implementation of a loss spec (NotImplementedError if it has none)."""
    if isinstance(spec, IWAEBound):
        return _iwae_with(NLL[ELBO_SPECS[spec.likelihood]])
    if getattr(spec, "free_bits", 0.0):
        return _elbo_with(NLL[type(spec)], spec.free_bits)  # type: ignore[attr-defined]
    if type(spec) not in LOSSES:
        raise NotImplementedError(f"{type(spec).__name__} is not implemented by the torch backend")
    return LOSSES[type(spec)]

"""Loss specs and their float64 NumPy references.

Every loss takes *logits* by construction: there is no probabilities path, because that
path was the seed-000 bug (a hand-written BCE on sigmoid outputs saturates at float32
sigmoid(x) == 1.0 from x ~ 16.6, while Keras silently recovered the logits). Backends
implement each spec with their framework's stable primitive; these references are the
oracle the conformance suite checks them against.

Reductions (DESIGN §5): a VAE's loss per example is the sum over pixels of BCE plus
beta * KL; classifier losses are per example too. Every reported loss is the *masked mean*
over the batch, ``sum(mask * per_example) / sum(mask)``, so padded rows never count.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from xvae import _memory, _validate
from xvae._errors import ConfigError, DataError, SpecError
from xvae._specs import LIKELIHOODS, ClassifierSpec, ModelSpec, VAESpec

__all__ = [
    "LossSpec",
    "BernoulliELBO",
    "BinaryCrossEntropy",
    "CategoricalCrossEntropy",
    "loss_for",
    "IWAEBound",
    "objective_for",
    "objective_to_dict",
    "objective_from_dict",
    "kl_per_latent",
    "ELBO_SPECS",
    "binary_cross_entropy",
    "kl_divergence",
    "negative_elbo",
    "elbo",
    "categorical_cross_entropy",
    "masked_mean",
    "GaussianELBO",
    "ContinuousBernoulliELBO",
    "gaussian_nll",
    "continuous_bernoulli_log_norm",
    "continuous_bernoulli_nll",
    "continuous_bernoulli_mean",
    "reconstruction_nll",
    "decoder_mean",
    "CB_TAYLOR_BELOW",
    "CB_SERIES",
]

F64 = NDArray[np.float64]
#: float64 temporaries per element a reference loss allocates (inputs, products, exp, result).
_TEMPORARIES = 6

#: The metrics that are vectors (a trailing axis after the batch's), not scalars.
VECTOR_METRICS = frozenset({"kl_per_latent"})


def _float64(where: str, **named: ArrayLike) -> list[F64]:
    """The arguments as float64 arrays that broadcast together, or a DataError naming the one that does not."""
    arrays = [_validate._numeric(value, f"{where}: {name}", "(n, ...)") for name, value in named.items()]
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        shapes = ", ".join(f"{n}.shape={a.shape}" for n, a in zip(named, arrays))
        raise DataError(f"{where}: the arguments must have broadcastable shapes. Received {shapes}.") from None
    converted = sum(a.size for a in arrays if a.dtype != np.float64)
    _memory.require(8 * (converted + _TEMPORARIES * int(np.prod(shape, dtype=object))), f"{where} on shape {shape}",
                    "compute it on fewer rows at a time")
    with np.errstate(over="ignore", invalid="ignore"):
        return [a.astype(np.float64, copy=False) for a in arrays]


class LossSpec:
    """Base of the loss specs; `metrics` names what a step reports, "loss" first.

    Every metric is a masked mean over the batch's rows: a scalar, except the names in
    `VECTOR_METRICS`, which keep a trailing axis (a VAE's "kl_per_latent": (latents,)).

    A backend receives the spec's loss (`loss_for(spec)`) in `Backend.compile` and reports
    each name in `metrics` as the masked mean over the batch.
    """

    metrics: ClassVar[tuple[str, ...]] = ("loss",)


@dataclass(frozen=True)
class BernoulliELBO(LossSpec):
    """Negative ELBO per example: sum_pixels BCE(logits, x) + beta * KL(q(z|x) || N(0, I)).

    Metrics: "loss" (the negative ELBO, nats), "reconstruction" (the BCE sum), "kl", and
    "kl_per_latent" (the KL of each latent, (latents,): the posterior-collapse diagnostic
    that `fit` records per epoch in `History.vectors`; it sums to "kl").
    `beta` is fed to the compiled step as an input, not baked in as a constant, so a KL
    warm-up schedule never recompiles.
    """

    metrics: ClassVar[tuple[str, ...]] = ("loss", "reconstruction", "kl", "kl_per_latent")
    #: Free bits (Kingma et al. 2016), nats per latent: the loss charges
    #: sum_d max(KL_d, free_bits) per example instead of KL (0: the plain ELBO). "kl" stays the KL.
    free_bits: float = 0.0


@dataclass(frozen=True)
class GaussianELBO(LossSpec):
    """Negative ELBO with a Gaussian decoder: the decoder's output is the mean mu.

    Per pixel ``0.5 ((x - mu) / sigma)^2 + log sigma + 0.5 log(2 pi)``, summed; sigma is
    fixed (a number) or ``exp(decoder.log_sigma)``, a learned weight ("learned": one
    global value; "learned_per_output": one per output value).
    """

    metrics: ClassVar[tuple[str, ...]] = ("loss", "reconstruction", "kl", "kl_per_latent")
    sigma: float | str = 1.0
    free_bits: float = 0.0  # as in BernoulliELBO


@dataclass(frozen=True)
class ContinuousBernoulliELBO(LossSpec):
    """Negative ELBO with a continuous Bernoulli decoder on logits (Loaiza-Ganem &
    Cunningham 2019): per pixel ``BCE(logits, x) - log C(logits)``, summed (see
    `continuous_bernoulli_log_norm` for the stable log-normaliser)."""

    metrics: ClassVar[tuple[str, ...]] = ("loss", "reconstruction", "kl", "kl_per_latent")
    free_bits: float = 0.0  # as in BernoulliELBO


@dataclass(frozen=True)
class IWAEBound(LossSpec):
    """The IWAE objective (Burda et al. 2016): minus the importance-weighted bound, per example

        loss = log k - logsumexp_i [log p(x | z_i) + beta (log p(z_i) - log q(z_i | x))]

    over k samples z_i = mean + exp(logvar / 2) * noise_i; the batch key "noise" is float32
    (B, k, latents). beta = 1 is the bound; k = 1 is the one-sample Monte Carlo ELBO (the KL
    estimated from the same sample, not the analytic KL of the ELBO specs: equal in
    expectation, not per draw). Metrics: "loss" (that value), "reconstruction" (the mean over
    the k samples of -log p(x | z_i)), "kl" and "kl_per_latent" (the analytic KL of q, as
    diagnostics).

    Attributes:
        likelihood: the decoder's likelihood ("bernoulli", "gaussian", "continuous_bernoulli").
        k: samples per example, >= 1.
    """

    metrics: ClassVar[tuple[str, ...]] = ("loss", "reconstruction", "kl", "kl_per_latent")
    likelihood: str = "bernoulli"
    k: int = 1


#: The VAE likelihoods and their ELBO loss specs (the IWAE bound reuses their nll).
ELBO_SPECS: dict[str, type[LossSpec]] = {}


@dataclass(frozen=True)
class BinaryCrossEntropy(LossSpec):
    """BCE of one logit per example against a 0/1 label; accuracy counts logit > 0."""

    metrics: ClassVar[tuple[str, ...]] = ("loss", "accuracy")


@dataclass(frozen=True)
class CategoricalCrossEntropy(LossSpec):
    """Softmax cross-entropy of `outputs` logits against an integer class id (log-sum-exp)."""

    metrics: ClassVar[tuple[str, ...]] = ("loss", "accuracy")


def loss_for(spec: ModelSpec) -> LossSpec:
    """The loss a model spec trains with.

    Args:
        spec: a `VAESpec` or `ClassifierSpec`.

    Returns:
        `BernoulliELBO()` for a VAE; `BinaryCrossEntropy()` for a classifier with
        outputs=1, else `CategoricalCrossEntropy()`.

    Examples:
        >>> loss_for(ClassifierSpec(input_dim=4, outputs=3)).metrics
        ('loss', 'accuracy')
    """
    if isinstance(spec, VAESpec):
        likelihood = spec.decoder.likelihood
        if likelihood == "gaussian":
            return GaussianELBO(spec.decoder.sigma)
        if likelihood == "continuous_bernoulli":
            return ContinuousBernoulliELBO()
        return BernoulliELBO()
    if isinstance(spec, ClassifierSpec):
        return BinaryCrossEntropy() if spec.outputs == 1 else CategoricalCrossEntropy()
    raise SpecError(f"loss_for needs a VAESpec or ClassifierSpec. Received: {spec!r:.200}")


ELBO_SPECS.update(bernoulli=BernoulliELBO, gaussian=GaussianELBO, continuous_bernoulli=ContinuousBernoulliELBO)

#: The training objectives of a VAE (`VAE.fit(loss=...)`).
OBJECTIVES = ("elbo", "iwae")


def objective_for(spec: VAESpec, loss: str = "elbo", k: int = 1, free_bits: float = 0.0) -> LossSpec:
    """The loss spec of a VAE objective: `loss_for(spec)` (with `free_bits`) for "elbo",
    `IWAEBound` for "iwae".

    Raises:
        SpecError: spec is not a VAESpec.
        ConfigError: loss, k or free_bits is invalid (the message names it).
    """
    if not isinstance(spec, VAESpec):
        raise SpecError(f"objective_for takes a VAESpec. Received: {type(spec).__name__}")
    _validate.choice(loss, "loss", OBJECTIVES)
    k = _validate.positive_int(k, "k")
    if (isinstance(free_bits, bool) or not isinstance(free_bits, (int, float, np.integer, np.floating))
            or not 0 <= free_bits < float("inf")):
        raise ConfigError(f"free_bits must be a finite number >= 0. Received: free_bits={free_bits!r:.100}")
    if loss == "iwae":
        return IWAEBound(spec.decoder.likelihood, k)
    base = loss_for(spec)
    return dataclasses.replace(base, free_bits=float(free_bits)) if free_bits else base


def objective_to_dict(objective: LossSpec | None) -> dict[str, Any] | None:
    """A VAE's training objective as checkpoint JSON: {"loss": "iwae", "k": k} or {"loss":
    "elbo", "free_bits": f}; None for the default (the plain ELBO, or a classifier's loss),
    which checkpoints leave out (they always did).

    Examples:
        >>> objective_to_dict(IWAEBound("bernoulli", 5))
        {'loss': 'iwae', 'k': 5}
    """
    if isinstance(objective, IWAEBound):
        return {"loss": "iwae", "k": int(objective.k)}
    free_bits = float(getattr(objective, "free_bits", 0.0) or 0.0)
    return {"loss": "elbo", "free_bits": free_bits} if free_bits else None


def objective_from_dict(spec: VAESpec, data: Any) -> LossSpec:
    """The loss spec `objective_to_dict` wrote, for `spec` (its likelihood).

    Raises:
        ConfigError: not such a dict, or an invalid loss, k or free_bits (named).
    """
    if not isinstance(data, dict) or set(data) - {"loss", "k", "free_bits"}:
        raise ConfigError(f'an objective is {{"loss": "elbo"|"iwae", "k": int, "free_bits": number}}. '
                          f"Received: {data!r:.200}")
    return objective_for(spec, data.get("loss"), data.get("k", 1), data.get("free_bits", 0.0))


def kl_per_latent(mean: ArrayLike, logvar: ArrayLike) -> F64:
    """KL(N(m, e^v) || N(0, 1)) of each latent, float64 (n, latents): ``-0.5 (1 + v - m^2 - e^v)``."""
    m, v = _float64("kl_per_latent", mean=mean, logvar=logvar)
    with np.errstate(over="ignore", invalid="ignore"):  # inf/NaN in, inf/NaN out (as kl_divergence)
        return -0.5 * (1.0 + v - m * m - np.exp(v))


def binary_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> F64:
    """Element-wise BCE from logits: ``max(x, 0) - x*y + log1p(exp(-|x|))``.

    Finite for every finite logit: no exp of a large positive number, no log of 0. The
    probabilities form ``-(y log p + (1-y) log(1-p))`` with p = sigmoid(x) is not: float32
    sigmoid(x) rounds to exactly 1.0 from x ~ 16.64 (see "Why JAX and Keras disagreed").

    Args:
        logits: array of any shape (float; computed in float64).
        labels: array broadcastable to `logits`, values in [0, 1].

    Returns:
        float64 array of the broadcast shape: the per-element loss in nats.

    Examples:
        >>> float(binary_cross_entropy(1e9, 0.0))
        1000000000.0
    """
    x, y = _float64("binary_cross_entropy", logits=logits, labels=labels)
    return np.maximum(x, 0.0) - x * y + np.log1p(np.exp(-np.abs(x)))


def kl_divergence(mean: ArrayLike, logvar: ArrayLike) -> F64:
    """KL(N(m, e^v) || N(0, I)) per example: ``-0.5 * sum(1 + v - m^2 - e^v)`` over latents.

    Args:
        mean: the encoder's means, shape (n, latents).
        logvar: the encoder's log-variances, shape (n, latents).

    Returns:
        float64 array of shape (n,), in nats.

    Examples:
        >>> kl_divergence([[0.0, 0.0]], [[0.0, 0.0]])
        array([-0.])
    """
    m, v = _float64("kl_divergence", mean=mean, logvar=logvar)
    if m.ndim == 0 and v.ndim == 0:
        raise DataError("kl_divergence sums over the last axis (the latents): pass arrays of shape (n, latents).")
    return -0.5 * np.sum(1.0 + v - m * m - np.exp(v), axis=-1)


def negative_elbo(
    logits: ArrayLike, targets: ArrayLike, mean: ArrayLike, logvar: ArrayLike, beta: float = 1.0
) -> tuple[F64, F64, F64]:
    """(loss, reconstruction, kl) per example, each of shape (n,).

    reconstruction = sum over pixels of BCE(logits, targets); loss = reconstruction + beta*kl.

    Args:
        logits: decoder logits, shape (n, d).
        targets: the inputs being reconstructed, shape (n, d), values in [0, 1].
        mean: encoder means, shape (n, latents).
        logvar: encoder log-variances, shape (n, latents).
        beta: the KL weight.

    Returns:
        (loss, reconstruction, kl), each float64 of shape (n,), in nats.
    """
    b = np.asarray(beta) if isinstance(beta, (int, float, np.generic, np.ndarray)) else None
    if b is None or b.ndim or b.dtype.kind not in "iuf" or not b >= 0:
        raise DataError(f"negative_elbo: beta must be a number >= 0. Received: beta={beta!r:.100}")
    recon = np.sum(binary_cross_entropy(logits, targets), axis=-1)
    kl = kl_divergence(mean, logvar)
    try:
        return recon + beta * kl, recon, kl
    except ValueError:
        raise DataError(f"negative_elbo: the reconstruction per example has shape {recon.shape} but the KL has "
                        f"shape {kl.shape}: logits/targets and mean/logvar must have the same rows.") from None


def elbo(
    logits: ArrayLike, targets: ArrayLike, mean: ArrayLike, logvar: ArrayLike, beta: float = 1.0
) -> F64:
    """The evidence lower bound per example (in nats; <= 0 for beta=1): -negative_elbo.

    Args:
        logits: decoder logits, shape (n, d).
        targets: the inputs being reconstructed, shape (n, d), values in [0, 1].
        mean: encoder means, shape (n, latents).
        logvar: encoder log-variances, shape (n, latents).
        beta: the KL weight.

    Returns:
        float64 array of shape (n,).
    """
    return -negative_elbo(logits, targets, mean, logvar, beta)[0]


def categorical_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> F64:
    """Softmax CE per example from logits (n, k) and integer labels (n,): lse(x) - x[y].

    Args:
        logits: array of shape (n, k).
        labels: integer class ids in 0..k-1, shape (n,).

    Returns:
        float64 array of shape (n,), in nats. The log-sum-exp subtracts the row maximum,
        so large logits never overflow.

    Examples:
        >>> categorical_cross_entropy([[1000.0, 0.0]], [0])
        array([0.])
    """
    (x,) = _float64("categorical_cross_entropy", logits=logits)
    y = _validate._numeric(labels, "categorical_cross_entropy: labels", "(n,)")
    if x.ndim < 1 or x.shape[-1] == 0 or y.shape != x.shape[:-1]:
        raise DataError(f"categorical_cross_entropy needs logits of shape (n, k), k >= 1, and labels of shape (n,). "
                        f"Received logits.shape={x.shape}, labels.shape={y.shape}.")
    if y.size and (y.dtype.kind not in "iub" or y.min() < 0 or y.max() >= x.shape[-1]):
        raise DataError(f"categorical_cross_entropy: labels must be integer class ids in 0..{x.shape[-1] - 1}. "
                        f"Received dtype {y.dtype}, values in [{y.min()}, {y.max()}].")
    y = y.astype(np.int64)
    top = np.max(x, axis=-1, keepdims=True)
    lse = top[..., 0] + np.log(np.sum(np.exp(x - top), axis=-1))
    return lse - np.take_along_axis(x, y[..., None], axis=-1)[..., 0]


def masked_mean(per_example: ArrayLike, mask: ArrayLike) -> float:
    """``sum(mask * per_example) / sum(mask)``: the mean over the real (unpadded) rows.

    Args:
        per_example: values of shape (B,).
        mask: 1.0 for real rows, 0.0 for padding, shape (B,).

    Returns:
        The masked mean as a Python float.

    Examples:
        >>> masked_mean([1.0, 3.0, 100.0], [1.0, 1.0, 0.0])
        2.0
    """
    values, m = _float64("masked_mean", per_example=per_example, mask=mask)
    with np.errstate(divide="ignore", invalid="ignore"):  # an all-zero mask gives NaN, as 0/0 does
        return float(np.sum(m * values) / np.sum(m))


#: |logits| below which the float32 backends compute the continuous Bernoulli's log-normaliser
#: by its Taylor series `CB_SERIES` (every backend uses the same cut and terms): the closed
#: form's value cancels towards log 2 at 0, and its derivative 1/eta - 1/sinh(eta) cancels
#: too (at |eta| = 0.1 it loses 1e-4 of its value in float32; at 1, 7 ulps). Eight terms
#: leave ~1e-10 at the cut (value) and ~2e-9 (derivative), below float32's 6e-8.
CB_TAYLOR_BELOW = 1.0
#: log(u coth u) = sum_k CB_SERIES[k] * u^(2k+2), u = eta / 2 (so log C = log 2 + that).
CB_SERIES = (1 / 3, -7 / 90, 62 / 2835, -127 / 18900, 146 / 66825, -1414477 / 1915538625, 32764 / 127702575,
             -16931177 / 186080895000)
#: The float64 reference's own cut: float64 closed forms are exact to ~1e-13 down to 0.1.
_CB_REFERENCE_CUT = 0.1


def gaussian_nll(mean: ArrayLike, targets: ArrayLike, log_sigma: ArrayLike = 0.0) -> F64:
    """Element-wise Gaussian negative log-density ``0.5 ((x - mu) e^{-s})^2 + s + 0.5 log(2 pi)``.

    Args:
        mean: the decoder's outputs mu.
        targets: the inputs x, broadcastable to `mean`.
        log_sigma: s = log sigma, broadcastable (0.0: sigma = 1).

    Returns:
        float64 array of the broadcast shape, in nats.

    Examples:
        >>> round(float(gaussian_nll(0.0, 0.0)), 6)
        0.918939
    """
    mu, x, s = _float64("gaussian_nll", mean=mean, targets=targets, log_sigma=log_sigma)
    r = (x - mu) * np.exp(-s)
    return 0.5 * r * r + s + 0.5 * np.log(2.0 * np.pi)


def continuous_bernoulli_log_norm(logits: ArrayLike) -> F64:
    """log C(eta) of the continuous Bernoulli with logits eta (lambda = sigmoid(eta)).

    ``C = eta / tanh(eta / 2)``, so ``log C = log|eta| - log(1 - e^{-|eta|}) + log1p(e^{-|eta|})``
    (with expm1: no cancellation in 1 - e^{-|eta|}) for |eta| >= 0.1 in this float64
    reference (the float32 backends switch at `CB_TAYLOR_BELOW` = 1 to `CB_SERIES`); below,
    where those terms cancel towards log 2 (lambda -> 0.5), the series in u = eta/2:
    ``log 2 + u^2/3 - 7 u^4/90 + 62 u^6/2835 - 127 u^8/18900`` (next term ~3e-15 at 0.1).

    Examples:
        >>> bool(np.isclose(continuous_bernoulli_log_norm(0.0), np.log(2.0)))
        True
    """
    (eta,) = _float64("continuous_bernoulli_log_norm", logits=logits)
    a = np.abs(eta)
    small = a < _CB_REFERENCE_CUT
    safe = np.where(small, 1.0, a)
    exact = np.log(safe) - np.log(-np.expm1(-safe)) + np.log1p(np.exp(-safe))
    u2 = np.where(small, eta, 0.0) ** 2 / 4.0
    series = np.log(2.0) + u2 / 3.0 - 7.0 * u2 * u2 / 90.0 + 62.0 * u2 ** 3 / 2835.0 - 127.0 * u2 ** 4 / 18900.0
    return np.where(small, series, exact)


def _cb_log_norm_grad(logits: F64) -> F64:
    """d log C / d eta = 1/eta - 1/sinh(eta) (series eta/6 - 7 eta^3/360 + 31 eta^5/15120
    - 127 eta^7/604800 near 0)."""
    eta = np.asarray(logits, np.float64)
    a = np.abs(eta)
    small = a < _CB_REFERENCE_CUT
    safe = np.where(small, 1.0, a)
    inv_sinh = 2.0 * np.exp(-safe) / -np.expm1(-2.0 * safe)  # 1/sinh(|eta|), no overflow
    exact = np.sign(eta) * (1.0 / safe - inv_sinh)
    e = np.where(small, eta, 0.0)
    return np.where(small, e / 6.0 - 7.0 * e ** 3 / 360.0 + 31.0 * e ** 5 / 15120.0 - 127.0 * e ** 7 / 604800.0,
                    exact)


def continuous_bernoulli_nll(logits: ArrayLike, targets: ArrayLike) -> F64:
    """Element-wise continuous Bernoulli negative log-density: ``BCE(eta, x) - log C(eta)``.

    Examples:
        >>> float(continuous_bernoulli_nll(0.0, 0.3))  # lambda = 0.5: the uniform density
        0.0
    """
    return binary_cross_entropy(logits, targets) - continuous_bernoulli_log_norm(logits)


def continuous_bernoulli_mean(logits: ArrayLike) -> F64:
    """The mean of the continuous Bernoulli: ``1/2 + 1/(2 tanh(eta/2)) - 1/eta``
    (series ``1/2 + eta/12 - eta^3/720`` near 0, where that form cancels).

    Examples:
        >>> float(continuous_bernoulli_mean(0.0)), round(float(continuous_bernoulli_mean(50.0)), 4)
        (0.5, 0.98)
    """
    (eta,) = _float64("continuous_bernoulli_mean", logits=logits)
    small = np.abs(eta) < _CB_REFERENCE_CUT
    safe = np.where(small, 1.0, eta)
    exact = 0.5 + 0.5 / np.tanh(0.5 * safe) - 1.0 / safe
    e = np.where(small, eta, 0.0)
    return np.where(small, 0.5 + e / 12.0 - e ** 3 / 720.0 + e ** 5 / 30240.0 - e ** 7 / 1209600.0, exact)


def _likelihood(where: str, value: Any) -> None:
    if not isinstance(value, str) or value not in LIKELIHOODS:
        raise ConfigError(f"{where}: likelihood must be one of {', '.join(LIKELIHOODS)}. Received: {value!r:.100}")


def reconstruction_nll(likelihood: str, outputs: ArrayLike, targets: ArrayLike, log_sigma: ArrayLike = 0.0,
                       ) -> F64:
    """Per-example reconstruction term: the likelihood's negative log-density summed over
    values (axis -1 of flat (n, d) rows).

    Args:
        likelihood: "bernoulli", "gaussian" or "continuous_bernoulli".
        outputs: the decoder's outputs (logits, or the Gaussian mean), (n, d).
        targets: x, (n, d).
        log_sigma: Gaussian only: log sigma, broadcastable to (n, d).

    Returns:
        float64 (n,), in nats.
    """
    _likelihood("reconstruction_nll", likelihood)
    if likelihood == "gaussian":
        return np.sum(gaussian_nll(outputs, targets, log_sigma), axis=-1)
    if likelihood == "continuous_bernoulli":
        return np.sum(continuous_bernoulli_nll(outputs, targets), axis=-1)
    return np.sum(binary_cross_entropy(outputs, targets), axis=-1)


def decoder_mean(likelihood: str, outputs: ArrayLike) -> F64:
    """The mean of p(x|z) from the decoder's outputs: sigmoid (Bernoulli), the output itself
    (Gaussian) or `continuous_bernoulli_mean`."""
    _likelihood("decoder_mean", likelihood)
    (out,) = _float64("decoder_mean", outputs=outputs)
    if likelihood == "gaussian":
        return out
    if likelihood == "continuous_bernoulli":
        return continuous_bernoulli_mean(out)
    return 0.5 * (1.0 + np.tanh(0.5 * out))

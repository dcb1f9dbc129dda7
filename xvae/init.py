"""Initialisers: weights are drawn once, in NumPy, from the model's generator.

Every backend then starts from the same canonical float32 arrays, so "same seed" means
"same weights" everywhere. Draws happen in `weight_shapes(spec)` order, kernel then bias (a conv kernel's fans are
kh * kw * channels, Keras' rule); LayerNorm starts at scale 1, bias 0 and a learned
Gaussian `decoder.log_sigma` at 0 (sigma = 1), without draws.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from xvae._errors import SpecError
from xvae._specs import ModelSpec
from xvae.naming import towers, weight_shapes

__all__ = ["INITIALIZERS", "initialize"]

Draw = Callable[[np.random.Generator, tuple[int, ...], int, int], np.ndarray]


def _glorot_uniform(rng, shape, fan_in, fan_out):  # type: ignore[no-untyped-def]
    """U(-l, l), l = sqrt(6 / (fan_in + fan_out)); bias 0 (Keras' default)."""
    if len(shape) == 1:
        return np.zeros(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape)


def _lecun_normal(rng, shape, fan_in, fan_out):  # type: ignore[no-untyped-def]
    """Truncated normal (|z| < 2) with std sqrt(1/fan_in) / 0.87962566 (Keras/Flax); bias 0."""
    if len(shape) == 1:
        return np.zeros(shape)
    std = np.sqrt(1.0 / fan_in) / 0.87962566103423978
    z = rng.standard_normal(shape)
    bad = np.abs(z) >= 2.0
    while bad.any():  # resample outside +-2 std, as truncated_normal does
        z[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(z) >= 2.0
    return z * std


def _torch_default(rng, shape, fan_in, fan_out):  # type: ignore[no-untyped-def]
    """torch.nn.Linear's default: kernel and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape)


INITIALIZERS: dict[str, Draw] = {
    "glorot_uniform": _glorot_uniform,
    "lecun_normal": _lecun_normal,
    "torch_default": _torch_default,
}


def initialize(
    spec: ModelSpec, rng: np.random.Generator, init: str = "glorot_uniform"
) -> dict[str, np.ndarray]:
    """Canonical float32 weights for `spec`, drawn from `rng` by the initialiser `init`.

    Args:
        spec: a `VAESpec` or `ClassifierSpec`.
        rng: the generator to draw from (a model's, seeded at construction).
        init: "glorot_uniform" (Keras' default: U(-l, l), l = sqrt(6/(fan_in+fan_out)),
            bias 0), "lecun_normal" (truncated normal, std sqrt(1/fan_in), bias 0) or
            "torch_default" (torch.nn.Linear's: kernel and bias U(-1/sqrt(fan_in), ...)).

    Returns:
        name -> float32 array in `weight_shapes(spec)` order, kernels (in, out). Draws
        happen in that order, kernel then bias, so a seed fixes every weight.

    Raises:
        SpecError: unknown `init`.

    Examples:
        >>> from xvae import VAESpec
        >>> w = initialize(VAESpec(input_dim=4, latents=2), np.random.default_rng(0))
        >>> w["encoder.mean.kernel"].shape, w["encoder.mean.kernel"].dtype
        ((4, 2), dtype('float32'))
    """
    if not isinstance(init, str) or init not in INITIALIZERS:
        raise SpecError(
            f"Unknown initializer init={init!r}. Known initializers: {', '.join(INITIALIZERS)}."
        )
    draw = INITIALIZERS[init]
    weights = {}
    for tower in towers(spec).values():
        for placed in tower:
            fans = placed.layer.fans(placed.input_shape)
            for param, shape in placed.param_shapes().items():
                how = placed.layer.params[param]
                if how == "ones":
                    value = np.ones(shape)
                elif how == "zeros":
                    value = np.zeros(shape)
                else:  # "kernel" or "bias": drawn (a bias only by torch_default)
                    value = draw(rng, shape, *fans)
                weights[f"{placed.name}.{param}"] = np.ascontiguousarray(value, dtype=np.float32)
    for name, shape in weight_shapes(spec).items():  # decoder.log_sigma: sigma = 1 at the start
        weights.setdefault(name, np.zeros(shape, np.float32))
    return {name: weights[name] for name in weight_shapes(spec)}

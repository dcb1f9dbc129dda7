"""Canonical weight and optimizer-state names (DESIGN §4), built in this one place.

Weights are one flat dict of float32 arrays; kernels are (in, out) — the x @ W convention
of Keras and Flax. Plugins translate at their edge; nobody else builds these strings.
"""

from __future__ import annotations

import math

from xvae._specs import ClassifierSpec, ModelSpec, VAESpec
from xvae.layers import Dense, Flatten, Placed, Reshape
from xvae.layers.towers import dropout_layout

__all__ = ["Placed", "towers", "condition_site", "dense_layers", "weight_shapes", "optimizer_slots", "slot_name", "STEP",
           "LOG_SIGMA"]

#: Name of the optimizer's step counter in the canonical optimizer state.
STEP = "opt.step"


#: The learned Gaussian scale of a decoder with sigma="learned" / "learned_per_output".
LOG_SIGMA = "decoder.log_sigma"


def towers(spec: ModelSpec) -> dict[str, list[Placed]]:
    """The model as towers of placed layers (`xvae.layers.Placed`), in forward order.

    A classifier has one tower, "classify". A VAE has "encoder" (the trunk; the two heads
    read its flat output), "heads" (`encoder.mean`, `encoder.logvar`, linear Dense) and
    "decoder". Every backend receives flat rows (batch key "x" is (B, input_dim)): a tower
    on images starts with an implicit `Reshape` named `<tower>.input`, and a decoder with
    image outputs ends with an implicit `Flatten` named `decoder.flat` (no weights either).
    Dropout layers carry their columns of the "dropout" batch array (`Placed.masks`).
    A conditional VAE (`VAESpec.conditions` = C) places its towers on the widened inputs:
    the encoder trunk on (input_dim + C,) or its heads on (trunk width + C,)
    (`condition_site`), the decoder on (latents + C,).

    Args:
        spec: a `VAESpec` or `ClassifierSpec`.

    Returns:
        tower name -> list of `Placed` (name, layer spec, input and output shapes, masks).

    Examples:
        >>> from xvae import VAESpec
        >>> [p.name for p in towers(VAESpec(input_dim=4, hidden=(3,), latents=2))["decoder"]]
        ['decoder.layers.0', 'decoder.output']
    """
    if isinstance(spec, ClassifierSpec):
        out = {"classify": _reshaped_input("", spec.input_shape, spec.layers, spec.placed())}
    elif isinstance(spec, VAESpec):
        enc, dec, c = spec.encoder, spec.decoder, spec.conditions
        trunk = _reshaped_input("encoder.", enc.input_shape, enc.layers, enc.placed("encoder.", c))
        width = trunk[-1].output_shape if trunk else (enc.input_dim + c,)
        if condition_site(spec) == "trunk":  # a CVAE on images: y joins the trunk's flat output
            width = (width[0] + c,)
        heads = [Placed(f"encoder.{h}", Dense(enc.latents), width, (enc.latents,)) for h in ("mean", "logvar")]
        body = dec.placed("decoder.", c)
        if len(body[-1].output_shape) > 1:
            body.append(Placed("decoder.flat", Flatten(), body[-1].output_shape, (dec.output_dim,)))
        out = {"encoder": trunk, "heads": heads, "decoder": body}
    else:
        raise TypeError(f"Not a model spec: {spec!r}")
    return dropout_layout(out)


def condition_site(spec: ModelSpec) -> str | None:
    """Where a conditional VAE's one-hot y joins the encoder: "input" (concatenated to the
    flat x rows, before the trunk) or "trunk" (to the trunk's flat output, before the
    mean/logvar heads: trunks on images). None without conditions. The decoder always
    reads concat(z, y).

    Examples:
        >>> from xvae import VAESpec
        >>> condition_site(VAESpec(input_dim=4, hidden=(3,), latents=2, conditions=5))
        'input'
    """
    if not isinstance(spec, VAESpec) or not spec.conditions:
        return None
    return "input" if spec.encoder.flat_trunk else "trunk"


def _reshaped_input(prefix: str, shape: tuple[int, ...], layers: object, placed: list[Placed]) -> list[Placed]:
    if layers is None or len(shape) == 1:
        return placed
    flat = (math.prod(shape),)
    return [Placed(f"{prefix}input", Reshape(shape), flat, shape), *placed]


def dense_layers(spec: ModelSpec) -> dict[str, list[Placed]]:
    """Deprecated alias of `towers` (the towers hold every layer kind now, not only Dense)."""
    return towers(spec)


def weight_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """Every canonical weight name with its shape, in a stable order.

    Args:
        spec: a `VAESpec` or `ClassifierSpec`.

    Returns:
        name -> shape, in forward order, each layer's parameters in its own order
        (kernel then bias; LayerNorm scale then bias), then `decoder.log_sigma` if learned.
        Dense kernels are (fan_in, fan_out), conv kernels HWIO, Conv2DTranspose kernels
        (kh, kw, out, in). Layers without weights keep their index and add nothing.

    Examples:
        >>> from xvae import ClassifierSpec
        >>> weight_shapes(ClassifierSpec(input_dim=784, hidden=(1000,)))
        {'layers.0.kernel': (784, 1000), 'layers.0.bias': (1000,), 'output.kernel': (1000, 1), 'output.bias': (1,)}
    """
    shapes: dict[str, tuple[int, ...]] = {}
    for tower in towers(spec).values():
        for placed in tower:
            for param, shape in placed.param_shapes().items():
                shapes[f"{placed.name}.{param}"] = shape
    if isinstance(spec, VAESpec) and (sigma := spec.decoder.log_sigma_shape()) is not None:
        shapes[LOG_SIGMA] = sigma
    return shapes


def slot_name(slot: str, weight: str) -> str:
    """`opt.<slot>.<weight>`, e.g. opt.m.decoder.output.kernel.

    Args:
        slot: the optimizer slot: "m", "v" (Adam) or "u" (momentum).
        weight: a canonical weight name.

    Returns:
        The canonical optimizer-state name.
    """
    return f"opt.{slot}.{weight}"


def optimizer_slots(spec: ModelSpec, slots: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """Canonical optimizer-state names and shapes: `opt.step` plus one slot per weight.

    Args:
        spec: a `VAESpec` or `ClassifierSpec`.
        slots: the optimizer's slots (`OptimizerSpec.slots`), e.g. ("m", "v").

    Returns:
        name -> shape: "opt.step" with shape (), then `opt.<slot>.<weight>` shaped like the weight.
    """
    shapes: dict[str, tuple[int, ...]] = {STEP: ()}
    for slot in slots:
        for name, shape in weight_shapes(spec).items():
            shapes[slot_name(slot, name)] = shape
    return shapes

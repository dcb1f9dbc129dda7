"""Canonical weight and optimizer-state names (DESIGN §4), built in this one place.

Weights are one flat dict of float32 arrays; kernels are (in, out) — the x @ W convention
of Keras and Flax. Plugins translate at their edge; nobody else builds these strings.
"""

from __future__ import annotations

from typing import NamedTuple

from xvae._specs import ClassifierSpec, ModelSpec, VAESpec

__all__ = ["Dense", "dense_layers", "weight_shapes", "optimizer_slots", "slot_name", "STEP"]

#: Name of the optimizer's step counter in the canonical optimizer state.
STEP = "opt.step"


class Dense(NamedTuple):
    """One dense layer: `name.kernel` (fan_in, fan_out) and `name.bias` (fan_out,)."""

    name: str
    fan_in: int
    fan_out: int
    activation: str  # "linear" for heads and output layers


def _mlp(prefix: str, fan_in: int, hidden: tuple[int, ...], activation: str) -> list[Dense]:
    layers = []
    for i, width in enumerate(hidden):
        layers.append(Dense(f"{prefix}layers.{i}", fan_in, width, activation))
        fan_in = width
    return layers


def dense_layers(spec: ModelSpec) -> dict[str, list[Dense]]:
    """The model as towers of dense layers, in forward order.

    A classifier has one tower, "classify" (hidden layers then `output`). A VAE has
    "encoder" (hidden layers; the two heads read its last activation), "heads"
    (`encoder.mean`, `encoder.logvar`) and "decoder" (hidden layers then `decoder.output`).

    Args:
        spec: a `VAESpec` or `ClassifierSpec`.

    Returns:
        tower name -> list of `Dense` (name, fan_in, fan_out, activation); heads and
        output layers have activation "linear".

    Examples:
        >>> from xvae import VAESpec
        >>> [layer.name for layer in dense_layers(VAESpec(input_dim=4, hidden=(3,), latents=2))["decoder"]]
        ['decoder.layers.0', 'decoder.output']
    """
    if isinstance(spec, ClassifierSpec):
        tower = _mlp("", spec.input_dim, spec.hidden, spec.activation)
        width = tower[-1].fan_out if tower else spec.input_dim
        return {"classify": [*tower, Dense("output", width, spec.outputs, "linear")]}
    if isinstance(spec, VAESpec):
        enc, dec = spec.encoder, spec.decoder
        trunk = _mlp("encoder.", enc.input_dim, enc.hidden, enc.activation)
        width = trunk[-1].fan_out if trunk else enc.input_dim
        heads = [Dense(f"encoder.{h}", width, enc.latents, "linear") for h in ("mean", "logvar")]
        body = _mlp("decoder.", dec.latents, dec.hidden, dec.activation)
        width = body[-1].fan_out if body else dec.latents
        out = Dense("decoder.output", width, dec.output_dim, "linear")
        return {"encoder": trunk, "heads": heads, "decoder": [*body, out]}
    raise TypeError(f"Not a model spec: {spec!r}")


def weight_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """Every canonical weight name with its shape, in a stable order.

    Args:
        spec: a `VAESpec` or `ClassifierSpec`.

    Returns:
        name -> shape: kernels (fan_in, fan_out), biases (fan_out,), in forward order.

    Examples:
        >>> from xvae import ClassifierSpec
        >>> weight_shapes(ClassifierSpec(input_dim=784, hidden=(1000,)))
        {'layers.0.kernel': (784, 1000), 'layers.0.bias': (1000,), 'output.kernel': (1000, 1), 'output.bias': (1,)}
    """
    shapes: dict[str, tuple[int, ...]] = {}
    for tower in dense_layers(spec).values():
        for layer in tower:
            shapes[f"{layer.name}.kernel"] = (layer.fan_in, layer.fan_out)
            shapes[f"{layer.name}.bias"] = (layer.fan_out,)
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

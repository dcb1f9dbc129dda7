"""Framework-free model specs: a model is described once, here, and every backend builds it.

Specs are frozen, validate themselves (a bad value raises `SpecError` naming the field),
and round-trip through JSON (`to_dict` / `spec_from_dict`). Hidden layers use `activation`;
heads and output layers are linear: they emit logits, means and log-variances.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Union

from xvae._errors import SpecError
from xvae._numbers import integer, real

__all__ = [
    "ACTIVATIONS",
    "EncoderSpec",
    "DecoderSpec",
    "VAESpec",
    "ClassifierSpec",
    "ModelSpec",
    "spec_from_dict",
    "spec_from_json",
]

#: Hidden-layer activations every backend implements, by name.
ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "gelu", "softplus", "leaky_relu", "linear")


def _positive_int(owner: str, name: str, value: Any) -> int:
    """`value` (a Python or NumPy integer) as a Python int >= 1."""
    number = integer(value)
    if number is None or number < 1:
        raise SpecError(f"{owner}.{name} must be a positive integer. Received: {name}={value!r}")
    return number


def _hidden(owner: str, value: Any) -> tuple[int, ...]:
    if integer(value) is not None:
        value = (value,)
    try:
        widths = tuple(value)
    except TypeError:
        raise SpecError(
            f"{owner}.hidden must be a sequence of positive integers, e.g. (500,). "
            f"Received: hidden={value!r}"
        ) from None
    ints = tuple(integer(w) for w in widths)
    if any(w is None or w < 1 for w in ints):
        raise SpecError(
            f"{owner}.hidden must contain positive integers only. Received: hidden={value!r}"
        )
    return ints  # type: ignore[return-value]


def _activation(owner: str, value: Any) -> str:
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise SpecError(
            f"{owner}.activation must be one of {', '.join(ACTIVATIONS)}. "
            f"Received: activation={value!r}"
        )
    return str(value)


class _Spec:
    """JSON round trip shared by every spec."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON-ready data, tagged with its "kind".

        Returns:
            A dict of the fields (tuples as lists, nested specs as dicts) plus "kind";
            `spec_from_dict` rebuilds an equal spec from it.
        """
        out: dict[str, Any] = {"kind": self.kind}
        for name in self.__dataclass_fields__:  # type: ignore[attr-defined]
            value = getattr(self, name)
            out[name] = value.to_dict() if isinstance(value, _Spec) else _plain(value)
        return out

    def to_json(self) -> str:
        """`to_dict()` as a JSON string with sorted keys; `spec_from_json` rebuilds the spec."""
        return json.dumps(self.to_dict(), sort_keys=True)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class EncoderSpec(_Spec):
    """x (n, input_dim) -> hidden MLP -> two linear heads: mean and logvar, each (n, latents).

    Attributes:
        input_dim: width of the input rows x, a positive int.
        latents: width of z, a positive int; both heads are (n, latents) float32.
        hidden: widths of the hidden layers, e.g. (500,); () for none.
        activation: hidden-layer activation, one of `ACTIVATIONS` ("relu" by default).

    Examples:
        >>> EncoderSpec(input_dim=784, latents=20, hidden=(500,)).to_dict()["hidden"]
        [500]
    """

    kind: ClassVar[str] = "encoder"
    input_dim: int
    latents: int
    hidden: tuple[int, ...] = ()
    activation: str = "relu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_dim", _positive_int("EncoderSpec", "input_dim", self.input_dim))
        object.__setattr__(self, "latents", _positive_int("EncoderSpec", "latents", self.latents))
        object.__setattr__(self, "hidden", _hidden("EncoderSpec", self.hidden))
        _activation("EncoderSpec", self.activation)


@dataclass(frozen=True)
class DecoderSpec(_Spec):
    """z (n, latents) -> hidden MLP -> linear output: Bernoulli logits (n, output_dim).

    Attributes:
        latents: width of z, a positive int.
        output_dim: width of the reconstruction (the encoder's input_dim in a VAE).
        hidden: widths of the hidden layers, e.g. (500,); () for none.
        activation: hidden-layer activation, one of `ACTIVATIONS` ("relu" by default).
        likelihood: "bernoulli", the only one: the output layer emits logits, float32
            (n, output_dim), and the loss is the stable binary cross-entropy on them.
    """

    kind: ClassVar[str] = "decoder"
    latents: int
    output_dim: int
    hidden: tuple[int, ...] = ()
    activation: str = "relu"
    likelihood: str = "bernoulli"

    def __post_init__(self) -> None:
        object.__setattr__(self, "latents", _positive_int("DecoderSpec", "latents", self.latents))
        object.__setattr__(self, "output_dim", _positive_int("DecoderSpec", "output_dim", self.output_dim))
        object.__setattr__(self, "hidden", _hidden("DecoderSpec", self.hidden))
        _activation("DecoderSpec", self.activation)
        if self.likelihood != "bernoulli":
            raise SpecError(
                "DecoderSpec.likelihood must be 'bernoulli' (the only likelihood implemented). "
                f"Received: likelihood={self.likelihood!r}"
            )


@dataclass(frozen=True, init=False)
class VAESpec(_Spec):
    """A VAE: encoder, decoder and the KL weight `beta`.

    Either pass `encoder=` and `decoder=`, or the shorthand `input_dim=, hidden=, latents=`
    (and `activation=`), which mirrors the encoder's hidden widths in the decoder.

    Args:
        encoder: an `EncoderSpec` (or its `to_dict()`).
        decoder: a `DecoderSpec` (or its `to_dict()`); its latents and output_dim must match
            the encoder's latents and input_dim.
        beta: the KL weight, a number >= 0 (1.0: the ELBO).
        input_dim: shorthand: the input width.
        hidden: shorthand: encoder hidden widths; the decoder gets them reversed.
        latents: shorthand: the latent width.
        activation: shorthand: the hidden activation of both towers.

    Raises:
        SpecError: a field is invalid or the two towers do not fit together (the message
            names the field and the value received).

    Examples:
        >>> VAESpec(input_dim=784, hidden=(500,), latents=20).decoder.hidden
        (500,)
    """

    kind: ClassVar[str] = "vae"
    encoder: EncoderSpec
    decoder: DecoderSpec
    beta: float = 1.0

    def __init__(
        self,
        encoder: EncoderSpec | dict[str, Any] | None = None,
        decoder: DecoderSpec | dict[str, Any] | None = None,
        beta: float = 1.0,
        *,
        input_dim: int | None = None,
        hidden: Any = (),
        latents: int | None = None,
        activation: str = "relu",
    ) -> None:
        shorthand = input_dim is not None or latents is not None
        if shorthand and (encoder is not None or decoder is not None):
            raise SpecError(
                "VAESpec takes either encoder= and decoder=, or the shorthand input_dim=, "
                "hidden=, latents=; not both."
            )
        if shorthand:
            if input_dim is None or latents is None:
                raise SpecError(
                    "VAESpec shorthand needs both input_dim= and latents=. "
                    f"Received: input_dim={input_dim!r}, latents={latents!r}"
                )
            widths = _hidden("VAESpec", hidden)
            encoder = EncoderSpec(input_dim, latents, widths, activation)
            decoder = DecoderSpec(latents, input_dim, tuple(reversed(widths)), activation)
        if isinstance(encoder, dict):
            encoder = _from_fields(EncoderSpec, encoder)
        if isinstance(decoder, dict):
            decoder = _from_fields(DecoderSpec, decoder)
        if not isinstance(encoder, EncoderSpec) or not isinstance(decoder, DecoderSpec):
            raise SpecError(
                "VAESpec needs encoder=EncoderSpec(...) and decoder=DecoderSpec(...), or the "
                f"shorthand input_dim=, latents=. Received: encoder={encoder!r}, decoder={decoder!r}"
            )
        if encoder.latents != decoder.latents:
            raise SpecError(
                "VAESpec.decoder.latents must equal VAESpec.encoder.latents. "
                f"Received: encoder.latents={encoder.latents}, decoder.latents={decoder.latents}"
            )
        if encoder.input_dim != decoder.output_dim:
            raise SpecError(
                "VAESpec.decoder.output_dim must equal VAESpec.encoder.input_dim (it reconstructs "
                f"x). Received: input_dim={encoder.input_dim}, output_dim={decoder.output_dim}"
            )
        number = real(beta)
        if number is None or not 0 <= number < float("inf"):
            raise SpecError(f"VAESpec.beta must be a finite number >= 0. Received: beta={beta!r}")
        object.__setattr__(self, "encoder", encoder)
        object.__setattr__(self, "decoder", decoder)
        object.__setattr__(self, "beta", number)

    @property
    def input_dim(self) -> int:
        """The width of x (and of the reconstruction): `encoder.input_dim`."""
        return self.encoder.input_dim

    @property
    def latents(self) -> int:
        """The width of z: `encoder.latents`."""
        return self.encoder.latents


@dataclass(frozen=True)
class ClassifierSpec(_Spec):
    """x (n, input_dim) -> hidden MLP -> linear output logits (n, outputs).

    outputs=1 is a binary classifier (sigmoid / binary cross-entropy on the logit);
    outputs>1 is a softmax classifier (categorical cross-entropy on the logits).

    Attributes:
        input_dim: width of the input rows x, a positive int.
        hidden: widths of the hidden layers, e.g. (1000,); () for logistic regression.
        outputs: number of logits: 1 (binary, labels 0/1) or the number of classes.
        activation: hidden-layer activation, one of `ACTIVATIONS` ("relu" by default).

    Examples:
        >>> ClassifierSpec(input_dim=784, hidden=(1000,)).outputs
        1
    """

    kind: ClassVar[str] = "classifier"
    input_dim: int
    hidden: tuple[int, ...] = ()
    outputs: int = 1
    activation: str = "relu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_dim", _positive_int("ClassifierSpec", "input_dim", self.input_dim))
        object.__setattr__(self, "hidden", _hidden("ClassifierSpec", self.hidden))
        object.__setattr__(self, "outputs", _positive_int("ClassifierSpec", "outputs", self.outputs))
        _activation("ClassifierSpec", self.activation)


ModelSpec = Union[VAESpec, ClassifierSpec]

_KINDS: dict[str, type[_Spec]] = {
    cls.kind: cls for cls in (EncoderSpec, DecoderSpec, VAESpec, ClassifierSpec)
}


def _from_fields(cls: type[Any], data: dict[str, Any]) -> Any:
    fields = {k: v for k, v in data.items() if k != "kind"}
    unknown = set(fields) - set(cls.__dataclass_fields__)
    if unknown:
        raise SpecError(
            f"{cls.__name__} has no field(s) {', '.join(sorted(unknown))}. "
            f"Known fields: {', '.join(cls.__dataclass_fields__)}"
        )
    if "hidden" in fields and isinstance(fields["hidden"], list):
        fields["hidden"] = tuple(fields["hidden"])
    try:
        return cls(**fields)
    except TypeError as err:
        raise SpecError(f"{cls.__name__} could not be built from {data!r}: {err}") from None


def spec_from_dict(data: dict[str, Any]) -> Any:
    """Rebuild a spec from `to_dict()` output; the "kind" key picks the class.

    Args:
        data: a dict with "kind" in "vae", "encoder", "decoder", "classifier" and the fields.

    Returns:
        The spec, equal to the one `to_dict()` came from.

    Raises:
        SpecError: no known "kind", an unknown field, or an invalid value.

    Examples:
        >>> spec = VAESpec(input_dim=64, hidden=(32,), latents=2)
        >>> spec_from_dict(spec.to_dict()) == spec
        True
    """
    if not isinstance(data, dict) or data.get("kind") not in _KINDS:
        raise SpecError(
            f"A spec dict needs 'kind' in {', '.join(_KINDS)}. Received: {data!r:.200}"
        )
    return _from_fields(_KINDS[data["kind"]], data)


def spec_from_json(text: str) -> Any:
    """Rebuild a spec from `to_json()` output.

    Args:
        text: the JSON string.

    Returns:
        The spec.

    Raises:
        SpecError: the text is not JSON, or not a valid spec.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SpecError(f"A spec must be valid JSON: {err}") from None
    return spec_from_dict(data)


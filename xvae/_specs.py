"""Framework-free model specs: a model is described once, here, and every backend builds it.

Specs are frozen, validate themselves (a bad value raises `SpecError` naming the field),
and round-trip through JSON (`to_dict` / `spec_from_dict`). Hidden layers use `activation`;
heads and output layers are linear: they emit logits, means and log-variances.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Union

import numpy as np

from xvae._errors import SpecError
from xvae._numbers import integer, real
from xvae.layers import Dense, Layer, Placed, layer_from_dict, place
from xvae.layers.activations import NAMES as ACTIVATIONS

__all__ = [
    "ACTIVATIONS",
    "LIKELIHOODS",
    "EncoderSpec",
    "DecoderSpec",
    "VAESpec",
    "ClassifierSpec",
    "ModelSpec",
    "spec_from_dict",
    "spec_from_json",
]

#: Decoder likelihoods (DecoderSpec.likelihood); xvae.losses has each one's float64 reference.
LIKELIHOODS = ("bernoulli", "gaussian", "continuous_bernoulli")
#: The most hidden layers a spec may have (a longer `hidden` is a mistake, not a model).
MAX_LAYERS = 1000


def _positive_int(owner: str, name: str, value: Any) -> int:
    """`value` (a Python or NumPy integer) as a Python int >= 1."""
    number = integer(value)
    if number is None or number < 1:
        raise SpecError(f"{owner}.{name} must be a positive integer. Received: {name}={value!r}")
    return number


def _conditions(owner: str, value: Any) -> int:
    """A conditional VAE's number of classes: an int >= 0 (0: no condition)."""
    number = integer(value)
    if number is None or number < 0:
        raise SpecError(f"{owner}.conditions must be an integer >= 0: the number of classes of a conditional "
                        f"VAE (0: a plain VAE). Received: conditions={value!r:.100}")
    return number


def _hidden(owner: str, value: Any) -> tuple[int, ...]:
    if integer(value) is not None:
        value = (value,)
    if isinstance(value, (str, bytes)) or getattr(value, "ndim", 1) != 1:
        raise SpecError(f"{owner}.hidden must be a sequence of positive integers, e.g. (500,). "
                        f"Received: hidden={value!r:.200}")
    try:
        widths = tuple(itertools.islice(value, MAX_LAYERS + 1))  # never a billion-item iterable
    except TypeError:
        raise SpecError(
            f"{owner}.hidden must be a sequence of positive integers, e.g. (500,). "
            f"Received: hidden={value!r}"
        ) from None
    if len(widths) > MAX_LAYERS:
        raise SpecError(f"{owner}.hidden has more than {MAX_LAYERS} layers. Received: hidden={value!r:.200}")
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


def _shape(owner: str, name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, np.ndarray) and (value.ndim > 1 or value.size > 64):  # tuple() would copy out every row
        raise SpecError(f"{owner}.{name} must be a tuple of positive ints such as (28, 28, 1). "
                        f"Received an array of shape {value.shape}")
    try:
        dims = tuple(value)
    except TypeError:
        dims = (value,)
    if not dims:
        raise SpecError(f"{owner}.{name} must be a tuple of positive ints such as (28, 28, 1). "
                        f"Received: {name}={value!r}")
    return tuple(_positive_int(owner, name, d) for d in dims)


def _layers(owner: str, value: Any) -> tuple[Layer, ...]:
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise SpecError(f"{owner}.layers must be a list of layer specs such as [Dense(500, 'relu')]. "
                        f"Received: layers={value!r:.200}")
    return tuple(layer_from_dict(layer) for layer in value)


def _input_shape(owner: str, input_dim: Any, input_shape: Any, name: str = "input") -> tuple[int, ...]:
    if input_dim is not None and input_shape is not None:
        raise SpecError(f"{owner} takes {name}_dim= or {name}_shape=, not both. "
                        f"Received: {name}_dim={input_dim!r}, {name}_shape={input_shape!r}")
    if input_shape is not None:
        return _shape(owner, f"{name}_shape", input_shape)
    if input_dim is None:
        raise SpecError(f"{owner} needs {name}_dim= (flat rows) or {name}_shape= (e.g. (28, 28, 1)).")
    return (_positive_int(owner, f"{name}_dim", input_dim),)


def _stack(owner: str, hidden: Any, activation: Any, layers: Any) -> tuple[tuple[int, ...], str, Any]:
    """(hidden, activation, layers): the Dense shorthand or an explicit layer list, not both."""
    widths = _hidden(owner, hidden)
    _activation(owner, activation)
    if layers is None:
        return widths, activation, None
    if widths or activation != "relu":
        raise SpecError(f"{owner} takes hidden=/activation= (the Dense shorthand) or layers=, not both. "
                        f"Received: hidden={hidden!r}, activation={activation!r}, layers=[...]")
    return (), "relu", _layers(owner, layers)


def _shaped_dict(spec: Any, shape_field: str, shape: tuple[int, ...], dim_field: str) -> dict[str, Any]:
    """to_dict of a tower spec: the pre-layers format (dim + hidden + activation) for the
    shorthand on flat rows, so every checkpoint written before layers existed reads back equal."""
    out: dict[str, Any] = {"kind": spec.kind}
    if len(shape) == 1:
        out[dim_field] = shape[0]
    else:
        out[shape_field] = list(shape)
    if spec.layers is None:
        out.update(hidden=list(spec.hidden), activation=spec.activation)
    else:
        out["layers"] = [layer.to_dict() for layer in spec.layers]
    return out


def _tower_rows(spec: Any, rows: list[tuple[str, str, tuple[int, ...], int]]) -> str:
    width = max([len(r[1]) for r in rows] + [10])
    lines = [f"{'name':<20} {'layer':<{width}} {'output shape':<16} params"]
    for name, label, shape, count in rows:
        lines.append(f"{name:<20} {label:<{width}} {str(shape):<16} {count:,}")
    lines.append(f"total params: {sum(r[3] for r in rows):,}")
    return "\n".join(lines)


@dataclass(frozen=True, init=False)
class EncoderSpec(_Spec):
    """x -> a tower of layers -> two linear heads: mean and logvar, each (n, latents).

    Either the Dense shorthand (`input_dim=, hidden=, activation=`) or an explicit
    `layers=[...]` list of `xvae.layers` specs on `input_shape=` (images are
    (height, width, channels)); the tower must end in flat rows (put `Flatten()` last).
    Shapes are checked here: a layer that cannot take its input raises SpecError naming
    its index, type and shapes.

    Attributes:
        input_shape: shape of one example, e.g. (784,) or (28, 28, 1).
        latents: width of z, a positive int; both heads are (n, latents) float32.
        hidden: shorthand: widths of Dense hidden layers, e.g. (500,); () for none.
        activation: shorthand: hidden-layer activation, one of `ACTIVATIONS` ("relu").
        layers: the explicit tower (a tuple of layer specs), or None for the shorthand.

    Examples:
        >>> EncoderSpec(input_dim=784, latents=20, hidden=(500,)).to_dict()["hidden"]
        [500]
        >>> from xvae.layers import Conv2D, Flatten
        >>> EncoderSpec(input_shape=(8, 8, 1), layers=[Conv2D(4, 3, stride=2), Flatten()], latents=2).input_dim
        64
    """

    kind: ClassVar[str] = "encoder"
    input_shape: tuple[int, ...]
    latents: int
    hidden: tuple[int, ...]
    activation: str
    layers: tuple[Layer, ...] | None

    def __init__(self, input_dim: int | None = None, latents: int | None = None, hidden: Any = (),
                 activation: str = "relu", *, input_shape: Any = None, layers: Any = None) -> None:
        shape = _input_shape("EncoderSpec", input_dim, input_shape)
        latents = _positive_int("EncoderSpec", "latents", latents)
        hidden, activation, layers = _stack("EncoderSpec", hidden, activation, layers)
        for name, value in (("input_shape", shape), ("latents", latents), ("hidden", hidden),
                            ("activation", activation), ("layers", layers)):
            object.__setattr__(self, name, value)
        trunk = self.placed()
        if trunk and len(trunk[-1].output_shape) != 1:
            raise SpecError(f"EncoderSpec.layers must end in flat rows for the mean/logvar heads: the last "
                            f"layer ({type(trunk[-1].layer).__name__}) outputs {trunk[-1].output_shape}. "
                            "Add Flatten() at the end.")

    @property
    def input_dim(self) -> int:
        """Values per example: the product of `input_shape`."""
        return math.prod(self.input_shape)

    @property
    def flat_trunk(self) -> bool:
        """True when the trunk reads flat rows (the Dense shorthand, or layers on a flat
        input_shape): a conditional VAE's one-hot condition then joins x at the trunk's
        input; otherwise (layers on images) it joins the trunk's flat output."""
        return self.layers is None or len(self.input_shape) == 1

    def placed(self, prefix: str = "", conditions: int = 0) -> list[Placed]:
        """The trunk's layers with names (`{prefix}layers.{i}`) and inferred shapes.

        `conditions`: a conditional VAE's one-hot width; a flat trunk then reads
        (input_dim + conditions,) rows (`flat_trunk`).
        """
        conditions = _conditions("EncoderSpec", conditions)
        shape = (self.input_dim + conditions,) if conditions and self.flat_trunk else self.input_shape
        return _placed("EncoderSpec", prefix, shape, self.hidden, self.activation, self.layers)

    def to_dict(self) -> dict[str, Any]:
        out = _shaped_dict(self, "input_shape", self.input_shape, "input_dim")
        out["latents"] = self.latents
        return out


@dataclass(frozen=True, init=False)
class DecoderSpec(_Spec):
    """z (n, latents) -> a tower of layers -> the likelihood's parameters (n, output_dim).

    The shorthand (`output_dim=, hidden=, activation=`) ends in a linear Dense named
    `decoder.output`; with `layers=[...]` the last layer *is* the output and must produce
    `output_shape` (e.g. a linear `Conv2DTranspose(1, 3)` for (28, 28, 1) logits).

    Attributes:
        latents: width of z, a positive int.
        output_shape: shape of one reconstruction (the encoder's input_shape in a VAE).
        hidden: shorthand: widths of Dense hidden layers; () for none.
        activation: shorthand: hidden-layer activation ("relu").
        layers: the explicit tower, or None for the shorthand.
        likelihood: "bernoulli" (logits; BCE), "gaussian" (the output is the mean) or
            "continuous_bernoulli" (logits of the continuous Bernoulli, for [0, 1] grey levels).
        sigma: "gaussian" only: a fixed standard deviation (a number > 0, default 1.0),
            "learned" (one global `decoder.log_sigma` of shape (1,)) or "learned_per_output"
            (`decoder.log_sigma` of the output shape); learned scales start at sigma = 1.
    """

    kind: ClassVar[str] = "decoder"
    latents: int
    output_shape: tuple[int, ...]
    hidden: tuple[int, ...]
    activation: str
    likelihood: str
    layers: tuple[Layer, ...] | None
    sigma: float | str

    def __init__(self, latents: int | None = None, output_dim: int | None = None, hidden: Any = (),
                 activation: str = "relu", likelihood: str = "bernoulli", *, output_shape: Any = None,
                 layers: Any = None, sigma: Any = 1.0) -> None:
        latents = _positive_int("DecoderSpec", "latents", latents)
        shape = _input_shape("DecoderSpec", output_dim, output_shape, name="output")
        hidden, activation, layers = _stack("DecoderSpec", hidden, activation, layers)
        if likelihood not in LIKELIHOODS:
            raise SpecError(f"DecoderSpec.likelihood must be one of {', '.join(LIKELIHOODS)}. "
                            f"Received: likelihood={likelihood!r}")
        if isinstance(sigma, str):
            if sigma not in ("learned", "learned_per_output"):
                raise SpecError('DecoderSpec.sigma must be a number > 0, "learned" or "learned_per_output". '
                                f"Received: sigma={sigma!r}")
        elif (number := real(sigma)) is None or not 0 < number < float("inf"):
            raise SpecError(f"DecoderSpec.sigma must be a number > 0, \"learned\" or \"learned_per_output\". "
                            f"Received: sigma={sigma!r}")
        else:
            sigma = number
        if likelihood != "gaussian" and sigma != 1.0:
            raise SpecError(f'DecoderSpec.sigma applies to likelihood="gaussian" only. Received: '
                            f"likelihood={likelihood!r}, sigma={sigma!r}")
        for name, value in (("latents", latents), ("output_shape", shape), ("hidden", hidden),
                            ("activation", activation), ("likelihood", likelihood), ("layers", layers),
                            ("sigma", sigma)):
            object.__setattr__(self, name, value)
        body = self.placed()
        if layers is not None:
            got = body[-1].output_shape if body else (latents,)
            if got != shape:
                last = f"the last layer ({type(body[-1].layer).__name__}, index {len(body) - 1})" if body else "z"
                raise SpecError(f"DecoderSpec.layers must end in the output shape {shape}: {last} outputs {got}.")

    @property
    def output_dim(self) -> int:
        """Values per reconstruction: the product of `output_shape`."""
        return math.prod(self.output_shape)

    def placed(self, prefix: str = "", conditions: int = 0) -> list[Placed]:
        """The decoder's layers, the shorthand's `output` Dense included; `conditions`: a
        conditional VAE's one-hot width, joined to z: the first layer reads (latents + conditions,)."""
        conditions = _conditions("DecoderSpec", conditions)
        body = _placed("DecoderSpec", prefix, (self.latents + conditions,), self.hidden, self.activation, self.layers)
        if self.layers is None:
            width = body[-1].output_shape if body else (self.latents + conditions,)
            body.append(Placed(f"{prefix}output", Dense(self.output_dim), width, (self.output_dim,)))
        return body

    def log_sigma_shape(self) -> tuple[int, ...] | None:
        """The shape of the learned `decoder.log_sigma`, or None when sigma is not learned."""
        if self.sigma == "learned":
            return (1,)
        if self.sigma == "learned_per_output":
            return self.output_shape
        return None

    def to_dict(self) -> dict[str, Any]:
        out = _shaped_dict(self, "output_shape", self.output_shape, "output_dim")
        out.update(latents=self.latents, likelihood=self.likelihood)
        if self.likelihood == "gaussian":
            out["sigma"] = self.sigma
        return out


def _placed(owner: str, prefix: str, shape: tuple[int, ...], hidden: tuple[int, ...], activation: str,
            layers: tuple[Layer, ...] | None) -> list[Placed]:
    if layers is None:  # the shorthand: Dense layers on flat rows, whatever the example's shape
        stack: tuple[Layer, ...] = tuple(Dense(w, activation) for w in hidden)
        shape = (math.prod(shape),)
    else:
        stack = layers
    return place(owner, shape, stack, [f"{prefix}layers.{i}" for i in range(len(stack))])


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
        conditions: a conditional VAE (CVAE) over this many classes (0: a plain VAE). The
            class, one-hot (float32 (n, conditions)), is concatenated to the encoder's
            input (flat trunks: to the x row; trunks on images: to the trunk's flat
            output, before the mean/logvar heads) and to z, the decoder's input. Its
            weights are the last `conditions` rows of the kernel that reads it. The
            model's methods then take labels: `fit(x, y)`, `encode(x, y)`, `decode(z, y)`,
            `sample(n, y=...)`.

    Raises:
        SpecError: a field is invalid or the two towers do not fit together (the message
            names the field and the value received).

    Examples:
        >>> VAESpec(input_dim=784, hidden=(500,), latents=20).decoder.hidden
        (500,)
        >>> VAESpec(input_dim=784, hidden=(500,), latents=20, conditions=10).to_dict()["conditions"]
        10
    """

    kind: ClassVar[str] = "vae"
    encoder: EncoderSpec
    decoder: DecoderSpec
    beta: float = 1.0
    conditions: int = 0

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
        conditions: int = 0,
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
        if (encoder.input_dim != decoder.output_dim
                or (len(encoder.input_shape) > 1 and len(decoder.output_shape) > 1
                    and encoder.input_shape != decoder.output_shape)):
            raise SpecError(
                "VAESpec.decoder.output_dim must equal VAESpec.encoder.input_dim (it reconstructs "
                f"x). Received: encoder input shape {encoder.input_shape}, decoder output shape {decoder.output_shape}"
            )
        number = real(beta)
        if number is None or not 0 <= number < float("inf"):
            raise SpecError(f"VAESpec.beta must be a finite number >= 0. Received: beta={beta!r}")
        classes = _conditions("VAESpec", conditions)
        if classes:  # the towers must take the one-hot columns (a decoder starting with Reshape(z) cannot)
            try:
                encoder.placed(conditions=classes)
                body = decoder.placed(conditions=classes)
            except SpecError as err:
                raise SpecError(f"VAESpec.conditions={classes}: the towers cannot take the one-hot condition: "
                                f"{err}") from None
            if body[-1].output_shape != decoder.output_shape:
                raise SpecError(f"VAESpec.conditions={classes}: with the condition joined to z the decoder "
                                f"outputs {body[-1].output_shape}, not {decoder.output_shape}.")
        object.__setattr__(self, "encoder", encoder)
        object.__setattr__(self, "decoder", decoder)
        object.__setattr__(self, "beta", number)
        object.__setattr__(self, "conditions", classes)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if not self.conditions:  # a plain VAE's dict (and checkpoint) stays what it always was
            del out["conditions"]
        return out

    @property
    def input_dim(self) -> int:
        """The width of x (and of the reconstruction): `encoder.input_dim`."""
        return self.encoder.input_dim

    @property
    def latents(self) -> int:
        """The width of z: `encoder.latents`."""
        return self.encoder.latents

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example: `encoder.input_shape`."""
        return self.encoder.input_shape

    def describe(self) -> str:
        """A Keras-summary-like table: every layer with its output shape and parameter count.

        Examples:
            >>> print(VAESpec(input_dim=4, hidden=(3,), latents=2).describe().splitlines()[1])
            encoder.layers.0     Dense(3, relu) (3,)             15
        """
        c = self.conditions
        rows = _rows(self.encoder.placed("encoder.", c))
        width = rows[-1][2] if rows else (self.encoder.input_dim + c,)
        if c and not self.encoder.flat_trunk:
            width = (width[0] + c,)
        for head in ("mean", "logvar"):
            rows.append((f"encoder.{head}", f"Dense({self.latents})", (self.latents,),
                         (width[0] + 1) * self.latents))
        rows += _rows(self.decoder.placed("decoder.", c))
        sigma = self.decoder.log_sigma_shape()
        if sigma is not None:
            rows.append(("decoder.log_sigma", "log sigma", sigma, math.prod(sigma)))
        table = _tower_rows(self, rows)
        if c:
            where = "x" if self.encoder.flat_trunk else "the encoder trunk's output"
            table += f"\nconditions: {c} classes, one-hot, concatenated to {where} and to z"
        return table


@dataclass(frozen=True, init=False)
class ClassifierSpec(_Spec):
    """x -> a tower of layers -> logits (n, outputs).

    outputs=1 is a binary classifier (sigmoid / binary cross-entropy on the logit);
    outputs>1 is a softmax classifier (categorical cross-entropy on the logits). The
    shorthand (`input_dim=, hidden=, activation=`) ends in a linear Dense named `output`;
    with `layers=[...]` the last layer *is* the output and must produce (outputs,).

    Attributes:
        input_shape: shape of one example, e.g. (784,) or (28, 28, 1).
        hidden: shorthand: widths of Dense hidden layers, e.g. (1000,); () for logistic regression.
        outputs: number of logits: 1 (binary, labels 0/1) or the number of classes.
        activation: shorthand: hidden-layer activation, one of `ACTIVATIONS` ("relu").
        layers: the explicit tower, or None for the shorthand.

    Examples:
        >>> ClassifierSpec(input_dim=784, hidden=(1000,)).outputs
        1
    """

    kind: ClassVar[str] = "classifier"
    input_shape: tuple[int, ...]
    hidden: tuple[int, ...]
    outputs: int
    activation: str
    layers: tuple[Layer, ...] | None

    def __init__(self, input_dim: int | None = None, hidden: Any = (), outputs: int = 1,
                 activation: str = "relu", *, input_shape: Any = None, layers: Any = None) -> None:
        shape = _input_shape("ClassifierSpec", input_dim, input_shape)
        outputs = _positive_int("ClassifierSpec", "outputs", outputs)
        hidden, activation, layers = _stack("ClassifierSpec", hidden, activation, layers)
        for name, value in (("input_shape", shape), ("hidden", hidden), ("outputs", outputs),
                            ("activation", activation), ("layers", layers)):
            object.__setattr__(self, name, value)
        tower = self.placed()
        if layers is not None:
            got = tower[-1].output_shape if tower else shape
            if got != (outputs,):
                last = (f"the last layer ({type(tower[-1].layer).__name__}, index {len(tower) - 1})"
                        if tower else "the input")
                raise SpecError(f"ClassifierSpec.layers must end in ({outputs},) logits (outputs={outputs}): "
                                f"{last} outputs {got}. End with Dense({outputs}).")

    @property
    def input_dim(self) -> int:
        """Values per example: the product of `input_shape`."""
        return math.prod(self.input_shape)

    def placed(self, prefix: str = "") -> list[Placed]:
        """The layers with names and inferred shapes, the shorthand's `output` Dense included."""
        tower = _placed("ClassifierSpec", prefix, self.input_shape, self.hidden, self.activation, self.layers)
        if self.layers is None:
            width = tower[-1].output_shape if tower else (self.input_dim,)
            tower.append(Placed(f"{prefix}output", Dense(self.outputs), width, (self.outputs,)))
        return tower

    def to_dict(self) -> dict[str, Any]:
        out = _shaped_dict(self, "input_shape", self.input_shape, "input_dim")
        out["outputs"] = self.outputs
        return out

    def describe(self) -> str:
        """A Keras-summary-like table: every layer with its output shape and parameter count."""
        return _tower_rows(self, _rows(self.placed()))


def _rows(placed: list[Placed]) -> list[tuple[str, str, tuple[int, ...], int]]:
    return [(p.name, p.layer.describe(), p.output_shape, p.layer.count_params(p.input_shape)) for p in placed]


ModelSpec = Union[VAESpec, ClassifierSpec]

_KINDS: dict[str, type[_Spec]] = {
    cls.kind: cls for cls in (EncoderSpec, DecoderSpec, VAESpec, ClassifierSpec)
}


def _from_fields(cls: type[Any], data: dict[str, Any]) -> Any:
    fields = {k: v for k, v in data.items() if k != "kind"}
    known = [name for name in inspect.signature(cls.__init__).parameters if name != "self"]
    unknown = set(fields) - set(known)
    if unknown:
        raise SpecError(
            f"{cls.__name__} has no field(s) {', '.join(sorted(unknown))}. "
            f"Known fields: {', '.join(known)}"
        )
    for name in ("hidden", "input_shape", "output_shape"):
        if name in fields and isinstance(fields[name], list):
            fields[name] = tuple(fields[name])
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
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str) or data["kind"] not in _KINDS:
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
    if not isinstance(text, (str, bytes, bytearray)):
        raise SpecError(f"spec_from_json needs the JSON text (a str). Received: {text!r:.200}")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError of bytes
        raise SpecError(f"A spec must be valid JSON: {err}") from None
    return spec_from_dict(data)


import json

import pytest

import xvae


def test_vae_shorthand_mirrors_the_encoder():
    spec = xvae.VAESpec(input_dim=784, hidden=(500, 200), latents=20)
    assert spec.encoder == xvae.EncoderSpec(input_dim=784, latents=20, hidden=(500, 200))
    assert spec.decoder == xvae.DecoderSpec(latents=20, output_dim=784, hidden=(200, 500))
    assert (spec.input_dim, spec.latents, spec.beta) == (784, 20, 1.0)


def test_specs_round_trip_through_json():
    specs = [
        xvae.VAESpec(input_dim=64, hidden=(32,), latents=2, activation="tanh"),
        xvae.VAESpec(encoder=xvae.EncoderSpec(10, 3, (8, 4)), decoder=xvae.DecoderSpec(3, 10, (5,)), beta=0.5),
        xvae.ClassifierSpec(input_dim=784, hidden=(1000,), outputs=1),
        xvae.ClassifierSpec(input_dim=8, outputs=10, activation="elu"),
    ]
    for spec in specs:
        text = spec.to_json()
        assert json.loads(text)["kind"] == spec.kind
        assert xvae.spec_from_json(text) == spec
        assert hash(xvae.spec_from_dict(spec.to_dict())) == hash(spec)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: xvae.VAESpec(input_dim=0, latents=2), "input_dim"),
        (lambda: xvae.VAESpec(input_dim=4, latents=-1), "latents"),
        (lambda: xvae.VAESpec(input_dim=4, latents=2, hidden=(3, 0)), "hidden"),
        (lambda: xvae.VAESpec(input_dim=4, latents=2, hidden="wide"), "hidden"),
        (lambda: xvae.VAESpec(input_dim=4, latents=2, activation="swishy"), "activation"),
        (lambda: xvae.VAESpec(input_dim=4, latents=2, beta=-1), "beta"),
        (lambda: xvae.ClassifierSpec(input_dim=4, outputs=0), "outputs"),
        (lambda: xvae.ClassifierSpec(input_dim=4.5), "input_dim"),
        (lambda: xvae.ClassifierSpec(input_dim=True), "input_dim"),
        (lambda: xvae.DecoderSpec(latents=2, output_dim=4, likelihood="poisson"), "likelihood"),
        (lambda: xvae.VAESpec(encoder=xvae.EncoderSpec(4, 2), decoder=xvae.DecoderSpec(3, 4)), "latents"),
        (lambda: xvae.VAESpec(encoder=xvae.EncoderSpec(4, 2), decoder=xvae.DecoderSpec(2, 5)), "output_dim"),
        (lambda: xvae.VAESpec(input_dim=4), "latents"),
    ],
)
def test_bad_values_name_the_field(build, field):
    with pytest.raises(xvae.SpecError, match=field) as info:
        build()
    assert isinstance(info.value, ValueError) and isinstance(info.value, xvae.XVAEError)


def test_specs_are_frozen():
    spec = xvae.ClassifierSpec(input_dim=4)
    with pytest.raises(AttributeError):
        spec.input_dim = 5  # type: ignore[misc]


def test_bad_json():
    with pytest.raises(xvae.SpecError, match="JSON"):
        xvae.spec_from_json("{not json")
    with pytest.raises(xvae.SpecError, match="kind"):
        xvae.spec_from_dict({"kind": "gan"})
    with pytest.raises(xvae.SpecError, match="no field"):
        xvae.spec_from_dict({"kind": "classifier", "input_dim": 3, "dropout": 0.5})


def test_errors_reraise_with_message_only():
    for cls in (xvae.SpecError, xvae.CheckpointError, xvae.TrainingDivergedError, xvae.DataError,
                xvae.BackendUnavailableError, xvae.BackendNotFoundError, xvae.ConfigError):
        err = cls("boom")
        assert str(type(err)(str(err))) == "boom"
        assert cls.__module__ == "xvae" and issubclass(cls, xvae.XVAEError)

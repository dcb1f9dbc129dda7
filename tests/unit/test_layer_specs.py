"""Specs built from layers: shape inference at construction, errors naming the layer,
JSON round trips, weight names, describe(), and old checkpoints still loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xvae
from xvae import layers as L
from xvae.naming import towers, weight_shapes

FIXTURES = Path(__file__).parent / "fixtures"


def conv_vae(likelihood="bernoulli", **decoder):
    enc = xvae.EncoderSpec(input_shape=(8, 8, 1), latents=3, layers=[
        L.Conv2D(4, 3, stride=2, activation="relu"), L.Conv2D(8, 3, stride=2, activation="relu"), L.Flatten()])
    dec = xvae.DecoderSpec(latents=3, output_shape=(8, 8, 1), likelihood=likelihood, layers=[
        L.Dense(2 * 2 * 8, "relu"), L.Reshape((2, 2, 8)),
        L.Conv2DTranspose(8, 3, stride=2, activation="relu"), L.Conv2DTranspose(4, 3, stride=2, activation="relu"),
        L.Conv2DTranspose(1, 3)], **decoder)
    return xvae.VAESpec(encoder=enc, decoder=dec)


CONVNET = xvae.ClassifierSpec(input_shape=(12, 12, 1), outputs=10, layers=[
    L.Conv2D(4, 3, padding="valid", activation="relu"), L.MaxPool2D(2), L.Conv2D(8, 3, padding="valid",
    activation="relu"), L.MaxPool2D(2), L.Flatten(), L.Dropout(0.5), L.Dense(10)])


@pytest.mark.parametrize("spec", [conv_vae(), conv_vae("gaussian", sigma="learned_per_output"),
                                  conv_vae("continuous_bernoulli"), CONVNET,
                                  xvae.VAESpec(input_dim=6, hidden=(4,), latents=2)],
                         ids=["conv-vae", "gaussian", "cb", "convnet", "shorthand"])
def test_json_round_trip(spec):
    assert xvae.spec_from_json(spec.to_json()) == spec


def test_hidden_shorthand_equals_dense_layers_in_numbers_and_names():
    short = xvae.ClassifierSpec(input_dim=6, hidden=(5,), outputs=3)
    long = xvae.ClassifierSpec(input_shape=(6,), outputs=3, layers=[L.Dense(5, "relu"), L.Dense(3)])
    w_short = xvae.Classifier(short, backend="numpy", seed=0).get_weights()
    w_long = xvae.Classifier(long, backend="numpy", seed=0).get_weights()
    assert list(w_short) == ["layers.0.kernel", "layers.0.bias", "output.kernel", "output.bias"]
    assert list(w_long) == ["layers.0.kernel", "layers.0.bias", "layers.1.kernel", "layers.1.bias"]
    for a, b in zip(w_short.values(), w_long.values()):  # the same draws in the same order
        np.testing.assert_array_equal(a, b)


def test_weight_names_are_positional_and_layouts_canonical():
    shapes = weight_shapes(conv_vae("gaussian", sigma="learned"))
    assert shapes["encoder.layers.0.kernel"] == (3, 3, 1, 4)  # HWIO
    assert "encoder.layers.2.kernel" not in shapes  # Flatten: no weights, keeps its index
    assert shapes["encoder.mean.kernel"] == (32, 3)
    assert shapes["decoder.layers.2.kernel"] == (3, 3, 8, 8)
    assert shapes["decoder.layers.4.kernel"] == (3, 3, 1, 4)  # ConvT: (kh, kw, out, in)
    assert shapes["decoder.log_sigma"] == (1,)
    assert weight_shapes(conv_vae("gaussian", sigma="learned_per_output"))["decoder.log_sigma"] == (8, 8, 1)
    names = [p.name for p in towers(conv_vae())["encoder"]]
    assert names[0] == "encoder.input" and towers(conv_vae())["decoder"][-1].name == "decoder.flat"


@pytest.mark.parametrize(("build", "needles"), [
    (lambda: xvae.ClassifierSpec(input_shape=(4, 4, 1), outputs=2, layers=[L.Conv2D(2, 5, padding="valid")]),
     ["layers[0]", "Conv2D", "(4, 4, 1)", "larger"]),
    (lambda: xvae.DecoderSpec(latents=2, output_shape=(4, 4, 1), layers=[L.Dense(15), L.Reshape((4, 4, 1))]),
     ["layers[1]", "Reshape", "(15,)", "(4, 4, 1)"]),
    (lambda: xvae.ClassifierSpec(input_shape=(4, 4, 1), outputs=2, layers=[L.Dense(2)]),
     ["layers[0]", "Dense", "Flatten"]),
    (lambda: xvae.ClassifierSpec(input_shape=(4, 4, 1), outputs=2, layers=[L.MaxPool2D(5)]),
     ["layers[0]", "MaxPool2D", "larger"]),
    (lambda: xvae.VAESpec(encoder=conv_vae().encoder, decoder=xvae.DecoderSpec(3, output_shape=(8, 4, 2),
                                                                               hidden=(5,))),
     ["decoder", "(8, 8, 1)", "(8, 4, 2)"]),
    (lambda: xvae.DecoderSpec(latents=2, output_shape=(8, 8, 1), layers=[L.Dense(64), L.Reshape((8, 8, 1)),
                                                                         L.Conv2D(2, 3)]),
     ["output shape (8, 8, 1)", "Conv2D", "index 2", "(8, 8, 2)"]),
    (lambda: xvae.ClassifierSpec(input_shape=(6,), outputs=3, layers=[L.Dense(4)]), ["(3,)", "(4,)"]),
    (lambda: xvae.EncoderSpec(input_shape=(4, 4, 1), latents=2, layers=[L.Conv2D(2, 3)]), ["Flatten()", "(4, 4, 2)"]),
    (lambda: L.Conv2D(2, 3, stride=0), ["stride"]),
    (lambda: xvae.ClassifierSpec(input_dim=4, hidden=(3,), layers=[L.Dense(1)]), ["not both"]),
    (lambda: xvae.DecoderSpec(2, 4, likelihood="bernoulli", sigma="learned"), ["sigma"]),
    (lambda: xvae.DecoderSpec(2, 4, likelihood="gaussian", sigma=0.0), ["sigma"]),
])
def test_shape_errors_name_layer_index_type_and_shapes(build, needles):
    with pytest.raises(xvae.SpecError) as info:
        build()
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


def test_describe_lists_output_shapes_and_parameter_counts():
    text = conv_vae().describe()
    assert "encoder.layers.0" in text and "(4, 4, 4)" in text and "Conv2DTranspose(1, 3)" in text
    total = sum(int(np.prod(s)) for s in weight_shapes(conv_vae()).values())
    assert text.splitlines()[-1] == f"total params: {total:,}"
    assert "Dropout(0.5)" in CONVNET.describe()


def test_images_go_in_as_images_and_come_out_as_images():
    vae = xvae.VAE(conv_vae(), backend="numpy", seed=0)
    x = np.random.default_rng(0).random((5, 8, 8, 1), dtype=np.float32)
    np.testing.assert_array_equal(vae.encode(x)[0], vae.encode(x.reshape(5, -1))[0])
    assert vae.reconstruct(x).shape == (5, 8, 8, 1) and vae.sample(2).shape == (2, 8, 8, 1)
    h = vae.fit(x, epochs=1, batch_size=4, progress=False)
    assert np.isfinite(h.history["loss"][0])


def test_dropout_masks_are_keyed_by_example_over_every_dropout_column():
    """Dropout masks (DESIGN §1 + issues 11, 13): ONE keyed uniform row per example over every
    Dropout column, ``keyed.uniform(seed, epoch, DROPOUT, example id, units)``, in the epoch's
    order; a model without Dropout draws none."""
    from xvae import keyed
    from xvae._training import draw_epoch

    x = np.random.default_rng(1).random((6, 144), dtype=np.float32)
    data = draw_epoch(x, np.zeros(6), seed=5, epoch=2, shuffle=True, binarize=None, latents=None,
                      dropout=towers(CONVNET))
    order = keyed.permutation(5, 2, 6)
    u = keyed.uniform(5, 2, keyed.DROPOUT, order, 8)  # 12 -> 10 -> 5 -> 3 -> 1: 1 x 1 x 8 units
    np.testing.assert_array_equal(data.dropout, np.where(u >= 0.5, 2.0, 0.0).astype(np.float32))
    assert data.dropout.dtype == np.float32
    clf = xvae.Classifier(CONVNET, backend="numpy", seed=0)
    assert clf._dropout_towers is not None
    assert xvae.Classifier(xvae.ClassifierSpec(input_dim=3), backend="numpy")._dropout_towers is None


def test_checkpoints_written_before_layers_existed_still_load():
    """Fixtures written by the code before issue 11 (tests/unit/fixtures/v0-*)."""
    want = np.load(FIXTURES / "v0-expected.npz")
    vae = xvae.load(FIXTURES / "v0-vae.xvae")
    assert vae.spec == xvae.VAESpec(input_dim=6, hidden=(4,), latents=2) and vae.epoch == 1
    # The weights load bit for bit; the predictions are float64 reference arithmetic (BLAS and
    # numpy's SIMD tanh pick kernels by CPU) rounded to float32: equal to float32 rounding.
    np.testing.assert_allclose(vae.reconstruct(want["x"]), want["vae_recon"], rtol=1e-6, atol=0)
    assert set(vae.get_optimizer_state()) >= {"opt.step"}
    clf = xvae.load(FIXTURES / "v0-classifier.xvae")
    assert clf.spec == xvae.ClassifierSpec(input_dim=6, hidden=(3,), outputs=3)
    np.testing.assert_allclose(clf.predict(want["x"]), want["clf_pred"], rtol=1e-6, atol=0)
    # and the spec JSON it holds is what the shorthand still writes
    import json
    saved = json.loads((FIXTURES / "v0-vae.xvae" / "xvae.json").read_text())["spec"]
    assert vae.spec.to_dict() == saved


def test_cli_describe_prints_the_layer_table(tmp_path, capsys):
    from xvae.cli import main

    path = tmp_path / "spec.json"
    path.write_text(conv_vae().to_json())
    assert main(["describe", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == conv_vae().describe()
    xvae.VAE(conv_vae(), backend="numpy").save(tmp_path / "m.xvae")
    assert main(["describe", str(tmp_path / "m.xvae")]) == 0
    assert "decoder.layers.4" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "classifier", "input_shape": [4, 4, 1], "outputs": 2, '
                   '"layers": [{"type": "conv2d", "filters": 2, "kernel": 5, "padding": "valid"}]}')
    assert main(["describe", str(bad)]) == 2  # an xvae error: exit 2 (issue 15)
    assert "layers[0] (Conv2D)" in capsys.readouterr().err


def test_input_range_follows_the_likelihood():
    """Issue 16's range check, per likelihood: a Gaussian decoder takes any finite values,
    a continuous Bernoulli [0, 1] like the Bernoulli."""
    x = np.random.default_rng(0).normal(0, 3, (6, 8, 8, 1)).astype(np.float32)
    xvae.VAE(conv_vae("gaussian", sigma="learned"), backend="numpy").fit(x, epochs=1, batch_size=3, progress=False)
    for likelihood in ("continuous_bernoulli", "bernoulli"):
        with pytest.raises(xvae.DataError, match=r"\[0, 1\]"):
            xvae.VAE(conv_vae(likelihood), backend="numpy").fit(x, epochs=1, batch_size=3, progress=False)


def test_numpy_numbers_in_layer_specs_are_plain_numbers():
    spec = xvae.DecoderSpec(np.int64(2), output_shape=(np.int64(4),), likelihood="gaussian", sigma=np.float32(0.5))
    assert spec.sigma == 0.5 and type(spec.sigma) is float and type(spec.output_shape[0]) is int
    assert type(L.Conv2D(np.int32(3), np.int64(3)).filters) is int

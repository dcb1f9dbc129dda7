"""The float64 layer references: hand-written backward == finite differences, shape rules,
padding geometry, and JSON round trips of every layer spec."""

from __future__ import annotations

import numpy as np
import pytest

import xvae
from xvae import layers as L
from xvae.layers.conv import conv_padding

CASES = {
    "dense": (L.Dense(3, "tanh"), (5,)),
    "conv-same-odd": (L.Conv2D(3, 3, activation="tanh"), (5, 5, 2)),
    "conv-same-even-s2": (L.Conv2D(2, (2, 3), stride=2, activation="elu"), (6, 7, 2)),
    "conv-valid": (L.Conv2D(2, 3, padding="valid"), (5, 6, 1)),
    "conv-int-pad": (L.Conv2D(2, 2, stride=(1, 2), padding=1), (4, 5, 2)),
    "convT-same-s2": (L.Conv2DTranspose(2, 3, stride=2, activation="tanh"), (3, 3, 2)),
    "convT-same-k<s": (L.Conv2DTranspose(2, 2, stride=3), (2, 3, 1)),
    "convT-valid-op": (L.Conv2DTranspose(2, (2, 3), stride=2, padding="valid", output_padding=1), (3, 2, 2)),
    "convT-int-pad": (L.Conv2DTranspose(3, 4, stride=2, padding=1), (3, 3, 2)),
    "maxpool": (L.MaxPool2D(2), (4, 5, 2)),
    "maxpool-overlap": (L.MaxPool2D(3, stride=1), (4, 4, 2)),
    "avgpool": (L.AvgPool2D((2, 3), stride=(1, 2)), (4, 5, 2)),
    "flatten": (L.Flatten(), (2, 3, 2)),
    "reshape": (L.Reshape((3, 2, 2)), (12,)),
    "layernorm": (L.LayerNorm(), (3, 2, 4)),
    "dropout": (L.Dropout(0.5), (6,)),
}


def _params(layer, shape, rng):
    return {k: rng.standard_normal(s) for k, s in layer.param_shapes(shape).items()}


@pytest.mark.parametrize("case", list(CASES))
def test_backward_matches_finite_differences(case):
    layer, shape = CASES[case]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, *shape))
    params = _params(layer, shape, rng)
    mask = (rng.random(x.shape) > 0.5) * 2.0 if isinstance(layer, L.Dropout) else None
    y, cache = layer.forward(params, x, mask)
    assert y.shape == (2, *layer.output_shape(shape))
    dy = rng.standard_normal(y.shape)
    dx, grads = layer.backward(params, cache, dy)

    def loss(x_, p_):
        return float(np.sum(layer.forward(p_, x_, mask)[0] * dy))

    h = 1e-6
    for target, analytic in [("x", dx), *grads.items()]:
        base = x if target == "x" else params[target]
        numeric = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            old = base[idx]
            base[idx] = old + h
            up = loss(x, params)
            base[idx] = old - h
            down = loss(x, params)
            base[idx] = old
            numeric[idx] = (up - down) / (2 * h)
        # central differences in float64: error ~h^2 * f''' + 1e-16/h ~ 1e-9 (kinks of relu/max aside)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6, err_msg=f"{case}: d/d{target}")


def test_conv_transpose_is_the_adjoint_of_conv():
    """<conv(x), g> == <x, convT(g)> with one kernel (ConvT reads it as (kh, kw, out, in)),
    for x of the ConvT's output size, which the Conv maps back to g's size."""
    rng = np.random.default_rng(1)
    for k, s, pad in [(3, 2, "same"), (2, 2, "same"), (2, 3, "same"), (4, 3, "valid"), (3, 1, 1),
                      ((2, 3), (2, 1), "same"), (4, 2, 1)]:
        conv, convt = L.Conv2D(3, k, stride=s, padding=pad), L.Conv2DTranspose(2, k, stride=s, padding=pad)
        g_shape = (3, 4, 3)
        x_shape = convt.output_shape(g_shape)[:2] + (2,)
        assert conv.output_shape(x_shape) == g_shape, (k, s, pad)
        x, g = rng.standard_normal((1, *x_shape)), rng.standard_normal((1, *g_shape))
        kernel = rng.standard_normal(conv.param_shapes(x_shape)["kernel"])
        y, _ = conv.forward({"kernel": kernel, "bias": np.zeros(3)}, x)
        back, _ = convt.forward({"kernel": kernel, "bias": np.zeros(2)}, g)
        assert float(np.sum(y * g)) == pytest.approx(float(np.sum(x * back)), rel=1e-9), (k, s, pad)


@pytest.mark.parametrize(("n", "k", "s", "want"), [
    (28, 3, 2, (0, 1)),  # odd total after stride: the larger half after (TF/Flax)
    (8, 4, 1, (1, 2)),   # even kernel: total 3, the extra zero after
    (8, 3, 1, (1, 1)),
    (7, 1, 2, (0, 0)),
])
def test_same_padding_rule(n, k, s, want):
    assert conv_padding(n, k, s, "same") == want


@pytest.mark.parametrize("case", list(CASES))
def test_layer_json_round_trip(case):
    layer = CASES[case][0]
    assert L.layer_from_dict(layer.to_dict()) == layer


@pytest.mark.parametrize(("make", "match"), [
    (lambda: L.Conv2D(4, 3, stride=0), "stride"),
    (lambda: L.Conv2D(0, 3), "filters"),
    (lambda: L.Conv2D(4, 3, padding="full"), "padding"),
    (lambda: L.Conv2DTranspose(4, 3, stride=2, output_padding=2), "output_padding"),
    (lambda: L.Dropout(1.0), "rate"),
    (lambda: L.Dense(3, activation="swish"), "activation"),
    (lambda: L.Reshape(()), "shape"),
    (lambda: L.LayerNorm(epsilon=0), "epsilon"),
    (lambda: L.layer_from_dict({"type": "conv3d"}), "type"),
    (lambda: L.layer_from_dict({"type": "dense", "units": 3, "width": 2}), "width"),
])
def test_bad_layer_arguments_raise_spec_error(make, match):
    with pytest.raises(xvae.SpecError, match=match):
        make()


def test_public_forward_and_backward_check_their_arguments():
    """One check in the Layer base: params, x, dy, the cache and the memory, each named."""
    conv = L.Conv2D(4, 3)
    params = {"kernel": np.zeros((3, 3, 1, 4)), "bias": np.zeros(4)}
    y, cache = conv.forward(params, np.zeros((2, 6, 6, 1)))
    with pytest.raises(xvae.DataError, match=r"backward\(cache\)"):
        conv.backward(params, ("xp", (2, 6, 6, 1)), np.ones(y.shape))
    with pytest.raises(xvae.DataError, match=r"backward\(cache\)"):  # another layer's cache
        L.Conv2D(5, 3).backward(params, cache, np.ones(y.shape))
    with pytest.raises(xvae.DataError, match=r"backward\(dy\).*\(2, 6, 6, 4\)"):
        conv.backward(params, cache, np.ones((2, 6, 6, 3)))
    with pytest.raises(xvae.DataError, match=r"forward\(params\['kernel'\]\).*\(3, 3, 1, 4\)"):
        conv.forward({"kernel": np.zeros((3, 3, 2, 4)), "bias": np.zeros(4)}, np.zeros((2, 6, 6, 1)))
    with pytest.raises(xvae.DataError, match=r"forward\(x\)"):
        conv.forward(params, np.full((2, 6, 6, 1), "a"))
    with pytest.raises(xvae.SpecError, match="takes images"):
        conv.forward(params, np.zeros((2, 36)))
    huge = np.broadcast_to(np.zeros((1, 1, 1, 1)), (10**5, 1000, 1000, 1))  # no memory behind it
    with pytest.raises(xvae.ConfigError, match="needs about"):
        conv.forward(params, huge)


def test_the_checked_path_gives_the_unchecked_numbers():
    dense = L.Dense(3, "tanh")
    rng = np.random.default_rng(0)
    params = {"kernel": rng.standard_normal((4, 3)), "bias": rng.standard_normal(3)}
    x, dy = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    y, cache = dense.forward(params, x)
    y_raw, cache_raw = dense._forward(params, x, None)
    dx, grads = dense.backward(params, cache, dy)
    dx_raw, grads_raw = dense._backward(params, cache_raw, dy)
    assert np.array_equal(y, y_raw) and np.array_equal(dx, dx_raw)  # the same operations on the same arrays
    assert all(np.array_equal(grads[k], grads_raw[k]) for k in grads_raw)

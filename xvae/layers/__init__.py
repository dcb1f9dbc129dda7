"""Layer specs: the building blocks of `EncoderSpec(layers=...)`, `DecoderSpec(layers=...)`
and `ClassifierSpec(layers=...)`.

Each layer's spec, shape rule and float64 reference (forward and hand-written backward)
live together in its module; backends map each layer type to a framework layer in one
table (`LAYERS` in their `_layers.py`). Layouts: images NHWC, conv kernels HWIO,
Conv2DTranspose kernels (kh, kw, out, in) as TensorFlow stores them.

Examples:
    >>> from xvae.layers import Conv2D, Flatten, MaxPool2D
    >>> Conv2D(32, 3, padding="valid", activation="relu").output_shape((28, 28, 1))
    (26, 26, 32)
"""

from xvae.layers._base import LAYER_TYPES, Layer, layer_from_dict
from xvae.layers.conv import Conv2D, Conv2DTranspose
from xvae.layers.dense import Dense
from xvae.layers.dropout import Dropout
from xvae.layers.normalization import LayerNorm
from xvae.layers.pooling import AvgPool2D, MaxPool2D
from xvae.layers.reshaping import Flatten, Reshape
from xvae.layers.towers import Placed, place

__all__ = [
    "Layer",
    "Dense",
    "Conv2D",
    "Conv2DTranspose",
    "MaxPool2D",
    "AvgPool2D",
    "Flatten",
    "Reshape",
    "LayerNorm",
    "Dropout",
    "LAYER_TYPES",
    "layer_from_dict",
    "Placed",
    "place",
]

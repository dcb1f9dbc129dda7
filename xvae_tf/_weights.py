"""The only place canonical names and arrays meet TensorFlow tensors.

TensorFlow's layouts are already the canonical ones (Dense (in, out), x @ W; conv HWIO;
conv2d_transpose (kh, kw, out, in)), so the translation is a name lookup plus an exact
float32 copy: tensors made from NumPy arrays on the way in (`tf.Variable.assign` takes
them), `Tensor.numpy()` copies on the way out, both bit-exact.

Every backend's `_weights.py` has these names and signatures (tests/unit/test_backend_vocabulary.py);
here the framework's form of the weights is a list of tensors in `naming.weight_shapes`
order and of the optimizer state a dict of tensors by canonical name (`opt.step` int64).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before tensorflow is imported

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from numpy.typing import NDArray

from xvae._canonical import check_names
from xvae._specs import ModelSpec
from xvae.naming import STEP, optimizer_slots, weight_shapes
from xvae.optim import STEP_DTYPE, step_count

__all__ = ["check_names", "from_canonical", "opt_state_from_canonical", "opt_state_to_canonical",
           "to_canonical", "to_numpy", "to_tensor"]


def to_tensor(name: str, array: Any, device: str | None) -> tf.Tensor:
    """One canonical array as a float32 tensor (`opt.step` as int64) on `device` if given."""
    value = (np.asarray(step_count(array), np.int64) if name == STEP
             else np.array(array, dtype=np.float32, copy=True))
    if device is None:
        return tf.convert_to_tensor(value)
    with tf.device(device):
        return tf.convert_to_tensor(value)


def to_numpy(name: str, tensor: tf.Tensor | tf.Variable) -> NDArray[Any]:
    """One tensor or variable as a canonical float32 C-contiguous host copy (`opt.step` int64)."""
    dtype = STEP_DTYPE if name == STEP else np.float32
    return np.array(tensor.numpy(), dtype=dtype, order="C", copy=True)


def from_canonical(spec: ModelSpec, arrays: Mapping[str, Any], device: str | None,
                   what: str = "weights") -> list[tf.Tensor]:
    """Canonical arrays (weights or gradients), checked -> tensors in `weight_shapes(spec)` order."""
    shapes = weight_shapes(spec)
    check_names(shapes, arrays, what)
    return [to_tensor(name, arrays[name], device) for name in shapes]


def to_canonical(spec: ModelSpec, values: Sequence[tf.Tensor | tf.Variable]) -> dict[str, NDArray[np.float32]]:
    """Tensors or variables in `weight_shapes(spec)` order (weights, gradients) -> canonical host copies."""
    return {name: to_numpy(name, t) for name, t in zip(weight_shapes(spec), values, strict=True)}


def opt_state_from_canonical(spec: ModelSpec, slots: tuple[str, ...], state: Mapping[str, Any],
                             device: str | None) -> dict[str, tf.Tensor]:
    """Canonical optimizer state, checked -> tensors by canonical name (what `Optimizer.state()`'s
    variables are assigned)."""
    shapes = optimizer_slots(spec, slots)
    check_names(shapes, state, "optimizer state")
    return {name: to_tensor(name, state[name], device) for name in shapes}


def opt_state_to_canonical(spec: ModelSpec, state: Mapping[str, tf.Tensor | tf.Variable]) -> dict[str, NDArray[Any]]:
    """The optimizer's state variables by canonical name -> canonical host copies (`opt.step` int64)."""
    del spec  # the names are the state's own
    return {name: to_numpy(name, t) for name, t in state.items()}

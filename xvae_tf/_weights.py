"""The only place canonical names and arrays meet TensorFlow variables.

TensorFlow's Dense convention is already the canonical one (kernel (in, out), x @ W), so the
translation is a name lookup plus an exact float32 copy: `tf.Variable.assign(ndarray)` on
the way in and `Variable.numpy()` on the way out, both bit-exact.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before tensorflow is imported

from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf
from numpy.typing import NDArray

from xvae._errors import ConfigError
from xvae.naming import weight_shapes
from xvae.optim import STEP_DTYPE, step_count

__all__ = ["assign", "from_canonical", "model_variables", "read", "to_canonical"]


def model_variables(model: Any) -> dict[str, tf.Variable]:
    """Canonical weight name -> variable, in `naming.weight_shapes(spec)` order.

    The names come from the model's placed layers (`naming.towers`), checked against
    `naming.weight_shapes`; TensorFlow's layouts are the canonical ones (Dense (in, out),
    conv HWIO, conv2d_transpose (kh, kw, out, in)), so nothing is transposed.
    """
    shapes = weight_shapes(model.spec)
    out = model.variables_by_name()
    assert list(out) == list(shapes), (list(out), list(shapes))  # a bug here, not a user error
    for name, var in out.items():
        assert tuple(var.shape) == shapes[name], (name, var.shape, shapes[name])
    return out


def assign(variables: Mapping[str, tf.Variable], arrays: Mapping[str, Any], what: str) -> None:
    """Copy canonical arrays into the variables of the same names (exactly; float32).

    Raises:
        ConfigError: a name is missing or unexpected, or a shape differs.
    """
    missing = [k for k in variables if k not in arrays]
    unexpected = [k for k in arrays if k not in variables]
    if missing or unexpected:
        raise ConfigError(
            f"The {what} do not match the model: {len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}). Pass the canonical names of "
            "xvae.naming.weight_shapes(spec) (optimizer state: optimizer.init_state(weights))."
        )
    checked = {}
    for name, var in variables.items():
        if var.dtype == tf.int64:  # the step counter: a whole number (legacy float32 too)
            checked[name] = np.asarray(step_count(arrays[name]), np.int64)
            continue
        value = np.asarray(arrays[name], dtype=np.float32)
        if value.shape != tuple(var.shape):
            raise ConfigError(
                f"{what} {name!r} must have shape {tuple(var.shape)}. Received: {value.shape}"
            )
        checked[name] = value
    for name, var in variables.items():  # only after every check passed: no half-set state
        var.assign(checked[name])


def read(variables: Mapping[str, tf.Variable]) -> dict[str, NDArray[np.float32]]:
    """Host float32 C-contiguous copies of the variables (the step counter: int64), by canonical name."""
    return {name: np.array(var.numpy(), dtype=STEP_DTYPE if var.dtype == tf.int64 else np.float32,
                           order="C", copy=True)
            for name, var in variables.items()}


def to_canonical(names: list[str], tensors: list[tf.Tensor]) -> dict[str, NDArray[np.float32]]:
    """Tensors listed in `names` order (e.g. gradients) -> canonical host arrays."""
    return {name: np.array(t.numpy(), dtype=np.float32, order="C", copy=True)
            for name, t in zip(names, tensors)}


def from_canonical(names: list[str], arrays: Mapping[str, Any], what: str) -> list[tf.Tensor]:
    """Canonical arrays (e.g. given gradients) -> float32 tensors in `names` order."""
    missing = [k for k in names if k not in arrays]
    if missing:
        raise ConfigError(f"The {what} lack {missing[:5]}. Expected names: {names[:5]}...")
    return [tf.convert_to_tensor(np.asarray(arrays[k], np.float32)) for k in names]

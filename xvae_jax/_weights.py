"""Canonical weights <-> the flax params tree: the JAX backend's only translation point.

flax's Dense kernel is (in, out), like canonical kernels, so nothing is transposed; only the
nesting differs. Layers are named by their canonical layer name (`xvae_jax._layers`), so
canonical ``encoder.layers.0.kernel`` is ``params["encoder.layers.0"]["kernel"]``. Optimizer
slots are params-shaped trees and map the same way, under ``opt.<slot>.`` names.

Both directions copy: NumPy arrays handed in are never aliased by device buffers (which
the donating train step overwrites), and arrays handed out are C-contiguous float32 copies,
never views of device memory. float32 in, float32 out: round trips are bit-exact.

Every backend's `_weights.py` has these names and signatures (tests/unit/test_backend_vocabulary.py);
here the framework's form of the weights is a params tree and of the optimizer state an
(int32 step, {slot: params tree}) pair.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import numpy as np
from numpy.typing import NDArray

from xvae._canonical import check_names
from xvae._errors import ConfigError
from xvae._specs import ModelSpec
from xvae.naming import STEP, optimizer_slots, slot_name, weight_shapes
from xvae.optim import STEP_DTYPE, step_count

__all__ = ["check_names", "from_canonical", "opt_state_from_canonical", "opt_state_to_canonical",
           "to_canonical", "to_numpy", "to_tensor"]

Params = dict[str, dict[str, Any]]
#: (int32 step counter, {slot: params-shaped tree}): what `Optimizer.restore` takes and `export` gives.
OptState = tuple[Any, dict[str, Params]]


def _path(name: str) -> tuple[str, str]:
    """Canonical weight name -> (flax module name, leaf): 'decoder.output.bias' -> ('decoder.output', 'bias')."""
    layer, leaf = name.rsplit(".", 1)
    return layer, leaf


def _step(value: Any) -> np.int32:
    step = step_count(value)
    if step >= 2**31:  # optax counts in int32 (JAX has no int64 without x64)
        raise ConfigError(f"optimizer state {STEP!r} must be below 2**31 for the jax backend. Received {step}.")
    return np.int32(step)


def to_tensor(name: str, array: Any, device: jax.Device) -> jax.Array:
    """One canonical array as a JAX array on `device` (a fresh copy; `opt.step` as int32)."""
    if name == STEP:
        return jax.device_put(_step(array), device)
    return jax.device_put(np.array(array, dtype=np.float32, copy=True), device)


def to_numpy(name: str, tensor: Any) -> NDArray[Any]:
    """One JAX array as a canonical float32 C-contiguous host copy (`opt.step` as int64)."""
    dtype = STEP_DTYPE if name == STEP else np.float32
    return np.array(jax.device_get(tensor), dtype=dtype, order="C", copy=True)


def _tree(spec: ModelSpec, arrays: Mapping[str, Any], prefix: str | None = None) -> Params:
    tree: Params = {}
    for name in weight_shapes(spec):
        layer, leaf = _path(name)
        key = name if prefix is None else slot_name(prefix, name)
        tree.setdefault(layer, {})[leaf] = np.array(arrays[key], dtype=np.float32, copy=True)
    return tree


def _from_tree(spec: ModelSpec, tree: Params, prefix: str | None = None) -> dict[str, NDArray[np.float32]]:
    host = jax.device_get(tree)
    out = {}
    for name in weight_shapes(spec):
        layer, leaf = _path(name)
        key = name if prefix is None else slot_name(prefix, name)
        out[key] = np.array(host[layer][leaf], dtype=np.float32, order="C", copy=True)
    return out


def from_canonical(spec: ModelSpec, arrays: Mapping[str, Any], device: jax.Device,
                   what: str = "weights") -> Params:
    """Canonical float32 arrays (weights or gradients), checked -> a flax params tree on `device`."""
    check_names(weight_shapes(spec), arrays, what)
    return jax.device_put(_tree(spec, arrays), device)


def to_canonical(spec: ModelSpec, values: Params) -> dict[str, NDArray[np.float32]]:
    """A flax params-shaped tree (weights or gradients) -> canonical host copies."""
    return _from_tree(spec, values)


def opt_state_from_canonical(spec: ModelSpec, slots: tuple[str, ...], state: Mapping[str, Any],
                             device: jax.Device) -> OptState:
    """Canonical optimizer state, checked -> (int32 step, {slot: params tree on `device`})."""
    check_names(optimizer_slots(spec, slots), state, "optimizer state")
    step = _step(state[STEP])
    return step, {slot: jax.device_put(_tree(spec, state, prefix=slot), device) for slot in slots}


def opt_state_to_canonical(spec: ModelSpec, state: OptState) -> dict[str, NDArray[Any]]:
    """(step counter, {slot: tree}) -> {"opt.step": int64 0-d, "opt.<slot>.<weight>": ...}."""
    step, slots = state
    out = {STEP: to_numpy(STEP, step)}
    for slot, tree in slots.items():
        out.update(_from_tree(spec, tree, prefix=slot))
    return out

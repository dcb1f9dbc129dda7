"""Canonical weights <-> the flax params tree: the JAX backend's only translation point.

flax's Dense kernel is (in, out), like canonical kernels, so nothing is transposed; only the
nesting differs. Layers are named by their canonical layer name (`xvae_jax._layers`), so
canonical ``encoder.layers.0.kernel`` is ``params["encoder.layers.0"]["kernel"]``. Optimizer
slots are params-shaped trees and map the same way, under ``opt.<slot>.`` names.

Both directions copy: NumPy arrays handed in are never aliased by device buffers (which
the donating train step overwrites), and arrays handed out are C-contiguous float32 copies,
never views of device memory. float32 in, float32 out: round trips are bit-exact.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import numpy as np
from numpy.typing import NDArray

from xvae._errors import ConfigError
from xvae._specs import ModelSpec
from xvae.naming import STEP, optimizer_slots, slot_name, weight_shapes
from xvae.optim import STEP_DTYPE, step_count

__all__ = ["path", "to_params", "from_params", "opt_state_from_canonical", "opt_state_to_canonical"]

Params = dict[str, dict[str, Any]]


def path(name: str) -> tuple[str, str]:
    """Canonical weight name -> (flax module name, leaf): 'decoder.output.bias' -> ('decoder.output', 'bias')."""
    layer, leaf = name.rsplit(".", 1)
    return layer, leaf


def _check(spec: ModelSpec, arrays: Mapping[str, Any], what: str,
           shapes: Mapping[str, tuple[int, ...]]) -> None:
    missing, extra = sorted(set(shapes) - set(arrays)), sorted(set(arrays) - set(shapes))
    if missing or extra:
        raise ConfigError(f"{what} do not match the {spec.kind} spec: missing {missing or 'none'}, "
                          f"unexpected {extra or 'none'}.")
    for name, shape in shapes.items():
        if np.shape(arrays[name]) != shape:
            raise ConfigError(f"{what}[{name!r}] must have shape {shape}. Received {np.shape(arrays[name])}.")


def to_params(spec: ModelSpec, arrays: Mapping[str, Any], device: jax.Device,
              what: str = "weights") -> Params:
    """Canonical float32 arrays (weights or gradients) -> a flax params tree on `device`."""
    shapes = weight_shapes(spec)
    _check(spec, arrays, what, shapes)
    tree: Params = {}
    for name in shapes:
        layer, leaf = path(name)
        tree.setdefault(layer, {})[leaf] = np.array(arrays[name], dtype=np.float32, copy=True)
    return jax.device_put(tree, device)


def from_params(spec: ModelSpec, tree: Params, prefix: str | None = None) -> dict[str, NDArray[np.float32]]:
    """A flax params-shaped tree -> canonical host copies (names under `opt.<prefix>.` if given)."""
    host = jax.device_get(tree)
    out = {}
    for name in weight_shapes(spec):
        layer, leaf = path(name)
        key = name if prefix is None else slot_name(prefix, name)
        out[key] = np.array(host[layer][leaf], dtype=np.float32, order="C", copy=True)
    return out


def opt_state_to_canonical(spec: ModelSpec, step: Any, slots: Mapping[str, Params]
                           ) -> dict[str, NDArray[Any]]:
    """(step counter, {slot: tree}) -> {"opt.step": int64 0-d, "opt.<slot>.<weight>": ...}."""
    state = {STEP: np.array(jax.device_get(step), dtype=STEP_DTYPE)}
    for slot, tree in slots.items():
        state.update(from_params(spec, tree, prefix=slot))
    return state


def opt_state_from_canonical(spec: ModelSpec, slots: tuple[str, ...], state: Mapping[str, Any],
                             device: jax.Device) -> tuple[np.int32, dict[str, Params]]:
    """The inverse: canonical optimizer state -> (int32 step, {slot: params tree on `device`})."""
    _check(spec, state, "optimizer state", optimizer_slots(spec, slots))
    step = step_count(state[STEP])
    if step >= 2**31:  # optax counts in int32 (JAX has no int64 without x64)
        raise ConfigError(f"optimizer state {STEP!r} must be below 2**31 for the jax backend. Received {step}.")
    trees = {}
    for slot in slots:
        arrays = {name: state[slot_name(slot, name)] for name in weight_shapes(spec)}
        trees[slot] = to_params(spec, arrays, device, what=f"optimizer slot {slot!r}")
    return np.int32(step), trees

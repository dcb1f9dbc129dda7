"""The only place canonical names and arrays meet torch tensors, and the only transposes.

Canonical kernels are (in, out) for Dense, HWIO for Conv2D and (kh, kw, out, in) for
Conv2DTranspose (DESIGN §4, §8); torch stores (out, in), OIHW and (in, out, kh, kw).
Every array whose canonical name ends in ".kernel" (weights, gradients and optimizer slots
alike, e.g. `opt.m.decoder.output.kernel`) is transposed here and nowhere else (the last
two axes, reversed, go first), as a contiguous copy both ways. Both are exact float32 copies, so round trips are bit-exact
(transformers' ``weight`` -> ``kernel`` ``.T`` rule).

Every backend's `_weights.py` has these names and signatures (tests/unit/test_backend_vocabulary.py);
here the framework's form of the weights is a list of tensors (torch layout) in
`naming.weight_shapes` order and of the optimizer state a dict of tensors by canonical
name (`opt.step` int64), what `Optimizer.load` takes and `Optimizer.state` gives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from xvae._canonical import check_names
from xvae._specs import ModelSpec
from xvae.naming import STEP, optimizer_slots, weight_shapes
from xvae.optim import STEP_DTYPE, step_count

__all__ = ["check_names", "from_canonical", "opt_state_from_canonical", "opt_state_to_canonical",
           "to_canonical", "to_numpy", "to_tensor"]


def _is_kernel(name: str) -> bool:
    return name.endswith(".kernel")


def _to_torch_axes(ndim: int) -> tuple[int, ...]:
    """Canonical kernel -> torch: Dense (in, out) -> (out, in); Conv2D HWIO -> OIHW;
    Conv2DTranspose (kh, kw, out, in) -> (in, out, kh, kw). All one rule: the last two
    axes, reversed, go first."""
    return (ndim - 1, ndim - 2, *range(ndim - 2))


def to_tensor(name: str, array: Any, device: torch.device) -> torch.Tensor:
    """One canonical array as a tensor in torch's layout on `device` (a fresh copy;
    `opt.step` as an int64 0-d tensor)."""
    if name == STEP:
        return torch.tensor(step_count(array), dtype=torch.int64, device=device)
    value = np.asarray(array, dtype=np.float32)
    if _is_kernel(name):  # transposed here only
        value = np.ascontiguousarray(value.transpose(_to_torch_axes(value.ndim)))
    else:
        value = np.array(value, order="C", copy=True)
    return torch.from_numpy(value).to(device)


def to_numpy(name: str, tensor: torch.Tensor) -> NDArray[Any]:
    """A tensor in torch's layout as a canonical float32 C-contiguous NumPy copy (an integer
    tensor, the step counter, as int64)."""
    value = tensor.detach().cpu().numpy()
    if not tensor.is_floating_point():
        return np.array(value, dtype=STEP_DTYPE, order="C", copy=True)
    if _is_kernel(name):
        return np.ascontiguousarray(value.transpose(np.argsort(_to_torch_axes(value.ndim))))
    return np.array(value, dtype=np.float32, order="C", copy=True)


def from_canonical(spec: ModelSpec, arrays: Mapping[str, Any], device: torch.device,
                   what: str = "weights") -> list[torch.Tensor]:
    """Canonical arrays (weights or gradients), checked -> tensors (torch layout) in
    `weight_shapes(spec)` order."""
    shapes = weight_shapes(spec)
    check_names(shapes, arrays, what)
    return [to_tensor(name, arrays[name], device) for name in shapes]


def to_canonical(spec: ModelSpec, values: Sequence[torch.Tensor]) -> dict[str, NDArray[np.float32]]:
    """Tensors (torch layout) in `weight_shapes(spec)` order (weights, gradients) -> canonical host copies."""
    return {name: to_numpy(name, t) for name, t in zip(weight_shapes(spec), values, strict=True)}


def opt_state_from_canonical(spec: ModelSpec, slots: tuple[str, ...], state: Mapping[str, Any],
                             device: torch.device) -> dict[str, torch.Tensor]:
    """Canonical optimizer state, checked -> tensors (torch layout) by canonical name."""
    shapes = optimizer_slots(spec, slots)
    check_names(shapes, state, "optimizer state")
    return {name: to_tensor(name, state[name], device) for name in shapes}


def opt_state_to_canonical(spec: ModelSpec, state: Mapping[str, torch.Tensor]) -> dict[str, NDArray[Any]]:
    """The optimizer's state tensors (torch layout) by canonical name -> canonical host copies."""
    del spec  # the names are the state's own
    return {name: to_numpy(name, t) for name, t in state.items()}

"""The only place canonical names and arrays meet torch tensors, and the only transposes.

Canonical kernels are (in, out) for Dense, HWIO for Conv2D and (kh, kw, out, in) for
Conv2DTranspose (DESIGN §4, §8); torch stores (out, in), OIHW and (in, out, kh, kw).
Every array whose canonical name ends in ".kernel" (weights, gradients and optimizer slots
alike, e.g. `opt.m.decoder.output.kernel`) is transposed here and nowhere else (the last
two axes, reversed, go first), as a contiguous copy both ways. Both are exact float32 copies, so round trips are bit-exact
(transformers' ``weight`` -> ``kernel`` ``.T`` rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from xvae._errors import ConfigError
from xvae.naming import LOG_SIGMA

__all__ = ["check_names", "copy_in", "model_parameters", "read", "to_numpy", "to_torch"]


def model_parameters(model: Any) -> dict[str, torch.nn.Parameter]:
    """Canonical weight name -> parameter (torch layout), in `naming.weight_shapes` order."""
    out: dict[str, torch.nn.Parameter] = {}
    for name, layer in model.by_name.items():
        for param in layer.placed.param_shapes():
            attr = "weight" if param in ("kernel", "scale") else param
            out[f"{name}.{param}"] = getattr(layer, attr)
    if getattr(model, "log_sigma", None) is not None:
        out[LOG_SIGMA] = model.log_sigma
    return out


def _is_kernel(name: str) -> bool:
    return name.endswith(".kernel")


def _to_torch_axes(ndim: int) -> tuple[int, ...]:
    """Canonical kernel -> torch: Dense (in, out) -> (out, in); Conv2D HWIO -> OIHW;
    Conv2DTranspose (kh, kw, out, in) -> (in, out, kh, kw). All one rule: the last two
    axes, reversed, go first."""
    return (ndim - 1, ndim - 2, *range(ndim - 2))


def to_torch(name: str, array: Any, device: torch.device) -> torch.Tensor:
    """A canonical float32 array as a tensor in torch's layout, on `device` (a fresh copy)."""
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
        return np.array(value, dtype=np.int64, order="C", copy=True)
    if _is_kernel(name):
        return np.ascontiguousarray(value.transpose(np.argsort(_to_torch_axes(value.ndim))))
    return np.array(value, dtype=np.float32, order="C", copy=True)


def check_names(expected: Mapping[str, tuple[int, ...]], arrays: Mapping[str, Any], what: str) -> None:
    """Raise ConfigError unless `arrays` has exactly the expected canonical names and shapes."""
    missing = [k for k in expected if k not in arrays]
    unexpected = [k for k in arrays if k not in expected]
    if missing or unexpected:
        raise ConfigError(
            f"The {what} do not match the model: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}. Expected names: {list(expected)[:5]}..."
        )
    for name, shape in expected.items():
        got = np.shape(arrays[name])
        if tuple(got) != tuple(shape):
            raise ConfigError(f"{what} {name!r} must have shape {tuple(shape)}. Received: {tuple(got)}")


def copy_in(targets: Mapping[str, torch.Tensor], arrays: Mapping[str, Any]) -> None:
    """Copy canonical arrays into existing tensors of the same names (exact; in place).

    In-place copies keep the tensors' identity, so an optimizer holding the parameters
    keeps working. Names and shapes must have been checked with `check_names`.
    """
    with torch.no_grad():
        for name, target in targets.items():
            target.copy_(to_torch(name, arrays[name], target.device))


def read(tensors: Mapping[str, torch.Tensor]) -> dict[str, NDArray[np.float32]]:
    """Canonical host copies of tensors in torch's layout, by canonical name."""
    return {name: to_numpy(name, t) for name, t in tensors.items()}

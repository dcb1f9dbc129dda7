"""DESIGN §5 optimizers on torch.optim, with canonical state names.

`torch.optim.Adam` and `torch.optim.SGD` implement DESIGN §5's equations (verified in
tests/conformance/test_torch_specific.py against the float64 reference, run in float64):

- Adam: ``m = b1 m + (1-b1) g`` (as ``m.lerp_(g, 1-b1)``), ``v = b2 v + (1-b2) g^2``,
  ``w -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)``: eps added *after* the bias
  correction, the optax/PyTorch form (Keras differs). State ``exp_avg``/``exp_avg_sq``/
  ``step`` -> ``opt.m.*``/``opt.v.*``/``opt.step``.
- SGD (dampening 0): ``u = momentum*u + g``; ``w -= lr*u``, or with nesterov
  ``w -= lr*(g + momentum*u)``. ``momentum_buffer`` -> ``opt.u.*``. torch creates the
  buffer lazily as ``u = g`` at the first step; that equals ``momentum*0 + g``, so this
  module always creates it (zeros on a fresh state, any value from `load`) and torch never
  takes its lazy path. torch's SGD keeps no step counter: `opt.step` is kept here.

The fused single-kernel implementations are used where the device has them (CPU, CUDA, MPS
in torch >= 2.4), foreach otherwise; both give the same equations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.optim.optimizer import Optimizer

from xvae.naming import STEP, slot_name
from xvae.optim import SGD, Adam, OptimizerSpec

__all__ = ["OPTIMIZERS", "SLOTS", "TorchOptimizer"]

#: canonical slot -> key in torch's per-parameter state
SLOTS = {"m": "exp_avg", "v": "exp_avg_sq", "u": "momentum_buffer"}


def _fused_ok(device: torch.device) -> bool:
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    return device.type in _get_fused_kernels_supported_devices()


def _adam(spec: Adam, params: list[torch.nn.Parameter], fused: bool) -> Optimizer:
    return torch.optim.Adam(params, lr=spec.lr, betas=(spec.b1, spec.b2), eps=spec.eps,
                            weight_decay=0.0, amsgrad=False, maximize=False,
                            foreach=None if fused else True, fused=fused or None)


def _sgd(spec: SGD, params: list[torch.nn.Parameter], fused: bool) -> Optimizer:
    return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, dampening=0.0,
                           nesterov=spec.nesterov, weight_decay=0.0, maximize=False,
                           foreach=None if fused else True, fused=fused or None)


#: Optimizer spec type -> builder of its torch.optim optimizer.
OPTIMIZERS: dict[type[OptimizerSpec], Callable[[Any, list[torch.nn.Parameter], bool], Optimizer]] = {
    Adam: _adam,
    SGD: _sgd,
}


class TorchOptimizer:
    """A torch.optim optimizer over named parameters, with DESIGN §4's state names.

    `state()` and `load()` speak canonical names with tensors in torch's layout (kernels
    (out, in), like the parameters); `_weights` does the layout translation.
    """

    def __init__(self, spec: OptimizerSpec, params: Mapping[str, torch.nn.Parameter],
                 device: torch.device, fused: bool | None = None) -> None:
        if type(spec) not in OPTIMIZERS:
            raise NotImplementedError(f"{type(spec).__name__} is not implemented by the torch backend")
        self.spec = spec
        self.params = dict(params)
        self.device = device
        self.fused = _fused_ok(device) if fused is None else fused
        self.torch = OPTIMIZERS[type(spec)](spec, list(self.params.values()), self.fused)
        self.count = torch.zeros((), dtype=torch.float32, device=device)  # opt.step
        self.reset()

    # torch keeps Adam's `step` on the parameters' device for fused/capturable, else on the CPU.
    def _step_device(self) -> torch.device:
        return self.device if self.fused else torch.device("cpu")

    def reset(self) -> None:
        """Fresh state: step 0 and zero slots."""
        self.load({name: torch.zeros(shape, dtype=torch.float32, device=self.device)
                   for name, shape in self.shapes().items()})

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Canonical state names with their shapes in torch's layout."""
        shapes: dict[str, tuple[int, ...]] = {STEP: ()}
        for slot in self.spec.slots:
            for name, p in self.params.items():
                shapes[slot_name(slot, name)] = tuple(p.shape)
        return shapes

    def load(self, state: Mapping[str, torch.Tensor]) -> None:
        """Install canonical state (tensors on this device, torch layout); takes ownership."""
        step = state[STEP].to(torch.float32).reshape(())
        with torch.no_grad():
            self.count.copy_(step)
        self.torch.state.clear()
        for name, p in self.params.items():
            entry: dict[str, torch.Tensor] = {}
            for slot in self.spec.slots:
                entry[SLOTS[slot]] = state[slot_name(slot, name)].to(self.device, torch.float32)
            if isinstance(self.spec, Adam):
                entry["step"] = step.to(self._step_device(), copy=True)
            if entry:
                self.torch.state[p] = entry

    def state(self) -> dict[str, torch.Tensor]:
        """Canonical name -> tensor (torch layout); `opt.step` is a 0-d float32 tensor."""
        out: dict[str, torch.Tensor] = {STEP: self.count}
        for slot in self.spec.slots:
            for name, p in self.params.items():
                out[slot_name(slot, name)] = self.torch.state[p][SLOTS[slot]]
        return out

    def step(self) -> None:
        """One update from the parameters' `.grad`; no host sync."""
        self.torch.step()
        self.count.add_(1.0)

    def zero_grad(self) -> None:
        self.torch.zero_grad(set_to_none=True)

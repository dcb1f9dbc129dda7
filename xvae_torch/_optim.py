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

- AdamW: `torch.optim.AdamW`: ``w *= 1 - lr*weight_decay``, then the Adam step above: the
  equation of `xvae.optim.AdamW` (``w -= lr (m̂/(sqrt(v̂)+eps) + wd w)``) with the decay
  applied first, as PyTorch orders it.
- SGD weight_decay: torch's ``g = g + weight_decay*w`` before momentum, as is.
- clip_norm: written here, not `torch.nn.utils.clip_grad_norm_`, which scales by
  ``c / (|g| + 1e-6)`` (1e-6 / |g| relative off the equation, far beyond DESIGN §6's 1e-6
  for small norms). ``|g|`` is the float32 global norm; each gradient becomes
  ``g / |g| * c`` unless ``|g| < c`` (optax.clip_by_global_norm's operations), on the device,
  with no host sync.

The learning rate is a step input: `step(lr)` sets each param group's ``lr`` to that
Python float before the update (what `torch.optim.lr_scheduler` does between steps), so a
schedule costs nothing and never rebuilds the optimizer or its state. The counter
``opt.step`` is an int64 tensor (float32 stops counting exactly at 2^24); torch's own Adam
``step`` (float32, as the fused kernel wants it) is derived from it on `load`.

The fused single-kernel implementations are used where the device has them (CPU, CUDA, MPS
in torch >= 2.4), foreach otherwise; both give the same equations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.optim.optimizer import Optimizer

from xvae.naming import STEP, slot_name
from xvae.optim import SGD, Adam, AdamW, OptimizerSpec

__all__ = ["OPTIMIZERS", "Optimizer", "build"]

#: canonical slot -> key in torch's per-parameter state
SLOTS = {"m": "exp_avg", "v": "exp_avg_sq", "u": "momentum_buffer"}


def _fused_ok(device: torch.device) -> bool:
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    return device.type in _get_fused_kernels_supported_devices()


# Every optimizer is built with lr=0.0: `Optimizer.step(lr)` sets the step's rate.
def _adam(spec: Adam, params: list[torch.nn.Parameter], fused: bool) -> Optimizer:
    return torch.optim.Adam(params, lr=0.0, betas=(spec.b1, spec.b2), eps=spec.eps,
                            weight_decay=0.0, amsgrad=False, maximize=False,
                            foreach=None if fused else True, fused=fused or None)


def _adamw(spec: AdamW, params: list[torch.nn.Parameter], fused: bool) -> Optimizer:
    return torch.optim.AdamW(params, lr=0.0, betas=(spec.b1, spec.b2), eps=spec.eps,
                             weight_decay=spec.weight_decay, amsgrad=False, maximize=False,
                             foreach=None if fused else True, fused=fused or None)


def _sgd(spec: SGD, params: list[torch.nn.Parameter], fused: bool) -> Optimizer:
    return torch.optim.SGD(params, lr=0.0, momentum=spec.momentum, dampening=0.0,
                           nesterov=spec.nesterov, weight_decay=spec.weight_decay, maximize=False,
                           foreach=None if fused else True, fused=fused or None)


#: Optimizer spec type -> builder of its torch.optim optimizer.
OPTIMIZERS: dict[type[OptimizerSpec], Callable[[Any, list[torch.nn.Parameter], bool], Optimizer]] = {
    Adam: _adam,
    AdamW: _adamw,
    SGD: _sgd,
}


def clip_by_global_norm_(grads: list[torch.Tensor], clip_norm: float) -> None:
    """In place: g / |g| * c unless |g| < c, |g| the float32 global norm; no host sync."""
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    clip = norm >= clip_norm
    one = torch.ones((), dtype=norm.dtype, device=norm.device)
    torch._foreach_div_(grads, torch.where(clip, norm, one))
    torch._foreach_mul_(grads, torch.where(clip, torch.full_like(norm, clip_norm), one))


class Optimizer:
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
        self.count = torch.zeros((), dtype=torch.int64, device=device)  # opt.step: an integer
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
        with torch.no_grad():
            self.count.copy_(state[STEP].reshape(()).to(torch.int64))
        step = self.count.to(torch.float32)  # torch's Adam keeps a float32 step
        self.torch.state.clear()
        for name, p in self.params.items():
            entry: dict[str, torch.Tensor] = {}
            for slot in self.spec.slots:
                entry[SLOTS[slot]] = state[slot_name(slot, name)].to(self.device, torch.float32)
            if isinstance(self.spec, Adam):  # AdamW too
                entry["step"] = step.to(self._step_device(), copy=True)
            if entry:
                self.torch.state[p] = entry

    def state(self) -> dict[str, torch.Tensor]:
        """Canonical name -> tensor (torch layout); `opt.step` is a 0-d int64 tensor."""
        out: dict[str, torch.Tensor] = {STEP: self.count}
        for slot in self.spec.slots:
            for name, p in self.params.items():
                out[slot_name(slot, name)] = self.torch.state[p][SLOTS[slot]]
        return out

    def step(self, lr: float) -> None:
        """One update at rate `lr` from the parameters' `.grad` (clipped first); no host sync."""
        if self.spec.clip_norm is not None:
            grads = [p.grad for p in self.params.values() if p.grad is not None]
            clip_by_global_norm_(grads, float(self.spec.clip_norm))
        for group in self.torch.param_groups:
            group["lr"] = lr
        self.torch.step()
        self.count.add_(1)

    def zero_grad(self) -> None:
        self.torch.zero_grad(set_to_none=True)


def build(spec: OptimizerSpec, weights: Mapping[str, torch.nn.Parameter], device: torch.device) -> Optimizer:
    """The torch optimizer for `spec` over `weights` (canonical name -> parameter), with zero state."""
    if type(spec) not in OPTIMIZERS:
        raise NotImplementedError(f"{type(spec).__name__} is not implemented by the torch backend")
    return Optimizer(spec, weights, device)

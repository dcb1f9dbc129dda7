"""The PyTorch backend: `TorchBackend` and `TorchProgram` (the seam of xvae/backend.py).

Eager by default. On a 2-core CPU `torch.compile` costs 18-60 s of warm-up and does not beat
eager mode per step (VAE 784-500-20, batch 128, Adam: 47-50 compiled vs 50-78 eager
steps/s on a shared 2-core machine), so it is used only where it pays: with
`CompileOptions.jit` on CUDA (the forward pass and loss are compiled; backward runs through
AOTAutograd; the fused optimizer kernel does the update). ``XVAE_TORCH_COMPILE=1`` / ``=0``
forces it on or off (benchmarks, debugging).

Device order is cuda > mps > cpu unless `CompileOptions.device` names one.
`precision="highest"` turns TF32 off around every call and restores the caller's setting
afterwards; `"fast"` turns it on the same way (DESIGN §5, ARCHITECTURE §2.7).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from xvae import _device_data
from xvae._errors import ConfigError
from xvae._specs import ModelSpec, VAESpec
from xvae.backend import (
    FUNCTIONS,
    Backend,
    Batch,
    CompileOptions,
    DeviceDraws,
    Metrics,
    OptState,
    Program,
    RepeatCache,
    Weights,
    check_batch,
    host_metrics,
    function_inputs,
)
from xvae.losses import ELBO_SPECS, LossSpec
from xvae.naming import weight_shapes
from xvae.optim import OptimizerSpec
from xvae_torch import _layers, _losses, _optim, _resident, _weights

__all__ = ["TorchBackend", "TorchProgram", "select_device", "tf32", "use_torch_compile"]

_NO_OPTIMIZER = "This program was compiled without an optimizer: pass optimizer= to fit()."
_DEVICE_ALIASES = {"gpu": "cuda"}


# -- device and precision ----------------------------------------------------------------
def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def select_device(requested: str | None = None) -> torch.device:
    """The device steps run on: `requested` if given, else cuda > mps > cpu.

    Raises:
        ConfigError: `requested` is not a torch device string, or names a device type
            this machine does not have.
    """
    if requested is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    name = str(requested)
    kind, _, index = name.partition(":")
    name = _DEVICE_ALIASES.get(kind.lower(), kind.lower()) + (f":{index}" if index else "")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as err:
        raise ConfigError(
            f"device={requested!r} is not a torch device. Use 'cpu', 'cuda', 'cuda:1' or 'mps'."
        ) from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={requested!r} was requested, but torch sees no CUDA device. "
                          "Use device=None (the best available) or 'cpu'.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device={requested!r} does not exist: torch sees "
                          f"{torch.cuda.device_count()} CUDA device(s).")
    if device.type == "mps" and not _mps_available():
        raise ConfigError(f"device={requested!r} was requested, but MPS is not available here. "
                          "Use device=None (the best available) or 'cpu'.")
    return device


def _legacy_tf32() -> tuple[bool, bool] | None:
    """(matmul, cudnn) allow_tf32, or None when the caller used torch's newer fp32_precision
    API, which makes reading the legacy flags raise (torch >= 2.9)."""
    try:
        return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    except RuntimeError:
        return None


@contextlib.contextmanager
def tf32(allow: bool) -> Iterator[None]:
    """Set TF32 for CUDA matmuls and cuDNN to `allow` inside, restore the caller's after.

    DESIGN §5: precision="highest" means float32 matmuls are float32. torch's own default
    already has matmul TF32 off, but cuDNN's on, and a user may have changed either.
    """
    legacy = _legacy_tf32()
    if legacy is not None:
        matmul, cudnn = legacy
        if matmul == allow and cudnn == allow:  # the common case: nothing to change
            yield
            return
        torch.backends.cuda.matmul.allow_tf32 = allow
        torch.backends.cudnn.allow_tf32 = allow
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32 = matmul
            torch.backends.cudnn.allow_tf32 = cudnn
        return
    # The caller configured the fp32_precision API: speak it too, and restore it exactly.
    value = "tf32" if allow else "ieee"
    targets = [torch.backends.cuda.matmul, torch.backends.cudnn.conv, torch.backends.cudnn.rnn]
    saved = [t.fp32_precision for t in targets]
    for t in targets:
        t.fp32_precision = value
    try:
        yield
    finally:
        for t, old in zip(targets, saved):
            t.fp32_precision = old


def use_torch_compile(options: CompileOptions, device: torch.device) -> bool:
    """torch.compile the loss only where it pays: jit=True on CUDA (or XVAE_TORCH_COMPILE)."""
    forced = os.environ.get("XVAE_TORCH_COMPILE", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return bool(options.jit) and device.type == "cuda"


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


# -- host <-> device ---------------------------------------------------------------------
def _tensor(value: Any, dtype: np.dtype[Any], device: torch.device) -> torch.Tensor:
    """A host array as a tensor on `device`; shares memory with it on the CPU when it can."""
    a = np.asarray(value, dtype=dtype)
    if not (a.flags.c_contiguous and a.flags.writeable):  # e.g. np.broadcast_to views
        a = np.array(a, order="C", copy=True)
    t = torch.from_numpy(a)
    if device.type == "cpu":
        return t
    if device.type == "cuda":
        # A copy from pageable memory waits for the GPU queue (a host sync per step); from
        # pinned memory it is queued. The caching host allocator keeps the staging buffer
        # alive until the copy is done.
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


_F32 = np.dtype(np.float32)


class TorchProgram(Program):
    """One model on one torch device; eager steps, torch.optim updates, no per-step sync."""

    def __init__(self, spec: ModelSpec, loss: LossSpec, optimizer: OptimizerSpec | None,
                 options: CompileOptions, device: torch.device, compiled: bool = False) -> None:
        self.spec = spec
        self.loss_spec = loss
        self.optimizer = optimizer
        self.options = options
        self.device = device
        self.kind = "vae" if isinstance(spec, VAESpec) else "classifier"
        self.allow_tf32 = options.precision == "fast"
        self.model = _layers.build(spec, device)
        self.params = self.model.variables_by_name()
        assert list(self.params) == list(weight_shapes(spec)), list(self.params)  # a bug, not a user error
        self._label_dtype = _losses.LABEL_DTYPES.get(type(loss))
        self._loss = _losses.loss_fn(loss)
        self.compiled = compiled
        self._train_loss: Callable[[Mapping[str, torch.Tensor]], tuple[torch.Tensor, dict[str, torch.Tensor]]]
        if compiled:
            self._train_loss = torch.compile(self._loss_of, dynamic=False)
        else:
            self._train_loss = self._loss_of
        self.opt = _optim.build(optimizer, self.params, device) if optimizer is not None else None
        self._repeats = RepeatCache(lambda a: _tensor(a, _F32, device))

    def _loss_of(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self._loss(self.model, batch)

    # -- state -------------------------------------------------------------------------
    def set_state(self, weights: Weights, opt_state: OptState | None = None) -> None:
        values = _weights.from_canonical(self.spec, weights, self.device)
        state = None
        if self.opt is not None and opt_state is not None:
            state = _weights.opt_state_from_canonical(self.spec, self.opt.spec.slots, opt_state, self.device)
        with torch.no_grad():  # in place, after every check: an optimizer holding the parameters keeps them
            for param, value in zip(self.params.values(), values):
                param.copy_(value)
        if self.opt is None:
            return
        if state is None:
            self.opt.reset()
        else:
            self.opt.load(state)

    def get_state(self) -> tuple[Weights, OptState]:
        w = _weights.to_canonical(self.spec, list(self.params.values()))
        return w, (_weights.opt_state_to_canonical(self.spec, self.opt.state()) if self.opt is not None else {})

    # -- inference ---------------------------------------------------------------------
    def run(self, fn: str, **inputs: NDArray[Any]) -> dict[str, NDArray[np.float32]]:
        functions = FUNCTIONS[self.kind]
        if fn not in functions:
            raise ConfigError(f"Unknown function {fn!r} for a {self.kind}. Known: {', '.join(functions)}.")
        names, outputs = function_inputs(self.spec, fn), functions[fn][1]
        missing = [n for n in names if n not in inputs]
        if missing:
            raise ConfigError(f"{fn}() needs the input(s) {', '.join(missing)}. Received: {', '.join(inputs)}")
        args = [_tensor(inputs[n], _F32, self.device) for n in names]
        with tf32(self.allow_tf32), torch.inference_mode():
            if fn == "log_weights":
                nll = _losses.NLL[ELBO_SPECS[self.spec.decoder.likelihood]]  # type: ignore[union-attr]
                result = _losses.log_weights(self.model, nll, args[0], args[1], 1.0, *args[2:])[0]
            else:
                result = getattr(self.model, fn)(*args)
        if isinstance(result, torch.Tensor):
            result = (result,)
        return {name: r.cpu().numpy().astype(np.float32, copy=False) for name, r in zip(outputs, result)}

    # -- steps -------------------------------------------------------------------------
    def _batch(self, batch: Batch, train: bool = False) -> dict[str, torch.Tensor]:
        check_batch(batch, self.kind, train=train, spec=self.spec)
        out = {}
        for name, value in batch.items():
            if name == "lr":  # stays on the host: torch.optim takes the rate as a Python float
                if train:
                    out[name] = np.asarray(value, _F32)
                continue
            if name in RepeatCache.KEYS:  # the same mask and beta every step: converted once
                out[name] = self._repeats.get(name, np.asarray(value, _F32))
            else:
                out[name] = _tensor(value, self._label_dtype if name == "y" else _F32, self.device)
        return out

    def _require_optimizer(self) -> _optim.Optimizer:
        if self.opt is None:
            raise ConfigError(_NO_OPTIMIZER)
        return self.opt

    def _step(self, opt: _optim.Optimizer, batch: Mapping[str, torch.Tensor], lr: float
              ) -> dict[str, torch.Tensor]:
        opt.zero_grad()
        loss, metrics = self._train_loss(batch)
        loss.backward()
        opt.step(lr)
        return {name: m.detach() for name, m in metrics.items()}

    def train_step(self, batch: Batch) -> Metrics:
        opt = self._require_optimizer()
        converted = self._batch(batch, train=True)
        lr = float(converted["lr"])  # the float32 rate, as every backend uses
        # the rate never enters the (possibly torch.compile'd) loss: a new value is no new graph
        tensors = {k: v for k, v in converted.items() if k != "lr"}
        with tf32(self.allow_tf32):
            return self._step(opt, tensors, lr)

    def train_steps(self, batches: Batch) -> Metrics:
        opt = self._require_optimizer()
        stacked = self._batch(batches, train=True)  # one host->device transfer for all K steps
        k = int(stacked["x"].shape[0])
        if k == 0:
            raise ConfigError("train_steps() needs at least one step: the leading K axis of the batch is 0.")
        lrs = np.broadcast_to(stacked["lr"], (k,)).tolist()
        beta = stacked.get("beta")
        per_step = [n for n in stacked if n != "lr" and not (n == "beta" and beta is not None and beta.ndim == 0)]
        steps = []
        with tf32(self.allow_tf32):
            for i in range(k):
                one = {n: stacked[n][i] for n in per_step}
                if beta is not None and beta.ndim == 0:
                    one["beta"] = beta
                steps.append(self._step(opt, one, lrs[i]))
        return {name: torch.stack([s[name] for s in steps]) for name in steps[0]}

    def apply_gradients(self, grads: Weights, lr: float | None = None) -> None:
        opt = self._require_optimizer()
        tensors = _weights.from_canonical(self.spec, grads, self.device, what="gradients")
        if lr is None:
            lr = opt.spec.lr_at(int(opt.count))
        opt.zero_grad()
        for p, g in zip(self.params.values(), tensors):
            p.grad = g
        with tf32(self.allow_tf32):
            opt.step(float(np.float32(lr)))
        opt.zero_grad()

    def eval_step(self, batch: Batch) -> Metrics:
        tensors = self._batch(batch)
        with tf32(self.allow_tf32), torch.inference_mode():
            _, metrics = self._loss_of(tensors)
        return metrics

    def loss_and_grads(self, batch: Batch) -> tuple[dict[str, float], Weights]:
        tensors = self._batch(batch)
        names = list(self.params)
        with tf32(self.allow_tf32):
            loss, metrics = self._loss_of(tensors)
            # autograd.grad leaves .grad and the optimizer untouched
            grads = torch.autograd.grad(loss, [self.params[n] for n in names])
        return host_metrics(self.to_numpy(metrics)), _weights.to_canonical(self.spec, grads)

    def to_numpy(self, metrics: Metrics) -> dict[str, NDArray[Any]]:
        return {name: (m.detach().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m))
                for name, m in metrics.items()}

    # -- device-resident data ----------------------------------------------------------
    def accelerator(self) -> bool:
        return self.device.type != "cpu"

    def device_memory(self) -> int | None:
        if self.device.type != "cuda":
            return None  # the CPU: host memory (xvae._memory)
        return int(torch.cuda.mem_get_info(self.device)[0])

    def place_data(self, x: NDArray[np.float32], y: NDArray[Any] | None) -> Any | None:
        if type(self) is not TorchProgram:  # data parallel: each rank feeds its own rows from the host
            return None
        try:
            data = {"x": _tensor(x, _F32, self.device)}
            if y is not None:
                labels = _device_data.labels(y, self.kind, self._label_dtype)
                data["y"] = _tensor(labels, labels.dtype, self.device)
        except torch.cuda.OutOfMemoryError as err:
            raise MemoryError(str(err).splitlines()[0]) from err
        return data

    def train_resident(self, data: Any, ids: NDArray[np.int32], mask: NDArray[np.float32],
                       lr: NDArray[np.float32], beta: NDArray[np.float32] | None, *, seed: int,
                       epoch: int, draws: DeviceDraws) -> Metrics:
        opt = self._require_optimizer()
        rows = _tensor(ids, np.dtype(np.int64), self.device)  # (S, B): the call's only large input
        masks = _tensor(mask, _F32, self.device)
        betas = None if beta is None or self.kind != "vae" else _tensor(beta, _F32, self.device)
        lrs = np.asarray(lr, _F32).tolist()  # torch.optim takes the rate as a Python float
        steps = []
        with tf32(self.allow_tf32):
            for i in range(rows.shape[0]):
                batch = _resident.gather(data, rows[i], seed, epoch, draws)
                batch["mask"] = masks[i]
                if betas is not None:
                    batch["beta"] = betas[i]
                steps.append(self._step(opt, batch, lrs[i]))
        return {name: torch.stack([s[name] for s in steps]) for name in steps[0]}


class TorchBackend(Backend):
    """PyTorch: torch.nn modules, torch.optim (fused kernels where available), eager steps."""

    name = "torch"

    def info(self) -> dict[str, str]:
        return {"version": torch.__version__, "device": _device_name(select_device())}

    def compile(self, spec: ModelSpec, loss: LossSpec, optimizer: OptimizerSpec | None,
                options: CompileOptions) -> TorchProgram:
        if options.devices is not None:  # data parallel: DDP over torchrun's processes (_distribute)
            from xvae_torch._distribute import DataParallelProgram

            return DataParallelProgram(spec, loss, optimizer, options)
        device = select_device(options.device)
        return TorchProgram(spec, loss, optimizer, options, device,
                            compiled=use_torch_compile(options, device))

"""The JAX backend: flax (linen) modules, optax, one jitted pure step over (params, opt_state).

A `JaxProgram` holds ``params`` (a flax params tree on its device) and an optax state. The
step is a pure function ``(params, opt_state), batch -> (params, opt_state), metrics``,
compiled once per batch shape with the (params, opt_state) buffers donated, so XLA updates
them in place. `train_steps` runs the same step under `jax.lax.scan`: K steps, one call.
The compiled functions depend only on (spec, loss, optimizer without its lr, precision,
jit), so programs that share them (``Model.to``, a recompile for a new optimizer, the test
suite) share the compilation too. The learning rate is the batch's "lr", a traced input.

Precision (DESIGN §5): with ``precision="highest"`` every function is traced inside
``jax.default_matmul_precision("float32")``: the precision is recorded on each dot_general
in the jaxpr (forward and, through transposition, backward), so on GPUs the matmuls are
full float32, not TF32; the setting is scoped to xvae's functions, never global.
``"fast"`` leaves JAX's default (TF32 / bf16 passes where the hardware has them).
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share the GPU with tf/torch

import functools
from typing import Any, Callable, Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpy.typing import NDArray

from xvae import _device_data, keyed
from xvae._errors import ConfigError
from xvae._specs import ModelSpec
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
    broadcast,
    check_batch,
    host_metrics,
    conditions,
    function_inputs,
)
from xvae.losses import IWAEBound, LossSpec, loss_for
from xvae.optim import OptimizerSpec
from xvae_jax import _layers, _losses, _optim, _resident, _weights

__all__ = ["JaxBackend", "JaxProgram", "resolve_device"]

#: CompileOptions.precision -> jax.default_matmul_precision (None: leave JAX's default).
PRECISIONS: dict[str, str | None] = {"highest": "float32", "fast": None}

State = tuple[Any, Any]  # (flax params tree, optax state)


def resolve_device(name: str | None) -> jax.Device:
    """A device from "cpu", "gpu", "cuda:1", "tpu:0", ...; None: JAX's default device."""
    if name is None:
        default = jax.config.jax_default_device
        return default if isinstance(default, jax.Device) else jax.local_devices()[0]  # multi-host: this process's
    platform, _, index = str(name).lower().partition(":")
    candidates = {platform, "gpu"} if platform in ("cuda", "rocm") else {platform}
    for plat in sorted(candidates):
        try:
            devices = jax.devices(plat)
        except RuntimeError:
            continue
        if not index:
            return devices[0]
        for device in devices:
            if index.isdigit() and device.id == int(index):
                return device
    known = ", ".join(_describe(d) for d in jax.devices())
    raise ConfigError(f"The jax backend has no device {name!r}. Available: {known}; "
                      "name one as 'cpu', 'gpu' or 'gpu:0', or pass device=None for JAX's default.")


def _describe(device: jax.Device) -> str:
    return f"{device.platform}:{device.id} ({device.device_kind})"


def _scoped(precision: str | None, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` traced under jax.default_matmul_precision(precision); the scope ends with the trace."""
    if precision is None:
        return fn

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with jax.default_matmul_precision(precision):
            return fn(*args, **kwargs)

    return wrapped


class _Steps:
    """The pure functions of one (spec, loss, optimizer, precision), jitted."""

    def __init__(self, spec: ModelSpec, loss: LossSpec, optimizer: OptimizerSpec | None,
                 precision: str, jit: bool) -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}. Received: {precision!r}")
        self.model = _layers.build(spec)
        self.per_example = _losses.loss_fn(loss)
        #: the likelihood's ELBO: its "reconstruction" is the nll that log_weights needs
        self.elbo = _losses.loss_fn(loss_for(spec)) if spec.kind == "vae" else None
        self.iwae = isinstance(loss, IWAEBound)
        self.conditioned = conditions(spec) > 0
        # optax keeps no state of its own: `Optimizer.restore` makes it from a params tree later
        self.opt = None if optimizer is None else _optim.build(optimizer, weights=None, device=None)
        scope = functools.partial(_scoped, PRECISIONS[precision])
        compile_: Callable[..., Any] = jax.jit if jit else (lambda fn, **_: fn)
        self.eval = compile_(scope(self._metrics))
        self.grads = compile_(scope(self._value_and_grad))
        self.run = {fn: compile_(scope(functools.partial(self._run, fn))) for fn in FUNCTIONS[spec.kind]}
        # (params, opt_state) is argument 0 and donated: XLA writes the new state in place.
        self.train = compile_(scope(self._train), donate_argnums=0)
        self.train_k = compile_(scope(self._train_k), donate_argnums=0)
        self.apply = compile_(scope(self._apply), donate_argnums=0)
        self._compile, self._scope = compile_, scope
        self._resident: dict[DeviceDraws, Callable[..., Any]] = {}

    def resident(self, draws: DeviceDraws) -> Callable[..., Any]:
        """The jitted training scan on device-resident data, for these draws."""
        fn = self._resident.get(draws)
        if fn is None:
            fn = self._resident[draws] = self._compile(self._scope(functools.partial(self._train_resident, draws)),
                                                       donate_argnums=0)
        return fn

    def _train_resident(self, draws: DeviceDraws, state: State, data: Mapping[str, jax.Array],
                        calls: Mapping[str, jax.Array], seed: jax.Array, epoch: jax.Array
                        ) -> tuple[State, dict[str, jax.Array]]:
        def step(state: State, call: Mapping[str, jax.Array]) -> tuple[State, dict[str, jax.Array]]:
            return self._train(state, _resident.gather(data, call, seed, epoch, draws))

        return jax.lax.scan(step, state, calls)

    def _objective(self, params: Any, batch: Mapping[str, jax.Array]) -> tuple[jax.Array, dict[str, jax.Array]]:
        y = {"y": batch["y"]} if self.conditioned else {}  # a conditional VAE's one-hot condition
        if self.iwae:  # noise (B, k, latents): the decoder runs on B*k codes
            out = self.model.apply({"params": params}, batch["x"], batch["noise"], method="importance",
                                   dropout=batch.get("dropout"), **y)
        else:
            out = self.model.apply({"params": params}, *(batch[k] for k in self.model.inputs),
                                   dropout=batch.get("dropout"), **y)
        metrics = _losses.masked_means(self.per_example(out, batch), batch["mask"])
        return metrics["loss"], metrics

    def _metrics(self, params: Any, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        return self._objective(params, batch)[1]

    def _value_and_grad(self, params: Any, batch: Mapping[str, jax.Array]) -> tuple[dict[str, jax.Array], Any]:
        (_, metrics), grads = jax.value_and_grad(self._objective, has_aux=True)(params, batch)
        return metrics, grads

    def _train(self, state: State, batch: Mapping[str, jax.Array]) -> tuple[State, dict[str, jax.Array]]:
        params, opt_state = state
        metrics, grads = self._value_and_grad(params, batch)
        return self.opt.update(params, opt_state, grads, batch["lr"]), metrics  # type: ignore[union-attr]

    def _train_k(self, state: State, batches: Mapping[str, jax.Array]) -> tuple[State, dict[str, jax.Array]]:
        return jax.lax.scan(self._train, state, batches)

    def _apply(self, state: State, grads: Any, lr: jax.Array) -> State:
        return self.opt.update(*state, grads, lr)  # type: ignore[union-attr]

    def _run(self, fn: str, params: Any, **inputs: jax.Array) -> dict[str, jax.Array]:
        if fn == "log_weights":
            out = self.model.apply({"params": params}, inputs["x"], inputs["noise"], inputs.get("y"),
                                   method="importance")
            return {"log_weights": _losses.log_weights(self.elbo, out, inputs["x"], inputs["noise"])[0]}
        return self.model.apply({"params": params}, **inputs, method=fn)


@functools.lru_cache(maxsize=32)
def _steps(spec: ModelSpec, loss: LossSpec, optimizer: OptimizerSpec | None, precision: str, jit: bool) -> _Steps:
    return _Steps(spec, loss, optimizer, precision, jit)


class JaxProgram(Program):
    """One model on one JAX device: params and optax state, stepped by jitted pure functions."""

    def __init__(self, spec: ModelSpec, loss: LossSpec, optimizer: OptimizerSpec | None,
                 options: CompileOptions) -> None:
        self.spec = spec
        self.kind = spec.kind
        self.optimizer = optimizer
        self.options = options
        self.device = resolve_device(options.device)
        # Keyed without lr: the rate is a step input, so a new rate is never a new compile.
        self._steps = _steps(spec, loss, None if optimizer is None else optimizer.without_lr(),
                             options.precision, options.jit)
        self._label_dtype = _losses.LABEL_DTYPES.get(type(loss))
        self._params: Any = None
        self._opt_state: Any = None
        self._repeats = RepeatCache(functools.partial(jax.device_put, device=self.device))

    # -- state -------------------------------------------------------------------------
    def set_state(self, weights: Weights, opt_state: OptState | None = None) -> None:
        params = _weights.from_canonical(self.spec, weights, self.device)
        state = None
        if self._steps.opt is not None:
            step, slots = np.int32(0), {}
            if opt_state:
                step, slots = _weights.opt_state_from_canonical(
                    self.spec, self.optimizer.slots, opt_state, self.device)  # type: ignore[union-attr]
            state = jax.device_put(self._steps.opt.restore(params, step, slots), self.device)
        self._params, self._opt_state = params, state

    def get_state(self) -> tuple[Weights, OptState]:
        weights = _weights.to_canonical(self.spec, self._ready())
        if self._steps.opt is None:
            return weights, {}
        return weights, _weights.opt_state_to_canonical(self.spec, self._steps.opt.export(self._opt_state))

    def _ready(self) -> Any:
        if self._params is None:
            raise ConfigError("This program holds no weights yet: call set_state(weights) first.")
        return self._params

    def _trainable(self) -> _Steps:
        if self._steps.opt is None:
            raise ConfigError("This program was compiled without an optimizer: pass optimizer= to "
                              "fit(), or compile with an xvae.optim spec to train.")
        self._ready()
        return self._steps

    # -- batches -----------------------------------------------------------------------
    def _batch(self, batch: Batch, stacked: bool = False, train: bool = False) -> dict[str, Any]:
        """Arrays in the step's dtypes (host arrays; mask, beta and lr cached on the device);
        `stacked`: every key has the leading K axis of train_steps (beta and lr may be
        scalars); `train`: the batch carries the step's "lr"."""
        check_batch(batch, self.kind, train=train, spec=self.spec)
        x = np.asarray(batch["x"], np.float32)
        rows = x.shape[: 2 if stacked else 1]  # (K, B) or (B,)
        repeats = self._repeats  # the same mask, beta and lr every step: on the device once
        out = {"x": x, "mask": repeats.get("mask", broadcast(batch["mask"], rows))}
        scalars = (("beta",) if self.kind == "vae" else ()) + (("lr",) if train else ())
        for key in scalars:
            value = np.asarray(batch[key], np.float32)
            out[key] = repeats.get(key, broadcast(value, rows[:1]) if stacked else value.reshape(()))
        if batch.get("dropout") is not None:
            out["dropout"] = np.asarray(batch["dropout"], np.float32)
        if self.kind == "vae":
            out["noise"] = np.asarray(batch["noise"], np.float32)
            if conditions(self.spec):
                out["y"] = np.asarray(batch["y"], np.float32)
        else:
            out["y"] = np.asarray(batch["y"], self._label_dtype).reshape(rows)
        return out

    # -- inference ---------------------------------------------------------------------
    def run(self, fn: str, **inputs: NDArray[Any]) -> dict[str, NDArray[np.float32]]:
        functions = FUNCTIONS[self.kind]
        if fn not in functions:
            raise ConfigError(f"Unknown function {fn!r} for a {self.kind}. Known: {', '.join(functions)}.")
        names = function_inputs(self.spec, fn)
        if set(inputs) != set(names):
            raise ConfigError(f"{fn}() takes {', '.join(names)}. Received: {', '.join(inputs) or 'nothing'}.")
        out = self._steps.run[fn](self._ready(), **{k: np.asarray(v, np.float32) for k, v in inputs.items()})
        return {k: np.array(v, dtype=np.float32, order="C", copy=True) for k, v in jax.device_get(out).items()}

    # -- training ----------------------------------------------------------------------
    def train_step(self, batch: Batch) -> Metrics:
        steps = self._trainable()
        state, metrics = steps.train((self._params, self._opt_state), self._batch(batch, train=True))
        self._params, self._opt_state = state
        return metrics

    def train_steps(self, batches: Batch) -> Metrics:
        steps = self._trainable()
        state, metrics = steps.train_k((self._params, self._opt_state),
                                       self._batch(batches, stacked=True, train=True))
        self._params, self._opt_state = state
        return metrics

    def apply_gradients(self, grads: Weights, lr: float | None = None) -> None:
        steps = self._trainable()
        tree = _weights.from_canonical(self.spec, grads, self.device, what="gradients")
        if lr is None:
            step = int(jax.device_get(steps.opt.export(self._opt_state)[0]))  # type: ignore[union-attr]
            lr = self.optimizer.lr_at(step)  # type: ignore[union-attr]
        state = (self._params, self._opt_state)
        self._params, self._opt_state = steps.apply(state, tree, np.float32(lr))

    def eval_step(self, batch: Batch) -> Metrics:
        return self._steps.eval(self._ready(), self._batch(batch))

    def loss_and_grads(self, batch: Batch) -> tuple[dict[str, float], Weights]:
        metrics, grads = self._steps.grads(self._ready(), self._batch(batch))
        return host_metrics(self.to_numpy(metrics)), _weights.to_canonical(self.spec, grads)

    def to_numpy(self, metrics: Metrics) -> dict[str, NDArray[Any]]:
        return {k: np.asarray(v) for k, v in jax.device_get(dict(metrics)).items()}

    # -- device-resident data ----------------------------------------------------------
    def accelerator(self) -> bool:
        return self.device.platform != "cpu"

    def device_memory(self) -> int | None:
        stats = self.device.memory_stats() if self.device.platform != "cpu" else None
        if not stats or "bytes_limit" not in stats:
            return None  # the CPU: host memory (xvae._memory)
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))

    def place_data(self, x: NDArray[np.float32], y: NDArray[Any] | None) -> Any | None:
        if type(self) is not JaxProgram:  # data parallel: batches are split over devices, from the host
            return None
        try:
            data = {"x": jax.device_put(np.ascontiguousarray(x, np.float32), self.device)}
            if y is not None:
                data["y"] = jax.device_put(_device_data.labels(y, self.kind, self._label_dtype), self.device)
            jax.block_until_ready(data)
        except jax.errors.JaxRuntimeError as err:
            if "RESOURCE_EXHAUSTED" not in str(err):
                raise
            raise MemoryError(str(err).splitlines()[0]) from err
        return data

    def train_resident(self, data: Any, ids: NDArray[np.int32], mask: NDArray[np.float32],
                       lr: NDArray[np.float32], beta: NDArray[np.float32] | None, *, seed: int,
                       epoch: int, draws: DeviceDraws) -> Metrics:
        steps = self._trainable()
        calls = {"ids": np.asarray(ids, np.int32), "mask": np.asarray(mask, np.float32),
                 "lr": np.asarray(lr, np.float32)}
        if beta is not None and self.kind == "vae":
            calls["beta"] = np.asarray(beta, np.float32)
        state, metrics = steps.resident(draws)((self._params, self._opt_state), data, calls,
                                               _seed_words(seed), np.uint32(epoch))
        self._params, self._opt_state = state
        return metrics


def _seed_words(seed: int) -> NDArray[np.uint32]:
    """The keyed seed as the uint32 (2,) key `xvae.keyed.seed_key` (a traced input: no recompile)."""
    return np.array(keyed.seed_key(seed), np.uint32)


class JaxBackend(Backend):
    """JAX + flax + optax. Steps run on JAX's default device (a GPU when present)."""

    name = "jax"

    def info(self) -> dict[str, str]:
        return {"version": f"{jax.__version__} (flax {flax.__version__}, optax {optax.__version__})",
                "device": _describe(resolve_device(None))}

    def compile(self, spec: ModelSpec, loss: LossSpec, optimizer: OptimizerSpec | None,
                options: CompileOptions) -> JaxProgram:
        if options.devices is not None:  # data parallel: a mesh over the devices (xvae_jax._distribute)
            from xvae_jax._distribute import DataParallelProgram

            return DataParallelProgram(spec, loss, optimizer, options)
        return JaxProgram(spec, loss, optimizer, options)

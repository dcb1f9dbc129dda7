"""The TensorFlow backend: `tf.Module` variables, `tf.function` steps, DESIGN §5 optimizers.

A `TFProgram` owns the model's `tf.Variable`s and its optimizer's state variables on one
device, and traces each step once per batch shape (`tf.function(reduce_retracing=True,
jit_compile=options.xla)`; the core pads the last batch, so a run sees one shape).
`train_steps` runs K steps inside one call with a `tf.while_loop`, so K fused steps execute
the very operations of K single steps.

Process-global settings, made here because TensorFlow offers no scoped form:
- TF32: `precision="highest"` turns TensorFloat-32 off for the whole process
  (`tf.config.experimental.enable_tensor_float_32_execution(False)`) and warns once, where
  a GPU is visible: on a CPU, TF32 does not exist and the switch changes nothing.
- GPU memory growth is switched on for every GPU at import, so TensorFlow does not reserve
  all GPU memory when JAX (or torch) shares the process.
- ``TF_CPP_MIN_LOG_LEVEL`` defaults to "2" (errors only) before tensorflow is imported.
"""

from __future__ import annotations

import functools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before tensorflow is imported

import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
from numpy.typing import NDArray

from xvae import _device_data, keyed
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
    broadcast,
    check_batch,
    host_metrics,
    conditions,
    function_inputs,
)
from xvae.losses import ELBO_SPECS, VECTOR_METRICS, LossSpec
from xvae.naming import weight_shapes
from xvae.optim import OptimizerSpec
from xvae_tf import _layers, _losses, _optim, _resident, _weights

__all__ = ["TFBackend", "TFProgram"]


def _enable_memory_growth() -> None:
    """Let TensorFlow allocate GPU memory as needed instead of reserving all of it."""
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # the GPU was initialised already: too late, keep its setting
            pass


_enable_memory_growth()

_TF32_OFF = False
_PRECISIONS = ("highest", "fast")


def _set_precision(precision: str) -> None:
    """'highest': TF32 off, process-wide, once (with a warning); 'fast' leaves TF's default."""
    global _TF32_OFF
    if precision not in _PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(_PRECISIONS)}. Received: precision={precision!r}")
    if precision == "highest" and not _TF32_OFF:
        tf.config.experimental.enable_tensor_float_32_execution(False)
        _TF32_OFF = True
        if not tf.config.list_physical_devices("GPU"):
            return  # no TF32 on a CPU: the switch changes nothing, so there is nothing to say
        warnings.warn(
            "xvae's tf backend turned TensorFloat-32 off for the whole process "
            "(tf.config.experimental.enable_tensor_float_32_execution(False)) because "
            "precision='highest' needs full float32 matmuls; TensorFlow has no scoped switch, "
            "so other TensorFlow code in this process (and later precision='fast' programs) "
            "runs in full float32 too.",
            stacklevel=_caller_level(),
        )


def _caller_level() -> int:
    """The `stacklevel` that points a warning at the first frame outside xvae (the user's)."""
    frame, level = sys._getframe(2), 2  # 1: our caller (the function that warns)
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] in ("xvae", "xvae_tf"):
        frame, level = frame.f_back, level + 1
    return level


def _resolve_device(name: str | None) -> str:
    """'cpu', 'gpu', 'gpu:1', 'cuda:0', '/device:GPU:0' -> '/CPU:0' style; None: GPU if any."""
    if name is None:
        return "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"
    key = name.strip().lower().lstrip("/")
    key = key.removeprefix("device:")
    kind, _, index = key.partition(":")
    tf_kind = {"cpu": "CPU", "gpu": "GPU", "cuda": "GPU"}.get(kind)
    if tf_kind is None or (index and not index.isdigit()):
        raise ConfigError(f"The tf backend runs on 'cpu' or 'gpu[:i]' (or 'cuda[:i]'). Received: device={name!r}")
    count = len(tf.config.list_logical_devices(tf_kind))
    if int(index or 0) >= count:
        raise ConfigError(
            f"device={name!r} is not available to TensorFlow: it sees {count} {tf_kind} device(s). "
            "Pass device=None to use the best available one."
        )
    return f"/{tf_kind}:{int(index or 0)}"


def _describe(device: str) -> str:
    kind, index = device.strip("/").split(":")
    if kind == "GPU":
        gpu = tf.config.list_physical_devices("GPU")[int(index)]
        name = tf.config.experimental.get_device_details(gpu).get("device_name", "")
        return f"gpu:{index} ({name})" if name else f"gpu:{index}"
    return "cpu"


def _compiler(jit: bool, xla: bool) -> Callable[[Callable[..., Any]], Any]:
    """tf.function (jit_compile=xla) when jit, else eager (for debugging).

    XLA is worth its compile time even on a 2-core CPU: VAE 784-500-20, batch 128, Adam ran
    ~1.3-1.6x faster with jit_compile=True than with TensorFlow's own (oneDNN, Grappler-fused)
    kernels, hand-written baseline and this backend alike; so `CompileOptions.xla=True`
    (the default) is the right default here too, and on GPUs XLA fuses the elementwise work.
    """
    if not jit:
        return lambda f: f

    def compile_(f: Callable[..., Any]) -> Any:
        traced = tf.function(f, reduce_retracing=True, jit_compile=xla)
        # Every program traces its own functions over its own variables, once per batch
        # shape. TensorFlow's "frequent retracing" detector keys on the Python code object,
        # so many programs (a test suite, `.to()`, recompiling for an optimizer) would read
        # as retracing and log a warning; TF sets the same flag on restored functions
        # (saved_model/function_deserialization.py).
        traced._omit_frequent_tracing_warning = True
        return traced

    return compile_


_NO_OPTIMIZER = "This program was compiled without an optimizer: pass optimizer= to fit()."


class TFProgram(Program):
    """One model in TensorFlow: variables on one device and traced step functions."""

    def __init__(self, spec: ModelSpec, loss: LossSpec, optimizer: OptimizerSpec | None,
                 options: CompileOptions, device: str) -> None:
        self.spec = spec
        self.kind = "vae" if isinstance(spec, VAESpec) else "classifier"
        self.metric_names = loss.metrics
        self.options = options
        self.device = device
        self._loss = _losses.loss_fn(loss)
        self._label_dtype = _losses.LABEL_DTYPES.get(type(loss))
        with tf.device(device):
            self.model = _layers.build(spec)
            self._weights = self.model.variables_by_name()
            self._optimizer = (_optim.build(optimizer, self._weights, device)
                               if optimizer is not None else None)
        self._names = list(self._weights)
        assert self._names == list(weight_shapes(spec)), self._names  # a bug here, not a user error
        self._vars = list(self._weights.values())
        self._opt_state = self._optimizer.state() if self._optimizer is not None else {}
        self._repeats = RepeatCache(tf.convert_to_tensor)  # mask and beta, converted once

        self.xla = bool(options.xla)
        compile_ = _compiler(options.jit, self.xla)
        self._train = compile_(self._train_fn)
        self._train_many = compile_(self._train_many_fn)
        self._eval = compile_(self._metrics)
        self._grads = compile_(self._metrics_and_grads)
        self._apply = compile_(self._apply_fn)
        self._run = {fn: compile_(self._log_weights if fn == "log_weights" else getattr(self.model, fn))
                     for fn in FUNCTIONS[self.kind]}
        self._compile = compile_
        self._resident_fns: dict[DeviceDraws, Any] = {}
        #: each metric's shape per step: () but a VAE's "kl_per_latent", (latents,)
        self._metric_shapes = {n: (spec.encoder.latents,) if n in VECTOR_METRICS else ()  # type: ignore[union-attr]
                               for n in self.metric_names}
        self._nll = _losses.NLL.get(ELBO_SPECS.get(spec.decoder.likelihood)) if self.kind == "vae" else None  # type: ignore[union-attr]

    # -- traced bodies -----------------------------------------------------------------
    def _metrics(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        per = self._loss(self.model, batch)
        return _losses.masked_means({name: per[name] for name in self.metric_names}, batch["mask"])

    def _metrics_and_grads(self, batch: dict[str, tf.Tensor]) -> tuple[dict[str, tf.Tensor], list[tf.Tensor]]:
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(self._vars)
            metrics = self._metrics(batch)
        return metrics, tape.gradient(metrics["loss"], self._vars)

    def _train_fn(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        metrics, grads = self._metrics_and_grads(batch)
        self._optimizer.apply(self._vars, grads, batch["lr"])  # type: ignore[union-attr]
        return metrics

    def _train_many_fn(self, batches: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        k = tf.shape(batches["x"])[0]
        names = self.metric_names
        arrays = tuple(tf.TensorArray(tf.float32, size=k, element_shape=self._metric_shapes[n]) for n in names)

        def body(i: tf.Tensor, arrays: tuple[tf.TensorArray, ...]) -> tuple[Any, ...]:
            metrics = self._train_fn({key: value[i] for key, value in batches.items()})
            return i + 1, tuple(a.write(i, metrics[n]) for a, n in zip(arrays, names))

        _, arrays = tf.while_loop(lambda i, _: i < k, body, (tf.constant(0), arrays),
                                  parallel_iterations=1)
        return {n: a.stack() for n, a in zip(names, arrays)}

    def _resident_fn(self, draws: DeviceDraws) -> Any:
        """The traced training loop on device-resident data, for these draws."""
        fn = self._resident_fns.get(draws)
        if fn is None:
            fn = self._resident_fns[draws] = self._compile(functools.partial(self._train_resident_fn, draws))
        return fn

    def _train_resident_fn(self, draws: DeviceDraws, data: dict[str, tf.Tensor], calls: dict[str, tf.Tensor],
                           seed: tf.Tensor, epoch: tf.Tensor) -> dict[str, tf.Tensor]:
        k = tf.shape(calls["ids"])[0]
        names = self.metric_names
        arrays = tuple(tf.TensorArray(tf.float32, size=k, element_shape=self._metric_shapes[n]) for n in names)

        def body(i: tf.Tensor, arrays: tuple[tf.TensorArray, ...]) -> tuple[Any, ...]:
            call = {key: value[i] for key, value in calls.items()}
            metrics = self._train_fn(_resident.gather(data, call, seed, epoch, draws))
            return i + 1, tuple(a.write(i, metrics[n]) for a, n in zip(arrays, names))

        _, arrays = tf.while_loop(lambda i, _: i < k, body, (tf.constant(0), arrays), parallel_iterations=1)
        return {n: a.stack() for n, a in zip(names, arrays)}

    def _log_weights(self, x: tf.Tensor, noise: tf.Tensor, y: tf.Tensor | None = None) -> tf.Tensor:
        return _losses.log_weights(self.model, self._nll, x, noise, 1.0, y)[0]  # type: ignore[arg-type]

    def _apply_fn(self, grads: list[tf.Tensor], lr: tf.Tensor) -> None:
        self._optimizer.apply(self._vars, grads, lr)  # type: ignore[union-attr]

    # -- host side ---------------------------------------------------------------------
    def _batch(self, batch: Batch, stacked: bool = False, train: bool = False) -> dict[str, tf.Tensor]:
        """Host batch -> float32/int32 tensors of the keys this loss reads (one dtype per key,
        so a step traces once per shape). stacked: every key has a leading K axis, except
        "beta" and "lr", which may be scalars (broadcast to (K,)) or have shape (K,).
        train: the batch carries the step's "lr" (a tensor input: a new rate never retraces)."""
        check_batch(batch, self.kind, train=train, spec=self.spec)
        x = np.ascontiguousarray(batch["x"], np.float32)
        lead = x.shape[:-1]  # (B,) or (K, B)
        out = {"x": x, "mask": broadcast(batch["mask"], lead)}
        scalars = (("beta",) if self.kind == "vae" else ()) + (("lr",) if train else ())
        for key in scalars:
            out[key] = broadcast(np.asarray(batch[key], np.float32), lead[:1] if stacked else ())
        if batch.get("dropout") is not None:
            out["dropout"] = np.ascontiguousarray(batch["dropout"], np.float32)
        if self.kind == "vae":
            out["noise"] = np.ascontiguousarray(batch["noise"], np.float32)
            if conditions(self.spec):  # a CVAE's one-hot condition
                out["y"] = np.ascontiguousarray(batch["y"], np.float32)
        else:
            y = np.asarray(batch["y"])
            out["y"] = np.ascontiguousarray(y.reshape(lead), self._label_dtype)
        return {key: self._repeats.get(key, value) if key in RepeatCache.KEYS else tf.convert_to_tensor(value)
                for key, value in out.items()}

    def _need_optimizer(self) -> _optim.Optimizer:
        if self._optimizer is None:
            raise ConfigError(_NO_OPTIMIZER)
        return self._optimizer

    # -- the seam ----------------------------------------------------------------------
    def set_state(self, weights: Weights, opt_state: OptState | None = None) -> None:
        values = dict(zip(self._names, _weights.from_canonical(self.spec, weights, self.device)))
        if self._optimizer is not None:
            if opt_state is None:
                opt_state = self._optimizer.spec.init_state(weights)
            values.update(_weights.opt_state_from_canonical(self.spec, self._optimizer.spec.slots,
                                                            opt_state, self.device))
        for name, var in {**self._weights, **self._opt_state}.items():  # all checked: nothing half set
            var.assign(values[name], read_value=False)

    def get_state(self) -> tuple[Weights, OptState]:
        return (_weights.to_canonical(self.spec, self._vars),
                _weights.opt_state_to_canonical(self.spec, self._opt_state))

    def run(self, fn: str, **inputs: NDArray[Any]) -> dict[str, NDArray[np.float32]]:
        functions = FUNCTIONS[self.kind]
        if fn not in functions:
            raise ConfigError(f"Unknown function {fn!r} for a {self.kind}. Known: {', '.join(functions)}.")
        keys, outputs = function_inputs(self.spec, fn), functions[fn][1]
        missing = [key for key in keys if key not in inputs]
        if missing:
            raise ConfigError(f"{fn}() needs the input(s) {', '.join(map(repr, missing))}. Received: {sorted(inputs)}")
        with tf.device(self.device):
            result = self._run[fn](*(tf.convert_to_tensor(np.asarray(inputs[key], np.float32)) for key in keys))
        result = result if isinstance(result, tuple) else (result,)
        return {name: np.asarray(value.numpy(), np.float32) for name, value in zip(outputs, result)}

    def train_step(self, batch: Batch) -> Metrics:
        self._need_optimizer()
        with tf.device(self.device):
            return self._train(self._batch(batch, train=True))

    def train_steps(self, batches: Batch) -> Metrics:
        self._need_optimizer()
        with tf.device(self.device):
            return self._train_many(self._batch(batches, stacked=True, train=True))

    def apply_gradients(self, grads: Weights, lr: float | None = None) -> None:
        optimizer = self._need_optimizer()
        if lr is None:
            lr = optimizer.spec.lr_at(int(optimizer.step.numpy()))
        with tf.device(self.device):
            self._apply(_weights.from_canonical(self.spec, grads, self.device, what="gradients"),
                        tf.constant(np.float32(lr)))

    def eval_step(self, batch: Batch) -> Metrics:
        with tf.device(self.device):
            return self._eval(self._batch(batch))

    def loss_and_grads(self, batch: Batch) -> tuple[dict[str, float], Weights]:
        with tf.device(self.device):
            metrics, grads = self._grads(self._batch(batch))
        return host_metrics(self.to_numpy(metrics)), _weights.to_canonical(self.spec, grads)

    def to_numpy(self, metrics: Metrics) -> dict[str, NDArray[Any]]:
        return {name: np.asarray(value) for name, value in metrics.items()}

    # -- device-resident data ----------------------------------------------------------
    def accelerator(self) -> bool:
        return "CPU" not in self.device.upper()

    def device_memory(self) -> int | None:
        # TensorFlow reports the memory it holds, not the device's free memory: the bound is
        # host memory (the base class's None), and a GPU that refuses the data raises
        # ResourceExhaustedError in place_data, which falls back to streaming.
        return None

    def place_data(self, x: NDArray[np.float32], y: NDArray[Any] | None) -> Any | None:
        if type(self) is not TFProgram:  # data parallel: the strategy splits host batches
            return None
        try:
            with tf.device(self.device):
                data = {"x": tf.identity(tf.convert_to_tensor(np.ascontiguousarray(x, np.float32)))}
                if y is not None:
                    labels = _device_data.labels(y, self.kind, self._label_dtype)
                    data["y"] = tf.identity(tf.convert_to_tensor(labels))
        except tf.errors.ResourceExhaustedError as err:
            raise MemoryError(str(err).splitlines()[0]) from err
        return data

    def train_resident(self, data: Any, ids: NDArray[np.int32], mask: NDArray[np.float32],
                       lr: NDArray[np.float32], beta: NDArray[np.float32] | None, *, seed: int,
                       epoch: int, draws: DeviceDraws) -> Metrics:
        self._need_optimizer()
        calls = {"ids": np.asarray(ids, np.int32), "mask": np.asarray(mask, np.float32),
                 "lr": np.asarray(lr, np.float32)}
        if beta is not None and self.kind == "vae":
            calls["beta"] = np.asarray(beta, np.float32)
        with tf.device(self.device):
            return self._resident_fn(draws)(data, {k: tf.convert_to_tensor(v) for k, v in calls.items()},
                                                     tf.constant(keyed.seed_key(seed), tf.uint32), tf.constant(epoch, tf.uint32))


class TFBackend(Backend):
    """TensorFlow 2 (tf.function, optional XLA) on the best device: GPU when present."""

    name = "tf"

    def info(self) -> dict[str, str]:
        return {"version": tf.__version__, "device": _describe(_resolve_device(None))}

    def compile(self, spec: ModelSpec, loss: LossSpec, optimizer: OptimizerSpec | None,
                options: CompileOptions) -> TFProgram:
        _set_precision(options.precision)
        if options.devices is not None:  # data parallel: MirroredStrategy (xvae_tf._distribute)
            from xvae_tf._distribute import DataParallelProgram

            return DataParallelProgram(spec, loss, optimizer, options)
        return TFProgram(spec, loss, optimizer, options, _resolve_device(options.device))


if os.environ.get("TF_CONFIG"):  # several workers: collectives must exist before any TF op
    from xvae_tf import _distribute

    _distribute.start_multi_worker()

"""Data parallelism in TensorFlow: `tf.distribute.MirroredStrategy` over one host's devices.

Variables (weights and optimizer state) are created in the strategy's scope, so they are
`MirroredVariable`s, one copy per device. A training step splits the global batch's rows
(padded to a multiple of the devices, masked, by `xvae.distribute.pad_rows`) into one
shard per replica (`experimental_distribute_values_from_function`); each replica computes
``sum(mask * per_example) / S`` over its rows, S being the *global* batch's real rows (a
host number), so the replicas' sums add up to the global masked mean. `strategy.reduce(SUM)`
all-reduces the gradients and metrics, and the optimizer's equations (`_optim`) update the
mirrored variables once, in cross-replica context: every copy gets the same update.

`train_steps` runs its K steps as K such steps (the same numbers). Evaluation runs the
whole batch on the first device.

Several hosts: with TF_CONFIG set, `MultiWorkerMirroredStrategy` over every worker's
devices, the same code; it is created when the backend is imported (TensorFlow sets up
collectives only before its first operation), and worker 0 writes checkpoints.

Faults (several workers): a worker that dies or hangs is found by TensorFlow's coordination
service (its heartbeats stop; ~10 s, TensorFlow's default) or by the closed connection;
the other workers' collective is aborted with `tf.errors.UnavailableError` and `fit`
raises `xvae.distribute.WorkerLostError` from it. ``XVAE_DIST_TIMEOUT`` (seconds), when
set, also bounds each collective
(``tf.distribute.experimental.CommunicationOptions(timeout_seconds=...)``:
`tf.errors.DeadlineExceededError`, wrapped the same way).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import tensorflow as tf

from xvae import distribute
from xvae._errors import ConfigError
from xvae._specs import ModelSpec
from xvae.backend import Batch, CompileOptions, Metrics
from xvae.losses import LossSpec
from xvae.optim import OptimizerSpec
from xvae_tf import _backend, _losses

__all__ = ["DataParallelProgram", "strategy_devices"]

#: The global batch's number of real rows, sent to every replica (never sent by the core).
TOTAL = "_dp_total"
#: Seconds a multi-worker collective may wait for a peer (unset: TensorFlow's heartbeats decide).
TIMEOUT_ENV = "XVAE_DIST_TIMEOUT"
#: What a collective raises when a worker is gone or silent.
_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
                tf.errors.CancelledError)


_MULTI_WORKER: tf.distribute.MultiWorkerMirroredStrategy | None = None


def start_multi_worker() -> tf.distribute.MultiWorkerMirroredStrategy:
    """The process's MultiWorkerMirroredStrategy (from TF_CONFIG), created once.

    TensorFlow configures collectives only before its first operation, so `_backend` calls
    this at import when TF_CONFIG is set, before any model exists.
    """
    global _MULTI_WORKER
    if _MULTI_WORKER is None:
        timeout = os.environ.get(TIMEOUT_ENV)
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=float(timeout) if timeout else None)
        _MULTI_WORKER = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    return _MULTI_WORKER


def strategy_devices(devices: distribute.Devices) -> tuple[tf.distribute.Strategy, list[str], bool]:
    """(strategy, this process's devices as "/GPU:i"-style strings, chief?) for `devices`.

    One host: MirroredStrategy over the logical GPUs if any, else CPUs. TF_CONFIG set:
    MultiWorkerMirroredStrategy over every worker's devices (devices must be "all" or
    their count); the chief is worker 0.
    """
    if os.environ.get("TF_CONFIG"):
        strategy = start_multi_worker()
        n = strategy.num_replicas_in_sync
        if isinstance(devices, tuple):
            raise ConfigError(f"devices={list(devices)!r}: with TF_CONFIG the devices are the workers' "
                              f"({n} replicas); pass devices='all' or devices={n}.")
        distribute.select(devices, [f"replica {i}" for i in range(n)], "tf")
        if devices not in ("all", n):
            raise ConfigError(f"devices={devices!r}, but TF_CONFIG's workers hold {n} replicas; pass "
                              f"devices='all' or devices={n}.")
        task = strategy.cluster_resolver.task_id
        return strategy, list(strategy.extended.worker_devices), not task
    kind = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    names = [f"{kind.lower()}:{i}" for i in range(len(tf.config.list_logical_devices(kind)))]
    if isinstance(devices, tuple):
        chosen = [_backend._resolve_device(name) for name in devices]
    else:
        hint = ("" if kind == "GPU" or len(names) > 1 else
                " (on a CPU, split it into logical devices first: tf.config.set_logical_device_configuration)")
        try:
            chosen = [f"/{kind}:{i}" for i in distribute.select(devices, names, "tf")]
        except ConfigError as err:
            raise ConfigError(f"{err}{hint}") from None
    return tf.distribute.MirroredStrategy(chosen), chosen, True


class DataParallelProgram(_backend.TFProgram):
    """A `TFProgram` whose variables are mirrored and whose training steps are split."""

    def __init__(self, spec: ModelSpec, loss: LossSpec, optimizer: OptimizerSpec | None,
                 options: CompileOptions) -> None:
        self.strategy, self.devices, self.chief = strategy_devices(options.devices)
        self.replicas = self.strategy.num_replicas_in_sync
        with self.strategy.scope():
            super().__init__(spec, loss, optimizer, options, self.devices[0])
        # Not jit_compile'd. Tried in TF 2.21 (tf.function(self._replica_fn, jit_compile=True)
        # called by strategy.run, inside the traced step and from an eager step alike): XLA
        # runs replica 1's function on /device:CPU:0 and refuses to read its variable copy on
        # logical /device:CPU:1 (InvalidArgumentError "Trying to access resource
        # .../replica_1 located in device CPU:1 from device CPU:0",
        # tensorflow.org/xla/known_issues#tfvariable_on_a_different_device). Separate GPUs
        # may not have this limit, but no GPU was available to check it.
        self._replica = self._replica_fn
        self._dp_train = tf.function(self._dp_train_fn) if options.jit else self._dp_train_fn

    def _replica_fn(self, batch: dict[str, tf.Tensor]) -> tuple[dict[str, tf.Tensor], list[tf.Tensor]]:
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(self._vars)
            per = self._loss(self.model, batch)
            # this replica's share of the global masked means
            sums = _losses.masked_sums({n: per[n] for n in self.metric_names}, batch["mask"])
            shares = {n: total / batch[TOTAL] for n, total in sums.items()}
        return shares, tape.gradient(shares["loss"], self._vars)

    def _dp_train_fn(self, shards: Any, lr: tf.Tensor) -> dict[str, tf.Tensor]:
        shares, grads = self.strategy.run(self._replica, args=(shards,))
        total = tf.distribute.ReduceOp.SUM
        grads = [self.strategy.reduce(total, g, axis=None) for g in grads]
        metrics = {n: self.strategy.reduce(total, v, axis=None) for n, v in shares.items()}
        self._optimizer.apply(self._vars, grads, lr)  # type: ignore[union-attr]
        return metrics

    def _shards(self, batch: Batch) -> tuple[Any, tf.Tensor]:
        host = distribute.pad_rows(batch, self.replicas)
        rows = np.shape(host["x"])[0] // self.replicas
        mask = np.broadcast_to(np.asarray(host["mask"], np.float32), (rows * self.replicas,))
        converted = self._batch({**host, "mask": mask}, train=True)
        lr = converted.pop("lr")
        converted[TOTAL] = tf.constant(np.float32(mask.sum()))

        def shard(ctx: tf.distribute.ValueContext) -> dict[str, tf.Tensor]:
            i = ctx.replica_id_in_sync_group
            with tf.device(self.devices[i % len(self.devices)]):  # i: global; devices: this worker's
                return {k: (v if k in distribute.UNSPLIT_KEYS or k == TOTAL else v[i * rows:(i + 1) * rows])
                        for k, v in converted.items()}

        return self.strategy.experimental_distribute_values_from_function(shard), lr

    def train_step(self, batch: Batch) -> Metrics:
        self._need_optimizer()
        shards, lr = self._shards(batch)
        try:
            return self._dp_train(shards, lr)
        except _PEER_ERRORS as err:
            if self.strategy is not _MULTI_WORKER:
                raise  # one process: no peer to lose
            task = self.strategy.cluster_resolver.task_id
            why = next((line for line in err.message.splitlines() if "aborted by" in line or "timed out" in line), None)
            raise distribute.WorkerLostError.from_collective(
                err, f"worker {task} of {self.strategy.cluster_resolver.cluster_spec().num_tasks('worker')}",
                f"TensorFlow's coordination service declares a silent worker lost after ~10 s; {TIMEOUT_ENV} "
                "also bounds each collective.", detail=why) from err

    def train_steps(self, batches: Batch) -> Metrics:
        k = int(np.shape(batches["x"])[0])
        steps = []
        for i in range(k):
            one = {key: (np.asarray(v)[i] if key not in distribute.UNSPLIT_KEYS or np.ndim(v) == 1 else v)
                   for key, v in batches.items()}
            steps.append(self.train_step(one))
        return {n: tf.stack([s[n] for s in steps]) for n in self.metric_names}

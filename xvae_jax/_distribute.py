"""Data parallelism in JAX: a `jax.sharding.Mesh` over the devices, the batch on its "data" axis.

The same jitted step as one device (`_backend._Steps`), fed differently: params and optax
state are replicated (``NamedSharding(mesh, P())``), every batch array with rows is split
on its row axis (``P("data")``; ``P(None, "data")`` for train_steps' (K, B, ...)). XLA's
SPMD partitioner then computes each device's rows locally and all-reduces the sums of the
masked mean, so loss, gradients and update are the global batch's: the numbers of one
device to float32 rounding (the sums are reduced in another order). Rows that do not split
evenly are padded with masked rows by `xvae.distribute.pad_rows`.

Multi-host: call `jax.distributed.initialize()` in every process before building the model;
``devices="all"`` then spans every host's devices (`jax.devices()` is global).

Faults (several processes): a peer that dies closes its gloo/NCCL connections, the next
collective fails, and `fit` raises `xvae.distribute.WorkerLostError` from JAX's error. A
peer that hangs is found by JAX's coordination service when its heartbeats stop
(``jax.distributed.initialize(heartbeat_timeout_seconds=...)``, 100 s by default): the
service then ends every other process itself (a fatal log line "Terminating process
because the JAX distributed service detected fatal errors", exit status 134), which no
Python code can catch; ``shutdown_timeout_seconds`` bounds how long an exiting process
waits for the others. Checkpoints are written atomically, so the last one is whole either way.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Iterator

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from xvae import distribute
from xvae.backend import Batch, CompileOptions, OptState, RepeatCache, Weights
from xvae.losses import LossSpec
from xvae.optim import OptimizerSpec
from xvae._specs import ModelSpec
from xvae_jax import _backend, _weights

__all__ = ["DataParallelProgram", "mesh_devices"]

#: The mesh axis the batch is split on.
AXIS = "data"

#: Words of the errors JAX's collectives raise when a peer process is gone (gloo, NCCL, gRPC).
_PEER_SIGNS = ("gloo", "nccl", "connection", "peer", "heartbeat", "unavailable", "deadline")


@contextlib.contextmanager
def _peers() -> Iterator[None]:
    """Turns a collective's failure for lack of a peer process into `WorkerLostError`."""
    try:
        yield
    except jax.errors.JaxRuntimeError as err:
        if jax.process_count() == 1 or not any(w in str(err).lower() for w in _PEER_SIGNS):
            raise  # one process: no peer to lose; or a failure of the computation itself
        raise distribute.WorkerLostError.from_collective(
            err, f"process {jax.process_index()} of {jax.process_count()}",
            "jax.distributed.initialize(heartbeat_timeout_seconds=...) sets how long a silent peer is "
            "waited for.") from err


def mesh_devices(devices: distribute.Devices) -> list[jax.Device]:
    """The JAX devices `devices` (`xvae.distribute`) names; ConfigError naming those available."""
    available = jax.devices()
    if isinstance(devices, tuple):
        return [_backend.resolve_device(name) for name in devices]
    names = [f"{d.platform}:{d.id}" for d in available]
    return [available[i] for i in distribute.select(devices, names, "jax")]


class DataParallelProgram(_backend.JaxProgram):
    """A `JaxProgram` whose state is replicated over a mesh and whose batches are sharded."""

    def __init__(self, spec: ModelSpec, loss: LossSpec, optimizer: OptimizerSpec | None,
                 options: CompileOptions) -> None:
        super().__init__(spec, loss, optimizer, options)
        self.devices = mesh_devices(options.devices)
        self.mesh = Mesh(np.array(self.devices), (AXIS,))
        here = jax.process_index()  # this process's first mesh device: host <-> device copies
        self.device = next(d for d in self.devices if d.process_index == here)
        self.chief = jax.process_index() == 0  # multi-host: process 0 writes checkpoints
        self._replicated = NamedSharding(self.mesh, PartitionSpec())
        self._rows = {False: NamedSharding(self.mesh, PartitionSpec(AXIS)),
                      True: NamedSharding(self.mesh, PartitionSpec(None, AXIS))}
        self._repeats = RepeatCache(lambda a: a)  # host arrays: placed with their sharding below
        self._placed = RepeatCache(self._replicate)

    def _replicate(self, tree: Any) -> Any:
        return jax.tree_util.tree_map(lambda a: self._place(a, self._replicated), tree)

    @staticmethod
    def _place(a: Any, sharding: NamedSharding) -> jax.Array:
        """A global array from the host copy every process holds (the core draws the same
        batch in each): each process fills only its own devices' pieces, as multi-host needs."""
        host = np.asarray(a)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    def set_state(self, weights: Weights, opt_state: OptState | None = None) -> None:
        super().set_state(weights, opt_state)
        self._params = self._replicate(self._params)
        if self._opt_state is not None:
            self._opt_state = self._replicate(self._opt_state)

    @contextlib.contextmanager
    def _local(self) -> Iterator[None]:
        """Inside, params and optimizer state are this process's first replica: a
        single-device copy that host reads and inference can use on any host."""
        params, opt_state = self._params, self._opt_state
        first = functools.partial(jax.tree_util.tree_map, lambda a: a.addressable_data(0))
        self._params = first(params)
        self._opt_state = None if opt_state is None else first(opt_state)
        try:
            yield
        finally:
            self._params, self._opt_state = params, opt_state

    def get_state(self) -> tuple[Weights, OptState]:
        with self._local():
            return super().get_state()

    def run(self, fn: str, **inputs: Any) -> dict[str, Any]:
        with self._local():
            return super().run(fn, **inputs)

    def train_step(self, batch: Batch) -> Any:
        with _peers():
            return super().train_step(batch)

    def train_steps(self, batches: Batch) -> Any:
        with _peers():
            return super().train_steps(batches)

    def to_numpy(self, metrics: Any) -> dict[str, Any]:
        # Metrics are replicated: every process reads its own copy (multi-host safe). The
        # step runs asynchronously: a lost peer usually shows here, when they are read.
        with _peers():
            return super().to_numpy({k: v.addressable_data(0) if isinstance(v, jax.Array) else v
                                    for k, v in dict(metrics).items()})

    def apply_gradients(self, grads: Weights, lr: float | None = None) -> None:
        steps = self._trainable()
        tree = self._replicate(_weights.from_canonical(self.spec, grads, self.device, what="gradients"))
        if lr is None:
            step = int(jax.device_get(steps.opt.export(self._opt_state)[0]))  # type: ignore[union-attr]
            lr = self.optimizer.lr_at(step)  # type: ignore[union-attr]
        self._params, self._opt_state = steps.apply((self._params, self._opt_state), tree, np.float32(lr))

    def _batch(self, batch: Batch, stacked: bool = False, train: bool = False) -> dict[str, Any]:
        host = distribute.pad_rows(super()._batch(batch, stacked=stacked, train=train), len(self.devices),
                                   axis=1 if stacked else 0)
        rows = self._rows[stacked]
        return {key: self._placed.get(key, value) if key in distribute.UNSPLIT_KEYS
                else self._place(value, rows) for key, value in host.items()}

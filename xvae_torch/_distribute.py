"""Data parallelism in PyTorch: `DistributedDataParallel` over the processes `torchrun` started.

Launch (one host, N devices or N CPU processes)::

    torchrun --nnodes=1 --nproc-per-node=N train.py      # train.py calls fit(..., devices="all")

Every process runs the same script and the core draws the same global batch in each (same
seed: order, binarization, noise, lr and beta are those of one device). Process r pads the
batch's rows to a multiple of N (masked rows) and takes rows [r*B/N, (r+1)*B/N). DDP
averages gradients over the N processes, so each process scales its local masked mean by
``N * S_r / S`` (S_r: its real rows, S: the global batch's, both known on the host): the
average is then the gradient of the global masked mean, the loss of one device. The step's
metrics are all-reduced the same way, so every process reports the global numbers.

Only rank 0 (`Program.chief`) writes checkpoints. The process group is created with a
timeout (``XVAE_DIST_TIMEOUT`` seconds, default 60): when a peer dies, the others' next
collective fails (gloo: at once, on the closed connection; at the latest after the
timeout) and `fit` raises `xvae.distribute.WorkerLostError` instead of hanging.
Evaluation (`eval_step`, validation, `evaluate`) runs the whole batch in every process:
the numbers of one device, with no collective.
"""

from __future__ import annotations

import atexit
import datetime
import gc
import os
import sys
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from xvae import distribute
from xvae._errors import ConfigError
from xvae._specs import ModelSpec
from xvae.backend import Batch, CompileOptions, Metrics
from xvae.losses import LossSpec
from xvae.optim import OptimizerSpec
from xvae_torch import _backend, _optim

__all__ = ["DataParallelProgram", "process_group", "TIMEOUT_ENV"]

#: Seconds a collective may wait for a peer before the step fails (default 60).
TIMEOUT_ENV = "XVAE_DIST_TIMEOUT"
#: The batch key carrying this process's loss weight N * S_r / S (never sent by the core).
WEIGHT = "_dp_weight"


#: Set when a collective failed for lack of a peer: no rank is left to meet at exit.
_peer_lost = False
#: The programs whose DDP wrapper holds the process group (dropped at exit).
_LIVE: "weakref.WeakSet[DataParallelProgram]" = weakref.WeakSet()


def _destroy() -> None:
    """At exit: meet the other ranks, then tear the process group down while Python is alive.

    DDP holds the process group, so `destroy_process_group` alone left the C++ group (its
    gloo threads and pending work) to die in the interpreter's finalization, where gloo
    (torch 2.13, CPU) sometimes aborted a rank with std::terminate ("terminate called
    without an active exception") after the work was done. Here every DDP wrapper is dropped
    first; the barrier keeps a rank that finishes first from closing its gloo pairs while a
    peer still uses them. No barrier after a lost peer or an uncaught error (nobody to meet).
    """
    try:
        if dist.is_initialized():
            if not _peer_lost and getattr(sys, "last_value", None) is None:
                dist.barrier()  # bounded by the process group's timeout if a peer left early
            for program in list(_LIVE):
                program.ddp = None
            dist.destroy_process_group()
            gc.collect()
    except Exception:  # noqa: BLE001 - at exit, a peer may be gone already: nothing to keep
        pass


def process_group(devices: distribute.Devices) -> tuple[int, int]:
    """(rank, world size) of the process group torchrun set up, initialised here if needed.

    Raises:
        ConfigError: not launched by torchrun (or another launcher setting RANK/WORLD_SIZE),
            or `devices` does not match the number of processes (naming what is available).
    """
    if not dist.is_initialized():
        if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
            raise ConfigError(f"devices={devices!r} with the torch backend runs one process per device, "
                              "started by torchrun: `torchrun --nproc-per-node=N your_script.py` "
                              "(several hosts: --nnodes, --rdzv-endpoint). This process was not "
                              "started that way: 1 device available (this process).")
        timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "60")))
        kind = "nccl" if torch.cuda.is_available() else "gloo"
        if kind == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(kind, timeout=timeout)
        atexit.register(_destroy)  # gloo's threads torn down in order, not by std::terminate at exit
    rank, world = dist.get_rank(), dist.get_world_size()
    if isinstance(devices, tuple):
        raise ConfigError(f"devices={list(devices)!r}: with the torch backend the devices are torchrun's "
                          f"processes ({world} here); pass devices='all' or devices={world}.")
    names = [f"rank {r}" for r in range(world)]
    distribute.select(devices, names, "torch")
    if devices not in ("all", world):
        raise ConfigError(f"devices={devices!r}, but torchrun started {world} processes ({', '.join(names)}); "
                          f"pass devices='all' or devices={world}, or launch with --nproc-per-node={devices}.")
    return rank, world


#: Words of the errors a collective raises when a peer is gone or silent (gloo, nccl).
_PEER_SIGNS = ("gloo", "nccl", "connection", "timed out", "timeout", "peer")


def _lost_peer(err: RuntimeError) -> bool:
    """Whether `err` comes from a collective that lost its peers (not from the model's code)."""
    return isinstance(err, dist.DistError) or any(w in str(err).lower() for w in _PEER_SIGNS)


class _Objective(torch.nn.Module):
    """The loss as a module, so DDP sees a forward() and hooks the backward's all-reduce."""

    def __init__(self, model: torch.nn.Module, loss: Any) -> None:
        super().__init__()
        self.model, self._loss = model, loss

    def forward(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self._loss(self.model, batch)


class DataParallelProgram(_backend.TorchProgram):
    """A `TorchProgram` whose training steps run on this process's shard under DDP."""

    def __init__(self, spec: ModelSpec, loss: LossSpec, optimizer: OptimizerSpec | None,
                 options: CompileOptions) -> None:
        self.rank, self.world = process_group(options.devices)
        device = (torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if torch.cuda.is_available()
                  else torch.device("cpu"))
        super().__init__(spec, loss, optimizer, options, device, compiled=False)
        self.chief = self.rank == 0
        self.ddp = DistributedDataParallel(_Objective(self.model, self._loss),
                                           device_ids=[device.index] if device.type == "cuda" else None)
        _LIVE.add(self)

    _row_axis = 0  # 1 inside train_steps: (K, B, ...) batches

    def train_step(self, batch: Batch) -> Metrics:
        self._row_axis = 0
        return super().train_step(batch)

    def train_steps(self, batches: Batch) -> Metrics:
        self._row_axis = 1
        try:
            return super().train_steps(batches)
        finally:
            self._row_axis = 0

    def _batch(self, batch: Batch, train: bool = False) -> dict[str, torch.Tensor]:
        if not train:  # evaluation: the whole batch here, one device's numbers, no collective
            return super()._batch(batch, train=train)
        axis = self._row_axis
        padded = distribute.pad_rows(batch, self.world, axis=axis)
        rows = np.shape(padded["x"])[axis] // self.world
        lo, hi = self.rank * rows, (self.rank + 1) * rows
        mask = np.broadcast_to(np.asarray(padded["mask"], np.float32), np.shape(padded["x"])[: axis + 1])
        total = mask.sum(axis=axis)  # S per step
        local_mask = np.take(mask, range(lo, hi), axis=axis)
        local = local_mask.sum(axis=axis)  # S_r per step
        weight = np.where(local > 0, self.world * local / np.maximum(total, 1e-30), 0.0).astype(np.float32)
        # A shard of padding only: any finite rows (weight 0 makes them count for nothing).
        local_mask = np.where(np.expand_dims(local, axis) > 0, local_mask, np.float32(1.0))
        shard = {key: (value if key in distribute.UNSPLIT_KEYS or np.ndim(value) <= axis
                       else np.take(value, range(lo, hi), axis=axis)) for key, value in padded.items()}
        shard["mask"] = np.ascontiguousarray(local_mask, np.float32)
        out = super()._batch(shard, train=True)
        out[WEIGHT] = torch.from_numpy(np.ascontiguousarray(weight)).to(self.device)
        return out

    def _step(self, opt: _optim.Optimizer, batch: Mapping[str, torch.Tensor], lr: float
              ) -> dict[str, torch.Tensor]:
        weight = batch[WEIGHT]
        try:
            opt.zero_grad()
            loss, metrics = self.ddp(batch)
            (loss * weight).backward()  # DDP all-reduces (averages) the gradients here
            opt.step(lr)
            names = list(metrics)
            sizes = [metrics[n].numel() for n in names]  # a vector metric ("kl_per_latent") travels flat
            shares = torch.cat([metrics[n].detach().reshape(-1) for n in names]) * (weight / self.world)
            dist.all_reduce(shares)  # the global masked means, in every process
        except RuntimeError as err:
            if not _lost_peer(err):  # a bug of ours or the model's: not a worker's death
                raise
            global _peer_lost
            _peer_lost = True
            raise distribute.WorkerLostError.from_collective(
                err, f"rank {self.rank} of {self.world}", f"{TIMEOUT_ENV} sets how long a peer is waited for."
            ) from err
        return {n: v.reshape(metrics[n].shape) for n, v in zip(names, torch.split(shares, sizes))}

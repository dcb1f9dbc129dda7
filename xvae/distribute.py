"""Data-parallel training: one switch, ``fit(..., devices=...)``, run by each framework's engine.

The core draws every epoch exactly as for one device (order, binarization, noise, lr, beta)
and hands the backend the *global* batch. A backend compiled with
``CompileOptions(devices=...)`` splits its rows over the devices with its framework's own
engine (JAX: a `jax.sharding.Mesh` with the batch on a "data" axis; PyTorch:
`DistributedDataParallel` under `torchrun`; TensorFlow: `tf.distribute.MirroredStrategy`)
and averages the gradients over the global *masked* batch, so the loss and the update are
those of one device, to float32 rounding (the sums are reduced in another order).

A global batch whose rows do not split evenly over the devices is padded with masked rows
(`pad_rows`), never dropped. Only the chief process (`is_chief`) writes checkpoints.

``devices`` takes:
    None or 1: one device (the default; nothing is distributed).
    an int n >= 2: the backend's first n devices (ConfigError naming those available when
        there are fewer).
    "all": every device the backend sees (for PyTorch: every process torchrun started).
    a list of device strings, e.g. ["cuda:0", "cuda:1"] (JAX and TensorFlow).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from xvae._errors import ConfigError, XVAEError

__all__ = ["Devices", "WorkerLostError", "normalize", "select", "padded_rows", "pad_rows", "is_chief", "UNSPLIT_KEYS"]

#: What `devices=` accepts once normalized: None (one device), a count, "all", or names.
Devices = int | str | tuple[str, ...] | None

#: Batch keys that are not split over devices (scalars per step, shared by every row).
UNSPLIT_KEYS = frozenset({"beta", "lr"})


class WorkerLostError(XVAEError, RuntimeError):
    """A process of a multi-process data-parallel run died or stopped answering: the step's
    collective failed (at the latest after the process group's timeout) instead of hanging."""

    @classmethod
    def from_collective(cls, err: BaseException, where: str, wait: str, detail: str | None = None
                        ) -> "WorkerLostError":
        """The error to raise (``from err``) when a backend's collective failed for lack of a peer.

        Args:
            err: the framework's own error (gloo, gRPC, coordination service).
            where: this process, as its framework numbers it ("rank 0 of 2").
            wait: the setting that bounds how long a silent peer is waited for.
            detail: the telling part of `err`'s message (default: its start).
        """
        said = " ".join((detail or str(err)).split())[:300]
        return cls(f"Data-parallel training lost a peer: {where} could not exchange gradients "
                   f"({type(err).__name__}: {said}). Another process died or hung; "
                   "the last checkpoint is whole: resume from it with fit(..., resume=True) after "
                   f"xvae.load. ({wait})")


def normalize(devices: Any) -> Devices:
    """`devices` in canonical form: None (one device), an int >= 2, "all", or a tuple of names.

    Raises:
        ConfigError: anything else, naming the value received and what is accepted.
    """
    if devices is None:
        return None
    if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if devices < 1:
            raise ConfigError(f"devices must be >= 1. Received: devices={devices!r}; pass 1 (one device), "
                              "an int n, 'all', or a list of device names such as ['gpu:0', 'gpu:1'].")
        return None if devices == 1 else int(devices)
    if isinstance(devices, str):
        if devices == "all":
            return "all"
        raise ConfigError(f"devices must be an int, 'all', or a list of device names. Received: "
                          f"devices={devices!r}; for one named device use device={devices!r}, "
                          f"for several devices=[{devices!r}, ...].")
    if isinstance(devices, Sequence) and devices and all(isinstance(d, str) for d in devices):
        names = tuple(devices)
        if len(set(names)) != len(names):
            raise ConfigError(f"devices lists a device twice. Received: devices={list(names)!r}")
        return names
    raise ConfigError(f"devices must be None, an int >= 1, 'all', or a non-empty list of device names. "
                      f"Received: devices={devices!r:.100}")


def select(devices: Devices, available: Sequence[str], backend: str) -> list[int]:
    """Indices into `available` (the backend's device names) that `devices` asks for.

    Raises:
        ConfigError: more devices than exist, or a name not among them; the message lists
            the available devices.
    """
    devices = normalize(devices)
    if isinstance(available, str) or not isinstance(available, Sequence) or \
            not all(isinstance(a, str) for a in available):
        raise ConfigError(f"available must be a list of device names. Received: {available!r:.100}")
    listed = ", ".join(available) or "none"
    if devices is None:
        return [0]
    if devices == "all":
        return list(range(len(available)))
    if isinstance(devices, int):
        if devices > len(available):
            raise ConfigError(f"devices={devices} asks for more devices than the {backend} backend has: "
                              f"{len(available)} available ({listed}). Pass devices={len(available)} "
                              "or devices='all'.")
        return list(range(devices))
    missing = [name for name in devices if name not in available]
    if missing:
        raise ConfigError(f"The {backend} backend has no device {', '.join(missing)}. Available: {listed}.")
    return [list(available).index(name) for name in devices]


def padded_rows(rows: int, parts: int) -> int:
    """The smallest multiple of `parts` that holds `rows` rows."""
    from xvae import _validate

    count = _validate.integer(rows)
    if count is None or count < 0:
        raise ConfigError(f"rows must be an integer >= 0. Received: rows={rows!r:.100}")
    rows = count
    parts = _validate.positive_int(parts, "parts")
    return parts * math.ceil(rows / parts)


def pad_rows(batch: Mapping[str, Any], parts: int, *, axis: int = 0) -> dict[str, NDArray[Any]]:
    """`batch` with its row axis padded (zeros; "mask" 0) to a multiple of `parts`.

    Padded rows carry mask 0, so they change neither the masked-mean loss nor its
    gradients: the global batch is the one-device batch. "beta" and "lr" are not rows.

    Args:
        batch: host arrays; rows on `axis` (0 for one step, 1 for train_steps' (K, B, ...)).
        parts: the number of devices (or processes) the rows will be split over.
        axis: the row axis.
    """
    from xvae import _validate

    if not isinstance(batch, Mapping) or "x" not in batch:
        raise ConfigError(f"pad_rows takes a batch: a mapping of key -> array with an 'x'. Received: {batch!r:.100}")
    if isinstance(axis, bool) or axis not in (0, 1):
        raise ConfigError(f"axis must be 0 (one step) or 1 (train_steps' (K, B, ...)). Received: axis={axis!r:.100}")
    parts = _validate.positive_int(parts, "parts")
    if np.ndim(batch["x"]) <= axis:
        raise ConfigError(f"batch['x'] has no row axis {axis}: shape {np.shape(batch['x'])}.")
    rows = np.shape(batch["x"])[axis]
    want = padded_rows(rows, parts)
    out: dict[str, NDArray[Any]] = {}
    for key, value in batch.items():
        a = np.asarray(value)
        lead = np.shape(batch["x"])[: axis + 1]
        if key == "mask" and a.shape != lead:  # a scalar-like mask: one value for every row
            a = np.broadcast_to(a, lead)
        if key in UNSPLIT_KEYS or a.ndim <= axis or want == rows:
            out[key] = a
            continue
        widths = [(0, 0)] * a.ndim
        widths[axis] = (0, want - rows)
        out[key] = np.pad(a, widths)
    return out


def is_chief(model: Any) -> bool:
    """True in the process that writes checkpoints, logs and plots (rank 0; always, unless
    a backend runs the model in several processes)."""
    return bool(getattr(getattr(model, "_program", None), "chief", True))

"""Device-resident training data: the training set crosses to the device once per fit.

The host loop (`xvae._training.run_epoch`) draws an epoch's arrays on the host and ships
every batch to the device. On an accelerator that host work and those copies become the
bottleneck. Here `fit` instead puts x (and y: a classifier's labels, a conditional VAE's
one-hot condition) on the device once (`Program.place_data`), and each compiled call
receives only the step's example ids, its mask and its per-step scalars (lr, beta); the
device gathers the rows and draws their dynamic binarization, noise and dropout masks
itself with `xvae.keyed`'s functions, keyed by the ORIGINAL example id
(`xvae.backend.DeviceDraws`). So the numbers are the host loop's: uniforms (and what is
drawn from them) bit for bit, normals to float32 rounding, and a different
`batch_size` or `steps_per_call` changes nothing but rounding.

The data stay on the host when the backend keeps no data on its device (the base
`Program`, e.g. the numpy reference), when `fit(device_data=0)`, or when they would take
more than that fraction of the device's free memory: then one warning says so and the
host loop streams them, never an out-of-memory crash.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from numpy.typing import NDArray

from xvae import _memory
from xvae._errors import ConfigError
from xvae.backend import DeviceDraws, Program
from xvae.layers.towers import dropout_columns

__all__ = ["DEFAULT_FRACTION", "AUTO", "EPOCH", "PER_STEP_HOOKS", "check_callbacks", "steps_per_call",
           "labels", "place", "calls", "run_epoch"]

#: `fit(device_data="auto")`, the default: on an accelerator (`Program.accelerator`) the training
#: set may take up to this fraction of the device's free memory; on a CPU it streams from the
#: host (0), because there the "device" is host memory: residency saves only the epoch's draw,
#: and XLA runs conv steps inside a compiled loop 4-30x slower than one by one (issue 11's
#: conv benchmark measured xvae at 0.21x a hand-written Flax step with resident data on a CPU).
DEFAULT_FRACTION = 0.5
#: `fit(device_data=AUTO)`: DEFAULT_FRACTION on an accelerator, 0 on a CPU.
AUTO = "auto"
#: `fit(steps_per_call=EPOCH)`: a whole epoch in one compiled call.
EPOCH = "epoch"
#: Hooks a callback would need called between steps; a one-call epoch has no such moment.
PER_STEP_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end",
                  "on_step_begin", "on_step_end")


def steps_per_call(value: Any) -> int | str:
    """fit's `steps_per_call`: a positive int, or "epoch" (one call per epoch)."""
    from xvae import _validate

    if isinstance(value, str):
        if value == EPOCH:
            return EPOCH
        raise ConfigError(f'steps_per_call must be a positive integer or "epoch" (a whole epoch per compiled '
                          f"call). Received: steps_per_call={value!r:.100}")
    return _validate.positive_int(value, "steps_per_call")


def fraction(value: Any) -> float | None:
    """fit's `device_data`: a number in [0, 1] (0: keep the data on the host), or None for "auto"."""
    from xvae._numbers import real

    if isinstance(value, str) and value == AUTO:
        return None
    number = None if isinstance(value, bool) else real(value)
    if number is None or not 0.0 <= number <= 1.0:
        raise ConfigError("device_data must be a number in [0, 1]: the largest fraction of the device's free "
                          "memory the training set may take to live there (0 streams it from the host), or "
                          '"auto" (0.5 on an accelerator, 0 on a CPU). '
                          f"Received: device_data={value!r:.100}")
    return float(number)


def keyed_seed(model: Any) -> int:
    """The seed of the model's keyed draws (`xvae.keyed`): `model.seed`."""
    return int(model.seed)


def order(model: Any, epoch: int, n: int, shuffle: bool) -> NDArray[np.int64]:
    """The epoch's order of example ids, the host loop's: ``keyed.permutation`` (or 0..n-1)."""
    from xvae import keyed

    if not shuffle:
        return np.arange(n, dtype=np.int64)
    return keyed.permutation(keyed_seed(model), epoch, n)


def check_callbacks(callbacks: Sequence[Any], k: int | str) -> None:
    """ConfigError naming the first callback with a per-step hook when a call is a whole epoch."""
    if k != EPOCH:
        return
    for i, cb in enumerate(callbacks):
        hooks = [name for name in PER_STEP_HOOKS if callable(getattr(cb, name, None))]
        if hooks:
            raise ConfigError(
                f'steps_per_call="epoch" runs a whole epoch in one compiled call, but callbacks[{i}] '
                f"({type(cb).__qualname__}) defines {', '.join(hooks)}, which needs control between steps. "
                "Pass steps_per_call=1 (or an int K: the hook's moments are then every K steps), or drop "
                f"the callback. Received: callbacks[{i}]={cb!r:.200}")


def draws(binarize: str | None, noise: Any, dropout_towers: Any) -> DeviceDraws:
    """The `DeviceDraws` of a fit: dynamic binarization, the noise shape, the Dropout columns."""
    shape = None if noise is None else ((int(noise),) if np.ndim(noise) == 0 else tuple(int(n) for n in noise))
    columns = () if dropout_towers is None else dropout_columns(dropout_towers)
    return DeviceDraws(binarize=binarize == "dynamic", noise=shape, dropout=columns)


def labels(y: NDArray[Any], kind: str, label_dtype: Any) -> NDArray[Any]:
    """The y a backend keeps on its device, as the host loop's batches carry it (`Program.place_data`).

    A conditional VAE's condition (kind "vae"): the core's one-hot float32 (n, conditions),
    as it is (each step gathers its rows like x's). A classifier's labels: `label_dtype`
    (n,) (float32 0/1 or int32 class ids, the loss's).
    """
    if kind == "vae":
        return np.ascontiguousarray(y, np.float32)
    return np.ascontiguousarray(np.asarray(y).reshape(len(y)), label_dtype)


def place(program: Program, x: NDArray[np.float32], y: NDArray[Any] | None, fraction: float | None) -> Any | None:
    """The program's handle of (x, y) on its device, or None (with one warning if too large).

    `fraction` of the device's free memory (`Program.device_memory`; host memory for a
    CPU device, `xvae._memory.available_bytes`) bounds the bytes the data may take;
    None ("auto"): DEFAULT_FRACTION on an accelerator, else the host stream, silently.
    """
    if fraction is None:
        fraction = DEFAULT_FRACTION if program.accelerator() else 0.0
    if not fraction or type(program).place_data is Program.place_data:
        return None
    nbytes = x.nbytes + (0 if y is None else np.size(y) * 4)  # 4-byte labels, or a CVAE's one-hot float32
    free = program.device_memory()
    if free is None:
        free = _memory.available_bytes()
    if free is not None and nbytes > fraction * free:
        warnings.warn(f"The training set ({_memory.human(nbytes)}) is more than device_data={fraction} of the "
                      f"device's free memory ({_memory.human(free)}): fit streams it from the host, batch "
                      "by batch (the same numbers, more host work). Pass a larger device_data= to keep it "
                      "on the device, or device_data=0 to silence this.", stacklevel=5)
        return None
    try:
        return program.place_data(x, y)
    except MemoryError as err:
        warnings.warn(f"The device refused the training set ({_memory.human(nbytes)}: {err}): fit streams it "
                      "from the host, batch by batch (the same numbers, more host work). Pass device_data=0 "
                      "to silence this.", stacklevel=5)
        return None


def calls(order: NDArray[Any], batch_size: int, k: int | str
          ) -> Iterator[tuple[NDArray[np.int32], NDArray[np.float32]]]:
    """The epoch's compiled calls: (ids int32 (S, B), mask float32 (S, B)).

    Steps take `order` in batches of `batch_size`; the last partial batch is padded with
    its first id and masked (one step shape). `k`: groups of K steps, the rest one by one
    (two call shapes); "epoch": one call of every step.
    """
    n, bs = len(order), batch_size
    steps = math.ceil(n / bs)
    ids = np.empty(steps * bs, np.int32)
    ids[:n] = order
    ids[n:] = order[(steps - 1) * bs]
    mask = np.zeros(steps * bs, np.float32)
    mask[:n] = 1.0
    ids, mask = ids.reshape(steps, bs), mask.reshape(steps, bs)
    group = steps if k == EPOCH else int(k)
    cut = steps // group * group
    for lo in range(0, cut, group):
        yield ids[lo:lo + group], mask[lo:lo + group]
    for s in range(cut, steps):
        yield ids[s:s + 1], mask[s:s + 1]


def run_epoch(program: Program, data: Any, order: NDArray[Any], *, batch_size: int, k: int | str,
              lr: NDArray[np.float32], beta: NDArray[np.float32] | None, seed: int, epoch: int,
              draws: DeviceDraws, first_step: int, last_finite: float | None = None,
              on_progress: Callable[[int], None] | None = None,
              on_means: Callable[[dict[str, float]], None] | None = None) -> tuple[dict[str, float], int]:
    """Train one epoch on resident data; returns (weighted epoch means, steps taken).

    As `xvae._training.run_epoch` (divergence named at its step, progress per call, running
    means per host sync), but each call ships only ids, mask, lr and beta.
    """
    from xvae._training import _Accumulator

    acc = _Accumulator(program, epoch, first_step, last_finite=last_finite)
    acc.on_means = on_means
    step = 0
    for ids, mask in calls(order, batch_size, k):
        s = len(ids)
        metrics = program.train_resident(data, ids, mask, lr[step:step + s],
                                         None if beta is None else beta[step:step + s],
                                         seed=seed, epoch=epoch, draws=draws)
        acc.add(metrics, mask.sum(axis=1))
        step += s
        if on_progress is not None:
            on_progress(s)
    logs = acc.means()
    return logs, acc.step - first_step

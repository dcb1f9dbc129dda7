"""The backend-neutral training loop. Backends only compile steps; the loop lives here, once.

Random draws are keyed, not streamed (DESIGN §1, docs/randomness.md): epoch e's
permutation, dynamic binarization, reparameterisation noise and dropout masks are pure
functions of (model.seed, e, purpose, example id, element) (`xvae.keyed`), the example id
being the row's index in the training set. So the arrays depend on nothing else: not on
`batch_size`, `steps_per_call` or the devices, and a resumed run draws what an unbroken
one would have.

Batches are views of the epoch arrays (no per-step copies); K consecutive batches are one
reshape. The last partial batch is padded to the batch size and masked, so a run compiles
one step shape and the masked mean equals the unpadded mean.

The learning rate and beta are per-step inputs, evaluated here for each of an epoch's steps
(float64 schedules, rounded once to float32) from `model.optimizer`, read at the start of
every epoch: a callback that assigns ``model.optimizer = dataclasses.replace(...,
lr=...)`` in `on_epoch_end` changes the next epoch's rate, with the optimizer's state kept
and nothing recompiled. Schedules are checked at every step a fit will take before the
first one runs, so a bad one fails before any work (or checkpoint) is done.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
from numpy.typing import NDArray

from xvae import _device_data, _memory, datasets
from xvae._errors import ConfigError, TrainingDivergedError
from xvae._progress import Progress, resolve_verbose
from xvae.backend import Batch, Program
from xvae.history import History
from xvae.losses import VECTOR_METRICS
from xvae.schedules import Schedule

if TYPE_CHECKING:
    from xvae.models import Model

__all__ = ["EpochData", "draw_epoch", "batches", "run_epoch", "evaluate_batches", "schedule_values",
           "ELBO_BETA"]

#: Calls between host syncs: metrics stay on the device in between, so steps queue up.
SYNC_EVERY = 32
#: The key of validation draws (noise, dynamic binarization): fixed, so every epoch's
#: validation figures see the same noise (keyed: seed 0, epoch 0, ids = row indices).
VALIDATION_SEED = 0
#: The KL weight of the negative ELBO: what `evaluate` and "val_loss" report, whatever the
#: training beta (the objective with another beta is not a bound on anything).
ELBO_BETA = 1.0


def schedule_values(schedule: Any, field: str, first_step: int, steps: int) -> NDArray[np.float32]:
    """float32 values of `schedule` (a Schedule, or a number) at steps first_step, ..., +steps-1.

    Raises:
        ConfigError: a value is NaN, infinite or negative (naming `field` and the first bad
            step), or the float32 rounding of a finite value overflows.
    """
    steps_ = np.arange(first_step, first_step + steps, dtype=np.int64)
    if isinstance(schedule, Schedule):
        values = np.asarray(schedule(steps_), np.float64).reshape(steps)
    else:
        values = np.full(steps, float(schedule))
    with np.errstate(over="ignore", invalid="ignore"):
        single = values.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(single) | ~(values >= 0))
    if bad.size:
        i = int(bad[0])
        raise ConfigError(f"{field} is {float(values[i])} at step {first_step + i} ({schedule!r:.200}); it must "
                          f"be a finite number >= 0 (in float32) at every step of the coming training "
                          f"(steps {first_step} to {first_step + steps - 1}). No step ran with it: fix the "
                          "schedule, or train fewer epochs.")
    return single


@dataclass
class EpochData:
    """One epoch's arrays, already permuted, binarized and with noise drawn."""

    x: NDArray[np.float32]
    y: NDArray[Any] | None
    noise: NDArray[np.float32] | None
    dropout: NDArray[np.float32] | None = None

    @property
    def n(self) -> int:
        return len(self.x)


def gather_rows(x: NDArray[Any], order: NDArray[Any], scratch: dict[str, Any] | None) -> NDArray[Any]:
    """x[order], written into the array kept in `scratch` (see `draw_epoch`) when it fits.

    np.take: the same gather as x[order], measured 10-45% faster; mode="clip" is what lets
    it write `out` directly ("raise" buffers a copy), and a permutation never clips.
    """
    kept = None if scratch is None else scratch.get("x")
    if kept is not None and kept.shape == x.shape and kept.dtype == x.dtype:
        return np.take(x, order, axis=0, out=kept, mode="clip")
    x = np.take(x, order, axis=0)
    if scratch is not None:
        scratch["x"] = x
    return x


def draw_epoch(x: NDArray[np.float32], y: NDArray[Any] | None, *, seed: int | None, epoch: int,
               shuffle: bool, binarize: str | None, latents: Any,
               scratch: dict[str, Any] | None = None, dropout: Any = None) -> EpochData:
    """One epoch's arrays: order, dynamic binarization, noise and dropout masks, all keyed.

    Every draw is a pure function of (seed, epoch, purpose, example id, element)
    (`xvae.keyed`), the example id being the row's index in `x` (not its position in the
    epoch): (1) the order is ``keyed.permutation(seed, epoch, n)`` if `shuffle`; (2) dynamic
    binarization ``keyed.binarize`` (purpose BINARIZE); (3) the noise ``keyed.normal(seed,
    epoch, NOISE, ids, prod(latents))``, float32 (n, latents) or (n, k, latents) for the
    IWAE bound (sample j's latent l is element j * latents + l); (4) with `dropout` (the
    model's towers, `xvae.naming.towers`) the masks from ``keyed.uniform(seed, epoch,
    DROPOUT, ids, units)`` (`xvae.layers.towers.draw_dropout`). `seed` None: no random
    draw at all (no shuffle, noise or masks; a classifier's evaluation).

    `scratch`: a dict the caller keeps across epochs. The first epoch's permuted x is kept
    in it and later epochs gather into that array instead of a fresh one, so the caller
    must be done with the previous epoch's batches (`run_epoch` ends with a host sync,
    after which no queued step reads them). It saves a multi-MB allocation per epoch and
    its page faults (MNIST test set: 7.7 vs 12 ms typical, and none of the 100-200 ms
    outliers measured with fresh arrays). Dynamic binarization then writes in place.
    """
    from xvae import keyed

    shuffled = bool(shuffle and seed is not None)
    copies = shuffled + (binarize is not None)  # the permuted copy; the binarized one
    # noise per example: (latents,), or (k, latents) for the IWAE bound: k * latents elements per example
    noise_shape = () if latents is None else (
        (latents,) if isinstance(latents, (int, np.integer)) else tuple(latents))
    _memory.require(x.size * 4 * copies + len(x) * 4 * int(np.prod(noise_shape or (0,))) + 8 * len(x) * shuffle,
                    f"an epoch of {len(x):,} rows (order, binarization, noise)", "pass fewer rows")
    order = keyed.permutation(seed, epoch, len(x)) if shuffled else None
    ids = order if order is not None else np.arange(len(x), dtype=np.int64)
    owned = False  # x is an array of ours (not the caller's): binarization may overwrite it
    if order is not None:
        x = gather_rows(x, order, scratch)
        owned = True
        y = None if y is None else np.take(y, order, axis=0)
    if binarize == "dynamic":
        if seed is None:
            raise ConfigError('binarize="dynamic" needs a seed (it keys the Bernoulli draws). Received: seed=None')
        x = keyed.binarize(x, seed, epoch, ids, out=x if owned else None)
    elif binarize == "static":
        x = datasets.binarize(x, "static")
    noise = None
    if latents is not None and seed is not None:
        size = int(np.prod(noise_shape))
        noise = keyed.normal(seed, epoch, keyed.NOISE, ids, size).reshape(len(x), *noise_shape)
    masks = None
    if dropout is not None and seed is not None:
        from xvae.layers.towers import draw_dropout

        masks = draw_dropout(lambda units: keyed.uniform(seed, epoch, keyed.DROPOUT, ids, units), dropout)
    return EpochData(x, y, noise, masks)


def _pad(a: NDArray[Any], size: int) -> NDArray[Any]:
    out = np.zeros((size, *a.shape[1:]), dtype=a.dtype)
    out[: len(a)] = a
    return out


def batches(data: EpochData, batch_size: int, steps_per_call: int, beta: Any = None, lr: Any = None
            ) -> Iterator[tuple[Batch, NDArray[np.float32]]]:
    """Yield (batch, rows): stacked groups of K full batches, then single ones, then the padded tail.

    `rows` holds the real rows per step (shape (K,) for a group, () for a single step).
    `beta` and `lr`: None (no such key), a number for every step, or float32 values per
    step of the epoch, shape (steps,): a group gets its K values, a single step its own.
    """
    bs, k, n = batch_size, steps_per_call, data.n
    full = n // bs
    arrays = {"x": data.x, "y": data.y, "noise": data.noise, "dropout": data.dropout}
    arrays = {name: a for name, a in arrays.items() if a is not None}
    per_step = {name: (np.float32(v) if np.ndim(v) == 0 else np.asarray(v, np.float32))
                for name, v in (("beta", beta), ("lr", lr)) if v is not None}

    def extra(lo: int, hi: int | None = None) -> dict[str, Any]:  # step lo, or steps lo..hi-1
        return {name: (v if v.ndim == 0 else (v[lo] if hi is None else v[lo:hi])) for name, v in per_step.items()}

    ones = np.ones(bs, np.float32)
    groups = full // k if k > 1 else 0
    for g in range(groups):
        lo, hi = g * k * bs, (g + 1) * k * bs
        batch = {name: a[lo:hi].reshape(k, bs, *a.shape[1:]) for name, a in arrays.items()}
        batch["mask"] = np.broadcast_to(ones, (k, bs))
        yield {**batch, **extra(g * k, (g + 1) * k)}, np.full(k, bs, np.float32)
    for b in range(groups * k, full):
        batch = {name: a[b * bs:(b + 1) * bs] for name, a in arrays.items()}
        yield {**batch, "mask": ones, **extra(b)}, np.float32(bs)
    tail = n - full * bs
    if tail:
        batch = {name: _pad(a[full * bs:], bs) for name, a in arrays.items()}
        yield {**batch, "mask": _pad(ones[:tail], bs), **extra(full)}, np.float32(tail)


class _Accumulator:
    """Epoch means weighted by real rows; finds the exact step of a non-finite loss."""

    def __init__(self, program: Program, epoch: int, first_step: int, *, check: bool = True,
                 last_finite: float | None = None) -> None:
        self.program, self.epoch, self.step, self.check = program, epoch, first_step, check
        self.pending: list[tuple[Any, NDArray[np.float32]]] = []
        self.sums: dict[str, float] = {}
        self.rows = 0.0
        self.last_finite = last_finite
        self.on_means: Callable[[dict[str, float]], None] | None = None

    def add(self, metrics: Any, rows: NDArray[np.float32]) -> None:
        self.pending.append((metrics, rows))
        if len(self.pending) >= SYNC_EVERY:
            self.flush()

    def flush(self) -> None:
        """One host sync for all pending steps, then vectorised checks and weighted sums."""
        if not self.pending:
            return
        merged = {f"{i}/{name}": value for i, (metrics, _) in enumerate(self.pending)
                  for name, value in metrics.items()}
        host = self.program.to_numpy(merged)
        names = list(self.pending[0][0])
        # (steps, d) per name: d = 1 for a scalar metric, the vector's length otherwise
        per_step = {n: np.concatenate([np.reshape(host[f"{i}/{n}"], (np.size(r), -1))
                                       for i, (_, r) in enumerate(self.pending)]).astype(np.float64)
                    for n in names}
        rows = np.concatenate([np.atleast_1d(r) for _, r in self.pending]).astype(np.float64)
        losses = per_step["loss"][:, 0]
        bad = np.flatnonzero(~np.isfinite(losses)) if self.check else np.empty(0, int)
        if bad.size:
            step = self.step + int(bad[0]) + 1
            if bad[0] > 0:
                self.last_finite = float(losses[bad[0] - 1])
            raise TrainingDivergedError(
                f"Training diverged: the loss became {losses[bad[0]]} at step {step} "
                f"(epoch {self.epoch}); the last finite loss was {self.last_finite}. "
                "Lower the learning rate, check the inputs' scale, or use a KL warm-up (beta=).",
                step=step, epoch=self.epoch, last_finite_loss=self.last_finite)
        self.last_finite = float(losses[-1])
        for name, values in per_step.items():
            total = rows @ values
            self.sums[name] = self.sums.get(name, 0.0) + (total if name in VECTOR_METRICS else float(total[0]))
        self.rows += float(rows.sum())
        self.step += len(rows)
        self.pending.clear()
        if self.on_means is not None:
            self.on_means(self.means(vectors=False))

    def means(self, vectors: bool = True) -> dict[str, Any]:
        """The weighted means so far: floats, and (`vectors`) float64 arrays for the vector
        metrics (`xvae.losses.VECTOR_METRICS`)."""
        self.flush()
        return {name: total / self.rows for name, total in self.sums.items()
                if vectors or name not in VECTOR_METRICS}


def run_epoch(program: Program, data: EpochData, *, batch_size: int, steps_per_call: int,
              beta: Any, epoch: int, first_step: int, last_finite: float | None = None,
              on_progress: Callable[[int], None] | None = None, lr: Any = None,
              on_means: Callable[[dict[str, float]], None] | None = None) -> tuple[dict[str, float], int]:
    """Train one epoch; returns (weighted epoch means, steps taken).

    `beta` and `lr` as in `batches` (per-step float32 arrays from `fit`).
    `on_progress(steps)` is called after each call (no sync); `on_means(running means)`
    after each host sync, with this epoch's means so far. Raises TrainingDivergedError at
    the first non-finite loss, naming its step; the last finite loss may come from the
    previous epoch (`last_finite`).
    """
    acc = _Accumulator(program, epoch, first_step, last_finite=last_finite)
    acc.on_means = on_means
    for batch, rows in batches(data, batch_size, steps_per_call, beta, lr):
        if np.ndim(rows):
            acc.add(program.train_steps(batch), rows)
        else:
            acc.add(program.train_step(batch), rows)
        if on_progress is not None:
            on_progress(int(np.size(rows)))
    logs = acc.means()
    return logs, acc.step - first_step


def evaluate_batches(program: Program, data: EpochData, batch_size: int, beta: float | None) -> dict[str, float]:
    """Weighted means of eval_step over all batches (no update; NaN is reported, not raised)."""
    acc = _Accumulator(program, 0, 0, check=False)
    for batch, rows in batches(data, batch_size, 1, beta):
        acc.add(program.eval_step(batch), rows)
    return acc.means(vectors=False)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def fit(model: "Model", x: Any, y: Any = None, *, epochs: int, batch_size: int, optimizer: Any,
        seed: int | None, shuffle: bool, binarize: str | None, validation_data: Any,
        validation_split: float = 0.0, verbose: Any = "auto", progress: bool | None = None,
        steps_per_call: int | str, beta: float | Callable[[int], float] | Schedule | None,
        callbacks: Sequence[Any], resume: bool, device_data: float | str = _device_data.AUTO) -> History:
    """The loop behind `Model.fit` (see there for the arguments)."""
    from xvae import _validate as v

    x, y = model._check_xy(x, y)
    val: Any = None
    split = v.fraction(validation_split, "validation_split")
    if split and validation_data is not None:
        raise ConfigError("Pass validation_data= or validation_split=, not both. "
                          f"Received: validation_split={validation_split!r} and validation_data.")
    if split:  # Keras: the last fraction of x (and y), taken before any shuffling
        cut = int(math.floor(len(x) * (1.0 - split)))
        if cut == 0 or cut == len(x):
            raise ConfigError(f"validation_split={split} of {len(x)} examples leaves "
                              f"{cut} to train on and {len(x) - cut} to validate on; both need at least one.")
        val = (x[cut:], None if y is None else y[cut:])
        x, y = x[:cut], None if y is None else y[:cut]
    resume = v.flag(resume, "resume")
    shuffle = v.flag(shuffle, "shuffle")
    level = resolve_verbose(verbose, progress)
    seed = v.seed(seed)
    callbacks = v.callbacks(callbacks)
    epochs = v.positive_int(epochs, "epochs")
    requested = v.positive_int(batch_size, "batch_size")
    bs = min(requested, len(x))
    if requested > len(x):
        warnings.warn(f"batch_size={requested} is larger than the data ({len(x)} examples); "
                      f"using batch_size={len(x)}.", stacklevel=4)
    k = _device_data.steps_per_call(steps_per_call)
    _device_data.check_callbacks(callbacks, k)
    device_data = _device_data.fraction(device_data)
    v.choice(binarize, "binarize", (None, "static", "dynamic"))
    if validation_data is not None:
        if isinstance(validation_data, tuple):
            if len(validation_data) != 2:
                raise ConfigError("validation_data must be x_val, or a pair (x_val, y_val). "
                                  f"Received a tuple of length {len(validation_data)}.")
            vx, vy = validation_data
        else:
            vx, vy = validation_data, None
        val = model._check_xy(vx, vy, name="validation_data")
    first_epoch = model.epoch
    last_epoch = epochs if resume else model.epoch + epochs
    if resume and epochs < model.epoch:
        raise ConfigError(f"With resume=True, epochs is the total ({model.epoch} already done). "
                          f"Received: epochs={epochs}; pass epochs > {model.epoch} to train more.")
    per_epoch = steps_per_epoch(len(x), bs)
    # Every schedule at every step this fit takes, checked before the model changes at all
    # (and before ModelState: bad arguments never touch the backend).
    optimizer = model._resolve_optimizer(optimizer)
    _check_schedules(optimizer, beta, model.step, (last_epoch - first_epoch) * per_epoch)
    saved = ModelState(model)
    try:
        return _train(model, x, y, val, epochs=epochs, bs=bs, k=k, optimizer=optimizer, seed=seed,
                      shuffle=shuffle, binarize=binarize, level=level, beta=beta,
                      callbacks=callbacks, resume=resume, device_data=device_data)
    except BaseException as err:  # divergence, a callback's error, KeyboardInterrupt: never half-updated
        saved.restore(model)
        err.add_note(f"xvae rolled the model back to its state before this fit call (epoch {saved.epoch}, "
                     f"step {saved.step}: weights, optimizer state, seed and counters); "
                     "it can be trained or evaluated again as it was.")
        raise


class ModelState:
    """A model's training state before a fit call, to put back if the call fails.

    One `get_state()` per fit call (host copies of weights and optimizer state), nothing per
    step. The program object is kept too: `_prepare_training` may compile a new one for a
    new optimizer, and the old one is what the saved optimizer state belongs to.
    """

    def __init__(self, model: "Model") -> None:
        self.attributes = {name: getattr(model, name) for name in ("optimizer", "_compiled_optimizer", "_compiled_loss")}
        self.program = model._program
        self.weights, self.opt_state = model._program.get_state()
        self.seed, self.step, self.epoch = model.seed, model.step, model.epoch

    def restore(self, model: "Model") -> None:
        self.program.set_state(self.weights, self.opt_state or None)
        model._program = self.program
        for name, value in self.attributes.items():
            setattr(model, name, value)
        model.seed, model.step, model.epoch = self.seed, self.step, self.epoch
        model.stop_training = False


def _train(model: "Model", x: NDArray[np.float32], y: NDArray[Any] | None, val: Any, *, epochs: int, bs: int,
           k: int | str, optimizer: Any, seed: int | None, shuffle: bool, binarize: str | None, level: int,
           beta: Any, callbacks: list[Any], resume: bool,
           device_data: float | None = None) -> History:
    """fit after validation: compiles, trains and calls the callbacks; may leave the model half-updated."""
    model._prepare_training(optimizer)
    if seed is not None:
        model.seed = seed  # the keyed draws of the coming epochs (model.epoch + 1, ...) use it
    first_epoch = model.epoch
    last_epoch = epochs if resume else model.epoch + epochs
    per_epoch = steps_per_epoch(len(x), bs)
    history = History(params={"epochs": last_epoch, "initial_epoch": first_epoch,
                              "batch_size": bs, "steps": steps_per_epoch(len(x), bs),
                              "backend": model.backend})
    model.stop_training = False
    latents = getattr(model, "_noise_shape", model._latents)  # (k, latents) for loss="iwae"
    last_finite: float | None = None
    scratch: dict[str, Any] = {}  # the permuted epoch, rewritten each epoch (draw_epoch)
    host_k = len(x) // bs if k == _device_data.EPOCH else k  # the host loop: every full batch, then the tail
    draws = _device_data.draws(binarize, latents, model._dropout_towers)
    resident = _Resident(x, y, binarize, device_data)
    resident.on(model._program)  # the data cross to the device before the first epoch begins
    for cb in callbacks:
        cb.on_train_begin(model)
    report = Progress(level, last_epoch, steps_per_epoch(len(x), bs))
    try:
        for epoch in range(first_epoch + 1, last_epoch + 1):
            for cb in callbacks:
                cb.on_epoch_begin(model, epoch)  # before the optimizer is read: a new lr applies now
            if model.optimizer is not model._compiled_optimizer:  # a callback replaced it
                changed = model._resolve_optimizer(model.optimizer)
                _check_schedules(changed, None, model.step, (last_epoch - epoch + 1) * per_epoch)
                model._prepare_training(changed)
            lrs = schedule_values(model.optimizer.lr, f"{type(model.optimizer).__name__}.lr",  # type: ignore[union-attr]
                                  model.step, per_epoch)
            betas = model._betas(beta, epoch, model.step, per_epoch)
            handle = resident.on(model._program)
            progress = {"on_progress": report.advance if report.live else None,
                        "on_means": report.running if report.live else None}
            if handle is not None:
                order = _device_data.order(model, epoch, len(x), shuffle)
                report.epoch_begin(epoch)
                logs, steps = _device_data.run_epoch(
                    model._program, handle, order, batch_size=bs, k=k, lr=lrs, beta=betas,
                    seed=_device_data.keyed_seed(model), epoch=epoch, draws=draws, first_step=model.step,
                    last_finite=last_finite, **progress)
            else:
                data = draw_epoch(x, y, seed=model.seed, epoch=epoch, shuffle=shuffle, binarize=binarize, latents=latents,
                                  scratch=scratch, dropout=model._dropout_towers)
                report.epoch_begin(epoch)
                logs, steps = run_epoch(model._program, data, batch_size=bs, steps_per_call=host_k,
                                        beta=betas, lr=lrs, epoch=epoch, first_step=model.step,
                                        last_finite=last_finite, **progress)
            last_finite = logs["loss"]
            logs["lr"] = float(lrs[-1])  # the rate of the epoch's last step
            model.step += steps
            model.epoch = epoch
            if val is not None:
                vdata = draw_epoch(val[0], val[1], seed=VALIDATION_SEED, epoch=0, shuffle=False,
                                   binarize=binarize, latents=model._latents)
                # val_loss is the negative ELBO (beta = 1), as `evaluate` reports it;
                # val_objective is what training minimises, with the epoch's last beta.
                vlogs = evaluate_batches(model._inference_program(), vdata, bs, None if betas is None else ELBO_BETA)
                logs.update({f"val_{k_}": v_ for k_, v_ in vlogs.items()})
                if betas is not None:
                    logs["val_objective"] = vlogs["reconstruction"] + float(betas[-1]) * vlogs["kl"]
                if latents != model._latents:  # loss="iwae": the bound, on its own (n, k, latents) noise
                    idata = draw_epoch(val[0], val[1], seed=VALIDATION_SEED, epoch=0, shuffle=False,
                                       binarize=binarize, latents=latents)
                    logs["val_objective"] = evaluate_batches(model._program, idata, bs, float(betas[-1]))["loss"]
            vectors = {name: logs.pop(name) for name in VECTOR_METRICS & set(logs)}  # "kl_per_latent"
            history.append(epoch, logs, vectors)
            report.epoch_end(epoch, logs)
            for cb in callbacks:
                cb.on_epoch_end(model, epoch, logs)
            if model.stop_training:
                break
    finally:
        report.close()
    for cb in callbacks:
        cb.on_train_end(model)
    return history


class _Resident:
    """The training set on the current program's device: placed at the first epoch, again
    if a callback's new optimizer brought a new program; None on the host path."""

    def __init__(self, x: NDArray[np.float32], y: NDArray[Any] | None, binarize: str | None,
                 fraction: float | None) -> None:  # None: "auto" (`_device_data.place`)
        self.x, self.y, self.binarize, self.fraction = x, y, binarize, fraction
        self.program: Program | None = None
        self.handle: Any = None

    def on(self, program: Program) -> Any:
        if self.fraction is not None and not self.fraction:
            return None
        if program is not self.program:
            x = datasets.binarize(self.x, "static") if self.binarize == "static" else self.x
            self.program, self.handle = program, None
            self.handle = _device_data.place(program, x, self.y, self.fraction)
            if self.handle is None:
                self.fraction = 0.0  # streamed from now on: one warning per fit, not one per epoch
        return self.handle


def _check_schedules(optimizer: Any, beta: Any, first_step: int, steps: int) -> None:
    """ConfigError (naming the field and the step) if the optimizer's lr or a beta schedule
    is NaN, infinite or negative at any of the `steps` steps from `first_step`."""
    if steps <= 0:
        return
    schedule_values(optimizer.lr, f"{type(optimizer).__name__}.lr", first_step, steps)
    if isinstance(beta, Schedule):
        schedule_values(beta, "beta", first_step, steps)

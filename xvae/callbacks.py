"""Training callbacks: early stopping, checkpoints, loggers, and a hook for your own.

A callback sees the model and each epoch's logs (the History row: "loss", "kl",
"val_loss", ...). Setting ``model.stop_training = True`` ends `fit` after the current
epoch. Subclass `Callback` and override any hook, or wrap functions in `LambdaCallback`.

Examples:
    >>> import numpy as np, xvae
    >>> seen = []
    >>> cb = xvae.callbacks.LambdaCallback(on_epoch_end=lambda model, epoch, logs: seen.append(epoch))
    >>> clf = xvae.Classifier(xvae.ClassifierSpec(input_dim=2), backend="numpy")
    >>> _ = clf.fit(np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1]), epochs=2, batch_size=4, callbacks=[cb],
    ...             progress=False)
    >>> seen
    [1, 2]
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from xvae import _validate
from xvae._errors import ConfigError, DataError, TrainingDivergedError
from xvae._numbers import integer, real

__all__ = ["CSVLogger", "Callback", "EarlyStopping", "JSONLogger", "LambdaCallback", "LearningRateScheduler",
           "ModelCheckpoint", "ReduceLROnPlateau"]

Logs = dict[str, float]


def _count(owner: str, name: str, value: Any, low: int) -> int:
    number = integer(value)
    if number is None or number < low:
        raise ConfigError(f"{owner}.{name} must be an integer >= {low}. Received: {name}={value!r:.100}")
    return number


_NO_LOGS: Any = object()


def _hook_args(owner: str, model: Any, epoch: Any = 0, logs: Any = _NO_LOGS, *, uses: tuple[str, ...] = ()) -> None:
    """The arguments fit passes to a hook, checked when a hook is called by hand with others.

    `uses`: the model methods the hook calls (a model is duck-typed: anything with them).
    """
    missing = [name for name in uses if not callable(getattr(model, name, None))]
    if missing:
        raise ConfigError(f"{owner}: model must be an xvae VAE or Classifier (it calls model.{missing[0]}()). "
                          f"Received: {model!r:.100}")
    _count(owner, "epoch", epoch, 0)
    if logs is _NO_LOGS:
        return
    if not isinstance(logs, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float, np.integer, np.floating)) for k, v in logs.items()):
        raise ConfigError(f"{owner}: logs must be a dict of metric name -> number, as fit passes. "
                          f"Received: {logs!r:.100}")
    try:
        [float(v) for v in logs.values()]
    except OverflowError:
        raise ConfigError(f"{owner}: logs hold a number beyond float64. Received: {logs!r:.100}") from None


def _file_error(owner: str, path: Path, err: OSError) -> DataError:
    return DataError(f"{owner} cannot write {path}: {err.strerror or err} ({type(err).__name__}). "
                     "Choose a writable file path.", path=str(path))


class Callback:
    """Base class: override any of the hooks. All hooks do nothing by default."""

    def on_train_begin(self, model: Any) -> None:
        """Called once when fit starts, before the first epoch."""

    def on_epoch_begin(self, model: Any, epoch: int) -> None:
        """Called before each epoch (1-based `epoch`), before fit reads `model.optimizer`:
        a rate assigned here (``model.optimizer = dataclasses.replace(model.optimizer, lr=...)``)
        applies to this epoch."""

    def on_epoch_end(self, model: Any, epoch: int, logs: Logs) -> None:
        """Called after each epoch (1-based `epoch`, counting across resumed fits) with its metrics."""

    def on_train_end(self, model: Any) -> None:
        """Called once when fit ends normally (not when it raises, e.g. on divergence)."""


class _Monitor:
    """Tracks the best value of one metric: the comparison EarlyStopping and ModelCheckpoint share."""

    def __init__(self, owner: str, monitor: Any, mode: Any, min_delta: Any = 0.0) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise ConfigError(f"{owner}.monitor must be a metric name such as 'val_loss'. Received: {monitor!r:.100}")
        if not isinstance(mode, str) or mode not in ("min", "max", "auto"):
            raise ConfigError(f"{owner}.mode must be 'min', 'max' or 'auto'. Received: mode={mode!r:.100}")
        delta = real(min_delta)
        if delta is None or not 0 <= delta < math.inf:
            raise ConfigError(f"{owner}.min_delta must be a finite number >= 0. Received: min_delta={min_delta!r:.100}")
        self.owner, self.monitor, self.min_delta = owner, monitor, delta
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.best: float | None = None
        self.best_epoch = 0

    def reset(self) -> None:
        self.best, self.best_epoch = None, 0

    def update(self, epoch: int, logs: Logs) -> bool:
        """True (and the best is updated) if this epoch's value improves on the best."""
        if self.monitor not in logs:
            raise ConfigError(f"{self.owner} monitors {self.monitor!r}, which fit does not report. "
                              f"Available: {', '.join(logs)} (val_* needs validation_data=).")
        value = float(logs[self.monitor])
        if not math.isfinite(value):
            return False
        if self.best is not None:
            if self.mode == "min" and not value < self.best - self.min_delta:
                return False
            if self.mode == "max" and not value > self.best + self.min_delta:
                return False
        self.best, self.best_epoch = value, epoch
        return True


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs.

    Args:
        monitor: a History key, e.g. "val_loss" (needs validation_data=) or "loss".
        patience: epochs without improvement before stopping (0: stop at the first).
        min_delta: the smallest change that counts as an improvement.
        mode: "min", "max", or "auto" ("max" for accuracy-like names, else "min").
        restore_best_weights: when fit ends (stopped early or not), put back the weights of
            the best epoch, as Keras 3 does. The optimizer state and epoch count are kept.

    After fit: `best` (the best value), `best_epoch`, and `stopped_epoch` (0 if it never stopped).
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = False) -> None:
        self._monitor = _Monitor("EarlyStopping", monitor, mode, min_delta)
        self.monitor, self.mode, self.min_delta = monitor, self._monitor.mode, self._monitor.min_delta
        self.patience = _count("EarlyStopping", "patience", patience, 0)
        self.restore_best_weights = _validate.flag(restore_best_weights, "EarlyStopping.restore_best_weights")
        self.stopped_epoch = 0
        self._wait = 0
        self._best_weights: dict[str, np.ndarray] | None = None

    @property
    def best(self) -> float | None:
        """The best value of the monitored metric so far (None before the first epoch)."""
        return self._monitor.best

    @property
    def best_epoch(self) -> int:
        """The (1-based) epoch that reached `best`; 0 before the first epoch."""
        return self._monitor.best_epoch

    def on_train_begin(self, model: Any) -> None:
        self._monitor.reset()
        self._wait, self.stopped_epoch, self._best_weights = 0, 0, None

    def on_epoch_end(self, model: Any, epoch: int, logs: Logs) -> None:
        _hook_args("EarlyStopping.on_epoch_end", model, epoch, logs,
                   uses=("get_weights",) if self.restore_best_weights else ())
        if self._monitor.update(epoch, logs):
            self._wait = 0
            if self.restore_best_weights:
                self._best_weights = {k: np.array(v, copy=True) for k, v in model.get_weights().items()}
            return
        self._wait += 1
        if self._wait >= self.patience:  # Keras: patience=0 stops at the first epoch without improvement
            try:
                model.stop_training = True
            except AttributeError:
                raise ConfigError("EarlyStopping.on_epoch_end: model must be an xvae VAE or Classifier (it sets "
                                  f"model.stop_training). Received: {model!r:.100}") from None
            self.stopped_epoch = epoch

    def on_train_end(self, model: Any) -> None:
        _hook_args("EarlyStopping.on_train_end", model, uses=("set_weights",) if self._best_weights is not None else ())
        if self.restore_best_weights and self._best_weights is not None and model.epoch != self.best_epoch:
            model.set_weights(self._best_weights)


def _constant_lr(owner: str, model: Any) -> float:
    """The model's current learning rate, a number; ConfigError if it has none or it is a schedule."""
    optimizer = getattr(model, "optimizer", None)
    lr = real(getattr(optimizer, "lr", None))
    if lr is None:
        raise ConfigError(f"{owner} sets the learning rate epoch by epoch, so the optimizer's lr must be a "
                          f"number. Received: optimizer={optimizer!r:.200}; pass a constant lr, or use a "
                          "schedule instead of this callback, not both.")
    return lr


def _set_lr(model: Any, lr: float) -> None:
    """Assign a new rate: fit reads `model.optimizer` at the start of each epoch (state kept, no recompile)."""
    model.optimizer = dataclasses.replace(model.optimizer, lr=lr)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` when `monitor` has not improved for `patience` epochs.

    Keras' callback of the same name and defaults. The new rate applies from the next epoch:
    it replaces `model.optimizer` by a copy with the new `lr`, which fit reads at the start
    of every epoch, keeping the optimizer's state. The optimizer's lr must be a number.

    Args:
        monitor: a History key, e.g. "val_loss" (needs validation data) or "loss".
        factor: new lr = lr * factor, in (0, 1).
        patience: epochs without improvement before reducing.
        min_delta: the smallest change that counts as an improvement.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: the rate never goes below this.
        mode: "min", "max", or "auto" ("max" for accuracy-like names, else "min").
        verbose: 1 prints a line at each reduction.

    Examples:
        >>> import numpy as np, xvae
        >>> clf = xvae.Classifier(xvae.ClassifierSpec(input_dim=2), backend="numpy")
        >>> cb = ReduceLROnPlateau("loss", factor=0.5, patience=0, min_delta=10.0)  # never "improves"
        >>> _ = clf.fit(np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1]), epochs=3, batch_size=4,
        ...             optimizer=xvae.optim.SGD(0.1), callbacks=[cb], verbose=0)
        >>> clf.optimizer.lr
        0.025
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0, mode: str = "auto", verbose: int = 0) -> None:
        self._monitor = _Monitor("ReduceLROnPlateau", monitor, mode, min_delta)
        self.monitor, self.mode, self.min_delta = monitor, self._monitor.mode, self._monitor.min_delta
        f = real(factor)
        if f is None or not 0.0 < f < 1.0:
            raise ConfigError(f"ReduceLROnPlateau.factor must be a number in (0, 1). Received: factor={factor!r:.100}")
        low = real(min_lr)
        if low is None or not 0.0 <= low < math.inf:
            raise ConfigError(f"ReduceLROnPlateau.min_lr must be a finite number >= 0. Received: min_lr={min_lr!r:.100}")
        self.factor, self.min_lr = f, low
        self.patience = _count("ReduceLROnPlateau", "patience", patience, 0)
        self.cooldown = _count("ReduceLROnPlateau", "cooldown", cooldown, 0)
        self.verbose = _count("ReduceLROnPlateau", "verbose", verbose, 0)
        self._wait = self._cooling = 0

    def on_train_begin(self, model: Any) -> None:
        _constant_lr("ReduceLROnPlateau", model)
        self._monitor.reset()
        self._wait = self._cooling = 0

    def on_epoch_end(self, model: Any, epoch: int, logs: Logs) -> None:
        _hook_args("ReduceLROnPlateau.on_epoch_end", model, epoch, logs)
        improved = self._monitor.update(epoch, logs)
        if self._cooling > 0:
            self._cooling -= 1
            self._wait = 0
        if improved:
            self._wait = 0
            return
        if self._cooling > 0:
            return
        self._wait += 1
        if self._wait < self.patience:  # Keras: reduce once `patience` epochs went without improvement
            return
        old = _constant_lr("ReduceLROnPlateau", model)
        new = max(old * self.factor, self.min_lr)
        if new < old:
            _set_lr(model, new)
            if self.verbose:
                print(f"epoch {epoch}: ReduceLROnPlateau reduced the learning rate from {old:g} to {new:g}")
        self._cooling, self._wait = self.cooldown, 0


class LearningRateScheduler(Callback):
    """Set each epoch's learning rate from `schedule(epoch, lr)`, as Keras' callback does.

    `epoch` is the 1-based number of the epoch about to run, counting across resumed fits
    (xvae's convention for every callback; Keras passes a 0-based index), and `lr` the
    current rate. It is called at the start of each epoch, and the rate it returns applies
    to that epoch's every step, with the optimizer's state kept. For rates that change
    *within* an epoch, give the optimizer a schedule instead.

    Args:
        schedule: a function (epoch, lr) -> new lr, a finite number >= 0.
        verbose: 1 prints the rate whenever it changes.

    Examples:
        >>> import numpy as np, xvae
        >>> seen = []
        >>> def halve_after_one(epoch, lr):
        ...     seen.append((epoch, lr))
        ...     return lr if epoch == 1 else lr / 2
        >>> clf = xvae.Classifier(xvae.ClassifierSpec(input_dim=2), backend="numpy")
        >>> _ = clf.fit(np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1]), epochs=3, batch_size=4,
        ...             optimizer=xvae.optim.SGD(0.1), callbacks=[LearningRateScheduler(halve_after_one)], verbose=0)
        >>> seen
        [(1, 0.1), (2, 0.1), (3, 0.05)]
    """

    def __init__(self, schedule: Callable[[int, float], float], verbose: int = 0) -> None:
        if not callable(schedule):
            raise ConfigError(f"LearningRateScheduler.schedule must be a function (epoch, lr) -> lr. "
                              f"Received: {schedule!r:.100}")
        self.schedule = schedule
        self.verbose = _count("LearningRateScheduler", "verbose", verbose, 0)

    def on_train_begin(self, model: Any) -> None:
        _constant_lr("LearningRateScheduler", model)

    def on_epoch_begin(self, model: Any, epoch: int) -> None:
        _hook_args("LearningRateScheduler.on_epoch_begin", model, epoch)
        old = _constant_lr("LearningRateScheduler", model)
        value = self.schedule(epoch, old)
        new = real(value)
        if new is None or not 0.0 <= new < math.inf:
            raise ConfigError(f"LearningRateScheduler's schedule returned {value!r:.100} for epoch {epoch}; it must "
                              "return a finite number >= 0.")
        if new != old:
            _set_lr(model, new)
            if self.verbose:
                print(f"epoch {epoch}: LearningRateScheduler set the learning rate to {new:g}")


class ModelCheckpoint(Callback):
    """Save `directory/epoch-NNNN.xvae` every `every` epochs, keeping the last `keep`.

    Each save is atomic (`xvae.checkpoint.save`), and pruning removes a checkpoint
    atomically too, so a crash never leaves a half-written or half-deleted one.
    "Last" means the highest epoch numbers; the checkpoint just written is never pruned.

    With ``save_best_only=True`` it instead keeps one checkpoint, `directory/best.xvae`,
    rewritten whenever `monitor` improves (mode as in `EarlyStopping`).
    """

    def __init__(self, directory: str | os.PathLike[str], every: int = 1, keep: int = 3, *,
                 save_best_only: bool = False, monitor: str = "val_loss", mode: str = "auto") -> None:
        self.every = _count("ModelCheckpoint", "every", every, 1)
        self.keep = _count("ModelCheckpoint", "keep", keep, 1)
        try:
            self.directory = Path(directory)
        except TypeError:
            raise ConfigError(f"ModelCheckpoint.directory must be a path. Received: {directory!r:.100}") from None
        save_best_only = _validate.flag(save_best_only, "ModelCheckpoint.save_best_only")
        self._monitor = _Monitor("ModelCheckpoint", monitor, mode) if save_best_only else None
        self.last_saved: Path | None = None

    def on_train_begin(self, model: Any) -> None:
        if self._monitor is not None:
            self._monitor.reset()

    def _save(self, model: Any, path: Path, epoch: int, logs: Logs) -> None:
        """Save, unless the weights are no longer finite: then stop fit and keep the good checkpoints."""
        bad = [name for name, w in model.get_weights().items() if not np.isfinite(w).all()]
        if bad:
            from xvae import checkpoint

            good = self.last_saved or checkpoint.latest(self.directory)
            kept = f"the last good checkpoint is {good}" if good else "there is no earlier checkpoint"
            raise TrainingDivergedError(
                f"Training diverged: after epoch {epoch} the weights hold NaN or infinite values "
                f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}) although the loss was "
                f"{logs.get('loss')}. Not saving {path}; {kept}. "
                "Lower the learning rate or check the inputs' scale.",
                step=int(model.step), epoch=epoch, last_finite_loss=logs.get("loss"))
        model.save(path)
        self.last_saved = path

    def on_epoch_end(self, model: Any, epoch: int, logs: Logs) -> None:
        from xvae import checkpoint, distribute

        _hook_args("ModelCheckpoint.on_epoch_end", model, epoch, logs, uses=("get_weights", "save"))
        if not distribute.is_chief(model):  # data parallel over processes: rank 0 saves and prunes
            return
        if self._monitor is not None:
            if self._monitor.update(epoch, logs):
                self._save(model, self.directory / "best.xvae", epoch, logs)
            return
        if epoch % self.every:
            return
        path = self.directory / f"epoch-{epoch:04d}.xvae"
        self._save(model, path, epoch, logs)
        for _, old in checkpoint.list_checkpoints(self.directory)[: -self.keep]:
            if old != path:
                checkpoint.remove(old)


class _FileLogger(Callback):
    def __init__(self, path: str | os.PathLike[str], append: bool) -> None:
        try:
            self.path = Path(path)
        except TypeError:
            raise ConfigError(f"{type(self).__name__}.path must be a file path. Received: {path!r:.100}") from None
        self.append = _validate.flag(append, f"{type(self).__name__}.append")

    def on_train_begin(self, model: Any) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.append:
                self.path.write_text("")
        except OSError as err:
            raise _file_error(type(self).__name__, self.path, err) from err

    def on_epoch_end(self, model: Any, epoch: int, logs: Logs) -> None:
        _hook_args(f"{type(self).__name__}.on_epoch_end", model, epoch, logs)
        try:
            self._write(int(epoch), logs)
        except OSError as err:
            raise _file_error(type(self).__name__, self.path, err) from err
        except (ValueError, csv.Error) as err:  # a file that is not the logger's own format
            raise DataError(f"{type(self).__name__}: {self.path} is not a file it wrote ({err}). "
                            "Choose a new file, or append=False.", path=str(self.path)) from err

    def _write(self, epoch: int, logs: Logs) -> None:
        raise NotImplementedError

    @staticmethod
    def _read_text(owner: str, path: Any) -> str:
        try:
            file = Path(path)
            if file.exists() and not file.is_file():  # a folder, or a FIFO whose read would block
                raise DataError(f"{owner}.read cannot read {file}: it is not a regular file.", path=str(file))
            return file.read_text()
        except DataError:
            raise
        except TypeError:
            raise ConfigError(f"{owner}.read needs a file path. Received: {path!r:.100}") from None
        except (OSError, ValueError) as err:  # ValueError: a NUL byte; UnicodeDecodeError: not text
            raise DataError(f"{owner}.read cannot read {path!r:.200}: {getattr(err, 'strerror', None) or err}.",
                            path=str(path)) from err


class CSVLogger(_FileLogger):
    """Write one row per epoch to a CSV file: "epoch" then the metrics, header first.

    append=False (default, as Keras) starts the file afresh at each fit; append=True adds to
    it (for resumed runs). If a later fit reports a metric the header lacks, the file is
    rewritten with the wider header (missing cells empty). Floats keep full precision.
    """

    def __init__(self, path: str | os.PathLike[str], append: bool = False) -> None:
        super().__init__(path, append)

    def _write(self, epoch: int, logs: Logs) -> None:
        row = {"epoch": epoch, **{k: float(v) for k, v in logs.items()}}
        header: list[str] = []
        rows: list[dict[str, str]] = []
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                header = list(reader.fieldnames or [])
                if not set(row) <= set(header):
                    rows = list(reader)
        if header and set(row) <= set(header):
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=header).writerow(row)
            return
        fields = header + [k for k in row if k not in header]
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
            writer.writerow(row)

    @staticmethod
    def read(path: str | os.PathLike[str]) -> dict[str, list[float]]:
        """The columns of a CSVLogger file as floats (empty cells: NaN).

        Raises:
            DataError: the file cannot be read or is not a CSVLogger file.
        """
        rows = list(csv.DictReader(io.StringIO(CSVLogger._read_text("CSVLogger", path), newline="")))
        names = list(rows[0]) if rows else []
        try:
            return {k: [float(r[k]) if r.get(k) not in (None, "") else math.nan for r in rows] for k in names}
        except (TypeError, ValueError) as err:
            raise DataError(f"CSVLogger.read: {path} is not a CSVLogger file ({err}).", path=str(path)) from None


class JSONLogger(_FileLogger):
    """Append one JSON object per epoch ({"epoch": 1, "loss": ...}) to a JSON-lines file.

    append as in `CSVLogger`. Non-finite values are written as null (strict JSON).
    """

    def __init__(self, path: str | os.PathLike[str], append: bool = False) -> None:
        super().__init__(path, append)

    def _write(self, epoch: int, logs: Logs) -> None:
        record = {"epoch": epoch, **{k: (float(v) if math.isfinite(v) else None) for k, v in logs.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(record, allow_nan=False) + "\n")

    @staticmethod
    def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """The records of a JSONLogger file.

        Raises:
            DataError: the file cannot be read or is not JSON lines.
        """
        text = JSONLogger._read_text("JSONLogger", path)
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as err:
            raise DataError(f"JSONLogger.read: {path} is not a JSON-lines file ({err}).", path=str(path)) from None


class LambdaCallback(Callback):
    """A callback from functions: on_epoch_end(model, epoch, logs), on_train_begin(model),
    on_train_end(model); each optional.
    """

    def __init__(self, on_epoch_end: Callable[[Any, int, Logs], None] | None = None,
                 on_train_begin: Callable[[Any], None] | None = None,
                 on_train_end: Callable[[Any], None] | None = None) -> None:
        for name, fn in (("on_epoch_end", on_epoch_end), ("on_train_begin", on_train_begin),
                         ("on_train_end", on_train_end)):
            if fn is not None and not callable(fn):
                raise ConfigError(f"LambdaCallback.{name} must be a function. Received: {fn!r:.100}")
        self._epoch_end, self._begin, self._end = on_epoch_end, on_train_begin, on_train_end

    def on_train_begin(self, model: Any) -> None:
        if self._begin is not None:
            self._begin(model)

    def on_epoch_end(self, model: Any, epoch: int, logs: Logs) -> None:
        if self._epoch_end is not None:
            self._epoch_end(model, epoch, logs)

    def on_train_end(self, model: Any) -> None:
        if self._end is not None:
            self._end(model)

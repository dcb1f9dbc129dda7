"""Training callbacks: early stopping, checkpoints, loggers, and a hook for your own.

A callback sees the model and each epoch's logs (the History row). Setting
`model.stop_training = True` ends `fit` after the current epoch.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np

from xvae._errors import ConfigError

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "CSVLogger", "JSONLogger", "LambdaCallback"]


class Callback:
    """Base class: override any of the hooks."""

    def on_train_begin(self, model: Any) -> None:
        """Called once when fit starts."""

    def on_epoch_end(self, model: Any, epoch: int, logs: dict[str, float]) -> None:
        """Called after each epoch (1-based `epoch`) with its metrics."""

    def on_train_end(self, model: Any) -> None:
        """Called once when fit ends normally."""


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs.

    restore_best_weights: put back the weights of the best epoch when stopping.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0,
                 mode: str = "min", restore_best_weights: bool = False) -> None:
        if mode not in ("min", "max"):
            raise ConfigError(f"EarlyStopping.mode must be 'min' or 'max'. Received: mode={mode!r}")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, min_delta, mode
        self.restore_best_weights = restore_best_weights
        self.best: float | None = None
        self.best_epoch = 0
        self.stopped_epoch = 0
        self._wait = 0
        self._best_weights: dict[str, np.ndarray] | None = None

    def on_train_begin(self, model: Any) -> None:
        self.best, self._wait, self.stopped_epoch, self._best_weights = None, 0, 0, None

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta

    def on_epoch_end(self, model: Any, epoch: int, logs: dict[str, float]) -> None:
        if self.monitor not in logs:
            raise ConfigError(f"EarlyStopping monitors {self.monitor!r}, which fit does not report. "
                              f"Available: {', '.join(logs)} (val_* needs validation_data=).")
        value = logs[self.monitor]
        if self._better(value):
            self.best, self.best_epoch, self._wait = value, epoch, 0
            if self.restore_best_weights:
                self._best_weights = model.get_weights()
            return
        self._wait += 1
        if self._wait >= self.patience:
            model.stop_training = True
            self.stopped_epoch = epoch
            if self._best_weights is not None:
                model.set_weights(self._best_weights)


class ModelCheckpoint(Callback):
    """Save `directory/epoch-NNNN.xvae` every `every` epochs, keeping the last `keep`."""

    def __init__(self, directory: str | os.PathLike[str], every: int = 1, keep: int = 3) -> None:
        for name, value in (("every", every), ("keep", keep)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"ModelCheckpoint.{name} must be a positive integer. Received: {name}={value!r}")
        self.directory, self.every, self.keep = Path(directory), every, keep

    def on_epoch_end(self, model: Any, epoch: int, logs: dict[str, float]) -> None:
        if epoch % self.every == 0:
            model.save(self.directory / f"epoch-{epoch:04d}.xvae")
            for old in sorted(self.directory.glob("epoch-*.xvae"))[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)


class CSVLogger(Callback):
    """Append one row per epoch to a CSV file (header written once)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def on_epoch_end(self, model: Any, epoch: int, logs: dict[str, float]) -> None:
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["epoch", *logs])
            if new:
                writer.writeheader()
            writer.writerow({"epoch": epoch, **logs})


class JSONLogger(Callback):
    """Append one JSON object per epoch to a JSON-lines file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def on_epoch_end(self, model: Any, epoch: int, logs: dict[str, float]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps({"epoch": epoch, **logs}) + "\n")


class LambdaCallback(Callback):
    """A callback from a function: on_epoch_end(model, epoch, logs)."""

    def __init__(self, on_epoch_end: Callable[[Any, int, dict[str, float]], None]) -> None:
        self._fn = on_epoch_end

    def on_epoch_end(self, model: Any, epoch: int, logs: dict[str, float]) -> None:
        self._fn(model, epoch, logs)

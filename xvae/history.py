"""Training history: per-epoch metrics, serialisable to JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xvae import _validate
from xvae._errors import ConfigError, DataError

__all__ = ["History"]


@dataclass
class History:
    """What `fit` returns. `history[name]` is one float per epoch, as in Keras.

    Epoch values are means over the epoch's batches weighted by each batch's real rows
    (Keras' convention). `epoch` lists the (1-based) epoch numbers these rows belong to
    (after a resume they start past 1). `params` holds the fit settings.

    Examples:
        >>> h = History()
        >>> h.append(1, {"loss": 2.5})
        >>> History.from_json(h.to_json()) == h
        True
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    #: Small vectors per epoch, kept apart so `history` stays one float per epoch:
    #: a VAE's "kl_per_latent" (the KL of each latent: like "kl", the mean over the epoch's
    #: training steps of their batches' values, so it sums to that epoch's "kl"; Keras has no
    #: equivalent).
    vectors: dict[str, list[list[float]]] = field(default_factory=dict)

    def append(self, epoch: int, logs: dict[str, float], vectors: dict[str, Any] | None = None) -> None:
        """Add one epoch's row (and its vectors: name -> a 1-d sequence of numbers).

        Raises:
            ConfigError: epoch is not an integer, or logs is not a dict of name -> number.
        """
        if isinstance(epoch, (bool, np.timedelta64)) or not isinstance(epoch, (int, np.integer)):
            raise ConfigError(f"History.append: epoch must be an integer. Received: {epoch!r:.100}")
        if not isinstance(logs, dict) or not all(
                isinstance(k, str) and isinstance(v, (int, float, np.integer, np.floating)) for k, v in logs.items()):
            raise ConfigError(f"History.append: logs must be a dict of metric name -> number. Received: {logs!r:.100}")
        try:
            values = {name: float(value) for name, value in logs.items()}
        except OverflowError:
            raise ConfigError(f"History.append: logs hold a number beyond float64. Received: {logs!r:.100}") from None
        try:
            rows = {str(name): [float(v) for v in np.ravel(np.asarray(vector, dtype=np.float64))]
                    for name, vector in (vectors or {}).items()}
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"History.append: vectors must map names to sequences of numbers. "
                              f"Received: {vectors!r:.100}") from None
        self.epoch.append(int(epoch))
        for name, value in values.items():
            self.history.setdefault(name, []).append(value)
        for name, row in rows.items():
            self.vectors.setdefault(name, []).append(row)

    def extend(self, other: History) -> None:
        """Append the rows of `other` (e.g. the History of a resumed fit)."""
        if not isinstance(other, History):
            raise ConfigError(f"History.extend needs a History. Received: {other!r:.100}")
        for i, epoch in enumerate(other.epoch):
            self.append(epoch, {k: v[i] for k, v in other.history.items() if i < len(v)},
                        {k: v[i] for k, v in other.vectors.items() if i < len(v)})

    def to_dict(self) -> dict[str, Any]:
        """Plain data (a copy): {"history": {name: [float]}, "epoch": [int], "params": {...}}
        (and "vectors": {name: [[float]]} when there are any)."""
        out = {"history": {k: list(v) for k, v in self.history.items()}, "epoch": list(self.epoch),
               "params": dict(self.params)}
        if self.vectors:
            out["vectors"] = {k: [list(row) for row in v] for k, v in self.vectors.items()}
        return out

    def to_json(self, path: str | Path | None = None) -> str:
        """The history as strict JSON (non-finite values as null); also written to `path` if given."""
        data = self.to_dict()
        data["history"] = {k: [v if math.isfinite(v) else None for v in vs] for k, vs in data["history"].items()}
        if "vectors" in data:
            data["vectors"] = {k: [[v if math.isfinite(v) else None for v in row] for row in rows]
                               for k, rows in data["vectors"].items()}
        text = json.dumps(data, indent=1, sort_keys=True, allow_nan=False, default=_plain)
        if path is not None:
            target = _path("History.to_json", path)
            try:
                target.write_text(text + "\n")
            except OSError as err:
                raise DataError(f"Cannot write the History to {target}: {err.strerror or err} "
                                f"({type(err).__name__}). Choose a writable file path.", path=str(target)) from err
        return text

    @classmethod
    def from_dict(cls, data: Any) -> History:
        """Rebuild from `to_dict()` output; raises DataError naming what is malformed."""
        if not isinstance(data, dict):
            raise DataError(f"A History is a dict with 'history', 'epoch' and 'params'. Received: {type(data).__name__}")
        history, epochs, params = data.get("history", {}), data.get("epoch", []), data.get("params", {})
        if not isinstance(history, dict) or not all(
                isinstance(k, str) and isinstance(v, list) for k, v in history.items()):
            raise DataError("History 'history' must map metric names to lists of numbers.")
        try:
            values = {k: [math.nan if x is None else float(x) for x in v] for k, v in history.items()}
        except (TypeError, ValueError, OverflowError) as err:
            raise DataError(f"History 'history' holds a value that is not a number ({err}).") from None
        if not isinstance(epochs, list) or not all(isinstance(e, int) and not isinstance(e, bool) for e in epochs):
            raise DataError(f"History 'epoch' must be a list of integers. Received: {epochs!r:.100}")
        if not isinstance(params, dict):
            raise DataError(f"History 'params' must be a dict. Received: {params!r:.100}")
        vectors = data.get("vectors", {})
        try:
            vecs = {str(k): [[math.nan if x is None else float(x) for x in row] for row in rows]
                    for k, rows in dict(vectors).items()}
        except (TypeError, ValueError) as err:
            raise DataError(f"History 'vectors' must map names to lists of lists of numbers ({err}).") from None
        return cls(values, list(epochs), dict(params), vecs)

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> History:
        """Rebuild from `to_json()` output: the JSON text itself, or the path of a file holding it."""
        path = None
        text = text_or_path if isinstance(text_or_path, str) else None
        if text is None or not text.lstrip().startswith(("{", "[")):
            path = _path("History.from_json", text_or_path)
            try:
                if path.exists() and not path.is_file():  # a directory, a FIFO (whose read would block)
                    raise DataError(f"Cannot read a History from {path}: it is not a regular file.", path=str(path))
                text = path.read_text()
            except UnicodeDecodeError as err:
                raise DataError(f"Cannot read a History from {path}: not UTF-8 text ({err}).", path=str(path)) from None
            except OSError as err:
                raise DataError(f"Cannot read a History from {path}: {err.strerror or err}.", path=str(path)) from None
        try:
            data = json.loads(text)
        except ValueError as err:
            where = f" in {path}" if path else ""
            raise DataError(f"Invalid History JSON{where}: {err}.", path=str(path) if path else None) from None
        return cls.from_dict(data)


def _path(owner: str, value: Any) -> Path:
    """`value` as a file Path, or ConfigError: not a path, empty, or with a NUL byte."""
    text = _validate.path_text(value, f"{owner}'s file", ConfigError, "Pass a file path such as 'history.json'.")
    return Path(text)


def _plain(value: Any) -> Any:
    """JSON fallback for params: NumPy scalars become Python numbers, anything else its str."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return str(value)

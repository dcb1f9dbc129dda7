"""Training history: per-epoch metrics, serialisable to JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class History:
    """What `fit` returns. `history[name]` is one float per epoch, as in Keras.

    Epoch values are means over the epoch's batches weighted by each batch's real rows
    (Keras' convention). `epoch` lists the (1-based) epoch numbers these rows belong to.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for name, value in logs.items():
            self.history.setdefault(name, []).append(float(value))

    def extend(self, other: "History") -> None:
        for epoch, i in zip(other.epoch, range(len(other.epoch))):
            self.append(epoch, {k: v[i] for k, v in other.history.items() if i < len(v)})

    def to_dict(self) -> dict[str, Any]:
        return {"history": self.history, "epoch": self.epoch, "params": self.params}

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=1, sort_keys=True)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "History":
        return cls(dict(data.get("history", {})), list(data.get("epoch", [])), dict(data.get("params", {})))

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> "History":
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text).read_text()
        return cls.from_dict(json.loads(text))

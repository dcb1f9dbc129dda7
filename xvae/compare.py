"""Side by side: one spec, seed and data trained in several backends, and their agreement.

This is the article's comparison (one VAE written three times), made exact: the same
initial weights, order, noise, loss and optimizer in every backend, so any disagreement
left is float32 rounding, and the table shows how much.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from xvae import backends as _backends
from xvae._progress import resolve_verbose
from xvae.callbacks import Callback
from xvae.models import VAE, Classifier

__all__ = ["Comparison", "compare"]


class _EpochClock(Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_begin(self, model: Any) -> None:
        self.times = [time.perf_counter()]

    def on_epoch_end(self, model: Any, epoch: int, logs: dict[str, float]) -> None:
        self.times.append(time.perf_counter())


@dataclass
class Comparison:
    """Rows per backend plus the pairwise maximum relative disagreement of epoch losses.

    Attributes:
        kind: "vae" or "classifier".
        rows: one dict per backend: "backend", "version", "device", "final_loss",
            "test_metric" (negative ELBO in nats for a VAE, accuracy for a classifier)
            and "steps_per_s".
        histories: backend -> its `History.history` (metric -> one float per epoch).
        disagreement: "a-b" -> max over epochs of |loss_a - loss_b| / |loss_b|.
        settings: the spec (as a dict), epochs, seed, batch size and data size used.
    """

    kind: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    histories: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    disagreement: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def max_disagreement(self) -> float:
        """The largest pairwise disagreement (0.0 with fewer than two backends)."""
        return max(self.disagreement.values(), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the attributes plus "max_disagreement"."""
        return {"kind": self.kind, "settings": self.settings, "rows": self.rows,
                "histories": self.histories, "disagreement": self.disagreement,
                "max_disagreement": self.max_disagreement}

    def to_json(self) -> str:
        """`to_dict()` as indented JSON."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    def to_markdown(self) -> str:
        """Two Markdown tables: one row per backend, then the pairwise disagreements."""
        metric = "test neg. ELBO (nats)" if self.kind == "vae" else "test accuracy"
        lines = [f"| backend | version | device | final loss | {metric} | steps/s |",
                 "|---|---|---|---|---|---|"]
        for r in self.rows:
            lines.append(f"| {r['backend']} | {r['version']} | {r['device']} | {r['final_loss']:.6f} | "
                         f"{r['test_metric']:.6f} | {r['steps_per_s']:.1f} |")
        lines.append("")
        lines.append("| pair | max relative difference of epoch losses |")
        lines.append("|---|---|")
        for pair, value in self.disagreement.items():
            lines.append(f"| {pair} | {value:.2e} |")
        return "\n".join(lines) + "\n"


def compare(spec: Any, x: np.ndarray, y: np.ndarray | None = None, *, x_test: np.ndarray | None = None,
            y_test: np.ndarray | None = None, backends: Sequence[str] | None = None, epochs: int = 3,
            batch_size: int = 128, optimizer: Any = None, seed: int = 0, binarize: str | None = None,
            steps_per_call: int = 1, verbose: int | str | None = None,
            progress: bool | None = None) -> Comparison:
    """Train `spec` with the same seed and data in each backend; return the side-by-side table.

    Args:
        spec: a `VAESpec` or `ClassifierSpec`.
        x: float32 training inputs of shape (n, input_dim).
        y: classifier labels of shape (n,) (0/1 or class ids), or a conditional VAE's class
            ids; None for a plain VAE.
        x_test: inputs to evaluate after training (default `x`).
        y_test: their labels (default `y`).
        backends: backend names; default every available framework backend (the float64
            "numpy" reference only when named).
        epochs: epochs to train in each backend.
        batch_size: rows per step.
        optimizer: an `xvae.optim` spec; None uses `Adam(1e-3)`.
        seed: the model seed, the same in every backend.
        binarize: None, "static" or "dynamic" (VAE only).
        steps_per_call: optimizer steps per compiled call.
        verbose: each fit's report, as `VAE.fit`'s: 0 silent (the default here), 1 a progress
            bar, 2 one line per epoch, "auto".
        progress: the older spelling of verbose, as in `VAE.fit`: False is 0, True is "auto".

    Returns:
        A `Comparison`. steps/s is measured over the epochs after the first (which compiles).

    Examples:
        >>> import xvae
        >>> data = xvae.datasets.load("digits")
        >>> spec = xvae.VAESpec(input_dim=64, hidden=(16,), latents=2)
        >>> result = compare(spec, data.x[:256], epochs=2, backends=["numpy"])
        >>> [row["backend"] for row in result.rows]
        ['numpy']
    """
    level = resolve_verbose(("auto" if progress is not None else 0) if verbose is None else verbose, progress)
    names = list(backends) if backends else [n for n in _backends.available() if n != "numpy"]
    names = [_backends.canonical_name(n) for n in names]
    is_vae = spec.kind == "vae"
    x_test = x if x_test is None else x_test
    y_test = y if y_test is None else y_test
    result = Comparison(kind=spec.kind, settings={"spec": spec.to_dict(), "epochs": epochs, "seed": seed,
                                                    "batch_size": batch_size, "binarize": binarize,
                                                    "n": int(len(x)), "steps_per_call": steps_per_call})
    for name in names:
        clock = _EpochClock()
        if is_vae:
            model: Any = VAE(spec, backend=name, seed=seed)
            conditioned = bool(spec.conditions)  # a conditional VAE trains and is tested on its labels
            hist = model.fit(x, y if conditioned else None, epochs=epochs, batch_size=batch_size,
                             optimizer=optimizer, binarize=binarize, verbose=level, steps_per_call=steps_per_call,
                             callbacks=[clock])
            xt = x_test if binarize is None else (np.asarray(x_test) > 0.5).astype(np.float32)
            test_metric = model.evaluate(xt, y_test if conditioned else None, seed=0)["loss"]
        else:
            model = Classifier(spec, backend=name, seed=seed)
            hist = model.fit(x, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                             verbose=level, steps_per_call=steps_per_call, callbacks=[clock])
            test_metric = model.evaluate(x_test, y_test)["accuracy"]
        done = len(clock.times) - 1  # epochs trained
        first = 1 if done > 1 else 0  # skip the compiling epoch when there is another
        timed = clock.times[-1] - clock.times[first]
        timed_steps = hist.params["steps"] * (done - first)
        info = _backends.get(name).info()
        result.rows.append({"backend": name, "version": info["version"], "device": info["device"],
                            "final_loss": hist.history["loss"][-1], "test_metric": float(test_metric),
                            "steps_per_s": timed_steps / timed if timed > 0 else float("nan")})
        result.histories[name] = hist.history
    for a, b in itertools.combinations(names, 2):
        la, lb = np.array(result.histories[a]["loss"]), np.array(result.histories[b]["loss"])
        result.disagreement[f"{a}-{b}"] = float(np.max(np.abs(la - lb) / np.abs(lb)))
    return result

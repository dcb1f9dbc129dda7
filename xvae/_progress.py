"""What `fit` prints while it trains: Keras' `verbose` levels.

* ``verbose=0``: nothing.
* ``verbose=1``: a live tqdm bar per epoch, showing the running means of *this* epoch
  (updated at each host sync, so it costs no extra device round trip); the finished bar
  stays as the epoch's line, with its final metrics (validation included).
* ``verbose=2``: one plain line per epoch, written when the epoch ends: what a log file
  or CI output wants (no carriage returns).
* ``verbose="auto"`` (the default): 1 in a terminal or a notebook, 2 when stdout is
  redirected or piped.

Everything goes to `sys.stdout` (looked up at each use, so redirection works), as in Keras.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping

from xvae._errors import ConfigError
from xvae._numbers import integer

__all__ = ["Progress", "resolve_verbose"]

LEVELS = (0, 1, 2)


def _interactive() -> bool:
    """stdout is a terminal, or we run in a Jupyter kernel (tqdm.auto draws a widget there)."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty()) or "ipykernel" in sys.modules


def resolve_verbose(verbose: Any, progress: Any = None) -> int:
    """The verbosity level 0, 1 or 2 from `verbose` ("auto", 0, 1, 2) and the older `progress` flag.

    `progress=False` is `verbose=0` and `progress=True` is `verbose="auto"` (fit's `progress=`
    argument of earlier versions, kept working); giving both with different meanings is an error.
    """
    if isinstance(verbose, str) and verbose == "auto":
        level = 1 if _interactive() else 2
    else:
        level = integer(verbose)  # type: ignore[assignment]
        if level not in LEVELS:
            raise ConfigError(f"verbose must be 'auto', 0 (silent), 1 (progress bar) or 2 (one line per epoch). "
                              f"Received: verbose={verbose!r:.100}")
    if progress is None:
        return level
    from xvae._validate import flag

    show = flag(progress, "progress")
    explicit = not isinstance(verbose, str)
    if explicit and show != (level > 0):
        raise ConfigError(f"progress={show} contradicts verbose={verbose!r}: pass verbose= alone "
                          "(progress= is its older spelling).")
    return level if show else 0


def _format(logs: Mapping[str, float]) -> str:
    return " - ".join(f"{name}: {value:.4g}" for name, value in logs.items())


class Progress:
    """Reports one fit call at a verbosity level (see the module docstring)."""

    def __init__(self, level: int, last_epoch: int, steps: int) -> None:
        self.level, self.last_epoch, self.steps = level, last_epoch, steps
        self._bar: Any = None
        self._started = 0.0

    @property
    def live(self) -> bool:
        """Whether per-step progress is shown (a bar): otherwise the loop skips the per-step calls."""
        return self.level == 1

    def epoch_begin(self, epoch: int) -> None:
        self._started = time.perf_counter()
        if self.level == 1:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.steps, unit="step", leave=True, dynamic_ncols=True, file=sys.stdout,
                             desc=f"epoch {epoch}/{self.last_epoch}")

    def advance(self, steps: int) -> None:
        """`steps` more optimizer steps done (no host sync)."""
        if self._bar is not None:
            self._bar.update(steps)

    def running(self, means: Mapping[str, float]) -> None:
        """This epoch's running means so far (called after each host sync)."""
        if self._bar is not None:
            self._bar.set_postfix_str(_format(means), refresh=False)

    def epoch_end(self, epoch: int, logs: Mapping[str, float]) -> None:
        seconds = time.perf_counter() - self._started
        if self._bar is not None:
            self._bar.set_postfix_str(_format(logs), refresh=False)
            self._bar.close()
            self._bar = None
        elif self.level == 2:
            print(f"epoch {epoch}/{self.last_epoch} - {seconds:.1f}s - {_format(logs)}", file=sys.stdout, flush=True)

    def close(self) -> None:
        """Close a bar left open by an error (the epoch never ended)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

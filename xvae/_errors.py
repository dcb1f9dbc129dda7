"""The xvae error family.

Every error xvae raises on purpose is an `XVAEError` *and* the matching builtin, so users
can catch either. The message comes first in every constructor; extra fields are
keyword-only, so any error can be re-raised as ``type(e)(message)``.
"""

from __future__ import annotations

__all__ = [
    "XVAEError",
    "SpecError",
    "BackendNotFoundError",
    "BackendUnavailableError",
    "DataError",
    "CheckpointError",
    "TrainingDivergedError",
    "ConfigError",
]


class XVAEError(Exception):
    """Base of every error the library raises on purpose."""


class SpecError(XVAEError, ValueError):
    """A model, loss or optimizer spec has an invalid field."""


class ConfigError(XVAEError, ValueError):
    """An argument to a public function is invalid (batch size, precision, ...)."""


class BackendNotFoundError(XVAEError, LookupError):
    """No backend of that name is registered."""


class BackendUnavailableError(XVAEError, ImportError):
    """The backend is registered but its framework is missing or broken."""


class DataError(XVAEError, ValueError):
    """Input data has the wrong shape, dtype or values, or a data file is invalid."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class CheckpointError(XVAEError, OSError):
    """A checkpoint is missing, truncated, tampered with or does not match its spec."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.key = key

    def __str__(self) -> str:  # OSError formats its args unless told otherwise
        return str(self.args[0]) if self.args else ""


class TrainingDivergedError(XVAEError, FloatingPointError):
    """The training loss became NaN or infinite."""

    def __init__(
        self,
        message: str,
        *,
        step: int | None = None,
        epoch: int | None = None,
        last_finite_loss: float | None = None,
    ) -> None:
        super().__init__(message)
        self.step = step
        self.epoch = epoch
        self.last_finite_loss = last_finite_loss


for _cls in (
    XVAEError,
    SpecError,
    ConfigError,
    BackendNotFoundError,
    BackendUnavailableError,
    DataError,
    CheckpointError,
    TrainingDivergedError,
):
    _cls.__module__ = "xvae"

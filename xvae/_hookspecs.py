"""pluggy hook specification: how a plugin declares its backends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import pluggy

__all__ = ["hookspec", "hookimpl", "BackendInfo", "xvae_backends"]

hookspec = pluggy.HookspecMarker("xvae")
hookimpl = pluggy.HookimplMarker("xvae")


@dataclass(frozen=True)
class BackendInfo:
    """A backend declaration. `target` ("module:attr") is imported only on first use.

    requires: top-level modules the framework needs; checked with importlib.util.find_spec
    (no import), so "not installed" and "installed but broken" get different messages.
    extra: the pip extra that installs the framework, for the error message.
    """

    name: str
    target: str
    requires: tuple[str, ...] = ()
    extra: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def install_hint(self) -> str:
        return f'pip install "xvae[{self.extra}]"' if self.extra else "pip install xvae"


@hookspec
def xvae_backends() -> Iterable[BackendInfo]:  # type: ignore[empty-body]
    """Declare the backends this plugin provides.

    Must not import the framework: return `BackendInfo` records whose `target` is
    imported only when the backend is first used.
    """

"""pluggy hook specification: how a plugin declares its backends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import pluggy

__all__ = ["hookspec", "hookimpl", "BackendInfo", "xvae_backends"]

hookspec = pluggy.HookspecMarker("xvae")
"""Marks the hook specifications of the "xvae" project (internal)."""
hookimpl = pluggy.HookimplMarker("xvae")
"""Decorator marking a plugin's `xvae_backends()` implementation (pluggy's HookimplMarker).

Use it as `@xvae.hookimpl` on a module-level `def xvae_backends() -> list[BackendInfo]`
in the module your entry point names (see the plugin guide).
"""


@dataclass(frozen=True)
class BackendInfo:
    """A backend declaration. `target` ("module:attr") is imported only on first use.

    Attributes:
        name: the backend's name, as passed to `xvae.backends.get` and `backend=`.
        target: "module:attr" of the `xvae.backend.Backend` subclass; imported, and the
            class called with no arguments, the first time the backend is used.
        requires: top-level modules the framework needs; checked with
            importlib.util.find_spec (no import), so "not installed" and "installed but
            broken" get different messages.
        extra: the pip extra of xvae that installs the framework, for the error message
            (`pip install "xvae[extra]"`); None gives `pip install xvae`.
        aliases: other names that resolve to this backend (case-insensitive).
    """

    name: str
    target: str
    requires: tuple[str, ...] = ()
    extra: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def install_hint(self) -> str:
        """The pip command that installs the framework, e.g. `pip install "xvae[torch]"`."""
        return f'pip install "xvae[{self.extra}]"' if self.extra else "pip install xvae"


@hookspec
def xvae_backends() -> Iterable[BackendInfo]:  # type: ignore[empty-body]
    """Declare the backends this plugin provides.

    Must not import the framework: return `BackendInfo` records whose `target` is
    imported only when the backend is first used.
    """

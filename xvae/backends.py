"""The backend registry, on pluggy and the ``xvae.backends`` entry-point group.

Plugins are found lazily, on first use, so ``import xvae`` imports no framework. Each entry
point is loaded on its own: a broken third-party plugin is recorded (and shown by
``xvae backends``), never raised at the others. ``XVAE_DISABLE_PLUGINS=a,b`` blocks plugins.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
from typing import Any

import pluggy

from xvae import _hookspecs
from xvae._errors import BackendNotFoundError, BackendUnavailableError
from xvae._hookspecs import BackendInfo, hookimpl

__all__ = ["BackendInfo", "known", "available", "get", "info", "why_unavailable", "broken", "reset"]

GROUP = "xvae.backends"
#: Preferred order; other backends follow in registration order, the reference last.
_ORDER = ("jax", "tf", "torch")


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, but one broken plugin cannot take the others down (as conda does)."""

    def __init__(self) -> None:
        super().__init__("xvae")
        self.broken: dict[str, str] = {}

    def load_setuptools_entrypoints(self, group: str, name: str | None = None) -> int:
        count = 0
        for ep in importlib.metadata.entry_points(group=group):
            if name is not None and ep.name != name:
                continue
            if self.get_plugin(ep.name) is not None or self.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
                self.register(plugin, name=ep.name)
            except Exception as err:  # a third-party plugin's bug is reported, not raised
                self.broken[ep.name] = f"{ep.value}: {type(err).__name__}: {err}"
                continue
            count += 1
        return count


class _Reference:
    """The built-in float64 NumPy reference backend: slow, exact, always available."""

    @hookimpl
    def xvae_backends(self) -> list[BackendInfo]:
        return [BackendInfo("numpy", "xvae._reference:ReferenceBackend", aliases=("reference",))]


class _Registry:
    def __init__(self) -> None:
        pm = _PluginManager()
        pm.add_hookspecs(_hookspecs)
        for blocked in filter(None, os.environ.get("XVAE_DISABLE_PLUGINS", "").split(",")):
            pm.set_blocked(blocked.strip())
        pm.register(_Reference(), name="xvae-reference")
        pm.load_setuptools_entrypoints(GROUP)
        self.pm = pm
        self.infos: dict[str, BackendInfo] = {}
        self.aliases: dict[str, str] = {}
        self.loaded: dict[str, Any] = {}
        self.errors: dict[str, BackendUnavailableError] = {}
        owners: dict[str, str] = {}
        for plugin_name, records in self._declarations():
            for info in records:
                if info.name in self.infos:
                    pm.broken[plugin_name] = (
                        f"Conflicting backend {info.name!r}: declared by both "
                        f"{owners[info.name]!r} and {plugin_name!r}"
                    )
                    continue
                owners[info.name] = plugin_name
                self.infos[info.name] = info
                for alias in (info.name, *info.aliases):
                    self.aliases.setdefault(alias.lower(), info.name)

    def _declarations(self) -> list[tuple[str, list[BackendInfo]]]:
        out = []
        for name, plugin in self.pm.list_name_plugin():  # registration order: built-ins first
            if plugin is None:  # a blocked name
                continue
            impl = getattr(plugin, "xvae_backends", None)
            if impl is None:
                continue
            try:
                out.append((name, list(impl())))
            except Exception as err:  # a hook that raises is a broken plugin too
                self.pm.broken[name] = f"xvae_backends() raised {type(err).__name__}: {err}"
        return out

    def names(self) -> list[str]:
        rank = {n: i for i, n in enumerate(_ORDER)}
        ordered = sorted(
            self.infos, key=lambda n: (n == "numpy", rank.get(n, len(_ORDER)))
        )
        return ordered

    def resolve(self, name: str) -> BackendInfo:
        if not isinstance(name, str):
            raise BackendNotFoundError(
                f"A backend is named by a string. Received: {name!r}. "
                f"Known backends: {', '.join(self.names())}."
            )
        key = self.aliases.get(name.lower())
        if key is None:
            if name in self.pm.broken:
                raise BackendUnavailableError(
                    f"The backend plugin {name!r} failed to load: {self.pm.broken[name]}"
                )
            raise BackendNotFoundError(
                f"Unknown backend {name!r}. Known backends: {', '.join(self.names())}."
            )
        return self.infos[key]

    def get(self, name: str) -> Any:
        info = self.resolve(name)
        if info.name in self.loaded:
            return self.loaded[info.name]
        if info.name in self.errors:
            raise self.errors[info.name]
        missing = [m for m in info.requires if importlib.util.find_spec(m) is None]
        if missing:
            err = BackendUnavailableError(
                f"The {info.name!r} backend needs {', '.join(missing)}, which is not installed. "
                f"Install it with: {info.install_hint}"
            )
            self.errors[info.name] = err
            raise err
        module_name, _, attr = info.target.partition(":")
        try:
            backend = getattr(importlib.import_module(module_name), attr)()
        except ImportError as cause:
            err = BackendUnavailableError(
                f"The {info.name!r} backend is installed but failed to import ({cause}). "
                f"Reinstall it with: {info.install_hint}"
            )
            err.__cause__ = cause
            self.errors[info.name] = err
            raise err from cause
        self.loaded[info.name] = backend
        return backend


_registry: _Registry | None = None


def _reg() -> _Registry:
    global _registry
    if _registry is None:
        _registry = _Registry()
    return _registry


def reset() -> None:
    """Forget plugins and cached backends; the next call rediscovers the entry points.

    Use it after installing a plugin in a running process (tests do).
    """
    global _registry
    _registry = None
    importlib.invalidate_caches()


def known() -> list[str]:
    """Every registered backend name (installed or not). Imports no framework.

    Returns:
        Names in preference order: "jax", "tf", "torch", then third-party backends, then
        the float64 reference "numpy".
    """
    return _reg().names()


def canonical_name(name: str) -> str:
    """Resolve an alias ("pytorch", "tensorflow", "flax") to its backend name.

    Args:
        name: a backend name or alias, case-insensitive.

    Returns:
        The registered name, e.g. "torch" for "PyTorch".

    Raises:
        BackendNotFoundError: no backend has that name or alias.

    Examples:
        >>> canonical_name("reference")
        'numpy'
    """
    return _reg().resolve(name).name


def get(name: str) -> Any:
    """The backend plugin object; imports its framework on first use.

    Args:
        name: a backend name or alias.

    Returns:
        The `xvae.backend.Backend` instance, one per process.

    Raises:
        BackendNotFoundError: no backend has that name or alias (the message lists them).
        BackendUnavailableError: its framework is missing (the message gives the pip extra)
            or failed to import.
    """
    return _reg().get(name)


def why_unavailable(name: str) -> str | None:
    """None if `get(name)` works, else the error message (used as test skip reasons).

    Args:
        name: a backend name or alias.

    Returns:
        None, or why the backend cannot be used (with the pip command that fixes it).
    """
    try:
        get(name)
    except (BackendNotFoundError, BackendUnavailableError) as err:
        return str(err)
    return None


def available() -> list[str]:
    """The installed and importable backends, e.g. ["jax", "tf", "torch", "numpy"].

    Imports each framework to find out (the first call can take seconds); "numpy", the
    float64 reference, is always there and always last.

    Returns:
        Backend names in preference order.
    """
    return [n for n in known() if why_unavailable(n) is None]


def info(name: str) -> BackendInfo:
    """The declaration of a backend (name, target, requires, extra, aliases).

    Args:
        name: a backend name or alias.

    Returns:
        Its `BackendInfo`; nothing is imported.
    """
    return _reg().resolve(name)


def broken() -> dict[str, str]:
    """Plugins that failed to load, with the cause.

    Returns:
        entry-point name -> "module: ExceptionType: message" (shown by `xvae backends`).
    """
    return dict(_reg().pm.broken)

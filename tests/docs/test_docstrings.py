"""Every public name has a docstring (Google style), and every name in xvae.__all__ is in
the API reference.

`mkdocs build --strict` fails on a broken docstring but renders a missing one as nothing,
so this walks the public surface itself: xvae.__all__ and the public names of the user-
facing submodules, including the public methods and properties of every public class.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import xvae

ROOT = Path(__file__).resolve().parents[2]
#: Submodules whose public names are API (xvae.__all__ is walked as well).
MODULES = ("xvae.losses", "xvae.optim", "xvae.datasets", "xvae.callbacks", "xvae.backends",
           "xvae.checkpoint", "xvae.plots", "xvae.backend", "xvae.models", "xvae.compare",
           "xvae.init", "xvae.naming")
#: Docstring markers of other styles (NumPy underlines, reST fields): one style, Google.
OTHER_STYLES = re.compile(r"^\s*(-{3,}|:param\b|:returns?:|:raises?\b|@param\b)", re.MULTILINE)
#: "Example:" is not a Google section to griffe (mkdocstrings): its >>> lines would render
#: as nested block quotes. The section is "Examples:".
SINGULAR_EXAMPLE = re.compile(r"^\s*Example:\s*$", re.MULTILINE)


def _public_names(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items() if not n.startswith("_")
                 and getattr(obj, "__module__", "").startswith(module.__name__)]
    return [n for n in names if not n.startswith("_")]


def _own_class_doc(cls: type) -> str | None:
    doc = cls.__dict__.get("__doc__")
    # dataclasses invent "Name(field, ...)" for a class without a docstring
    if doc and not doc.startswith(f"{cls.__name__}("):
        return doc
    return None


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    """Public methods and properties of `cls` defined in xvae (inherited ones included)."""
    seen = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("xvae"):
            continue
        for name, attr in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if isinstance(attr, (staticmethod, classmethod)):
                attr = attr.__func__
            if inspect.isfunction(attr) or isinstance(attr, property):
                yield name, getattr(cls, name) if not isinstance(attr, property) else attr


def _surface() -> Iterator[tuple[str, Any]]:
    """(qualified name, object) for every public function, class, method and property."""
    seen: set[int] = set()
    owners = [("xvae", xvae, [n for n in xvae.__all__ if n != "__version__"])]
    owners += [(m, importlib.import_module(m), None) for m in MODULES]
    for prefix, module, names in owners:
        if names is None:
            yield prefix, module
        for name in names if names is not None else _public_names(module):
            obj = getattr(module, name)
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if inspect.ismodule(obj):
                yield f"{prefix}.{name}", obj
            elif inspect.isclass(obj):
                yield f"{prefix}.{name}", obj
                for member, attr in _members(obj):
                    yield f"{prefix}.{name}.{member}", attr
            elif inspect.isfunction(obj) or isinstance(obj, xvae.hookimpl.__class__):
                yield f"{prefix}.{name}", obj


def _doc(obj: Any) -> str | None:
    if inspect.isclass(obj):
        return _own_class_doc(obj)
    if inspect.ismodule(obj) or inspect.isfunction(obj) or isinstance(obj, property):
        return inspect.getdoc(obj)  # an override inherits its base's docstring, as help() shows
    return getattr(obj, "__doc__", None)


SURFACE = dict(_surface())


def test_surface_is_walked():
    assert {"xvae.VAE", "xvae.VAE.fit", "xvae.losses.binary_cross_entropy", "xvae.backend.Program.run",
            "xvae.datasets.load", "xvae.callbacks.EarlyStopping"} <= set(SURFACE)


def test_every_public_name_has_a_docstring():
    missing = sorted(name for name, obj in SURFACE.items() if not (_doc(obj) or "").strip())
    assert not missing, f"{len(missing)} public names without a docstring:\n  " + "\n  ".join(missing)


def test_docstrings_are_google_style():
    other = sorted(name for name, obj in SURFACE.items() if OTHER_STYLES.search(_doc(obj) or ""))
    assert not other, f"docstrings in another style (NumPy/reST); use Google style: {other}"
    singular = sorted(name for name, obj in SURFACE.items() if SINGULAR_EXAMPLE.search(_doc(obj) or ""))
    assert not singular, f"'Example:' renders as a block quote in the API reference; write 'Examples:' in {singular}"


def test_every_exported_name_is_in_the_api_reference():
    rendered = set()
    for page in (ROOT / "docs" / "api").glob("*.md"):
        rendered |= set(re.findall(r"^::: (\S+)", page.read_text(), re.MULTILINE))
    absent = [name for name in xvae.__all__ if name != "__version__"
              and f"xvae.{name}" not in rendered
              and getattr(getattr(xvae, name), "__module__", None) not in rendered]
    assert not absent, f"names in xvae.__all__ missing from docs/api/*.md: {absent}"


@pytest.mark.parametrize("module", ["xvae", *MODULES, "xvae._specs"])
def test_docstring_examples_run(module):
    """The `>>>` examples in docstrings are checked by doctest, so they cannot rot either."""
    mod = importlib.import_module(module)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(mod, module, globs=vars(mod).copy()):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} failing docstring example(s) in {module}"

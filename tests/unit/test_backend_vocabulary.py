"""The three backends speak one vocabulary, as Keras 3's backend folders do (issue 11).

Every backend package has the same modules, and each role module (`_layers`, `_losses`,
`_optim`, `_weights`) declares in `__all__` the same public names, with the same parameter
lists for the same functions, so that a diff of two backends shows only the framework. The
backends' own modules (and the tests) reach into a role module only through those names.

The sources are parsed with `ast`: nothing here imports jax, tensorflow or torch, so the
check runs wherever the core runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ("xvae_jax", "xvae_tf", "xvae_torch")
ROLES = ("_layers", "_losses", "_optim", "_weights")

#: Functions whose parameters legitimately differ, with the reason (the framework's, not a name).
SIGNATURE_EXCEPTIONS = {
    # flax modules are applied outside (model.apply with params), so JAX's log_weights takes the
    # applied model's outputs and the likelihood's ELBO; tf/torch call the model themselves.
    ("_losses", "log_weights"),
}


def _tree(backend: str, module: str) -> ast.Module:
    return ast.parse((ROOT / backend / f"{module}.py").read_text(), filename=f"{backend}/{module}.py")


def _all(tree: ast.Module) -> list[str]:
    """The module's literal `__all__` (a computed one would hide the vocabulary from a reader)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id == "__all__":
            raise AssertionError("__all__ must be one literal list, not extended later")
    raise AssertionError("no __all__")


def _top_level(tree: ast.Module) -> dict[str, ast.AST]:
    """Name -> defining node, for functions, classes, assignments and imports at module level."""
    out: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, ast.Assign):
            out.update({t.id: node for t in node.targets if isinstance(t, ast.Name)})
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
        elif isinstance(node, ast.ImportFrom):
            out.update({(a.asname or a.name): node for a in node.names})
    return out


def _parameters(fn: ast.FunctionDef) -> tuple[tuple[str, ...], int, tuple[str, ...]]:
    """(positional parameter names, how many of them have defaults, keyword-only names)."""
    args = fn.args
    positional = tuple(a.arg for a in (*args.posonlyargs, *args.args))
    return positional, len(args.defaults), tuple(a.arg for a in args.kwonlyargs)


@pytest.mark.parametrize("module", ROLES)
def test_every_backend_declares_the_same_public_names(module):
    declared = {backend: sorted(_all(_tree(backend, module))) for backend in BACKENDS}
    first = declared[BACKENDS[0]]
    for backend, names in declared.items():
        assert names == first, f"{backend}/{module}.py __all__ {names} != {BACKENDS[0]}'s {first}"


@pytest.mark.parametrize("module", ROLES)
def test_every_declared_name_is_defined_and_functions_share_their_signature(module):
    trees = {backend: _tree(backend, module) for backend in BACKENDS}
    defined = {backend: _top_level(tree) for backend, tree in trees.items()}
    for name in _all(trees[BACKENDS[0]]):
        nodes = {}
        for backend in BACKENDS:
            assert name in defined[backend], f"{backend}/{module}.py declares {name!r} but does not define it"
            nodes[backend] = defined[backend][name]
        kinds = {backend: type(node).__name__ for backend, node in nodes.items()}
        if any(kind in ("FunctionDef", "ClassDef") for kind in kinds.values()):
            assert len(set(kinds.values())) == 1, f"{module}.{name} is not the same kind of thing: {kinds}"
        if kinds[BACKENDS[0]] == "FunctionDef" and (module, name) not in SIGNATURE_EXCEPTIONS:
            signatures = {backend: _parameters(node) for backend, node in nodes.items()}  # type: ignore[arg-type]
            assert len(set(signatures.values())) == 1, f"{module}.{name} signatures differ: {signatures}"


def test_the_exceptions_are_still_needed():
    """An exception that no longer differs must be dropped, so the list cannot go stale."""
    for module, name in SIGNATURE_EXCEPTIONS:
        signatures = {_parameters(_top_level(_tree(b, module))[name]) for b in BACKENDS}  # type: ignore[arg-type]
        assert len(signatures) > 1, f"{module}.{name} now has one signature: remove it from SIGNATURE_EXCEPTIONS"


def test_every_backend_has_the_same_modules():
    files = {backend: sorted(p.name for p in (ROOT / backend).glob("*.py")) for backend in BACKENDS}
    assert len({tuple(f) for f in files.values()}) == 1, files


def _role_uses(path: Path) -> list[tuple[str, str, int]]:
    """(role module, attribute, line) for every `_weights.x`-style access in a source file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [(node.value.id, node.attr, node.lineno) for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ROLES]


def test_callers_use_only_the_shared_vocabulary():
    """The backends' other modules and the tests reach a role module only through `__all__`."""
    vocabulary = {module: set(_all(_tree(BACKENDS[0], module))) for module in ROLES}
    callers = [p for backend in BACKENDS for p in (ROOT / backend).glob("*.py")]
    callers += sorted((ROOT / "tests").rglob("*.py"))
    checked = 0
    for path in callers:
        if path.stem in ROLES and path.parent.name in BACKENDS:
            continue  # a role module may use its own helpers
        for module, attr, line in _role_uses(path):
            checked += 1
            assert attr in vocabulary[module], (
                f"{path.relative_to(ROOT)}:{line} uses {module}.{attr}, which is not in the shared "
                f"vocabulary {sorted(vocabulary[module])}")
    assert checked > 20  # the backends do call them: the check is not vacuous

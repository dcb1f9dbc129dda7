"""What the README and docs claim about the package is true (issue 16, item 8)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_examples_import_only_what_they_use(page):
    """A quick start that imports numpy and never uses it teaches the wrong thing."""
    for block in _python_blocks(page):
        tree = ast.parse(block)
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    name = (alias.asname or alias.name).partition(".")[0]
                    assert name in used, f"{page.name}: `{name}` is imported and never used in:\n{block}"


def test_the_install_section_names_every_core_dependency():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0] for d in deps]
    page = (ROOT / "docs" / "quickstart.md").read_text()
    section = page.split("## Install one backend", 1)[1].split("```", 1)[0]
    assert "NumPy only" not in section
    for name in names:
        assert name in section, f"docs/quickstart.md does not name the core dependency {name}"


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_the_tf_backend_is_described_as_built(page):
    """It builds tf.Module models (xvae_tf/_layers.py says why not Keras layers), as docs/backends.md says."""
    layers = (ROOT / "xvae_tf" / "_layers.py").read_text()
    assert "tf.Module" in layers and "import keras" not in layers
    text = (ROOT / page).read_text()
    line = next(line for line in text.splitlines() if "TensorFlow" in line)
    assert "tf.Module" in line and "Keras" not in line, line

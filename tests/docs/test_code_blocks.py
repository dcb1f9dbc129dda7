"""Every Python block and every `xvae` command in the docs runs, so the docs cannot rot.

Collected from docs/**/*.md and README.md:

* ```python blocks run with `exec` in a fresh namespace, in a temporary working directory,
  with matplotlib on Agg. A line `--8<-- "path"` (pymdownx.snippets, as the site renders
  it) is replaced by that file, so an included file runs as shown.
* ```bash / ```console blocks: each line that starts with `xvae ` (or `$ xvae `) runs
  through `xvae.cli.main` in the block's temporary directory and must exit 0; other lines
  (`pip install ...`) are shell setup and are not run.

A block that names a backend (`backend="torch"`, `.to("tf")`, `--backend jax`, `--to tf`)
or sits under `<!-- skip-if-missing: torch, tf -->` is skipped, with the reason shown,
when that backend is not installed; under XVAE_REQUIRE_BACKENDS (CI) it fails instead.
`<!-- with-plugin-example -->` installs examples/plugin_example first (the plugin guide).
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

import xvae

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
RUN_LANGS = {"python", "py", "bash", "console", "sh", "shell"}
REQUIRED = {n for n in os.environ.get("XVAE_REQUIRE_BACKENDS", "").split(",") if n}
DIRECTIVE = re.compile(r"<!--\s*([\w-]+)\s*(?::\s*(.*?))?\s*-->")
SNIPPET = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$')
NAMED_BACKEND = re.compile(
    r"""backend\s*=\s*["']([\w-]+)["']|\.to\(\s*["']([\w-]+)["']\s*\)|backends\.get\(\s*["']([\w-]+)["']"""
    r"""|--backends?[ =]([\w,-]+)|--to[ =]([\w-]+)""")


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    directives: dict[str, str]

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        match = re.match(r"^(\s*)```\s*([\w-]*)", lines[i])
        if not match:
            i += 1
            continue
        indent, lang, start = match.group(1), match.group(2).lower(), i
        body = []
        i += 1
        while i < len(lines) and not re.match(rf"^{indent}```\s*$", lines[i]):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        i += 1
        directives = {}
        j = start - 1  # HTML comments right above the fence (blank lines allowed)
        while j >= 0 and (not lines[j].strip() or DIRECTIVE.fullmatch(lines[j].strip())):
            if m := DIRECTIVE.fullmatch(lines[j].strip()):
                directives[m.group(1)] = m.group(2) or ""
            j -= 1
        if lang in RUN_LANGS:
            found.append(Block(page, start + 1, lang, "\n".join(body) + "\n", directives))
    return found


BLOCKS = [b for page in PAGES for b in _blocks(page)]


def _expand_snippets(code: str) -> str:
    out = []
    for line in code.splitlines():
        match = SNIPPET.match(line)
        out.append((ROOT / match.group(1)).read_text() if match else line)
    return "\n".join(out) + "\n"


def _commands(block: Block) -> list[list[str]]:
    """The `xvae ...` command lines of a shell block, as argv lists without "xvae"."""
    commands = []
    for raw in block.code.splitlines():
        line = raw.strip().removeprefix("$ ").split(" #")[0].strip()
        if line.startswith("xvae "):
            commands.append(shlex.split(line)[1:])
    return commands


def _needed_backends(block: Block) -> list[str]:
    names = [n.strip() for n in block.directives.get("skip-if-missing", "").split(",") if n.strip()]
    for match in NAMED_BACKEND.finditer(block.code):
        for group in match.groups():
            names += [n for n in (group or "").split(",") if n]
    known = set(xvae.backends.known())
    out = []
    for name in names:
        try:
            canonical = xvae.backends.canonical_name(name)
        except xvae.BackendNotFoundError:
            continue  # not a registered backend (e.g. the plugin guide's): the block decides
        if canonical in known and canonical not in out:
            out.append(canonical)
    return out


def _skip_unless_installed(block: Block) -> None:
    for name in _needed_backends(block):
        reason = xvae.backends.why_unavailable(name)
        if reason and name in REQUIRED:
            pytest.fail(f"{block.id} needs the {name!r} backend, which XVAE_REQUIRE_BACKENDS requires: {reason}")
        if reason:
            pytest.skip(f"{block.id} needs the {name!r} backend: {reason}")


def test_blocks_are_found():
    pages = {b.page.name for b in BLOCKS}
    assert {"quickstart.md", "plugins.md", "cli.md", "README.md"} <= pages, pages


def _prepare(block: Block, tmp_path, monkeypatch, request) -> None:
    """Honour the block's directives, then run it in a temp cwd with a headless matplotlib."""
    if "no-run" in block.directives:
        pytest.skip(f"{block.id}: {block.directives['no-run']}")
    if "with-plugin-example" in block.directives:
        request.getfixturevalue("numpy32")
    _skip_unless_installed(block)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang in ("python", "py")], ids=lambda b: b.id)
def test_python_block(block: Block, tmp_path, monkeypatch, request):
    _prepare(block, tmp_path, monkeypatch, request)
    code = compile(_expand_snippets(block.code), block.id, "exec")
    exec(code, {"__name__": "__docs__"})  # noqa: S102 - running the docs is the point


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang not in ("python", "py") and _commands(b)],
                         ids=lambda b: b.id)
def test_command_block(block: Block, tmp_path, monkeypatch, request):
    from xvae.cli import main

    _prepare(block, tmp_path, monkeypatch, request)
    for argv in _commands(block):
        assert main(argv) == 0, f"{block.id}: `xvae {shlex.join(argv)}` failed"

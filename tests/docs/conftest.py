"""Fixtures of the documentation tests: the plugin guide's example, installed on the fly."""

from __future__ import annotations

import shutil
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from xvae import backends

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plugin_example"
PACKAGE = "xvae_numpy32"


def install_plugin_example(site: Path) -> dict[str, str]:
    """Write examples/plugin_example into `site` as an installed distribution.

    The package is copied and a *.dist-info is written whose entry_points.txt comes from
    the example's own pyproject.toml, so what is tested is the entry point the plugin guide
    tells authors to declare. Returns that entry-point table.
    """
    meta = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    entry_points = meta["entry-points"]["xvae.backends"]
    shutil.copytree(EXAMPLE / PACKAGE, site / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    dist = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[xvae.backends]\n{lines}")
    return entry_points


@pytest.fixture
def numpy32(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The example plugin installed on a temporary sys.path; the registry rediscovers it."""
    site = tmp_path_factory.mktemp("site-packages")
    entry_points = install_plugin_example(site)
    monkeypatch.syspath_prepend(str(site))
    backends.reset()
    yield entry_points
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    backends.reset()

"""The pluggy registry: entry points, aliases, errors, third-party and broken plugins."""

from __future__ import annotations

import importlib.util
import textwrap

import pytest

import xvae
from xvae import backends


@pytest.fixture(autouse=True)
def fresh_registry():
    backends.reset()
    yield
    backends.reset()


def _install_plugin(tmp_path, monkeypatch, module: str, body: str, entry: str | None = None) -> None:
    """A fake installed distribution whose entry point registers `module` in xvae.backends."""
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(body))
    dist = tmp_path / f"{module}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[xvae.backends]\n{entry or module} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    backends.reset()


def test_known_lists_the_three_frameworks_and_the_reference():
    names = backends.known()
    assert names[:3] == ["jax", "tf", "torch"] and names[-1] == "numpy"


@pytest.mark.parametrize(("alias", "name"), [("tensorflow", "tf"), ("TF", "tf"), ("pytorch", "torch"),
                                             ("flax", "jax"), ("keras", "tf"), ("reference", "numpy")])
def test_aliases(alias, name):
    assert backends.canonical_name(alias) == name


def test_unknown_backend_lists_known_names():
    with pytest.raises(xvae.BackendNotFoundError, match=r"Unknown backend 'caffe'. Known backends: jax, tf, torch"):
        backends.get("caffe")
    with pytest.raises(LookupError):
        backends.get("caffe")


def test_missing_framework_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "torch" else real(n, *a))
    backends.reset()
    with pytest.raises(xvae.BackendUnavailableError, match=r'needs torch, which is not installed. '
                                                           r'Install it with: pip install "xvae\[torch\]"'):
        backends.get("pytorch")
    assert "torch" not in backends.available()
    assert 'pip install "xvae[torch]"' in backends.why_unavailable("torch")
    with pytest.raises(xvae.BackendUnavailableError):
        xvae.VAE(xvae.VAESpec(input_dim=4, latents=2), backend="torch")  # at construction, not at fit


def test_reference_backend_is_always_available():
    assert "numpy" in backends.available()
    assert backends.get("reference") is backends.get("numpy")


TOY = """
    import xvae
    from xvae._reference import ReferenceBackend

    class ToyBackend(ReferenceBackend):
        name = "toy"

    @xvae.hookimpl
    def xvae_backends():
        return [xvae.BackendInfo(name="toy", target="toy_plugin:ToyBackend", aliases=("toy-alias",))]
"""


def test_third_party_plugin_through_entry_points(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, "toy_plugin", TOY)
    assert "toy" in backends.known()
    assert type(backends.get("toy-alias")).__name__ == "ToyBackend"
    vae = xvae.VAE(xvae.VAESpec(input_dim=4, latents=2), backend="toy")
    assert vae.backend == "toy" and vae.encode([[0.0, 1.0, 0.0, 1.0]])[0].shape == (1, 2)


def test_plugin_whose_framework_is_missing(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, "fw_plugin", """
        import xvae
        @xvae.hookimpl
        def xvae_backends():
            return [xvae.BackendInfo(name="mxnet", target="fw_plugin:Nope",
                                     requires=("mxnet_not_installed_here",), extra="mxnet")]
    """)
    with pytest.raises(xvae.BackendUnavailableError, match=r'pip install "xvae\[mxnet\]"'):
        backends.get("mxnet")


def test_installed_but_broken_framework(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, "half_plugin", """
        import xvae
        @xvae.hookimpl
        def xvae_backends():
            return [xvae.BackendInfo(name="half", target="half_backend:Backend", extra="half")]
    """)
    (tmp_path / "half_backend.py").write_text("import a_module_that_is_not_there\n")
    with pytest.raises(xvae.BackendUnavailableError, match="installed but failed to import") as info:
        backends.get("half")
    assert isinstance(info.value.__cause__, ImportError)


def test_broken_plugin_is_reported_not_raised(tmp_path, monkeypatch, capsys):
    _install_plugin(tmp_path, monkeypatch, "bad_plugin", "import mxnet_is_not_installed\n", entry="mxnet")
    assert "mxnet" in backends.broken()
    assert "numpy" in backends.available()  # the others still work
    with pytest.raises(xvae.BackendUnavailableError, match="failed to load: bad_plugin: ModuleNotFoundError"):
        backends.get("mxnet")
    from xvae.cli import main

    monkeypatch.setenv("XVAE_DISABLE_PLUGINS", "jax,tf,torch")  # unit tests import no framework
    backends.reset()
    assert main(["backends"]) == 0
    assert "broken plugin" in capsys.readouterr().out


def test_conflicting_plugins_are_reported(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, "dup_plugin", """
        import xvae
        @xvae.hookimpl
        def xvae_backends():
            return [xvae.BackendInfo(name="numpy", target="xvae._reference:ReferenceBackend")]
    """)
    assert "Conflicting backend 'numpy'" in backends.broken()["dup_plugin"]


def test_disable_plugins(monkeypatch):
    monkeypatch.setenv("XVAE_DISABLE_PLUGINS", "torch,tf")
    backends.reset()
    assert "torch" not in backends.known() and "tf" not in backends.known()
    assert "jax" in backends.known()

"""`import xvae` (and listing backends) must not import any framework."""

import json
import subprocess
import sys

FRAMEWORKS = ("jax", "flax", "optax", "tensorflow", "keras", "torch")


def test_import_xvae_imports_no_framework():
    code = (
        "import sys, json, xvae; xvae.backends.known(); xvae.VAESpec(input_dim=4, latents=2); "
        f"print(json.dumps([m for m in {FRAMEWORKS!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_plugin_modules_import_no_framework():
    code = (
        "import sys, json, xvae_jax.plugin, xvae_tf.plugin, xvae_torch.plugin; "
        f"print(json.dumps([m for m in {FRAMEWORKS!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_public_submodules_are_attributes_of_a_plain_import():
    """`xvae.plots` etc. work after `import xvae` alone, imported on first use (issue 16, item 7)."""
    names = ("backend", "backends", "callbacks", "checkpoint", "cli", "compare", "datasets", "history", "init",
             "losses", "models", "naming", "optim", "plots")
    code = (
        "import sys, json, xvae; heavy = [m for m in ('matplotlib', 'sklearn') if m in sys.modules]; "
        f"mods = [getattr(xvae, n).__name__ for n in {names!r}]; "
        "print(json.dumps([heavy, mods, 'plots' in dir(xvae)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, mods, listed = json.loads(out.stdout.strip().splitlines()[-1])
    assert heavy == [] and mods == [f"xvae.{n}" for n in names] and listed
    probe = subprocess.run([sys.executable, "-c", "import xvae; xvae.no_such_module"], capture_output=True, text=True)
    assert probe.returncode == 1 and "module 'xvae' has no attribute 'no_such_module'" in probe.stderr

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

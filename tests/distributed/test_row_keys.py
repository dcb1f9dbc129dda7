"""Distribution of the row keys other than x: loss="iwae" (noise of shape (B, k, L)) and
Dropout masks ("dropout"). Each is padded and split over the devices like x; a 2-device
trajectory equals the 1-device one within RTOL, per backend (jax Mesh, torch DDP, tf Mirrored)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from dp import HERE, RTOL, need, run
from test_torch_data_parallel import torchrun

pytestmark = pytest.mark.slow
SCRIPT = HERE / "row_keys.py"


def launch(backend: str, out) -> None:
    args = ["--backend", backend, "--out", str(out)]
    if backend == "jax":
        run([sys.executable, str(SCRIPT), *args], XLA_FLAGS="--xla_force_host_platform_device_count=2")
    elif backend == "tf":
        run([sys.executable, str(SCRIPT), *args, "--tf-logical-cpus", "2"])
    else:
        run(torchrun(*args, script=SCRIPT))


@pytest.mark.parametrize("backend", ["jax", "torch", "tf"])
def test_iwae_noise_and_dropout_masks_split_like_x_give_the_one_device_trajectory(backend, tmp_path):
    need(backend)
    out = tmp_path / "runs.npz"
    launch(backend, out)
    with np.load(out) as f:
        runs = dict(f)
    for variant in ("iwae", "dropout"):
        one, two = runs[f"{variant}-1-loss"], runs[f"{variant}-2-loss"]
        assert len(one) == 20 and np.all(np.isfinite(one))
        assert not np.allclose(one[0], one[-1], rtol=1e-3)  # it trained: the comparison means something
        # RTOL (dp.py): float32 sums reduced in another order, 20 Adam steps.
        np.testing.assert_allclose(two, one, rtol=RTOL)
        for key in (k for k in runs if k.startswith(f"{variant}-1-w-")):
            w1, w2 = runs[key], runs[key.replace("-1-w-", "-2-w-")]
            assert np.linalg.norm(w2 - w1) / (np.linalg.norm(w1) + 1e-12) < RTOL, key
        print(f"{backend} {variant}: 1 vs 2 devices, largest relative loss difference over 20 steps: "
              f"{np.max(np.abs(two - one) / np.abs(one)):.2e}")

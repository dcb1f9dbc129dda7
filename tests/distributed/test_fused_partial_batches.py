"""Fused steps (steps_per_call=2) and a last partial batch (21 rows, batch 5: the last
batch holds one real row, so one device's shard is padding only) on 2 devices give the
single-step, one-device numbers, in every backend; for a conditional VAE too, whose one-hot
condition is split over the devices with its rows."""

from __future__ import annotations

import pytest

from dp import assert_same_numbers, need, run, trajectory
from test_torch_data_parallel import torchrun

pytestmark = pytest.mark.slow
ARGS = ["--batch-size", "5", "--epochs", "3"]


@pytest.mark.parametrize("conditions", [0, 3], ids=["vae", "cvae"])
@pytest.mark.parametrize("backend", ["jax", "tf", "torch"])
def test_fused_steps_and_a_padding_only_shard_keep_the_numbers(backend, conditions, tmp_path):
    need(backend)
    args = [*ARGS, "--conditions", str(conditions)] if conditions else ARGS
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    run(trajectory(["--backend", backend, "--out", str(one), *args]))
    fused = ["--backend", backend, "--devices", "2", "--steps-per-call", "2", "--out", str(two), *args]
    if backend == "torch":
        run(torchrun(*fused))
    elif backend == "jax":
        run(trajectory(fused), XLA_FLAGS="--xla_force_host_platform_device_count=2")
    else:
        run(trajectory([*fused, "--tf-logical-cpus", "2"]))
    assert_same_numbers(one, two)  # a CVAE's labels are part of every step: a mis-split y would move the losses

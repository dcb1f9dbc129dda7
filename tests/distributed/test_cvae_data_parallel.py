"""A conditional VAE on 2 devices (scale-out, `fit(devices=2)`): its one-hot condition is
split over the devices with its rows, so fused steps and a padding-only shard (21 rows,
batch 5) give the one-device trajectory, in every backend."""

from __future__ import annotations

import pytest

from dp import assert_same_numbers, need, run, trajectory
from test_torch_data_parallel import torchrun

pytestmark = pytest.mark.slow
ARGS = ["--batch-size", "5", "--epochs", "3", "--conditions", "3"]


@pytest.mark.parametrize("backend", ["jax", "tf", "torch"])
def test_a_conditional_vae_on_two_devices_keeps_the_numbers(backend, tmp_path):
    need(backend)
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    run(trajectory(["--backend", backend, "--out", str(one), *ARGS]))
    fused = ["--backend", backend, "--devices", "2", "--steps-per-call", "2", "--out", str(two), *ARGS]
    if backend == "torch":
        run(torchrun(*fused))
    elif backend == "jax":
        run(trajectory(fused), XLA_FLAGS="--xla_force_host_platform_device_count=2")
    else:
        run(trajectory([*fused, "--tf-logical-cpus", "2"]))
    assert_same_numbers(one, two)  # the labels are part of every step: a mis-split y would move the losses

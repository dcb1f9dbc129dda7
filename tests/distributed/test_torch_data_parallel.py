"""PyTorch data parallelism: DDP over gloo processes started by torchrun (or by hand, as a
second host's launcher would, for the fault test)."""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pytest

import xvae
from dp import (MID_EPOCH, SCRIPT, assert_resumes, assert_same_numbers, free_port, need, run,
                stop_a_worker_mid_epoch, trajectory)

pytestmark = pytest.mark.slow


def torchrun(*args: str, script=SCRIPT) -> list[str]:
    exe = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    assert exe, "torchrun not found beside the Python interpreter"
    return [exe, "--nnodes=1", "--nproc-per-node=2", str(script), *args]


def test_two_processes_give_the_one_device_trajectory_and_checkpoints_resume_anywhere(tmp_path):
    need("torch")
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    run(trajectory(["--backend", "torch", "--out", str(one)]))
    run(torchrun("--backend", "torch", "--devices", "2", "--out", str(two),
                 "--checkpoint-dir", str(tmp_path / "ckpt")))
    difference = assert_same_numbers(one, two)
    print(f"torch 1 vs 2 processes, largest relative loss difference over 20 steps: {difference:.2e}")
    middle = tmp_path / "ckpt" / "epoch-0010.xvae"
    for backend in ("torch", "numpy"):
        resumed = tmp_path / f"resumed-{backend}.npz"
        run(trajectory(["--backend", backend, "--resume", str(middle), "--out", str(resumed)]))
        np.testing.assert_allclose(np.load(resumed)["loss"], np.load(one)["loss"][10:],
                                   rtol=1e-5 if backend == "torch" else 1e-4)


def test_devices_without_torchrun_or_not_matching_it_is_a_config_error(tmp_path):
    need("torch")
    model = xvae.VAE(xvae.VAESpec(input_dim=4, hidden=(3,), latents=2), backend="torch")
    with pytest.raises(xvae.ConfigError, match="torchrun --nproc-per-node=N"):
        model.fit(np.zeros((5, 4), np.float32), devices=2, progress=False)
    assert model.options.devices is None  # unchanged
    done = run(torchrun("--backend", "torch", "--devices", "3", "--out", str(tmp_path / "x.npz")), check=False)
    assert done.returncode != 0
    assert "devices=3 asks for more devices than the torch backend has: 2 available (rank 0, rank 1)" in done.stderr


@pytest.mark.parametrize("how", ["killed", "hung"])
def test_a_killed_or_hung_worker_stops_the_other_with_a_clear_error_and_the_checkpoint_resumes(how, tmp_path):
    """killed: SIGKILL (the connection closes); hung: SIGSTOP (nothing closes: only the
    process group's timeout, XVAE_DIST_TIMEOUT=10 s here, ends the wait). The ranks are
    started by hand with torchrun's variables, as a second host's launcher would."""
    need("torch")
    ckpt, port = tmp_path / "ckpt", str(free_port())
    args = trajectory(["--backend", "torch", "--devices", "2", "--out", str(tmp_path / "x.npz"),
                       "--checkpoint-dir", str(ckpt), *MID_EPOCH])
    ranks = [(args, dict(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2",
                         MASTER_ADDR="127.0.0.1", MASTER_PORT=port, XVAE_DIST_TIMEOUT="10",
                         OMP_NUM_THREADS="1")) for rank in (0, 1)]
    # bounded: killed ~2 s measured; hung: the 10 s timeout, plus the shutdown
    code, err, stopped = stop_a_worker_mid_epoch(ranks, ckpt, how, bound=45)
    said = next((line for line in err.splitlines() if "WorkerLostError:" in line), "")
    print(f"torch: rank 0 stopped {stopped:.1f} s after rank 1 was {how}; exit {code}: {said[:600]}")
    assert code != 0
    assert "WorkerLostError" in err and "lost a peer: rank 0 of 2" in err, err[-3000:]
    assert_resumes(ckpt, "torch", tmp_path)

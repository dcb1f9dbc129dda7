"""JAX data parallelism: a Mesh over 2 host devices (XLA's forced host device count)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import xvae
from dp import assert_same_numbers, need, run, trajectory

pytestmark = pytest.mark.slow
TWO = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


def test_two_devices_give_the_one_device_trajectory_and_checkpoints_resume_anywhere(tmp_path):
    need("jax")
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    run(trajectory(["--backend", "jax", "--devices", "1", "--out", str(one)]), **TWO)
    run(trajectory(["--backend", "jax", "--devices", "2", "--out", str(two),
                    "--checkpoint-dir", str(tmp_path / "ckpt")]), **TWO)
    difference = assert_same_numbers(one, two)
    print(f"jax 1 vs 2 devices, largest relative loss difference over 20 steps: {difference:.2e}")
    # The 2-device run's checkpoint after step 10 resumes on one device, and in the reference.
    middle = tmp_path / "ckpt" / "epoch-0010.xvae"
    for backend in ("jax", "numpy"):
        resumed = tmp_path / f"resumed-{backend}.npz"
        run(trajectory(["--backend", backend, "--devices", "1", "--resume", str(middle),
                        "--out", str(resumed)]), **TWO)
        loss = np.load(resumed)["loss"]
        np.testing.assert_allclose(loss, np.load(one)["loss"][10:], rtol=1e-5 if backend == "jax" else 1e-4)


def test_more_devices_than_exist_is_a_config_error_naming_them():
    need("jax")
    code = ("import numpy as np, xvae\n"
            "m = xvae.VAE(xvae.VAESpec(input_dim=4, hidden=(3,), latents=2), backend='jax')\n"
            "try:\n    m.fit(np.zeros((5, 4), np.float32), devices=3, progress=False)\n"
            "except xvae.ConfigError as e:\n    print('ERR', e)\n"
            "print('devices', m.options.devices)\n")
    import sys

    out = run([sys.executable, "-c", code], **TWO).stdout
    assert "ERR devices=3 asks for more devices than the jax backend has: 2 available (cpu:0, cpu:1)" in out
    assert "devices None" in out  # the model is unchanged


def test_sharded_program_splits_the_batch_on_the_data_axis():
    need("jax")
    import sys

    code = ("import numpy as np, xvae\n"
            "m = xvae.VAE(xvae.VAESpec(input_dim=4, hidden=(3,), latents=2), backend='jax')\n"
            "m.fit(np.random.default_rng(0).random((7, 4)).astype('f4'), batch_size=7, devices=2,"
            " steps_per_call=1, progress=False)\n"
            "p = m._program\n"
            "b = p._batch({'x': np.zeros((7, 4), 'f4'), 'noise': np.zeros((7, 2), 'f4'),"
            " 'mask': np.ones(7, 'f4'), 'beta': 1.0, 'lr': 1e-3}, train=True)\n"
            "print('mesh', dict(p.mesh.shape), 'x', b['x'].shape, len(b['x'].addressable_shards),"
            " b['x'].addressable_shards[0].data.shape, 'mask', np.asarray(b['mask']).tolist())\n"
            "print('params', len(next(iter(__import__('jax').tree_util.tree_leaves(p._params))).devices()))\n")
    out = run([sys.executable, "-c", code], **TWO).stdout
    assert "mesh {'data': 2} x (8, 4) 2 (4, 4) mask [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]" in out
    assert "params 2" in out


def test_two_processes_through_jax_distributed_give_the_one_device_trajectory(tmp_path):
    """Multi-host, exercised with two local processes (one CPU device each, gloo collectives)."""
    need("jax")
    import socket
    import subprocess

    from dp import HERE, env

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    run(trajectory(["--backend", "jax", "--out", str(one)]))
    procs = [subprocess.Popen([sys.executable, str(HERE / "jax_multiprocess.py"), "--backend", "jax",
                               "--devices", "2", "--out", str(two), "--checkpoint-dir", str(tmp_path / "ckpt")],
                              env=env(XVAE_TEST_COORDINATOR=f"127.0.0.1:{port}", XVAE_TEST_PROCESSES="2",
                                      XVAE_TEST_PROCESS_ID=str(i)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE)
             for i in (0, 1)]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-4000:]
    assert_same_numbers(one, two)
    assert len(list((tmp_path / "ckpt").iterdir())) == 20  # one writer: every epoch, once, whole
    model = xvae.load(tmp_path / "ckpt" / "epoch-0020.xvae", backend="jax")
    assert model.step == 20


@pytest.mark.parametrize("how", ["killed", "hung"])
def test_a_killed_or_hung_process_stops_the_other_within_the_heartbeat_timeout(how, tmp_path):
    """Two jax.distributed processes, heartbeat_timeout_seconds=10 (jax_multiprocess.py).
    killed: the gloo all-reduce fails on the closed connection -> WorkerLostError; the
    process then ends when JAX's coordination service finds the peer gone. hung: nothing
    fails in Python; the coordination service ends the survivor after the heartbeat
    timeout (JAX's own fatal error: jax.distributed.initialize takes no other handler)."""
    need("jax")
    from dp import HERE, MID_EPOCH, assert_resumes, free_port, stop_a_worker_mid_epoch

    ckpt, port = tmp_path / "ckpt", free_port()
    args = [sys.executable, str(HERE / "jax_multiprocess.py"), "--backend", "jax", "--devices", "2",
            "--out", str(tmp_path / "x.npz"), "--checkpoint-dir", str(ckpt), *MID_EPOCH]
    processes = [(args, dict(XVAE_TEST_COORDINATOR=f"127.0.0.1:{port}", XVAE_TEST_PROCESSES="2",
                             XVAE_TEST_PROCESS_ID=str(i), XVAE_TEST_HEARTBEAT="10")) for i in (0, 1)]
    code, err, stopped = stop_a_worker_mid_epoch(processes, ckpt, how, bound=60)  # 10 s heartbeats + exit
    said = next((line for line in err.splitlines() if "WorkerLostError:" in line or "Terminating process" in line), "")
    print(f"jax: process 0 stopped {stopped:.1f} s after process 1 was {how}; exit {code}: {said[:600]}")
    assert code != 0
    if how == "killed":
        assert "WorkerLostError" in err and "lost a peer: process 0 of 2" in err, err[-3000:]
    else:
        assert "JAX distributed service detected fatal errors" in err and "heartbeat" in err, err[-3000:]
    assert_resumes(ckpt, "jax", tmp_path)

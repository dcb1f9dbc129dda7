"""TensorFlow data parallelism: MirroredStrategy over two logical CPU devices."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from dp import assert_same_numbers, need, run, trajectory

pytestmark = pytest.mark.slow


def test_two_logical_devices_give_the_one_device_trajectory_and_checkpoints_resume_anywhere(tmp_path):
    need("tf")
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    run(trajectory(["--backend", "tf", "--out", str(one)]))
    run(trajectory(["--backend", "tf", "--devices", "2", "--tf-logical-cpus", "2", "--out", str(two),
                    "--checkpoint-dir", str(tmp_path / "ckpt")]))
    difference = assert_same_numbers(one, two)
    print(f"tf 1 vs 2 logical devices, largest relative loss difference over 20 steps: {difference:.2e}")
    middle = tmp_path / "ckpt" / "epoch-0010.xvae"
    for backend in ("tf", "numpy"):
        resumed = tmp_path / f"resumed-{backend}.npz"
        run(trajectory(["--backend", backend, "--resume", str(middle), "--out", str(resumed)]))
        np.testing.assert_allclose(np.load(resumed)["loss"], np.load(one)["loss"][10:],
                                   rtol=1e-5 if backend == "tf" else 1e-4)


def test_more_devices_than_exist_is_a_config_error_naming_them():
    need("tf")
    code = ("import numpy as np, xvae, tensorflow as tf\n"
            "cpu = tf.config.list_physical_devices('CPU')[0]\n"
            "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
            "m = xvae.VAE(xvae.VAESpec(input_dim=4, hidden=(3,), latents=2), backend='tf')\n"
            "for d in (3, ['cpu:0', 'cpu:0']):\n"
            "    try:\n        m.fit(np.zeros((5, 4), np.float32), devices=d, progress=False)\n"
            "    except xvae.ConfigError as e:\n        print('ERR', e)\n"
            "print('devices', m.options.devices)\n")
    out = run([sys.executable, "-c", code]).stdout
    assert "ERR devices=3 asks for more devices than the tf backend has: 2 available (cpu:0, cpu:1)" in out
    assert "ERR devices lists a device twice" in out
    assert "devices None" in out


def test_two_workers_through_tf_config_give_the_one_device_trajectory(tmp_path):
    """MultiWorkerMirroredStrategy, exercised with two local worker processes."""
    need("tf")
    import json
    import socket
    import subprocess

    from dp import env

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    run(trajectory(["--backend", "tf", "--out", str(one)]))
    procs = [subprocess.Popen(trajectory(["--backend", "tf", "--devices", "all", "--out", str(two),
                                          "--checkpoint-dir", str(tmp_path / "ckpt")]),
                              env=env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in (0, 1)]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-4000:]
    assert_same_numbers(one, two)
    assert len(list((tmp_path / "ckpt").iterdir())) == 20  # worker 0 alone writes


@pytest.mark.parametrize("how", ["killed", "hung"])
def test_a_killed_or_hung_worker_stops_the_other_with_a_clear_error_and_the_checkpoint_resumes(how, tmp_path):
    """Two TF_CONFIG workers. killed: the connection is refused; hung: TensorFlow's
    coordination service misses the worker's heartbeats (~10 s, its default). Either way the
    survivor's collective is aborted (UnavailableError) -> WorkerLostError."""
    need("tf")
    import json

    from dp import MID_EPOCH, assert_resumes, free_port, stop_a_worker_mid_epoch

    ckpt = tmp_path / "ckpt"
    cluster = {"worker": [f"localhost:{free_port()}", f"localhost:{free_port()}"]}
    args = trajectory(["--backend", "tf", "--devices", "all", "--out", str(tmp_path / "x.npz"),
                       "--checkpoint-dir", str(ckpt), *MID_EPOCH])
    workers = [(args, dict(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})))
               for i in (0, 1)]
    code, err, stopped = stop_a_worker_mid_epoch(workers, ckpt, how, bound=60)  # ~10 s heartbeats + exit
    said = next((line for line in err.splitlines() if "WorkerLostError:" in line), "")
    print(f"tf: worker 0 stopped {stopped:.1f} s after worker 1 was {how}; exit {code}: {said[:600]}")
    assert code != 0
    assert "WorkerLostError" in err and "lost a peer: worker 0 of 2" in err, err[-3000:]
    assert_resumes(ckpt, "tf", tmp_path)

"""Helpers of the data-parallel tests: each run is a subprocess (XLA flags, torchrun, TF
logical devices must be set before the framework starts), driving `trajectory.py`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import xvae

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPT = HERE / "trajectory.py"

#: 1 vs 2 devices, 20 Adam steps: the same float32 operations except the order of the
#: batch sums (each device sums its rows, then the partial sums are added), ~1e-7 relative
#: per sum (float32 eps 6e-8 times a few additions); 20 steps of Adam, whose normalised
#: update damps rather than amplifies such differences, stay well inside 1e-5 (the issue's bound).
RTOL = 1e-5


def need(backend: str) -> None:
    reason = xvae.backends.why_unavailable(backend)
    if reason:
        pytest.skip(f"{backend} backend unavailable: {reason}")


def env(**extra: str) -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join([str(ROOT), out.get("PYTHONPATH", "")])
    out.update(extra)
    return out


def run(args: list[str], *, timeout: float = 240, check: bool = True, **extra: str) -> subprocess.CompletedProcess:
    done = subprocess.run(args, env=env(**extra), capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    return done


def trajectory(args: list[str], **extra: str) -> list[str]:
    return [sys.executable, str(SCRIPT), *args]


def load(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    with np.load(path) as f:
        return f["loss"], {k: f[k] for k in f.files if k != "loss"}


def assert_same_numbers(a: Path, b: Path) -> float:
    """Per-step losses and final weights of two runs agree to RTOL; returns the largest
    relative loss difference."""
    loss_a, w_a = load(a)
    loss_b, w_b = load(b)
    assert loss_a.shape == loss_b.shape and len(loss_a) >= 2
    np.testing.assert_allclose(loss_b, loss_a, rtol=RTOL)
    for name in w_a:
        scale = np.linalg.norm(w_a[name]) + 1e-12
        assert np.linalg.norm(w_b[name] - w_a[name]) / scale < RTOL, name
    return float(np.max(np.abs(loss_b - loss_a) / np.abs(loss_a)))


#: Fault tests: 21 rows in batches of 7 (3 steps per epoch), each step slowed to >= 0.5 s.
MID_EPOCH = ["--batch-size", "7", "--sleep-per-step", "0.5"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_a_worker_mid_epoch(commands: list[tuple[list[str], dict[str, str]]], ckpt: Path, how: str,
                            bound: float) -> tuple[int, str, float]:
    """Start one process per (command, env), wait for epoch 3's checkpoint, then SIGKILL
    ("killed": its connections close) or SIGSTOP ("hung": nothing closes) the last process
    inside epoch 4, and time how long the first takes to exit.

    Returns (the first's exit status, its stderr, seconds from the signal to its exit);
    fails if it has not exited within `bound` seconds (a hang).
    """
    procs = [subprocess.Popen(args, env=env(**extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT) for args, extra in commands]
    try:
        deadline = time.monotonic() + 240
        while not (ckpt / "epoch-0003.xvae").exists():
            if time.monotonic() > deadline or procs[0].poll() is not None:
                raise AssertionError("no checkpoint appeared:\n" + procs[0].communicate(timeout=30)[1][-4000:])
            time.sleep(0.1)
        time.sleep(0.6)  # 3 steps of >= 0.5 s per epoch: the last process stops at epoch 4's 2nd step
        procs[-1].send_signal(signal.SIGKILL if how == "killed" else signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            _, err = procs[0].communicate(timeout=bound)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the survivor still runs {bound} s after a worker was {how}") from None
        return procs[0].returncode, err, time.monotonic() - stopped
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.communicate()


def assert_resumes(ckpt: Path, backend: str, tmp_path: Path) -> int:
    """The last checkpoint in `ckpt` is whole (it loads, hashes checked) and resume=True on
    one device continues with the one-device run's losses; returns its epoch."""
    last = xvae.checkpoint.latest(ckpt)
    assert last is not None
    epoch = xvae.load(last, backend=backend).epoch
    resumed, one = tmp_path / "resumed.npz", tmp_path / "one.npz"
    batches = MID_EPOCH[:2]
    run(trajectory(["--backend", backend, "--resume", str(last), "--out", str(resumed), *batches,
                    "--reference-out", str(one)]))
    np.testing.assert_allclose(np.load(resumed)["loss"], np.load(one)["loss"][epoch:], rtol=RTOL)
    return epoch

"""One benchmark variant in its own process, driven over a pipe by `benchmarks.run`.

A process per variant keeps thread pools, allocators and peak memory apart, while the
driver still interleaves repetitions (A, B, C, A, B, C, ...): each worker sits idle,
blocked on its pipe, while another one runs.

Variants: "xvae-step" (`VAE.fit(..., steps_per_call=1)`), "xvae-fused"
(`steps_per_call=K`), and every name of `benchmarks.baselines.VARIANTS`.

"pair:<xvae variant>:<backend>:<baseline>" holds xvae and a baseline in one process.

Commands (tuples): ("setup", problem dict) builds the variant and runs two warm-up epochs;
("run", epochs) times `epochs` epochs; ("pair", epochs, rounds) times the two sides of a
pair in alternation; ("breakdown", steps) times the pieces of a step;
("memory",) reports memory; ("quit",).
"""

from __future__ import annotations

import gc
import os
import time
import traceback
import warnings
from typing import Any

import numpy as np

from benchmarks._common import (
    LATENTS,
    KeyedDraws,
    Problem,
    cpu_seconds,
    draw_epoch,
    make_data,
    maxrss_mb,
    rss_mb,
)


def _median_time(fn: Any, reps: int = 5) -> float:
    out = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return float(np.median(out))


class XvaeRunner:
    """xvae's public `fit`, exactly as a user calls it (progress bar off)."""

    def __init__(self, backend: str, fused: bool, p: Problem, x: Any) -> None:
        import xvae

        self.backend, self.p, self.x = backend, p, x
        self.k = p.k if fused else 1
        self.spec = xvae.VAESpec(input_dim=x.shape[1], hidden=(p.hidden,), latents=LATENTS)
        self.model = xvae.VAE(self.spec, backend=backend, seed=p.seed, precision=p.precision,
                              device=p.device)
        self.optimizer = xvae.optim.Adam(1e-3)
        self.steps_per_call = self.k

    def epochs(self, n: int) -> float:
        hist = self.model.fit(self.x, epochs=n, batch_size=self.p.batch, optimizer=self.optimizer,
                              progress=False, steps_per_call=self.k, shuffle=True)
        return float(hist.history["loss"][-1])

    def info(self) -> dict[str, Any]:
        import xvae

        return {"backend_info": xvae.backends.get(self.backend).info()}

    def breakdown(self, steps: int) -> dict[str, Any]:
        """Per-step milliseconds of the pieces of `fit`, each measured alone.

        - draw: the core's per-epoch input work (`draw_epoch`: permutation, gather, noise);
        - seam: `Program.train_step(s)` in a tight loop on prepared host batches: the
          compiled step plus the backend's host->device conversion and dispatch;
        - compute: the same calls with inputs already staged on the device (the backend's
          private `_batch` conversion done beforehand): the compiled step and its dispatch.
        """
        from xvae import _training

        prog = self.model._program
        p = self.p
        epochs = iter(range(1, 1 << 31))

        def draw() -> Any:
            return _training.draw_epoch(self.x, None, seed=12345, epoch=next(epochs), shuffle=True, binarize=None,
                                        latents=LATENTS)

        draw_s = _median_time(draw, 3)
        data = draw()
        host = [b for b, _ in _training.batches(data, p.batch, self.k, 1.0, lr=self.model.learning_rate or 1e-3)]
        calls = max(1, steps // self.k)
        fused = self.k > 1

        def loop(batches: list[Any]) -> float:
            call = prog.train_steps if fused else prog.train_step
            prog.to_numpy(call(batches[0]))  # warm-up: a new input type may retrace
            start = time.perf_counter()
            m = None
            for i in range(calls):
                m = call(batches[i % len(batches)])
            prog.to_numpy(m)
            return time.perf_counter() - start

        out: dict[str, Any] = {"draw_ms": draw_s * 1e3 / p.steps_per_epoch}
        out["seam_ms"] = loop(host) * 1e3 / (calls * self.k)
        try:
            staged = [self._stage(prog, b, fused) for b in host]
        except Exception as err:  # noqa: BLE001 -- private internals moved: say so, do not fail the run
            out["compute_ms"] = None
            out["compute_note"] = f"could not stage inputs: {type(err).__name__}: {err}"
            return out
        prog._batch = lambda batch, *args, **kwargs: batch  # inputs are already device tensors
        try:
            out["compute_ms"] = loop(staged) * 1e3 / (calls * self.k)
        finally:
            del prog._batch
        return out

    def _stage(self, prog: Any, batch: Any, fused: bool) -> Any:
        """The backend's own converted batch, captured from a train call and put on its device.

        The backend's private `_batch` is called by its `train_step(s)` with whatever
        arguments it needs; the spy keeps the result and stops the call before any step runs.
        """
        captured: list[Any] = []
        original = prog._batch

        def spy(*args: Any, **kwargs: Any) -> Any:
            captured.append(original(*args, **kwargs))
            raise _Captured

        prog._batch = spy
        try:
            (prog.train_steps if fused else prog.train_step)(batch)
        except _Captured:
            pass
        finally:
            del prog._batch
        if not captured:
            raise RuntimeError("the backend's train step did not call its _batch conversion")
        converted = captured[0]
        if self.backend == "jax":
            import jax

            return jax.device_put(converted, prog.device)
        if self.backend == "tf":
            import tensorflow as tf

            with tf.device(prog.device):
                return {key: tf.identity(v) for key, v in converted.items()}
        return converted  # torch: already tensors on the program's device


class PairRunner:
    """xvae and its hand-written baseline in one process: the same thread pools, allocator
    and moment, so a same-process ratio carries none of the process-to-process variation
    that separate workers show on a shared host (benchmarks/README.md)."""

    def __init__(self, mode: str, backend: str, baseline: str, p: Problem, x: Any) -> None:
        self.xvae = XvaeRunner(backend, mode == "xvae-fused", p, x)
        self.baseline = BaselineRunner(baseline, p, x)
        self.steps_per_call = self.xvae.steps_per_call

    def epochs(self, n: int) -> float:
        self.baseline.epochs(n)
        return self.xvae.epochs(n)

    def info(self) -> dict[str, Any]:
        return self.xvae.info()

    def rounds(self, epochs: int, rounds: int) -> dict[str, list[float]]:
        """Wall seconds of `epochs` epochs of each side, alternating which goes first."""
        walls: dict[str, list[float]] = {"xvae": [], "baseline": []}
        for r in range(rounds):
            sides = ["xvae", "baseline"] if r % 2 == 0 else ["baseline", "xvae"]
            for side in sides:
                runner = self.xvae if side == "xvae" else self.baseline
                start = time.perf_counter()
                runner.epochs(epochs)
                walls[side].append(time.perf_counter() - start)
        return walls


class _Captured(Exception):
    """Stops a train call once its inputs are converted (see XvaeRunner._stage)."""


class BaselineRunner:
    def __init__(self, variant: str, p: Problem, x: Any) -> None:
        from benchmarks import baselines

        self.b = baselines.make(variant, p, x)
        self.p = p
        self.steps_per_call = self.b.steps_per_call

    def epochs(self, n: int) -> float:
        loss = float("nan")
        for _ in range(n):
            loss = self.b.epoch()
        return loss

    def info(self) -> dict[str, Any]:
        return {}

    def breakdown(self, steps: int) -> dict[str, Any]:
        draws = KeyedDraws(12345)
        draw_s = _median_time(lambda: draw_epoch(self.b.x, draws), 3)
        steps = max(self.steps_per_call, steps - steps % self.steps_per_call)
        return {"draw_ms": draw_s * 1e3 / self.p.steps_per_epoch,
                "compute_ms": self.b.compute_only(steps) * 1e3 / steps}


def _device_peak_mb(variant: str, device: str) -> float | None:
    """Peak accelerator memory of this process, where the framework reports it."""
    if device == "cpu":
        return None
    try:
        if variant.startswith("torch") or variant.endswith("torch"):
            import torch

            return torch.cuda.max_memory_allocated() / 2**20
        if variant.startswith(("flax", "jax")) or variant.endswith("jax"):
            import jax

            stats = jax.devices("gpu")[0].memory_stats() or {}
            return stats.get("peak_bytes_in_use", float("nan")) / 2**20
        if variant.startswith("tf") or variant.endswith("tf"):
            import tensorflow as tf

            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    except Exception:  # noqa: BLE001 (memory statistics are optional)
        return None
    return None


def serve(conn: Any, name: str) -> None:
    """The worker loop. `name`: "xvae-step:<backend>", "xvae-fused:<backend>" or a baseline."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # GPU: processes share it
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    # Said once per process and true of every TF worker; it would only clutter the log.
    warnings.filterwarnings("ignore", message="xvae's tf backend turned TensorFloat-32 off")
    runner: Any = None
    p: Problem | None = None
    x = None
    while True:
        msg = conn.recv()
        cmd = msg[0]
        try:
            if cmd == "quit":
                conn.send(("ok", {"maxrss_mb": maxrss_mb()}))
                return
            if cmd == "setup":
                runner = None
                gc.collect()
                p = Problem(**msg[1])
                x = make_data(p)
                start = time.perf_counter()
                if name.startswith("pair:"):
                    _, mode, backend, baseline = name.split(":")
                    runner = PairRunner(mode, backend, baseline, p, x)
                elif name.startswith("xvae-"):
                    mode, backend = name.split(":")
                    runner = XvaeRunner(backend, mode == "xvae-fused", p, x)
                else:
                    runner = BaselineRunner(name, p, x)
                build = time.perf_counter() - start
                first = _median_time(lambda r=runner: r.epochs(1), 1)
                second = _median_time(lambda r=runner: r.epochs(1), 1)
                conn.send(("ok", {"build_s": build, "first_epoch_s": first, "second_epoch_s": second,
                                  "compile_s": build + first - second, "rss_mb": rss_mb(),
                                  "maxrss_mb": maxrss_mb(), "steps_per_call": runner.steps_per_call,
                                  **runner.info()}))
            elif cmd == "run":
                epochs = int(msg[1])
                c0, start = cpu_seconds(), time.perf_counter()
                loss = runner.epochs(epochs)
                wall = time.perf_counter() - start
                conn.send(("ok", {"wall_s": wall, "steps": epochs * p.steps_per_epoch,  # type: ignore[union-attr]
                                  "cpu_s": cpu_seconds() - c0, "loss": loss}))
            elif cmd == "pair":
                epochs, rounds = int(msg[1]), int(msg[2])
                conn.send(("ok", {"steps": epochs * p.steps_per_epoch,  # type: ignore[union-attr]
                                  **runner.rounds(epochs, rounds)}))
            elif cmd == "breakdown":
                # The whole loop is timed here too, right before its pieces, so the fractions
                # compare measurements taken moments apart (the machine may drift).
                steps = int(msg[1])
                epochs = max(1, -(-steps // p.steps_per_epoch))  # type: ignore[union-attr]
                start = time.perf_counter()
                runner.epochs(epochs)
                fit_ms = (time.perf_counter() - start) * 1e3 / (epochs * p.steps_per_epoch)  # type: ignore[union-attr]
                conn.send(("ok", {"fit_ms": fit_ms, **runner.breakdown(steps)}))
            elif cmd == "memory":
                conn.send(("ok", {"rss_mb": rss_mb(), "maxrss_mb": maxrss_mb(),
                                  "device_peak_mb": _device_peak_mb(name, p.device if p else "cpu")}))
            else:
                conn.send(("error", f"unknown command {cmd!r}"))
        except Exception as err:  # noqa: BLE001 (reported, not raised)
            conn.send(("error", f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=6)}"))


def check_equivalence(backend: str, variants: list[str], p: Problem) -> dict[str, Any]:
    """Epoch losses of xvae's fit and of the baselines from identical weights, data and draws.

    xvae's model is given the baselines' initial weights and seed, so its per-epoch keyed
    draws (permutation, then noise) are the baselines' draws (`KeyedDraws`).
    """
    import xvae
    from benchmarks import baselines
    from benchmarks._common import init_weights

    x = make_data(p)
    spec = xvae.VAESpec(input_dim=x.shape[1], hidden=(p.hidden,), latents=LATENTS)
    out: dict[str, Any] = {}
    for k in (1, p.k):
        model = xvae.VAE(spec, backend=backend, seed=p.seed, precision=p.precision, device=p.device)
        model.set_weights(init_weights(p.hidden, p.seed))
        hist = model.fit(x, epochs=3, batch_size=p.batch, optimizer=xvae.optim.Adam(1e-3),
                         progress=False, steps_per_call=k)
        out[f"xvae-{'step' if k == 1 else 'fused'}"] = [float(v) for v in hist.history["loss"]]
    for name in variants:
        b = baselines.make(name, p, x)
        out[name] = [b.epoch() for _ in range(3)]
    return out


def check_child(conn: Any, backend: str, variants: list[str], problem: dict[str, Any]) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message="xvae's tf backend turned TensorFloat-32 off")
    try:
        conn.send(("ok", check_equivalence(backend, variants, Problem(**problem))))
    except Exception as err:  # noqa: BLE001 (reported, not raised)
        conn.send(("error", f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=6)}"))

"""A 60,000-row epoch with dynamic binarization: the host data path against device-resident data.

    python -m benchmarks.device_data                      # every installed backend, CPU
    python -m benchmarks.run --device-data                # the same, from the main driver
    python -m benchmarks.device_data --device gpu --precision fast --baselines --batch 1024

The data: MNIST's 10,000 test images (``--data-dir``, default ``$XVAE_DATA_DIR`` or
/work/shared/data/mnist) tiled 6x to 60,000 rows, intensities in [0, 1], binarized
dynamically every epoch (`fit(binarize="dynamic")`), shuffled. The model: VAE 784-500-20,
Adam(1e-3), batch 128 (469 steps an epoch, the last one padded).

Variants, each one `VAE.fit(x, epochs=1, ...)` per timed epoch, all in one process per
backend, interleaved round by round (A B C D, then B C D A, ...):

- ``before (host K=1, streamed draw)``: the host loop as it was before issue 13: the epoch's
  order, binarization and noise drawn in order from one `numpy.random.Generator` (the
  pre-issue `draw_epoch`, kept here as `streamed_draw_epoch`), every batch shipped;
- ``default``: `fit`'s defaults (`device_data="auto"`, one step per call): on a CPU the host
  loop with keyed draws, on an accelerator device-resident data;
- ``host K=1``: the host loop (`fit(device_data=0)`): the core draws the epoch on the host
  with the keyed generator and ships every batch;
- ``host K=k``: the same with `steps_per_call=k`;
- ``device K=k``: device-resident data (`fit(device_data=0.5)`), k steps per call;
- ``device epoch``: device-resident data, `steps_per_call="epoch"` (one call an epoch).

With ``--baselines`` (jax and torch), hand-written loops that keep the data on the device
too, in the same process and rounds: ``flax epoch`` (the step under `jax.lax.scan` over the
whole epoch, `jax.random` binarization and noise inside the jit) and ``torch loop`` (eager
PyTorch, fused Adam, `torch.rand`/`randn` on the device).

Reported per variant: the epoch's wall time (median and min-max over the rounds) and the
share of it spent outside compiled calls. The latter is measured in separate, instrumented
epochs (``--share-rounds``): every `Program` call that runs compiled code (the training
calls `train_step`, `train_steps`, `train_resident`; the history's per-latent KL comes out
of them, with no pass of its own) is timed up to the end of its computation (its outputs on
the host), and outside = 1 - (sum of those call times) / (the instrumented epoch's wall time).
A call's time includes the backend's own input conversion, so for the host path this
share is a lower bound (generous to "before"). The load average (1 min) is recorded at
every round: the host is shared.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):  # `python benchmarks/device_data.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
BACKENDS = ("jax", "tf", "torch")
DEFAULT_DATA = "/work/shared/data/mnist"
HIDDEN, LATENTS, LR = 500, 20, 1e-3
BEFORE = "before (host K=1, streamed draw)"  # the baseline of the table's last column


def load_rows(data_dir: str, rows: int) -> np.ndarray:
    """MNIST test images as float32 (rows, 784) in [0, 1], tiled to `rows`; without the file,
    synthetic intensities of MNIST's shape and mean ink (`data_source` says which)."""
    path = Path(data_dir) / "t10k-images-idx3-ubyte.gz"
    if not path.exists():
        rng = np.random.default_rng(0)
        return (rng.random((rows, 784), dtype=np.float32) * (rng.random((rows, 784)) < 0.19)).astype(np.float32)
    raw = gzip.decompress(path.read_bytes())
    count = int.from_bytes(raw[4:8], "big")
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(count, 784).astype(np.float32) / np.float32(255.0)
    reps = -(-rows // count)
    return np.ascontiguousarray(np.tile(images, (reps, 1))[:rows])


# --------------------------------------------------------------------------- xvae variants
class XVAEVariant:
    """One `VAE` trained one epoch per timed call with fixed fit arguments."""

    def __init__(self, backend: str, x: np.ndarray, *, device: str, precision: str, batch: int,
                 steps_per_call: int | str, device_data: float | str, draw: Callable[..., Any] | None = None) -> None:
        import xvae

        self.x, self.draw = x, draw  # draw: replaces the core's draw_epoch during this variant's epochs
        self.model = xvae.VAE(xvae.VAESpec(input_dim=784, hidden=(HIDDEN,), latents=LATENTS), backend=backend,
                              seed=0, precision=precision, device=None if device == "cpu" else device)
        self.kwargs = {"batch_size": batch, "binarize": "dynamic", "steps_per_call": steps_per_call,
                       "device_data": device_data, "verbose": 0, "optimizer": xvae.optim.Adam(LR)}

    def epoch(self) -> float:
        """Seconds of one epoch, from fit's on_epoch_begin to its on_epoch_end (the data's
        placement on the device, once per fit call, is before the first epoch begins)."""
        import xvae

        marks: list[float] = []
        clock = xvae.callbacks.LambdaCallback(on_epoch_end=lambda *_: marks.append(time.perf_counter()))
        clock.on_epoch_begin = lambda *_: marks.append(time.perf_counter())  # type: ignore[method-assign]
        from xvae import _training

        keyed_draw = _training.draw_epoch
        if self.draw is not None:
            _training.draw_epoch = self.draw
        try:
            self.model.fit(self.x, epochs=1, callbacks=[clock], **self.kwargs)
        finally:
            _training.draw_epoch = keyed_draw
        return marks[1] - marks[0]

    #: Program calls that run compiled code (the history's per-latent KL comes out of them).
    TRAINING = ("train_step", "train_steps", "train_resident")

    def instrumented_epoch(self) -> tuple[float, float]:
        """(wall, seconds inside the training calls), each call timed until its outputs reach the host."""
        program = self.model._program
        inside = [0.0]
        originals = {}
        for name in self.TRAINING:
            original = getattr(program, name)
            originals[name] = original

            def timed(*args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
                start = time.perf_counter()
                out = _original(*args, **kwargs)
                program.to_numpy(out)  # the end of the call's computation
                inside[0] += time.perf_counter() - start
                return out

            setattr(program, name, timed)
        try:
            wall = self.epoch()
        finally:
            for name in originals:
                delattr(program, name)
        return wall, inside[0]


def streamed_draw_epoch(x: np.ndarray, y: Any, *, seed: int | None, epoch: int, shuffle: bool,
                        binarize: str | None, latents: Any, scratch: dict[str, Any] | None = None,
                        dropout: Any = None) -> Any:
    """The host draw before issue 13, for the "before" variant: order, dynamic binarization
    and noise drawn in that order from one `numpy.random.Generator` per epoch (the pre-issue
    `xvae._training.draw_epoch`, its permuted x gathered into a kept scratch array as there;
    this benchmark's VAE has no Dropout). Other numbers than the keyed draws, the same work."""
    from xvae._training import EpochData, gather_rows

    rng = np.random.default_rng([0 if seed is None else seed, epoch])
    order = rng.permutation(len(x)) if shuffle else None
    if order is not None:
        x = gather_rows(x, order, scratch)
        y = None if y is None else np.take(y, order, axis=0)
    if binarize == "dynamic":
        x = (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)
    noise = rng.standard_normal((len(x), *np.atleast_1d(latents)), dtype=np.float32)
    return EpochData(x, y, noise, None)


# --------------------------------------------------------------------------- hand-written loops
def _glorot(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {"enc": (784, HIDDEN), "mean": (HIDDEN, LATENTS), "logvar": (HIDDEN, LATENTS),
              "dec": (LATENTS, HIDDEN), "out": (HIDDEN, 784)}
    out = {}
    for name, (i, o) in shapes.items():
        limit = np.sqrt(6.0 / (i + o))
        out[name + ".w"] = rng.uniform(-limit, limit, (i, o)).astype(np.float32)
        out[name + ".b"] = np.zeros(o, np.float32)
    return out


class FlaxEpoch:
    """Hand-written JAX: data on the device, one jit call per epoch (lax.scan), jax.random draws."""

    def __init__(self, x: np.ndarray, *, device: str, precision: str, batch: int) -> None:
        import jax
        import jax.numpy as jnp
        import optax

        self.jax = jax
        dev = jax.devices("cpu" if device == "cpu" else "gpu")[0]
        n = len(x)
        steps = -(-n // batch)
        self.x = jax.device_put(x, dev)
        tx = optax.adam(LR, eps=1e-8)
        params = jax.device_put({k: jnp.asarray(v) for k, v in _glorot().items()}, dev)
        self.state = (params, tx.init(params))
        self.key = jax.random.PRNGKey(0)
        mp = "float32" if precision == "highest" else None

        def loss_fn(p: Any, xb: Any, eps: Any, mask: Any) -> Any:
            h = jax.nn.relu(xb @ p["enc.w"] + p["enc.b"])
            mean, logvar = h @ p["mean.w"] + p["mean.b"], h @ p["logvar.w"] + p["logvar.b"]
            z = mean + jnp.exp(0.5 * logvar) * eps
            logits = jax.nn.relu(z @ p["dec.w"] + p["dec.b"]) @ p["out.w"] + p["out.b"]
            rec = jnp.sum(jnp.maximum(logits, 0) - logits * xb + jnp.log1p(jnp.exp(-jnp.abs(logits))), -1)
            kl = -0.5 * jnp.sum(1.0 + logvar - mean**2 - jnp.exp(logvar), -1)
            return jnp.sum(mask * (rec + kl)) / jnp.sum(mask)

        def epoch(state: Any, x: Any, key: Any) -> Any:
            kp, kb, kn = jax.random.split(key, 3)
            order = jax.random.permutation(kp, n)
            ids = jnp.concatenate([order, jnp.zeros(steps * batch - n, order.dtype)]).reshape(steps, batch)
            mask = (jnp.arange(steps * batch) < n).astype(jnp.float32).reshape(steps, batch)

            def step(state: Any, inp: Any) -> Any:
                rows, m, i = inp
                params, opt = state
                xb = jnp.take(x, rows, axis=0)
                xb = (jax.random.uniform(jax.random.fold_in(kb, i), xb.shape) < xb).astype(jnp.float32)
                eps = jax.random.normal(jax.random.fold_in(kn, i), (batch, LATENTS))
                loss, grads = jax.value_and_grad(loss_fn)(params, xb, eps, m)
                updates, opt = tx.update(grads, opt, params)
                return (optax.apply_updates(params, updates), opt), loss

            with jax.default_matmul_precision(mp):
                return jax.lax.scan(step, state, (ids, mask, jnp.arange(steps)))

        self.step = jax.jit(epoch, donate_argnums=0)

    def epoch(self) -> float:
        start = time.perf_counter()
        self.key, sub = self.jax.random.split(self.key)
        self.state, losses = self.step(self.state, self.x, sub)
        self.loss = float(np.mean(self.jax.device_get(losses)))
        return time.perf_counter() - start


class TorchLoop:
    """Hand-written PyTorch: data on the device, eager steps, fused Adam, on-device draws."""

    def __init__(self, x: np.ndarray, *, device: str, precision: str, batch: int) -> None:
        import torch

        self.torch = torch
        self.dev = torch.device("cuda" if device in ("gpu", "cuda") else device)
        if self.dev.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = precision == "fast"
            torch.backends.cudnn.allow_tf32 = precision == "fast"
        self.x = torch.from_numpy(x).to(self.dev)
        self.p = {k: torch.from_numpy(v).to(self.dev).requires_grad_() for k, v in _glorot().items()}
        self.opt = torch.optim.Adam(self.p.values(), lr=LR, eps=1e-8, fused=True)
        self.batch = batch
        self.gen = torch.Generator(self.dev).manual_seed(0)

    def epoch(self) -> float:
        start = time.perf_counter()
        torch, p, b, n = self.torch, self.p, self.batch, len(self.x)
        order = torch.randperm(n, device=self.dev, generator=self.gen)
        losses = []
        for lo in range(0, n, b):
            xb = self.x.index_select(0, order[lo:lo + b])
            xb = (torch.rand(xb.shape, device=self.dev, generator=self.gen) < xb).float()
            eps = torch.randn((len(xb), LATENTS), device=self.dev, generator=self.gen)
            h = torch.relu(xb @ p["enc.w"] + p["enc.b"])
            mean, logvar = h @ p["mean.w"] + p["mean.b"], h @ p["logvar.w"] + p["logvar.b"]
            z = mean + torch.exp(0.5 * logvar) * eps
            logits = torch.relu(z @ p["dec.w"] + p["dec.b"]) @ p["out.w"] + p["out.b"]
            rec = torch.nn.functional.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum(-1)
            kl = -0.5 * torch.sum(1.0 + logvar - mean.square() - logvar.exp(), -1)
            loss = (rec + kl).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            losses.append(loss.detach())
        self.loss = float(torch.stack(losses).mean().item())  # the one host sync
        return time.perf_counter() - start


# --------------------------------------------------------------------------- one backend
def measure_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    x = load_rows(args.data_dir, args.rows)
    common = {"device": args.device, "precision": args.precision, "batch": args.batch}
    variants: dict[str, Any] = {
        BEFORE: XVAEVariant(backend, x, steps_per_call=1, device_data=0.0, draw=streamed_draw_epoch, **common),
        "default": XVAEVariant(backend, x, steps_per_call=1, device_data="auto", **common),
        "host K=1": XVAEVariant(backend, x, steps_per_call=1, device_data=0.0, **common),
        f"host K={args.k}": XVAEVariant(backend, x, steps_per_call=args.k, device_data=0.0, **common),
        f"device K={args.k}": XVAEVariant(backend, x, steps_per_call=args.k, device_data=0.5, **common),
        "device epoch": XVAEVariant(backend, x, steps_per_call="epoch", device_data=0.5, **common),
    }
    if args.baselines and backend == "jax":
        variants["flax epoch (hand-written)"] = FlaxEpoch(x, **common)
    if args.baselines and backend == "torch":
        variants["torch loop (hand-written)"] = TorchLoop(x, **common)
    out: dict[str, Any] = {"variants": {}, "loadavg": [], "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                           "threads": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}}
    for name, v in variants.items():  # warm-up: compiles
        out["variants"][name] = {"first_epoch_s": v.epoch(), "epoch_s": []}
        _say(f"[{backend}] {name}: first epoch {out['variants'][name]['first_epoch_s']:.1f} s")
    names = list(variants)
    for r in range(args.rounds):
        out["loadavg"].append(os.getloadavg()[0])
        for name in names[r % len(names):] + names[:r % len(names)]:
            out["variants"][name]["epoch_s"].append(variants[name].epoch())
        _say(f"[{backend}] round {r + 1}/{args.rounds} (load {out['loadavg'][-1]:.1f}): " + "  ".join(
            f"{n}={out['variants'][n]['epoch_s'][-1]:.2f}s" for n in names))
    for r in range(args.share_rounds):
        for name in names:
            v = variants[name]
            if isinstance(v, XVAEVariant):
                wall, train = v.instrumented_epoch()
                r = out["variants"][name]
                r.setdefault("outside_share", []).append(1.0 - train / wall)
                r.setdefault("instrumented", []).append({"wall_s": wall, "training_calls_s": train})
    for name, r in out["variants"].items():
        r["median_s"] = statistics.median(r["epoch_s"])
        if r.get("outside_share"):
            r["outside_share_median"] = statistics.median(r["outside_share"])
    return out


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the table
def table(results: dict[str, Any]) -> str:
    """The Markdown table docs/performance.md quotes (tests/docs/test_numbers.py checks it)."""
    lines = ["| backend | variant | epoch (s), median [min-max] | steps/s | outside compiled calls | "
             "vs before |", "|---|---|---|---|---|---|"]
    steps = -(-results["rows"] // results["batch"])
    for backend, entry in results["backends"].items():
        if "error" in entry:
            lines.append(f"| {backend} | failed: {entry['error'][:80]} | | | | |")
            continue
        base = entry["variants"][BEFORE]["median_s"]
        for name, r in entry["variants"].items():
            share = f"{100 * r['outside_share_median']:.1f}%" if "outside_share_median" in r else ""
            lines.append(f"| {backend} | {name} | {r['median_s']:.2f} [{min(r['epoch_s']):.2f}-{max(r['epoch_s']):.2f}] "
                         f"| {steps / r['median_s']:.0f} | {share} | {base / r['median_s']:.2f}x |")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.device_data", description=__doc__.split("\n")[0])
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="highest", choices=("highest", "fast"))
    ap.add_argument("--data-dir", default=os.environ.get("XVAE_DATA_DIR") or DEFAULT_DATA)
    ap.add_argument("--rows", type=int, default=60_000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--k", type=int, default=67, help="steps per call of the K variants (469 = 7 x 67)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--share-rounds", type=int, default=1)
    ap.add_argument("--baselines", action="store_true", help="hand-written device-resident flax/torch loops too")
    ap.add_argument("--name", default=None, help="results file stem (default device-data-<device>)")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--merge", action="store_true",
                    help="replace only these backends in an existing results file of the same name")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.worker:  # one backend, in its own process: JSON on stdout
        print(json.dumps(measure_backend(args.worker, args)))
        return 0
    from benchmarks._common import machine_info

    info = machine_info()
    info["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    info["command"] = " ".join(["python -m benchmarks.device_data", *(argv if argv is not None else sys.argv[1:])])
    source = Path(args.data_dir) / "t10k-images-idx3-ubyte.gz"
    results: dict[str, Any] = {"data": str(source) if source.exists() else "synthetic", "rows": args.rows, "batch": args.batch, "k": args.k, "device": args.device,
                               "precision": args.precision, "rounds": args.rounds, "machine": info,
                               "backends": {}}
    forwarded = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--device-data"]
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        _say(f"[{backend}] starting ...")
        proc = subprocess.run([sys.executable, "-m", "benchmarks.device_data", *forwarded, "--worker", backend],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                              cwd=str(Path(__file__).resolve().parents[1]))
        if proc.returncode:
            results["backends"][backend] = {"error": f"worker exited {proc.returncode}"}
            continue
        results["backends"][backend] = json.loads(proc.stdout.strip().splitlines()[-1])
    name = args.name or f"device-data-{args.device.replace(':', '')}" + ("" if args.precision == "highest" else "-fast")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results["runs"] = [{"command": info["command"], "date": info["date"], "backends": list(results["backends"])}]
    if args.merge and (out / f"{name}.json").exists():  # an earlier run's other backends stay
        earlier = json.loads((out / f"{name}.json").read_text())
        kept = {b: r for b, r in earlier["backends"].items() if b not in results["backends"]}
        results["backends"] = {**kept, **results["backends"]}
        results["runs"] = earlier.get("runs", [{"command": earlier["machine"]["command"],
                                                "date": earlier["machine"]["date"], "backends": list(kept)}]) + results["runs"]
    (out / f"{name}.json").write_text(json.dumps(results, indent=1) + "\n")
    md = table(results)
    (out / f"{name}.md").write_text(f"# {args.rows:,}-row epoch, dynamic binarization ({args.device})\n\n{md}\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

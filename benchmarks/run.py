"""Benchmark xvae's `fit` against hand-written loops, every installed backend, one command.

    python -m benchmarks.run                 # the main table (minutes on 2 cores)
    python -m benchmarks.run --quick         # a smoke run (about a minute or two)
    python -m benchmarks.run --scaling       # batch 32..2048 x hidden 500, 2000, with a plot
    python -m benchmarks.run --device gpu --precision highest   # on an accelerator
    python -m benchmarks.run --device-data   # 60,000-row epoch: host data path vs device-resident

Every variant runs in its own process (`benchmarks._worker`); repetitions are interleaved
across the variants of a backend, so slow drifts of the machine hit all of them alike.
Results go to benchmarks/results/<name>.json and .md (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/run.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import gemm_floor
from benchmarks._common import Problem, machine_info, summarize
from benchmarks.baselines import BEST_FUSED, BEST_STEP, FRAMEWORK

RESULTS = Path(__file__).resolve().parent / "results"
BACKENDS = ("jax", "tf", "torch")
SCALING_BATCHES = (32, 128, 512, 2048)
SCALING_HIDDEN = (500, 2000)


# --------------------------------------------------------------------------- workers
class Worker:
    """A variant in its own spawned process."""

    def __init__(self, name: str, ctx: Any) -> None:
        from benchmarks import _worker

        self.name = name
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker.serve, args=(child, name), daemon=True)
        self.proc.start()
        child.close()

    def ask(self, *msg: Any) -> dict[str, Any]:
        self.conn.send(msg)
        status, value = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"{self.name}: {value}")
        return value

    def close(self) -> dict[str, Any]:
        try:
            out = self.ask("quit")
        except (RuntimeError, EOFError, OSError):
            out = {}
        self.proc.join(timeout=30)
        return out


def _available_backends(wanted: list[str] | None) -> list[str]:
    # Asked in a child process: `xvae.backends.available()` imports every framework to
    # check it, and this driver should stay small (its workers are forked from it).
    code = "import json, xvae; print(json.dumps(xvae.backends.available()))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    names = [b for b in json.loads(proc.stdout.strip().splitlines()[-1]) if b in BACKENDS]
    if wanted:
        missing = [b for b in wanted if b not in names]
        if missing:
            print(f"skipping backends not available here: {missing} (available: {names})", file=sys.stderr)
        names = [b for b in wanted if b in names]
    return names


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def measure_group(names: list[str], p: Problem, *, reps: int, target_s: float, epochs: int | None,
                  gap: float, breakdown_steps: int, breakdown_reps: int, ctx: Any, label: str
                  ) -> dict[str, Any]:
    """Set up every variant (one process each), then interleaved timed repetitions."""
    workers: dict[str, Worker] = {}
    results: dict[str, Any] = {}
    try:
        for name in names:
            _say(f"[{label}] setting up {name} ...")
            w = Worker(name, ctx)
            try:
                results[name] = {"setup": w.ask("setup", p.dict()), "reps": []}
            except Exception as err:  # noqa: BLE001 (reported, not raised)
                _say(f"[{label}] {name} failed: {err}")
                results[name] = {"error": str(err)}
                w.close()
                continue
            workers[name] = w
        if not workers:
            return results
        # The same number of epochs for every variant: enough for the slowest to run ~target_s.
        slowest = max(r["setup"]["second_epoch_s"] for n, r in results.items() if n in workers)
        n_epochs = epochs or max(1, min(50, round(target_s / max(slowest, 1e-6))))
        order = list(workers)
        for rep in range(reps):
            rot = order[rep % len(order):] + order[:rep % len(order)]  # rotate: no fixed position
            for name in rot:
                time.sleep(gap)  # let the previous process' spinning threads go to sleep
                results[name]["reps"].append(workers[name].ask("run", n_epochs))
            line = "  ".join(f"{n}={results[n]['reps'][-1]['steps'] / results[n]['reps'][-1]['wall_s']:.1f}"
                             for n in order)
            _say(f"[{label}] rep {rep + 1}/{reps} (steps/s): {line}")
        if breakdown_steps:
            for _ in range(max(1, breakdown_reps)):
                for name in order:
                    if "breakdown_error" in results[name]:
                        continue
                    time.sleep(gap)
                    try:
                        results[name].setdefault("breakdown_reps", []).append(
                            workers[name].ask("breakdown", breakdown_steps))
                    except RuntimeError as err:  # the throughput numbers stand without it
                        _say(f"[{label}] breakdown of {name} failed: {err}")
                        results[name]["breakdown_error"] = str(err)
        for name, w in workers.items():
            results[name]["memory"] = w.ask("memory")
    finally:
        for name, w in workers.items():
            results[name]["exit"] = w.close()
    for name, r in results.items():
        if "reps" not in r:
            continue
        r["steps_per_s"] = summarize([x["steps"] / x["wall_s"] for x in r["reps"]])
        r["cpu_per_wall"] = summarize([x["cpu_s"] / x["wall_s"] for x in r["reps"]])
        r["epochs_per_rep"] = n_epochs
        if r.get("breakdown_reps"):
            keys = {k for b in r["breakdown_reps"] for k, v in b.items() if isinstance(v, (int, float))}
            r["breakdown"] = {k: float(np.median([b[k] for b in r["breakdown_reps"] if b.get(k) is not None]))
                              for k in keys if any(b.get(k) is not None for b in r["breakdown_reps"])}
    return results


def measure_pair(mode: str, backend: str, baseline: str, p: Problem, *, rounds: int, target_s: float,
                 ctx: Any) -> dict[str, Any]:
    """xvae and `baseline` alternating in one process; per-round throughput ratios."""
    label = f"{backend} same-process {mode}"
    w = Worker(f"pair:xvae-{mode}:{backend}:{baseline}", ctx)
    try:
        setup = w.ask("setup", p.dict())
        epochs = max(1, min(50, round(target_s / max(setup["second_epoch_s"] / 2, 1e-6))))
        walls = w.ask("pair", epochs, rounds)
    except Exception as err:  # noqa: BLE001 (reported, not raised)
        _say(f"[{label}] failed: {err}")
        return {"error": str(err)}
    finally:
        w.close()
    ratios = [b / a for a, b in zip(walls["xvae"], walls["baseline"])]  # throughput xvae / baseline
    _say(f"[{label}] xvae/{baseline} per round: " + " ".join(f"{r:.3f}" for r in ratios))
    return {"baseline": baseline, "epochs_per_round": epochs, "steps": walls["steps"],
            "walls": walls, "ratio": summarize(ratios)}


def _paired_ratio(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """Per-repetition ratios a/b (the two ran back to back), summarised."""
    ra = [x["steps"] / x["wall_s"] for x in a["reps"]]
    rb = [x["steps"] / x["wall_s"] for x in b["reps"]]
    return summarize([x / y for x, y in zip(ra, rb)])


def _fractions(r: dict[str, Any]) -> dict[str, float] | None:
    """Where fit's time per step goes, as fractions of the measured fit step."""
    bd = r.get("breakdown")
    if not bd or not bd.get("fit_ms"):
        return None
    step_ms = bd["fit_ms"]  # timed in the same breakdown command as the pieces
    out = {"step_ms": step_ms}
    if bd.get("compute_ms") is not None:
        out["compute_ms"] = bd["compute_ms"]
        out["outside_compiled"] = 1.0 - bd["compute_ms"] / step_ms
    out["input_draw"] = bd["draw_ms"] / step_ms
    if "seam_ms" in bd:
        out["seam_ms"] = bd["seam_ms"]
        if bd.get("compute_ms") is not None:
            out["seam_conversion"] = (bd["seam_ms"] - bd["compute_ms"]) / step_ms
        out["core_loop_rest"] = (step_ms - bd["seam_ms"] - bd["draw_ms"]) / step_ms
    return out


# --------------------------------------------------------------------------- main mode
def run_main(args: argparse.Namespace, backends: list[str], ctx: Any) -> dict[str, Any]:
    p = Problem(batch=args.batch, hidden=args.hidden, steps_per_epoch=args.steps_per_epoch, k=args.k,
                device=args.device, precision=args.precision, data_dir=args.data_dir)
    _say(f"GEMM floor ({', '.join(args.gemm_libs)}) at batch {p.batch}, hidden {p.hidden} ...")
    floor = gemm_floor.measure_all(tuple(args.gemm_libs), [{"batch": p.batch, "hidden": p.hidden,
                                                           "reps": args.gemm_reps, "device": p.device}])
    out: dict[str, Any] = {"problem": p.dict(), "gemm_floor": floor, "backends": {}}
    extra = [v for v in args.extra_baselines if v]
    for backend in backends:
        names = [f"xvae-step:{backend}", f"xvae-fused:{backend}", BEST_STEP[backend]]
        if BEST_FUSED[backend] not in names:
            names.append(BEST_FUSED[backend])
        names += [v for v in extra if FRAMEWORK.get(v) == backend and v not in names]
        res = measure_group(names, p, reps=args.reps, target_s=args.target_s, epochs=args.epochs,
                            gap=args.gap, breakdown_steps=args.breakdown_steps,
                            breakdown_reps=args.breakdown_reps, ctx=ctx, label=backend)
        entry: dict[str, Any] = {"variants": res, "ratios": {}}
        for mode, base in (("step", BEST_STEP[backend]), ("fused", BEST_FUSED[backend])):
            mine = res.get(f"xvae-{mode}:{backend}", {})
            ref = res.get(base, {})
            if "steps_per_s" in mine and "steps_per_s" in ref:
                entry["ratios"][mode] = {
                    "baseline": base,
                    "of_medians": mine["steps_per_s"]["median"] / ref["steps_per_s"]["median"],
                    "paired": _paired_ratio(mine, ref),
                }
            if args.pair_rounds and mode in entry["ratios"]:
                entry["ratios"][mode]["same_process"] = measure_pair(
                    mode, backend, base, p, rounds=args.pair_rounds, target_s=args.target_s, ctx=ctx)
        for r in res.values():
            frac = _fractions(r)
            if frac:
                r["fractions"] = frac
        out["backends"][backend] = entry
    return out


def markdown_main(res: dict[str, Any], info: dict[str, Any]) -> str:
    p = res["problem"]
    lines = [f"# xvae throughput vs hand-written loops ({p['device']})", "",
             _machine_line(info), "",
             (f"VAE 784-{p['hidden']}-20, batch {p['batch']}, Adam(1e-3), {p['steps_per_epoch']} steps per "
             f"epoch (n = {p['batch'] * p['steps_per_epoch']}), fused K = {p['k']}, precision "
             f"{p['precision']}, data {'MNIST from ' + p['data_dir'] if p['data_dir'] else 'synthetic binarized'}. "
             "Steps/s: median [min-max] over interleaved repetitions, each a whole number of epochs "
             "(per-epoch NumPy input work included)."), ""]
    floor = gemm_floor.best(res["gemm_floor"])
    lines += ["## GEMM floor", "", "| library | 14 GEMMs (ms) | min | ceiling (steps/s) | GFLOP/s |",
              "|---|---|---|---|---|"]
    for lib, r in res["gemm_floor"].items():
        if isinstance(r, dict):
            lines.append(f"| {lib} | {r['error']} | | | |")
        else:
            r = r[0]
            lines.append(f"| {lib} | {r['sequence_ms']:.3f} | {r['sequence_ms_min']:.3f} | "
                         f"{r['ceiling_steps_per_s']:.0f} | {r['gflops']:.0f} |")
    lines += ["", "## Throughput", "",
              ("| backend | variant | steps/s | min-max | % of GEMM ceiling | compile + 1st epoch (s) | "
              "peak RSS (MB) | CPU/wall |"), "|---|---|---|---|---|---|---|---|"]
    for backend, entry in res["backends"].items():
        for name, r in entry["variants"].items():
            if "error" in r:
                lines.append(f"| {backend} | {name} | failed: {r['error'].splitlines()[0][:80]} | | | | | |")
                continue
            s = r["steps_per_s"]
            pct = f"{100 * s['median'] / floor['ceiling_steps_per_s']:.0f}%" if floor else ""
            mem = r.get("exit", {}).get("maxrss_mb") or r["memory"]["maxrss_mb"]
            dev = r["memory"].get("device_peak_mb")
            mem_s = f"{mem:.0f}" + (f" (device {dev:.0f})" if dev else "")
            lines.append(f"| {backend} | {name.split(':')[0]} | **{s['median']:.1f}** | {s['min']:.1f}-{s['max']:.1f} "
                         f"| {pct} | {r['setup']['build_s'] + r['setup']['first_epoch_s']:.1f} | {mem_s} | "
                         f"{r['cpu_per_wall']['median']:.2f} |")
    lines += ["", "## Ratios xvae / hand-written (>= 0.95 is the target)", "",
              ("| backend | mode | baseline | same process: paired ratio median [min-max] | "
               "separate processes: ratio of medians | paired ratio median [min-max] |"),
              "|---|---|---|---|---|---|"]
    for backend, entry in res["backends"].items():
        for mode, r in entry["ratios"].items():
            pr = r["paired"]
            sp = r.get("same_process", {}).get("ratio")
            same = f"**{sp['median']:.3f}** [{sp['min']:.3f}-{sp['max']:.3f}]" if sp else ""
            lines.append(f"| {backend} | {mode} | {r['baseline']} | {same} | {r['of_medians']:.3f} | "
                         f"{pr['median']:.3f} [{pr['min']:.3f}-{pr['max']:.3f}] |")
    lines += ["", ("Same process: xvae's `fit` and the baseline alternate epoch blocks in one process "
                   "(shared thread pools and allocator), one ratio per round. Separate processes: "
                   "each variant in its own worker, repetitions interleaved; the paired ratio divides "
                   "back-to-back repetitions.")]
    lines += ["", "## Where a step's time goes (ms per step; fractions of the measured step)", "",
              ("| backend | variant | whole step | compiled step alone | GEMM floor / compiled | outside compiled "
               "| input draw | seam conversion | core loop rest |"), "|---|---|---|---|---|---|---|---|---|"]
    for backend, entry in res["backends"].items():
        for name, r in entry["variants"].items():
            f = r.get("fractions")
            if not f:
                continue
            gemm = floor["sequence_ms"] / f["compute_ms"] if floor and f.get("compute_ms") else None
            lines.append(
                f"| {backend} | {name.split(':')[0]} | {f['step_ms']:.3f} | {_ms(f.get('compute_ms'))} | "
                f"{_pct(gemm)} | {_pct(f.get('outside_compiled'))} | {_pct(f.get('input_draw'))} | "
                f"{_pct(f.get('seam_conversion'))} | {_pct(f.get('core_loop_rest'))} |")
    lines += ["", ("GEMM floor / compiled = the fastest library's time for the step's 14 GEMMs alone over "
                   "the compiled step alone: the share of the step no framework can remove on this "
                   "machine (the rest is element-wise work, the optimizer update and dispatch)."),
              "", ("Whole step = the loop (xvae: `fit`) timed right before its pieces, per step. "
              "Outside compiled = 1 - (compiled step alone on device-resident inputs) / (whole step). "
              "For xvae: input draw = the core's per-epoch NumPy work; seam conversion = the backend's "
              "host->device conversion and dispatch (train_step on host batches minus on staged ones); "
              "core loop rest = the remainder of fit (batch slicing, metric syncs, history). "
              "Each piece is timed alone, so they need not sum to the whole (asynchronous dispatch "
              "overlaps host work with compute). See benchmarks/README.md."), ""]
    return "\n".join(lines)


def _ms(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


def _pct(v: float | None) -> str:
    return "" if v is None else f"{100 * v:.1f}%"


def _machine_line(info: dict[str, Any]) -> str:
    v = info.get("versions", {})
    tf = v.get("tensorflow") or v.get("tensorflow-cpu")
    return (f"Machine: {info.get('cpu_model')} ({info.get('affinity_cpus', info.get('cpu_count'))} cores, "
            f"{info.get('memory_gb')} GB; {', '.join(info.get('cpu_flags', []))}), load average at start "
            f"{', '.join(f'{x:.2f}' for x in info.get('loadavg_at_start', []))}. "
            f"Python {info.get('python')}, numpy {v.get('numpy')}, jax {v.get('jax')} (flax {v.get('flax')}, "
            f"optax {v.get('optax')}), tensorflow {tf} (keras {v.get('keras')}), torch {v.get('torch')}. "
            f"Run {info.get('date')}.")


# --------------------------------------------------------------------------- scaling
def run_scaling(args: argparse.Namespace, backends: list[str], ctx: Any) -> dict[str, Any]:
    grid = [(b, h) for h in args.scaling_hidden for b in args.scaling_batches]
    spe, k = args.scaling_steps, args.scaling_k
    _say(f"GEMM floors for {len(grid)} configurations ...")
    floor = gemm_floor.measure_all(tuple(args.gemm_libs), [{"batch": b, "hidden": h, "reps": args.gemm_reps,
                                                           "device": args.device} for b, h in grid])
    out: dict[str, Any] = {"grid": grid, "steps_per_epoch": spe, "k": k, "gemm_floor": floor, "rows": []}
    for i, (b, h) in enumerate(grid):
        best = gemm_floor.best(floor, i)
        out["rows"].append({"backend": "gemm floor", "variant": "floor", "lib": best["lib"] if best else "",
                            "batch": b, "hidden": h, "steps_per_s": best["ceiling_steps_per_s"] if best else None,
                            "samples_per_s": best["ceiling_steps_per_s"] * b if best else None,
                            "step_ms": best["sequence_ms"] if best else None})
    for backend in backends:
        names = [f"xvae-step:{backend}"]
        if "fused" in args.scaling_modes:
            names.append(f"xvae-fused:{backend}")
        if "baseline" in args.scaling_modes:
            names.append(BEST_STEP[backend])
        workers = {}
        try:
            for name in names:
                workers[name] = Worker(name, ctx)
            for b, h in grid:
                p = Problem(batch=b, hidden=h, steps_per_epoch=spe, k=k, device=args.device,
                            precision=args.precision, data_dir=args.data_dir)
                res = _scaling_point(workers, p, args, backend)
                for name, r in res.items():
                    row = {"backend": backend, "variant": name.split(":")[0], "batch": b, "hidden": h}
                    if "error" in r:
                        row["error"] = r["error"]
                    else:
                        sps = r["steps_per_s"]
                        row.update({"steps_per_s": sps["median"], "min": sps["min"], "max": sps["max"],
                                    "samples_per_s": sps["median"] * b, "step_ms": 1e3 / sps["median"],
                                    "compile_s": r["setup"]["compile_s"], "rss_mb": r["memory"]["rss_mb"],
                                    "device_peak_mb": r["memory"].get("device_peak_mb")})
                    out["rows"].append(row)
        finally:
            for w in workers.values():
                w.close()
    return out


def _scaling_point(workers: dict[str, Worker], p: Problem, args: argparse.Namespace,
                   backend: str) -> dict[str, Any]:
    label = f"{backend} b={p.batch} h={p.hidden}"
    results: dict[str, Any] = {}
    alive = []
    for name, w in workers.items():
        try:
            results[name] = {"setup": w.ask("setup", p.dict()), "reps": []}
            alive.append(name)
        except Exception as err:  # noqa: BLE001 (reported, not raised)
            _say(f"[{label}] {name} failed: {err}")
            results[name] = {"error": str(err)}
    if not alive:
        return results
    slowest = max(results[n]["setup"]["second_epoch_s"] for n in alive)
    n_epochs = max(1, min(50, round(args.scaling_target_s / max(slowest, 1e-6))))
    for rep in range(args.scaling_reps):
        for name in alive[rep % len(alive):] + alive[:rep % len(alive)]:
            time.sleep(args.gap)
            results[name]["reps"].append(workers[name].ask("run", n_epochs))
    for name in alive:
        r = results[name]
        r["steps_per_s"] = summarize([x["steps"] / x["wall_s"] for x in r["reps"]])
        r["memory"] = workers[name].ask("memory")
    _say(f"[{label}] " + "  ".join(f"{n.split(':')[0]}={results[n]['steps_per_s']['median']:.1f}" for n in alive))
    return results


def markdown_scaling(res: dict[str, Any], info: dict[str, Any], device: str) -> str:
    lines = [f"# Scaling with batch and width ({device})", "", _machine_line(info), "",
             (f"{res['steps_per_epoch']} steps per epoch (n = batch x steps), fused K = {res['k']}; "
             "medians of interleaved repetitions. `gemm floor`: the 14 GEMMs of a step alone on the "
             "fastest library (the ceiling)."), "",
             ("| backend | variant | hidden | batch | steps/s | samples/s | ms/step | floor ms | % of ceiling | "
             "compile (s) | RSS (MB) |"), "|---|---|---|---|---|---|---|---|---|---|---|"]
    floor = {(r["batch"], r["hidden"]): r["step_ms"] for r in res["rows"] if r["backend"] == "gemm floor"}
    for r in sorted(res["rows"], key=lambda r: (r["backend"] != "gemm floor", r["backend"], r["variant"],
                                                 r["hidden"], r["batch"])):
        if "error" in r:
            lines.append(f"| {r['backend']} | {r['variant']} | {r['hidden']} | {r['batch']} | failed | | | | | | |")
            continue
        if r["steps_per_s"] is None:
            continue
        fl = floor.get((r["batch"], r["hidden"]))
        pct = f"{100 * fl / r['step_ms']:.0f}%" if fl else ""
        comp = f"{r['compile_s']:.1f}" if "compile_s" in r else ""
        rss = f"{r['rss_mb']:.0f}" if "rss_mb" in r else ""
        variant = f"floor ({r['lib']})" if r["backend"] == "gemm floor" else r["variant"]
        lines.append(f"| {r['backend']} | {variant} | {r['hidden']} | {r['batch']} | {r['steps_per_s']:.1f} | "
                     f"{r['samples_per_s']:.0f} | {r['step_ms']:.2f} | {_ms(fl)} | {pct} | {comp} | {rss} |")
    lines += ["", "## How the cost grows", "",
              ("Exponent of ms/step against batch (log-log slope between the smallest and largest "
              "batch; 1.0 = linear, less = fixed per-step costs amortised) and the cost ratio of "
              "hidden 2000 over 500 at each batch (the GEMM flops grow 3.9x)."), "",
              "| backend | variant | batch exponent (h=500) | batch exponent (h=2000) | width ratio per batch |",
              "|---|---|---|---|---|"]
    keyed: dict[tuple[str, str], dict[tuple[int, int], float]] = {}
    for r in res["rows"]:
        if r.get("step_ms"):
            keyed.setdefault((r["backend"], r["variant"]), {})[(r["batch"], r["hidden"])] = r["step_ms"]
    batches = sorted({r["batch"] for r in res["rows"]})
    hiddens = sorted({r["hidden"] for r in res["rows"]})
    for (backend, variant), t in keyed.items():
        exps = []
        for h in hiddens[:2]:
            lo, hi = (batches[0], h), (batches[-1], h)
            exps.append(f"{math.log(t[hi] / t[lo]) / math.log(hi[0] / lo[0]):.2f}" if lo in t and hi in t
                        and hi[0] != lo[0] else "")
        while len(exps) < 2:
            exps.append("")
        widths = ", ".join(f"{b}: {t[(b, hiddens[-1])] / t[(b, hiddens[0])]:.1f}x" for b in batches
                           if (b, hiddens[0]) in t and (b, hiddens[-1]) in t and len(hiddens) > 1)
        lines.append(f"| {backend} | {variant} | {exps[0]} | {exps[1]} | {widths} |")
    lines.append("")
    return "\n".join(lines)


def plot_scaling(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"jax": "tab:blue", "tf": "tab:orange", "torch": "tab:red", "gemm floor": "black"}
    styles = {500: "-", 2000: "--"}
    series: dict[tuple[str, str, int], list[tuple[int, float]]] = {}
    for r in res["rows"]:
        if r.get("step_ms") and r["variant"] in ("xvae-step", "xvae-fused", "floor"):
            series.setdefault((r["backend"], r["variant"], r["hidden"]), []).append((r["batch"], r["step_ms"]))
    for (backend, variant, h), pts in sorted(series.items()):
        pts.sort()
        b = np.array([x for x, _ in pts], float)
        ms = np.array([y for _, y in pts], float)
        marker = "o" if variant == "xvae-step" else "s" if variant == "xvae-fused" else None
        lab = f"{backend} {variant} h={h}" if backend != "gemm floor" else f"GEMM floor (ceiling) h={h}"
        kw = {"color": colors.get(backend, "gray"), "linestyle": styles.get(h, ":"), "marker": marker,
              "alpha": 0.55 if variant == "xvae-fused" else 1.0, "label": lab, "markersize": 4}
        axes[0].plot(b, ms, **kw)
        axes[1].plot(b, b * 1e3 / ms, **kw)
    for ax, title, ylabel in ((axes[0], "time per step", "ms / step"),
                              (axes[1], "throughput", "samples / s")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({r["batch"] for r in res["rows"]}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=6.5, ncol=2)
    fig.suptitle("xvae VAE 784-H-20: cost vs batch and hidden width (solid H=500, dashed H=2000)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- equivalence
def run_check(args: argparse.Namespace, backends: list[str], ctx: Any) -> bool:
    """Same weights, data and draws: xvae's epoch losses must match the baselines'."""
    from benchmarks import _worker
    from benchmarks.baselines import VARIANTS

    p = Problem(batch=32, hidden=64, steps_per_epoch=10, k=5, device=args.device, precision=args.precision,
                data_dir=args.data_dir)
    ok = True
    for backend in backends:
        variants = [v for v in VARIANTS if FRAMEWORK[v] == backend and v != "torch-compile"]
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker.check_child, args=(child, backend, variants, p.dict()))
        proc.start()
        status, value = parent.recv()
        proc.join()
        if status != "ok":
            print(f"{backend}: check failed to run: {value}")
            ok = False
            continue
        ref = np.asarray(value["xvae-step"])
        for name, losses in value.items():
            rel = float(np.max(np.abs(np.asarray(losses) - ref) / np.abs(ref)))
            good = rel < 1e-4  # DESIGN §6: trajectories agree to 1e-4 relative
            ok &= good
            print(f"{backend:6s} {name:14s} epoch losses {', '.join(f'{v:.5f}' for v in losses)}  "
                  f"max rel. diff vs xvae-step {rel:.1e} {'ok' if good else 'MISMATCH'}")
    return ok


# --------------------------------------------------------------------------- CLI
def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    ap.add_argument("--backends", help="comma-separated subset of jax,tf,torch (default: all available)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: few, short repetitions")
    ap.add_argument("--scaling", action="store_true", help="the batch x width grid (and its plot)")
    ap.add_argument("--no-main", action="store_true", help="with --scaling: skip the main table")
    ap.add_argument("--check", action="store_true",
                    help="only check that xvae and every baseline compute the same losses, then exit")
    ap.add_argument("--device", default="cpu", help="cpu, gpu, cuda (passed to xvae and the baselines)")
    ap.add_argument("--precision", default="highest", choices=("highest", "fast"))
    ap.add_argument("--data-dir", default=None, help="read MNIST IDX images from here instead of synthetic data")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=500)
    ap.add_argument("--steps-per-epoch", type=int, default=100)
    ap.add_argument("--k", type=int, default=50, help="steps per call in fused mode")
    ap.add_argument("--reps", type=int, default=7, help="interleaved repetitions per variant")
    ap.add_argument("--epochs", type=int, default=None, help="epochs per repetition (default: ~--target-s)")
    ap.add_argument("--target-s", type=float, default=2.0, help="seconds per repetition of the slowest variant")
    ap.add_argument("--pair-rounds", type=int, default=12,
                    help="rounds of the same-process xvae/baseline comparison (0: skip)")
    ap.add_argument("--gap", type=float, default=0.3, help="seconds of idle between repetitions")
    ap.add_argument("--breakdown-steps", type=int, default=200, help="steps per breakdown loop (0: skip)")
    ap.add_argument("--breakdown-reps", type=int, default=3, help="interleaved breakdown repetitions")
    ap.add_argument("--extra-baselines", default="",
                    help="more baselines, e.g. torch-foreach,torch-compile,tf-step,tf-loop")
    ap.add_argument("--gemm-libs", default="torch,numpy,jax",
                    help="libraries timed for the GEMM floor; the fastest sets it")
    ap.add_argument("--gemm-reps", type=int, default=9)
    ap.add_argument("--scaling-batches", default=",".join(map(str, SCALING_BATCHES)))
    ap.add_argument("--scaling-hidden", default=",".join(map(str, SCALING_HIDDEN)))
    ap.add_argument("--scaling-steps", type=int, default=20, help="steps per epoch in the scaling grid")
    ap.add_argument("--scaling-k", type=int, default=10)
    ap.add_argument("--scaling-reps", type=int, default=3)
    ap.add_argument("--scaling-target-s", type=float, default=1.5)
    ap.add_argument("--scaling-modes", default="step,fused,baseline",
                    help="which of xvae step / xvae fused / best per-step baseline to scale")
    ap.add_argument("--name", default=None, help="results file stem (default: <device>, quick-<device>)")
    ap.add_argument("--out", default=str(RESULTS), help="results directory")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps = min(args.reps, 2)
        args.pair_rounds = min(args.pair_rounds, 2)
        args.steps_per_epoch, args.k = 20, 10
        args.target_s, args.gap, args.breakdown_steps, args.breakdown_reps = 0.3, 0.1, 40, 1
        args.gemm_reps = 3
        args.scaling_steps, args.scaling_k, args.scaling_reps, args.scaling_target_s = 10, 5, 1, 0.2
    if args.steps_per_epoch % args.k:
        ap.error(f"--steps-per-epoch ({args.steps_per_epoch}) must be a multiple of --k ({args.k})")
    if args.scaling_steps % args.scaling_k:
        ap.error("--scaling-steps must be a multiple of --scaling-k")
    args.backends = [b.strip() for b in args.backends.split(",")] if args.backends else None
    args.extra_baselines = [v.strip() for v in args.extra_baselines.split(",") if v.strip()]
    args.gemm_libs = [v.strip() for v in args.gemm_libs.split(",") if v.strip()]
    args.scaling_batches = [int(v) for v in args.scaling_batches.split(",")]
    args.scaling_hidden = [int(v) for v in args.scaling_hidden.split(",")]
    args.scaling_modes = [v.strip() for v in args.scaling_modes.split(",")]
    dev = args.device.replace(":", "")
    args.name = args.name or (f"quick-{dev}" if args.quick else dev)
    return args


def main(argv: list[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if "--device-data" in given:  # the 60,000-row host-vs-device epoch table: benchmarks/device_data.py
        from benchmarks import device_data

        return device_data.main([a for a in given if a != "--device-data"])
    args = parse(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    ctx = mp.get_context("spawn")
    backends = _available_backends(args.backends)
    if not backends:
        _say("No framework backend (jax, tf, torch) is available; nothing to benchmark.")
        return 1
    if args.check:
        return 0 if run_check(args, backends, ctx) else 1
    info = machine_info()
    info["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    info["command"] = " ".join(["python -m benchmarks.run", *(argv if argv is not None else sys.argv[1:])])
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if not args.no_main:
        res = run_main(args, backends, ctx)
        res["machine"] = info
        res["wall_s"] = time.perf_counter() - started
        (out_dir / f"{args.name}.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
        md = markdown_main(res, info)
        (out_dir / f"{args.name}.md").write_text(md)
        print(md)
    if args.scaling:
        t0 = time.perf_counter()
        res = run_scaling(args, backends, ctx)
        res["machine"] = info
        res["wall_s"] = time.perf_counter() - t0
        stem = f"scaling-{args.name}"
        (out_dir / f"{stem}.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
        md = markdown_scaling(res, info, args.device)
        png = out_dir / ("scaling.png" if args.name == "cpu" else f"{stem}.png")
        try:
            plot_scaling(res, png)
            md += f"\n![scaling]({png.name})\n"
        except Exception as err:  # noqa: BLE001 -- the numbers matter more than the picture
            _say(f"plot failed: {type(err).__name__}: {err}")
        (out_dir / f"{stem}.md").write_text(md)
        print(md)
    _say(f"done in {time.perf_counter() - started:.0f} s; results in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The tables and the plot of docs/performance.md, from the committed benchmark results.

    python docs/scripts/performance.py      # prints both tables, writes docs/img/scaling.png

Reads benchmarks/results/cpu.json and scaling-cpu.json (written by
`python -m benchmarks.run --scaling ...`) and conv-vae-cpu.json (`python -m benchmarks.conv_vae`); tests/docs/test_numbers.py checks that the page
quotes what this script prints, so a new benchmark run and the page cannot drift apart.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
PLOT = ROOT / "docs" / "img" / "scaling.png"
MODES = {"step": "per step", "fused": "fused (K = {k})"}


def load(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / f"{name}.json").read_text())


def summary_table(main: dict[str, Any]) -> str:
    """xvae's fit against the best hand-written loop, per backend and mode, in one process."""
    k = main["problem"]["k"]
    lines = ["| backend | mode | xvae steps/s | hand-written loop | its steps/s | xvae / hand-written [min-max] |",
             "|---|---|---|---|---|---|"]
    for backend, entry in main["backends"].items():
        for mode, r in entry["ratios"].items():
            same = r["same_process"]
            mine, theirs = (same["steps"] / statistics.median(same["walls"][side]) for side in ("xvae", "baseline"))
            ratio = same["ratio"]
            lines.append(f"| {backend} | {MODES[mode].format(k=k)} | {mine:.0f} | `{r['baseline']}` | "
                         f"{theirs:.0f} | {ratio['median']:.2f} [{ratio['min']:.2f}-{ratio['max']:.2f}] |")
    return "\n".join(lines)


def scaling_table(scaling: dict[str, Any]) -> str:
    """Samples/s of xvae's fit (per step and fused) and of the GEMM ceiling, per width and batch."""
    batches = sorted({r["batch"] for r in scaling["rows"]})
    lines = ["| hidden | backend | mode | " + " | ".join(f"batch {b}" for b in batches) + " |",
             "|---|---|---|" + "---|" * len(batches)]
    keyed = {(r["backend"], r["variant"], r["hidden"], r["batch"]): r for r in scaling["rows"]}
    rows = [("gemm floor", "floor", "GEMM ceiling", "")]
    rows += [(b, v, b, mode) for b in ("jax", "tf", "torch")
             for v, mode in (("xvae-step", "per step"), ("xvae-fused", f"fused (K = {scaling['k']})"))]
    for h in sorted({r["hidden"] for r in scaling["rows"]}):
        for backend, variant, name, mode in rows:
            cells = []
            for b in batches:
                r = keyed.get((backend, variant, h, b))
                cells.append(f"{r['samples_per_s']:,.0f}" if r and r.get("samples_per_s") else "")
            if any(cells):
                lines.append(f"| {h} | {name} | {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def conv_vae_table(conv: dict[str, Any]) -> str:
    """The conv VAE: xvae's fit against hand-written loops of the same model, per backend and
    mode (benchmarks/conv_vae.py), with each side's peak memory in a fresh process."""
    lines = ["| backend | mode | xvae steps/s | hand-written loop | its steps/s | xvae / hand-written [min-max] "
             "| rounds | peak RSS xvae / hand-written (MB) | load average |",
             "|---|---|---|---|---|---|---|---|---|"]
    for backend, entry in conv["backends"].items():
        rss = entry["peak_rss_mb"]
        load = f"{entry['loadavg_start'][0]:.1f}-{entry['loadavg_end'][0]:.1f}"
        for mode, r in entry["modes"].items():
            ratio = r["ratio"]
            mine, theirs = rss[r["xvae"]], rss[r["baseline"]]
            lines.append(f"| {backend} | {MODES[mode].format(k=r['k'])} | {r['xvae_steps_per_s']:.2f} | "
                         f"`{r['baseline']}` | {r['baseline_steps_per_s']:.2f} | {ratio['median']:.2f} "
                         f"[{ratio['min']:.2f}-{ratio['max']:.2f}] | {ratio['n']} | {mine:.0f} / {theirs:.0f} "
                         f"({mine / theirs:.2f}) | {load} |")
    return "\n".join(lines)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks.run import plot_scaling

    print(summary_table(load("cpu")), end="\n\n")
    print(conv_vae_table(load("conv-vae-cpu")), end="\n\n")
    scaling = load("scaling-cpu")
    print(scaling_table(scaling))
    plot_scaling(scaling, PLOT)
    print(f"\nwrote {PLOT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

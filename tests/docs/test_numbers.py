"""The numbers quoted in the docs are the numbers the docs' scripts compute.

docs/numerics.md quotes two tables of float32 losses and gradients at saturated logits;
docs/scripts/saturation.py computes them (with JAX, as the page says). If either changes,
the page must change with it.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "docs" / "scripts"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_scripts_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def saturation():
    pytest.importorskip("jax", reason="docs/numerics.md quotes JAX's float32 values")
    return _script("saturation")


def test_saturation_tables_match_the_page(saturation):
    page = (ROOT / "docs" / "numerics.md").read_text()
    for logits in (saturation.TABLE_LOGITS, saturation.NEGATIVE_LOGITS):
        table = saturation.table(logits)
        assert table in page, f"docs/numerics.md is out of date; the script now gives:\n{table}"


def test_float32_sigmoid_saturates_where_the_page_says(saturation):
    assert round(saturation.first_saturated_logit(), 2) == 16.64


def test_performance_tables_match_the_committed_results():
    """docs/performance.md quotes benchmarks/results/*.json through docs/scripts/performance.py."""
    performance = _script("performance")
    page = (ROOT / "docs" / "performance.md").read_text()
    for table in (performance.summary_table(performance.load("cpu")),
                  performance.scaling_table(performance.load("scaling-cpu"))):
        assert table in page, f"docs/performance.md is out of date; the script now gives:\n{table}"
    assert (ROOT / "docs" / "img" / "scaling.png").stat().st_size > 10_000


def test_conv_vae_table_matches_the_committed_results():
    """docs/performance.md quotes benchmarks/results/conv-vae-cpu.json (benchmarks/conv_vae.py)
    through docs/scripts/performance.py; the run checked that every hand-written loop is
    xvae's model (its loss on xvae's weights) and measured each backend's peak memory."""
    performance = _script("performance")
    conv = performance.load("conv-vae-cpu")
    table = performance.conv_vae_table(conv)
    page = (ROOT / "docs" / "performance.md").read_text()
    assert table in page, f"docs/performance.md is out of date; the script now gives:\n{table}"
    assert set(conv["backends"]) == {"jax", "tf", "torch"}
    for backend, entry in conv["backends"].items():
        assert set(entry["modes"]) == {"step", "fused"}, backend
        assert entry["same_model_rel_err"] and max(entry["same_model_rel_err"].values()) < 1e-4, backend
        assert set(entry["peak_rss_mb"]) >= {r[side] for r in entry["modes"].values() for side in ("xvae", "baseline")}
        for r in entry["modes"].values():  # the summary is the run's own rounds
            n = r["ratio"]["n"]
            ratios = [b / a for a, b in zip(entry["times"][r["xvae"]][:n], entry["times"][r["baseline"]][:n])]
            assert abs(statistics.median(ratios) - r["ratio"]["median"]) < 1e-12, (backend, r)


def test_schedules_table_matches_the_committed_results():
    """docs/parity.md quotes benchmarks/results/mnist-schedules-cpu.json through
    examples/mnist_schedules.py's own table()."""
    import json

    spec = importlib.util.spec_from_file_location("mnist_schedules", ROOT / "examples" / "mnist_schedules.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = json.loads((ROOT / "benchmarks" / "results" / "mnist-schedules-cpu.json").read_text())
    assert {r["backend"] for r in results} == {"jax", "tf", "torch"} and all(r["epochs"] == 20 for r in results)
    table = module.table(results)
    page = (ROOT / "docs" / "parity.md").read_text()
    assert table in page, f"docs/parity.md is out of date; the results now give:\n{table}"


def test_likelihood_table_matches_the_committed_results():
    """docs/likelihood.md quotes docs/results/likelihood.json (written by
    examples/likelihood_table.py) through that script's `table`."""
    import json

    spec = importlib.util.spec_from_file_location("likelihood_table", ROOT / "examples" / "likelihood_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = json.loads((ROOT / "docs" / "results" / "likelihood.json").read_text())
    table = module.table(results)
    assert table in (ROOT / "docs" / "likelihood.md").read_text(), f"docs/likelihood.md is out of date:\n{table}"
    for row in results["rows"]:  # the bound is below the ELBO it tightens, units within the latents
        assert row["iwae_nll"] <= row["test_neg_elbo"] and 0 <= row["active_units"] <= 20


def test_device_data_table_matches_the_committed_results():
    """docs/performance.md quotes benchmarks/results/device-data-cpu.json (written by
    `python -m benchmarks.run --device-data`) through benchmarks.device_data.table."""
    import json

    spec = importlib.util.spec_from_file_location("bench_device_data", ROOT / "benchmarks" / "device_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = json.loads((ROOT / "benchmarks" / "results" / "device-data-cpu.json").read_text())
    assert results["rows"] == 60_000 and set(results["backends"]) == {"jax", "tf", "torch"}
    table = module.table(results)
    assert table in (ROOT / "docs" / "performance.md").read_text(), f"docs/performance.md is out of date:\n{table}"

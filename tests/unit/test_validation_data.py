"""The published results the planner is checked against: every record sourced and modelled."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
DATA = ROOT / "benchmarks" / "data"


@pytest.fixture(scope="module")
def validation():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import roofline_validation

    return roofline_validation


def test_every_llama_bench_record_is_sourced_and_predicted(validation) -> None:  # type: ignore[no-untyped-def]
    records = yaml.safe_load((DATA / "llama_bench_published.yaml").read_text())["records"]
    assert len(records) >= 60
    for rec in records:
        assert rec["source_url"].startswith("https://"), rec
        assert rec["backend"] and rec["test"] in ("tg128", "tg512") and rec["tok_s"] > 0, rec
        assert rec.get("provenance", "primary") in ("primary", "secondary"), rec
    rows = validation.predict_rows()
    assert len(rows) >= len(records) - 1  # a GPU without figures is skipped and said so
    datacenter = [r for r in rows if r["kind"] == "datacenter"]
    assert len(datacenter) >= 15
    assert {r["bound_by"] for r in rows} <= {
        "bandwidth",
        "compute units",
        "compute",
        "fixed per-layer cost",
    }
    # the summary is computed from the rows, not written down
    s = validation.summarise(rows)
    used = [abs(r["error_pct"]) for r in rows if not r["excluded"]]
    assert s["used"] == len(used) and s["max_abs_error_pct"] == round(max(used), 1)


def test_every_batched_run_is_sourced_and_dense_runs_are_predicted() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import concurrency_validation

    runs = yaml.safe_load((DATA / "batched_bench_published.yaml").read_text())["runs"]
    for run in runs:
        assert run["source_url"].startswith("https://"), run["gpu"]
        assert all(row["b"] >= 1 for row in run["rows"])
    points, skipped = concurrency_validation.predict_points()
    assert len({p["gpu_key"] for p in points}) >= 5
    assert all(p["predicted_tok_s"] > 0 for p in points)
    assert any("not a dense transformer" in s for s in skipped)  # MoE runs are said, not scored

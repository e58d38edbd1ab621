"""Plans, profiles and the catalogue as pandas DataFrames: what the pages show and export.

Nothing here imports Streamlit, so it is tested and reused as plain Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from hardware_catalog import Catalog
from planner.profiler.schema import ConfigProfile, Profile
from planner.recommend.evaluate import Candidate
from planner.recommend.plan import PlanResult

MEMORY_PARTS = ("main weights", "verifier weights", "KV cache", "runtime overhead")
COST_PARTS = ("capex / year", "energy / year", "operations / year")


def candidate_label(rank: int, c: Candidate, *, short: bool = False) -> str:
    """Unique within a plan: rank, hardware (its id when ``short``), model, quant, verifier."""
    gpu = c.gpu if short else c.gpu_name
    return f"#{rank} {c.gpu_count} x {gpu} · {c.model} {c.quant} · {c.row}"


def shortlist_frame(plan: PlanResult) -> pd.DataFrame:
    """The ranked shortlist, one row per candidate (also the CSV export)."""
    rows = []
    for i, c in enumerate(plan.shortlist, 1):
        marks = ("$" if c.id in plan.pareto_cost else "") + (
            "W" if c.id in plan.pareto_power else ""
        )
        rows.append(
            {
                "rank": i,
                "hardware": f"{c.gpu_count} x {c.gpu_name}",
                "model": c.model,
                "quant": c.quant,
                "verifier": c.row,
                "pass@1": c.pass_at_1,
                "pass@1 from": c.quality_provenance,
                "usd_per_1k_solved": c.cost_per_1k_solved_usd,
                "usd_per_mtok": c.cost_per_mtok_usd,
                "capex_usd": c.capex_usd,
                "annual_cost_usd": c.annual_cost_usd,
                "active_power_w": c.active_power_w,
                "decode_tok_s_batch1": c.decode_tok_s,
                "tok_s_per_stream_at_peak": c.per_stream_tok_s,
                "memory_gb_per_replica": c.memory_gb_per_replica,
                "binds": f"{c.binding} {c.headroom[c.binding]:.0%}",
                "pareto": marks,
                "versus next": c.trade,
                "quality detail": c.quality_detail,
                "id": c.id,
            }
        )
    return pd.DataFrame(rows)


def shortlist_csv(plan: PlanResult) -> str:
    return str(shortlist_frame(plan).to_csv(index=False))


def pareto_frame(plan: PlanResult, x: str, frontier: Sequence[str]) -> pd.DataFrame:
    """Every feasible candidate's quality against ``x``; ``frontier`` marks the Pareto set."""
    front = set(frontier)
    rows = [
        {
            "id": c.id,
            x: getattr(c, x),
            "pass_at_1": c.pass_at_1 or 0.0,
            "provenance": c.quality_provenance,
            "verifier": c.row,
            "hardware": f"{c.gpu_count} x {c.gpu_name}",
            "model": f"{c.model} {c.quant}",
            "frontier": c.id in front,
        }
        for c in plan.candidates
    ]
    return pd.DataFrame(rows)


def cost_frame(plan: PlanResult) -> pd.DataFrame:
    """Yearly cost of each shortlisted candidate split into capex, energy, operations (long)."""
    years = float(plan.workload.get("years") or 1)
    ops = float(plan.workload.get("ops_usd_per_year") or 0)
    rows: list[dict[str, Any]] = []
    for i, c in enumerate(plan.shortlist, 1):
        capex = c.capex_usd / years
        energy = max(0.0, c.annual_cost_usd - capex - ops)
        label = candidate_label(i, c, short=True)
        for part, usd in zip(COST_PARTS, (capex, energy, ops), strict=True):
            rows.append({"candidate": label, "rank": i, "part": part, "usd_per_year": usd})
    return pd.DataFrame(rows, columns=["candidate", "rank", "part", "usd_per_year"])


def replica_capacity_gb(c: Candidate, catalog: Catalog | None) -> float:
    """Memory one replica may use: the GPU's usable memory x GPUs per replica."""
    gpu = catalog.gpus.get(c.gpu) if catalog is not None else None
    if gpu is not None:
        return gpu.gpu_memory_gb * c.gpus_per_replica
    use = c.headroom.get("memory") or 0.0
    return c.memory_gb_per_replica / use if use else c.memory_gb_per_replica


def memory_frames(plan: PlanResult, catalog: Catalog | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(stack, capacity): each shortlisted replica's memory by part, and its GPUs' memory."""
    stack: list[dict[str, Any]] = []
    capacity: list[dict[str, Any]] = []
    for i, c in enumerate(plan.shortlist, 1):
        label = candidate_label(i, c, short=True)
        overhead = max(
            0.0, c.memory_gb_per_replica - c.main_weights_gb - c.verifier_weights_gb - c.kv_cache_gb
        )
        parts = (c.main_weights_gb, c.verifier_weights_gb, c.kv_cache_gb, overhead)
        for order, (part, gb) in enumerate(zip(MEMORY_PARTS, parts, strict=True)):
            stack.append({"candidate": label, "rank": i, "part": part, "order": order, "gb": gb})
        capacity.append(
            {
                "candidate": label,
                "rank": i,
                "capacity_gb": replica_capacity_gb(c, catalog),
                "gpus_per_replica": c.gpus_per_replica,
            }
        )
    return (
        pd.DataFrame(stack, columns=["candidate", "rank", "part", "order", "gb"]),
        pd.DataFrame(capacity, columns=["candidate", "rank", "capacity_gb", "gpus_per_replica"]),
    )


def binding_summary(plan: PlanResult) -> str:
    """What removed the candidates, most first: 'memory 120, budget 80'."""
    ranked = sorted(plan.rejected_by.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{name} {count}" for name, count in ranked) or "nothing"


CANDIDATE_ROWS: tuple[tuple[str, str], ...] = (
    ("hardware", "hardware"),
    ("model", "model"),
    ("quant", "quantisation"),
    ("verifier", "verifier"),
    ("pass_at_1", "pass@1"),
    ("quality_provenance", "pass@1 from"),
    ("quality_detail", "pass@1 source"),
    ("cost_per_1k_solved_usd", "USD / 1,000 solved tasks"),
    ("cost_per_mtok_usd", "USD / million tokens"),
    ("capex_usd", "capex USD"),
    ("annual_cost_usd", "USD / year"),
    ("active_power_w", "watts while generating"),
    ("decode_tok_s", "tok/s batch 1"),
    ("per_stream_tok_s", "tok/s per stream at peak"),
    ("aggregate_tok_s", "tok/s aggregate"),
    ("memory_gb_per_replica", "GB per replica"),
    ("main_weights_gb", "main weights GB"),
    ("verifier_weights_gb", "verifier weights GB"),
    ("kv_cache_gb", "KV cache GB"),
    ("energy_kwh_per_mtok", "kWh / million tokens"),
    ("carbon_g_per_mtok", "g CO2e / million tokens"),
    ("binding", "binds"),
    ("trade", "against the next"),
)


def compare_candidates(items: Iterable[tuple[str, Candidate]]) -> pd.DataFrame:
    """Figures as rows, one column per candidate, for side-by-side reading."""
    cols: dict[str, list[Any]] = {}
    for label, c in items:
        values: list[Any] = []
        for attr, _ in CANDIDATE_ROWS:
            if attr == "hardware":
                values.append(f"{c.gpu_count} x {c.gpu_name}")
            elif attr == "binding":
                values.append(f"{c.binding} {c.headroom[c.binding]:.0%}")
            else:
                v = getattr(c, attr)
                values.append("-" if v is None else v)
        cols[label] = values
    return pd.DataFrame(cols, index=[name for _, name in CANDIDATE_ROWS]).astype(str)


def overhead_frame(profile: Profile) -> pd.DataFrame:
    """The seed's three figures per configuration with the measured values and their spread."""
    rows = []
    for c in profile.configs:
        tok = c.decode.tok_s
        rows.append(
            {
                "config": c.name,
                "memory x": round(c.memory_ratio, 3),
                "compute x": round(c.compute_ratio, 3),
                "decode slowdown %": round(100 * (1 - c.decode_ratio), 1),
                "peak GB": round(c.memory.peak_gb, 4),
                "forward / token": round(c.compute.forward_per_emitted, 3),
                "GFLOP / token": round(c.compute.gflops_per_emitted, 3),
                "tok/s median": round(tok.median, 2),
                "tok/s spread %": round(tok.spread_pct, 1),
                "tok/s repeats": ", ".join(f"{v:.1f}" for v in tok.values),
                "J / token": round(c.energy.j_per_token.median, 4),
                "energy": "estimate" if c.energy.is_estimate else c.energy.source,
            }
        )
    return pd.DataFrame(rows)


def ratios_long(profile: Profile) -> pd.DataFrame:
    """memory x, compute x, decode x per configuration, long form for grouped bars."""
    rows = []
    for c in profile.configs:
        for name, value in (
            ("memory x", c.memory_ratio),
            ("compute x", c.compute_ratio),
            ("decode x", c.decode_ratio),
        ):
            rows.append({"config": c.name, "figure": name, "ratio": value})
    return pd.DataFrame(rows, columns=["config", "figure", "ratio"])


def speed_frame(profile: Profile) -> pd.DataFrame:
    """Decode tokens/s per configuration: median with the range of the repeats."""
    rows = []
    for c in profile.configs:
        vals = c.decode.tok_s.values or [c.decode.tok_s.median]
        rows.append(
            {
                "config": c.name,
                "median": c.decode.tok_s.median,
                "low": min(vals),
                "high": max(vals),
            }
        )
    return pd.DataFrame(rows, columns=["config", "median", "low", "high"])


CONFIG_ROWS: tuple[tuple[str, str], ...] = (
    ("strategy", "strategy"),
    ("verifier", "verifier"),
    ("memory_ratio", "memory x"),
    ("compute_ratio", "compute x"),
    ("slowdown", "decode slowdown %"),
    ("peak_gb", "peak GB"),
    ("forward", "forward / token"),
    ("tok_s", "tok/s (median, spread)"),
    ("ttft", "time to first token s"),
    ("j_per_token", "J / token"),
    ("rollbacks", "rollbacks / 100 tokens"),
    ("verifier_calls", "verifier calls / 100 tokens"),
)


def _config_values(c: ConfigProfile) -> dict[str, Any]:
    return {
        "strategy": c.strategy,
        "verifier": c.verifier,
        "memory_ratio": f"{c.memory_ratio:.3f}",
        "compute_ratio": f"{c.compute_ratio:.3f}",
        "slowdown": f"{100 * (1 - c.decode_ratio):.1f}",
        "peak_gb": f"{c.memory.peak_gb:.4f}",
        "forward": f"{c.compute.forward_per_emitted:.3f}",
        "tok_s": f"{c.decode.tok_s.median:.1f} (±{c.decode.tok_s.spread_pct:.0f}%)",
        "ttft": f"{c.decode.ttft_s.median:.3f}",
        "j_per_token": f"{c.energy.j_per_token.median:.4f}"
        + (" (estimate)" if c.energy.is_estimate else ""),
        "rollbacks": f"{c.backtracking.rollbacks_per_100:.2f}",
        "verifier_calls": f"{c.backtracking.verifier_calls_per_100:.1f}",
    }


def compare_configs(profile: Profile, names: Sequence[str]) -> pd.DataFrame:
    """Profile configurations side by side: figures as rows, one column per configuration."""
    cols = {}
    for name in names:
        values = _config_values(profile.config(name))
        cols[name] = [values[key] for key, _ in CONFIG_ROWS]
    return pd.DataFrame(cols, index=[label for _, label in CONFIG_ROWS])


def gpus_frame(catalog: Catalog) -> pd.DataFrame:
    rows = []
    for g in catalog.gpus.values():
        rows.append(
            {
                "id": g.id,
                "name": g.name,
                "vendor": g.vendor,
                "kind": g.kind,
                "memory_gb": g.memory_gb,
                "bandwidth_gb_s": g.memory_bandwidth_gb_s,
                "fp16_tflops": g.fp16_dense_tflops,
                "board_power_w": g.board_power_w,
                "price": g.price.amount,
                "currency": g.price.currency,
                "form_factor": g.form_factor,
                "launch_year": g.launch_year,
                "from": catalog.origins.get(("gpus", g.id), ""),
            }
        )
    return pd.DataFrame(rows)


def models_frame(catalog: Catalog) -> pd.DataFrame:
    rows = []
    for m in catalog.models.values():
        rows.append(
            {
                "id": m.id,
                "name": m.name,
                "family": m.family,
                "size": m.size_label,
                "params_b": m.params_b,
                "layers": m.n_layers,
                "kv_heads": m.n_kv_heads,
                "ctx_train": m.ctx_train,
                "humaneval_instruct": m.humaneval_pass1_instruct,
                "quants": ", ".join(sorted(m.gguf_bytes)),
                "from": catalog.origins.get(("models", m.id), ""),
            }
        )
    return pd.DataFrame(rows)


def regions_frame(catalog: Catalog) -> pd.DataFrame:
    rows = []
    for r in catalog.regions.values():
        rows.append(
            {
                "id": r.id,
                "name": r.name,
                "country": r.country,
                "price_per_kwh": r.price_per_kwh,
                "currency": r.currency,
                "usd_per_kwh": round(catalog.convert(r.price_per_kwh, r.currency), 4),
                "tariff": r.tariff,
                "carbon_g_per_kwh": r.carbon_g_per_kwh,
                "from": catalog.origins.get(("regions", r.id), ""),
            }
        )
    return pd.DataFrame(rows)


def filter_frame(df: pd.DataFrame, text: str) -> pd.DataFrame:
    """Rows where any cell contains ``text`` (case-insensitive); all rows for empty text."""
    needle = text.strip().lower()
    if not needle or df.empty:
        return df
    hay = df.astype(str).apply(lambda col: col.str.lower().str.contains(needle, regex=False))
    return df[hay.any(axis=1)]

"""Make a plan: enumerate candidates, filter by the workload, rank by cost per solved task.

A buyer compares the cost of an answer that works: cost per million tokens divided by pass@1
(times the workload's tokens per task), so a configuration that is 1% cheaper per token but
solves a third fewer tasks ranks below the one that solves them. Candidates whose pass@1 is
unknown rank after all others, by cost per token. The quality floor stays a filter; the
quality-vs-cost and quality-vs-watts Pareto frontiers are kept beside the ranking.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hardware_catalog import Catalog, find_gpu, find_model, find_pue, find_region, load_catalog
from planner.recommend.costs import CostBook
from planner.recommend.evaluate import Candidate, Context, evaluate
from planner.recommend.quality import QualityBook, read_measured, runs_files
from planner.recommend.trade import trade_sentence, verdict
from planner.recommend.workload import Workload
from runtime.errors import UsageError

CODE_FAMILIES = ("qwen2.5-coder",)


class PlanResult(BaseModel):
    """The ranked shortlist, the frontiers and how many candidates each constraint removed."""

    model_config = ConfigDict(extra="forbid")

    created: str
    workload: dict[str, Any]
    region: str
    price_per_kwh_usd: float
    pue: float
    verdict: str = Field(description="What the verifiers buy on this workload, in numbers.")
    calibration: str = Field(description="How published pass@1 is calibrated to this harness.")
    verifier_costs: dict[str, str] = Field(
        description="'model row' (the verifier, and @decoding off the default): where its "
        "counts per token come from."
    )
    evaluated: int
    feasible: int
    rejected_by: dict[str, int] = Field(description="Infeasible candidates by binding limit.")
    shortlist: list[Candidate]
    pareto_cost: list[str] = Field(description="Ids on the quality vs cost/Mtok frontier.")
    pareto_power: list[str] = Field(description="Ids on the quality vs watts frontier.")
    candidates: list[Candidate] = Field(description="Every feasible candidate.")


def _pareto(points: list[tuple[str, float, float]]) -> list[str]:
    """Ids not dominated: higher quality (2nd) and lower cost (3rd) are better."""
    best: list[str] = []
    for pid, q, c in points:
        dominated = any((q2 >= q and c2 <= c) and (q2 > q or c2 < c) for _, q2, c2 in points)
        if not dominated:
            best.append(pid)
    return best


def rank_key(c: Candidate) -> tuple[int, float, float, float, str]:
    """Known pass@1 first, by cost per solved task; then by cost per token; ties: quality,
    then memory, then the id (stable)."""
    if c.cost_per_1k_solved_usd is not None:
        return (
            0,
            round(c.cost_per_1k_solved_usd, 6),
            -(c.pass_at_1 or 0.0),
            c.memory_gb_per_replica,
            c.id,
        )
    return (1, round(c.cost_per_mtok_usd, 6), 0.0, c.memory_gb_per_replica, c.id)


def _calibration_note(book: QualityBook) -> str:
    parts = [f"{family}: {book.calibration.describe(family)}" for family in book.calibration.ratios]
    return (
        "published pass@1 " + "; ".join(parts)
        if parts
        else "published pass@1 uncalibrated: no model measured in this harness"
    )


def make_plan(
    workload: Workload,
    *,
    catalog: Catalog | None = None,
    catalog_dir: Path | None = None,
    profile: Any = None,
    runs: list[Path] | None = None,
    top: int = 10,
) -> PlanResult:
    catalog = catalog or load_catalog(catalog_dir)
    region = find_region(catalog, workload.region)
    price = catalog.convert(region.price_per_kwh, region.currency)
    pue = (
        float(workload.pue)
        if isinstance(workload.pue, (int, float))
        else find_pue(catalog, str(workload.pue)).pue
    )
    measured = read_measured(runs_files() if runs is None else runs)
    quality = QualityBook(catalog, measured)
    costs = CostBook(catalog, profile, measured)
    ctx = Context(
        catalog=catalog,
        workload=workload,
        price_per_kwh_usd=price,
        carbon_g_per_kwh=region.carbon_g_per_kwh,
        pue=pue,
        costs=costs,
        quality=quality,
    )
    gpus = (
        [find_gpu(catalog, g) for g in workload.gpus]
        if workload.gpus
        else list(catalog.gpus.values())
    )
    models = (
        [find_model(catalog, m) for m in workload.models]
        if workload.models
        else [m for m in catalog.models.values() if m.family.lower() in CODE_FAMILIES]
    )
    if not models:
        raise UsageError("no models to consider; list some under `models:` in the workload")
    rows = workload.planned_verifiers
    evaluated: list[Candidate] = []
    for gpu in gpus:
        counts = [1] if gpu.is_system else workload.gpu_counts
        for count in counts:
            for model in models:
                for quant in workload.quants:
                    for row in rows:
                        evaluated.append(evaluate(ctx, gpu, count, model, quant, row))
    feasible = [c for c in evaluated if c.feasible]
    rejected: dict[str, int] = {}
    for c in evaluated:
        if not c.feasible:
            rejected[c.binding] = rejected.get(c.binding, 0) + 1
    ranked = sorted(feasible, key=rank_key)
    shortlist: list[Candidate] = []
    seen: set[tuple[str, int, str, str, str]] = set()
    for c in ranked:  # one quantisation per hardware x model x verifier x decoding: the best
        key = (c.gpu, c.gpu_count, c.model, c.verifier, c.strategy)
        if key not in seen:
            seen.add(key)
            shortlist.append(c)
    shortlist = shortlist[:top]
    for a, b in zip(shortlist, shortlist[1:], strict=False):
        a.trade = trade_sentence(a, b)
    pts_cost = [(c.id, c.pass_at_1 or 0.0, c.cost_per_mtok_usd) for c in feasible]
    pts_power = [(c.id, c.pass_at_1 or 0.0, c.active_power_w) for c in feasible]
    sources: dict[str, str] = {}
    for c in evaluated:
        sources.setdefault(f"{c.model} {c.row}", c.verifier_cost_source)
    return PlanResult(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        workload=workload.model_dump(),
        region=region.id,
        price_per_kwh_usd=price,
        pue=pue,
        verdict=verdict(ranked),
        calibration=_calibration_note(quality),
        verifier_costs=sources,
        evaluated=len(evaluated),
        feasible=len(feasible),
        rejected_by=rejected,
        shortlist=shortlist,
        pareto_cost=_pareto(pts_cost),
        pareto_power=_pareto(pts_power),
        candidates=ranked,
    )

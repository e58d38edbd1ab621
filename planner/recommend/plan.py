"""Make a plan: enumerate candidates, filter by the workload, Pareto frontiers, ranked shortlist."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hardware_catalog import Catalog, find_gpu, find_model, find_pue, find_region, load_catalog
from planner.capacity.verifier import DEFAULT_COSTS, VerifierCost, VerifierKind, cost_from_profile
from planner.profiler.schema import ProfileError
from planner.quality.results import RunSummary, read_runs
from planner.recommend.evaluate import Candidate, Context, evaluate
from planner.recommend.workload import Workload
from runtime.errors import UsageError, first_problem

log = logging.getLogger(__name__)

CODE_FAMILIES = ("qwen2.5-coder",)


class PlanResult(BaseModel):
    """The ranked shortlist, the frontiers and how many candidates each constraint removed."""

    model_config = ConfigDict(extra="forbid")

    created: str
    workload: dict[str, Any]
    region: str
    price_per_kwh_usd: float
    pue: float
    verifier_costs: dict[str, str]
    evaluated: int
    feasible: int
    rejected_by: dict[str, int] = Field(description="Infeasible candidates by binding limit.")
    shortlist: list[Candidate]
    pareto_cost: list[str] = Field(description="Ids on the quality vs cost/Mtok frontier.")
    pareto_power: list[str] = Field(description="Ids on the quality vs watts frontier.")
    candidates: list[Candidate] = Field(description="Every feasible candidate.")


def measured_quality(path: Path | None) -> dict[tuple[str, str], float]:
    """(model, verifier) -> pass@1 from a humaneval.json of ``backplan eval`` runs, if any."""
    if path is None:
        return {}
    out: dict[tuple[str, str], float] = {}
    for i, raw in enumerate(read_runs(path), 1):
        try:
            run = RunSummary.model_validate(raw)
        except ValidationError as exc:
            field, msg = first_problem(exc)
            raise UsageError(
                f"{path}: run {i}: field {field}: {msg}; fix or move the runs list"
            ) from None
        if run.n >= 100:
            parts = [p.strip().partition("=")[0] for p in run.verifier.split("+")]
            if parts == ["none"]:
                kind = "none"
            elif any(p.startswith("model:") for p in parts):
                kind = "separate"
            elif "latent" in parts:
                kind = "latent"
            else:  # programmatic checks only (syntax, examples): not a planned verifier kind
                continue
            key = (run.model, kind)
            out[key] = max(out.get(key, 0.0), run.pass_at_1)
    return out


def _pareto(points: list[tuple[str, float, float]]) -> list[str]:
    """Ids not dominated: higher quality (2nd) and lower cost (3rd) are better."""
    best: list[str] = []
    for pid, q, c in points:
        dominated = any((q2 >= q and c2 <= c) and (q2 > q or c2 < c) for _, q2, c2 in points)
        if not dominated:
            best.append(pid)
    return best


def make_plan(
    workload: Workload,
    *,
    catalog: Catalog | None = None,
    catalog_dir: Path | None = None,
    profile: Any = None,
    quality_file: Path | None = None,
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
    costs: dict[VerifierKind, VerifierCost] = dict(DEFAULT_COSTS)
    if profile is not None:
        for kind in ("none", "latent", "separate"):
            try:
                costs[kind] = cost_from_profile(profile, kind)  # type: ignore[arg-type]
            except ProfileError as exc:  # a profile without that configuration, or unusable
                log.info("profile has no usable %s configuration (%s): the default", kind, exc)
    ctx = Context(
        catalog=catalog,
        workload=workload,
        price_per_kwh_usd=price,
        carbon_g_per_kwh=region.carbon_g_per_kwh,
        pue=pue,
        costs=costs,
        measured_quality=measured_quality(quality_file),
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
    evaluated: list[Candidate] = []
    for gpu in gpus:
        counts = [1] if gpu.is_system else workload.gpu_counts
        for count in counts:
            for model in models:
                for quant in workload.quants:
                    for verifier in workload.verifiers:
                        evaluated.append(evaluate(ctx, gpu, count, model, quant, verifier))
    feasible = [c for c in evaluated if c.feasible]
    rejected: dict[str, int] = {}
    for c in evaluated:
        if not c.feasible:
            rejected[c.binding] = rejected.get(c.binding, 0) + 1
    order = {"none": 0, "latent": 1, "separate": 2}
    ranked = sorted(
        feasible,
        key=lambda c: (round(c.cost_per_mtok_usd, 4), -(c.pass_at_1 or 0.0), order[c.verifier]),
    )
    shortlist: list[Candidate] = []
    seen: set[tuple[str, int, str, str]] = set()
    for c in ranked:  # one quantisation per hardware x model x verifier: the cheapest
        key = (c.gpu, c.gpu_count, c.model, c.verifier)
        if key not in seen:
            seen.add(key)
            shortlist.append(c)
    pts_cost = [(c.id, c.pass_at_1 or 0.0, c.cost_per_mtok_usd) for c in feasible]
    pts_power = [(c.id, c.pass_at_1 or 0.0, c.active_power_w) for c in feasible]
    return PlanResult(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        workload=workload.model_dump(),
        region=region.id,
        price_per_kwh_usd=price,
        pue=pue,
        verifier_costs={k: v.source for k, v in costs.items()},
        evaluated=len(evaluated),
        feasible=len(feasible),
        rejected_by=rejected,
        shortlist=shortlist[:top],
        pareto_cost=_pareto(pts_cost),
        pareto_power=_pareto(pts_power),
        candidates=ranked,
    )

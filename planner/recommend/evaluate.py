"""Evaluate one candidate (GPU x count x model x quantisation x verifier) against a workload."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hardware_catalog import Catalog, Gpu, HostShare, ModelEntry
from planner.capacity.efficiency import efficiency_for
from planner.capacity.roofline import (
    MemoryNeed,
    devices_per_replica,
    memory_need,
    prefill_tok_s,
)
from planner.capacity.shapes import device_from_gpu, shape_from_entry
from planner.capacity.verifier import check_cpu_ceiling_tok_s, step_seconds
from planner.quality.decoding import Decoding
from planner.recommend.costs import CostBook
from planner.recommend.quality import Provenance, QualityBook
from planner.recommend.workload import PlannedVerifier, Workload, row_name
from planner.tco import TcoInputs, compute_tco
from runtime.errors import UsageError
from runtime.verifiers.registry import SELF
from runtime.verifiers.spec import VerifierSpec


class Candidate(BaseModel):
    """One configuration's predicted figures, costs, and what binds it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    gpu: str
    gpu_name: str
    gpu_count: int
    host: str | None
    model: str
    quant: str
    verifier: str = Field(description="The verifier spec (its planning form).")
    strategy: str = Field(
        description="How it decodes: a Decoding label (plain, threshold, regenerate-a8, ...)."
    )
    feasible: bool
    binding: str = Field(description="The constraint closest to its limit (or violated).")
    headroom: dict[str, float] = Field(description="Use / limit per constraint (>1 violates).")
    replicas: int
    gpus_per_replica: int
    memory_gb_per_replica: float
    main_weights_gb: float
    verifier_weights_gb: float
    kv_cache_gb: float
    decode_tok_s: float = Field(description="Batch-1 decode tokens/s with the verifier.")
    plain_decode_tok_s: float = Field(description="Same hardware and model, no verifier.")
    prefill_tok_s: float
    per_stream_tok_s: float = Field(description="Each sequence's tokens/s at peak concurrency.")
    aggregate_tok_s: float
    active_power_w: float
    idle_power_w: float
    capex_usd: float
    annual_cost_usd: float
    cost_per_mtok_usd: float
    energy_kwh_per_mtok: float
    carbon_g_per_mtok: float
    pass_at_1: float | None
    quality_provenance: Provenance
    quality_detail: str = Field(description="Which run, source or rule the pass@1 comes from.")
    quality_ci95: tuple[float, float] | None = None
    cost_per_1k_solved_usd: float | None = Field(
        description="Cost per million tokens x tokens per task / pass@1, per 1,000 tasks."
    )
    host_cpu_cores: int | None = Field(description="CPU cores that run sandboxed checks.")
    code_cpu_s_per_token: float = Field(0.0, description="Sandboxed checks' CPU per token.")
    verifier_cost_source: str
    trade: str = Field("", description="What it trades against the next shortlist entry.")
    notes: list[str] = Field(default_factory=list)

    @property
    def row(self) -> str:
        """The verifier, with its decoding where not the default: ``syntax @regenerate-a8``."""
        return row_name(self.verifier, self.strategy)

    @property
    def quality_per_kw(self) -> float | None:
        if self.pass_at_1 is None or self.active_power_w <= 0:
            return None
        return self.pass_at_1 / (self.active_power_w / 1000.0)


@dataclass(frozen=True)
class Context:
    """Everything shared by all candidates of one plan."""

    catalog: Catalog
    workload: Workload
    price_per_kwh_usd: float
    carbon_g_per_kwh: float
    pue: float
    costs: CostBook
    quality: QualityBook


def pick_host(ctx: Context, gpu: Gpu, count: int) -> HostShare | None:
    """Cheapest host in the catalogue that takes ``count`` GPUs of this form factor."""
    fits = [
        h
        for h in ctx.catalog.host_shares.values()
        if h.gpu_slots >= count and gpu.form_factor in h.form_factors
    ]
    return min(
        fits, key=lambda h: ctx.catalog.convert(h.price.amount, h.price.currency), default=None
    )


def _verifier_shape(ctx: Context, spec: VerifierSpec, model: ModelEntry, quant: str) -> Any:
    """The second model's shape for the roofline (``model:self``: the main model's)."""
    if not spec.needs_second_model:
        return None
    name = spec.verifier_models[0]
    if name == SELF:
        return shape_from_entry(model, quant)
    entry = ctx.catalog.models.get(name)
    if entry is None:
        raise UsageError(
            f"verifier model:{name} is not in the catalogue's models; use model:self or a "
            "catalogue model id"
        )
    return shape_from_entry(entry, quant)


def evaluate(
    ctx: Context, gpu: Gpu, count: int, model: ModelEntry, quant: str, row: PlannedVerifier
) -> Candidate:
    w = ctx.workload
    eff = efficiency_for(gpu.vendor, gpu.kind)
    dev = device_from_gpu(gpu)
    main = shape_from_entry(model, quant)
    spec = row.spec
    ver = _verifier_shape(ctx, spec, model, quant)
    strategy = row.decoding.label
    cost = ctx.costs.cost(spec, row.decoding, model.id)
    plain_cost = ctx.costs.cost(VerifierSpec(), Decoding(), model.id)
    verifier = spec.plan_key(model.id)
    notes: list[str] = []
    conc = w.concurrency

    # how many devices one replica needs, holding its share of the peak sequences
    def need_for(seqs: int, devices: int) -> MemoryNeed:
        return memory_need(
            main, ver, eff, context=w.context_tokens, sequences=seqs, devices=devices
        )

    k = devices_per_replica(dev, need_for(1, 1), eff, count) or count
    for _ in range(4):
        replicas = count // k
        seqs = math.ceil(conc / replicas)
        k_new = devices_per_replica(dev, need_for(seqs, 1), eff, count)
        if k_new is None:  # even all devices as one replica cannot hold it: memory binds
            k, replicas, seqs = count, 1, conc
            break
        if k_new == k:
            break
        k = k_new
    need = need_for(seqs, k)
    system = gpu.is_system
    host = None if system else pick_host(ctx, gpu, count)
    mid = w.context_tokens // 2
    t1 = step_seconds(dev, main, ver, eff, cost, concurrency=1, context=mid)
    t1_plain = step_seconds(dev, main, None, eff, plain_cost, concurrency=1, context=mid)
    tc = step_seconds(dev, main, ver, eff, cost, concurrency=seqs, context=mid)
    per_stream = 1.0 / tc
    aggregate = replicas * seqs / tc
    gpu_active = (
        gpu.idle_power_w + (gpu.board_power_w - gpu.idle_power_w) * eff.active_power_fraction
    )
    active_w = count * gpu_active
    idle_w = count * gpu.idle_power_w
    capex = count * ctx.catalog.convert(gpu.price.amount, gpu.price.currency)
    if host is not None:
        active_w += host.power_w
        idle_w += host.idle_power_w
        capex += ctx.catalog.convert(host.price.amount, host.price.currency)
    elif not system:
        notes.append(f"no host in the catalogue takes {count} x {gpu.form_factor} GPUs")
    cores = gpu.cpu_cores if system else (host.cpu_cores if host is not None else None)
    cpu_ceiling = check_cpu_ceiling_tok_s(cost, cores) if cores else None
    if cpu_ceiling is not None:
        aggregate = min(aggregate, cpu_ceiling)
    elif cost.code_cpu_s_per_token > 0:
        notes.append("the host's CPU cores are not in the catalogue: checks' CPU not sized")
    if spec.runs_code and not cost.code_cpu_s_per_token:
        notes.append("the checks' CPU time is measured nowhere yet: not charged to the host")
    tco = compute_tco(
        TcoInputs(
            capex_usd=capex,
            years=w.years,
            active_power_w=active_w,
            idle_power_w=idle_w,
            capacity_tok_s=max(aggregate, 1e-9),
            demand_tok_per_day=w.demand_tok_per_day,
            price_per_kwh_usd=ctx.price_per_kwh_usd,
            pue=ctx.pue,
            carbon_g_per_kwh=ctx.carbon_g_per_kwh,
            ops_usd_per_year=w.ops_usd_per_year,
        )
    )
    q = ctx.quality.estimate(model, spec, strategy)
    pass1 = q.pass_at_1
    head = {
        "memory": need.total_gb / (k * dev.memory_gb),
        "latency": w.min_tok_s_per_stream / per_stream if per_stream else math.inf,
        "throughput": (w.demand_tok_s / aggregate) if aggregate else math.inf,
    }
    if w.budget_usd is not None:
        head["budget"] = capex / w.budget_usd
    if w.power_cap_w is not None:
        head["power"] = active_w / w.power_cap_w
    if w.min_pass_at_1 > 0:
        head["quality"] = (w.min_pass_at_1 / pass1) if pass1 else math.inf
    if host is None and not system:
        head["host"] = math.inf
    if cpu_ceiling is not None:
        head["host_cpu"] = w.demand_tok_s / cpu_ceiling
    binding = max(head, key=lambda name: head[name])
    feasible = all(v <= 1.0 for v in head.values())
    if not spec.is_none:
        extra = (
            f", checks {1000 * cost.code_cpu_s_per_token:.2f} CPU ms per token"
            if cost.code_cpu_s_per_token
            else ""
        )
        weights = (
            f"+{need.verifier_weights_gb:.2f} GB weights, " if need.verifier_weights_gb else ""
        )
        notes.append(
            f"verifier: {weights}decode {100 * (1 - t1_plain / t1):.0f}% slower than plain, "
            f"compute x{cost.main_forward_per_emitted + cost.verifier_forward_per_emitted:.2f}"
            f"{extra}"
        )
    return Candidate(
        id=f"{count}x{gpu.id}/{model.id}/{quant}/{row_name(verifier, strategy)}",
        gpu=gpu.id,
        gpu_name=gpu.name,
        gpu_count=count,
        host=host.id if host else None,
        model=model.id,
        quant=quant,
        verifier=verifier,
        strategy=strategy,
        feasible=feasible,
        binding=binding,
        headroom={k_: round(v, 4) for k_, v in head.items()},
        replicas=replicas,
        gpus_per_replica=k,
        memory_gb_per_replica=round(need.total_gb, 3),
        main_weights_gb=round(need.main_weights_gb, 3),
        verifier_weights_gb=round(need.verifier_weights_gb, 3),
        kv_cache_gb=round(need.kv_cache_gb, 3),
        decode_tok_s=round(1.0 / t1, 2),
        plain_decode_tok_s=round(1.0 / t1_plain, 2),
        prefill_tok_s=round(prefill_tok_s(dev, main, eff), 1),
        per_stream_tok_s=round(per_stream, 2),
        aggregate_tok_s=round(aggregate, 1),
        active_power_w=round(active_w, 1),
        idle_power_w=round(idle_w, 1),
        capex_usd=round(capex, 2),
        annual_cost_usd=round(tco.annual_cost_usd, 2),
        cost_per_mtok_usd=round(tco.cost_per_mtok_usd, 4),
        energy_kwh_per_mtok=round(tco.energy_kwh_per_mtok, 4),
        carbon_g_per_mtok=round(tco.carbon_g_per_mtok, 1),
        pass_at_1=pass1,
        quality_provenance=q.provenance,
        quality_detail=q.detail,
        quality_ci95=q.ci95,
        cost_per_1k_solved_usd=round(tco.cost_per_mtok_usd * w.tokens_per_task / 1e3 / pass1, 5)
        if pass1
        else None,
        host_cpu_cores=cores,
        code_cpu_s_per_token=cost.code_cpu_s_per_token,
        verifier_cost_source=cost.source,
        notes=notes,
    )


__all__ = ["Candidate", "Context", "evaluate"]

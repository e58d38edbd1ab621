"""Total cost of ownership: capex amortised over the horizon, energy, operations; per token.

    annual_cost_usd = capex_usd / years + energy_kwh_per_year x price_per_kwh + ops_usd_per_year
    energy_kwh_per_year = (idle_w x (1 - duty) + active_w x duty) x 8760 h x PUE / 1000
    cost_per_mtok_usd = annual_cost_usd / (tokens served per year / 1e6)

``duty`` is the share of the year the hardware is generating (the served tokens divided by
what it could generate flat out). Energy per million tokens counts only the active draw
(the marginal energy of generating), times PUE; carbon multiplies it by the grid's intensity.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

HOURS_PER_YEAR = 8760.0


class TcoInputs(BaseModel):
    """Everything the cost arithmetic needs, in USD, watts and tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    capex_usd: float = Field(ge=0, description="GPUs plus their share of the host.")
    years: float = Field(gt=0, description="Amortisation horizon.")
    active_power_w: float = Field(ge=0, description="Draw while generating (GPUs + host).")
    idle_power_w: float = Field(ge=0, description="Draw while idle (GPUs + host).")
    capacity_tok_s: float = Field(gt=0, description="Aggregate tokens/s flat out.")
    demand_tok_per_day: float = Field(ge=0, description="Tokens the workload needs per day.")
    price_per_kwh_usd: float = Field(ge=0)
    pue: float = Field(1.0, ge=1.0, le=3.0)
    carbon_g_per_kwh: float = Field(0.0, ge=0)
    ops_usd_per_year: float = Field(0.0, ge=0, description="Operations: staff, support, space.")


class TcoResult(BaseModel):
    """Yearly figures and per-million-token figures; units in the names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    capex_usd: float
    capex_per_year_usd: float
    energy_kwh_per_year: float
    energy_per_year_usd: float
    ops_per_year_usd: float
    annual_cost_usd: float
    total_cost_usd: float = Field(description="Over the whole horizon.")
    duty: float = Field(description="Share of the time spent generating.")
    served_tok_per_day: float
    cost_per_mtok_usd: float
    energy_kwh_per_mtok: float
    carbon_g_per_mtok: float
    average_power_w: float


def compute_tco(x: TcoInputs) -> TcoResult:
    capacity_per_day = x.capacity_tok_s * 86400.0
    served = min(x.demand_tok_per_day, capacity_per_day)
    duty = served / capacity_per_day if capacity_per_day else 0.0
    avg_w = x.idle_power_w * (1.0 - duty) + x.active_power_w * duty
    kwh_year = avg_w * HOURS_PER_YEAR * x.pue / 1000.0
    energy_usd = kwh_year * x.price_per_kwh_usd
    capex_year = x.capex_usd / x.years
    annual = capex_year + energy_usd + x.ops_usd_per_year
    mtok_year = served * 365.0 / 1e6
    kwh_per_mtok = x.active_power_w * (1e6 / x.capacity_tok_s) / 3.6e6 * x.pue
    return TcoResult(
        capex_usd=x.capex_usd,
        capex_per_year_usd=capex_year,
        energy_kwh_per_year=kwh_year,
        energy_per_year_usd=energy_usd,
        ops_per_year_usd=x.ops_usd_per_year,
        annual_cost_usd=annual,
        total_cost_usd=annual * x.years,
        duty=duty,
        served_tok_per_day=served,
        cost_per_mtok_usd=annual / mtok_year if mtok_year else float("inf"),
        energy_kwh_per_mtok=kwh_per_mtok,
        carbon_g_per_mtok=kwh_per_mtok * x.carbon_g_per_kwh,
        average_power_w=avg_w,
    )

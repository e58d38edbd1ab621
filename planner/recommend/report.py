"""Print a plan: the ranked shortlist and what binds each choice."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from planner.recommend.evaluate import Candidate
from planner.recommend.plan import PlanResult


def shortlist_cells(rank: int, c: Candidate, hardware: str) -> list[str]:
    """One shortlist row as text: rank, hardware, model ... what binds."""
    return [
        str(rank),
        f"{c.gpu_count} x {hardware}",
        c.model,
        c.quant,
        c.verifier,
        "-" if c.pass_at_1 is None else f"{c.pass_at_1:.3f}",
        f"{c.cost_per_mtok_usd:.3f}",
        f"{c.capex_usd:,.0f}",
        f"{c.active_power_w:.0f}",
        f"{c.decode_tok_s:.0f}",
        f"{c.per_stream_tok_s:.0f}",
        f"{c.binding} {c.headroom[c.binding]:.0%}",
    ]


def print_plan(plan: PlanResult, console: Console | None = None) -> None:
    console = console or Console()
    if not console.is_terminal:
        console.width = max(console.width, 170)
    w = plan.workload
    console.print(
        f"[bold]plan[/bold]: {plan.evaluated} candidates, {plan.feasible} feasible; "
        f"region {plan.region} ({plan.price_per_kwh_usd:.3f} USD/kWh), PUE {plan.pue}, "
        f"{w['years']:g} years"
    )
    if plan.rejected_by:
        console.print(
            "rejected by: " + ", ".join(f"{k} {v}" for k, v in sorted(plan.rejected_by.items()))
        )
    if not plan.shortlist:
        console.print(
            "[red]no candidate meets every constraint[/red]: relax the binding ones "
            "above (budget, power cap, latency, minimum pass@1)"
        )
        return
    t = Table(box=box.SIMPLE_HEAD, title="ranked shortlist (cheapest per million tokens first)")
    for col in (
        "#",
        "hardware",
        "model",
        "quant",
        "verifier",
        "pass@1",
        "$/Mtok",
        "capex $",
        "W",
        "tok/s b1",
        "tok/s peak",
        "binds",
        "pareto",
    ):
        t.add_column(
            col,
            justify="left"
            if col in ("hardware", "model", "verifier", "binds", "pareto", "quant")
            else "right",
            no_wrap=True,
        )
    for i, c in enumerate(plan.shortlist, 1):
        marks = ("$" if c.id in plan.pareto_cost else "") + (
            "W" if c.id in plan.pareto_power else ""
        )
        t.add_row(*shortlist_cells(i, c, c.gpu), marks)
    console.print(t)
    console.print(
        "binds: the constraint closest to its limit (use / limit); pareto: $ = on the "
        "quality vs cost frontier, W = on the quality vs watts frontier"
    )
    shown: set[str] = set()
    for c in plan.shortlist:  # what each kind of verifier adds, once
        if c.verifier != "none" and c.verifier not in shown:
            shown.add(c.verifier)
            console.print(
                f"{c.verifier} verifier on {c.gpu_count} x {c.gpu}, {c.model}: "
                f"{'; '.join(c.notes)}; quality: {c.quality_source}"
            )

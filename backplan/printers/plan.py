"""Print a plan in the terminal: the verdict, the ranked shortlist and what binds each choice."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from planner.recommend.cells import PROVENANCE_LEGEND, SHORTLIST_HEAD, shortlist_cells
from planner.recommend.plan import PlanResult


def print_plan(plan: PlanResult, console: Console | None = None) -> None:
    console = console or Console()
    if not console.is_terminal:
        console.width = max(console.width, 190)
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
    console.print(plan.verdict)
    t = Table(box=box.SIMPLE_HEAD, title="ranked shortlist (cheapest per solved task first)")
    left = ("hardware", "model", "verifier", "binds", "pareto", "quant")
    for col in (*SHORTLIST_HEAD, "pareto"):
        t.add_column(col, justify="left" if col in left else "right", no_wrap=True)
    for i, c in enumerate(plan.shortlist, 1):
        marks = ("$" if c.id in plan.pareto_cost else "") + (
            "W" if c.id in plan.pareto_power else ""
        )
        t.add_row(*shortlist_cells(i, c, c.gpu), marks)
    console.print(t)
    console.print(
        f"{PROVENANCE_LEGEND}. $/1k solved: USD per 1,000 solved tasks "
        f"({w.get('tokens_per_task'):g} tokens each); binds: the constraint closest to its "
        "limit (use / limit); pareto: $ = on the quality vs cost frontier, W = quality vs watts"
    )
    for i, c in enumerate(plan.shortlist[:3], 1):
        if c.trade:
            console.print(f"#{i} {c.trade}")
    console.print(plan.calibration)
    shown: set[str] = set()
    for c in plan.shortlist:  # where each verifier row's figures come from, once
        key = f"{c.model} {c.row}"
        if c.verifier != "none" and key not in shown:
            shown.add(key)
            console.print(
                f"{c.row} on {c.model}: {'; '.join(c.notes)}; quality: {c.quality_detail}; "
                f"counts: {c.verifier_cost_source}"
            )

"""A plan's shortlist as table cells: the same columns in the terminal, the report and exports."""

from __future__ import annotations

from planner.recommend.evaluate import Candidate

#: How a pass@1's provenance is marked in tables.
PROVENANCE_MARK = {"measured": "m", "published": "p", "extrapolated": "e", "unknown": "?"}
PROVENANCE_LEGEND = (
    "pass@1: m = measured in this harness, p = published (calibrated to this harness where a "
    "model of its family was measured), e = extrapolated by the fix-rate rule, ? = unknown"
)


def pass_cell(c: Candidate) -> str:
    mark = PROVENANCE_MARK[c.quality_provenance]
    return "-" if c.pass_at_1 is None else f"{c.pass_at_1:.3f} {mark}"


def shortlist_cells(rank: int, c: Candidate, hardware: str) -> list[str]:
    """One shortlist row as text: rank, hardware, model ... what binds."""
    return [
        str(rank),
        f"{c.gpu_count} x {hardware}",
        c.model,
        c.quant,
        c.row,
        pass_cell(c),
        "-" if c.cost_per_1k_solved_usd is None else f"{c.cost_per_1k_solved_usd:.3f}",
        f"{c.cost_per_mtok_usd:.3f}",
        f"{c.capex_usd:,.0f}",
        f"{c.active_power_w:.0f}",
        f"{c.decode_tok_s:.0f}",
        f"{c.per_stream_tok_s:.0f}",
        f"{c.binding} {c.headroom[c.binding]:.0%}",
    ]


SHORTLIST_HEAD = [
    "#",
    "hardware",
    "model",
    "quant",
    "verifier",
    "pass@1",
    "$/1k solved",
    "$/Mtok",
    "capex $",
    "W",
    "tok/s b1",
    "tok/s peak",
    "binds",
]

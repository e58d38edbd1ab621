"""Altair charts for the pages (Vega-Lite, drawn in the browser: no network at view time)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from dashboards.tables import COST_PARTS, MEMORY_PARTS


def _candidate_axis(df: pd.DataFrame) -> alt.Y:
    """Candidates top to bottom in shortlist order, labels long enough to read."""
    order = list(dict.fromkeys(df.sort_values("rank")["candidate"]))
    return alt.Y("candidate:N", title=None, sort=order, axis=alt.Axis(labelLimit=420))


def _in_order(df: pd.DataFrame) -> list[str]:
    """Profile configurations in the profile's own order (plain first)."""
    return list(dict.fromkeys(str(c) for c in df["config"]))


def pareto_chart(df: pd.DataFrame, x: str, x_title: str) -> alt.LayerChart:
    """Quality against ``x`` (log scale) for every feasible candidate, the frontier as a line."""
    base = alt.Chart(df).encode(
        x=alt.X(f"{x}:Q", title=x_title, scale=alt.Scale(type="log")),
        y=alt.Y("pass_at_1:Q", title="HumanEval pass@1", scale=alt.Scale(zero=False)),
        tooltip=[
            alt.Tooltip("hardware:N"),
            alt.Tooltip("model:N"),
            alt.Tooltip("verifier:N"),
            alt.Tooltip("pass_at_1:Q", format=".3f"),
            alt.Tooltip("provenance:N", title="pass@1 from"),
            alt.Tooltip(f"{x}:Q", title=x_title, format=",.3f"),
        ],
    )
    points = base.mark_circle(size=22, opacity=0.4).encode(
        color=alt.Color("verifier:N", scale=alt.Scale(scheme="category10"), title="verifier")
    )
    front = (
        base.transform_filter(alt.datum.frontier)
        .mark_line(point=alt.OverlayMarkDef(color="black", size=40), color="black")
        .encode(order=alt.Order(f"{x}:Q"))
    )
    return alt.LayerChart(layer=[points, front], height=340)


def cost_chart(df: pd.DataFrame) -> alt.Chart:
    """Stacked yearly cost per shortlisted candidate."""
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("usd_per_year:Q", title="USD per year", stack="zero"),
            y=_candidate_axis(df),
            color=alt.Color(
                "part:N", title="cost", scale=alt.Scale(domain=list(COST_PARTS)), sort=COST_PARTS
            ),
            order=alt.Order("part:N", sort="ascending"),
            tooltip=["candidate:N", "part:N", alt.Tooltip("usd_per_year:Q", format=",.0f")],
        )
        .properties(height=alt.Step(26))
    )


def memory_chart(stack: pd.DataFrame, capacity: pd.DataFrame) -> alt.LayerChart:
    """Each replica's memory by part, with a tick at the memory of its GPUs."""
    y = _candidate_axis(capacity)
    bars = (
        alt.Chart(stack)
        .mark_bar()
        .encode(
            x=alt.X("gb:Q", title="GB per replica", stack="zero"),
            y=y,
            color=alt.Color("part:N", title="memory", scale=alt.Scale(domain=list(MEMORY_PARTS))),
            order=alt.Order("order:Q"),
            tooltip=["candidate:N", "part:N", alt.Tooltip("gb:Q", format=".2f")],
        )
    )
    cap = (
        alt.Chart(capacity)
        .mark_tick(color="crimson", thickness=3, size=22)
        .encode(
            x="capacity_gb:Q",
            y=y,
            tooltip=[
                "candidate:N",
                alt.Tooltip("capacity_gb:Q", title="GPU memory per replica GB", format=".1f"),
                alt.Tooltip("gpus_per_replica:Q", title="GPUs per replica"),
            ],
        )
    )
    return alt.LayerChart(layer=[bars, cap], height=alt.Step(26))


def ratios_chart(df: pd.DataFrame) -> alt.Chart:
    """memory x, compute x, decode x per configuration as grouped bars (1 = plain)."""
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("config:N", title=None, sort=_in_order(df), axis=alt.Axis(labelAngle=-25)),
            xOffset=alt.XOffset("figure:N", sort=["memory x", "compute x", "decode x"]),
            y=alt.Y("ratio:Q", title="ratio to plain"),
            color=alt.Color("figure:N", title=None, sort=["memory x", "compute x", "decode x"]),
            tooltip=["config:N", "figure:N", alt.Tooltip("ratio:Q", format=".3f")],
        )
        .properties(height=300)
    )


def speed_chart(df: pd.DataFrame) -> alt.LayerChart:
    """Median decode tokens/s per configuration, with the range of the repeats."""
    axis = alt.Axis(labelAngle=-25)
    base = alt.Chart(df).encode(x=alt.X("config:N", title=None, sort=_in_order(df), axis=axis))
    bars = base.mark_bar(opacity=0.75).encode(
        y=alt.Y("median:Q", title="emitted tokens / s"),
        tooltip=[
            "config:N",
            alt.Tooltip("median:Q", format=".1f"),
            alt.Tooltip("low:Q", format=".1f"),
            alt.Tooltip("high:Q", format=".1f"),
        ],
    )
    rules = base.mark_rule(color="black").encode(y="low:Q", y2="high:Q")
    return alt.LayerChart(layer=[bars, rules], height=260)

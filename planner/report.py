"""The main job's report: profile + plan as markdown and HTML, with charts (PNG).

``write_report(out_dir, profile, plan)`` writes ``report.md`` (charts as PNG files beside it)
and ``report.html`` (self-contained: charts embedded, no network needed), atomically.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from planner.profiler.schema import Profile
from planner.recommend.cells import PROVENANCE_LEGEND, SHORTLIST_HEAD, shortlist_cells
from planner.recommend.plan import PlanResult
from runtime.atomic import atomic_write, write_text_atomic


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def chart_overheads(profile: Profile) -> bytes:
    """The seed's three overhead figures per configuration, as grouped bars."""
    plt = _figure()
    names = [c.name for c in profile.configs]
    series = {
        "memory x": [c.memory_ratio for c in profile.configs],
        "compute x": [c.compute_ratio for c in profile.configs],
        "decode x": [c.decode_ratio for c in profile.configs],
    }
    fig, ax = plt.subplots(figsize=(9, 3.8), dpi=110)
    width = 0.27
    for i, (label, vals) in enumerate(series.items()):
        ax.bar([x + (i - 1) * width for x in range(len(names))], vals, width, label=label)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("ratio to plain")
    ax.set_title(f"Overheads measured on {profile.model.name} ({profile.meter.get('device')})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig, plt)


def chart_pareto(plan: PlanResult, x: str, xlabel: str, frontier: list[str]) -> bytes:
    """Quality against ``x`` for every feasible candidate; the frontier highlighted."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=110)
    pts = [
        (getattr(c, x), c.pass_at_1 or 0.0, c.id in frontier, c.verifier) for c in plan.candidates
    ]
    palette = plt.get_cmap("tab10").colors
    for i, kind in enumerate(dict.fromkeys(p[3] for p in pts)):
        xs = [p[0] for p in pts if p[3] == kind]
        ys = [p[1] for p in pts if p[3] == kind]
        colour = palette[i % len(palette)]
        ax.scatter(xs, ys, s=10, alpha=0.35, color=colour, label=f"verifier: {kind}")
    front = sorted((p[0], p[1]) for p in pts if p[2])
    if front:
        ax.plot([p[0] for p in front], [p[1] for p in front], "k.-", lw=1, label="frontier")
    ax.set_xscale("log")
    from matplotlib.ticker import FormatStrFormatter

    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("HumanEval pass@1")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig, plt)


def chart_costs(plan: PlanResult) -> bytes:
    """Yearly cost breakdown of the shortlist: capex share, energy, operations."""
    plt = _figure()
    rows = plan.shortlist
    fig, ax = plt.subplots(figsize=(9, 3.8), dpi=110)
    labels = [f"{i}" for i in range(1, len(rows) + 1)]
    years = float(plan.workload.get("years", 1))
    capex = [c.capex_usd / years for c in rows]
    energy = [
        c.annual_cost_usd - c.capex_usd / years - float(plan.workload.get("ops_usd_per_year", 0))
        for c in rows
    ]
    ops = [float(plan.workload.get("ops_usd_per_year", 0))] * len(rows)
    ax.bar(labels, capex, label="capex / year")
    ax.bar(labels, energy, bottom=capex, label="energy / year")
    ax.bar(
        labels,
        ops,
        bottom=[a + b for a, b in zip(capex, energy, strict=True)],
        label="operations / year",
    )
    ax.set_xlabel("shortlist rank")
    ax.set_ylabel("USD per year")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig, plt)


def _png(fig: Any, plt: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _profile_rows(profile: Profile) -> list[list[str]]:
    return [
        [
            c.name,
            f"{c.memory_ratio:.2f}",
            f"{c.compute_ratio:.2f}",
            f"{c.decode_ratio:.2f}",
            f"{c.decode.tok_s.median:.1f} (+-{c.decode.tok_s.spread_pct:.0f}%)",
            f"{c.memory.peak_gb:.3f}",
            f"{c.compute.forward_per_emitted:.2f}",
            f"{c.energy.j_per_token.median:.3f}{'*' if c.energy.is_estimate else ''}",
        ]
        for c in profile.configs
    ]


PROFILE_HEAD = [
    "config",
    "memory x",
    "compute x",
    "decode x",
    "tok/s",
    "peak GB",
    "fwd/token",
    "J/token",
]


def _plan_rows(plan: PlanResult) -> list[list[str]]:
    return [shortlist_cells(i, c, c.gpu_name) for i, c in enumerate(plan.shortlist, 1)]


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def write_report(out_dir: Path, profile: Profile, plan: PlanResult) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = {
        "overheads.png": chart_overheads(profile),
        "pareto_cost.png": chart_pareto(
            plan, "cost_per_mtok_usd", "USD per million tokens", plan.pareto_cost
        ),
        "pareto_power.png": chart_pareto(
            plan, "active_power_w", "watts while generating", plan.pareto_power
        ),
        "costs.png": chart_costs(plan),
    }
    for name, data in charts.items():
        with atomic_write(out_dir / name, binary=True) as fh:
            fh.write(data)
    w = plan.workload
    intro = (
        f"Workload: {w.get('developers')} developers, {plan.evaluated} candidates "
        f"evaluated, {plan.feasible} feasible; region {plan.region} "
        f"({plan.price_per_kwh_usd:.3f} USD/kWh), PUE {plan.pue}, {w.get('years')} years. "
        f"Profile of {profile.model.name} measured {profile.created} on "
        f"{profile.fingerprint.get('cpu_model')} ({profile.meter.get('device')})."
    )
    caveats = profile.warnings + [
        PROVENANCE_LEGEND + ".",
        plan.calibration + ".",
        "A verifier row's pass@1 is measured, or extrapolated for programmatic checks by the "
        "share of plain failures they fixed where measured; a learned head is never "
        "extrapolated to another model (its pass@1 is then unknown).",
    ]
    trades = [f"#{i} {c.trade}" for i, c in enumerate(plan.shortlist, 1) if c.trade]
    md = (
        "\n\n".join(
            [
                "# backplan report",
                plan.verdict,
                intro,
                "## Measured overheads (ratio to plain)",
                _md_table(PROFILE_HEAD, _profile_rows(profile)),
                "![overheads](overheads.png)",
                "## Ranked shortlist",
                _md_table(SHORTLIST_HEAD, _plan_rows(plan)),
                "\n".join(f"- {t}" for t in trades),
                "![quality vs cost](pareto_cost.png)",
                "![quality vs watts](pareto_power.png)",
                "![cost breakdown](costs.png)",
                "## Caveats",
                "\n".join(f"- {c}" for c in caveats),
            ]
        )
        + "\n"
    )

    def img(name: str, alt: str) -> str:
        data = base64.b64encode(charts[name]).decode()
        return f'<img alt="{alt}" src="data:image/png;base64,{data}">'

    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>backplan report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;font-size:13px;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 7px;text-align:right}}
td:nth-child(-n+2),th{{text-align:left}} img{{max-width:100%}}</style></head><body>
<h1>backplan report</h1><p><b>{html.escape(plan.verdict)}</b></p><p>{html.escape(intro)}</p>
<h2>Measured overheads (ratio to plain)</h2>{_html_table(PROFILE_HEAD, _profile_rows(profile))}
{img("overheads.png", "overheads")}
<h2>Ranked shortlist</h2>{_html_table(SHORTLIST_HEAD, _plan_rows(plan))}
<ul>{"".join(f"<li>{html.escape(t)}</li>" for t in trades)}</ul>
{img("pareto_cost.png", "quality vs cost")}{img("pareto_power.png", "quality vs watts")}
{img("costs.png", "cost breakdown")}
<h2>Caveats</h2><ul>{"".join(f"<li>{html.escape(c)}</li>" for c in caveats)}</ul>
</body></html>
"""
    paths = {
        "markdown": write_text_atomic(out_dir / "report.md", md),
        "html": write_text_atomic(out_dir / "report.html", page),
    }
    return paths

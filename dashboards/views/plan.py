"""Plan: a workload and its constraints in, the ranked shortlist and its charts out."""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from dashboards import charts, tables
from dashboards.config import runs
from dashboards.state import (
    PLAN_KEY,
    PLAN_PROFILE_KEY,
    CatalogState,
    all_profiles,
    catalog_state,
    current_plan,
    number_or_none,
    show_catalog_error,
)
from hardware_catalog import Catalog
from planner.profiler.schema import Profile
from planner.recommend.plan import PlanResult, make_plan
from planner.recommend.quality import measured_rows, read_measured
from planner.recommend.workload import DEFAULT_VERIFIERS, Workload, make_workload
from runtime.errors import BackplanError

INPUTS_KEY = "plan_inputs"  # the last submitted form, so values survive a page change
DEFAULTS_PROFILE = "built-in defaults (no profile)"
CUSTOM_PUE = "a number"
DEMAND = ("developers", "tokens per day")
QUANTS = ("Q4_K_M", "Q8_0", "F16")
GPU_COUNTS = (1, 2, 4, 8)


def _measured() -> list[str]:
    """The configurations the runs lists measured, as the verifiers field spells them."""
    try:
        return measured_rows(read_measured(runs()))
    except BackplanError:  # a bad runs list is reported when the plan is made
        return []


def form_defaults() -> dict[str, Any]:
    """The form's first values: the workload model's own defaults (one source), plus what only
    the form has (how demand is given, the PUE as a preset or a number, the list length)."""
    w = Workload()
    pue_is_number = not isinstance(w.pue, str)
    return {
        "demand": "developers",
        "developers": w.developers,
        "tokens_per_developer_per_day": w.tokens_per_developer_per_day,
        "tokens_per_day": w.demand_tok_per_day,
        "peak_concurrency": w.peak_concurrency or 0,  # 0: the model's rule (developers/5)
        "context_tokens": w.context_tokens,
        "min_tok_s_per_stream": w.min_tok_s_per_stream,
        "min_pass_at_1": w.min_pass_at_1,
        "budget_usd": w.budget_usd or 0.0,  # 0: no limit
        "power_cap_w": w.power_cap_w or 0.0,
        "region": w.region,
        "pue_preset": CUSTOM_PUE if pue_is_number else w.pue,
        "pue_value": float(w.pue) if pue_is_number else 1.5,
        "years": w.years,
        "ops_usd_per_year": w.ops_usd_per_year,
        "gpus": list(w.gpus or []),
        "models": list(w.models or []),
        "verifiers": list(w.verifiers),
        "quants": list(w.quants),
        "gpu_counts": list(w.gpu_counts),
        "top": 10,
    }


def _help(name: str) -> str:
    return Workload.model_fields[name].description or name


def _index(options: list[str], value: Any) -> int:
    return options.index(value) if value in options else 0


def workload_data(values: dict[str, Any]) -> dict[str, Any]:
    """The form's values as workload fields (0 = no limit / the default)."""
    data: dict[str, Any] = {
        "context_tokens": int(values["context_tokens"]),
        "min_tok_s_per_stream": float(values["min_tok_s_per_stream"]),
        "min_pass_at_1": float(values["min_pass_at_1"]),
        "region": values["region"],
        "years": float(values["years"]),
        "ops_usd_per_year": float(values["ops_usd_per_year"]),
        "verifiers": list(values["verifiers"]),
        "quants": list(values["quants"]),
        "gpu_counts": [int(n) for n in values["gpu_counts"]],
    }
    if values["demand"] == "tokens per day":
        data["developers"] = None
        data["tokens_per_day"] = float(values["tokens_per_day"])
    else:
        data["developers"] = int(values["developers"])
        data["tokens_per_developer_per_day"] = float(values["tokens_per_developer_per_day"])
    if int(values["peak_concurrency"] or 0) > 0:
        data["peak_concurrency"] = int(values["peak_concurrency"])
    for name in ("budget_usd", "power_cap_w"):
        limit = number_or_none(values[name])
        if limit is not None:
            data[name] = limit
    preset = values["pue_preset"]
    data["pue"] = float(values["pue_value"]) if preset == CUSTOM_PUE else preset
    if values["gpus"]:
        data["gpus"] = list(values["gpus"])
    if values["models"]:
        data["models"] = list(values["models"])
    return data


def _form(catalog: Catalog, profile_names: list[str]) -> dict[str, Any] | None:
    """The workload form; the submitted values, or None when not submitted this run."""
    last: dict[str, Any] = {**form_defaults(), **st.session_state.get(INPUTS_KEY, {})}
    regions = sorted(catalog.regions)
    presets = [*sorted(catalog.pue_presets, key=lambda p: catalog.pue_presets[p].pue), CUSTOM_PUE]
    v: dict[str, Any] = {}
    with st.form("plan_form"):
        st.markdown("**Demand**")
        c1, c2, c3, c4 = st.columns(4)
        v["demand"] = c1.radio(
            "Demand given as", DEMAND, index=_index(list(DEMAND), last["demand"]), horizontal=True
        )
        v["developers"] = c2.number_input(
            "Developers",
            min_value=1,
            value=int(last["developers"]),
            step=1,
            help=_help("developers"),
        )
        v["tokens_per_developer_per_day"] = c3.number_input(
            "Tokens per developer per day",
            min_value=1.0,
            value=float(last["tokens_per_developer_per_day"]),
            step=10_000.0,
            format="%.0f",
            help=_help("tokens_per_developer_per_day"),
        )
        v["tokens_per_day"] = c4.number_input(
            "Tokens per day",
            min_value=1.0,
            value=float(last["tokens_per_day"]),
            step=100_000.0,
            format="%.0f",
            help=_help("tokens_per_day") + " Used when demand is given as tokens per day.",
        )
        st.markdown("**Service and quality**")
        c1, c2, c3, c4 = st.columns(4)
        v["peak_concurrency"] = c1.number_input(
            "Peak concurrency (0 = developers / 5)",
            min_value=0,
            value=int(last["peak_concurrency"]),
            step=1,
            help=_help("peak_concurrency"),
        )
        v["min_tok_s_per_stream"] = c2.number_input(
            "Latency: tokens/s per user at peak",
            min_value=0.0,
            value=float(last["min_tok_s_per_stream"]),
            step=5.0,
            help=_help("min_tok_s_per_stream"),
        )
        v["min_pass_at_1"] = c3.slider(
            "Minimum pass@1",
            min_value=0.0,
            max_value=1.0,
            value=float(last["min_pass_at_1"]),
            step=0.01,
            help=_help("min_pass_at_1"),
        )
        v["context_tokens"] = c4.number_input(
            "Context tokens",
            min_value=256,
            max_value=131072,
            value=int(last["context_tokens"]),
            step=1024,
            help=_help("context_tokens"),
        )
        st.markdown("**Limits and costs**")
        c1, c2, c3, c4, c5, c6 = st.columns(6)
        v["budget_usd"] = c1.number_input(
            "Budget USD (0 = none)",
            min_value=0.0,
            value=float(last["budget_usd"]),
            step=5_000.0,
            format="%.0f",
            help=_help("budget_usd"),
        )
        v["power_cap_w"] = c2.number_input(
            "Power cap W (0 = none)",
            min_value=0.0,
            value=float(last["power_cap_w"]),
            step=100.0,
            format="%.0f",
            help=_help("power_cap_w"),
        )
        v["region"] = c3.selectbox(
            "Region",
            regions,
            index=_index(regions, last["region"]),
            format_func=lambda r: f"{catalog.regions[r].name} ({r})",
            help=_help("region"),
        )
        v["pue_preset"] = c4.selectbox(
            "PUE",
            presets,
            index=_index(presets, last["pue_preset"]),
            format_func=lambda p: p if p == CUSTOM_PUE else f"{p} ({catalog.pue_presets[p].pue:g})",
            help=_help("pue"),
        )
        v["pue_value"] = c5.number_input(
            "PUE number (when 'a number')",
            min_value=1.0,
            max_value=3.0,
            value=float(last["pue_value"]),
            step=0.05,
        )
        v["years"] = c6.number_input(
            "Horizon years",
            min_value=0.5,
            max_value=10.0,
            value=float(last["years"]),
            step=0.5,
            help=_help("years"),
        )
        with st.expander("What to consider"):
            c1, c2 = st.columns(2)
            v["gpus"] = c1.multiselect(
                "GPUs (empty = the whole catalogue)",
                sorted(catalog.gpus),
                default=[g for g in last["gpus"] if g in catalog.gpus],
                format_func=lambda g: catalog.gpus[g].name,
            )
            v["models"] = c2.multiselect(
                "Models (empty = the Qwen2.5-Coder family)",
                sorted(catalog.models),
                default=[m for m in last["models"] if m in catalog.models],
            )
            c1, c2, c3, c4, c5 = st.columns(5)
            v["verifiers"] = c1.multiselect(
                "Verifiers",
                list(
                    dict.fromkeys([*DEFAULT_VERIFIERS, "syntax", *_measured(), *last["verifiers"]])
                ),
                last["verifiers"],
                accept_new_options=True,
                help=_help("verifiers"),
            )
            v["quants"] = c2.multiselect("Quantisations", list(QUANTS), last["quants"])
            v["gpu_counts"] = c3.multiselect("GPU counts", list(GPU_COUNTS), last["gpu_counts"])
            v["ops_usd_per_year"] = c4.number_input(
                "Operations USD / year",
                min_value=0.0,
                value=float(last["ops_usd_per_year"]),
                step=1000.0,
                format="%.0f",
                help=_help("ops_usd_per_year"),
            )
            v["top"] = c5.number_input(
                "Shortlist length", min_value=1, max_value=50, value=int(last["top"]), step=1
            )
        options = [DEFAULTS_PROFILE, *profile_names]
        chosen = st.session_state.get(PLAN_PROFILE_KEY)
        v["profile"] = st.selectbox(
            "Verifier overheads from",
            options,
            index=_index(options, chosen),
            help="A profile's hardware-independent counts set what each verifier costs "
            "(Profiles page); otherwise documented defaults.",
        )
        submitted = st.form_submit_button("Make plan", type="primary")
    return v if submitted else None


def _run_plan(v: dict[str, Any], state: CatalogState, profiles: dict[str, Profile]) -> None:
    st.session_state[INPUTS_KEY] = {k: val for k, val in v.items() if k != "profile"}
    profile_name = v["profile"] if v["profile"] in profiles else None
    st.session_state[PLAN_PROFILE_KEY] = profile_name
    for field, what in (
        ("verifiers", "verifier"),
        ("quants", "quantisation"),
        ("gpu_counts", "GPU count"),
    ):
        if not v[field]:
            st.session_state.pop(PLAN_KEY, None)
            st.error(f"Choose at least one {what} under 'What to consider'.")
            return
    try:
        workload = make_workload(workload_data(v), where="plan form")
        with st.spinner("Planning..."):
            plan = make_plan(
                workload,
                catalog=state.catalog,
                profile=profiles.get(profile_name) if profile_name else None,
                runs=runs(),
                top=int(v["top"]),
            )
    except BackplanError as exc:
        st.session_state.pop(PLAN_KEY, None)
        st.error(f"Cannot plan: {exc}")
        return
    st.session_state[PLAN_KEY] = plan


def report_builder(plan: PlanResult, profile: Profile) -> Callable[[str], bytes]:
    """A function giving the report as 'html' or 'zip' (markdown + its charts), built once."""
    memo: dict[str, bytes] = {}

    def build(kind: str) -> bytes:
        if not memo:
            from planner.report import write_report

            with tempfile.TemporaryDirectory(prefix="backplan-report-") as tmp:
                folder = Path(tmp)
                paths = write_report(folder, profile, plan)
                memo["html"] = paths["html"].read_bytes()
                buf = io.BytesIO()
                with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                    for path in sorted(folder.iterdir()):
                        if path.suffix in (".md", ".png"):
                            zf.write(path, f"backplan-report/{path.name}")
                memo["zip"] = buf.getvalue()
        return memo[kind]

    return build


def _downloads(plan: PlanResult, profiles: dict[str, Profile]) -> None:
    c1, c2, c3 = st.columns(3)
    c1.download_button(
        "Shortlist (CSV)",
        tables.shortlist_csv(plan),
        file_name="backplan-shortlist.csv",
        mime="text/csv",
        on_click="ignore",
    )
    chosen = st.session_state.get(PLAN_PROFILE_KEY)
    name = chosen if chosen in profiles else next(iter(profiles), None)
    if name is None:
        c2.download_button(
            "Report (HTML)", b"", disabled=True, help="The report needs a profile", key="r_html"
        )
        c3.download_button(
            "Report (markdown, zip)", b"", disabled=True, help="needs a profile", key="r_md"
        )
        st.caption("The report includes measured overheads: load or run a profile (Profiles page).")
        return
    build = report_builder(plan, profiles[name])
    c2.download_button(
        "Report (HTML)",
        lambda: build("html"),
        file_name="backplan-report.html",
        mime="text/html",
        on_click="ignore",
        key="r_html",
    )
    c3.download_button(
        "Report (markdown, zip)",
        lambda: build("zip"),
        file_name="backplan-report.zip",
        mime="application/zip",
        on_click="ignore",
        key="r_md",
    )
    st.caption(f"The report's profile: {name}")


def show_plan(plan: PlanResult, catalog: Catalog, profiles: dict[str, Profile]) -> None:
    w = plan.workload
    st.caption(
        f"{plan.evaluated} candidates evaluated, {plan.feasible} feasible; region "
        f"{plan.region} ({plan.price_per_kwh_usd:.3f} USD/kWh), PUE {plan.pue:g}, "
        f"{float(w.get('years') or 0):g} years. {plan.calibration}."
    )
    if not plan.shortlist:
        st.error(
            "No candidate meets every constraint. What binds (candidates removed by each "
            f"limit): {tables.binding_summary(plan)}. Relax the binding ones (budget, power "
            "cap, latency, minimum pass@1) or consider more GPUs and models."
        )
        return
    best = plan.shortlist[0]
    solved = (
        f"{best.cost_per_1k_solved_usd:.3f} USD per 1,000 solved tasks"
        if best.cost_per_1k_solved_usd is not None
        else "pass@1 unknown"
    )
    st.success(
        f"Best: {best.gpu_count} x {best.gpu_name}, {best.model} {best.quant}, verifier "
        f"{best.row}: {solved} ({best.cost_per_mtok_usd:.3f} USD per million tokens), "
        f"pass@1 {(best.pass_at_1 or 0):.3f} ({best.quality_provenance}), "
        f"{best.active_power_w:.0f} W, capex {best.capex_usd:,.0f} USD; binds: {best.binding}."
    )
    st.info(plan.verdict)
    st.subheader("Ranked shortlist")
    frame = tables.shortlist_frame(plan)
    st.dataframe(
        frame.drop(columns=["id"]),
        hide_index=True,
        width="stretch",
        column_config={
            "hardware": st.column_config.TextColumn(width="medium"),
            "pass@1": st.column_config.NumberColumn(format="%.3f"),
            "pass@1 from": st.column_config.TextColumn(
                help="measured (this harness), published (calibrated to it), extrapolated "
                "(fix-rate rule) or unknown; the quality detail column says which"
            ),
            "usd_per_1k_solved": st.column_config.NumberColumn(
                "USD / 1k solved", format="%.3f", help="Cost per 1,000 solved tasks: the rank"
            ),
            "usd_per_mtok": st.column_config.NumberColumn("USD / Mtok", format="%.3f"),
            "capex_usd": st.column_config.NumberColumn("capex USD", format="%,.0f"),
            "annual_cost_usd": st.column_config.NumberColumn("USD / year", format="%,.0f"),
            "active_power_w": st.column_config.NumberColumn("W", format="%.0f"),
            "decode_tok_s_batch1": st.column_config.NumberColumn("tok/s b1", format="%.0f"),
            "tok_s_per_stream_at_peak": st.column_config.NumberColumn("tok/s peak", format="%.0f"),
            "memory_gb_per_replica": st.column_config.NumberColumn("GB/replica", format="%.1f"),
        },
    )
    st.caption(
        "Ranked by cost per solved task (cost per million tokens x tokens per task / pass@1). "
        "binds: the constraint closest to its limit (use / limit); pareto: $ = on the quality "
        "vs cost frontier, W = on the quality vs watts frontier."
    )
    if plan.rejected_by:
        st.caption("Rejected by: " + tables.binding_summary(plan))
    _downloads(plan, profiles)
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Quality vs cost per million tokens**")
        st.altair_chart(
            charts.pareto_chart(
                tables.pareto_frame(plan, "cost_per_mtok_usd", plan.pareto_cost),
                "cost_per_mtok_usd",
                "USD per million tokens",
            ),
            width="stretch",
        )
    with c2:
        st.markdown("**Quality vs watts**")
        st.altair_chart(
            charts.pareto_chart(
                tables.pareto_frame(plan, "active_power_w", plan.pareto_power),
                "active_power_w",
                "watts while generating",
            ),
            width="stretch",
        )
    st.markdown("**Cost per year: capex, energy, operations**")
    st.altair_chart(charts.cost_chart(tables.cost_frame(plan)), width="stretch")
    st.markdown("**Memory per replica against the memory of its GPUs (red tick)**")
    stack, capacity = tables.memory_frames(plan, catalog)
    st.altair_chart(charts.memory_chart(stack, capacity), width="stretch")
    notes = {(c.model, c.row): c for c in plan.shortlist if c.verifier != "none"}
    if notes:
        with st.expander("What the verifiers add"):
            for (model, kind), c in notes.items():
                st.markdown(
                    f"- **{kind}** on {model} ({c.gpu_count} x {c.gpu_name}): "
                    f"{'; '.join(c.notes)}; quality ({c.quality_provenance}): "
                    f"{c.quality_detail}; counts: {c.verifier_cost_source}"
                )


def render() -> None:
    st.title("Plan")
    st.caption(
        "Describe the workload and its limits; backplan ranks GPU x count x model x "
        "quantisation x verifier by cost per solved task."
    )
    state = catalog_state()
    show_catalog_error(state)
    profiles, _ = all_profiles()
    submitted = _form(state.catalog, list(profiles))
    if submitted is not None:
        _run_plan(submitted, state, profiles)
    plan = current_plan()
    if plan is not None:
        show_plan(plan, state.catalog, profiles)
    elif submitted is None:
        st.info("Fill in the form and press **Make plan**.")

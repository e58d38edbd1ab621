"""Compare: two to four shortlist candidates, or profile configurations, side by side."""

from __future__ import annotations

import streamlit as st

from dashboards import tables
from dashboards.state import all_profiles, current_plan
from planner.profiler.schema import Profile
from planner.recommend.plan import PlanResult

SOURCES = ("shortlist candidates", "profile configurations")


def _pick(label: str, options: list[str], key: str) -> list[str]:
    chosen = st.multiselect(
        label, options, default=options[: min(3, len(options))], max_selections=4, key=key
    )
    if len(chosen) < 2:
        st.warning("Pick two to four to compare.")
        return []
    return chosen


def _candidates(plan: PlanResult) -> None:
    labelled = {tables.candidate_label(i, c): c for i, c in enumerate(plan.shortlist, 1)}
    chosen = _pick("Candidates (two to four)", list(labelled), "compare_candidates")
    if not chosen:
        return
    cols = st.columns(len(chosen))
    solved = [labelled[n].cost_per_1k_solved_usd for n in chosen]
    cheapest = min((x for x in solved if x is not None), default=None)
    for col, name in zip(cols, chosen, strict=True):
        c = labelled[name]
        col.markdown(f"**{name}**")
        per_task = c.cost_per_1k_solved_usd
        delta = per_task - cheapest if per_task is not None and cheapest is not None else 0.0
        col.metric(
            "USD / 1,000 solved tasks",
            "-" if per_task is None else f"{per_task:.3f}",
            delta=f"+{delta:.3f}" if delta > 0 else None,
            delta_color="inverse",
        )
        col.metric("USD / million tokens", f"{c.cost_per_mtok_usd:.3f}")
        col.metric(
            "pass@1",
            "-" if c.pass_at_1 is None else f"{c.pass_at_1:.3f}",
            help=f"{c.quality_provenance}: {c.quality_detail}",
        )
        col.metric("watts while generating", f"{c.active_power_w:,.0f}")
        col.metric("capex USD", f"{c.capex_usd:,.0f}")
    st.dataframe(tables.compare_candidates((n, labelled[n]) for n in chosen), width="stretch")


def _configs(profiles: dict[str, Profile]) -> None:
    name = st.selectbox("Profile", list(profiles), key="compare_profile")
    profile = profiles[name]
    chosen = _pick(
        "Configurations (two to four)", [c.name for c in profile.configs], "compare_configs"
    )
    if not chosen:
        return
    cols = st.columns(len(chosen))
    for col, cname in zip(cols, chosen, strict=True):
        c = profile.config(cname)
        col.markdown(f"**{cname}**")
        col.metric("memory x", f"{c.memory_ratio:.2f}")
        col.metric("compute x", f"{c.compute_ratio:.2f}")
        col.metric("decode slowdown", f"{100 * (1 - c.decode_ratio):.1f}%")
        col.metric("tokens / s", f"{c.decode.tok_s.median:.1f}")
    st.dataframe(tables.compare_configs(profile, chosen), width="stretch")


def render() -> None:
    st.title("Compare")
    source = st.radio("Compare", SOURCES, horizontal=True, key="compare_source")
    if source == SOURCES[0]:
        plan = current_plan()
        if plan is None or not plan.shortlist:
            st.info("Make a plan with a shortlist on the Plan page first.")
            return
        _candidates(plan)
    else:
        profiles, error = all_profiles()
        if error:
            st.error(f"The local profile cannot be used: {error}")
        if not profiles:
            st.info("No profile at hand: load, upload or run one on the Profiles page.")
            return
        _configs(profiles)

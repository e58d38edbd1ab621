"""Profiles: the local profile and uploaded ones; the seed's overheads as measured here."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import streamlit as st

from dashboards import charts, tables
from dashboards.state import (
    PLAN_PROFILE_KEY,
    all_profiles,
    local_profile,
    profile_from_upload,
    session_profiles,
)
from planner.profiler import runner
from planner.profiler.schema import Profile, ProfileError
from runtime.errors import BackplanError


@contextmanager
def bare_main() -> Iterator[None]:
    """An empty ``__main__`` while the profiler spawns its workers.

    Streamlit runs this page as ``__main__``; a spawned process would import the page script
    again (and Streamlit with it) before measuring anything. An empty module gives it nothing
    to import.
    """
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _uploads() -> None:
    files = st.file_uploader(
        "Upload profiles (JSON written by `backplan profile`)",
        type=["json"],
        accept_multiple_files=True,
        key="profile_uploads",
    )
    for f in files or []:
        try:
            session_profiles()[f"uploaded: {f.name}"] = profile_from_upload(f.name, f.getvalue())
        except ProfileError as exc:
            st.error(f"Cannot use the uploaded profile {f.name}: {exc}")


def _run_quick() -> None:
    with st.expander("Run a quick profile on this machine (about a minute, SmolLM2-135M)"):
        st.caption(
            "Plain decoding and every backtracking configuration, one prompt, 32 tokens, three "
            "repeats (`backplan profile --quick`). The result stays in this session; download "
            "it below to keep it."
        )
        if not st.button("Run a quick profile", key="run_quick"):
            return
        bar = st.progress(0.0, text="starting the workers")

        def progress(label: str, done: int, total: int) -> None:
            bar.progress(min(1.0, done / max(total, 1)), text=f"{label} ({done}/{total})")

        try:
            with bare_main():
                profile = runner.run_profile(runner.ProfileRequest(quick=True), progress=progress)
        except BackplanError as exc:
            bar.empty()
            st.error(f"The profile failed: {exc}")
            return
        name = f"quick run {datetime.now().strftime('%H:%M:%S')}"
        session_profiles()[name] = profile
        st.session_state["profile_view"] = name
        bar.progress(1.0, text="done")
        st.success(f"Profile '{name}' measured in {profile.elapsed_s:.0f} s.")


def show_profile(name: str, profile: Profile) -> None:
    fp = profile.fingerprint
    st.markdown(
        f"**{profile.model.name}** ({profile.model.n_params / 1e6:.0f}M parameters), measured "
        f"{profile.created} on {fp.get('cpu_model', '?')} "
        f"({profile.meter.get('device', '?')}); {profile.settings.repeats} repeats, "
        f"{profile.settings.max_tokens} tokens per prompt, {len(profile.settings.prompts)} "
        f"prompt(s){', quick' if profile.settings.quick else ''}."
    )
    st.subheader("The seed's three figures, as measured")
    st.caption(
        "memory x: peak memory over plain's (the seed: a verifier of equal size doubles it); "
        "compute x: forward-token evaluations per emitted token over plain's (the seed: "
        "1.5-3x); decode slowdown: 1 - tokens/s over plain's (the seed: 5-30%). Spread: "
        "(max - min) / median of the repeats."
    )
    st.dataframe(tables.overhead_frame(profile), hide_index=True, width="stretch")
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Ratios to plain**")
        st.altair_chart(charts.ratios_chart(tables.ratios_long(profile)), width="stretch")
    with c2:
        st.markdown("**Decode speed: median and range of the repeats**")
        st.altair_chart(charts.speed_chart(tables.speed_frame(profile)), width="stretch")
    for warning in profile.warnings:
        st.warning(warning)
    c1, c2 = st.columns(2)
    if c1.button("Use this profile for planning", key="use_for_plan"):
        st.session_state[PLAN_PROFILE_KEY] = name
    if st.session_state.get(PLAN_PROFILE_KEY) == name:
        c1.caption("The Plan page takes the verifier overheads from this profile.")
    c2.download_button(
        "Download this profile (JSON)",
        profile.model_dump_json(indent=2),
        file_name="profile.json",
        mime="application/json",
        on_click="ignore",
    )


def render() -> None:
    st.title("Profiles")
    _, error, path = local_profile()
    if error:
        st.error(f"The local profile cannot be used: {error}")
    elif not path.exists():
        st.info(
            f"No local profile at {path}: run `backplan profile --quick`, run one below, "
            "or upload one."
        )
    _uploads()
    _run_quick()
    profiles, _ = all_profiles()
    if not profiles:
        return
    names = list(profiles)
    current = st.session_state.get("profile_view")
    if current not in names:
        st.session_state["profile_view"] = names[0]
    name = st.selectbox("Profile", names, key="profile_view")
    show_profile(name, profiles[name])

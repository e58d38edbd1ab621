"""Catalogue: browse GPUs, models and regions; add or edit entries in the user's overlay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboards import overlay, tables
from dashboards.state import CatalogState, catalog_state
from hardware_catalog import Catalog, CatalogError

SECTIONS = {"gpus": "GPUs", "models": "Models", "regions": "Regions"}
NEW = "(a new entry)"
SAVED_KEY = "catalogue_saved"


def _browse(catalog: Catalog) -> None:
    frames: dict[str, pd.DataFrame] = {
        "gpus": tables.gpus_frame(catalog),
        "models": tables.models_frame(catalog),
        "regions": tables.regions_frame(catalog),
    }
    tabs = st.tabs([SECTIONS[s] for s in frames])
    for tab, (section, frame) in zip(tabs, frames.items(), strict=True):
        with tab:
            text = st.text_input(
                "Filter (any column contains)", key=f"filter_{section}", placeholder="e.g. nvidia"
            )
            shown = tables.filter_frame(frame, text)
            st.caption(f"{len(shown)} of {len(frame)} {SECTIONS[section].lower()}")
            st.dataframe(shown, hide_index=True, width="stretch")


def _broken_file(state: CatalogState) -> None:
    """Offer the overlay file named in the error for editing, saved only once it loads."""
    st.error(
        f"Your overlay ({state.overlay_dir}) cannot be used: {state.error}\n\n"
        "The pages use the shipped catalogue alone until it is fixed."
    )
    folder = state.overlay_dir
    try:
        broken = [
            p
            for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix.lower() in (".yaml", ".yml") and str(p) in str(state.error)
        ]
        path = broken[0] if broken else None
        current = path.read_text(encoding="utf-8", errors="replace") if path else ""
    except OSError as exc:  # the folder or the file cannot be read: nothing to edit here
        st.error(f"{folder} cannot be read here ({exc.strerror}); fix its permissions.")
        return
    if path is None:
        return
    with st.expander(f"Fix {path.name}", expanded=True), st.form("fix_overlay"):
        text = st.text_area(path.name, current, height=300)
        if st.form_submit_button("Check and save"):
            try:
                overlay.save_overlay_text(folder, path.name, text)
            except CatalogError as exc:
                st.error(f"Not saved: {exc}")
            else:
                st.session_state[SAVED_KEY] = f"Saved {path}; the overlay loads again."
                st.rerun()


def _widget(spec: overlay.FieldSpec, value: Any, key: str, col: Any) -> Any:
    label = spec.name + ("" if spec.required else " (optional)")
    helptext = spec.description or None
    if spec.kind == "choice":
        options = list(spec.options)
        if spec.optional:
            options = ["(none)", *options]
        index = options.index(value) if value in options else 0
        return col.selectbox(label, options, index=index, key=key, help=helptext)
    if spec.kind == "bool":
        return col.checkbox(label, value=bool(value), key=key, help=helptext)
    if spec.kind == "int":
        return col.number_input(
            label, value=None if value is None else int(value), step=1, key=key, help=helptext
        )
    if spec.kind == "float":
        return col.number_input(
            label,
            value=None if value is None else float(value),
            format="%g",
            key=key,
            help=helptext,
        )
    return col.text_input(label, value=str(value or ""), key=key, help=helptext)


def _editor(state: CatalogState) -> None:
    catalog = state.catalog
    st.subheader("Add or edit an entry")
    st.caption(
        f"Saved to your overlay folder {state.overlay_dir} (an entry with an existing id "
        "replaces ours, a new id adds one); the shipped catalogue is never written. "
        "Every entry names its sources: each figure group with `what`, `url` and `as_of`."
    )
    c1, c2 = st.columns(2)
    section = c1.selectbox(
        "Section", list(SECTIONS), format_func=lambda s: SECTIONS[s], key="edit_section"
    )
    entries = catalog.section(section)
    base_id = c2.selectbox(
        "Start from",
        [NEW, *sorted(entries)],
        key=f"edit_base_{section}",
        help="Edit an entry (same id) or copy it (change the id).",
    )
    base = None if base_id == NEW else entries[base_id]
    specs = overlay.field_specs(overlay.EDITABLE[section])
    values = overlay.form_values(base, specs)
    scalars = [s for s in specs if s.kind != "yaml"]
    nested = [s for s in specs if s.kind == "yaml"]
    prefix = f"edit_{section}_{base_id}_"
    got: dict[str, Any] = {}
    with st.form(f"entry_form_{section}"):
        cols = st.columns(3)
        for i, spec in enumerate(scalars):
            got[spec.name] = _widget(spec, values[spec.name], prefix + spec.name, cols[i % 3])
        for spec in nested:
            got[spec.name] = st.text_area(
                f"{spec.name} (YAML)" + ("" if spec.required else " (optional)"),
                values[spec.name],
                key=prefix + spec.name,
                height=160 if spec.name == "sources" else 90,
                help=spec.description or None,
                placeholder=overlay.placeholder(section, spec.name),
            )
        submitted = st.form_submit_button("Validate and save", type="primary")
    if not submitted:
        return
    raw, errors = overlay.raw_entry(specs, got)
    entry = None
    if not errors:
        entry, errors = overlay.validate_entry(section, raw)
    if errors or entry is None:
        st.error(
            "The entry is not valid, nothing was saved:\n\n" + "\n".join(f"- {e}" for e in errors)
        )
        return
    try:
        path: Path = overlay.save_entry(state.overlay_dir, section, entry)
    except CatalogError as exc:
        st.error(f"Not saved: {exc}")
        return
    st.session_state[SAVED_KEY] = f"Saved {section} entry '{raw.get('id')}' to {path}."
    st.rerun()  # show the catalogue with the entry in it


def render() -> None:
    st.title("Catalogue")
    saved = st.session_state.pop(SAVED_KEY, None)
    if saved:
        st.success(saved)
    state = catalog_state()
    if state.error:
        _broken_file(state)
    else:
        status = "" if state.overlay_dir.is_dir() else " (does not exist yet; saving creates it)"
        st.caption(f"Overlay folder: {state.overlay_dir}{status}")
    _browse(state.catalog)
    _editor(state)

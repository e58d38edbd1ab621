"""What the pages share: the catalogue (with its overlay), the profiles, the last plan.

Errors a user can cause come back as messages for ``st.error``; the pages carry on with what
still works (the shipped catalogue when the overlay is broken, the other profiles when one
cannot be read).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st

from dashboards.config import local_profile_path, overlay_dir
from hardware_catalog import Catalog, CatalogError, load_catalog
from planner.profiler.schema import Profile, ProfileError, load_profile
from planner.recommend.plan import PlanResult
from runtime.errors import BackplanError

PROFILES_KEY = "profiles"  # name -> Profile: uploaded and run in this session
PLAN_KEY = "plan"  # the last PlanResult
PLAN_PROFILE_KEY = "plan_profile"  # name of the profile the planner uses, or None
LOCAL = "local"

T = TypeVar("T")


@dataclass(frozen=True)
class CatalogState:
    catalog: Catalog
    overlay_dir: Path
    error: str | None  # the overlay's error; ``catalog`` is then the shipped one alone


def _overlay_stamp(folder: Path) -> tuple[tuple[str, float, int], ...]:
    """What changes when an overlay file does; an unreadable folder reads as an empty one
    here and is reported by the loader, which says which file and why."""
    try:
        if not folder.is_dir():
            return ()
        return tuple(
            sorted(
                (p.name, p.stat().st_mtime, p.stat().st_size)
                for p in folder.iterdir()
                if p.is_file() and p.suffix.lower() in (".yaml", ".yml")
            )
        )
    except OSError:
        return (("<unreadable>", 0.0, 0),)


@st.cache_resource(show_spinner=False, max_entries=8)
def _catalog(folder: str | None, stamp: tuple[tuple[str, float, int], ...]) -> Catalog:
    return load_catalog(Path(folder) if folder else None)


def catalog_state() -> CatalogState:
    """The merged catalogue; a broken overlay gives the shipped one and the overlay's error."""
    folder = overlay_dir()
    stamp = _overlay_stamp(folder)
    try:
        return CatalogState(_catalog(str(folder) if stamp else None, stamp), folder, None)
    except CatalogError as exc:
        return CatalogState(_catalog(None, ()), folder, str(exc))


def show_catalog_error(state: CatalogState) -> None:
    if state.error:
        st.error(
            f"Your catalogue overlay ({state.overlay_dir}) cannot be used: {state.error}\n\n"
            "Until it is fixed (Catalogue page) the shipped catalogue is used alone."
        )


def local_profile() -> tuple[Profile | None, str | None, Path]:
    """The local profile, or None with the reason (missing, or unreadable: an error)."""
    path = local_profile_path()
    if not path.exists():
        return None, None, path
    try:
        return load_profile(path), None, path
    except ProfileError as exc:
        return None, str(exc), path


def profile_from_upload(name: str, data: bytes) -> Profile:
    """Validate uploaded bytes as a profile (through a temporary file, as ``load_profile``)."""
    with tempfile.TemporaryDirectory(prefix="backplan-upload-") as tmp:
        path = Path(tmp) / Path(name).name
        path.write_bytes(data)
        try:
            return load_profile(path)
        except ProfileError as exc:
            raise ProfileError(str(exc).replace(str(path), name)) from None


def session_profiles() -> dict[str, Profile]:
    profiles: dict[str, Profile] = st.session_state.setdefault(PROFILES_KEY, {})
    return profiles


def all_profiles() -> tuple[dict[str, Profile], str | None]:
    """Every profile at hand, the local one first; plus the local one's error, if any."""
    local, error, path = local_profile()
    out: dict[str, Profile] = {}
    if local is not None:
        out[f"{LOCAL}: {path}"] = local
    out.update(session_profiles())
    return out, error


def current_plan() -> PlanResult | None:
    plan = st.session_state.get(PLAN_KEY)
    return plan if isinstance(plan, PlanResult) else None


def guarded(render: Callable[[], T]) -> Callable[[], T | None]:
    """Run a page; a backplan error shows as a message on the page, never a traceback."""

    def run() -> T | None:
        try:
            return render()
        except BackplanError as exc:
            st.error(str(exc))
            return None

    return run


def number_or_none(value: Any) -> float | None:
    """0 or an empty field means 'no limit'."""
    if value is None:
        return None
    number = float(value)
    return number if number > 0 else None

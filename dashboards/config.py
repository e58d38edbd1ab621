"""Where the dashboard reads and writes: set by ``backplan dashboard`` through the environment.

``BACKPLAN_DASHBOARD_CATALOG`` is the user's catalogue overlay folder (default
``~/.config/backplan/catalog``): it is read on top of the shipped catalogue, and the Catalogue
page saves entries there (never into ``hardware_catalog/data``). ``BACKPLAN_DASHBOARD_PROFILE``
is the local profile shown first (default ``out/profile.json``, what ``backplan profile``
writes).
"""

from __future__ import annotations

import os
from pathlib import Path

CATALOG_ENV = "BACKPLAN_DASHBOARD_CATALOG"
PROFILE_ENV = "BACKPLAN_DASHBOARD_PROFILE"
DEFAULT_PROFILE = Path("out/profile.json")


def quality_file() -> Path | None:
    """The measured runs list plans read (as ``backplan plan`` does)."""
    from planner.recommend.quality import default_runs_file

    return default_runs_file()


def default_overlay_dir() -> Path:
    return Path.home() / ".config" / "backplan" / "catalog"


def overlay_dir() -> Path:
    """The catalogue overlay folder: ``--catalog DIR``, else the per-user default."""
    given = os.environ.get(CATALOG_ENV)
    return Path(given).expanduser() if given else default_overlay_dir()


def local_profile_path() -> Path:
    """The local profile: ``--profile FILE``, else ``out/profile.json``."""
    given = os.environ.get(PROFILE_ENV)
    return Path(given).expanduser() if given else DEFAULT_PROFILE

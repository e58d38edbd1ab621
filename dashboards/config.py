"""Where the dashboard reads and writes: the home (:mod:`runtime.home`), or what
``backplan dashboard`` was told, passed through the environment.

``BACKPLAN_DASHBOARD_CATALOG`` is the catalogue overlay folder (default: the home's,
``~/.config/backplan/catalog``, which ``plan`` and ``predict`` read too): it is read on top of
the shipped catalogue, and the Catalogue page saves entries there (never into
``hardware_catalog/data``). ``BACKPLAN_DASHBOARD_PROFILE`` is the local profile shown first
(default: the home's ``profiles/profile.json``, what ``backplan profile`` writes).
"""

from __future__ import annotations

import os
from pathlib import Path

from runtime.home import home

CATALOG_ENV = "BACKPLAN_DASHBOARD_CATALOG"
PROFILE_ENV = "BACKPLAN_DASHBOARD_PROFILE"


def runs() -> list[Path]:
    """The measured runs lists plans read (as ``backplan plan`` does)."""
    from planner.recommend.quality import runs_files

    return runs_files()


def default_overlay_dir() -> Path:
    return home().catalog


def overlay_dir() -> Path:
    """The catalogue overlay folder: ``--catalog DIR``, else the home's."""
    given = os.environ.get(CATALOG_ENV)
    return Path(given).expanduser() if given else default_overlay_dir()


def local_profile_path() -> Path:
    """The local profile: ``--profile FILE``, else the home's ``profiles/profile.json``."""
    given = os.environ.get(PROFILE_ENV)
    return Path(given).expanduser() if given else home().profile

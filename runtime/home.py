"""backplan's home: the one place its state lives, whatever the working directory.

    $BACKPLAN_HOME/cache      models and built wheels   (default: the platform's user cache,
                                                          ~/.cache/backplan on Linux)
    $BACKPLAN_HOME/catalog    your catalogue overlay     (default: the user config folder,
                                                          ~/.config/backplan/catalog)
    $BACKPLAN_HOME/results    measured runs (humaneval.json) and eval results files
    $BACKPLAN_HOME/profiles   profiles (profile.json: what the dashboard shows first)
    $BACKPLAN_HOME/demo       what ``backplan demo`` writes (its report among them)
                              (these three default to the user data folder,
                              ~/.local/share/backplan on Linux)

With ``BACKPLAN_HOME`` unset each part follows the platform's conventions (platformdirs);
``BACKPLAN_CACHE`` still moves the cache alone. Every command reads and writes these same
places: ``plan``, ``predict``, ``demo`` and the dashboard plan with the same measurements and
the same overlay; nothing is read from or written to the working directory unless a path is
given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

HOME_ENV = "BACKPLAN_HOME"
CACHE_ENV = "BACKPLAN_CACHE"
APP = "backplan"


@dataclass(frozen=True)
class Home:
    cache: Path
    catalog: Path
    results: Path
    profiles: Path
    demo: Path

    @property
    def runs_list(self) -> Path:
        """The measured runs list ``backplan eval humaneval`` records into."""
        return self.results / "humaneval.json"

    @property
    def eval_dir(self) -> Path:
        """Where ``backplan eval humaneval`` writes per-problem results by default."""
        return self.results / "eval"

    @property
    def profile(self) -> Path:
        """The local profile: what ``backplan profile`` writes and the dashboard shows first."""
        return self.profiles / "profile.json"


def home() -> Home:
    """The home as the environment says now (read on every call: tests and users move it)."""
    cache_override = os.environ.get(CACHE_ENV)
    base = os.environ.get(HOME_ENV)
    if base:
        root = Path(base).expanduser()
        return Home(
            cache=Path(cache_override).expanduser() if cache_override else root / "cache",
            catalog=root / "catalog",
            results=root / "results",
            profiles=root / "profiles",
            demo=root / "demo",
        )
    data = platformdirs.user_data_path(APP)
    return Home(
        cache=Path(cache_override).expanduser()
        if cache_override
        else platformdirs.user_cache_path(APP),
        catalog=platformdirs.user_config_path(APP) / "catalog",
        results=data / "results",
        profiles=data / "profiles",
        demo=data / "demo",
    )


def catalog_overlay() -> Path | None:
    """The home's catalogue overlay folder when there is one (``plan``, ``predict`` and the
    dashboard read it unless given ``--catalog``)."""
    folder = home().catalog
    return folder if folder.is_dir() else None

"""Profile files: versioned, validated on load, one clear error otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.profiler.schema import PROFILE_SCHEMA_VERSION, ProfileError, load_profile


def test_other_version_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"schema_version": PROFILE_SCHEMA_VERSION + 1}))
    with pytest.raises(ProfileError, match="schema"):
        load_profile(p)


def test_broken_and_missing_files(tmp_path: Path) -> None:
    p = tmp_path / "p.json"
    p.write_text('{"schema_version": 1, "configs": [')
    with pytest.raises(ProfileError, match="not a readable JSON"):
        load_profile(p)
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile(tmp_path / "none.json")
    p.write_text(json.dumps({"schema_version": 1, "created": "x"}))
    with pytest.raises(ProfileError, match="field"):
        load_profile(p)
    p.write_text("[1, 2]")
    with pytest.raises(ProfileError, match="not a backplan profile"):
        load_profile(p)


def test_committed_json_schema_matches_the_code() -> None:
    from planner.profiler.schema import Profile

    committed = json.loads((Path(__file__).parents[2] / "docs" / "profile.schema.json").read_text())
    assert committed == Profile.model_json_schema(), (
        "docs/profile.schema.json is stale: regenerate it from Profile.model_json_schema()"
    )

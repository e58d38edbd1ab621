"""Real fetch of the default model into the shared cache (downloads it once, ~98 MB)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from backplan.cli import _Group
from backplan.commands.models import models
from runtime.models.fetch import model_path, sha256_file
from runtime.models.registry import DEFAULT_MODEL, resolve

pytestmark = pytest.mark.integration


def test_default_model_is_fetched_and_verified() -> None:
    spec = resolve(DEFAULT_MODEL)
    path = model_path(DEFAULT_MODEL)  # uses the session's cache; fetched only if missing
    assert path.stat().st_size == spec.size_bytes
    with path.open("rb") as f:
        assert f.read(4) == b"GGUF"
    record = json.loads(path.with_name(path.name + ".sha256").read_text())
    assert record["sha256"] == spec.sha256
    assert record["size"] == spec.size_bytes


def test_sidecar_matches_a_real_hash() -> None:
    path = model_path(DEFAULT_MODEL)
    assert sha256_file(path) == resolve(DEFAULT_MODEL).sha256


def test_cli_path_prints_the_cached_file() -> None:
    path = model_path(DEFAULT_MODEL)
    group = _Group("backplan")
    group.add_command(models)
    result = CliRunner().invoke(group, ["models", "path", DEFAULT_MODEL])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(path)
